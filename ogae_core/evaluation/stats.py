"""Statistical comparison of detectors: the paper's paired bootstrap, Bonferroni, Kruskal–Wallis + Dunn.

Paired bootstrap (the paper's test, :func:`paired_bootstrap`)
    Draw ``n`` resamples of the test set with replacement; the *same* resampled indices are
    used for every model (paired). For each metric, the best model is the one with the
    highest mean over the resamples. For every competitor, the p-value is the fraction of
    resamples in which the competitor's metric matches or beats the best model's
    (``>=``). The ``m = n_models - 1`` p-values of a metric are Bonferroni-adjusted
    (``min(1, m p)``); a competitor is significantly worse than the best when the adjusted
    p-value is below ``alpha`` (0.01, the paper's level). Confidence intervals are bootstrap
    percentile intervals. Resamples that lack a class are dropped (reported in
    ``n_resamples``). ``positive`` chooses the metric convention (the class counted as
    positive, see :func:`ogae_core.evaluation.metrics.orient`); the resamples do not depend
    on it.

Kruskal–Wallis + Dunn (:func:`kruskal_dunn`, for per-subject metrics)
    ``scipy.stats.kruskal`` for the omnibus test and ``scikit_posthocs.posthoc_dunn`` with
    Bonferroni adjustment for the pairwise comparisons.
"""

from __future__ import annotations

from typing import Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ogae_core.evaluation.metrics import (
    DEFAULT_MAX_FPR,
    METRICS,
    check_labels_scores,
    check_positive,
    ranking_metrics_batch,
    sort_scores,
)

SIGNIFICANCE_LEVEL = 0.01
"""The paper's significance level."""

_BATCH_ELEMENTS = 250_000  # resamples x items per chunk: small temporaries (fewer page faults)
_CHUNK = 25  # resamples drawn per random call; fixed so results depend only on the seed


