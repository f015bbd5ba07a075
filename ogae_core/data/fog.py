"""The MNIST-C ``fog`` corruption: a plasma-fractal haze, computed exactly but fast.

MNIST-C draws a 256 x 256 diamond-square ("plasma") height map on a torus, normalises it by its
global minimum and maximum, and adds ``strength`` times its top-left 28 x 28 corner to the digit.
Building the whole map for every digit costs ~65,000 points per image, too slow for 60,000
digits in numpy. We compute the same numbers with less work:

1. all levels but the last ones are built on the full torus;
2. the last level adds, to every new point, an average of grid neighbours plus a noise term of
   magnitude at most ``w**2`` (``w`` = the last level's wibble). Hence no new point can exceed
   ``max(grid) + 1.5 w**2`` and only new points within 2 pixels of a grid point above
   ``max(grid) - 1.5 w**2`` can beat the grid's maximum (same for the minimum). Those few
   candidates and the 28 x 28 crop are computed exactly on small windows. We apply this to the
   last two levels (a sixteenth of the points is built on the full torus).

The noise is counter-based (SplitMix64 of the image key and the point's position in the level
order), so any single point's noise can be drawn without drawing the others.
:func:`plasma_fractal` is the plain full-map reference; the tests check both agree exactly.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["fog", "plasma_fractal", "fog_haze", "counter_uniform"]

_SUB = 512  # maps built at once
_FAST_LEVELS = 2  # last levels computed only where needed
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def counter_uniform(keys: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) float32 numbers: SplitMix64 output ``pos + 1`` of the stream seeded by ``keys``.

    ``keys`` and ``pos`` broadcast against each other (uint64 arithmetic wraps by design); the
    top 24 bits of each output make one float32 exactly.

    Examples
    --------
    >>> u = counter_uniform(np.array([[1], [2]], np.uint64), np.arange(3, dtype=np.uint64)[None])
    >>> u.shape, u.dtype.name, bool(((u >= 0) & (u < 1)).all())
    ((2, 3), 'float32', True)
    """
    z = np.add(np.asarray(keys, np.uint64), (np.asarray(pos, np.uint64) + np.uint64(1)) * _GAMMA)
    t = np.empty_like(z)
    for shift, mult in ((30, _M1), (27, _M2)):
        np.right_shift(z, np.uint64(shift), out=t)
        z ^= t
        z *= mult
    np.right_shift(z, np.uint64(31), out=t)
    z ^= t
    z >>= np.uint64(40)
    return z.astype(np.float32) * np.float32(1.0 / 16777216.0)


def plasma_fractal(noise: np.ndarray, size: int, decay: float, wibble: float) -> np.ndarray:
    """Full diamond-square maps on a torus, normalised to [0, 1] per map (reference version).

    Parameters
    ----------
    noise : numpy.ndarray
        Uniform [0, 1) numbers, shape (B, size * size - 1), consumed level by level: square
        centres, then edge midpoints on grid rows, then on grid columns (row-major each).
    size : int
        Power of two.
    decay, wibble : float
        A point of a level gets ``wibble**2 * U(-1, 1)`` added to the mean of its four
        neighbours; ``wibble`` is divided by ``decay`` after each level.

    Returns
    -------
    numpy.ndarray
        Maps of shape (B, size, size).

    Examples
    --------
    >>> m = plasma_fractal(np.random.default_rng(0).random((2, 15)), 4, 2.0, 100.0)
    >>> m.shape, float(m.min()), float(m.max())
    ((2, 4, 4), 0.0, 1.0)
    """
    grid = _levels(noise, size, decay, wibble)
    grid -= grid.min(axis=(1, 2), keepdims=True)
    top = grid.max(axis=(1, 2), keepdims=True)
    return grid / np.where(top > 0, top, 1.0)


