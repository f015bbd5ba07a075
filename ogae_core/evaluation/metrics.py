"""Ranking metrics for anomaly detection: AUROC, AUPR and AUROC30.

Conventions (stated once for the whole project)
-----------------------------------------------
* ``labels``: 1 = anomaly, 0 = normal. Booleans are accepted.
* ``scores``: higher = more anomalous.
* ``positive``: which class the metric treats as positive. ``"anomaly"`` (the default) scores
  the detection of anomalies. ``"normal"`` scores the detection of normal items: the labels
  are flipped (``1 - labels``) and the scores negated, then the same definitions apply.
  AUROC is the same under both; AUPR and AUROC30 are not (the normal class is another
  prevalence, and the low-FPR end of its ROC curve is the high-TPR end of the anomalies').
  The paper does not say which class it counts as positive (see :func:`orient`).
* Ties in the scores are handled as scikit-learn does: all items with the same score
  enter the curves together (a diagonal ROC segment, one precision/recall point).

Definitions
-----------
AUROC
    Area under the ROC curve (trapezoidal rule over the tie-grouped curve), equal to
    ``sklearn.metrics.roc_auc_score``.
AUPR
    Average precision, the *step-wise* area under the precision-recall curve,
    ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds, equal to
    ``sklearn.metrics.average_precision_score``. (The trapezoidal rule is not used: it
    over-credits constant detectors.) A constant detector scores the prevalence.
AUROC30 (standardized, the default)
    Partial AUC for FPR <= 0.3 with McClish's standardization,
    ``0.5 * (1 + (pAUC - 0.5 m^2) / (m - 0.5 m^2))`` with ``m = 0.3``, equal to
    ``sklearn.metrics.roc_auc_score(max_fpr=0.3)``: 0.5 for a random or constant
    detector, 1 for a perfect one.
AUROC30 (raw normalized, ``standardized=False``)
    ``pAUC / m``: the partial area divided by its maximum; 1 for a perfect detector,
    ``m / 2 = 0.15`` for a random one.

The functions accept optional non-negative ``weights`` (e.g. bootstrap counts); the
weighted metric equals the metric on the data set in which item ``i`` appears
``weights[i]`` times. :func:`ranking_metrics_batch` evaluates many weight vectors at once
on one sort, which is what makes the paired bootstrap fast.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

METRICS: tuple[str, ...] = ("auroc", "aupr", "auroc30")
"""Names of the paper's three metrics, in the paper's column order."""

DEFAULT_MAX_FPR = 0.3

POSITIVE_CLASSES: tuple[str, ...] = ("anomaly", "normal")
"""The two metric conventions: the class counted as positive (default first)."""


class SortedScores(NamedTuple):
    """Scores sorted once, reusable for many weight vectors.

    Attributes
    ----------
    order : ndarray of int
        Permutation sorting the scores in decreasing order (stable).
    labels : ndarray of int64
        Labels in that order (1 = anomaly).
    group_ends : ndarray of int
        Index (in sorted order) of the last item of each group of equal scores.
    thresholds : ndarray of float
        The distinct scores, decreasing.
    """

    order: np.ndarray
    labels: np.ndarray
    group_ends: np.ndarray
    thresholds: np.ndarray


def check_labels_scores(labels: Sequence, scores: Sequence, *, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert labels and scores to 1-D arrays.

    Parameters
    ----------
    labels : array-like of {0, 1} or bool
        1 = anomaly.
    scores : array-like of float
        Higher = more anomalous; must be finite.
    need_both : bool
        Require at least one anomaly and one normal item.

    Returns
    -------
    labels : ndarray of int8
    scores : ndarray of float64

    Raises
    ------
    ValueError
        On shape mismatch, non-binary labels, non-finite scores or a missing class.

    Examples
    --------
    >>> y, s = check_labels_scores([0, 1], [0.1, 0.9])
    >>> y.tolist(), s.tolist()
    ([0, 1], [0.1, 0.9])
    """
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D; got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    if y.size == 0:
        raise ValueError("labels and scores are empty")
    if y.dtype == bool:
        y = y.astype(np.int8)
    values = np.unique(y)
    if not np.all(np.isin(values, (0, 1))):
        raise ValueError(f"labels must be 0 (normal) or 1 (anomaly); found values {values[:10].tolist()}")
    if not np.all(np.isfinite(s)):
        bad = int(np.sum(~np.isfinite(s)))
        raise ValueError(f"scores contain {bad} non-finite value(s) (NaN or inf)")
    y = y.astype(np.int8)
    if need_both and values.size < 2:
        missing = "anomalies (label 1)" if values[0] == 0 else "normal items (label 0)"
        raise ValueError(f"metrics need both classes; the labels contain no {missing}")
    return y, s