def bonferroni(pvalues: Sequence[float], n_comparisons: int | None = None) -> np.ndarray:
    """Bonferroni adjustment ``min(1, m * p)``.

    Parameters
    ----------
    pvalues : array-like of float
        Raw p-values in [0, 1]; NaN entries are kept as NaN and not counted.
    n_comparisons : int, optional
        ``m``; defaults to the number of non-NaN p-values.

    Examples
    --------
    >>> bonferroni([0.001, 0.02, 0.5]).tolist()
    [0.003, 0.06, 1.0]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    finite = p[~np.isnan(p)]
    if np.any((finite < 0) | (finite > 1)):
        raise ValueError(f"p-values must lie in [0, 1]; got {finite[(finite < 0) | (finite > 1)][:5].tolist()}")
    m = int(finite.size) if n_comparisons is None else int(n_comparisons)
    if m < 1 and finite.size:
        raise ValueError(f"n_comparisons must be >= 1; got {n_comparisons}")
    return np.minimum(1.0, p * m)


def _check_models(
    scores_by_model: Mapping[str, Sequence], labels: Sequence, positive: str = "anomaly"
) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """Names, labels and score arrays, oriented for ``positive`` (labels 1 = positive class)."""
    check_positive(positive)
    if not isinstance(scores_by_model, Mapping) or len(scores_by_model) == 0:
        raise ValueError("scores_by_model must be a non-empty mapping {model name: scores}")
    names = [str(k) for k in scores_by_model]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique as strings; got {names}")
    y = None
    arrays = []
    for name, s in scores_by_model.items():
        try:
            y, s_arr = check_labels_scores(labels, s)
        except ValueError as err:
            raise ValueError(f"model {name!r}: {err}") from None
        arrays.append(s_arr)
    if positive == "normal":
        return names, (1 - y).astype(np.int8), [-a for a in arrays]
    return names, y, arrays


def resample_indices(n_items: int, n: int, seed: int, *, batch: int = _CHUNK) -> Iterator[np.ndarray]:
    """The bootstrap resamples, as index arrays of shape (<= batch, n_items), in order.

    The stream depends only on ``(n_items, seed)``: resample ``k`` is the same whatever ``n``
    and ``batch`` are (``batch`` is rounded up to a multiple of 25).

    Examples
    --------
    >>> first = next(resample_indices(5, 3, seed=0))
    >>> first.shape
    (3, 5)
    """
    if n_items < 1 or n < 1:
        raise ValueError(f"need n_items >= 1 and n >= 1; got {n_items}, {n}")
    rng = np.random.default_rng(seed)
    batch = -(-max(batch, 1) // _CHUNK) * _CHUNK
    done = 0
    while done < n:
        b = min(batch, n - done)
        chunks = [rng.integers(0, n_items, size=(_CHUNK, n_items)) for _ in range(-(-b // _CHUNK))]
        yield np.concatenate(chunks)[:b]
        done += b


def bootstrap_samples(
    scores_by_model: Mapping[str, Sequence],
    labels: Sequence,
    *,
    n: int = 1000,
    seed: int = 0,
    max_fpr: float = DEFAULT_MAX_FPR,
    positive: str = "anomaly",
) -> dict[str, np.ndarray]:
    """Metric values of every model on ``n`` paired resamples (``positive``: the metric convention).

    Returns
    -------
    dict
        ``{metric: array of shape (n_models, n)}`` for ``auroc``, ``aupr``, ``auroc30``,
        ``pauc_normalized``; resamples lacking a class are NaN (the same for every model).

    Examples
    --------
    >>> out = bootstrap_samples({"a": [0.1, 0.9, 0.2, 0.8]}, [0, 1, 0, 1], n=5, seed=0)
    >>> out["auroc"].shape
    (1, 5)
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n (number of resamples) must be a positive integer; got {n}")
    names, y, arrays = _check_models(scores_by_model, labels, positive)
    n_items = y.size
    sorted_scores = [sort_scores(y, s) for s in arrays]
    per_batch = max(_CHUNK, (_BATCH_ELEMENTS // n_items) // _CHUNK * _CHUNK)
    results: dict[str, list[list[np.ndarray]]] = {}
    for idx in resample_indices(n_items, n, seed, batch=per_batch):
        b = idx.shape[0]
        offsets = (np.arange(b) * n_items)[:, None]
        weights = np.bincount((idx + offsets).ravel(), minlength=b * n_items).reshape(b, n_items)
        for i, ss in enumerate(sorted_scores):
            for name, values in ranking_metrics_batch(ss, weights, max_fpr=max_fpr, check=False).items():
                results.setdefault(name, [[] for _ in names])[i].append(values)
    return {name: np.stack([np.concatenate(chunks) for chunks in per_model]) for name, per_model in results.items()}


def paired_bootstrap(
    scores_by_model: Mapping[str, Sequence],
    labels: Sequence,
    n: int = 1000,
    seed: int = 0,
    *,
    metrics: Sequence[str] = METRICS,
    alpha: float = SIGNIFICANCE_LEVEL,
    ci: float = 0.95,
    max_fpr: float = DEFAULT_MAX_FPR,
    positive: str = "anomaly",
) -> pd.DataFrame:
    """The paper's paired bootstrap test of every model against the best one.

    Parameters
    ----------
    scores_by_model : mapping of str to array-like
        Test-set scores (higher = more anomalous) of each model, all on the same items in
        the same order.
    labels : array-like of {0, 1}
        1 = anomaly.
    n : int
        Number of resamples.
    seed : int
        Seed of the resampling; same seed → identical table.
    metrics : sequence of str
        Any of ``auroc``, ``aupr``, ``auroc30`` (McClish) and ``auroc30_raw``.
    alpha : float
        Significance level applied to the Bonferroni-adjusted p-values.
    ci : float
        Coverage of the percentile confidence interval.
    positive : {"anomaly", "normal"}
        The class the metrics count as positive (scores are always higher = more anomalous).

    Returns
    -------
    pandas.DataFrame
        One row per (metric, model): ``metric, model, estimate`` (on the full test set),
        ``boot_mean, ci_low, ci_high, is_best, p_value, p_adjusted, significant``
        (significantly worse than the best), ``tied_with_best`` (not best, not significantly
        worse), ``n_resamples, n_comparisons``. ``p_value`` and ``p_adjusted`` are NaN for
        the best model. ``df.attrs`` holds n, seed, alpha, ci, max_fpr and positive.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.zeros(200), np.ones(200)]
    >>> good, bad = y + rng.normal(0, 0.5, 400), rng.normal(0, 1, 400)
    >>> t = paired_bootstrap({"good": good, "bad": bad}, y, n=200, seed=1)
    >>> t[t.metric == "auroc"].set_index("model").loc["bad", "significant"]
    np.True_
    """
    aliases = {"auroc": "auroc", "aupr": "aupr", "auroc30": "auroc30", "auroc30_raw": "pauc_normalized"}
    unknown = [m for m in metrics if m not in aliases]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(aliases)}")
    if not 0 < alpha < 1 or not 0 < ci < 1:
        raise ValueError(f"alpha and ci must be in (0, 1); got alpha={alpha}, ci={ci}")
    names, y, arrays = _check_models(scores_by_model, labels, positive)
    samples = bootstrap_samples(dict(zip(names, arrays)), y, n=n, seed=seed, max_fpr=max_fpr)  # already oriented
    full = {}
    for name, s in zip(names, arrays):
        values = ranking_metrics_batch(sort_scores(y, s), None, max_fpr=max_fpr)
        full[name] = {k: float(v[0]) for k, v in values.items()}
    rows = []
    q = [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100]
    for metric in metrics:
        key = aliases[metric]
        mat = samples[key]
        valid = ~np.isnan(mat[0])
        mat = mat[:, valid]
        if mat.shape[1] == 0:
            raise ValueError("no bootstrap resample contains both classes; the test set is too small")
        means = mat.mean(axis=1)
        best = int(np.argmax(means))
        raw = np.array([np.nan if i == best else float(np.mean(mat[i] >= mat[best])) for i in range(len(names))])
        m = len(names) - 1
        adjusted = bonferroni(raw, m) if m else raw
        lo, hi = np.percentile(mat, q, axis=1)
        for i, name in enumerate(names):
            is_best = i == best
            significant = bool(not is_best and adjusted[i] < alpha)
            rows.append(
                {
                    "metric": metric,
                    "model": name,
                    "estimate": full[name][key],
                    "boot_mean": float(means[i]),
                    "ci_low": float(lo[i]),
                    "ci_high": float(hi[i]),
                    "is_best": is_best,
                    "p_value": raw[i],
                    "p_adjusted": adjusted[i],
                    "significant": significant,
                    "tied_with_best": bool(not is_best and not significant),
                    "n_resamples": int(mat.shape[1]),
                    "n_comparisons": m,
                }
            )
    table = pd.DataFrame(rows)
    table.attrs.update({"n": int(n), "seed": seed, "alpha": alpha, "ci": ci, "max_fpr": max_fpr, "positive": positive})
    return table


def per_group_bootstrap(
    scores_by_model: Mapping[str, Sequence],
    labels: Sequence,
    groups: Sequence,
    n: int = 1000,
    seed: int = 0,
    **kwargs,
) -> pd.DataFrame:
    """:func:`paired_bootstrap` within each group (e.g. each test corruption).

    ``kwargs`` go to :func:`paired_bootstrap` (``metrics``, ``alpha``, ``positive``, ...).

    Returns the concatenated tidy tables with a leading ``group`` column, groups in order of
    first appearance. Groups lacking a class raise ``ValueError``.

    Examples
    --------
    >>> y = np.array([0, 1] * 20)
    >>> g = np.repeat(["stripe", "fog"], 20)
    >>> t = per_group_bootstrap({"a": y + 0.1 * np.arange(40) % 3}, y, g, n=20)
    >>> t.group.unique().tolist()
    ['stripe', 'fog']
    """
    names, y, arrays = _check_models(scores_by_model, labels)
    g = np.asarray(groups)
    if g.shape != y.shape:
        raise ValueError(f"groups must have one entry per item ({y.size}); got shape {g.shape}")
    tables = []
    for value in pd.unique(pd.Series(g)):
        mask = g == value
        try:
            t = paired_bootstrap({k: a[mask] for k, a in zip(names, arrays)}, y[mask], n=n, seed=seed, **kwargs)
        except ValueError as err:
            raise ValueError(f"group {value!r}: {err}") from None
        t.insert(0, "group", value)
        tables.append(t)
    out = pd.concat(tables, ignore_index=True)
    out.attrs.update(tables[0].attrs)
    return out


class KruskalDunnResult(NamedTuple):
    """Result of :func:`kruskal_dunn`.

    Attributes
    ----------
    statistic, pvalue : float
        Kruskal–Wallis H and its p-value.
    dunn : pandas.DataFrame
        Square matrix of Bonferroni-adjusted Dunn p-values (groups × groups).
    pairs : pandas.DataFrame
        Tidy pairs ``group_a, group_b, p_adjusted, significant``.
    """

    statistic: float
    pvalue: float
    dunn: pd.DataFrame
    pairs: pd.DataFrame


def kruskal_dunn(
    values_by_group: Mapping[str, Sequence] | pd.DataFrame,
    *,
    val_col: str = "value",
    group_col: str = "group",
    alpha: float = SIGNIFICANCE_LEVEL,
) -> KruskalDunnResult:
    """Kruskal–Wallis omnibus test, then Dunn's pairwise test with Bonferroni adjustment.

    Parameters
    ----------
    values_by_group : mapping or pandas.DataFrame
        ``{group: values}`` (e.g. per-subject AUROC of each method) or a long table with
        ``val_col`` and ``group_col``.
    alpha : float
        Level for the ``significant`` column of the pairs.

    Examples
    --------
    >>> r = kruskal_dunn({"a": [1, 2, 3, 4], "b": [5, 6, 7, 8], "c": [9, 10, 11, 12]})
    >>> round(r.statistic, 3)
    9.846
    """
    import scikit_posthocs as sp
    from scipy import stats

    if isinstance(values_by_group, pd.DataFrame):
        missing = {val_col, group_col} - set(values_by_group.columns)
        if missing:
            raise ValueError(f"table lacks column(s) {sorted(missing)}")
        long = values_by_group[[val_col, group_col]].rename(columns={val_col: "value", group_col: "group"})
    elif isinstance(values_by_group, Mapping):
        long = pd.DataFrame(
            [(v, str(g)) for g, vals in values_by_group.items() for v in np.asarray(vals, dtype=float).ravel()],
            columns=["value", "group"],
        )
    else:
        raise ValueError("values_by_group must be a mapping {group: values} or a DataFrame")
    long = long.astype({"value": float})
    if not np.all(np.isfinite(long["value"])):
        raise ValueError("values contain NaN or inf")
    order = list(pd.unique(long["group"]))
    sizes = long.groupby("group", sort=False).size()
    if len(order) < 2 or (sizes < 1).any():
        raise ValueError(f"need at least two non-empty groups; got sizes {sizes.to_dict()}")
    if long["value"].nunique() < 2:
        raise ValueError("all values are identical; Kruskal–Wallis is undefined")
    h, p = stats.kruskal(*[long.loc[long.group == g, "value"].to_numpy() for g in order])
    dunn = sp.posthoc_dunn(long, val_col="value", group_col="group", p_adjust="bonferroni")
    dunn = dunn.loc[order, order]
    pairs = [
        {"group_a": a, "group_b": b, "p_adjusted": float(dunn.loc[a, b]), "significant": bool(dunn.loc[a, b] < alpha)}
        for i, a in enumerate(order)
        for b in order[i + 1 :]
    ]
    return KruskalDunnResult(float(h), float(p), dunn, pd.DataFrame(pairs))
