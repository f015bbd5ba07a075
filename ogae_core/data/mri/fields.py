"""Smooth random fields and sampling helpers of the simulator.

A smooth field is a cubic B-spline whose coefficients are white noise on a coarse grid; it is
evaluated on a regular output grid with three small interpolation matrices (separable, no loop
per voxel), so a full 186x218x135 field costs a fraction of a second.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> f = smooth_field(rng, (30, 40, 10), spacing=8.0, rms=2.0)
>>> f.shape, round(float(np.sqrt((f ** 2).mean())), 1)
((30, 40, 10), 2.0)
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["bspline_matrix", "sample", "smooth_field"]


def _cubic_bspline(t: np.ndarray) -> np.ndarray:
    t = np.abs(t)
    return np.where(t < 1, 2 / 3 - t ** 2 + t ** 3 / 2, np.where(t < 2, (2 - t) ** 3 / 6, 0.0))


def bspline_matrix(n_out: int, spacing: float, start: int = 0) -> np.ndarray:
    """(n_out, n_coef) weights of a cubic B-spline with knots every ``spacing`` voxels.

    Row ``i`` evaluates the spline at voxel ``start + i``; coefficient ``k`` sits at
    ``(k - 1) * spacing``.
    """
    pos = (np.arange(n_out) + start) / spacing + 1.0
    n_coef = int(np.ceil((n_out + start) / spacing)) + 3
    return _cubic_bspline(pos[:, None] - np.arange(n_coef)[None, :])


def smooth_field(rng: np.random.Generator, shape: tuple[int, int, int], spacing: float, rms: float,
                 full_shape: tuple[int, int, int] | None = None, z_start: int = 0) -> np.ndarray:
    """A smooth random field on ``shape`` with root-mean-square ``rms`` over ``full_shape``.

    The coefficients are drawn for the whole grid ``full_shape`` (default ``shape``) and the
    field is evaluated on the slab ``z_start:z_start + shape[2]`` of it, so a slab of a subject
    is the same field as the corresponding slices of the full subject.
    """
    full = tuple(full_shape or shape)
    mats = [bspline_matrix(full[0], spacing), bspline_matrix(full[1], spacing),
            bspline_matrix(shape[2], spacing, start=z_start)]
    n_coef = (mats[0].shape[1], mats[1].shape[1], bspline_matrix(full[2], spacing).shape[1])
    coef = rng.standard_normal(n_coef)
    # normalise on the full grid: rms of the spline of white noise, computed from the weights
    full_z = bspline_matrix(full[2], spacing)
    var = np.mean((mats[0] ** 2).sum(1)) * np.mean((mats[1] ** 2).sum(1)) * np.mean((full_z ** 2).sum(1))
    coef = coef[:, :, : mats[2].shape[1]] * (rms / np.sqrt(var))
    out = (mats[0] @ coef.reshape(coef.shape[0], -1)).reshape(full[0], coef.shape[1], coef.shape[2])
    out = np.matmul(mats[1][None], out)                     # (X, Y, n_coef_z)
    return (out @ mats[2].T).astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _trilinear(volume, x, y, z, out):  # pragma: no cover - compiled
    nx, ny, nz = volume.shape
    for n in range(x.size):
        fx = min(max(x[n], 0.0), nx - 1.0)
        fy = min(max(y[n], 0.0), ny - 1.0)
        fz = min(max(z[n], 0.0), nz - 1.0)
        i = min(int(fx), nx - 2)
        j = min(int(fy), ny - 2)
        k = min(int(fz), nz - 2)
        dx, dy, dz = fx - i, fy - j, fz - k
        c00 = volume[i, j, k] * (1 - dx) + volume[i + 1, j, k] * dx
        c10 = volume[i, j + 1, k] * (1 - dx) + volume[i + 1, j + 1, k] * dx
        c01 = volume[i, j, k + 1] * (1 - dx) + volume[i + 1, j, k + 1] * dx
        c11 = volume[i, j + 1, k + 1] * (1 - dx) + volume[i + 1, j + 1, k + 1] * dx
        out[n] = (c00 * (1 - dy) + c10 * dy) * (1 - dz) + (c01 * (1 - dy) + c11 * dy) * dz


def sample(volume: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """``volume`` (float32, each side >= 2) interpolated trilinearly at ``coords`` (3, ...) (edges repeat).

    Equal to ``scipy.ndimage.map_coordinates(volume, coords, order=1, mode="nearest")`` up to
    float32 rounding, several times faster.

    Examples
    --------
    >>> v = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    >>> sample(v, np.array([[0.5], [0.5], [0.5]], np.float32)).tolist()
    [3.5]
    """
    volume = np.ascontiguousarray(volume, dtype=np.float32)
    flat = [np.ascontiguousarray(c, dtype=np.float32).ravel() for c in coords]
    out = np.empty(flat[0].size, np.float32)
    _trilinear(volume, flat[0], flat[1], flat[2], out)
    return out.reshape(coords.shape[1:])
