"""The paper's results table from finished runs: selection on validation, significance on test.

:func:`benchmark_report` reads one experiment of the run store, selects every row's
configuration on the validation split (:mod:`ogae_core.runs.selection`), aligns the
test scores of the selected runs (lowest seed of the selected configuration) and runs the
paper's paired bootstrap (:func:`ogae_core.evaluation.paired_bootstrap`): best model in bold,
models not significantly worse underlined (Bonferroni, alpha = 0.01). A per-corruption
breakdown and the mean +- std of the test metrics over the selected configuration's seeds
come with it. Nothing is typed in: every number is computed from ``scores.parquet`` and
``metrics.json``.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ogae_core.runs.selection import select_configurations, selected_runs

FORMATS = ("md", "html", "latex")


def paper_order() -> list[str]:
    """Row labels in the order of the paper's Table I.

    Examples
    --------
    >>> paper_order()[:3]
    ['ae-recons', 'ae-ocsvm', 'vae-recons']
    """
    from ogae_core.experiments.mnistc_config import default_label
    from ogae_core.methods import method_rows

    return [default_label(m, s) for m, s in method_rows()]


@dataclass
class BenchmarkReport:
    """Results of one experiment (see :func:`benchmark_report`).

    Attributes
    ----------
    experiment : str
    selection : pandas.DataFrame
        Selected configuration per row (validation metric, seeds, run ids).
    bootstrap : pandas.DataFrame
        Tidy paired-bootstrap table on the test split.
    per_corruption : pandas.DataFrame or None
        The same within each test corruption.
    table, corruption_table : ResultsTable
        Paper-layout tables (``to_markdown`` / ``to_html`` / ``to_latex``).
    seeds : pandas.DataFrame
        Mean and std of the test metrics over the selected configuration's seeds.
    aligned : AlignedScores
        Test scores of the selected runs on the same items (for ROC/PR curves).
    runs : dict
        ``{label: Run}`` of the compared runs.
    """

    experiment: str
    selection: pd.DataFrame
    bootstrap: pd.DataFrame
    per_corruption: pd.DataFrame | None
    table: Any
    corruption_table: Any
    seeds: pd.DataFrame
    aligned: Any
    runs: dict

    def _caption(self) -> str:
        a = self.bootstrap.attrs
        n_items, n_anom = len(self.aligned.labels), int(self.aligned.labels.sum())
        return (f"{self.experiment}: test split, {n_items} items ({n_anom} anomalies). Bold: best (highest bootstrap mean); "
                f"underlined: not significantly worse than the best (paired bootstrap, {a.get('n')} resamples, "
                f"Bonferroni, alpha = {a.get('alpha')}). Hyperparameters chosen on the validation split "
                f"(metric: {self.selection.attrs.get('metric', 'auroc')}). AUROC30: McClish-standardized partial AUC, FPR <= 0.3.")

    def render(self, fmt: str = "md") -> str:
        """The report as Markdown, HTML or LaTeX."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
        seeds = self.seeds.round(4)
        if fmt == "latex":
            parts = [self.table.to_latex(caption=self._caption())]
            if self.corruption_table is not None:
                parts.append(self.corruption_table.to_latex(caption=f"{self.experiment}: per test corruption"))
            return "\n".join(parts)
        if fmt == "html":
            parts = [f"<h2>{html.escape(self.experiment)}</h2>", f"<p>{html.escape(self._caption())}</p>", self.table.to_html()]
            if self.corruption_table is not None:
                parts += ["<h3>Per test corruption</h3>", self.corruption_table.to_html()]
            parts += ["<h3>Test metrics over seeds (selected configurations)</h3>", seeds.to_html(index=False)]
            return "\n".join(parts)
        parts = [f"## {self.experiment}", "", self._caption(), "", self.table.to_markdown()]
        if self.corruption_table is not None:
            parts += ["### Per test corruption", "", self.corruption_table.to_markdown()]
        parts += ["### Test metrics over seeds (selected configurations)", "", _markdown(seeds), "",
                  "`test_tied_max`: the largest share of test items with one and the same score (worst seed); "
                  "`warnings`: collapse guards that fired in the selected runs (see `collapse_flags`).", ""]
        return "\n".join(parts)


