"""Selecting the localized-OCSVM settings (nu, gamma, neighbourhood) on validation patients.

For one trained patch network (the shared training makes this a scoring-only grid), every
setting of a grid is scored on the validation patients (``validation_patient`` role: never the
test subjects) and ranked by the mean voxel AUPR over the patients' brains without the
ventricles (the localization metric of ``ogae bench mri``). Per slice and neighbourhood radius
the codes are computed once and shared by the settings of that radius.

* :func:`localized_settings` -- the grid, without the settings with ``nu * n < 1``;
  ``gamma`` factors ``c != 1`` become ``c / d``, which is ``c`` times ``"scale"`` on
  standardized codes (``"scale" = 1 / (d Var) = 1 / d`` there unless a feature is constant);
* :func:`validation_voxels` -- the voxels scored: every voxel, or (``voxel_fraction < 1``) every
  position that is a lesion in some patient plus a seeded sample of the others, with
  inverse-probability weights so that the weighted AUPR estimates the full one;
* :func:`evaluate_localized_grid` -- one row per (setting, patient): AUPR, AUROC;
* :func:`choose_setting` -- the setting with the best mean AUPR (ties: the earlier one).

Examples
--------
>>> [s["nu"] for s in localized_settings(16, 400, nus=(0.05, 0.1), gamma_factors=(1.0,), radii=(0,))]
[0.1]
>>> localized_settings(16, 400, nus=(0.1,), gamma_factors=(0.5,), radii=(1,))[0]["gamma"]
0.00125
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ogae_core.validation import check_real
from ogae_core.volumes.streaming import (
    CHUNK_MEMORY,
    localized_decisions_from_codes,
    localized_slice_codes,
    neighbourhood_offsets,
)

__all__ = ["DEFAULT_GRID", "choose_setting", "evaluate_localized_grid", "localized_settings", "validation_voxels"]

#: The grid of issue 14: nu, gamma as a factor of "scale", neighbourhood radius.
DEFAULT_GRID = {"nus": (0.05, 0.1, 0.3), "gamma_factors": (1.0, 0.5, 2.0), "radii": (0, 1)}


def localized_settings(n_reference: int, d: int, *, nus=DEFAULT_GRID["nus"], gamma_factors=DEFAULT_GRID["gamma_factors"],
                       radii=DEFAULT_GRID["radii"]) -> list[dict]:
    """Settings ``{"nu", "gamma", "gamma_factor", "neighbourhood", "n"}`` with ``nu * n >= 1``."""
    out = []
    for radius in radii:
        n = int(n_reference) * len(neighbourhood_offsets(radius))
        for nu in nus:
            if float(nu) * n < 1:
                continue
            for c in gamma_factors:
                c = check_real("gamma factor", c, 0.0, strict_minimum=True)
                out.append({"nu": float(nu), "gamma": "scale" if c == 1.0 else c / d, "gamma_factor": c,
                            "neighbourhood": int(radius), "n": n})
    if not out:
        raise ValueError(f"no setting of the grid has nu * n >= 1 with {n_reference} training controls")
    return out


def validation_voxels(patients: list, voxel_fraction: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(mask (X, Y, Z), weight (X, Y, Z))``: the voxels to score and their weights.

    All brain voxels of the patients when ``voxel_fraction == 1`` (weights 1); otherwise every
    position that is a lesion of some patient (weight 1) and a seeded share ``voxel_fraction`` of
    the other positions (weight ``1 / voxel_fraction``).
    """
    f = check_real("voxel_fraction", voxel_fraction, 0.0, 1.0, strict_minimum=True)
    brain = np.zeros(patients[0].brain.shape, bool)
    lesion = np.zeros_like(brain)
    for p in patients:
        brain |= p.brain
        lesion |= p.lesion
    if f == 1.0:
        return brain, np.ones(brain.shape, np.float64)
    keep = lesion | (np.random.default_rng(seed).random(brain.shape) < f)
    return brain & keep, np.where(lesion, 1.0, 1.0 / f)


