"""Latent codes of every patch of an axial slice in one convolutional pass (dense scoring).

The S-H2 encoder (:class:`ogae_core.nets.PatchBackbone`) is fully convolutional: unpadded
stride-1 convolutions, batch norms that are a per-channel affine map in eval mode, and
pointwise activations. Run once over a whole zero-padded slice (padded by ``p // 2`` as
:func:`~ogae_core.volumes.patch_training.patches_at` pads), it gives a feature map ``F`` of
``C`` channels, and the code of the patch centred on voxel ``(i, j)`` is the window
``F[:, i:i + L, j:j + L]`` (``L``: the side of the per-patch encoder's output map), flattened
in the per-patch encoder's ``(channel, row, column)`` order. Every convolution is then computed
once per pixel instead of once per overlapping patch (about 35x fewer operations for 15x15
patches and dense locations).

* :func:`convolutional_encoder` -- the encoder layers and the code window ``(C, Lh, Lw)``, or
  the reason the network cannot be run that way (another layer type, padding, stride,
  dilation, an overridden ``encode``...); the window is derived from the network's layers;
* :func:`slice_feature_map` -- ``F`` of one or several slices;
* :func:`codes_from_feature_map` -- the codes ``(V, C * Lh * Lw)`` at given voxels;
* :func:`slice_codes` -- the codes of one slice at given voxels by the cheaper of the two
  paths (:func:`encoding_plan`): convolutional when the network allows it and the locations
  are dense, else patch by patch (:func:`~ogae_core.volumes.patch_training.encode_patches`).
  Both give the same codes up to float32 rounding.

Examples
--------
>>> import numpy as np, torch
>>> from ogae_core.methods import build_method
>>> from ogae_core.volumes.patch_training import encode_patches, patches_at
>>> _ = torch.manual_seed(0)
>>> method = build_method("ae", {}, {"kind": "patch"}).eval()
>>> t1 = np.random.default_rng(0).random((30, 34), dtype=np.float32)
>>> xy = np.argwhere(np.ones((30, 34), bool))
>>> fast = slice_codes(method, t1, xy, 15)
>>> slow = encode_patches(method, patches_at(t1, xy, 15))
>>> fast.shape, bool(torch.allclose(fast, slow, atol=1e-5))
(torch.Size([1020, 400]), True)
>>> encoding_plan(method, 1020, (30, 34), 15)[0], encoding_plan(method, 3, (30, 34), 15)[0]
('convolutional', 'per-patch')
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from numba import prange
from torch import nn

from ogae_core.data.mri.patches import check_patch_size
from ogae_core.methods import Method
from ogae_core.nets import PatchBackbone
from ogae_core.ocsvm.cpu_engine.builds import serial_and_parallel
from ogae_core.volumes.patch_training import encode_patches, patches_at

__all__ = ["codes_from_feature_map", "convolutional_encoder", "encoding_plan", "slice_codes", "slice_feature_map"]

#: Layers that act on each pixel alone (with the same function at every pixel).
POINTWISE = (nn.GELU, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Softplus)


def _conv_problem(conv: nn.Conv2d) -> str | None:
    if tuple(conv.stride) != (1, 1):
        return f"stride {tuple(conv.stride)}"
    if isinstance(conv.padding, str) or tuple(conv.padding) != (0, 0):
        return f"padding {conv.padding}"
    if tuple(conv.dilation) != (1, 1):
        return f"dilation {tuple(conv.dilation)}"
    return None


def convolutional_encoder(method: Method, patch_size: int) -> tuple[nn.Module | None, tuple, str]:
    """``(layers, (C, Lh, Lw), "")`` when ``method``'s encoder runs on whole slices, else ``(None, (), reason)``.

    ``layers`` map a ``(N, 1, H, W)`` image to its ``(N, C, H - Rh + 1, W - Rw + 1)`` feature
    map, where ``Rh x Rw`` is the receptive field; ``Lh = patch_size - Rh + 1`` (and ``Lw``) is
    the side of one patch's code map, checked against the network's code length.

    Examples
    --------
    >>> from ogae_core.methods import build_method
    >>> layers, window, why = convolutional_encoder(build_method("sae", {}, {"kind": "patch"}), 15)
    >>> window, why
    ((16, 5, 5), '')
    >>> convolutional_encoder(build_method("ae"), 15)[2]   # the MNIST backbone
    'MnistBackbone.encode is not the S-H2 patch encoder'
    """
    patch_size = check_patch_size(patch_size)
    if type(method).encode is not Method.encode:
        return None, (), f"{type(method).__name__} overrides encode()"
    backbone = getattr(method, "backbone", None)
    layers = getattr(backbone, "encoder_conv", None)
    if not isinstance(layers, nn.Sequential):
        return None, (), "the network has no convolutional patch encoder (encoder_conv)"
    if not isinstance(backbone, PatchBackbone) or type(backbone).encode is not PatchBackbone.encode:
        return None, (), f"{type(backbone).__name__}.encode is not the S-H2 patch encoder"
    rh = rw = 1
    channels = 1
    for i, layer in enumerate(layers):
        if type(layer) is nn.Conv2d:
            problem = _conv_problem(layer)
            if problem:
                return None, (), f"encoder layer {i} (Conv2d) has {problem}"
            rh, rw = rh + layer.kernel_size[0] - 1, rw + layer.kernel_size[1] - 1
            channels = layer.out_channels
        elif isinstance(layer, nn.BatchNorm2d):
            if layer.running_mean is None or layer.running_var is None:
                return None, (), f"encoder layer {i} (batch norm) has no running statistics (not an affine map in eval mode)"
        elif not isinstance(layer, POINTWISE):
            return None, (), f"encoder layer {i} ({type(layer).__name__}) is not a known per-pixel layer"
    lh, lw = patch_size - rh + 1, patch_size - rw + 1
    latent = getattr(method.backbone_config, "latent_dim", None)
    if lh < 1 or lw < 1 or channels * lh * lw != latent:
        return None, (), (f"the code window {channels}x{lh}x{lw} of {patch_size}x{patch_size} patches does not match "
                          f"the code length {latent}")
    return layers, (channels, lh, lw), ""


def _flops(layers: nn.Module, h: int, w: int) -> float:
    """Multiply-adds of the convolutions of ``layers`` on an ``h x w`` input."""
    total = 0.0
    for layer in layers:
        if type(layer) is nn.Conv2d:
            kh, kw = layer.kernel_size
            h, w = h - kh + 1, w - kw + 1
            total += h * w * kh * kw * layer.in_channels * layer.out_channels
    return total


def encoding_plan(method: Method, n_locations: int, shape: tuple, patch_size: int) -> tuple[str, str]:
    """``("convolutional" | "per-patch", reason)``: how :func:`slice_codes` encodes ``n_locations``
    voxels of a slice of in-plane ``shape`` (the path with fewer convolution operations)."""
    layers, _, why = convolutional_encoder(method, patch_size)
    if layers is None:
        return "per-patch", why
    half = patch_size // 2
    whole = _flops(layers, shape[0] + 2 * half, shape[1] + 2 * half)
    per_patch = n_locations * _flops(layers, patch_size, patch_size)
    if per_patch <= whole:
        return "per-patch", f"{n_locations} locations cost less patch by patch than the whole slice"
    return "convolutional", ""


@torch.no_grad()
def slice_feature_map(method: Method, t1_slices, patch_size: int) -> torch.Tensor:
    """Feature maps ``(S, C, X + Lh - 1, Y + Lw - 1)`` float32 (CPU) of ``S`` axial slices ``(S, X, Y)``
    (or one ``(X, Y)`` slice: ``S = 1``), each zero-padded by ``patch_size // 2`` as the patches are.

    Raises ``ValueError`` when the network cannot run on whole slices (with the reason).
    """
    layers, _, why = convolutional_encoder(method, patch_size)
    if layers is None:
        raise ValueError(f"the encoder cannot run on whole slices: {why}")
    method.eval()
    device = next(method.parameters()).device
    x = np.asarray(t1_slices, dtype=np.float32)
    x = x[None] if x.ndim == 2 else x
    half = patch_size // 2
    padded = torch.from_numpy(np.pad(x, ((0, 0), (half, half), (half, half))))[:, None].to(device)
    return layers(padded).float().cpu()


def codes_from_feature_map(feature_map: torch.Tensor, xy: np.ndarray, window: tuple) -> torch.Tensor:
    """Codes ``(V, C * Lh * Lw)`` of the patches centred on ``xy`` from a slice's feature map
    ``(C, H, W)``: the window ``F[:, i:i + Lh, j:j + Lw]`` flattened channel-major, as the
    per-patch encoder flattens its ``(C, Lh, Lw)`` output (one compiled gather, one voxel per
    thread; windows that leave the map raise ``IndexError``)."""
    c, lh, lw = window
    fmap = np.ascontiguousarray(feature_map.numpy())
    if fmap.shape[0] != c:
        raise ValueError(f"the feature map has {fmap.shape[0]} channels, the code window {c}")
    xy = np.ascontiguousarray(np.asarray(xy, dtype=np.int64).reshape(-1, 2))
    if len(xy) and (xy.min() < 0 or xy[:, 0].max() + lh > fmap.shape[1] or xy[:, 1].max() + lw > fmap.shape[2]):
        raise IndexError(f"a {lh}x{lw} code window at a voxel of xy leaves the feature map {fmap.shape[1:]}")
    out = np.empty((len(xy), c * lh * lw), dtype=fmap.dtype)
    _gather_builds(xy, fmap, lh, lw, out)
    return torch.from_numpy(out)


def _gather_windows(xy, fmap, lh, lw, out):
    for v in prange(xy.shape[0]):
        x, y = xy[v, 0], xy[v, 1]
        k = 0
        for ch in range(fmap.shape[0]):
            for a in range(lh):
                for b in range(lw):
                    out[v, k] = fmap[ch, x + a, y + b]
                    k += 1


_gather_builds = serial_and_parallel(_gather_windows, "_conv_codes_gather_windows")


def slice_codes(method: Method, t1_slice: np.ndarray, xy: np.ndarray, patch_size: int = 15) -> torch.Tensor:
    """Codes ``(len(xy), d)`` float32 (CPU) of the patches of one axial slice centred on ``xy``.

    Convolutional over the whole slice when :func:`encoding_plan` says so, else patch by patch
    (a :class:`UserWarning` gives the reason when the network is not fully convolutional).

    Raises ``ValueError`` when a code is NaN or infinite (a diverged network).
    """
    patch_size = check_patch_size(patch_size)
    xy = np.asarray(xy).reshape(-1, 2)
    t1_slice = np.asarray(t1_slice)
    layers, window, why = convolutional_encoder(method, patch_size)
    if layers is None:
        warnings.warn(f"dense patch codes computed patch by patch: {why}", stacklevel=2)
    if layers is None or encoding_plan(method, len(xy), t1_slice.shape, patch_size)[0] == "per-patch":
        return encode_patches(method, patches_at(t1_slice, xy, patch_size))
    fmap = slice_feature_map(method, t1_slice, patch_size)[0]
    if not torch.isfinite(fmap).all():  # the codes are windows of it (a smaller array to check)
        raise ValueError("the patch network produced NaN or infinite latent codes (did training diverge?)")
    return codes_from_feature_map(fmap, xy, window)
