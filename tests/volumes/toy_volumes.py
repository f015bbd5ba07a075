"""Small generated brain-like volumes for the patch-model tests (no cohort build needed).

A disc-shaped "brain" (GM ring, WM core, dark ventricles) with per-subject shifts, contrast
jitter and noise, on a small grid; a patient gets a planted hypointense blob in the WM.
"""
from __future__ import annotations

import numpy as np

from ogae_core.data.mri import SubjectVolumes

SHAPE = (40, 40, 2)
AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])


def toy_volumes(seed: int, *, blob: tuple | None = None, shape=SHAPE, z_start: int = 0,
                blob_radius: float = 2.0) -> SubjectVolumes:
    """One subject; ``blob=(x, y)`` plants a WM-to-GM-like hypointense disc (the lesion)."""
    rng = np.random.default_rng(seed)
    X, Y, Z = shape
    x, y = np.meshgrid(np.arange(X), np.arange(Y), indexing="ij")
    cx, cy = X / 2 - 0.5 + rng.uniform(-1, 1), Y / 2 - 0.5 + rng.uniform(-1, 1)
    r = np.hypot(x - cx, y - cy)
    brain2d = r < min(X, Y) * 0.45
    wm, gm, csf = 0.9 + rng.normal(0, 0.01), 0.62 + rng.normal(0, 0.01), 0.25
    t1 = np.where(brain2d, gm, 0.0)
    t1 = np.where(r < min(X, Y) * 0.36, wm, t1)
    vent2d = (np.abs(x - cx) < 2.5) & (np.abs(y - cy) < 5)
    t1 = np.where(vent2d, csf, t1)
    lesion2d = np.zeros((X, Y), bool)
    if blob is not None:
        lesion2d = np.hypot(x - blob[0], y - blob[1]) <= blob_radius
        t1 = np.where(lesion2d, gm, t1)
    vol = np.repeat(t1[:, :, None], Z, axis=2) + rng.normal(0, 0.02, (X, Y, Z)) * np.repeat(brain2d[:, :, None], Z, 2)
    vol = np.clip(vol, 0, 1).astype(np.float32)
    brain = np.repeat(brain2d[:, :, None], Z, 2)
    lesion = np.repeat(lesion2d[:, :, None], Z, 2) & brain
    affine = AFFINE.copy()
    affine[2, 3] = z_start
    return SubjectVolumes(t1=vol, brain=brain, ventricles=np.repeat(vent2d[:, :, None], Z, 2) & brain,
                          lesion=lesion, labels=lesion.astype(np.uint8), affine=affine, z_start=z_start)


def toy_cohort(n_train: int = 6, n_stop: int = 2, seed: int = 0):
    """(training controls, early-stopping controls, a patient with a blob, a control)."""
    train = [toy_volumes(seed * 100 + i) for i in range(n_train)]
    stop = [toy_volumes(seed * 100 + 50 + i) for i in range(n_stop)]
    patient = toy_volumes(seed * 100 + 90, blob=(26, 14))
    control = toy_volumes(seed * 100 + 91)
    return train, stop, patient, control


#: Small, fast training settings for the tests.
FAST = {"epochs": 1, "patches_per_epoch": 2000, "pool_locations": 1500, "eval_patches": 500, "device": "cpu"}
