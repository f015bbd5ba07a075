"""15x15 axial patches for the patch models (paper S-H2): random, dense and paired sampling.

- :func:`random_patches`: a fixed number of patches per epoch centred on brain voxels of the
  given subjects, drawn from a seeded generator (same seed, same patches);
- :func:`dense_patches`: every brain voxel of one axial slice, stride 1, as a strided view
  (``numpy.lib.stride_tricks.sliding_window_view``, no Python loop per voxel);
- :func:`paired_patches`: patches at the same voxel from two different controls (siamese AE);
- :func:`patch_budget`: patch counts and memory of a cohort preset.

Volumes are zero-padded by ``size // 2`` in-plane, so patches near the border are defined.

Examples
--------
>>> vol = np.arange(5 * 6 * 2, dtype=np.float32).reshape(5, 6, 2)
>>> brain = np.zeros((5, 6, 2), bool); brain[2, 3, 1] = brain[1, 1, 0] = True
>>> dense_patches(vol, brain, z=1, size=3)[0].shape
(1, 3, 3)
>>> float(dense_patches(vol, brain, z=1, size=3)[0][0, 1, 1]) == float(vol[2, 3, 1])
True
>>> p, idx = random_patches([vol], [brain], n=4, size=3, rng=np.random.default_rng(0))
>>> p.shape, idx.shape
((4, 3, 3), (4, 4))
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ogae_core.validation import check_integer

__all__ = ["check_patch_size", "dense_patches", "paired_patches", "patch_budget", "preset_budget", "random_patches"]


def check_patch_size(size) -> int:
    """``size`` if it is an odd integer >= 1 (patches are centred on a voxel), else ``ValueError``.

    Examples
    --------
    >>> check_patch_size(15)
    15
    >>> check_patch_size(14)
    Traceback (most recent call last):
    ...
    ValueError: patch size must be odd (a patch is centred on its voxel); got 14
    """
    size = check_integer("patch size", size, minimum=1)
    if size % 2 == 0:
        raise ValueError(f"patch size must be odd (a patch is centred on its voxel); got {size}")
    return size


def _padded_slice(volume: np.ndarray, z: int, half: int) -> np.ndarray:
    return np.pad(np.asarray(volume[:, :, z], dtype=np.float32), half)


def dense_patches(volume: np.ndarray, brain: np.ndarray, z: int, size: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """All patches centred on the brain voxels of slice ``z`` and their (x, y) indices.

    Returns
    -------
    patches : ndarray (n, size, size) float32
        A gathered copy of the strided windows.
    xy : ndarray (n, 2) int
    """
    size = check_patch_size(size)
    half = size // 2
    windows = sliding_window_view(_padded_slice(volume, z, half), (size, size))  # (X, Y, s, s) view
    xy = np.argwhere(brain[:, :, z])
    return windows[xy[:, 0], xy[:, 1]], xy


def random_patches(volumes: list, brains: list, n: int, size: int = 15,
                   rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patches centred on brain voxels drawn uniformly over subjects' brain voxels.

    Returns
    -------
    patches : ndarray (n, size, size) float32
    index : ndarray (n, 4) int
        (subject, x, y, z) of each patch centre.
    """
    size = check_patch_size(size)
    n = check_integer("n", n, minimum=0)
    if len(volumes) != len(brains) or not volumes:
        raise ValueError("need one brain mask per volume and at least one volume")
    rng = rng if rng is not None else np.random.default_rng(0)
    counts = np.array([int(b.sum()) for b in brains])
    if counts.sum() == 0:
        raise ValueError("the brain masks are empty")
    flat = rng.choice(int(counts.sum()), size=n, replace=True)
    subject = np.searchsorted(np.cumsum(counts), flat, side="right")
    offsets = flat - np.concatenate([[0], np.cumsum(counts)[:-1]])[subject]
    index = np.empty((n, 4), np.int64)
    patches = np.empty((n, size, size), np.float32)
    half = size // 2
    for s in np.unique(subject):
        sel = subject == s
        vox = np.argwhere(brains[s])[offsets[sel]]
        index[sel, 0], index[sel, 1:] = s, vox
        padded = np.pad(np.asarray(volumes[s], dtype=np.float32), ((half, half), (half, half), (0, 0)))
        windows = sliding_window_view(padded, (size, size), axis=(0, 1))  # (X, Y, Z, s, s)
        patches[sel] = windows[vox[:, 0], vox[:, 1], vox[:, 2]]
    return patches, index


