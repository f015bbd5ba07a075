"""Speed of the whole-slice baselines ``ae-unet`` and ``vqvae-transformer`` (information rows).

On the ``default`` cohort's sizes -- 16 training and 4 early-stopping subjects of 8 axial slices
of 186 x 218 (128 training slices of 192 x 224), the ``default`` network size -- with generated
phantom volumes (no cohort needed):

- training time per epoch through the one trainer (mean over the epochs run; for
  ``vqvae-transformer`` per phase);
- scoring time per 8-slice volume (``release`` healing for the VQ-VAE + Transformer, and the
  ``sequential`` healing of Pinaya et al. on one slice in the full run).

``--quick``: 4 + 1 subjects and one epoch per phase. Run:
``python -m benchmarks.run_all --only bench_mri_baselines [--quick]``.
"""
from __future__ import annotations

import time

import numpy as np


class _Phantom:
    """A generated 186 x 218 x n subject (an ellipsoidal brain with smooth texture)."""

    def __init__(self, seed: int, n_slices: int = 8):
        self.seed, self.n_slices = seed, n_slices

    def load(self):
        from ogae_core.data.mri.cohort import SubjectVolumes

        rng = np.random.default_rng(self.seed)
        x, y = np.meshgrid(np.linspace(-1, 1, 186), np.linspace(-1, 1, 218), indexing="ij")
        brain2d = x ** 2 / 0.8 + y ** 2 / 0.9 < 1
        t1 = np.zeros((186, 218, self.n_slices), np.float32)
        for z in range(self.n_slices):
            tissue = 0.6 + 0.2 * np.sin(9 * x + rng.uniform(0, 6)) * np.cos(7 * y) + 0.02 * rng.standard_normal(x.shape)
            t1[:, :, z] = np.where(brain2d, np.clip(tissue, 0, 1), 0)
        brain = np.repeat(brain2d[:, :, None], self.n_slices, 2)
        empty = np.zeros_like(brain)
        return SubjectVolumes(t1=t1, brain=brain, ventricles=empty, lesion=empty, labels=empty.astype(np.uint8),
                              affine=np.eye(4), z_start=0)


def _row(case: str, seconds: float, goal: str) -> dict:
    return {"benchmark": "mri baselines", "case": case, "ours": seconds, "reference": None, "unit": "s",
            "ratio": None, "goal": goal}


def run(quick: bool = False) -> list[dict]:
    """Rows: seconds per training epoch and per scored volume, for both baselines."""
    import torch

    from ogae_core.volumes import build_volume_detector

    torch.set_num_threads(1)
    n_train, n_early, epochs = (4, 1, 1) if quick else (16, 4, 2)
    train = [_Phantom(i) for i in range(n_train)]
    early = [_Phantom(100 + i) for i in range(n_early)]
    volume = _Phantom(999).load()
    rows = []
    for name in ("ae-unet", "vqvae-transformer"):
        det = build_volume_detector(name, {"size": "default", "device": "cpu", "epochs": epochs, "patience": 0})
        det.fit(train, early, seed=0)
        for phase in dict.fromkeys(r["phase"] for r in det.history_):
            secs = [r["seconds"] for r in det.history_ if r["phase"] == phase]
            rows.append(_row(f"{name}: one training epoch, phase {phase} ({det.n_train_slices_} slices 192x224)",
                             float(np.mean(secs)), "information (default size, 1 thread)"))
        det.anomaly_map(volume)  # warm-up
        t = time.perf_counter()
        det.anomaly_map(volume)
        rows.append(_row(f"{name}: score one 186x218x8 volume", time.perf_counter() - t,
                         "information (default size, 1 thread)"))
        if name == "vqvae-transformer" and not quick:
            seq = build_volume_detector(name, {"size": "default", "device": "cpu", "healing": "sequential"})
            seq.method_ = det.method_
            one = _Phantom(998, n_slices=1).load()
            t = time.perf_counter()
            seq.anomaly_map(one)
            rows.append(_row(f"{name}: score one slice with sequential healing (Pinaya)", time.perf_counter() - t,
                             "information (about sequence-length times release healing)"))
    return rows