def _levels(noise: np.ndarray, size: int, decay: float, wibble: float) -> np.ndarray:
    """Run all levels of a ``size`` map; returns (B, size, size).

    The grid of spacing 2 of a ``2 size`` map is exactly the full ``size`` map built from the same
    noise (every level is the same up to a factor 2 in coordinates), which the fast path uses."""
    if size < 2 or size & (size - 1):
        raise ValueError(f"map size must be a power of two >= 2, got {size}")
    b = noise.shape[0]
    grid = np.zeros((b, size, size), dtype=np.float32)
    step, wib, pos = size, float(wibble), 0
    while step > 1:
        half, n = step // 2, size // step
        amp = np.float32(wib * wib)

        def draw(k: int, n: int = n, amp: np.float32 = amp, pos: int = pos) -> np.ndarray:
            u = noise[:, pos + k * n * n:pos + (k + 1) * n * n].reshape(b, n, n)
            return amp * (np.float32(2.0) * u - np.float32(1.0))

        corners = grid[:, 0::step, 0::step]
        sq = corners + np.roll(corners, -1, axis=1)
        grid[:, half::step, half::step] = (sq + np.roll(sq, -1, axis=2)) / 4.0 + draw(0)
        centres = grid[:, half::step, half::step]
        grid[:, 0::step, half::step] = (centres + np.roll(centres, 1, axis=1) + corners
                                        + np.roll(corners, -1, axis=2)) / 4.0 + draw(1)
        grid[:, half::step, 0::step] = (centres + np.roll(centres, 1, axis=2) + corners
                                        + np.roll(corners, -1, axis=1)) / 4.0 + draw(2)
        pos += 3 * n * n
        step //= 2
        wib /= float(decay)
    return grid


