"""MNIST-C corruptions: :func:`corrupt` and :data:`CORRUPTIONS`.

The 15 corruptions of MNIST-C (Mu & Gilmer 2019) plus ``identity``. Names, ids, severity tables
and default severities come from ``data_manifests/mnistc.yaml``; the implementations live in
:mod:`~ogae_core.data.corruption_noise`, :mod:`~ogae_core.data.corruption_geometry` and
:mod:`~ogae_core.data.corruption_overlay` (our own vectorized numpy/scipy code).

Randomness: image ``i`` of a call uses its own generator seeded with
``SeedSequence([seed, corruption_id, indices[i]])``, so the output for an image depends only on
(seed, corruption, index) -- not on the batch it is processed in.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ogae_core.data import corruption_geometry as geo
from ogae_core.data import corruption_noise as noise
from ogae_core.data import corruption_overlay as overlay
from ogae_core.data.manifests import ManifestError, mnistc_manifest

__all__ = ["CORRUPTIONS", "corrupt", "corruption_params", "corruption_id", "image_generators"]

Impl = Callable[[np.ndarray, Sequence[np.random.Generator], dict[str, Any]], np.ndarray]

# name -> (implementation, uses randomness, parameter names it needs)
_IMPL: dict[str, tuple[Impl, bool, tuple[str, ...]]] = {
    "identity": (overlay.identity, False, ()),
    "shot_noise": (noise.shot_noise, True, ("photons",)),
    "impulse_noise": (noise.impulse_noise, True, ("amount", "salt_fraction")),
    "glass_blur": (noise.glass_blur, True, ("sigma", "max_delta", "iterations", "blur_axes", "swap_probability")),
    "motion_blur": (geo.motion_blur, True, ("radius", "sigma", "max_angle_deg")),
    "shear": (geo.shear, True, ("angle",)),
    "scale": (geo.scale, False, ("factor",)),
    "rotate": (geo.rotate, True, ("angle",)),
    "brightness": (overlay.brightness, False, ("value_shift",)),
    "translate": (geo.translate, True, ("pixels",)),
    "stripe": (overlay.stripe, False, ("inverted_columns",)),
    "fog": (noise.fog, True, ("strength", "decay", "map_size", "wibble")),
    "spatter": (noise.spatter, True, ("loc", "scale", "sigma", "threshold", "mask_sigma", "mask_floor", "mud_value")),
    "dotted_line": (overlay.dotted_line, True, ("decay_width", "dash", "max_row")),
    "zigzag": (overlay.zigzag, True, ("decay_width", "length", "width", "first_column", "last_column",
                                      "max_row", "max_tilt")),
    "canny_edges": (overlay.canny_edges, False, ("sigma", "low_threshold", "high_threshold")),
}

CORRUPTIONS: tuple[str, ...] = tuple(  # the manifest read and validated once, not once per name
    name for name, spec in sorted(mnistc_manifest()["corruptions"].items(), key=lambda item: item[1]["id"])
)
"""All corruption names in MNIST-C order (identity first), read from ``mnistc.yaml``."""

_CHUNK = 2048


def _spec(name: str) -> dict[str, Any]:
    table = mnistc_manifest()["corruptions"]
    if name not in table:
        raise ValueError(f"unknown corruption {name!r}; choose from {', '.join(CORRUPTIONS)}")
    if name not in _IMPL:
        raise ManifestError(f"mnistc.yaml lists {name!r} but no implementation exists")
    return table[name]


def corruption_id(name: str) -> int:
    """Stable integer id of a corruption (part of every image's random stream)."""
    return int(_spec(name)["id"])


def corruption_params(name: str, severity: int | None = None) -> dict[str, Any]:
    """Parameters of ``name`` at ``severity`` (default: MNIST-C's), from ``mnistc.yaml``.

    Examples
    --------
    >>> corruption_params("translate")
    {'pixels': 3}
    >>> corruption_params("shot_noise", severity=1)
    {'photons': 60}
    """
    spec = _spec(name)
    levels = spec.get("levels") or []
    params = dict(spec.get("fixed") or {})
    if levels:
        sev = spec["default_severity"] if severity is None else severity
        if isinstance(sev, bool) or not isinstance(sev, (int, np.integer)) or not 1 <= sev <= len(levels):
            raise ValueError(f"severity of {name} must be an integer in 1..{len(levels)}, got {severity!r}")
        params.update(levels[int(sev) - 1])
    elif severity is not None:
        raise ValueError(f"{name} has no severity levels; pass severity=None")
    missing = [k for k in _IMPL[name][2] if k not in params]
    if missing:
        raise ManifestError(f"mnistc.yaml: {name} lacks parameters {missing}")
    return params


def image_generators(seed: int, cid: int, indices: np.ndarray) -> list[np.random.Generator]:
    """One independent generator per image: ``SeedSequence([seed, cid, index])``."""
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, cid, int(i)]))) for i in indices]


def _as_unit_float(images: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0, arr.dtype
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0):
            raise ValueError("float images must be finite and in [0, 1]")
        return arr.astype(np.float64), arr.dtype
    raise ValueError(f"images must be uint8 (0-255) or float in [0, 1], got dtype {arr.dtype}")


def corrupt(
    images: np.ndarray,
    name: str,
    seed: int = 0,
    severity: int | None = None,
    *,
    indices: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Apply one MNIST-C corruption to a batch of digits.

    Parameters
    ----------
    images : numpy.ndarray
        (N, 28, 28) uint8 in 0..255 or float in [0, 1].
    name : str
        One of :data:`CORRUPTIONS`.
    seed : int
        Non-negative seed; with ``indices`` it fixes every image's randomness.
    severity : int, optional
        1..5 for corruptions with levels; default is MNIST-C's severity (``mnistc.yaml``).
    indices : sequence of int, optional
        Global index of each image (default ``0..N-1``); an image with the same (seed, index)
        gets the same corruption whatever batch it is in.

    Returns
    -------
    numpy.ndarray
        Same shape and kind as the input: uint8 stays uint8 (rounded), float stays float.

    Examples
    --------
    >>> x = np.zeros((2, 28, 28), np.uint8)
    >>> corrupt(x, "stripe")[0, 0, :8].tolist()
    [255, 255, 255, 255, 255, 255, 255, 0]
    >>> y = corrupt(x.astype(np.float32), "translate", seed=1)
    >>> y.dtype.name, y.shape
    ('float32', (2, 28, 28))
    """
    impl, random, _ = _IMPL[name] if name in _IMPL else (None, False, ())
    params = corruption_params(name, severity)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    x, dtype = _as_unit_float(images)
    n = len(x)
    idx = np.arange(n) if indices is None else np.asarray(indices)
    if idx.shape != (n,) or not np.issubdtype(idx.dtype, np.integer) or (n and idx.min() < 0):
        raise ValueError(f"indices must be {n} non-negative integers")
    if name == "identity":  # exact copy, no float round trip
        return np.array(images, copy=True)
    out = np.empty_like(x)
    cid = corruption_id(name)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        gens = image_generators(int(seed), cid, idx[start:stop]) if random else [None] * (stop - start)
        out[start:stop] = impl(x[start:stop], gens, params)
    out = np.clip(out, 0.0, 1.0)
    if dtype == np.uint8:
        return np.rint(out * 255.0).astype(np.uint8)
    return out.astype(dtype)
