"""Evaluation: metrics (anomalies positive, higher score = more anomalous), statistics, tables.

Public API
----------
auroc, aupr, auroc30, partial_auroc, all_metrics   metrics (see :mod:`.metrics` for definitions)
roc_points, pr_points                              curve points for plots
largest_tie_fraction                               share of the largest group of equal scores
paired_bootstrap, per_group_bootstrap, bonferroni  the paper's paired bootstrap test
kruskal_dunn                                       Kruskal–Wallis + Dunn (Bonferroni)
results_table, per_corruption_table, overall_table paper-layout tables (Markdown/HTML/LaTeX)
results_caption                                    what a results table shows (items, bold/underline, selection)
align_scores                                       scores of several runs on the same test items

Importing this package does not import torch (the dashboard uses it).
"""

from ogae_core.evaluation.align import align_scores
from ogae_core.evaluation.metrics import (
    METRICS,
    all_metrics,
    aupr,
    auroc,
    auroc30,
    largest_tie_fraction,
    partial_auroc,
    pr_points,
    roc_points,
)
from ogae_core.evaluation.stats import (
    SIGNIFICANCE_LEVEL,
    KruskalDunnResult,
    bonferroni,
    bootstrap_samples,
    kruskal_dunn,
    paired_bootstrap,
    per_group_bootstrap,
)
from ogae_core.evaluation.tables import ResultsTable, overall_table, per_corruption_table, results_caption, results_table

__all__ = [
    "METRICS",
    "SIGNIFICANCE_LEVEL",
    "KruskalDunnResult",
    "ResultsTable",
    "align_scores",
    "all_metrics",
    "aupr",
    "auroc",
    "auroc30",
    "bonferroni",
    "bootstrap_samples",
    "kruskal_dunn",
    "largest_tie_fraction",
    "overall_table",
    "paired_bootstrap",
    "partial_auroc",
    "per_corruption_table",
    "per_group_bootstrap",
    "pr_points",
    "results_caption",
    "results_table",
    "roc_points",
]