def _refine(win: np.ndarray, key: np.ndarray, i0: np.ndarray, j0: np.ndarray, n: int, amp: float) -> np.ndarray:
    """One diamond-square level on windows of an n x n lattice.

    ``win`` (K, m, m) holds lattice points ``i0 .. i0 + m - 1`` x ``j0 ..`` (indices modulo n)
    of the maps whose noise keys are ``key`` (K, 1, 1). Returns the (K, 2m - 1, 2m - 1) points
    of the 2n x 2n lattice between them; entries [1:-1, 1:-1] are exact, the outer ring is NaN
    where a neighbour outside the window would be needed.
    """
    m = win.shape[1]
    ar = np.arange(m - 1)
    rows = (i0[:, None] + ar[None, :]) % n
    cols = (j0[:, None] + ar[None, :]) % n
    base = n * n - 1  # noise positions used by the coarser levels

    def noise(kind: int, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        pos = (base + kind * n * n + r[:, :, None] * n + c[:, None, :]).astype(np.uint64)
        return amp * (2.0 * counter_uniform(key, pos).astype(np.float64) - 1.0)

    out = np.full((len(win), 2 * m - 1, 2 * m - 1), np.nan)
    out[:, 0::2, 0::2] = win
    centres = (win[:, :-1, :-1] + win[:, 1:, :-1] + win[:, :-1, 1:] + win[:, 1:, 1:]) / 4.0 + noise(0, rows, cols)
    out[:, 1::2, 1::2] = centres
    # lattice-row midpoints (even row, odd column): centres above and below, lattice points left and right
    out[:, 2:-1:2, 1::2] = (centres[:, :-1] + centres[:, 1:] + win[:, 1:-1, :-1] + win[:, 1:-1, 1:]) / 4.0 \
        + noise(1, rows[:, 1:], cols)
    # lattice-column midpoints (odd row, even column): centres left and right, lattice points above and below
    out[:, 1::2, 2:-1:2] = (centres[:, :, :-1] + centres[:, :, 1:] + win[:, :-1, 1:-1] + win[:, 1:, 1:-1]) / 4.0 \
        + noise(2, rows, cols[:, 1:])
    return out


def _finish(g: np.ndarray, keys: np.ndarray, bidx: np.ndarray, i0: np.ndarray, j0: np.ndarray, m: int,
            amps: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the last ``len(amps)`` levels on windows of the coarse maps ``g`` (B, n, n).

    Returns the exact full-resolution windows and the full-resolution indices of their origin.
    """
    n = g.shape[1]
    ar = np.arange(m)
    win = g[bidx[:, None, None], ((i0[:, None] + ar) % n)[:, :, None], ((j0[:, None] + ar) % n)[:, None, :]]
    win = win.astype(np.float64)
    key = keys[bidx][:, None, None]
    for amp in amps:
        win = _refine(win, key, i0, j0, n, amp)[:, 1:-1, 1:-1]
        i0, j0, n = 2 * i0 + 1, 2 * j0 + 1, 2 * n
    return win, i0, j0


def _extreme(g: np.ndarray, keys: np.ndarray, amps: Sequence[float], sign: float) -> np.ndarray:
    """Exact max (sign=+1) or min (sign=-1) of every full map, from its coarse lattice ``g``.

    A point added by the last L levels exceeds the coarse maximum T only if some coarse point
    within ``2 (2^L - 1)`` pixels is above ``T - 1.5 sum(amps)``: a level adds at most its
    ``amp`` to the mean of its neighbours (1.5 ``amp`` for edge midpoints, whose neighbours
    include new centres), and those neighbours lie at most 2^k pixels away.
    """
    levels = len(amps)
    sg = sign * g.astype(np.float64)
    best = sg.max(axis=(1, 2))
    slack = 1e-4 * (np.abs(sg).max(axis=(1, 2)) + sum(amps))  # float32 rounding of g, with room to spare
    bb, ii, jj = np.nonzero(sg >= (best - 1.5 * sum(amps) - slack)[:, None, None])
    half = int(np.ceil(3 * (2**levels - 1) / 2**levels))  # window half-width in coarse points
    vals, _, _ = _finish(g, keys, bb, ii - half, jj - half, 2 * half + 1, amps)
    np.maximum.at(best, bb, (sign * vals).reshape(len(bb), -1).max(axis=1))
    return sign * best


def fog_haze(keys: np.ndarray, shape: tuple[int, int], size: int, decay: float, wibble: float) -> np.ndarray:
    """Normalised plasma haze (B, H, W): the top-left corner of each full map, min-max scaled."""
    levels = _FAST_LEVELS
    if size < 2 ** (levels + 1) or size & (size - 1):
        raise ValueError(f"map size must be a power of two >= {2 ** (levels + 1)}, got {size}")
    if len(keys) > _SUB:
        return np.concatenate([fog_haze(keys[i:i + _SUB], shape, size, decay, wibble)
                               for i in range(0, len(keys), _SUB)])
    b = len(keys)
    n = size >> levels
    noise = counter_uniform(keys[:, None], np.arange(n * n - 1, dtype=np.uint64)[None, :])
    g = _levels(noise, n, decay, wibble)  # = the points of spacing 2^levels of the full maps
    total = int(np.log2(size))
    amps = [(float(wibble) / float(decay) ** k) ** 2 for k in range(total - levels, total)]
    h, w = shape
    # a window starting one coarse point before the corner, wide enough for the crop after refining
    span_px = max(h, w) + 2 ** (levels + 1)
    m = -(-span_px // 2**levels) + 2
    win, r0, c0 = _finish(g, keys, np.arange(b), np.full(b, -1), np.full(b, -1), m, amps)
    dr, dc = int(-r0[0]), int(-c0[0])
    crop = win[:, dr:dr + h, dc:dc + w]
    lo, hi = _extreme(g, keys, amps, -1.0), _extreme(g, keys, amps, 1.0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (crop - lo[:, None, None]) / span[:, None, None]


def fog(x: np.ndarray, gens: Sequence[np.random.Generator], p: dict[str, Any]) -> np.ndarray:
    """Add ``strength`` x the plasma haze, then rescale by ``max / (max + strength)`` (per digit)."""
    if len(gens) == 0:
        return x.copy()
    keys = np.array([g.integers(0, 2**63, dtype=np.int64) for g in gens]).astype(np.uint64)
    haze = fog_haze(keys, x.shape[1:], int(p["map_size"]), float(p["decay"]), float(p["wibble"]))
    strength = float(p["strength"])
    top = x.max(axis=(1, 2), keepdims=True)
    return np.clip((x + strength * haze) * top / (top + strength), 0.0, 1.0)
