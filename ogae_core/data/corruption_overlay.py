"""MNIST-C pixel-wise and overlay corruptions: identity, brightness, stripe, dotted line,
zigzag, Canny edges. Calling convention as in :mod:`ogae_core.data.corruption_noise`.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
from scipy import ndimage

__all__ = ["identity", "brightness", "stripe", "dotted_line", "zigzag", "canny_edges", "line_layer"]

Gens = Sequence[np.random.Generator]
_LUMA = (0.2125, 0.7154, 0.0721)  # ITU-R 709 weights of the RGB -> grey conversion


def identity(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """The clean digit."""
    return x.copy()


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    delta = mx - mn
    safe = np.where(delta > 0, delta, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    h = np.where(mx == r, (g - b) / safe, np.where(mx == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    s = np.where(mx > 0, delta / np.where(mx > 0, mx, 1.0), 0.0)
    return np.stack([h, s, mx], axis=-1)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    pq = np.stack([v, v * (1 - f * s), v * (1 - s), v * (1 - s), v * (1 - (1 - f) * s), v], axis=-1)
    k = (i.astype(np.int64) % 6)[..., None]
    # for sector k the (r, g, b) picks from [v, q, p, p, t, v] follow a fixed rotation
    order = np.array([[0, 4, 2], [1, 0, 2], [2, 0, 4], [2, 1, 0], [4, 2, 0], [0, 2, 1]])
    return np.take_along_axis(pq, order[k[..., 0]], axis=-1)


def brightness(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Grey -> RGB -> HSV, value channel + ``value_shift`` (clipped to 1), -> RGB -> grey.

    The map is pixel-wise, so byte-valued inputs (all values k / 255) go through a 256-entry
    table computed with the same formula.
    """
    q = x * 255.0
    levels = np.rint(q)
    if x.size > 4096 and np.array_equal(q, levels):
        table = _brightness(np.arange(256.0) / 255.0, p)
        return table[levels.astype(np.intp)]
    return _brightness(x, p)


