"""Convolutional dense encoding equals the per-patch encoder, at borders too; fallbacks with reasons."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ogae_core.methods import build_method
from ogae_core.volumes.conv_codes import (
    codes_from_feature_map,
    convolutional_encoder,
    encoding_plan,
    slice_codes,
    slice_feature_map,
)
from ogae_core.volumes.patch_training import encode_patches, patches_at


def _method(seed: int = 0, **backbone):
    """A patch network with random weights and non-trivial batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    method = build_method("sae", {}, {"kind": "patch", **backbone})
    g = torch.Generator().manual_seed(seed)
    for m in method.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.randn(m.num_features, generator=g))
                m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return method.eval()


def _slice(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _assert_close(fast, slow):
    scale = float(slow.abs().max())
    assert fast.shape == slow.shape
    assert float((fast - slow).abs().max()) <= 1e-5 * scale


@pytest.mark.parametrize("backbone", [{}, {"patch_size": 11, "widths": (2, 5, 7), "kernel_sizes": (3, 5, 3)},
                                      {"patch_size": 9, "widths": (4,), "kernel_sizes": (7,), "bias": False}])
def test_codes_equal_the_per_patch_encoder_everywhere(backbone):
    method = _method(**backbone)
    p = method.backbone_config.patch_size
    t1 = _slice((23, 19))
    xy = np.argwhere(np.ones(t1.shape, bool))                 # every voxel, border ones included
    layers, window, why = convolutional_encoder(method, p)
    assert why == "" and int(np.prod(window)) == method.backbone_config.latent_dim
    fast = codes_from_feature_map(slice_feature_map(method, t1, p)[0], xy, window)
    _assert_close(fast, encode_patches(method, patches_at(t1, xy, p)))


def test_window_and_feature_map_follow_the_network():
    method = _method(patch_size=11, widths=(2, 5, 7), kernel_sizes=(3, 5, 3))
    layers, window, _ = convolutional_encoder(method, 11)
    assert window == (7, 3, 3)                                  # 11 - (2 + 4 + 2) = 3
    fmap = slice_feature_map(method, np.stack([_slice((10, 12)), _slice((10, 12), 1)]), 11)
    assert fmap.shape == (2, 7, 10 + 3 - 1, 12 + 3 - 1)
    # a wrong patch size for the network: the window does not give the code length
    assert "does not match the code length" in convolutional_encoder(method, 13)[2]


def test_slice_codes_picks_the_cheaper_path_and_both_agree():
    method = _method()
    t1 = _slice((40, 44), 3)
    few, dense = np.array([[0, 0], [39, 43], [20, 5]]), np.argwhere(np.ones(t1.shape, bool))
    assert encoding_plan(method, len(few), t1.shape, 15)[0] == "per-patch"
    assert encoding_plan(method, len(dense), t1.shape, 15)[0] == "convolutional"
    for xy in (few, dense):
        _assert_close(slice_codes(method, t1, xy, 15), encode_patches(method, patches_at(t1, xy, 15)))


@pytest.mark.parametrize("change, reason", [
    (lambda enc: setattr(enc[0], "stride", (2, 2)), "stride"),
    (lambda enc: setattr(enc[0], "dilation", (2, 2)), "dilation"),
    (lambda enc: enc.__setitem__(2, nn.Softmax(dim=1)), "Softmax) is not a known per-pixel layer"),
])
def test_not_fully_convolutional_falls_back_with_the_reason(change, reason):
    method = _method()
    change(method.backbone.encoder_conv)
    layers, _, why = convolutional_encoder(method, 15)
    assert layers is None and reason in why
    assert encoding_plan(method, 10_000, (40, 40), 15) == ("per-patch", why)
    with pytest.raises(ValueError, match="cannot run on whole slices"):
        slice_feature_map(method, _slice((20, 20)), 15)


def test_fallback_codes_are_the_per_patch_codes():
    method = _method()
    method.backbone.encoder_conv[2] = nn.Softmax(dim=1)
    t1 = _slice((20, 21))
    xy = np.argwhere(np.ones(t1.shape, bool))
    with pytest.warns(UserWarning, match="patch by patch: encoder layer 2"):
        codes = slice_codes(method, t1, xy, 15)
    assert torch.equal(codes, encode_patches(method, patches_at(t1, xy, 15)))


def test_overridden_encode_is_not_assumed_convolutional():
    class Scaled(type(_method())):
        def encode(self, x):
            return super().encode(x) * 2

    method = Scaled(None, _method().backbone_config).eval()
    assert "overrides encode()" in convolutional_encoder(method, 15)[2]


def test_nan_codes_are_refused():
    method = _method()
    t1 = _slice((20, 20))
    t1[5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite latent codes"):
        slice_codes(method, t1, np.argwhere(np.ones(t1.shape, bool)), 15)
