"""The slice baselines' networks: AE/UNet, VQ-VAE (quantizer, EMA) and the code Transformer."""
from __future__ import annotations

import pytest
import torch

from ogae_core.nets import (
    PAPER_UNET_WIDTHS,
    CodeTransformer,
    SliceUNet,
    SliceVQVAE,
    TransformerConfig,
    TransformerOutput,
    UNetConfig,
    UNetOutput,
    VectorQuantizer,
    VQVAEConfig,
    VQVAEOutput,
)
from ogae_core.nets.vqvae import perplexity


def _slices(n=2, h=32, w=40, seed=0):
    return torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("skips", [True, False])
def test_unet_shapes_paper_widths(skips):
    net = SliceUNet(UNetConfig(widths=PAPER_UNET_WIDTHS, skips=skips)).eval()
    with torch.no_grad():
        out = net(_slices())
    assert isinstance(out, UNetOutput)
    assert out.x_hat.shape == (2, 1, 32, 40) and out.z.shape == (2, 64)
    assert float(out.x_hat.abs().max()) <= 1.0  # tanh output
    assert net.config.downsampling == 8


def test_unet_rejects_sizes_not_divisible_and_bad_configs():
    net = SliceUNet(UNetConfig(widths=(4, 8, 8, 4)))
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 1, 30, 40))
    with pytest.raises(ValueError, match="at least three"):
        UNetConfig(widths=(4, 8))
    with pytest.raises(ValueError, match="odd"):
        UNetConfig(kernel_size=4)
    assert UNetConfig.from_dict(UNetConfig(widths=(4, 8, 8)).to_dict()) == UNetConfig(widths=(4, 8, 8))


def test_vqvae_shapes_and_index_range():
    cfg = VQVAEConfig(channels=8, n_down=3, n_residual=1, num_embeddings=16, embedding_dim=4)
    out = SliceVQVAE(cfg)(_slices())
    assert isinstance(out, VQVAEOutput)
    assert out.x_hat.shape == (2, 1, 32, 40) and out.indices.shape == (2, 4, 5) and out.z_e.shape == (2, 4, 4, 5)
    assert 0 <= int(out.indices.min()) and int(out.indices.max()) < 16
    assert 1.0 <= float(out.perplexity) <= 16.0
    with pytest.raises(ValueError, match="multiples of 8"):
        SliceVQVAE(cfg)(torch.zeros(1, 1, 30, 40))


def test_quantizer_nearest_and_straight_through_gradient():
    q = VectorQuantizer(3, 2, mode="loss")
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    z = torch.tensor([[[[0.9]], [[0.1]]], [[[0.1]], [[0.8]]]], requires_grad=True)  # (2, 2, 1, 1)
    out = q(z)
    assert out.indices.flatten().tolist() == [1, 2]
    out.z_q.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight-through
    out = q(z.detach())
    out.codebook_loss.backward()
    assert q.codebook.grad is not None and q.codebook.grad.abs().sum() > 0


def test_ema_update_moves_codes_to_the_mean_of_their_vectors():
    q = VectorQuantizer(2, 1, mode="ema", decay=0.5, dead_threshold=0.0)
    assert not q.codebook.requires_grad
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0], [10.0]]))
        q.ema_sum.copy_(q.codebook)
    z = torch.tensor([1.0, 1.0, 9.0]).view(3, 1, 1, 1)
    for _ in range(30):
        q.update_ema(z, q.nearest(z))
    assert q.codebook.flatten().tolist() == pytest.approx([1.0, 9.0], abs=1e-3)


def test_ema_restarts_dead_codes_on_encoder_outputs():
    q = VectorQuantizer(4, 1, mode="ema", decay=0.5, dead_threshold=0.1)
    z = torch.full((5, 1, 1, 1), 3.0)
    restarted = sum(q.update_ema(z, torch.zeros(5, 1, 1, dtype=torch.long)) for _ in range(5))
    assert restarted >= 3
    assert sum(abs(c - 3.0) < 1e-3 for c in q.codebook.flatten().tolist()) >= 3  # dead codes moved onto z


def test_perplexity_counts_effective_codes():
    assert float(perplexity(torch.tensor([0, 0, 0, 0]), 4)) == pytest.approx(1.0)
    assert float(perplexity(torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]), 8)) == pytest.approx(4.0)


def test_transformer_shapes_and_causality():
    cfg = TransformerConfig(vocab_size=8, seq_len=10, d_model=16, n_layers=2, n_heads=4)
    net = CodeTransformer(cfg).eval()
    codes = torch.randint(0, 8, (3, 10), generator=torch.Generator().manual_seed(0))
    out = net(codes)
    assert isinstance(out, TransformerOutput) and out.logits.shape == (3, 10, 8)
    changed = codes.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 8
    other = net(changed).logits
    # logits at j predict token j from tokens < j: positions <= 6 cannot see the change
    assert torch.allclose(out.logits[:, :7], other[:, :7], atol=1e-6)
    assert not torch.allclose(out.logits[:, 7:], other[:, 7:])


def test_transformer_rejects_bad_codes():
    net = CodeTransformer(TransformerConfig(vocab_size=4, seq_len=5, d_model=8, n_layers=1, n_heads=2))
    with pytest.raises(ValueError, match="lie in"):
        net(torch.full((1, 5), 4, dtype=torch.long))
    with pytest.raises(ValueError, match="L <= 5"):
        net(torch.zeros(1, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(vocab_size=4, seq_len=5, d_model=10, n_heads=4)
