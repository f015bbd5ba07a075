"""Which metric definition did the paper use? Candidate AUPR / AUROC30 definitions, compared.

The paper (Pinon & Lartizien, section IV-A4) names its metrics AUROC, AUPR and AUROC30 but not
the class it counts as positive, nor how AUROC30 is normalized. :func:`metric_candidates`
computes every plausible definition on one set of scores; :func:`compare_conventions` ranks the
definitions by how well they reproduce the paper's numbers for the same rows.

Candidates (``scores``: higher = more anomalous; ``positive`` as in
:func:`~ogae_core.evaluation.metrics.orient`):

==========================  ===============================================================
``aupr`` ``ap``             average precision (step-wise, ``average_precision_score``)
``aupr`` ``trapezoid``      trapezoidal area under the precision-recall points
                            (``auc(recall, precision)``)
``auroc30`` ``mcclish``     McClish-standardized partial AUC, FPR <= 0.3
                            (``roc_auc_score(max_fpr=0.3)``; 0.5 = chance)
``auroc30`` ``raw``         partial area for FPR <= 0.3 divided by 0.3 (0.15 = chance)
``auroc30`` ``complement``  area for FPR >= 0.3 divided by 0.7, ``(AUC - pAUC) / 0.7``
                            (0.65 = chance): what a reversed mask (``fpr >= 0.3``) computes
==========================  ===============================================================

each with ``positive`` = ``"anomaly"`` and ``"normal"``. With normals positive, "FPR <= 0.3"
means that at most 30 % of the anomalies are taken for normal items — the FPR measured on the
other class; in the anomalies' ROC space that is the partial area over TPR >= 0.7 (to the right
of the curve), so the "TPR range" definition is the normal-positive one.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ogae_core.evaluation.metrics import (
    DEFAULT_MAX_FPR,
    POSITIVE_CLASSES,
    orient,
    pr_points,
    ranking_metrics_batch,
    sort_scores,
)

#: (metric, definition) pairs of :func:`metric_candidates`.
DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("aupr", "ap"), ("aupr", "trapezoid"), ("auroc30", "mcclish"), ("auroc30", "raw"), ("auroc30", "complement"),
)
_BATCH_KEY = {"ap": "aupr", "mcclish": "auroc30", "raw": "pauc_normalized"}


def metric_candidates(labels: Sequence, scores: Sequence, *, max_fpr: float = DEFAULT_MAX_FPR) -> pd.DataFrame:
    """Every candidate definition of AUPR and AUROC30 on one set of scores.

    Parameters
    ----------
    labels : array-like of {0, 1}
        1 = anomaly.
    scores : array-like of float
        Higher = more anomalous.
    max_fpr : float
        FPR limit of the partial AUC.

    Returns
    -------
    pandas.DataFrame
        One row per (metric, definition, positive): columns ``metric, definition, positive,
        value``, plus one ``auroc`` row (``definition="roc"``, ``positive="either"``).

    Examples
    --------
    >>> t = metric_candidates([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> len(t), float(t.loc[t.metric == "auroc", "value"].iloc[0])
    (11, 0.75)
    """
    rows = []
    for positive in POSITIVE_CLASSES:
        y, s = orient(labels, scores, positive)
        batch = ranking_metrics_batch(sort_scores(y, s), max_fpr=max_fpr)
        if positive == POSITIVE_CLASSES[0]:
            rows.append(("auroc", "roc", "either", float(batch["auroc"][0])))
        for metric, definition in DEFINITIONS:
            if definition == "trapezoid":
                recall, precision, _ = pr_points(y, s)
                value = float(np.trapezoid(precision, recall))
            elif definition == "complement":
                pauc = float(batch["pauc_normalized"][0]) * max_fpr
                value = (float(batch["auroc"][0]) - pauc) / (1 - max_fpr) if max_fpr < 1 else float("nan")
            else:
                value = float(batch[_BATCH_KEY[definition]][0])
            rows.append((metric, definition, positive, value))
    return pd.DataFrame(rows, columns=["metric", "definition", "positive", "value"])


def candidates_by_model(
    scores_by_model: Mapping[str, Sequence], labels: Sequence, *, max_fpr: float = DEFAULT_MAX_FPR
) -> pd.DataFrame:
    """:func:`metric_candidates` of several models, with a leading ``model`` column.

    Examples
    --------
    >>> t = candidates_by_model({"a": [0.1, 0.9], "b": [0.9, 0.1]}, [0, 1])
    >>> t.groupby("model").size().tolist()
    [11, 11]
    """
    if not isinstance(scores_by_model, Mapping) or not scores_by_model:
        raise ValueError("scores_by_model must be a non-empty mapping {model: scores}")
    frames = [metric_candidates(labels, s, max_fpr=max_fpr).assign(model=str(m)) for m, s in scores_by_model.items()]
    out = pd.concat(frames, ignore_index=True)
    return out[["model", "metric", "definition", "positive", "value"]]


def compare_conventions(candidates: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """How well each candidate definition reproduces the paper's numbers, best first.

    Parameters
    ----------
    candidates : pandas.DataFrame
        Output of :func:`candidates_by_model` (may hold several tables: an optional ``table``
        column, e.g. ``"3v8"``, is matched with the same column of ``paper``).
    paper : pandas.DataFrame
        The paper's values: columns ``model, auroc, aupr, auroc30`` (and ``table`` when
        ``candidates`` has one).

    Returns
    -------
    pandas.DataFrame
        One row per (metric, definition, positive) with ``n_rows`` (models in both),
        ``gap_ours`` (mean of our value minus our AUROC), ``gap_paper`` (mean of the paper's
        value minus the paper's AUROC), ``gap_error`` (mean absolute difference of the two
        gaps, row by row — insensitive to our AUROCs differing from the paper's) and
        ``value_error`` (mean absolute difference of the values) and ``in_paper_range``
        (share of the rows whose gap lies within the range of the paper's gaps over the same
        rows). Sorted by metric, then ``gap_error``.

    Examples
    --------
    >>> cand = candidates_by_model({"a": [0.1, 0.4, 0.35, 0.8]}, [0, 0, 1, 1])
    >>> paper = pd.DataFrame({"model": ["a"], "auroc": [0.75], "aupr": [0.83], "auroc30": [0.6]})
    >>> compare_conventions(cand, paper).iloc[0][["metric", "definition", "positive"]].tolist()
    ['aupr', 'ap', 'anomaly']
    """
    keys = ["table", "model"] if "table" in candidates.columns else ["model"]
    missing = ({"metric", "definition", "positive", "value", *keys} - set(candidates.columns),
               {"auroc", "aupr", "auroc30", *keys} - set(paper.columns))
    if missing[0] or missing[1]:
        raise ValueError(f"candidates lack {sorted(missing[0])} / paper lacks {sorted(missing[1])}")
    ours_auroc = candidates[candidates.metric == "auroc"].set_index(keys)["value"].rename("ours_auroc")
    paper_idx = paper.set_index(keys)
    rows = []
    others = candidates[candidates.metric != "auroc"]
    for (metric, definition, positive), part in others.groupby(["metric", "definition", "positive"], sort=False):
        joined = part.set_index(keys)[["value"]].join(ours_auroc).join(paper_idx[["auroc", metric]], how="inner")
        if joined.empty:
            continue
        gap_ours = joined["value"] - joined["ours_auroc"]
        gap_paper = joined[metric] - joined["auroc"]
        rows.append({"metric": metric, "definition": definition, "positive": positive, "n_rows": len(joined),
                     "gap_ours": float(gap_ours.mean()), "gap_paper": float(gap_paper.mean()),
                     "gap_error": float((gap_ours - gap_paper).abs().mean()),
                     "value_error": float((joined["value"] - joined[metric]).abs().mean()),
                     "in_paper_range": float(gap_ours.between(gap_paper.min(), gap_paper.max()).mean())})
    if not rows:
        raise ValueError("no model is in both the candidates and the paper's table")
    return pd.DataFrame(rows).sort_values(["metric", "gap_error"], ignore_index=True)
