"""MNIST-C noise-like corruptions: shot/impulse noise, glass blur, spatter, fog.

Every function takes a batch ``x`` (float64, (B, 28, 28), values in [0, 1]), one
:class:`numpy.random.Generator` per image (``gens[i]`` drives image ``i`` only, so results do not
depend on how images are batched) and the parameter mapping from ``mnistc.yaml``; it returns a
new array in [0, 1]. Per-image random draws are small Python calls; the pixel work is vectorized
over the batch. Definitions follow Mu & Gilmer (2019) and the published generator's constants.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import ndimage

__all__ = ["shot_noise", "impulse_noise", "glass_blur", "spatter", "fog"]

Gens = Sequence[np.random.Generator]


def shot_noise(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Poisson photon noise: ``Poisson(x * photons) / photons``."""
    lam = x * float(p["photons"])
    k = np.stack([g.poisson(lam[i]) for i, g in enumerate(gens)]) if len(gens) else lam
    return np.clip(k / float(p["photons"]), 0.0, 1.0)


def impulse_noise(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Salt-and-pepper: each pixel flips with probability ``amount``, to 1 with ``salt_fraction``."""
    u = np.stack([g.random((2,) + x.shape[1:]) for g in gens]) if len(gens) else np.ones((0, 2) + x.shape[1:])
    flipped = u[:, 0] < float(p["amount"])
    salt = u[:, 1] < float(p["salt_fraction"])
    out = x.copy()
    out[flipped & salt] = 1.0
    out[flipped & ~salt] = 0.0
    return out


def _gauss_axes(x: np.ndarray, sigma: float, axes: Sequence[int], mode: str = "nearest") -> np.ndarray:
    """Gaussian blur of a (B, H, W) batch along the given image axes (0 = rows, 1 = columns)."""
    out = x
    for ax in axes:
        out = ndimage.gaussian_filter1d(out, float(sigma), axis=int(ax) + 1, mode=mode, truncate=4.0)
    return out


def glass_blur(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Blur, truncate to bytes, swap pixels with random neighbours (sequential sweep), blur again.

    The sweep visits rows and columns from ``28 - d`` down to ``d + 1`` (``d = max_delta``),
    ``iterations`` times; at each visit, with probability ``swap_probability``, the pixel is
    swapped with the one at offset ``(dy, dx)`` drawn uniformly from ``[-d, d)``.
    """
    d, iters = int(p["max_delta"]), int(p["iterations"])
    axes = list(p["blur_axes"])
    h, w = x.shape[1:]
    work = (_gauss_axes(x, p["sigma"], axes) * 255.0).astype(np.uint8)  # truncation, as the generator
    steps = [(r, c) for _ in range(iters) for r in range(h - d, d, -1) for c in range(w - d, d, -1)]
    n = len(gens)
    if n and steps:
        coin = np.stack([g.random(len(steps)) < float(p["swap_probability"]) for g in gens])
        offs = np.stack([g.integers(-d, d, size=(len(steps), 2)) for g in gens])  # (n, S, [dx, dy])
        for s, (r, c) in enumerate(steps):
            sel = np.flatnonzero(coin[:, s])
            if sel.size == 0:
                continue
            rp = r + offs[sel, s, 1]
            cp = c + offs[sel, s, 0]
            a = work[sel, r, c].copy()
            work[sel, r, c] = work[sel, rp, cp]
            work[sel, rp, cp] = a
    return np.clip(_gauss_axes(work / 255.0, p["sigma"], axes), 0.0, 1.0)


def spatter(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Mud spatter: blurred Gaussian noise thresholded into blobs, blended in with grey ``mud_value``."""
    shape = x.shape[1:]
    liquid = np.stack([g.normal(float(p["loc"]), float(p["scale"]), size=shape) for g in gens]) if len(gens) \
        else np.zeros_like(x)
    liquid = _gauss_axes(liquid, p["sigma"], (0, 1))
    thr = float(p["threshold"])
    liquid[liquid < thr] = 0.0
    mask = _gauss_axes((liquid > thr).astype(np.float64), p["mask_sigma"], (0, 1))
    mask[mask < float(p["mask_floor"])] = 0.0
    return np.clip(x * (1.0 - mask) + float(p["mud_value"]) * mask, 0.0, 1.0)


def fog(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Plasma-fractal haze; see :mod:`ogae_core.data.fog` (kept there: it is long)."""
    from ogae_core.data.fog import fog as _fog

    return _fog(x, gens, p)