def check_positive(positive: str) -> str:
    """Validate the name of the positive class (``"anomaly"`` or ``"normal"``).

    Examples
    --------
    >>> check_positive("normal")
    'normal'
    >>> check_positive("foo")
    Traceback (most recent call last):
    ...
    ValueError: positive must be one of ('anomaly', 'normal'); got 'foo'
    """
    if not isinstance(positive, str) or positive not in POSITIVE_CLASSES:
        raise ValueError(f"positive must be one of {POSITIVE_CLASSES}; got {positive!r}")
    return positive


def orient(labels: Sequence, scores: Sequence, positive: str = "anomaly", *,
           need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of the chosen positive class, validated.

    Parameters
    ----------
    labels : array-like of {0, 1} or bool
        1 = anomaly.
    scores : array-like of float
        Higher = more anomalous.
    positive : {"anomaly", "normal"}
        ``"anomaly"``: returned as given. ``"normal"``: labels flipped (1 = normal) and
        scores negated (higher = more normal), e.g. the authors' scorers, which return
        "higher = more normal".
    need_both : bool
        Require both classes.

    Returns
    -------
    labels : ndarray of int8
        1 = the positive class.
    scores : ndarray of float64
        Higher = more likely positive.

    Examples
    --------
    >>> y, s = orient([0, 1], [0.1, 0.9], "normal")
    >>> y.tolist(), s.tolist()
    ([1, 0], [-0.1, -0.9])
    """
    check_positive(positive)
    y, s = check_labels_scores(labels, scores, need_both=need_both)
    if positive == "normal":
        return (1 - y).astype(np.int8), -s
    return y, s


def sort_scores(labels: Sequence, scores: Sequence) -> SortedScores:
    """Sort scores decreasingly and find the groups of tied scores.

    Examples
    --------
    >>> sort_scores([0, 1, 1], [0.2, 0.5, 0.5]).group_ends.tolist()
    [1, 2]
    """
    y, s = check_labels_scores(labels, scores, need_both=False)
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    ends = np.flatnonzero(np.diff(s_sorted) != 0)
    ends = np.append(ends, s_sorted.size - 1)
    return SortedScores(order, y[order].astype(np.int64), ends, s_sorted[ends])


def _increments(
    sorted_scores: SortedScores, weights: np.ndarray | None, *, check: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-threshold cumulative and incremental weights of positives and negatives, shape (B, T).

    Returns ``tps, fps, dtp, dfp``: cumulative true/false positives at each distinct threshold
    and the weight of positives/negatives in the group of items tied at that threshold.
    Integer weights stay int64 (exact and much faster cumulative sums), others are float64.
    """
    y = sorted_scores.labels
    ends = sorted_scores.group_ends
    if weights is None:
        w_sorted = np.ones((1, y.size), dtype=np.int64)
    else:
        w = np.asarray(weights)
        w = w[None, :] if w.ndim == 1 else w
        if w.ndim != 2 or w.shape[1] != y.size:
            raise ValueError(f"weights must have {y.size} columns (one per item); got shape {w.shape}")
        w = w.astype(np.int64 if np.issubdtype(w.dtype, np.integer) or w.dtype == bool else np.float64, copy=False)
        if check and (not np.all(np.isfinite(w)) or np.any(w < 0)):
            raise ValueError("weights must be finite and non-negative")
        w_sorted = w.take(sorted_scores.order, axis=1)
    pos_w = w_sorted * y
    tps = np.cumsum(pos_w, axis=1)
    total = np.cumsum(w_sorted, axis=1)
    if ends.size < y.size:  # ties: keep the last item of each group of equal scores
        tps, total = tps[:, ends], total[:, ends]
        dtp, dw = _diff0(tps), _diff0(total)
    else:
        dtp, dw = pos_w, w_sorted
    return tps, total - tps, dtp, dw - dtp


def _diff0(a: np.ndarray) -> np.ndarray:
    """Differences along axis 1 with an implicit leading zero (faster than ``np.diff(prepend=0)``)."""
    out = a.copy()
    out[:, 1:] -= a[:, :-1]
    return out


def _curves(sorted_scores: SortedScores, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (true positives, false positives) per threshold, shape (B, T)."""
    tps, fps, _, _ = _increments(sorted_scores, weights)
    return tps, fps


def ranking_metrics_batch(
    sorted_scores: SortedScores,
    weights: np.ndarray | None = None,
    *,
    max_fpr: float = DEFAULT_MAX_FPR,
    check: bool = True,
) -> dict[str, np.ndarray]:
    """AUROC, AUPR and partial AUROC for many weight vectors on one sort.

    Parameters
    ----------
    sorted_scores : SortedScores
        From :func:`sort_scores`.
    weights : ndarray, shape (n,) or (B, n), optional
        Non-negative item weights in the *original* item order (bootstrap counts).
        ``None`` means all ones.
    max_fpr : float
        FPR limit of the partial AUC, in (0, 1].
    check : bool
        Validate that the weights are finite and non-negative (skip for trusted counts).

    Returns
    -------
    dict
        ``auroc``, ``aupr``, ``auroc30`` (McClish-standardized) and ``pauc_normalized``
        (raw pAUC / max_fpr), each an array of shape (B,). Rows whose weights leave a class
        empty are NaN.

    Notes
    -----
    With ``P``, ``N`` the total positive/negative weight and, per threshold ``k``, the
    cumulative ``TP_k``, ``FP_k`` and the group increments ``dTP_k``, ``dFP_k``:
    ``AUROC = sum_k dFP_k (TP_k - dTP_k / 2) / (P N)`` (the trapezoidal rule on the ROC
    curve) and ``AP = sum_k (dTP_k / P) TP_k / (TP_k + FP_k)``.

    Examples
    --------
    >>> ss = sort_scores([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> float(ranking_metrics_batch(ss)["auroc"][0])
    0.75
    """
    if not 0 < max_fpr <= 1:
        raise ValueError(f"max_fpr must be in (0, 1]; got {max_fpr}")
    tps, fps, dtp, dfp = _increments(sorted_scores, weights, check=check)
    n_pos, n_neg = tps[:, -1].astype(np.float64), fps[:, -1].astype(np.float64)
    valid = (n_pos > 0) & (n_neg > 0)
    pos, neg = np.where(valid, n_pos, 1.0), np.where(valid, n_neg, 1.0)
    # Twice the un-normalized ROC area up to each threshold (integers for integer weights).
    area2 = np.cumsum(dfp * (2 * tps - dtp), axis=1)
    auroc = 0.5 * area2[:, -1] / (pos * neg)
    aupr = np.sum(dtp * tps / np.maximum(tps + fps, 1e-300), axis=1) / pos
    # Partial area up to FPR = max_fpr, with one interpolated point at max_fpr (sklearn's rule).
    limit = max_fpr * neg
    inside = np.sum(fps <= limit[:, None], axis=1)  # thresholds fully inside
    rows = np.arange(fps.shape[0])
    full_area = np.where(inside > 0, 0.5 * area2[rows, np.maximum(inside - 1, 0)], 0.0)
    has_cut = inside < fps.shape[1]
    k = np.minimum(inside, fps.shape[1] - 1)
    x0 = np.where(inside > 0, fps[rows, np.maximum(k - 1, 0)], 0.0)
    y0 = np.where(inside > 0, tps[rows, np.maximum(k - 1, 0)], 0.0)
    x1, y1 = fps[rows, k], tps[rows, k]
    frac = np.divide(limit - x0, x1 - x0, out=np.zeros_like(x0), where=x1 > x0)
    y_cut = y0 + (y1 - y0) * frac
    cut_area = np.where(has_cut, (limit - x0) * 0.5 * (y0 + y_cut), 0.0)
    pauc = (full_area + cut_area) / (pos * neg)
    min_area, max_area = 0.5 * max_fpr**2, max_fpr
    auroc30 = 0.5 * (1 + (pauc - min_area) / (max_area - min_area)) if max_fpr < 1 else auroc.copy()
    out = {"auroc": auroc, "aupr": aupr, "auroc30": auroc30, "pauc_normalized": pauc / max_fpr}
    return {name: np.where(valid, value, np.nan) for name, value in out.items()}


def _single(
    labels: Sequence,
    scores: Sequence,
    weights: Sequence | None,
    name: str,
    max_fpr: float = DEFAULT_MAX_FPR,
    positive: str = "anomaly",
) -> float:
    y, s = orient(labels, scores, positive, need_both=weights is None)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    if w is not None and w.shape != y.shape:
        raise ValueError(f"weights must have shape {y.shape}; got {w.shape}")
    value = float(ranking_metrics_batch(sort_scores(y, s), w, max_fpr=max_fpr)[name][0])
    if np.isnan(value):
        raise ValueError("metrics need both classes with positive total weight")
    return value


def auroc(
    labels: Sequence, scores: Sequence, *, weights: Sequence | None = None, positive: str = "anomaly"
) -> float:
    """Area under the ROC curve (equals ``roc_auc_score``); the same for both ``positive`` classes.

    Examples
    --------
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], positive="normal")
    0.75
    """
    return _single(labels, scores, weights, "auroc", positive=positive)


def aupr(
    labels: Sequence, scores: Sequence, *, weights: Sequence | None = None, positive: str = "anomaly"
) -> float:
    """Average precision, step-wise (equals ``average_precision_score``).

    ``positive="normal"`` equals ``average_precision_score(1 - labels, -scores)``.

    Examples
    --------
    >>> round(aupr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
    >>> round(aupr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], positive="normal"), 4)
    0.8333
    """
    return _single(labels, scores, weights, "aupr", positive=positive)


def partial_auroc(
    labels: Sequence,
    scores: Sequence,
    *,
    max_fpr: float = DEFAULT_MAX_FPR,
    standardized: bool = True,
    weights: Sequence | None = None,
    positive: str = "anomaly",
) -> float:
    """Partial AUROC for FPR <= ``max_fpr``.

    Parameters
    ----------
    standardized : bool
        ``True``: McClish-standardized (``roc_auc_score(max_fpr=...)``; 0.5 = random).
        ``False``: raw area divided by ``max_fpr`` (1 = perfect, ``max_fpr/2`` = random).
    positive : {"anomaly", "normal"}
        The positive class; with ``"normal"`` the FPR is the share of anomalies taken
        for normal (``roc_auc_score(1 - labels, -scores, max_fpr=...)``).

    Examples
    --------
    >>> partial_auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    0.5
    >>> round(partial_auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], standardized=False), 3)
    0.15
    """
    name = "auroc30" if standardized else "pauc_normalized"
    return _single(labels, scores, weights, name, max_fpr, positive=positive)


def auroc30(
    labels: Sequence,
    scores: Sequence,
    *,
    standardized: bool = True,
    weights: Sequence | None = None,
    positive: str = "anomaly",
) -> float:
    """Partial AUROC for FPR <= 0.3 (the paper's AUROC30); see :func:`partial_auroc`.

    Examples
    --------
    >>> auroc30([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])
    1.0
    >>> auroc30([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], positive="normal")
    1.0
    """
    return partial_auroc(labels, scores, max_fpr=0.3, standardized=standardized, weights=weights, positive=positive)


def all_metrics(labels: Sequence, scores: Sequence, *, positive: str = "anomaly") -> dict[str, float]:
    """The paper's three metrics plus the raw normalized AUROC30, from one sort.

    Examples
    --------
    >>> sorted(all_metrics([0, 1], [0.0, 1.0]))
    ['aupr', 'auroc', 'auroc30', 'auroc30_raw']
    >>> all_metrics([0, 0, 1], [0.1, 0.2, 0.9], positive="normal")["aupr"]
    1.0
    """
    y, s = orient(labels, scores, positive)
    out = ranking_metrics_batch(sort_scores(y, s))
    return {
        "auroc": float(out["auroc"][0]),
        "aupr": float(out["aupr"][0]),
        "auroc30": float(out["auroc30"][0]),
        "auroc30_raw": float(out["pauc_normalized"][0]),
    }


def roc_points(
    labels: Sequence, scores: Sequence, *, positive: str = "anomaly"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve points ``(fpr, tpr, thresholds)`` starting at (0, 0), ties grouped.

    With ``positive="normal"`` the thresholds are those of the negated scores.

    Examples
    --------
    >>> fpr, tpr, _ = roc_points([0, 1], [0.0, 1.0])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 1.0], [0.0, 1.0, 1.0])
    """
    y, s = orient(labels, scores, positive)
    ss = sort_scores(y, s)
    tps, fps = _curves(ss, None)
    fpr = np.concatenate([[0.0], fps[0] / fps[0, -1]])
    tpr = np.concatenate([[0.0], tps[0] / tps[0, -1]])
    return fpr, tpr, np.concatenate([[np.inf], ss.thresholds])


def pr_points(
    labels: Sequence, scores: Sequence, *, positive: str = "anomaly"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall points ``(recall, precision, thresholds)`` by decreasing threshold.

    The first point is (0, 1) as in scikit-learn's curve; plot it as a step function
    (``line_shape="vh"``), which is the curve whose area is the average precision.
    ``positive`` as in :func:`orient`.

    Examples
    --------
    >>> r, p, _ = pr_points([0, 1], [0.0, 1.0])
    >>> r.tolist(), p.tolist()
    ([0.0, 1.0, 1.0], [1.0, 1.0, 0.5])
    """
    y, s = orient(labels, scores, positive)
    ss = sort_scores(y, s)
    tps, fps = _curves(ss, None)
    recall = np.concatenate([[0.0], tps[0] / tps[0, -1]])
    precision = np.concatenate([[1.0], tps[0] / (tps[0] + fps[0])])
    return recall, precision, np.concatenate([[np.inf], ss.thresholds])


def largest_tie_fraction(scores: Sequence, significant_digits: int = 9) -> float:
    """Fraction of ``scores`` in the largest group of equal values.

    Values are compared after rounding to ``significant_digits`` significant digits. A
    large fraction means the detector cannot rank most items against each other — e.g. an
    OCSVM whose kernel values underflow to 0 far from every support vector gives all those
    items the same score ``-rho``; ranking metrics then count each tie as half right.

    Examples
    --------
    >>> largest_tie_fraction([0.1, 0.5, 0.5, 0.5])
    0.75
    >>> largest_tie_fraction([1.0, 2.0, 3.0, 4.0])
    0.25
    """
    counts = equal_score_counts(scores, significant_digits)
    return float(counts.max() / counts.sum())


def equal_score_counts(scores: Sequence, significant_digits: int = 9) -> np.ndarray:
    """Sizes of the groups of equal scores (compared at ``significant_digits``
    significant digits), one per distinct value.

    Examples
    --------
    >>> equal_score_counts([0.1, 0.5, 0.5, 0.5]).tolist()
    [1, 3]
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("scores must not be empty")
    if not np.isfinite(s).all():
        raise ValueError("scores contain non-finite values (nan or inf)")
    rounded = np.array([float(f"{v:.{significant_digits}g}") for v in s])
    return np.unique(rounded, return_counts=True)[1]
