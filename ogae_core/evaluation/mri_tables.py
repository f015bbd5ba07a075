"""Tables II and III of the paper (brain MRI) from tidy per-subject frames, with their statistics.

Inputs are long frames with one row per (method, seed, subject) -- see
:mod:`ogae_core.experiments.mri_report`, which reads them from the run store.

* :func:`classification_table` (Table II): AUROC, AUROC30, AUPR of the subject scores
  (patients positive), mean ± sd over training seeds. Bold / underline come from the paper's
  paired bootstrap over subjects (1,000 resamples, Bonferroni, alpha 0.01) run on each
  method's subject scores averaged over seeds (one score per subject and method, so that the
  resampling is paired).
* :func:`localization_table` (Table III): per-patient voxel AUROC, AUROC30, AUPR averaged over
  patients (mean ± sd over seeds). Bold / underline from Kruskal–Wallis + Dunn (Bonferroni,
  0.01) on the per-patient values (averaged over seeds), as the paper. That test treats the
  methods as independent samples although all are measured on the same patients; the paired
  alternative -- Friedman's omnibus test and Wilcoxon signed-rank tests against the best
  (Bonferroni) -- is computed beside it (:attr:`MriTable.stats`).
* :func:`aggregation_table`, :func:`size_tables`, :func:`secondary_table`: the classification
  AUROC of every subject-score rule, AUPR by lesion-load tercile and detection rate by lesion
  size, pooled voxel AUPRC and best Dice.

Every table lists the columns in the paper's order (AUROC, AUROC30, AUPR) and a ``chance`` row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from ogae_core.evaluation.metrics import all_metrics
from ogae_core.evaluation.stats import SIGNIFICANCE_LEVEL, bonferroni, kruskal_dunn, paired_bootstrap
from ogae_core.evaluation.tables import Cell, ResultsTable, mean_sd

__all__ = ["PAPER_METRICS", "MriTable", "aggregation_table", "classification_table", "localization_table",
           "mean_sd", "secondary_table", "size_tables"]

#: The paper's column order.
PAPER_METRICS = ("auroc", "auroc30", "aupr")
HEADERS = {"auroc": "AUROC", "auroc30": "AUROC30", "aupr": "AUPR", "best_dice": "best Dice"}


@dataclass
class MriTable:
    """A formatted table (:class:`~ogae_core.evaluation.tables.ResultsTable`), its numbers and statistics.

    Attributes
    ----------
    table : ResultsTable
        Render with ``to_markdown()``, ``to_html()``, ``to_latex()``.
    values : pandas.DataFrame
        ``method, metric, mean, sd, n_seeds`` (numbers behind the cells).
    stats : pandas.DataFrame
        The tests: ``metric, method, is_best, p_adjusted, tied_with_best`` (+ paired tests).
    caption : str
    """

    table: ResultsTable
    values: pd.DataFrame
    stats: pd.DataFrame = field(default_factory=pd.DataFrame)
    caption: str = ""

    def to_markdown(self) -> str:
        return self.table.to_markdown()


def _digits(metric: str, chance: float | None) -> int:
    return 3 if metric == "aupr" and chance is not None and chance < 0.05 else 2


def _build(per_seed: pd.DataFrame, stats: pd.DataFrame, metrics: Sequence[str], order: Sequence[str],
           chance: dict[str, float], caption: str) -> MriTable:
    """Assemble an :class:`MriTable` from per-(method, seed) metric values and per-(metric, method) stats."""
    columns = [(None, f"{HEADERS.get(m, m)} ({chance[m]:.3g})" if m == "aupr" and m in chance else HEADERS.get(m, m))
               for m in metrics]
    cells, rows, source = {}, [], []
    for method in order:
        sub = per_seed[per_seed.method == method]
        for (_, head), metric in zip(columns, metrics):
            vals = sub[metric].to_numpy(float)
            st = stats[(stats.metric == metric) & (stats.method == method)] if len(stats) else stats
            best = bool(st["is_best"].iloc[0]) if len(st) else False
            tied = bool(st["tied_with_best"].iloc[0]) if len(st) else False
            cells[(method, (None, head))] = Cell(mean_sd(vals, _digits(metric, chance.get("aupr"))), best, tied)
            mean = float(np.nanmean(vals)) if np.isfinite(vals).any() else np.nan
            rows.append({"method": method, "metric": metric, "mean": mean,
                         "sd": float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else np.nan,
                         "n_seeds": int(np.isfinite(vals).sum())})
            source.append({"model": method, "metric": head, "estimate": mean, "is_best": best, "tied_with_best": tied,
                           "ci_low": np.nan, "ci_high": np.nan})
    if chance:
        for (_, head), metric in zip(columns, metrics):
            cells[("chance", (None, head))] = Cell(f"{chance[metric]:.{_digits(metric, chance.get('aupr'))}f}")
            source.append({"model": "chance", "metric": head, "estimate": chance[metric], "is_best": False,
                           "tied_with_best": False, "ci_low": np.nan, "ci_high": np.nan})
    models = list(order) + (["chance"] if chance else [])
    table = ResultsTable(models, columns, cells, pd.DataFrame(source))
    return MriTable(table, pd.DataFrame(rows), stats, caption)


def _order(frame: pd.DataFrame, order: Sequence[str] | None) -> list[str]:
    present = list(pd.unique(frame["method"]))
    if order is None:
        return present
    return [m for m in order if m in present] + [m for m in present if m not in order]


def classification_table(subjects: pd.DataFrame, *, score: str = "score", n_boot: int = 1000, seed: int = 0,
                         alpha: float = SIGNIFICANCE_LEVEL, order: Sequence[str] | None = None,
                         rule: str = "q98 of the anomaly map without the ventricles") -> MriTable:
    """Table II: subject classification (test controls vs patients).

    Parameters
    ----------
    subjects : pandas.DataFrame
        ``method, seed, subject_id, label`` (1 = patient) and the ``score`` column.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.zeros(10), np.ones(10)]
    >>> rows = [{"method": m, "seed": s, "subject_id": i, "label": y[i], "score": y[i] * g + rng.normal()}
    ...         for m, g in (("good", 3.0), ("bad", 0.0)) for s in (0, 1) for i in range(20)]
    >>> t = classification_table(pd.DataFrame(rows), n_boot=200)
    >>> t.table.models, t.table.cells[("good", (None, "AUROC"))].bold
    (['good', 'bad', 'chance'], True)
    """
    need = {"method", "seed", "subject_id", "label", score}
    if need - set(subjects.columns):
        raise ValueError(f"subject frame lacks column(s) {sorted(need - set(subjects.columns))}")
    order = _order(subjects, order)
    per_seed = []
    for (method, s), g in subjects.groupby(["method", "seed"], sort=False):
        per_seed.append({"method": method, "seed": s, **all_metrics(g["label"].to_numpy(int), g[score].to_numpy(float))})
    per_seed = pd.DataFrame(per_seed)
    wide = subjects.pivot_table(index="subject_id", columns="method", values=score, aggfunc="mean")
    labels = subjects.groupby("subject_id")["label"].first().loc[wide.index].to_numpy(int)
    wide = wide[[m for m in order if m in wide.columns]].dropna(axis=0)
    stats = pd.DataFrame()
    if wide.shape[1] >= 1:
        boot = paired_bootstrap({m: wide[m].to_numpy() for m in wide.columns}, labels, n=n_boot, seed=seed,
                                metrics=PAPER_METRICS, alpha=alpha)
        stats = boot.rename(columns={"model": "method"})
    n_pat, n_ctl = int(labels.sum()), int(len(labels) - labels.sum())
    caption = (f"Classification, {n_ctl} test controls vs {n_pat} patients (patients positive); subject score = "
               f"{rule}; mean ± sd over training seeds. Bold: best (highest bootstrap mean); underlined: not "
               f"significantly worse (paired bootstrap over subjects, {n_boot} resamples, on subject scores "
               f"averaged over seeds; Bonferroni, p < {alpha}). Chance AUPR = share of patients.")
    return _build(per_seed, stats, PAPER_METRICS, order, {"auroc": 0.5, "auroc30": 0.5, "aupr": n_pat / len(labels)},
                  caption)


def _paired_tests(wide: pd.DataFrame, best: str, alpha: float) -> tuple[float, dict[str, float]]:
    """Friedman p-value (nan with < 3 methods) and Bonferroni-adjusted Wilcoxon p-values vs ``best``."""
    from scipy import stats

    friedman = np.nan
    if wide.shape[1] >= 3 and len(wide) >= 2:
        try:
            friedman = float(stats.friedmanchisquare(*[wide[c].to_numpy() for c in wide.columns]).pvalue)
        except ValueError:
            friedman = np.nan
    raw = {}
    for c in wide.columns:
        if c == best:
            continue
        d = wide[c].to_numpy() - wide[best].to_numpy()
        raw[c] = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    adj = dict(zip(raw, bonferroni(list(raw.values())))) if raw else {}
    return friedman, adj


def localization_table(voxels: pd.DataFrame, *, prefix: str = "", alpha: float = SIGNIFICANCE_LEVEL,
                       order: Sequence[str] | None = None, what: str = "brain minus ventricles") -> MriTable:
    """Table III: per-patient voxel localization, averaged over patients.

    Parameters
    ----------
    voxels : pandas.DataFrame
        ``method, seed, subject_id`` and ``<prefix>auroc, <prefix>auroc30, <prefix>aupr,
        <prefix>prevalence`` (``prefix="wm_"``: restricted to white matter).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rows = [{"method": m, "seed": 0, "subject_id": i, "auroc": b + rng.normal(0, .02), "auroc30": b,
    ...          "aupr": b / 10 + rng.normal(0, .001), "prevalence": 0.01}
    ...         for m, b in (("a", 0.9), ("b", 0.5), ("c", 0.52)) for i in range(12)]
    >>> t = localization_table(pd.DataFrame(rows))
    >>> t.table.cells[("a", (None, "AUROC"))].bold, t.table.cells[("b", (None, "AUROC"))].underline
    (True, False)
    """
    cols = [f"{prefix}{m}" for m in PAPER_METRICS]
    need = {"method", "seed", "subject_id", f"{prefix}prevalence", *cols}
    if need - set(voxels.columns):
        raise ValueError(f"voxel-metrics frame lacks column(s) {sorted(need - set(voxels.columns))}")
    order = _order(voxels, order)
    v = voxels[["method", "seed", "subject_id", *cols]].rename(columns=dict(zip(cols, PAPER_METRICS)))
    per_seed = v.groupby(["method", "seed"], sort=False)[list(PAPER_METRICS)].mean().reset_index()
    per_patient = v.groupby(["method", "subject_id"], sort=False)[list(PAPER_METRICS)].mean().reset_index()
    rows = []
    for metric in PAPER_METRICS:
        wide = per_patient.pivot(index="subject_id", columns="method", values=metric)
        wide = wide[[m for m in order if m in wide.columns]].dropna(axis=0)
        means = wide.mean()
        best = str(means.idxmax()) if len(means) else None
        kw_p, dunn = np.nan, None
        if wide.shape[1] >= 2 and wide.to_numpy().std() > 0:
            res = kruskal_dunn({m: wide[m].to_numpy() for m in wide.columns}, alpha=alpha)
            kw_p, dunn = res.pvalue, res.dunn
        friedman, wilcoxon = _paired_tests(wide, best, alpha) if best is not None else (np.nan, {})
        for m in wide.columns:
            is_best = m == best
            p_dunn = np.nan if is_best or dunn is None else float(dunn.loc[m, best])
            sig = bool(not is_best and (np.isfinite(p_dunn) and p_dunn < alpha) and kw_p < alpha)
            rows.append({"metric": metric, "method": m, "mean": float(means[m]), "is_best": is_best,
                         "kruskal_p": kw_p, "p_adjusted": p_dunn, "significant": sig,
                         "tied_with_best": bool(not is_best and not sig), "friedman_p": friedman,
                         "wilcoxon_p_adjusted": wilcoxon.get(m, np.nan),
                         "wilcoxon_significant": bool(wilcoxon.get(m, 1.0) < alpha), "n_patients": int(len(wide))})
    stats = pd.DataFrame(rows)
    prevalence = float(voxels.groupby("subject_id")[f"{prefix}prevalence"].first().mean())
    caption = (f"Localization over the {what}, per patient (lesion voxels positive), averaged over "
               f"{per_patient.subject_id.nunique()} patients; mean ± sd over training seeds. Bold: best mean; "
               f"underlined: not significantly different from the best (Kruskal–Wallis + Dunn, Bonferroni, "
               f"p < {alpha}, on per-patient values averaged over seeds, as the paper; this test ignores that every "
               f"method is measured on the same patients, so Friedman + Wilcoxon signed-rank vs the best are in the "
               f"statistics table). Chance AUPR = mean lesion prevalence {prevalence:.4f}.")
    return _build(per_seed, stats, PAPER_METRICS, order, {"auroc": 0.5, "auroc30": 0.5, "aupr": prevalence}, caption)


def _simple(frame: pd.DataFrame, columns: Sequence[str], order: Sequence[str], digits: int = 2) -> pd.DataFrame:
    """``method`` × columns of ``mean ± sd`` over seeds (strings)."""
    out = {}
    for m in order:
        sub = frame[frame.method == m]
        out[m] = {c: mean_sd(sub[c].to_numpy(float), digits) for c in columns if c in sub}
    return pd.DataFrame.from_dict(out, orient="index")[list(columns)]


def aggregation_table(subjects: pd.DataFrame, aggregations: Sequence[str], *, metric: str = "auroc",
                      order: Sequence[str] | None = None) -> pd.DataFrame:
    """Classification ``metric`` of every subject-score rule (columns ``score_<rule>``), mean ± sd
    over seeds, side by side, and a last column ``spread``: the largest minus the smallest of the
    rules' seed means (how much the choice of rule changes the method's result).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.zeros(8), np.ones(8)]
    >>> rows = [{"method": "m", "seed": s, "subject_id": i, "label": y[i], "score_a": y[i] + rng.normal(),
    ...          "score_b": rng.normal()} for s in (0, 1) for i in range(16)]
    >>> t = aggregation_table(pd.DataFrame(rows), ["a", "b"])
    >>> list(t.columns), float(t.loc["m", "spread"]) > 0.2
    (['a', 'b', 'spread'], True)
    """
    if metric not in ("auroc", "auroc30", "aupr"):
        raise ValueError(f"metric must be one of auroc, auroc30, aupr; got {metric!r}")
    missing = [f"score_{a}" for a in aggregations if f"score_{a}" not in subjects.columns]
    if missing:
        raise ValueError(f"subject frame lacks the aggregation column(s) {missing}")
    order = _order(subjects, order)
    rows = []
    for (method, s), g in subjects.groupby(["method", "seed"], sort=False):
        y = g["label"].to_numpy(int)
        rows.append({"method": method, "seed": s,
                     **{a: all_metrics(y, g[f"score_{a}"].to_numpy(float))[metric] for a in aggregations}})
    frame = pd.DataFrame(rows)
    out = _simple(frame, list(aggregations), order)
    means = frame.groupby("method")[list(aggregations)].mean()
    out["spread"] = [f"{float(means.loc[m].max() - means.loc[m].min()):.2f}" for m in out.index]
    return out


def size_tables(voxels: pd.DataFrame, lesions: pd.DataFrame, *, order: Sequence[str] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AUPR by patients' lesion-load tercile, and lesion-wise detection rate by lesion size.

    Terciles split the patients by lesion load (``lesion_cm3``); detection rates pool the
    connected lesions of all patients within a size bin (then mean ± sd over seeds).
    """
    order = _order(voxels, order)
    loads = voxels.groupby("subject_id")["lesion_cm3"].first()
    edges = np.quantile(loads, [0, 1 / 3, 2 / 3, 1])
    names = [f"T{i + 1} ({edges[i]:.2g}-{edges[i + 1]:.2g} cm3)" for i in range(3)]
    tercile = pd.cut(loads, np.unique(edges), include_lowest=True, labels=names[:len(np.unique(edges)) - 1])
    v = voxels.assign(tercile=voxels["subject_id"].map(tercile).astype(str))
    by_t = v.groupby(["method", "seed", "tercile"])["aupr"].mean().unstack("tercile").reset_index()
    terciles = [n for n in names if n in by_t.columns]
    t1 = _simple(by_t, terciles, order, 3)
    if lesions is None or lesions.empty:
        return t1, pd.DataFrame()
    from ogae_core.evaluation.mri import SIZE_BINS_MM3, size_bin

    bins = [size_bin(lo) for lo in SIZE_BINS_MM3[:-1]]
    rate = lesions.groupby(["method", "seed", "size_bin"])["detected"].mean().unstack("size_bin").reset_index()
    present = [b for b in bins if b in rate.columns]
    t2 = _simple(rate, present, order)
    counts = lesions.drop_duplicates(["subject_id", "lesion"]).groupby("size_bin").size()  # ground truth: same for all
    t2.columns = [f"{b} (n={int(counts.get(b, 0))})" for b in present]
    return t1, t2


def secondary_table(pooled: pd.DataFrame, voxels: pd.DataFrame, *, order: Sequence[str] | None = None) -> pd.DataFrame:
    """Peers' metrics: pooled voxel AUPRC and best Dice over all patients, mean per-patient best Dice."""
    order = _order(pooled, order)
    per_patient = voxels.groupby(["method", "seed"])["best_dice"].mean().rename("patient_best_dice").reset_index()
    frame = pooled.merge(per_patient, on=["method", "seed"], how="left")
    out = _simple(frame, ["pooled_aupr", "pooled_best_dice", "patient_best_dice"], order, 3)
    out.columns = ["pooled AUPRC", "pooled best Dice", "per-patient best Dice"]
    return out