def _patient_metrics(amap: np.ndarray, vol, scored: np.ndarray, weight: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    region = vol.brain & ~vol.ventricles & scored
    y, s, w = vol.lesion[region], amap[region], weight[region]
    if not y.any() or y.all():
        return {"aupr": float("nan"), "auroc": float("nan"), "n_voxels": int(y.size)}
    return {"aupr": float(average_precision_score(y, s, sample_weight=w)),
            "auroc": float(roc_auc_score(y, s, sample_weight=w)), "n_voxels": int(y.size)}


def evaluate_localized_grid(network, reference_t1: np.ndarray, patients: list, settings: list, *,
                            patient_ids: list | None = None, patch_size: int = 15, voxel_fraction: float = 1.0,
                            seed: int = 0, device=None, chunk_memory: int = CHUNK_MEMORY,
                            progress: bool = False) -> pd.DataFrame:
    """One row per (setting, patient): ``nu, gamma, gamma_factor, neighbourhood, n, subject_id,
    aupr, auroc, n_voxels, seconds`` (see the module docstring).

    ``network``: the trained patch method; ``reference_t1``: the training controls' T1 volumes
    ``(R, X, Y, Z)``; ``patients``: :class:`~ogae_core.data.mri.SubjectVolumes` with lesions.
    """
    if not patients:
        raise ValueError("the cohort has no validation patients to select on (add validation_patient subjects)")
    ids = patient_ids or [f"patient-{i:03d}" for i in range(len(patients))]
    scored, weight = validation_voxels(patients, voxel_fraction, seed)
    maps = [[np.full(p.t1.shape, np.nan, np.float32) for p in patients] for _ in settings]
    seconds = [0.0] * len(settings)
    for radius in sorted({s["neighbourhood"] for s in settings}):
        todo = [i for i, s in enumerate(settings) if s["neighbourhood"] == radius]
        for z in tqdm(range(scored.shape[2]), desc=f"slices (grid, radius {radius})", disable=not progress):
            xy = np.argwhere(scored[:, :, z])
            if len(xy) == 0:
                continue
            t0 = time.perf_counter()
            ref, tgt, positions = localized_slice_codes(network, [r[:, :, z] for r in reference_t1],
                                                        [p.t1[:, :, z] for p in patients], xy, radius=radius,
                                                        patch_size=patch_size)
            shared = (time.perf_counter() - t0) / len(todo)
            for i in todo:
                t0 = time.perf_counter()
                dec = localized_decisions_from_codes(ref, tgt, positions, nu=settings[i]["nu"],
                                                     gamma=settings[i]["gamma"], device=device,
                                                     chunk_memory=chunk_memory)
                seconds[i] += time.perf_counter() - t0 + shared
                for k in range(len(patients)):
                    maps[i][k][xy[:, 0], xy[:, 1], z] = -dec[k]
            del ref, tgt
    rows = []
    for i, setting in enumerate(settings):
        for k, (sid, vol) in enumerate(zip(ids, patients)):
            rows.append({**setting, "gamma": str(setting["gamma"]), "subject_id": sid,
                         **_patient_metrics(maps[i][k], vol, scored, weight), "seconds": seconds[i]})
    return pd.DataFrame(rows)


def choose_setting(table: pd.DataFrame) -> dict:
    """The setting with the highest mean AUPR over patients (first one on ties), with its mean
    AUPR and AUROC: ``{"nu", "gamma", "neighbourhood", "mean_aupr", "mean_auroc"}``."""
    keys = ["nu", "gamma", "gamma_factor", "neighbourhood"]
    means = table.groupby(keys, sort=False)[["aupr", "auroc"]].mean().reset_index()
    best = means.iloc[int(np.nanargmax(means["aupr"].to_numpy()))]
    gamma = best["gamma"] if best["gamma"] in ("scale", "auto") else float(best["gamma"])
    return {"nu": float(best["nu"]), "gamma": gamma, "gamma_factor": float(best["gamma_factor"]),
            "neighbourhood": int(best["neighbourhood"]), "mean_aupr": float(best["aupr"]),
            "mean_auroc": float(best["auroc"])}
