"""Whole axial slices for the slice baselines (AE/UNet, VQ-VAE + Transformer) and their augmentation.

* Slice grid: an axial slice of the reference grid is ``186 x 218`` (x by y); the networks need
  sizes divisible by their downsampling, so slices are zero-padded (or cropped) symmetrically to
  :data:`SLICE_SHAPE` = ``192 x 224`` (divisible by 32) by :func:`fit_to_shape`, and score maps
  are cut back by :func:`restore_shape`. Voxels outside the brain mask are set to 0.
* :func:`training_slices` -- every axial slice that holds brain voxels, from a list of subjects
  (loaded one at a time), as ``(N, 1, H, W)`` float32 in [0, 1].
* :func:`augment_slices` -- the training augmentation of the release (random translation up to
  10 % of each side, brightness shift of +-0.1, clipped to [0, 1]). It belongs to the training
  pipeline only: scoring never augments (the release applied it inside ``forward``, also at
  evaluation -- not copied).

Examples
--------
>>> import numpy as np
>>> a = np.ones((186, 218), np.float32)
>>> fit_to_shape(a, (192, 224)).shape, bool(restore_shape(fit_to_shape(a, (192, 224)), (186, 218)).sum() == a.sum())
((192, 224), True)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["SLICE_SHAPE", "augment_slices", "fit_to_shape", "restore_shape", "slice_stack", "training_slices"]

#: Network slice size: the reference grid's 186 x 218 padded to multiples of 32.
SLICE_SHAPE = (192, 224)


def _offsets(size: int, target: int) -> tuple[int, int]:
    """(start in the source, start in the target) of a centred pad or crop."""
    if target >= size:
        return 0, (target - size) // 2
    return (size - target) // 2, 0


def fit_to_shape(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Centre ``image`` (``(..., h, w)``) in a zero array of last dims ``shape`` (pads or crops).

    Examples
    --------
    >>> import numpy as np
    >>> fit_to_shape(np.ones((2, 3)), (4, 1)).tolist()
    [[0.0], [1.0], [1.0], [0.0]]
    """
    image = np.asarray(image)
    out = np.zeros(image.shape[:-2] + tuple(shape), image.dtype)
    (sy, ty), (sx, tx) = _offsets(image.shape[-2], shape[0]), _offsets(image.shape[-1], shape[1])
    h, w = min(image.shape[-2], shape[0]), min(image.shape[-1], shape[1])
    out[..., ty:ty + h, tx:tx + w] = image[..., sy:sy + h, sx:sx + w]
    return out


def restore_shape(image: np.ndarray, shape: Sequence[int], fill: float = 0.0) -> np.ndarray:
    """Inverse of :func:`fit_to_shape`: back to last dims ``shape`` (cropped parts get ``fill``).

    Examples
    --------
    >>> import numpy as np
    >>> restore_shape(np.arange(4.0).reshape(4, 1), (2, 3), fill=-1).tolist()
    [[-1.0, 1.0, -1.0], [-1.0, 2.0, -1.0]]
    """
    image = np.asarray(image)
    out = np.full(image.shape[:-2] + tuple(shape), fill, image.dtype)
    (ty, sy), (tx, sx) = _offsets(shape[0], image.shape[-2]), _offsets(shape[1], image.shape[-1])
    h, w = min(image.shape[-2], shape[0]), min(image.shape[-1], shape[1])
    out[..., ty:ty + h, tx:tx + w] = image[..., sy:sy + h, sx:sx + w]
    return out


def slice_stack(t1: np.ndarray, brain: np.ndarray, shape: Sequence[int] = SLICE_SHAPE) -> np.ndarray:
    """Axial slices of one volume ``(X, Y, Z)`` as ``(Z, 1, H, W)`` float32, zero outside the brain.

    Examples
    --------
    >>> import numpy as np
    >>> slice_stack(np.ones((6, 5, 2)), np.ones((6, 5, 2), bool), (8, 8)).shape
    (2, 1, 8, 8)
    """
    t1, brain = np.asarray(t1), np.asarray(brain, bool)
    if t1.ndim != 3 or t1.shape != brain.shape:
        raise ValueError(f"t1 and brain must be 3-D volumes of one shape; got {t1.shape} and {brain.shape}")
    masked = np.where(brain, t1, 0).astype(np.float32)
    return fit_to_shape(np.moveaxis(masked, 2, 0), shape)[:, None]


def training_slices(subjects: Sequence, shape: Sequence[int] = SLICE_SHAPE) -> np.ndarray:
    """Every axial slice with brain voxels of ``subjects`` (loaded one at a time), ``(N, 1, H, W)``.

    ``subjects`` are :class:`ogae_core.data.mri.Subject` objects (anything with ``load()``
    returning ``t1`` and ``brain``).
    """
    stacks = []
    for subject in subjects:
        v = subject.load()
        keep = np.asarray(v.brain).reshape(-1, v.brain.shape[2]).any(0)
        stacks.append(slice_stack(v.t1, v.brain, shape)[keep])
    if not stacks or sum(len(s) for s in stacks) == 0:
        raise ValueError("no slice with brain voxels in the given subjects")
    return np.concatenate(stacks)


def augment_slices(x: torch.Tensor, translation: float = 0.1, brightness: float = 0.1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly translated and brightness-shifted copies of slices ``x`` ``(N, C, H, W)`` (training only).

    Each slice moves by a whole number of pixels drawn uniformly in
    ``[-translation * size, translation * size]`` on each axis (zero fill), then gets a shift
    drawn uniformly in ``[-brightness, brightness]``, and is clipped to [0, 1].

    Examples
    --------
    >>> import torch
    >>> x = torch.full((3, 1, 10, 10), 0.5)
    >>> y = augment_slices(x, translation=0.0, brightness=0.1, generator=torch.Generator().manual_seed(0))
    >>> bool(((y - 0.5).abs() <= 0.1 + 1e-6).all()), bool((augment_slices(x, 0.0, 0.0) == x).all())
    (True, True)
    """
    if translation < 0 or brightness < 0:
        raise ValueError(f"translation and brightness must be >= 0; got {translation!r}, {brightness!r}")
    n, _, h, w = x.shape
    max_dy, max_dx = int(translation * h), int(translation * w)
    dy = torch.randint(-max_dy, max_dy + 1, (n,), generator=generator).tolist()
    dx = torch.randint(-max_dx, max_dx + 1, (n,), generator=generator).tolist()
    shift = (torch.rand(n, generator=generator) * 2 - 1) * brightness
    out = torch.zeros_like(x)
    for i in range(n):
        ys, yt = (dy[i], 0) if dy[i] >= 0 else (0, -dy[i])
        xs, xt = (dx[i], 0) if dx[i] >= 0 else (0, -dx[i])
        out[i, :, yt:h - ys, xt:w - xs] = x[i, :, ys:h - yt, xs:w - xt]
    return (out + shift.to(x.device, x.dtype).view(n, 1, 1, 1)).clamp_(0, 1)
