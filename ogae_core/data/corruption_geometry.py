"""MNIST-C geometric corruptions: motion blur, shear, scale, rotate, translate.

Same calling convention as :mod:`ogae_core.data.corruption_noise`: ``f(x, gens, params)`` with
``x`` float64 (B, H, W) in [0, 1] and one random generator per image.

Affine corruptions resample with bilinear interpolation, zero outside the image, using the
inverse map ``(col_in, row_in) = A @ (col, row) + t`` chosen so that the image centre
((H - 1) / 2, (W - 1) / 2) stays fixed. Images that share a transform (e.g. the two shear
signs) are resampled together through one sparse interpolation matrix.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
from scipy import sparse

__all__ = ["motion_blur", "shear", "scale", "rotate", "translate", "affine_matrix", "warp_affine"]

Gens = Sequence[np.random.Generator]


@functools.lru_cache(maxsize=64)
def affine_matrix(
    a: tuple[float, float, float, float], t: tuple[float, float], shape: tuple[int, int]
) -> sparse.csr_matrix:
    """Sparse (H*W, H*W) bilinear resampling matrix for the inverse map ``A @ (col, row) + t``.

    Examples
    --------
    >>> m = affine_matrix((1.0, 0.0, 0.0, 1.0), (1.0, 0.0), (3, 3))  # sample one column to the right
    >>> (m @ np.arange(9.0)).reshape(3, 3)[0].tolist()
    [1.0, 2.0, 0.0]
    """
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    a11, a12, a21, a22 = a
    c_in = a11 * cols + a12 * rows + t[0]
    r_in = a21 * cols + a22 * rows + t[1]
    r0, c0 = np.floor(r_in), np.floor(c_in)
    dr, dc = r_in - r0, c_in - c0
    out_idx = np.arange(h * w).reshape(h, w)
    data, ri, ci = [], [], []
    for rr, cc, wt in ((r0, c0, (1 - dr) * (1 - dc)), (r0, c0 + 1, (1 - dr) * dc),
                       (r0 + 1, c0, dr * (1 - dc)), (r0 + 1, c0 + 1, dr * dc)):
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w) & (wt > 0)
        data.append(wt[ok])
        ri.append(out_idx[ok])
        ci.append((rr[ok] * w + cc[ok]).astype(np.int64))
    return sparse.csr_matrix(
        (np.concatenate(data), (np.concatenate(ri), np.concatenate(ci))), shape=(h * w, h * w)
    )


def _centred(a: np.ndarray, shape: tuple[int, int]) -> tuple[tuple[float, ...], tuple[float, float]]:
    cy, cx = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    t = (cx - a[0, 0] * cx - a[0, 1] * cy, cy - a[1, 0] * cx - a[1, 1] * cy)
    return tuple(float(v) for v in a.ravel()), (float(t[0]), float(t[1]))


def warp_affine(x: np.ndarray, a: np.ndarray, t: tuple[float, float] | None = None) -> np.ndarray:
    """Resample a (B, H, W) batch with one inverse affine map (centred when ``t`` is None)."""
    shape = x.shape[1:]
    a_t, t_t = _centred(np.asarray(a, float), shape) if t is None else (
        tuple(float(v) for v in np.asarray(a, float).ravel()), (float(t[0]), float(t[1])))
    mat = affine_matrix(a_t, t_t, shape)
    flat = x.reshape(len(x), -1)
    return np.asarray((mat @ flat.T).T).reshape(x.shape)


def _signs(gens: Gens, k: int) -> np.ndarray:
    """k independent random signs (+1/-1) per image, shape (B, k)."""
    return np.array([g.integers(0, 2, size=k) * 2 - 1 for g in gens], dtype=np.int64).reshape(len(gens), k)


def _grouped(x: np.ndarray, keys: np.ndarray, make) -> np.ndarray:
    """Apply ``make(key)`` -> (A, t) per group of images sharing a key."""
    out = np.empty_like(x)
    for key in np.unique(keys, axis=0):
        sel = np.all(keys == key, axis=1)
        a, t = make(tuple(int(v) for v in key))
        out[sel] = warp_affine(x[sel], a, t)
    return np.clip(out, 0.0, 1.0)


def shear(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Shear by ``+-angle`` (the generator's affine convention: A = [[1, -sin c], [0, cos c]])."""
    def make(key):
        c = key[0] * float(p["angle"])
        return np.array([[1.0, -math.sin(c)], [0.0, math.cos(c)]]), None
    return _grouped(x, _signs(gens, 1), make)


def rotate(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Rotate by ``+-angle`` radians about the centre."""
    def make(key):
        c = key[0] * float(p["angle"])
        return np.array([[math.cos(c), -math.sin(c)], [math.sin(c), math.cos(c)]]), None
    return _grouped(x, _signs(gens, 1), make)


def scale(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Shrink about the centre by ``factor`` (deterministic)."""
    inv = 1.0 / float(p["factor"])
    return np.clip(warp_affine(x, np.array([[inv, 0.0], [0.0, inv]])), 0.0, 1.0)


def translate(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Shift by ``pixels`` along both axes, each with a random sign (content moves by
    ``(-sx * pixels, -sy * pixels)`` for inverse-map signs ``(sx, sy)``), zero fill."""
    k = int(p["pixels"])

    def make(key):
        return np.eye(2), (float(key[0] * k), float(key[1] * k))
    return _grouped(x, _signs(gens, 2), make)


def motion_kernel(radius: float, sigma: float) -> np.ndarray:
    """Weights of the one-sided motion kernel: ``exp(-i^2 / (2 sigma^2))``, i = 0..2*ceil(r), normalised."""
    width = int(2 * math.ceil(radius) + 1)
    i = np.arange(width, dtype=np.float64)
    k = np.exp(-(i * i) / (2.0 * sigma * sigma))
    return k / k.sum()


def motion_offsets(angle_deg: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer (dx, dy) of each kernel tap along the angle: ``ceil(i cos a - 1/2), ceil(i sin a - 1/2)``."""
    a = np.deg2rad(np.asarray(angle_deg, float))[:, None]
    i = np.arange(width, dtype=np.float64)[None, :]
    return np.ceil(i * np.cos(a) - 0.5).astype(np.int64), np.ceil(i * np.sin(a) - 0.5).astype(np.int64)


def motion_blur(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Motion blur along a random angle in ``[-max_angle, max_angle]`` degrees.

    Output pixel (r, c) = sum_i k_i * x[r + dy_i, c + dx_i] with edge-replicated borders; the
    result is rounded to bytes (the generator round-trips through an 8-bit PNG).
    """
    kern = motion_kernel(float(p["radius"]), float(p["sigma"]))
    width = len(kern)
    angles = np.array([g.uniform(-float(p["max_angle_deg"]), float(p["max_angle_deg"])) for g in gens])
    dx, dy = motion_offsets(angles, width)
    b, h, w = x.shape
    pad = width - 1
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    pw = w + 2 * pad
    flat = padded.reshape(b, -1)
    base = ((np.arange(h)[:, None] + pad) * pw + (np.arange(w)[None, :] + pad)).ravel()
    out = np.zeros((b, h * w))
    for i in range(width):
        idx = base[None, :] + (dy[:, i] * pw + dx[:, i])[:, None]
        out += kern[i] * np.take_along_axis(flat, idx, axis=1)
    return np.rint(np.clip(out, 0.0, 1.0) * 255.0).reshape(b, h, w) / 255.0
