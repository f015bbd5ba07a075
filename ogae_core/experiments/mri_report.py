"""The brain-MRI report of one experiment: Tables II and III and the secondary analyses, from the run store.

:func:`mri_frames` gathers the tidy per-subject frames of an experiment's runs (one row per
method, seed and subject); :func:`mri_report` turns them into :class:`MriReport` (the kind's
``report`` hook, used by ``ogae report``, notebook 04 and the README tables).

Examples
--------
>>> mri_report("/nonexistent", "mri-smoke")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
ValueError: experiment 'mri-smoke' has no finished MRI run in /nonexistent
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ogae_core.evaluation.mri import AGGREGATIONS, PAPER_ORDER
from ogae_core.evaluation.mri_tables import (
    PAPER_METRICS,
    MriTable,
    aggregation_table,
    classification_table,
    localization_table,
    secondary_table,
    size_tables,
)

__all__ = ["PAPER_ORDER", "MriFrames", "MriReport", "classification_stats", "current_mri_runs", "fig3", "frame_markdown", "mri_frames",
           "mri_report", "mri_runs", "one_run_per_method", "paper_comparison", "paper_tables", "site_comparison",
           "site_experiment", "subject_maps"]

FORMATS = ("md", "html", "latex")


@dataclass
class MriFrames:
    """Tidy frames of an experiment: ``subjects`` (scores.parquet rows), ``voxels``
    (voxel_metrics), ``lesions`` and ``pooled`` (metrics.json), each with ``method, seed, run_id``."""

    subjects: pd.DataFrame
    voxels: pd.DataFrame
    lesions: pd.DataFrame
    pooled: pd.DataFrame
    runs: list
    #: ``{run id: differences}`` of finished runs left out: trained under other method defaults
    #: than their configuration resolves to now (:func:`~ogae_core.experiments.resume.current_runs`).
    left_out: dict = field(default_factory=dict)


def mri_runs(runs_root: str | Path | None, experiment: str) -> list:
    """Finished runs of the MRI kind in ``experiment`` (``ValueError`` when none), all of them:
    :func:`~ogae_core.experiments.resume.current_runs` separates those trained under other method
    defaults."""
    from ogae_core.runs import default_root, list_runs

    root = Path(runs_root) if runs_root is not None else default_root()
    runs = [r for r in list_runs(root, experiment) if r.kind == "mri"]
    if not runs:
        raise ValueError(f"experiment {experiment!r} has no finished MRI run in {root}")
    return runs


def current_mri_runs(runs_root: str | Path | None, experiment: str) -> tuple[list, dict[str, list[str]]]:
    """:func:`mri_runs` split by :func:`~ogae_core.experiments.resume.current_runs`; ``ValueError``
    when every run was trained under other method defaults."""
    from ogae_core.experiments.resume import current_runs

    runs, left_out = current_runs(mri_runs(runs_root, experiment))
    if not runs:
        raise ValueError(f"every MRI run of experiment {experiment!r} was trained under other method defaults "
                         f"than its configuration resolves to now ({len(left_out)} left out); rerun them in "
                         "another experiment")
    return runs, left_out


def mri_frames(runs_root: str | Path | None, experiment: str) -> MriFrames:
    """Read every MRI run of ``experiment`` into :class:`MriFrames`."""
    runs, left_out = current_mri_runs(runs_root, experiment)
    subjects, voxels, lesions, pooled = [], [], [], []
    for r in runs:
        tag = {"method": r.label, "seed": r.seed, "run_id": r.run_id}
        subjects.append(r.scores().assign(**tag))
        for name, out in (("voxel_metrics.parquet", voxels), ("lesions.parquet", lesions)):
            if r.has(name):
                out.append(pd.read_parquet(r.path / name).assign(**tag))
        p = r.metrics.get("pooled", {})
        pooled.append({**tag, "pooled_aupr": p.get("aupr"), "pooled_best_dice": p.get("best_dice")})
    cat = lambda parts: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()  # noqa: E731
    return MriFrames(cat(subjects), cat(voxels), cat(lesions), pd.DataFrame(pooled), runs, left_out)


def frame_markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (index first; no extra dependency).

    Examples
    --------
    >>> print(frame_markdown(pd.DataFrame({"q98": ["0.90"]}, index=["ogae-loc"])), end="")
    | Method | q98 |
    |:---|:---:|
    | ogae-loc | 0.90 |
    """
    if frame.empty:
        return "(no data)\n"
    if isinstance(frame.index, pd.RangeIndex):  # no row names: the columns say it all
        frame = frame.set_index(frame.columns[0])
    cols = [str(c) for c in frame.columns]
    head = "Method" if frame.index.name in (None, "method") else str(frame.index.name)
    lines = ["| " + " | ".join([head, *cols]) + " |", "|" + "|".join([":---"] + [":---:"] * len(cols)) + "|"]
    for idx, row in frame.iterrows():
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.tolist()]
        lines.append("| " + " | ".join([str(idx), *cells]).replace("\n", " ") + " |")
    return "\n".join(lines) + "\n"


