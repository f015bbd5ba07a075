"""Score maps of a cohort written as NIfTI: one anomaly map per subject plus subject-level scores.

:func:`score_cohort` asks a fitted :class:`~ogae_core.volumes.base.VolumeDetector` for the
anomaly maps of the given subjects (all at once through ``anomaly_maps`` when the detector has
it, so that a localized model streams the slices once for the whole cohort), and writes

* ``<out_dir>/<subject_id>.nii.gz`` -- float32 anomaly map (higher = more anomalous), NaN
  outside the brain, with the subject's affine; a subject on a slab of the cohort's reference
  grid is written on the full cropped grid (NaN outside the slab) with the grid's affine;
* ``<out_dir>/subject_scores.json`` -- per subject: role, the subject-level score
  (:func:`ogae_core.volumes.streaming.subject_score`: 98th percentile of the anomaly map without
  the ventricles, i.e. minus the paper's 2nd percentile of the decision values), the lesion
  prevalence and the file name.

Existing files are never overwritten silently (``overwrite=True`` to replace them).

Examples
--------
>>> import numpy as np
>>> from ogae_core.data.mri.grid import reference_grid
>>> full, affine = embed_in_grid(np.ones((186, 218, 2), np.float32), z_start=60, grid=reference_grid())
>>> full.shape, int(np.isfinite(full).sum()) == 186 * 218 * 2, float(affine[2, 3])
((186, 218, 135), True, -52.0)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ogae_core.atomic import atomic_write_file
from ogae_core.data.mri.nifti import nifti_bytes
from ogae_core.volumes.patch_training import as_volumes
from ogae_core.volumes.streaming import subject_score

__all__ = ["embed_in_grid", "score_cohort"]


def embed_in_grid(volume: np.ndarray, z_start: int, grid) -> tuple[np.ndarray, np.ndarray]:
    """A slab ``volume`` placed at ``z_start`` on the full cropped ``grid`` (NaN elsewhere) and that grid's affine."""
    shape = grid.cropped_shape
    if volume.shape[:2] != shape[:2] or z_start < 0 or z_start + volume.shape[2] > shape[2]:
        raise ValueError(f"a slab of shape {volume.shape} at z_start {z_start} does not fit the grid {shape}")
    full = np.full(shape, np.nan, np.float32)
    full[:, :, z_start:z_start + volume.shape[2]] = volume
    return full, grid.cropped_affine(0)


def _subject_id(subject, index: int) -> str:
    return str(getattr(subject, "subject_id", f"subject-{index:03d}"))


def score_cohort(detector, subjects: Sequence, out_dir: str | Path, *, overwrite: bool = False,
                 progress: bool = False) -> dict:
    """Write one NIfTI anomaly map per subject and ``subject_scores.json`` (see the module docstring).

    Parameters
    ----------
    detector : VolumeDetector
        Fitted.
    subjects : sequence
        :class:`~ogae_core.data.mri.Subject` (ids, roles and the cohort grid come from them) or
        :class:`~ogae_core.data.mri.SubjectVolumes` (named ``subject-000``...).
    out_dir : path
    overwrite : bool
        Replace existing map files.

    Returns
    -------
    dict
        ``{subject_id: {"file", "role", "subject_score", "prevalence"}}`` (also written as JSON).
    """
    out_dir = Path(out_dir)
    ids = [_subject_id(s, i) for i, s in enumerate(subjects)]
    if len(set(ids)) != len(ids):
        raise ValueError("subject ids must be distinct")
    targets = [out_dir / f"{sid}.nii.gz" for sid in ids] + [out_dir / "subject_scores.json"]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{len(existing)} output file(s) exist already (e.g. {existing[0]}); "
                              f"pass overwrite=True to replace them")
    vols = [as_volumes(s) for s in subjects]
    if hasattr(detector, "anomaly_maps"):
        maps = detector.anomaly_maps(vols, progress=progress)
    else:
        maps = [detector.anomaly_map(v) for v in vols]
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = {}
    for sid, subject, vol, amap, path in zip(ids, subjects, vols, maps, targets):
        amap = np.asarray(amap, np.float32)
        grid = getattr(getattr(subject, "cohort", None), "grid", None)
        if grid is not None and amap.shape != tuple(grid.cropped_shape):
            data, affine = embed_in_grid(amap, vol.z_start, grid)
        else:
            data, affine = amap, np.asarray(vol.affine, float)
        payload = nifti_bytes(data, affine, np.float32)
        atomic_write_file(path, lambda tmp, b=payload: tmp.write_bytes(b))
        scores[sid] = {"file": path.name, "role": getattr(subject, "role", None),
                       "subject_score": subject_score(amap, vol.brain, vol.ventricles),
                       "prevalence": vol.prevalence}
    text = json.dumps({"method": getattr(detector, "name", ""), "subjects": scores}, indent=1)
    atomic_write_file(targets[-1], lambda tmp: tmp.write_text(text))
    return scores
