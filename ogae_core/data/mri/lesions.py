"""Subtle T1-hypointense white-matter lesions (the simulated WMH of the patients).

The load (cm³) is log-normal, clipped to the paper's 0.78–195.15 cm³. Where lesions go is the
top of a score F = w * exp(-d / decay + k G_6(noise')) + (1 - w) * 0.3 * G_2.5(noise) over deep white matter
(WM > 0.8, > 1 mm outside the ventricles): with ``w = L / (L + half_load)`` large loads become
confluent periventricular caps and small loads scattered deep spots. The lesion mask is binary;
the T1 change uses a softened copy of it (``edge_smoothing_mm``) so that edges are not sharp.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> spec = {"load_median_cm3": 6.0, "load_sigma_ln": 1.2, "load_range_cm3": [0.78, 195.15]}
>>> loads = [draw_load(rng, spec) for _ in range(200)]
>>> 0.78 <= min(loads) and max(loads) <= 195.15
True
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["draw_load", "lacune", "place_lesions"]


def draw_load(rng: np.random.Generator, spec: dict) -> float:
    """A lesion load in cm³: log-normal (median, sigma_ln), clipped to ``load_range_cm3``."""
    lo, hi = spec["load_range_cm3"]
    value = spec["load_median_cm3"] * np.exp(spec["load_sigma_ln"] * rng.standard_normal())
    return float(np.clip(value, lo, hi))


def place_lesions(rng: np.random.Generator, wm: np.ndarray, ventricle_distance: np.ndarray,
                  allowed: np.ndarray, n_voxels: int, load_cm3: float, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """Binary lesion mask of ``n_voxels`` voxels and its soft version in [0, 1].

    Parameters
    ----------
    wm, ventricle_distance : ndarray
        The subject's WM probability and distance to its ventricles (mm).
    allowed : ndarray bool
        Voxels where lesions may go (brain, and the written slices of a slab).
    n_voxels : int
        Lesion voxels to place (capped at the number of candidates).
    load_cm3 : float
        Whole-brain load; sets the periventricular / deep balance.
    spec : dict
        The ``lesions`` section of ``mri_cohorts.yaml``.
    """
    candidates = allowed & (wm > spec["wm_threshold"]) & (ventricle_distance > spec["min_ventricle_distance_mm"])
    deep = ndimage.gaussian_filter(rng.standard_normal(wm.shape).astype(np.float32), spec["deep_smoothing_mm"])
    deep /= deep.std() + 1e-12
    caps = ndimage.gaussian_filter(rng.standard_normal(wm.shape).astype(np.float32), spec["cap_smoothing_mm"])
    caps /= caps.std() + 1e-12
    weight = load_cm3 / (load_cm3 + spec["periventricular_half_load_cm3"])
    # periventricular score: decays away from the ventricles, modulated by a smooth field so that
    # the caps are contiguous patches (not a thin shell broken up by ties in the distance)
    rim = np.exp(-np.maximum(ventricle_distance, 0) / spec["periventricular_decay_mm"] + spec["cap_strength"] * caps)
    score = weight * rim / rim.max() + (1 - weight) * 0.3 * deep
    idx = np.flatnonzero(candidates)
    n = int(min(max(n_voxels, 0), idx.size))
    mask = np.zeros(wm.shape, bool)
    if n > 0:
        top = idx[np.argpartition(score.ravel()[idx], idx.size - n)[idx.size - n:]]
        mask.ravel()[top] = True
    soft = np.clip(2.0 * ndimage.gaussian_filter(mask.astype(np.float32), spec["edge_smoothing_mm"]), 0, 1)
    soft = np.maximum(soft, 0.8 * mask)
    return mask, soft.astype(np.float32)


def lacune(rng: np.random.Generator, candidates: np.ndarray, spec: dict) -> np.ndarray:
    """A soft ball (diameter in ``lacune_diameter_mm``) centred on a random candidate voxel."""
    idx = np.flatnonzero(candidates)
    out = np.zeros(candidates.shape, np.float32)
    if idx.size == 0:
        return out
    centre = np.unravel_index(idx[rng.integers(idx.size)], candidates.shape)
    radius = rng.uniform(*spec["lacune_diameter_mm"]) / 2
    grid = np.indices(candidates.shape, dtype=np.float32)
    dist = np.sqrt(sum((grid[a] - centre[a]) ** 2 for a in range(3)))
    return np.clip(radius + 0.5 - dist, 0, 1).astype(np.float32)
