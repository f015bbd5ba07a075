"""The S-H1 backbone: shapes, options, bias-free variant, and equivalence of its decoder
convolutions with the paper's stride-1 transposed convolutions."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ogae_core.nets import (
    BackboneConfig,
    BackboneOutput,
    BatchNorm2d,
    MnistBackbone,
    nearest_upsample_conv2d,
    to_transposed_kernel,
)


def _images(n=6, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_default_shapes_and_named_tuple():
    net = MnistBackbone().eval()
    with torch.no_grad():
        out = net(_images())
    assert isinstance(out, BackboneOutput)
    assert out.z.shape == (6, 32) and out.x_hat.shape == (6, 1, 28, 28)
    assert out.mu is None and out.logvar is None
    with torch.no_grad():  # the reconstruction is the sigmoid of the last convolution (per-pixel probabilities)
        logits = net.decoder_conv[:-1](net.fc_dec(out.z).view(6, 8, 7, 7))
    torch.testing.assert_close(out.x_hat, torch.sigmoid(logits))


def _reference_parameter_count(latent=32, w1=4, w2=8, k=5):
    """Parameters of the authors' layer list (convs/transposed convs with bias, affine BN)."""
    conv = lambda ci, co: ci * co * k * k + co  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    enc = conv(1, w1) + bn(w1) + conv(w1, w2) + bn(w2) + (w2 * 49 * latent + latent)
    dec = (latent * w2 * 49 + w2 * 49) + conv(w2, w2) + bn(w2) + conv(w2, w1) + bn(w1) + conv(w1, 1)
    return enc + dec


def test_parameter_count_matches_paper_architecture():
    net = MnistBackbone()
    assert sum(p.numel() for p in net.parameters()) == _reference_parameter_count()
    custom = MnistBackbone(BackboneConfig(latent_dim=16, widths=(6, 12)))
    assert sum(p.numel() for p in custom.parameters()) == _reference_parameter_count(16, 6, 12)


@pytest.mark.parametrize("c_in,c_out", [(8, 8), (8, 4), (4, 1)])
def test_conv_equals_stride1_transposed_conv(c_in, c_out):
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, c_out, 5, padding=2)
    tconv = nn.ConvTranspose2d(c_in, c_out, 5, padding=2)
    with torch.no_grad():
        tconv.weight.copy_(to_transposed_kernel(conv.weight))
        tconv.bias.copy_(conv.bias)
    x = torch.randn(3, c_in, 14, 14)
    torch.testing.assert_close(conv(x), tconv(x), rtol=1e-5, atol=1e-5)


def test_bias_free_variant_has_no_bias_and_no_affine_batchnorm():
    net = MnistBackbone(BackboneConfig(bias=False))
    assert not [n for n, _ in net.named_parameters() if n.endswith("bias")]
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.affine for m in bns)
    # with batch statistics and no bias anywhere, the zero image maps to the zero code
    net.train()
    z = net.encode(torch.zeros(4, 1, 28, 28)).z
    assert torch.count_nonzero(z) == 0


def test_variational_head_samples_in_training_and_uses_mean_in_eval():
    net = MnistBackbone(BackboneConfig(variational=True, latent_dim=8))
    x = _images()
    net.train()
    torch.manual_seed(1)
    out = net(x)
    assert out.mu.shape == out.logvar.shape == (6, 8)
    assert not torch.allclose(out.z, out.mu)
    torch.testing.assert_close(out.z, out.mu + torch.exp(0.5 * out.logvar) * _replay_noise(net, x, 1), rtol=1e-5, atol=1e-6)
    net.eval()
    enc = net.encode(x)
    assert torch.equal(enc.z, enc.mu)


def _replay_noise(net, x, seed):
    torch.manual_seed(seed)
    h = net.encoder_conv(x)
    return torch.randn_like(net.fc_mu(h))


def test_encoder_only_and_decode_error():
    net = MnistBackbone(BackboneConfig(decoder=False)).eval()
    out = net(_images())
    assert out.x_hat is None and not net.has_decoder
    with pytest.raises(RuntimeError, match="decoder=False"):
        net.decode(out.z)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"latent_dim": 0}, "latent_dim"), ({"widths": (4,)}, "widths"), ({"kernel_size": 4}, "kernel_size"),
     ({"negative_slope": -1.0}, "negative_slope")],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BackboneConfig(**kwargs)


def test_config_round_trip_and_unknown_keys():
    cfg = BackboneConfig(latent_dim=12, widths=(3, 5), bias=False, variational=True)
    assert BackboneConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown backbone config keys"):
        BackboneConfig.from_dict({"latent": 3})


def test_channels_last_gives_same_output():
    torch.manual_seed(0)
    net = MnistBackbone().eval()
    x = _images()
    ref = net(x)
    net_cl = net.to(memory_format=torch.channels_last)
    out = net_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out.x_hat, ref.x_hat, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.z, ref.z, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("with_bias", [True, False])
def test_nearest_upsample_conv2d_equals_upsample_then_conv_with_gradients(k, with_bias):
    g = torch.Generator().manual_seed(k)
    x = torch.randn(3, 4, 7, 6, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(5, 4, k, k, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, generator=g, requires_grad=True) if with_bias else None
    upstream = torch.randn(3, 5, 14, 12, dtype=torch.float64, generator=g)
    inputs = [t for t in (x, w, b) if t is not None]

    ref = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, b, padding=k // 2)
    ref_grads = torch.autograd.grad((ref * upstream).sum(), inputs)
    out = nearest_upsample_conv2d(x, w, b)
    grads = torch.autograd.grad((out * upstream).sum(), inputs)

    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_nearest_upsample_conv2d_rejects_even_kernels():
    with pytest.raises(ValueError, match="odd square kernel"):
        nearest_upsample_conv2d(torch.zeros(1, 2, 4, 4), torch.zeros(3, 2, 4, 4), None)


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_matches_torch_on_channels_last_input(affine):
    torch.manual_seed(0)
    ours, ref = BatchNorm2d(4, affine=affine), nn.BatchNorm2d(4, affine=affine)
    ref.load_state_dict(ours.state_dict())
    x = (3 * torch.randn(16, 4, 9, 9) + 1).contiguous(memory_format=torch.channels_last)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn(16, 4, 9, 9)
    y, y_ref = ours(x_ours), ref(x_ref)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
    if affine:
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(ref, name))
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


def test_decoder_blocks_compute_the_plain_layer_list_and_keep_its_state_dict():
    torch.manual_seed(0)
    net = MnistBackbone().train()
    keys = set(net.state_dict())
    assert {"decoder_conv.0.1.weight", "decoder_conv.0.2.running_mean", "decoder_conv.1.1.weight",
            "decoder_conv.1.2.weight", "decoder_conv.2.weight"} <= keys
    assert isinstance(net.decoder_conv[0][0], nn.Upsample)
    h = torch.randn(5, 8, 7, 7)
    for block in net.decoder_conv[:2]:
        reference = nn.Sequential.forward(block, h)  # upsample, conv, batch norm, LeakyReLU one by one
        torch.testing.assert_close(block(h), reference, rtol=1e-5, atol=1e-5)
        h = reference


def test_training_works_after_a_first_forward_in_inference_mode():
    from ogae_core.nets.mnist import _phase_taps

    _phase_taps.cache_clear()
    net = MnistBackbone()
    with torch.inference_mode():
        net.eval()(_images())
    net.train()
    net(_images()).x_hat.sum().backward()
    assert net.decoder_conv[0][1].weight.grad.abs().sum() > 0