def _markdown(frame: pd.DataFrame) -> str:
    """A plain Markdown table (no optional dependency)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _seed_summary(runs: list, selection: pd.DataFrame) -> pd.DataFrame:
    by_id = {r.run_id: r for r in runs}
    rows = []
    for row in selection.itertuples(index=False):
        tests = [by_id[rid].metrics.get("test", {}) for rid in row.run_ids]
        out = {"model": row.label, "seeds": len(tests), "validation_auroc": row.validation_mean}
        for m in ("auroc", "aupr", "auroc30"):
            s = pd.Series([t.get(m) for t in tests], dtype=float)
            out[f"test_{m}_mean"] = float(s.mean())
            out[f"test_{m}_std"] = float(s.std()) if len(s) > 1 else 0.0
        out["test_tied_max"] = max(_test_tied_fraction(by_id[rid]) for rid in row.run_ids)
        flags = sorted({w for rid in row.run_ids for w in by_id[rid].metrics.get("warnings", [])})
        out["warnings"] = ", ".join(flags) if flags else "-"
        rows.append(out)
    return pd.DataFrame(rows)


def _test_tied_fraction(run) -> float:
    """Largest share of equal test scores of a run (from its metrics, else its scores)."""
    from ogae_core.evaluation import largest_tie_fraction

    stored = run.metrics.get("test", {}).get("tied_fraction")
    if stored is not None:
        return float(stored)
    scores = run.scores()
    return largest_tie_fraction(scores.loc[scores["split"] == "test", "score"].to_numpy())


def benchmark_report(runs_root: str | Path | None = None, experiment: str = "mnistc-3v8-quick", *, metric: str = "auroc",
                     n_boot: int = 1000, seed: int = 0, by_corruption: bool = True) -> BenchmarkReport:
    """Aggregate the finished runs of ``experiment`` into the paper's table with significance.

    Parameters
    ----------
    runs_root : path, optional
    experiment : str
    metric : str
        Validation metric of the hyperparameter selection.
    n_boot, seed : int
        Paired-bootstrap resamples and seed.
    by_corruption : bool
        Also compute the per-corruption breakdown.

    Examples
    --------
    >>> rep = benchmark_report("runs", "mnistc-3v8-quick")  # doctest: +SKIP
    >>> print(rep.render("md"))  # doctest: +SKIP
    """
    from ogae_core.evaluation import align_scores, paired_bootstrap, per_group_bootstrap, results_table
    from ogae_core.runs import default_root, list_runs

    root = Path(runs_root) if runs_root is not None else default_root()
    runs = [r for r in list_runs(root, experiment) if r.has("scores.parquet")]
    if not runs:
        raise ValueError(f"no finished runs with scores in {root / experiment}; "
                         f"make them with `ogae bench mnistc --preset quick --runs-root {root}`")
    selection = select_configurations(runs, metric)
    selection.attrs["metric"] = metric
    chosen = selected_runs(runs, metric)
    order = [lab for lab in paper_order() if lab in chosen] + [lab for lab in chosen if lab not in paper_order()]
    chosen = {lab: chosen[lab] for lab in order}
    aligned = align_scores({lab: r.scores() for lab, r in chosen.items()}, split="test")
    boot = paired_bootstrap(aligned.scores, aligned.labels, n=n_boot, seed=seed)
    per, per_table = None, None
    if by_corruption and "corruption" in aligned.items.columns and aligned.items["corruption"].nunique() > 1:
        per = per_group_bootstrap(aligned.scores, aligned.labels, aligned.items["corruption"].to_numpy(), n=n_boot, seed=seed)
        per_table = results_table(per, order=order)
    return BenchmarkReport(experiment, selection, boot, per, results_table(boot, order=order), per_table,
                           _seed_summary(runs, selection), aligned, chosen)


def write_report(report: BenchmarkReport, out_dir: str | Path, fmt: str = "md") -> Path:
    """Write ``<out_dir>/<experiment>.<ext>``; returns its path."""
    ext = {"md": "md", "html": "html", "latex": "tex"}[fmt] if fmt in FORMATS else None
    if ext is None:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{report.experiment}.{ext}"
    path.write_text(report.render(fmt), encoding="utf-8")
    return path