def _order(methods: Sequence[str]) -> list[str]:
    return [m for m in PAPER_ORDER if m in methods] + sorted(m for m in methods if m not in PAPER_ORDER)


@dataclass
class MriReport:
    """Tables II (classification) and III (localization, brain and white matter) and the secondary analyses.

    ``aggregations`` maps ``AUROC``, ``AUROC30`` and ``AUPR`` to Table II's metric under every
    subject-score rule (:func:`~ogae_core.evaluation.mri_tables.aggregation_table`, side by side).
    """

    experiment: str
    classification: MriTable
    localization: MriTable
    localization_wm: MriTable | None
    aggregations: dict
    by_load: pd.DataFrame
    by_lesion_size: pd.DataFrame
    secondary: pd.DataFrame
    frames: MriFrames
    #: Tables II and III with the site confound on and off (:func:`site_comparison`), when the
    #: store holds the same cohort with the other ``site_balanced`` setting.
    site: pd.DataFrame | None = None
    site_experiment: str | None = None

    def sections(self) -> list[tuple[str, str, object]]:
        """``(title, caption, table)`` in display order."""
        out = [("Table II — classification (test controls vs patients)", self.classification.caption,
                self.classification.table),
               ("Table III — localization", self.localization.caption, self.localization.table)]
        if self.localization_wm is not None:
            out.append(("Table III (white matter only) — localization restricted to white matter",
                        self.localization_wm.caption, self.localization_wm.table))
        out += [("Table II beside the paper", "Ours: mean ± sd over training seeds on the simulated cohort.",
                 paper_comparison(self, "classification")),
                ("Table III beside the paper", "Ours: brain minus ventricles, lesion label 1 by default.",
                 paper_comparison(self, "localization")),
                ("Classification statistics (paired bootstrap over subjects)",
                 "Table II's bold / underline: bootstrap mean and 95 % interval of each metric, p-value against the "
                 "best (Bonferroni-adjusted), on subject scores averaged over training seeds.",
                 classification_stats(self.classification.stats))]
        for metric, table in self.aggregations.items():
            out.append((f"Table II variants: classification {metric} by subject-score rule",
                        "The paper: the choice (2 % quantile, mean or median; with or without the ventricles) "
                        "changes little. spread = largest minus smallest rule mean.", table))
        out += [
                ("Localization AUPR by lesion-load tercile", "Patients split in thirds by lesion load.", self.by_load),
                ("Lesion-wise detection rate by lesion size",
                 "A connected lesion is detected when one voxel is above the patient's 98 % quantile.",
                 self.by_lesion_size),
                ("Secondary (peers') metrics", "Pooled over all patients' voxels; best Dice at the oracle threshold.",
                 self.secondary),
                ("Localization statistics (Kruskal–Wallis + Dunn, and the paired Friedman + Wilcoxon)", "",
                 self.localization.stats.round(4))]
        if self.frames.left_out:
            out.append(("Runs left out", "Finished runs trained under other method defaults than their configuration "
                        "resolves to now; rerun them in another --runs-root (or move them away) to compare them.",
                        pd.DataFrame([{"run_id": k, "differences": "; ".join(v)}
                                      for k, v in sorted(self.frames.left_out.items())])))
        if self.site is not None:
            out.append((f"Site confound on ({self.experiment}) and off ({self.site_experiment})",
                        "Off: test controls and patients on the same sites (--site-balanced); training controls "
                        "on their own sites in both. Mean ± sd over training seeds.", self.site))
        return out

    def render(self, fmt: str = "md") -> str:
        """The report as Markdown, HTML or LaTeX."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
        parts = []
        for title, caption, table in self.sections():
            if fmt == "md":
                body = table.to_markdown() if not isinstance(table, pd.DataFrame) else frame_markdown(table)
                parts.append(f"### {title}\n\n{caption}\n\n{body}\n")
            elif fmt == "html":
                body = table.to_html()
                parts.append(f"<h3>{html.escape(title)}</h3><p>{html.escape(caption)}</p>{body}")
            else:
                body = table.to_latex() if not isinstance(table, pd.DataFrame) else table.to_latex()
                parts.append(f"% {title}\n{body}")
        head = f"# {self.experiment}\n\n" if fmt == "md" else ""
        return head + "\n".join(parts)


def classification_stats(stats: pd.DataFrame) -> pd.DataFrame:
    """The paired-bootstrap columns of Table II's statistics, rounded (empty stays empty).

    Examples
    --------
    >>> classification_stats(pd.DataFrame()).empty
    True
    """
    cols = ["metric", "method", "estimate", "boot_mean", "ci_low", "ci_high", "is_best", "p_adjusted",
            "tied_with_best", "n_resamples", "n_comparisons"]
    if stats.empty:
        return stats
    return stats[[c for c in cols if c in stats.columns]].round(4).reset_index(drop=True)


def _cohort_identity(run) -> tuple[str, dict]:
    return str(run.config.get("cohort")), dict(run.config.get("cohort_options") or {})


def site_experiment(runs_root: str | Path | None, experiment: str) -> str | None:
    """The experiment of the store with the same cohort and options as ``experiment`` but the
    other ``site_balanced`` setting (site confound off resp. on), or None.

    Examples
    --------
    >>> site_experiment("/nonexistent", "mri-default")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: experiment 'mri-default' has no finished MRI run in /nonexistent
    """
    from ogae_core.runs import default_root, list_runs

    cohort, options = _cohort_identity(mri_runs(runs_root, experiment)[0])
    balanced = bool(options.pop("site_balanced", False))
    root = Path(runs_root) if runs_root is not None else default_root()
    for r in list_runs(root):
        if r.kind != "mri" or r.experiment == experiment:
            continue
        c, o = _cohort_identity(r)
        if c == cohort and bool(o.pop("site_balanced", False)) != balanced and o == options:
            return r.experiment
    return None


def _value_text(table: MriTable, method: str, metric: str, digits: int) -> str:
    v = table.values[(table.values.method == method) & (table.values.metric == metric)]
    if v.empty or not np.isfinite(v["mean"].iloc[0]):
        return "–"
    mean, sd = float(v["mean"].iloc[0]), float(v["sd"].iloc[0])
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if np.isfinite(sd) else "")


def site_comparison(on: "MriReport", off: "MriReport") -> pd.DataFrame:
    """Tables II (classification AUROC, AUPR) and III (localization AUROC, AUPR) with the site
    confound on and off, side by side: ``mean ± sd`` over training seeds, one row per method of
    either report (``–`` where a report lacks the method).
    """
    methods = _order(list(dict.fromkeys([*on.classification.values.method, *off.classification.values.method])))
    rows = {}
    for m in methods:
        row = {}
        for task, attr in (("II", "classification"), ("III", "localization")):
            for metric in ("auroc", "aupr"):
                digits = 3 if (attr, metric) == ("localization", "aupr") else 2
                for state, rep in (("on", on), ("off", off)):
                    row[f"{task} {metric.upper()} site {state}"] = _value_text(getattr(rep, attr), m, metric, digits)
        rows[m] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def mri_report(runs_root: str | Path | None, experiment: str, *, n_boot: int = 1000, seed: int = 0,
               site: str | None = "auto") -> MriReport:
    """The report of one MRI experiment (see :class:`MriReport`).

    ``site``: the experiment with the site confound switched the other way, for
    :func:`site_comparison` (``"auto"``: found by :func:`site_experiment`; None: no comparison).
    """
    report = _single_report(runs_root, experiment, n_boot=n_boot, seed=seed)
    other = site_experiment(runs_root, experiment) if site == "auto" else site
    if other:
        rep_other = _single_report(runs_root, other, n_boot=n_boot, seed=seed)
        balanced = bool(report.frames.runs[0].config.get("cohort_options", {}).get("site_balanced"))
        on, off = (rep_other, report) if balanced else (report, rep_other)
        report.site, report.site_experiment = site_comparison(on, off), other
    return report


def _single_report(runs_root: str | Path | None, experiment: str, *, n_boot: int, seed: int) -> MriReport:
    f = mri_frames(runs_root, experiment)
    order = _order(list(pd.unique(f.subjects["method"])))
    rules = sorted({str(r.config.get("evaluation", {}).get("aggregation", "q98")) for r in f.runs})
    cls = classification_table(f.subjects, n_boot=n_boot, seed=seed, order=order,
                               rule=" / ".join(rules) + " (see evaluation.mri.AGGREGATIONS)")
    loc = localization_table(f.voxels, order=order)
    wm = None
    if "wm_aupr" in f.voxels.columns and f.voxels["wm_aupr"].notna().any():
        wm = localization_table(f.voxels, prefix="wm_", order=order, what="white matter (minus ventricles)")
    aggs = {metric.upper(): aggregation_table(f.subjects, list(AGGREGATIONS), metric=metric, order=order)
            for metric in PAPER_METRICS}
    by_load, by_size = size_tables(f.voxels, f.lesions, order=order)
    secondary = secondary_table(f.pooled, f.voxels, order=order)
    return MriReport(experiment, cls, loc, wm, aggs, by_load, by_size, secondary, f)


def paper_tables() -> dict:
    """The paper's Tables II and III (``data_manifests/paper_tables_mri.yaml``), checked.

    Examples
    --------
    >>> t = paper_tables()
    >>> t["localization"]["values"]["ogae-loc"], t["columns"]
    ([0.61, 0.72, 0.066], ['auroc', 'auroc30', 'aupr'])
    """
    from ogae_core.data.manifests import load_manifest

    m = load_manifest("paper_tables_mri")
    if m.get("columns") != ["auroc", "auroc30", "aupr"]:
        raise ValueError(f"paper_tables_mri.yaml: columns must be [auroc, auroc30, aupr]; got {m.get('columns')}")
    for task in ("classification", "localization"):
        for method, vals in m[task]["values"].items():
            if method not in m["methods"] or len(vals) != 3 or not all(0 <= v <= 1 for v in vals):
                raise ValueError(f"paper_tables_mri.yaml: {task} row {method!r} must name a method and hold "
                                 f"three values in [0, 1]; got {vals}")
    return m


def paper_comparison(report: "MriReport", task: str = "localization") -> pd.DataFrame:
    """Ours (mean ± sd over seeds) beside the paper's numbers, one row per method of either.

    ``task``: ``classification`` (Table II) or ``localization`` (Table III).
    """
    if task not in ("classification", "localization"):
        raise ValueError(f"task must be 'classification' or 'localization'; got {task!r}")
    paper = paper_tables()
    ours = (report.classification if task == "classification" else report.localization).table
    rows = {}
    methods = [m for m in ours.models if m != "chance"]
    for method in _order(list(dict.fromkeys(methods + list(paper[task]["values"])))):
        row = {}
        for k, metric in enumerate(paper["columns"]):
            col = next((c for c in ours.columns if c[1].lower().startswith(metric + " ") or c[1].lower() == metric),
                       None)
            cell = ours.cells.get((method, col)) if col is not None else None
            row[f"{metric.upper()} ours"] = cell.text if cell is not None else "–"
            vals = paper[task]["values"].get(method)
            row[f"{metric.upper()} paper"] = f"{vals[k]:g}" if vals else "–"
        rows[method] = row
    rows["chance"] = {f"{m.upper()} {w}": ("0.5" if m != "aupr" else
                                           (f"{paper[task]['chance_aupr']:g}" if w == "paper" else
                                            ours.cells[("chance", ours.columns[2])].text))
                      for m in paper["columns"] for w in ("ours", "paper")}
    return pd.DataFrame.from_dict(rows, orient="index")


def one_run_per_method(runs: Sequence) -> dict:
    """``{label: run}`` with the lowest seed of each label, in the paper's row order."""
    best: dict = {}
    for r in sorted(runs, key=lambda r: (r.seed if r.seed is not None else 0, r.run_id)):
        best.setdefault(r.label, r)
    return {m: best[m] for m in _order(list(best))}


