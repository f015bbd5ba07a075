"""Brain-MRI evaluation of one anomaly map (Experiment 2, paper §V): subject scores, voxel
localization, pooled secondary metrics and lesion-wise detection.

Conventions (all recorded in every run's ``metrics.json``):

* **subject score** (classification): a statistic of the anomaly map over the brain, by default
  the 98th percentile with the ventricles excluded (``"q98"``) -- the paper's "2nd percentile of
  the decision values" since the anomaly map is minus the decision function. The paper's other
  aggregations are in :data:`AGGREGATIONS` (mean, median, with or without the ventricles);
* **localization region**: the brain minus the ventricles (``region="brain"``) or only its white
  matter (``region="wm"``, WM probability >= :data:`WM_THRESHOLD`), lesion voxels positive;
* **best Dice**: the Dice at the oracle threshold (the best over all thresholds), as peers report;
* **lesion-wise detection**: a connected lesion (26-connectivity) counts as detected when at
  least one of its voxels lies in the top ``quantile`` (2 %) of the patient's map over the region.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> brain = np.ones((20, 20, 2), bool); vent = np.zeros_like(brain); vent[:3] = True
>>> lesion = np.zeros_like(brain); lesion[10:12, 10:12] = True
>>> amap = rng.random(brain.shape).astype(np.float32); amap[lesion] += 1.0
>>> m = localization_metrics(amap, lesion, evaluation_region(brain, vent))
>>> m["auroc"], m["aupr"], m["n_lesion"]
(1.0, 1.0, 8)
>>> subject_score(amap, brain, vent, "q98") > subject_score(amap, brain, vent, "mean")
True
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ogae_core.evaluation.metrics import all_metrics

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_AGGREGATION",
    "PAPER_ORDER",
    "SIZE_BINS_MM3",
    "WM_THRESHOLD",
    "best_dice",
    "chance_levels",
    "evaluation_region",
    "lesion_detection",
    "localization_metrics",
    "size_bin",
    "subject_score",
    "subject_scores",
]

#: Row order of the paper's Tables II and III, then the white-matter reference.
PAPER_ORDER: tuple[str, ...] = ("ae-unet", "vqvae-transformer", "sae-loc", "sae-ps", "ogae-loc", "wm-prior")

#: Subject-score rules: name -> (statistic, exclude the ventricles).
AGGREGATIONS: dict[str, tuple[str, bool]] = {
    "q98": ("q98", True),
    "q98-with-ventricles": ("q98", False),
    "mean": ("mean", True),
    "mean-with-ventricles": ("mean", False),
    "median": ("median", True),
    "median-with-ventricles": ("median", False),
}
#: The paper's rule.
DEFAULT_AGGREGATION = "q98"
#: White matter = WM probability at least this (``region="wm"``).
WM_THRESHOLD = 0.5
#: Lesion size bins (mm³ = voxels at 1 mm) of the lesion-wise detection analysis.
SIZE_BINS_MM3: tuple[float, ...] = (0, 10, 100, 1000, np.inf)


def subject_score(anomaly_map: np.ndarray, brain: np.ndarray, ventricles: np.ndarray,
                  aggregation: str = DEFAULT_AGGREGATION) -> float:
    """One anomaly score per subject from its map (see :data:`AGGREGATIONS`).

    Non-finite map values (outside a patch model's reach) are left out.

    Examples
    --------
    >>> amap = np.arange(100, dtype=np.float32).reshape(10, 10, 1)
    >>> brain = np.ones_like(amap, bool); vent = np.zeros_like(brain); vent[9] = True
    >>> subject_score(amap, brain, vent, "q98"), subject_score(amap, brain, vent, "q98-with-ventricles")
    (87.22, 97.02)
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {list(AGGREGATIONS)}")
    stat, no_vent = AGGREGATIONS[aggregation]
    mask = np.asarray(brain, bool) & ~np.asarray(ventricles, bool) if no_vent else np.asarray(brain, bool)
    values = np.asarray(anomaly_map, np.float64)[mask]
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(f"subject score {aggregation!r}: the anomaly map has no finite value inside the region")
    if stat == "q98":
        return round(float(np.percentile(values, 98)), 10)
    return float(np.mean(values) if stat == "mean" else np.median(values))


def subject_scores(anomaly_map: np.ndarray, brain: np.ndarray, ventricles: np.ndarray) -> dict[str, float]:
    """Every aggregation of :data:`AGGREGATIONS`: ``{name: score}``."""
    return {name: subject_score(anomaly_map, brain, ventricles, name) for name in AGGREGATIONS}


def evaluation_region(brain: np.ndarray, ventricles: np.ndarray, wm: np.ndarray | None = None, *,
                      region: str = "brain", exclude_ventricles: bool = True) -> np.ndarray:
    """Voxels that enter the localization metrics.

    Parameters
    ----------
    region : {"brain", "wm"}
        The whole brain, or its white matter (``wm >= WM_THRESHOLD``; ``wm`` required).
    exclude_ventricles : bool
        Leave the ventricles out (the default, as for the subject score).
    """
    mask = np.asarray(brain, bool).copy()
    if exclude_ventricles:
        mask &= ~np.asarray(ventricles, bool)
    if region == "wm":
        if wm is None:
            raise ValueError("region 'wm' needs the white-matter probability (cohort column wm_prob)")
        w = np.asarray(wm, np.float32)
        w = w / np.float32(w.max()) if w.size and w.max() > 1 else w
        mask &= w >= WM_THRESHOLD
    elif region != "brain":
        raise ValueError(f"unknown region {region!r}; choose 'brain' or 'wm'")
    return mask


def best_dice(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Best Dice over all thresholds (voxels with score >= t predicted lesion) and that threshold.

    Examples
    --------
    >>> best_dice(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    (1.0, 0.8)
    """
    y = np.asarray(labels, bool).ravel()
    s = np.asarray(scores, np.float64).ravel()
    if y.shape != s.shape or not y.any():
        raise ValueError("best_dice needs labels and scores of one shape with at least one positive")
    order = np.argsort(-s, kind="stable")
    s_sorted, tp = s[order], np.cumsum(y[order])
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # end of each group of equal scores
    k = np.arange(1, s.size + 1)[last]
    dice = 2.0 * tp[last] / (k + y.sum())
    i = int(np.argmax(dice))
    return float(dice[i]), float(s_sorted[last][i])


def localization_metrics(anomaly_map: np.ndarray, lesion: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """Voxel AUROC, AUROC30, AUPR, best Dice and prevalence of one patient over ``region``.

    Returns NaN metrics (with ``n_lesion`` 0) when no lesion voxel lies in the region.
    Non-finite map values inside the region are left out and counted (``n_unscored``).
    """
    region = np.asarray(region, bool)
    values = np.asarray(anomaly_map, np.float64)[region]
    y = np.asarray(lesion, bool)[region]
    finite = np.isfinite(values)
    values, y = values[finite], y[finite]
    out = {"n_voxels": int(values.size), "n_lesion": int(y.sum()), "n_unscored": int((~finite).sum()),
           "prevalence": float(y.mean()) if y.size else float("nan")}
    if y.sum() == 0 or y.all():
        return {**out, "auroc": np.nan, "auroc30": np.nan, "aupr": np.nan, "best_dice": np.nan}
    m = all_metrics(y.astype(int), values)
    dice, _ = best_dice(y, values)
    return {**out, "auroc": m["auroc"], "auroc30": m["auroc30"], "aupr": m["aupr"], "best_dice": dice}


def size_bin(size_mm3: float, bins: tuple = SIZE_BINS_MM3) -> str:
    """Label of the size bin of a lesion (``"10-100 mm3"``).

    Examples
    --------
    >>> size_bin(5), size_bin(5000)
    ('0-10 mm3', '>1000 mm3')
    """
    for lo, hi in zip(bins[:-1], bins[1:]):
        if lo <= size_mm3 < hi:
            return f">{lo:g} mm3" if not np.isfinite(hi) else f"{lo:g}-{hi:g} mm3"
    raise ValueError(f"size {size_mm3} outside the bins {bins}")


def lesion_detection(anomaly_map: np.ndarray, lesion: np.ndarray, region: np.ndarray, *,
                     quantile: float = 0.02, voxel_mm3: float = 1.0) -> pd.DataFrame:
    """One row per connected lesion: size, share of voxels in the top ``quantile`` of the map, detected.

    The threshold is the ``1 - quantile`` quantile of the map over ``region`` (the patient's own,
    as the paper's thresholded figures). Lesion voxels outside the region are ignored.

    Examples
    --------
    >>> les = np.zeros((30, 30, 1), bool); les[2:4, 2:4] = True; les[20, 20] = True
    >>> amap = np.zeros(les.shape, np.float32); amap[2:4, 2:4] = 1.0
    >>> d = lesion_detection(amap, les, np.ones_like(les))
    >>> d[["size_mm3", "detected"]].values.tolist()
    [[4.0, True], [1.0, False]]
    """
    from scipy import ndimage

    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1); got {quantile}")
    region = np.asarray(region, bool)
    amap = np.asarray(anomaly_map, np.float64)
    inside = amap[region & np.isfinite(amap)]
    columns = ["lesion", "size_mm3", "hit_fraction", "detected", "size_bin"]
    if inside.size == 0:
        return pd.DataFrame(columns=columns)
    threshold = np.quantile(inside, 1 - quantile)
    scored = region & np.isfinite(amap)
    # strictly above the quantile (ties at a flat background are not "hot"), unless the top is one tie
    hot = scored & ((amap > threshold) if threshold < inside.max() else (amap >= threshold))
    labelled, n = ndimage.label(np.asarray(lesion, bool) & region, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return pd.DataFrame(columns=columns)
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones_like(labelled), labelled, idx)
    hits = ndimage.sum_labels(hot, labelled, idx)
    frame = pd.DataFrame({"lesion": idx, "size_mm3": sizes * voxel_mm3, "hit_fraction": hits / sizes,
                          "detected": hits > 0})
    frame["size_bin"] = [size_bin(s) for s in frame["size_mm3"]]
    return frame


def chance_levels(prevalence: Mapping[str, float]) -> dict[str, float]:
    """The chance level of each metric: AUROC and AUROC30 0.5, AUPR the prevalence.

    Examples
    --------
    >>> chance_levels({"aupr": 0.007})
    {'auroc': 0.5, 'auroc30': 0.5, 'aupr': 0.007}
    """
    return {"auroc": 0.5, "auroc30": 0.5, "aupr": float(prevalence["aupr"])}
