"""Evaluation: metrics (higher score = more anomalous; anomalies positive unless
``positive="normal"``), statistics, tables.

Public API
----------
auroc, aupr, auroc30, partial_auroc, all_metrics   metrics (see :mod:`.metrics` for definitions)
POSITIVE_CLASSES, check_positive, orient           the two metric conventions (``positive=``)
metric_candidates, candidates_by_model,            candidate AUPR / AUROC30 definitions and how
compare_conventions                                well each reproduces the paper's numbers
paper_table, paper_tables_mnistc, beside_paper,    the paper's Tables I and IV (data_manifests/
convention_check                                   paper_tables_mnistc.yaml), ours beside them
roc_points, pr_points                              curve points for plots
largest_tie_fraction                               share of the largest group of equal scores
paired_bootstrap, per_group_bootstrap, bonferroni  the paper's paired bootstrap test
kruskal_dunn                                       Kruskal–Wallis + Dunn (Bonferroni)
results_table, per_corruption_table, overall_table paper-layout tables (Markdown/HTML/LaTeX)
results_caption, convention_note                   what a results table shows (items, bold/underline, selection,
                                                   positive class)
align_scores                                       scores of several runs on the same test items
split_metrics, stored_metrics, run_test_metrics    a run's metrics as ``metrics.json`` stores them (both
                                                   conventions, per corruption)
seeds_beside_paper, corruptions_over_seeds         mean ± sd over seeds of selected configurations, both
                                                   conventions, the paper beside

Importing this package does not import torch (the dashboard uses it).
"""

from ogae_core.evaluation.align import align_scores
from ogae_core.evaluation.conventions import candidates_by_model, compare_conventions, metric_candidates
from ogae_core.evaluation.metrics import (
    METRICS,
    POSITIVE_CLASSES,
    all_metrics,
    aupr,
    auroc,
    auroc30,
    check_positive,
    largest_tie_fraction,
    orient,
    partial_auroc,
    pr_points,
    roc_points,
)
from ogae_core.evaluation.paper import beside_paper, convention_check, paper_table, paper_tables_mnistc
from ogae_core.evaluation.run_metrics import (
    corruptions_over_seeds,
    run_test_metrics,
    seeds_beside_paper,
    split_metrics,
    stored_metrics,
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
from ogae_core.evaluation.tables import (
    ResultsTable,
    convention_note,
    overall_table,
    per_corruption_table,
    results_caption,
    results_table,
)

__all__ = [
    "METRICS",
    "POSITIVE_CLASSES",
    "SIGNIFICANCE_LEVEL",
    "KruskalDunnResult",
    "ResultsTable",
    "align_scores",
    "beside_paper",
    "all_metrics",
    "aupr",
    "auroc",
    "auroc30",
    "bonferroni",
    "bootstrap_samples",
    "candidates_by_model",
    "check_positive",
    "compare_conventions",
    "convention_check",
    "convention_note",
    "corruptions_over_seeds",
    "kruskal_dunn",
    "largest_tie_fraction",
    "metric_candidates",
    "orient",
    "overall_table",
    "paired_bootstrap",
    "paper_table",
    "paper_tables_mnistc",
    "partial_auroc",
    "per_corruption_table",
    "per_group_bootstrap",
    "pr_points",
    "results_caption",
    "results_table",
    "roc_points",
    "run_test_metrics",
    "seeds_beside_paper",
    "split_metrics",
    "stored_metrics",
]
