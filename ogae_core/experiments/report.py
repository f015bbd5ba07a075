"""The paper's results table from finished runs: selection on validation, significance on test.

:func:`benchmark_report` reads one experiment of the run store, selects every row's
configuration on the validation split (:mod:`ogae_core.runs.selection`), aligns the
test scores of the selected runs (lowest seed of the selected configuration) and runs the
paper's paired bootstrap (:func:`ogae_core.evaluation.paired_bootstrap`): best model in bold,
models not significantly worse underlined (Bonferroni, alpha = 0.01). A per-corruption
breakdown and the mean +- std of the test metrics over the selected configuration's seeds
come with it. Nothing is typed in: every number is computed from ``scores.parquet`` and
``metrics.json``, except the paper's own numbers, which come from
``data_manifests/paper_tables_mnistc.yaml`` (:mod:`ogae_core.evaluation.paper`) and are
shown beside ours when the experiment is one of the paper's digit pairs.

``positive`` chooses the metric convention: ``"anomaly"`` (default) or ``"normal"`` (labels
flipped, scores negated; see :func:`ogae_core.evaluation.orient`). Selection on the validation
split always uses the stored anomaly-positive metrics (for AUROC, the default selection metric,
both conventions agree).
"""
from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ogae_core.evaluation.run_metrics import corruptions_over_seeds, run_test_metrics, seeds_beside_paper
from ogae_core.runs.selection import select_configurations, selected_runs