def _brightness(x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    hsv = _rgb_to_hsv(np.repeat(x[..., None], 3, axis=-1))
    hsv[..., 2] = np.clip(hsv[..., 2] + float(p["value_shift"]), 0.0, 1.0)
    rgb = _hsv_to_rgb(hsv)
    return np.clip(rgb @ np.array(_LUMA), 0.0, 1.0)


def stripe(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Invert the listed column ranges (``[start, stop)``)."""
    out = x.copy()
    for start, stop in p["inverted_columns"]:
        out[:, :, int(start):int(stop)] = 1.0 - out[:, :, int(start):int(stop)]
    return out


def line_layer(c0: float, r0: float, c1: float, r1: float, shape: tuple[int, int], decay_width: float) -> np.ndarray:
    """Intensity of a line through (c0, r0)-(c1, r1), kept on columns ``[floor(c0), ceil(c1))``.

    The value at vertical distance ``d`` from the line is ``1 + log(1 - d / decay_width)``,
    clipped to [0, 1] (so about 1.3 pixels wide); a vertical segment (c0 == c1) draws nothing.

    Examples
    --------
    >>> lay = line_layer(0, 5, 27, 5, (28, 28), 2.3)
    >>> float(lay[5, 10]), float(lay[9, 10]), float(lay[5, 27])
    (1.0, 0.0, 0.0)
    """
    h, w = shape
    if c1 == c0:
        return np.zeros(shape)
    cc = np.arange(w, dtype=np.float64)[None, :]
    rr = np.arange(h, dtype=np.float64)[:, None]
    slope = (r1 - r0) / (c1 - c0)
    dist = np.clip(np.abs(rr - (slope * (cc - c0) + r0)), 0.0, decay_width - 1e-10)
    lay = np.clip(np.log(1.0 - dist / decay_width) + 1.0, 0.0, 1.0)
    lay[:, : max(int(math.floor(c0)), 0)] = 0.0
    lay[:, int(math.ceil(c1)):] = 0.0
    return lay


def dotted_line(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """A line from column 0 to the last column between two random rows, with every other
    ``dash``-wide block of columns removed (starting with the first)."""
    h, w = x.shape[1:]
    rows = np.array([g.integers(0, int(p["max_row"]), size=2) for g in gens]).reshape(len(gens), 2)
    dash = int(p["dash"])
    keep = ((np.arange(w) // dash) % 2 == 1).astype(np.float64)
    layers = np.stack([line_layer(0, r0, w - 1, r1, (h, w), float(p["decay_width"])) for r0, r1 in rows]) \
        if len(gens) else np.zeros_like(x)
    return np.clip(x + layers * keep[None, None, :], 0.0, 1.0)


@functools.lru_cache(maxsize=1024)
def _zigzag_layer(r0: int, r1: int, params: tuple[tuple[str, Any], ...], shape: tuple[int, int]) -> np.ndarray:
    p = dict(params)
    a, b = float(p["length"]), float(p["width"])
    c0, c1 = float(p["first_column"]), float(p["last_column"])
    theta = math.atan((r1 - r0) / (c1 - c0))
    d = (c1 - c0) / math.cos(theta)
    pts = [(0.0, 0.0)]
    r_i = 0.0
    for i in range(int((d - a) // (2 * a)) + 1):
        r_i = (-1) ** i * b
        pts.append(((2 * i + 1) * a, r_i))
    max_c = (2 * a) * (d // (2 * a))
    if d != max_c:
        pts.append((d, r_i / (2 * (d - max_c))))
    arr = np.array(pts).T
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    cs, rs = rot @ arr
    cs, rs = cs + c0, rs + r0
    total = np.zeros(shape)
    for i in range(1, len(cs)):
        total += line_layer(cs[i - 1], rs[i - 1], cs[i], rs[i], shape, float(p["decay_width"]))
    return total


def zigzag(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """A zigzag of ``length`` x ``width`` teeth along a line from (first_column, r0) to
    (last_column, r1), r0 uniform in [0, max_row), r1 - r0 uniform in [-max_tilt, max_tilt).

    Segments are added with clipping at 1; since all layers are non-negative this equals adding
    their sum once and clipping, which lets one layer per (r0, r1) be cached.
    """
    h, w = x.shape[1:]
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in p.items()))
    out = np.empty_like(x)
    for i, g in enumerate(gens):
        r0 = int(g.integers(0, int(p["max_row"])))
        r1 = r0 + int(g.integers(-int(p["max_tilt"]), int(p["max_tilt"])))
        out[i] = x[i] + _zigzag_layer(r0, r1, key, (h, w))
    return np.clip(out, 0.0, 1.0)


def _sobel(img: np.ndarray, axis: int) -> np.ndarray:
    """Sobel derivative of a (B, H, W) batch along image axis 1 or 2 (smoothing on the other)."""
    other = 2 if axis == 1 else 1
    d = ndimage.correlate1d(img, [-1.0, 0.0, 1.0], axis=axis, mode="reflect")
    return ndimage.correlate1d(d, [1.0, 2.0, 1.0], axis=other, mode="reflect")


def canny_edges(x: np.ndarray, gens: Gens, p: dict[str, Any]) -> np.ndarray:
    """Binary Canny edge map: Gaussian(``sigma``) smoothing normalised at the borders, Sobel
    gradients, non-maximum suppression interpolated along the gradient, hysteresis with
    ``low_threshold`` / ``high_threshold`` on the gradient magnitude (8-connected), border
    pixels excluded."""
    b, h, w = x.shape
    sig = (0.0, float(p["sigma"]), float(p["sigma"]))
    weight = ndimage.gaussian_filter(np.ones((1, h, w)), sig, mode="constant")
    sm = ndimage.gaussian_filter(x, sig, mode="constant") / weight
    gi, gj = _sobel(sm, 1), _sobel(sm, 2)
    mag = np.hypot(gi, gj)
    ai, aj = np.abs(gi), np.abs(gj)
    vertical = ai >= aj
    # primary step along the dominant gradient axis, diagonal step adds the other axis' sign
    si, sj = np.sign(gi).astype(np.int64), np.sign(gj).astype(np.int64)
    p_r, p_c = np.where(vertical, si, 0), np.where(vertical, 0, sj)
    d_r, d_c = np.where(vertical, si, si), np.where(vertical, sj, sj)
    wdiag = np.where(vertical, aj / np.where(ai > 0, ai, 1.0), ai / np.where(aj > 0, aj, 1.0))
    rr, cc = np.mgrid[0:h, 0:w]
    interior = (rr > 0) & (rr < h - 1) & (cc > 0) & (cc < w - 1)
    cand = interior[None] & (mag > 0)
    flat = mag.reshape(b, -1)

    def at(dr: np.ndarray, dc: np.ndarray) -> np.ndarray:
        r = np.clip(rr[None] + dr, 0, h - 1)
        c = np.clip(cc[None] + dc, 0, w - 1)
        return np.take_along_axis(flat, (r * w + c).reshape(b, -1), axis=1).reshape(b, h, w)

    plus = (1 - wdiag) * at(p_r, p_c) + wdiag * at(d_r, d_c)
    minus = (1 - wdiag) * at(-p_r, -p_c) + wdiag * at(-d_r, -d_c)
    local_max = cand & (mag >= plus) & (mag >= minus)
    low = local_max & (mag >= float(p["low_threshold"]))
    high = local_max & (mag >= float(p["high_threshold"]))
    struct = np.zeros((3, 3, 3), bool)
    struct[1] = True  # 8-connectivity inside each image, never across images
    labels, n = ndimage.label(low, structure=struct)
    good = np.zeros(n + 1, bool)
    good[np.unique(labels[high])] = True
    good[0] = False
    return good[labels].astype(np.float64)