def subject_maps(runs: Sequence, subject_id: str) -> dict:
    """Each run's anomaly map of ``subject_id`` on the full grid: ``{label: float32 array}``."""
    import nibabel as nib
    import numpy as np

    out = {}
    for label, r in one_run_per_method(runs).items():
        scores = r.scores().set_index("subject_id")
        if subject_id in scores.index and "map" in scores.columns:
            out[label] = np.asarray(nib.load(r.path / scores.loc[subject_id, "map"]).dataobj, dtype=np.float32)
    return out


def fig3(runs_root: str | Path | None, experiment: str, path: str | Path, subject: str | None = None,
         quantile: float = 0.02) -> Path:
    """Write a Fig. 3-like PNG: one axial slice of a patient (default: the median lesion load),
    T1 + ground truth, each method's map, and the maps thresholded at the top ``quantile``.

    The slice is the one with most lesion voxels (the central slice of a slab preset otherwise).
    The cohort must be on this machine (``ogae data mri --cohort NAME``).
    """
    import numpy as np

    from ogae_core.data.mri import load_cohort
    from ogae_core.viz.mri import fig3_png, volume_slice

    runs, _ = current_mri_runs(runs_root, experiment)
    first = runs[0]
    scores = first.scores()
    patients = scores[scores.label == 1].sort_values("lesion_cm3")
    if subject is None:
        if patients.empty:
            raise ValueError(f"experiment {experiment!r} has no patient to show")
        subject = str(patients.iloc[len(patients) // 2]["subject_id"])
    cohort = load_cohort(first.config["cohort"], build=False, **(first.config.get("cohort_options") or {}))
    vols = cohort.subject(subject).load(verify=False)
    labels = first.config.get("evaluation", {}).get("lesion_labels", [1])
    lesion = np.isin(vols.labels, labels) & vols.brain
    per_slice = lesion.sum(axis=(0, 1))
    z = int(np.argmax(per_slice)) if per_slice.any() else vols.t1.shape[2] // 2
    maps = {k: volume_slice(m, "axial", vols.z_start + z) for k, m in subject_maps(runs, subject).items()}
    title = (f"{experiment}: patient {subject} ({vols.lesion_cm3:.1f} cm³ of lesions), axial z = "
             f"{float(vols.affine[2, 3] + z):.0f} mm; bottom: top {quantile:.0%} of each map")
    return fig3_png(path, volume_slice(vols.t1, "axial", z), volume_slice(lesion, "axial", z), maps,
                    quantile=quantile, title=title)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ogae_core.experiments.mri_report --experiment E [--runs-root R] [--fig3 PNG] [--out MD]``."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m ogae_core.experiments.mri_report", description=main.__doc__)
    p.add_argument("--experiment", required=True)
    p.add_argument("--runs-root", default=None)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--fig3", default=None, help="write a Fig. 3-like PNG here")
    p.add_argument("--subject", default=None, help="patient of the figure (default: median lesion load)")
    p.add_argument("--out", default=None, help="write the Markdown report here (default: print it)")
    args = p.parse_args(argv)
    if args.fig3:
        print(f"wrote {fig3(args.runs_root, args.experiment, args.fig3, args.subject)}")
    text = mri_report(args.runs_root, args.experiment, n_boot=args.n_boot).render("md")
    if args.out:
        from ogae_core.atomic import atomic_write_file

        atomic_write_file(Path(args.out), lambda tmp: tmp.write_text(text))
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
