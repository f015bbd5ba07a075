"""Speed of the brain-MRI data layer (information rows; the issue sets no ratio goal).

- generation time per simulated subject: an 8-slice slab (the ``default`` preset) and a full
  186x218x135 volume (``full`` / ``paper``), control and patient, on the MNI template;
- patch extraction throughput (patches/s): dense stride-1 15x15 patches of one slab subject,
  and seeded random sampling over 16 subjects, against a reference Python loop over voxels
  measured in the same run (ratio = how many times faster the strided extraction is).

Run: ``python -m benchmarks.run_all --only bench_mri_data [--quick]``. The template anatomy comes
from the user cache (built on first use, about 30 s).
"""
from __future__ import annotations

import time

import numpy as np


def _row(case: str, ours: float, reference: float | None, unit: str, goal: str, higher_is_better: bool) -> dict:
    ratio = None
    if reference and ours:
        ratio = ours / reference if higher_is_better else reference / ours
    return {"benchmark": "mri data", "case": case, "ours": ours, "reference": reference, "unit": unit,
            "ratio": ratio, "goal": goal}


def bench_generation(quick: bool) -> list[dict]:
    """Seconds per simulated subject (slab and full volume)."""
    from ogae_core.data.mri.anatomy import template_anatomy
    from ogae_core.data.mri.grid import reference_grid
    from ogae_core.data.mri.simulate import SubjectPlan, simulate_subject

    anatomy = template_anatomy()
    z0 = reference_grid().z_index(13)
    rows = []
    for label, slab in (("8-slice slab", (z0, 8)), ("full volume 186x218x135", None)):
        if quick and slab is None:
            continue
        for role in ("test_control", "patient"):
            plan = SubjectPlan("bench", role, "site-D", 70.0, "F", (0, 2, 0), slab)
            simulate_subject(anatomy, plan)  # warm-up (numba compile, caches)
            t = time.perf_counter()
            simulate_subject(anatomy, plan)
            rows.append(_row(f"simulate one {role} ({label})", time.perf_counter() - t, None, "s",
                             "information (seconds per subject)", False))
    return rows


def _loop_patches(volume: np.ndarray, xy: np.ndarray, z: int, size: int) -> np.ndarray:
    half = size // 2
    pad = np.pad(volume[:, :, z], half)
    return np.stack([pad[x:x + size, y:y + size] for x, y in xy])


def bench_patches(quick: bool) -> list[dict]:
    """Dense and random patch extraction throughput against a per-voxel Python loop."""
    from ogae_core.data.mri.patches import dense_patches, random_patches

    rng = np.random.default_rng(0)
    shape = (186, 218, 8)
    vols = [rng.random(shape, dtype=np.float32) for _ in range(16)]
    brain = np.zeros(shape, bool)
    ii, jj = np.indices(shape[:2])
    brain[((ii - 93) / 70) ** 2 + ((jj - 109) / 85) ** 2 < 1] = True        # ~18,700 voxels per slice
    t = time.perf_counter()
    n_dense = 0
    for z in range(shape[2]):
        patches, _ = dense_patches(vols[0], brain, z)
        n_dense += len(patches)
    dense_rate = n_dense / (time.perf_counter() - t)
    xy = np.argwhere(brain[:, :, 0])[: (2000 if quick else 10000)]
    t = time.perf_counter()
    _loop_patches(vols[0], xy, 0, 15)
    loop_rate = len(xy) / (time.perf_counter() - t)
    n = 20_000 if quick else 60_000
    t = time.perf_counter()
    random_patches(vols, [brain] * 16, n=n, rng=np.random.default_rng(0))
    random_rate = n / (time.perf_counter() - t)
    return [
        _row("dense 15x15 patches, stride 1, one 8-slice subject", dense_rate, loop_rate, "patches/s",
             "faster than a per-voxel Python loop", True),
        _row(f"random 15x15 patches, {n:,} from 16 subjects (one epoch)", random_rate, loop_rate, "patches/s",
             "faster than a per-voxel Python loop", True),
    ]


def run(quick: bool = False) -> list[dict]:
    """All MRI data benchmarks (see module docstring)."""
    return bench_patches(quick) + bench_generation(quick)