#: Title of the report's per-corruption table over seeds.
CORRUPTION_SEEDS_TITLE = "Test AUROC per corruption, over seeds (selected configurations)"
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
    positive : str
        The metric convention (class counted as positive).
    paper : pandas.DataFrame or None
        Ours beside the paper's table (:func:`~ogae_core.evaluation.paper.beside_paper`),
        ``attrs["table"]`` the paper's table number; ``None`` when the paper has no table for
        this task.
    conventions : pandas.DataFrame or None
        Candidate metric definitions ranked against the paper
        (:func:`~ogae_core.evaluation.paper.convention_check`), when requested.
    left_out : dict
        ``{run id: differences}`` of finished runs left out because they were trained under
        other method defaults than their configuration resolves to now
        (:func:`~ogae_core.experiments.resume.current_runs`); listed in the report.
    over_seeds : pandas.DataFrame or None
        ``mean ± sd`` over seeds of the selected configurations' test metrics in both
        conventions, the paper's values beside them
        (:func:`~ogae_core.evaluation.run_metrics.seeds_beside_paper`).
    corruption_seeds : pandas.DataFrame or None
        Test AUROC within each test corruption, ``mean ± sd`` over the selected configurations'
        seeds (:func:`~ogae_core.evaluation.run_metrics.corruptions_over_seeds`).
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
    positive: str = "anomaly"
    paper: pd.DataFrame | None = None
    conventions: pd.DataFrame | None = None
    left_out: dict = dataclasses.field(default_factory=dict)
    over_seeds: pd.DataFrame | None = None
    corruption_seeds: pd.DataFrame | None = None

    def _caption(self) -> str:
        from ogae_core.evaluation import results_caption

        return results_caption(self.experiment, self.aligned.labels, self.bootstrap,
                               self.selection.attrs.get("metric", "auroc"))

    def _paper_caption(self) -> str:
        return (f"Ours (the table above, positive class: {self.positive}) beside the paper's Table "
                f"{self.paper.attrs.get('table')} (data_manifests/paper_tables_mnistc.yaml). The paper does not "
                f"say which class its AUPR and AUROC30 count as positive (README: \"Metric conventions\").")

    def _left_out_note(self) -> str:
        ids = sorted(self.left_out)
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        return (f"Left out: {len(ids)} finished run(s) trained under other method defaults than their "
                f"configuration resolves to now ({shown}; {self.left_out[ids[0]][0]}). Rerun them in another "
                f"--runs-root, or move them away, to compare them.")

    def _over_seeds_title(self) -> str:
        table = self.paper.attrs.get("table") if self.paper is not None else None
        return "Over seeds, both conventions" + (f", beside the paper's Table {table}" if table else "")

    def _over_seeds_caption(self) -> str:
        return ("Test metrics of the selected configurations, mean ± sd over their seeds ((n=k): only k seeds have "
                "the value); AUPR and AUROC30 with anomalies positive, then with normals positive (\"normal +\")"
                + ("; the paper's single-run values stand beside both." if self.paper is not None else "."))

    def _conventions_caption(self) -> str:
        return ("Candidate AUPR / AUROC30 definitions on the selected runs' test scores against the paper's rows: "
                "gap = metric - AUROC, mean over the rows; gap_error = mean |our gap - the paper's gap|.")

    def render(self, fmt: str = "md") -> str:
        """The report as Markdown, HTML or LaTeX."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
        seeds = self.seeds.round(4)
        if fmt == "latex":
            parts = [self.table.to_latex(caption=self._caption())]
            if self.corruption_table is not None:
                parts.append(self.corruption_table.to_latex(caption=f"{self.experiment}: per test corruption"))
            if self.paper is not None:
                parts.append(_latex(self.paper.reset_index(), self._paper_caption()))
            if self.over_seeds is not None:
                parts.append(_latex(self.over_seeds, f"{self._over_seeds_title()}. {self._over_seeds_caption()}"))
            if self.corruption_seeds is not None:
                parts.append(_latex(self.corruption_seeds, CORRUPTION_SEEDS_TITLE))
            return "\n".join(parts)
        if fmt == "html":
            parts = [f"<h2>{html.escape(self.experiment)}</h2>", f"<p>{html.escape(self._caption())}</p>", self.table.to_html()]
            if self.left_out:
                parts.append(f"<p>{html.escape(self._left_out_note())}</p>")
            if self.paper is not None:
                parts += [f"<h3>Beside the paper's Table {html.escape(str(self.paper.attrs.get('table')))}</h3>",
                          f"<p>{html.escape(self._paper_caption())}</p>", self.paper.reset_index().to_html(index=False)]
            if self.corruption_table is not None:
                parts += ["<h3>Per test corruption</h3>", self.corruption_table.to_html()]
            parts += ["<h3>Test metrics over seeds (selected configurations)</h3>", seeds.to_html(index=False)]
            if self.over_seeds is not None:
                parts += [f"<h3>{html.escape(self._over_seeds_title())}</h3>",
                          f"<p>{html.escape(self._over_seeds_caption())}</p>", self.over_seeds.to_html(index=False)]
            if self.corruption_seeds is not None:
                parts += [f"<h3>{CORRUPTION_SEEDS_TITLE}</h3>", self.corruption_seeds.to_html(index=False)]
            if self.conventions is not None:
                parts += ["<h3>Metric conventions against the paper</h3>", f"<p>{html.escape(self._conventions_caption())}</p>",
                          self.conventions.round(3).to_html(index=False)]
            return "\n".join(parts)
        parts = [f"## {self.experiment}", "", self._caption(), "", self.table.to_markdown()]
        if self.left_out:
            parts += ["", self._left_out_note(), ""]
        if self.paper is not None:
            parts += [f"### Beside the paper's Table {self.paper.attrs.get('table')}", "", self._paper_caption(), "",
                      _markdown(self.paper.reset_index())]
        if self.corruption_table is not None:
            parts += ["### Per test corruption", "", self.corruption_table.to_markdown()]
        parts += ["### Test metrics over seeds (selected configurations)", "", _markdown(seeds), "",
                  "`test_tied_max`: the largest share of test items with one and the same score (worst seed); "
                  "`warnings`: collapse guards that fired in the selected runs (see `collapse_flags`).", ""]
        if self.over_seeds is not None:
            parts += [f"### {self._over_seeds_title()}", "", self._over_seeds_caption(), "",
                      _markdown(self.over_seeds)]
        if self.corruption_seeds is not None:
            parts += [f"### {CORRUPTION_SEEDS_TITLE}", "", _markdown(self.corruption_seeds)]
        if self.conventions is not None:
            parts += ["### Metric conventions against the paper", "", self._conventions_caption(), "",
                      _markdown(self.conventions.round(3)), ""]
        return "\n".join(parts)


def _markdown(frame: pd.DataFrame) -> str:
    """A plain Markdown table (no optional dependency)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _latex(frame: pd.DataFrame, caption: str) -> str:
    """A plain booktabs LaTeX table (no optional dependency)."""
    def esc(v) -> str:
        return "".join("\\" + c if c in "_&%#$" else c for c in str(v))

    lines = [r"\begin{table}", r"\centering", rf"\caption{{{esc(caption)}}}",
             r"\begin{tabular}{l" + "c" * (len(frame.columns) - 1) + "}", r"\toprule",
             " & ".join(esc(c) for c in frame.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(esc(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _seed_summary(runs: list, selection: pd.DataFrame, positive: str = "anomaly") -> pd.DataFrame:
    by_id = {r.run_id: r for r in runs}
    rows = []
    for row in selection.itertuples(index=False):
        tests = [run_test_metrics(by_id[rid], positive) for rid in row.run_ids]
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
                     n_boot: int = 1000, seed: int = 0, by_corruption: bool = True, positive: str = "anomaly",
                     paper: bool = True, conventions: bool = False) -> BenchmarkReport:
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
    positive : {"anomaly", "normal"}
        The metric convention of every table (the class counted as positive).
    paper : bool
        Put the paper's numbers beside ours when the paper has a table for this task.
    conventions : bool
        Also rank the candidate metric definitions against the paper's table
        (:func:`~ogae_core.evaluation.paper.convention_check`).

    Examples
    --------
    >>> rep = benchmark_report("runs", "mnistc-3v8-quick")  # doctest: +SKIP
    >>> print(rep.render("md"))  # doctest: +SKIP
    """
    from ogae_core.evaluation import align_scores, check_positive, paired_bootstrap, per_group_bootstrap, results_table
    from ogae_core.evaluation.paper import (
        beside_paper,
        convention_check,
        estimates,
        paper_table,
        paper_tables_mnistc,
        table_key_of_configs,
    )
    from ogae_core.experiments.resume import current_runs
    from ogae_core.runs import default_root, list_runs

    check_positive(positive)
    root = Path(runs_root) if runs_root is not None else default_root()
    runs, left_out = current_runs([r for r in list_runs(root, experiment) if r.has("scores.parquet")])
    if not runs:
        raise ValueError(f"no finished runs with scores in {root / experiment}"
                         + (f" trained under today's method defaults ({len(left_out)} left out)" if left_out else "")
                         + f"; make them with `ogae bench mnistc --preset quick --runs-root {root}`")
    selection = select_configurations(runs, metric)
    selection.attrs["metric"] = metric
    chosen = selected_runs(runs, metric)
    order = [lab for lab in paper_order() if lab in chosen] + [lab for lab in chosen if lab not in paper_order()]
    chosen = {lab: chosen[lab] for lab in order}
    aligned = align_scores({lab: r.scores() for lab, r in chosen.items()}, split="test")
    boot = paired_bootstrap(aligned.scores, aligned.labels, n=n_boot, seed=seed, positive=positive)
    per, per_table = None, None
    if by_corruption and "corruption" in aligned.items.columns and aligned.items["corruption"].nunique() > 1:
        per = per_group_bootstrap(aligned.scores, aligned.labels, aligned.items["corruption"].to_numpy(), n=n_boot,
                                  seed=seed, positive=positive)
        per_table = results_table(per, order=order)
    key = table_key_of_configs(r.config for r in runs) if paper or conventions else None
    side, ranked = None, None
    theirs = None
    if key is not None and paper:
        t = paper_tables_mnistc()["tables"][key]
        theirs = paper_table(t["normal"], t["anomaly"])
        side = beside_paper(estimates(boot), theirs)
        side.attrs.update({"table": t["table"], "key": key})
    if key is not None and conventions:
        ranked = convention_check({key: (aligned.scores, aligned.labels)})
    ordered = _in_order(selection, order)
    return BenchmarkReport(experiment, selection, boot, per, results_table(boot, order=order), per_table,
                           _seed_summary(runs, selection, positive), aligned, chosen, positive, side, ranked, left_out,
                           seeds_beside_paper(runs, ordered, theirs),
                           corruptions_over_seeds(runs, ordered) if per is not None else None)


def _in_order(selection: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """``selection``'s rows in the table order ``order`` (labels not in it last)."""
    rank = {label: i for i, label in enumerate(order)}
    return selection.iloc[sorted(range(len(selection)), key=lambda i: rank.get(selection["label"].iloc[i], len(rank)))]


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


def convention_check_runs(runs_root: str | Path | None, experiments: list[str], *, metric: str = "auroc") -> pd.DataFrame:
    """:func:`~ogae_core.evaluation.paper.convention_check` on the validation-selected runs of
    finished MNIST-C experiments (all their rows together).

    Each experiment's task picks the paper's table (3 vs 8: Table I, 3 vs 4: Table IV); an
    experiment of another task raises ``ValueError``.

    Examples
    --------
    >>> convention_check_runs("runs", ["mnistc-3v8-reduced", "mnistc-3v4-reduced"])  # doctest: +SKIP
    """
    from ogae_core.evaluation import align_scores
    from ogae_core.evaluation.paper import convention_check, table_key_of_configs
    from ogae_core.runs import default_root, list_runs

    root = Path(runs_root) if runs_root is not None else default_root()
    tables = {}
    for experiment in experiments:
        runs = [r for r in list_runs(root, experiment) if r.has("scores.parquet")]
        if not runs:
            raise ValueError(f"no finished runs with scores in {root / experiment}")
        key = table_key_of_configs(r.config for r in runs)
        if key is None:
            raise ValueError(f"{experiment}: the paper has no table for its task")
        aligned = align_scores({lab: r.scores() for lab, r in selected_runs(runs, metric).items()}, split="test")
        tables[key] = (aligned.scores, aligned.labels)
    return convention_check(tables)