def paired_patches(volumes: list, brains: list, n: int, size: int = 15,
                   rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` pairs of patches at the same voxel from two different subjects.

    The voxel is drawn among the voxels inside the brain of both subjects.

    Returns
    -------
    a, b : ndarray (n, size, size)
    index : ndarray (n, 5) int
        (subject a, subject b, x, y, z).

    Examples
    --------
    >>> vols = [np.full((4, 4, 1), float(i), np.float32) for i in range(3)]
    >>> brains = [np.ones((4, 4, 1), bool)] * 3
    >>> a, b, idx = paired_patches(vols, brains, n=5, size=3, rng=np.random.default_rng(1))
    >>> bool((idx[:, 0] != idx[:, 1]).all()), bool((a[:, 1, 1] == idx[:, 0]).all())
    (True, True)
    """
    size = check_patch_size(size)
    if len(volumes) < 2:
        raise ValueError("paired patches need at least two subjects")
    rng = rng if rng is not None else np.random.default_rng(0)
    first = rng.integers(len(volumes), size=n)
    second = (first + rng.integers(1, len(volumes), size=n)) % len(volumes)
    a = np.empty((n, size, size), np.float32)
    b = np.empty_like(a)
    index = np.empty((n, 5), np.int64)
    half = size // 2
    for i, j in set(zip(first.tolist(), second.tolist())):
        sel = np.flatnonzero((first == i) & (second == j))
        common = np.argwhere(brains[i] & brains[j])
        if len(common) == 0:
            raise ValueError(f"subjects {i} and {j} share no brain voxel")
        vox = common[rng.integers(len(common), size=sel.size)]
        for out, s in ((a, i), (b, j)):
            padded = np.pad(np.asarray(volumes[s], dtype=np.float32), ((half, half), (half, half), (0, 0)))
            out[sel] = sliding_window_view(padded, (size, size), axis=(0, 1))[vox[:, 0], vox[:, 1], vox[:, 2]]
        index[sel] = np.column_stack([np.full(sel.size, i), np.full(sel.size, j), vox])
    return a, b, index


def patch_budget(n_train: int, n_test: int, brain_voxels_per_subject: int, n_slices: int, size: int = 15,
                 latent: int = 400, bytes_per_value: int = 4) -> dict:
    """Patch counts and memory of training and scoring a cohort with a patch model.

    ``codes_gb_per_slice_train`` is what a localized OCSVM holds when it streams one slice
    (the codes of all training controls at every brain voxel of the slice).

    Examples
    --------
    >>> b = patch_budget(n_train=16, n_test=24, brain_voxels_per_subject=100_000, n_slices=8)
    >>> b["dense_patches_test"], round(b["patch_gb_per_subject"], 2), round(b["codes_gb_per_slice_train"], 2)
    (2400000, 0.09, 0.32)
    """
    size = check_patch_size(size)
    per = int(brain_voxels_per_subject)
    return {
        "dense_patches_train": n_train * per,
        "dense_patches_test": n_test * per,
        "patch_gb_per_subject": per * size * size * bytes_per_value / 1e9,
        "codes_gb_per_slice_train": n_train * per / max(n_slices, 1) * latent * bytes_per_value / 1e9,
    }


def preset_budget(preset: str, size: int = 15, latent: int = 400) -> dict:
    """:func:`patch_budget` of a cohort preset, with the template's supratentorial voxel counts."""
    from ogae_core.data.mri.anatomy import template_anatomy
    from ogae_core.data.mri.grid import reference_grid
    from ogae_core.data.mri.manifest import preset_config

    config, grid = preset_config(preset), reference_grid()
    brain = grid.crop_volume(template_anatomy().supratentorial)
    if config.get("slab"):
        z0 = grid.z_index(config["slab"]["z_mm"])
        brain = brain[:, :, z0:z0 + config["slab"]["slices"]]
    counts = config["counts"]
    n_train = int(round(counts["train_control"] * (1 - 0.2)))
    out = patch_budget(n_train, counts["test_control"] + counts["patient"], int(brain.sum()), brain.shape[2],
                       size, latent)
    return {"preset": preset, "slices": int(brain.shape[2]), "brain_voxels_per_subject": int(brain.sum()), **out}
