"""Tables of the fidelity ablation from its aggregate (pandas only; no run store, no torch).

Input: the frames of :func:`ogae_core.experiments.ablation.read_aggregate` (``runs``,
``history``, ``bootstrap``). Selection follows the project's protocol (never test data):
within a label (a row and a cell, e.g. ``"ogae-ocsvm [authors]"``), the final-OCSVM point with
the best mean validation metric over seeds is kept (:func:`select_runs`); factor F3 restricts
that choice to the grid without ``"scale"``.

* :func:`cell_summary` — mean ± sd over seeds of each label's selected runs;
* :func:`cell_test_metrics` — mean ± sd over seeds of every test metric of the selected runs
  (AUROC, AUROC30, AUPR, and the normal-positive AUROC30 / AUPR when the aggregate has them);
* :func:`beside_paper_cells` — those of one digit pair beside the paper's OgAE-ocsvm and AE-ocsvm
  rows (Table I for 3 vs 8, Table IV for 3 vs 4);
* :func:`factor_effects` — each cell minus the baseline cell of its row (paired by seed), and
  F3 (grid with minus without ``"scale"``), with a t confidence interval, per pair and pooled;
* :func:`per_corruption` — test metric per corruption of the selected runs;
* :func:`epoch_curves` — latent spread and misclassified fraction per epoch;
* :func:`best_of_k` — test metric of the validation-best among K random configurations: how
  much a single run chosen over a large grid gains from selection alone.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ogae_core.experiments.presets import OCSVM_GRID_WITHOUT_SCALE

__all__ = ["OCSVM_GRIDS", "PAPER_METRICS", "PAPER_ROWS", "beside_paper_cells", "best_of_k", "cell_summary",
           "cell_test_metrics", "epoch_curves", "factor_effects", "in_grid_without_scale", "per_corruption",
           "select_runs"]

#: The final-OCSVM grids factor F3 compares: the points of each, by ``hp.ocsvm_*`` columns.
OCSVM_GRIDS = ("with-scale", "without-scale")
#: The final-OCSVM options that make up a scoring point of one training.
SCORING_KEYS = ("hp.ocsvm_nu", "hp.ocsvm_gamma", "hp.ocsvm_standardize")
_KEYS = ["experiment", "pair", "row", "cell", "label"]


def in_grid_without_scale(frame: pd.DataFrame) -> pd.Series:
    """Boolean mask of the runs whose final OCSVM is a point of the grid without ``"scale"``
    (:data:`~ogae_core.experiments.presets.OCSVM_GRID_WITHOUT_SCALE`; factor F3).

    Examples
    --------
    >>> f = pd.DataFrame({"hp.ocsvm_nu": [0.1, 0.1], "hp.ocsvm_gamma": ["0.1", "scale"],
    ...                   "hp.ocsvm_standardize": [True, True]})
    >>> in_grid_without_scale(f).tolist()
    [True, False]
    """
    mask = pd.Series(True, index=frame.index)
    for key, values in OCSVM_GRID_WITHOUT_SCALE.items():
        col = frame[f"hp.{key}"].map(_canonical)
        mask &= col.isin({_canonical(v) for v in values})
    return mask


def _canonical(value) -> str:
    """One spelling per value across CSV round trips (``0.1`` and ``"0.1"``, ``True`` and ``"True"``)."""
    if isinstance(value, str):
        try:
            return repr(float(value)) if value not in ("True", "False") else value
        except ValueError:
            return value
    if isinstance(value, bool):
        return str(value)
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def _check(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {what} table has no column(s) {missing}; is it an ablation aggregate?")


def _grid(runs: pd.DataFrame, grid: str) -> pd.DataFrame:
    if grid not in OCSVM_GRIDS:
        raise ValueError(f"grid must be one of {OCSVM_GRIDS}; got {grid!r}")
    return runs if grid == "with-scale" else runs[in_grid_without_scale(runs)]


def select_runs(runs: pd.DataFrame, *, grid: str = "with-scale", metric: str = "auroc") -> pd.DataFrame:
    """The runs of each label's validation-selected final-OCSVM point (one per seed).

    Returns the rows of ``runs`` with a ``scoring_point`` column (the chosen
    ``nu/gamma/standardize``).

    Examples
    --------
    >>> runs = pd.DataFrame({"experiment": "e", "pair": "3v4", "row": "ae-ocsvm", "cell": "project",
    ...     "label": "ae-ocsvm [project]", "seed": [0, 0], "hp.ocsvm_nu": 0.1, "hp.ocsvm_gamma": ["0.1", "scale"],
    ...     "hp.ocsvm_standardize": True, "validation.auroc": [0.6, 0.7], "test.auroc": [0.5, 0.55]})
    >>> select_runs(runs)["test.auroc"].tolist(), select_runs(runs, grid="without-scale")["test.auroc"].tolist()
    ([0.55], [0.5])
    """
    _check(runs, [*_KEYS, "seed", *SCORING_KEYS, f"validation.{metric}"], "runs")
    r = _grid(runs, grid).copy()
    r["scoring_point"] = [f"nu={a} gamma={b} std={c}" for a, b, c in zip(*(r[k] for k in SCORING_KEYS))]
    val = r.groupby([*_KEYS, "scoring_point"], sort=True)[f"validation.{metric}"].mean().reset_index()
    best = val.sort_values(f"validation.{metric}", ascending=False, kind="stable").drop_duplicates(_KEYS)
    out = r.merge(best[[*_KEYS, "scoring_point"]], on=[*_KEYS, "scoring_point"])
    return out.sort_values([*_KEYS, "seed"], ignore_index=True)


def cell_summary(runs: pd.DataFrame, *, grid: str = "with-scale", metric: str = "auroc") -> pd.DataFrame:
    """Mean ± sd over seeds of the selected runs of every label (validation and test).

    Columns: ``experiment, pair, row, cell, label, scoring_point, n_seeds, validation_mean,
    test_mean, test_sd, warnings`` (the guards that fired in any of the label's runs).
    """
    sel = select_runs(runs, grid=grid, metric=metric)
    # an all-NaN warnings column reads back as float: cast before filling
    warnings = sel.get("warnings", pd.Series("", index=sel.index)).astype(object).fillna("").astype(str)
    sel = sel.assign(_warnings=warnings)
    out = sel.groupby(_KEYS, sort=False).agg(
        scoring_point=("scoring_point", "first"), n_seeds=("seed", "nunique"),
        validation_mean=(f"validation.{metric}", "mean"), test_mean=(f"test.{metric}", "mean"),
        test_sd=(f"test.{metric}", "std"),
        warnings=("_warnings", lambda w: ", ".join(sorted({x for v in w for x in v.split(";") if x})) or "-"))
    return out.reset_index()


#: Test metrics of :func:`cell_test_metrics` (``runs.csv`` column without ``test.``) and their
#: names in :func:`beside_paper_cells`; the normal-positive ones are used when present.
PAPER_METRICS = {"auroc": "AUROC", "auroc30": "AUROC30", "aupr": "AUPR",
                 "normal_positive.auroc30": "AUROC30 (normal +)", "normal_positive.aupr": "AUPR (normal +)"}
#: Rows of the paper's table shown beside the ablation (the ablation's rows).
PAPER_ROWS = ("ogae-ocsvm", "ae-ocsvm")


def cell_test_metrics(runs: pd.DataFrame, *, grid: str = "with-scale", metric: str = "auroc") -> pd.DataFrame:
    """Mean and sd over seeds of the test metrics of every label's selected runs.

    Selection as in :func:`select_runs` (validation ``metric``). The metrics are those of
    :data:`PAPER_METRICS` that ``runs`` has (runs.csv of runs written before the
    normal-positive block have no ``test.normal_positive.*`` columns).

    Returns
    -------
    pandas.DataFrame
        Long: ``experiment, pair, row, cell, label, metric, n_seeds, mean, sd``.

    Examples
    --------
    >>> runs = pd.DataFrame({"experiment": "e", "pair": "3v4", "row": "ae-ocsvm", "cell": "project",
    ...     "label": "ae-ocsvm [project]", "seed": [0, 1], "hp.ocsvm_nu": 0.1, "hp.ocsvm_gamma": "scale",
    ...     "hp.ocsvm_standardize": True, "validation.auroc": 0.6, "test.auroc": [0.5, 0.7], "test.aupr": 0.6})
    >>> cell_test_metrics(runs)[["metric", "mean", "sd"]].round(3).values.tolist()
    [['auroc', 0.6, 0.141], ['aupr', 0.6, 0.0]]
    """
    _check(runs, [f"test.{metric}"], "runs")
    cols = [f"test.{m}" for m in PAPER_METRICS if f"test.{m}" in runs.columns]
    sel = select_runs(runs, grid=grid, metric=metric)
    long = sel.melt(id_vars=[*_KEYS, "seed"], value_vars=cols, var_name="metric", value_name="value")
    long["metric"] = long["metric"].str.slice(len("test."))
    out = long.groupby([*_KEYS, "metric"], sort=False).agg(n_seeds=("seed", "nunique"), mean=("value", "mean"),
                                                           sd=("value", "std"))
    return out.reset_index()


def _pair_digits(pair: str) -> tuple[int, int]:
    try:
        normal, anomaly = (int(d) for d in str(pair).split("v"))
    except ValueError:
        raise ValueError(f"pair must read <normal>v<anomaly> (e.g. '3v4'); got {pair!r}") from None
    return normal, anomaly


def beside_paper_cells(runs: pd.DataFrame, pair: str, *, grid: str = "with-scale", metric: str = "auroc",
                       digits: int = 2) -> pd.DataFrame:
    """The ablation's cells of one digit pair beside the paper's OgAE-ocsvm and AE-ocsvm rows, as text.

    Our rows: ``mean ± sd`` over seeds of each label's selected runs (:func:`cell_test_metrics`;
    ``mean`` alone with one seed). Then the paper's rows of :data:`PAPER_ROWS` from its table
    for the pair (:func:`~ogae_core.evaluation.paper.paper_table`), named ``"paper: <row>
    (Table IV)"``. The paper does not say which class is positive for AUPR and AUROC30, so its
    value stands under both conventions' columns; AUROC is the same under both.

    Parameters
    ----------
    runs : pandas.DataFrame
        ``runs.csv`` of the aggregate.
    pair : str
        ``"3v4"`` or ``"3v8"`` (a ``pair`` of ``runs`` the paper has a table for).
    grid, metric : str
        Final-OCSVM grid and validation metric of the selection (:func:`select_runs`).
    digits : int
        Decimals of our values (the paper's are shown as printed, two).

    Returns
    -------
    pandas.DataFrame
        Index ``model`` (our labels, sorted by row and cell, then the paper's rows); columns the
        names of :data:`PAPER_METRICS` present in ``runs``, plus ``n_seeds``.

    Examples
    --------
    >>> runs = pd.DataFrame({"experiment": "e", "pair": "3v4", "row": "ogae-ocsvm", "cell": "project",
    ...     "label": "ogae-ocsvm [project]", "seed": [0, 1], "hp.ocsvm_nu": 0.1, "hp.ocsvm_gamma": "scale",
    ...     "hp.ocsvm_standardize": True, "validation.auroc": 0.6, "test.auroc": [0.5, 0.7], "test.aupr": 0.6})
    >>> t = beside_paper_cells(runs, "3v4")
    >>> t.index.tolist()
    ['ogae-ocsvm [project]', 'paper: ogae-ocsvm (Table IV)', 'paper: ae-ocsvm (Table IV)']
    >>> t["AUROC"].tolist(), t["AUPR"].tolist()
    (['0.60 ± 0.14', '0.74', '0.52'], ['0.60 ± 0.00', '0.76', '0.64'])
    """
    from ogae_core.evaluation.paper import paper_table

    _check(runs, ["pair"], "runs")
    if pair not in set(runs["pair"]):
        raise ValueError(f"pair {pair!r} is not in the runs table; it has {sorted(runs['pair'].unique())}")
    paper = paper_table(*_pair_digits(pair))
    if paper is None:
        raise ValueError(f"the paper has no MNIST-C table for the pair {pair!r}")
    stats = cell_test_metrics(runs[runs["pair"] == pair], grid=grid, metric=metric)
    present = [m for m in PAPER_METRICS if m in set(stats["metric"])]

    def text(mean: float, sd: float) -> str:
        return f"{mean:.{digits}f}" if pd.isna(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"

    rows = {}
    for label, g in stats.groupby("label", sort=False):
        by = g.set_index("metric")
        rows[label] = {PAPER_METRICS[m]: text(by.at[m, "mean"], by.at[m, "sd"]) for m in present}
        rows[label]["n_seeds"] = str(int(by["n_seeds"].max()))
    for row in PAPER_ROWS:
        values = {PAPER_METRICS[m]: f"{paper.at[row, m.split('.')[-1]]:.2f}" for m in present}
        rows[f"paper: {row} (Table {paper.attrs['table']})"] = {**values, "n_seeds": "–"}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "model"
    return out


def _t_interval(diffs: np.ndarray, confidence: float) -> tuple[float, float, float]:
    from scipy import stats

    n = len(diffs)
    mean = float(np.mean(diffs))
    if n < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * np.std(diffs, ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half


def factor_effects(runs: pd.DataFrame, *, baseline: str = "project", metric: str = "auroc",
                   confidence: float = 0.95) -> pd.DataFrame:
    """Effect of every factor on the test metric, paired by seed, with a t confidence interval.

    For each row (``ogae-ocsvm``, ``ae-ocsvm``) and cell other than ``baseline``: the
    selected runs' test metric minus the baseline cell's, seed by seed; factor F3 (``final
    grid +scale``): each cell selected on the grid with ``"scale"`` minus on the grid without.
    Per pair (``pair`` = ``3v4``...) and pooled over the pairs (``pair = "all"``).

    Columns: ``row, factor, pair, n, effect, ci_low, ci_high``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}")
    with_scale = select_runs(runs, metric=metric)
    without = select_runs(runs, grid="without-scale", metric=metric)
    col = f"test.{metric}"
    diffs = []
    base = with_scale[with_scale["cell"] == baseline][["experiment", "pair", "row", "seed", col]]
    other = with_scale[with_scale["cell"] != baseline]
    paired = other.merge(base, on=["experiment", "pair", "row", "seed"], suffixes=("", "_base"))
    diffs.append(paired.assign(factor=paired["cell"], diff=paired[col] - paired[f"{col}_base"]))
    f3 = with_scale.merge(without[[*_KEYS, "seed", col]], on=[*_KEYS, "seed"], suffixes=("", "_base"))
    diffs.append(f3.assign(factor="final grid +scale [" + f3["cell"] + "]", diff=f3[col] - f3[f"{col}_base"]))
    d = pd.concat(diffs, ignore_index=True)[["row", "factor", "pair", "seed", "diff"]]
    rows = []
    for (row, factor), g in d.groupby(["row", "factor"], sort=False):
        for pair, gg in [*g.groupby("pair", sort=True), ("all", g)]:
            mean, lo, hi = _t_interval(gg["diff"].to_numpy(), confidence)
            rows.append({"row": row, "factor": factor, "pair": pair, "n": len(gg), "effect": mean,
                         "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=["row", "factor", "pair", "n", "effect", "ci_low", "ci_high"])


def per_corruption(runs: pd.DataFrame, *, grid: str = "with-scale", metric: str = "auroc") -> pd.DataFrame:
    """Mean test metric per corruption of each label's selected runs (one column per corruption).

    Examples
    --------
    >>> runs = pd.DataFrame({"experiment": "e", "pair": "3v4", "row": "ae-ocsvm", "cell": "project",
    ...     "label": "l", "seed": [0, 1], "hp.ocsvm_nu": 0.1, "hp.ocsvm_gamma": "scale",
    ...     "hp.ocsvm_standardize": True, "validation.auroc": 0.6, "test.per_corruption.stripe.auroc": [0.4, 0.6]})
    >>> per_corruption(runs)["stripe"].tolist()
    [0.5]
    """
    sel = select_runs(runs, grid=grid, metric=metric)
    prefix, suffix = "test.per_corruption.", f".{metric}"
    cols = [c for c in sel.columns if c.startswith(prefix) and c.endswith(suffix) and c.count(".") == 3]
    if not cols:
        raise ValueError(f"the runs table has no per-corruption {metric!r} columns ({prefix}<name>{suffix})")
    out = sel.groupby(_KEYS, sort=False)[cols].mean().reset_index()
    return out.rename(columns={c: c[len(prefix):-len(suffix)] for c in cols})


def epoch_curves(history: pd.DataFrame, columns: Sequence[str] = ("latent_spread", "misclassified_fraction")
                 ) -> pd.DataFrame:
    """Mean and sd over seeds of history columns per label and epoch (tidy: ``value`` per
    ``column``), with the phase of the epoch (that of the lowest seed).

    Examples
    --------
    >>> h = pd.DataFrame({"experiment": "e", "label": "l", "row": "r", "cell": "c", "seed": [0, 1],
    ...                   "epoch": 1, "phase": "expander", "latent_spread": [1.0, 3.0]})
    >>> epoch_curves(h, ["latent_spread"])[["mean", "sd"]].values.tolist()
    [[2.0, 1.4142135623730951]]
    """
    _check(history, ["experiment", "label", "seed", "epoch", *columns], "history")
    long = history.melt(id_vars=["experiment", "label", "seed", "epoch", "phase"], value_vars=list(columns),
                        var_name="column", value_name="value")
    g = long.sort_values("seed").groupby(["experiment", "label", "column", "epoch"], sort=True)
    out = g.agg(phase=("phase", "first"), mean=("value", "mean"), sd=("value", "std"), n=("value", "count"))
    return out.reset_index()


def best_of_k(runs: pd.DataFrame, *, row: str = "ogae-ocsvm", ks: Sequence[int] = (1, 8, 32, 128),
              n_subsets: int = 2000, seed: int = 0, metric: str = "auroc") -> pd.DataFrame:
    """Test metric of the validation-best among K configurations drawn at random.

    The pool of one pair is every run of ``row`` (all cells, final-OCSVM points and seeds);
    for each K (no larger than the pool) ``n_subsets`` subsets of K runs are drawn without
    replacement and the one with the best validation metric is kept. Columns: ``pair, k,
    n_pool, test_mean, test_sd, test_q05, test_q95, best_test`` (the pool's best test value,
    an upper bound no selection reaches without looking at test data).

    Examples
    --------
    >>> runs = pd.DataFrame({"pair": "3v4", "row": "r", "validation.auroc": [0.1, 0.2, 0.3],
    ...                      "test.auroc": [0.5, 0.6, 0.7]})
    >>> best_of_k(runs, row="r", ks=[1, 3], n_subsets=50)[["k", "test_mean"]].round(3).values.tolist()[-1]
    [3.0, 0.7]
    """
    _check(runs, ["pair", "row", f"validation.{metric}", f"test.{metric}"], "runs")
    if any(int(k) < 1 for k in ks) or n_subsets < 1:
        raise ValueError(f"ks and n_subsets must be >= 1; got {list(ks)}, {n_subsets}")
    rng = np.random.default_rng(seed)
    rows = []
    for pair, g in runs[runs["row"] == row].groupby("pair", sort=True):
        val = g[f"validation.{metric}"].to_numpy(float)
        test = g[f"test.{metric}"].to_numpy(float)
        for k in sorted({int(k) for k in ks}):
            if k > len(g):
                continue
            picks = np.array([rng.choice(len(g), size=k, replace=False) for _ in range(n_subsets)])
            best = picks[np.arange(n_subsets), np.argmax(val[picks], axis=1)]
            t = test[best]
            rows.append({"pair": pair, "k": k, "n_pool": len(g), "test_mean": float(t.mean()),
                         "test_sd": float(t.std(ddof=1)) if n_subsets > 1 else float("nan"),
                         "test_q05": float(np.quantile(t, 0.05)), "test_q95": float(np.quantile(t, 0.95)),
                         "best_test": float(test.max())})
    return pd.DataFrame(rows, columns=["pair", "k", "n_pool", "test_mean", "test_sd", "test_q05", "test_q95",
                                       "best_test"])
