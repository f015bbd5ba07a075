"""A decoder-only (GPT-style) Transformer over raster-ordered VQ-VAE codes (Pinaya et al. 2022).

Pinaya et al. ("Unsupervised brain imaging 3D anomaly detection and segmentation with
transformers", MedIA 2022, https://pmc.ncbi.nlm.nih.gov/articles/PMC10108352) model the VQ-VAE's
latent grid, unrolled into a 1-D sequence, with autoregressive transformers (an ensemble over
several orderings; raster order is one of them). Pinon & Lartizien's release
(``models_xp2/vq_vae_transformer_pinaya_torch.py``, read for facts only) uses a stack of
decoder blocks (``num_layers``, ``d_model``, ``num_heads``, ``dff``, dropout) with token and
learnt position embeddings, a begin-of-sequence token, and a linear head over the codebook.
The depth and widths are not given there; ours are parameters (see
:data:`ogae_core.methods.slice_methods.SLICE_SIZES` for the values used).

Design: pre-LayerNorm blocks, causal self-attention
(:func:`torch.nn.functional.scaled_dot_product_attention`), GELU MLP; the begin-of-sequence
token has index ``vocab_size`` (an extra embedding row) and is never predicted.

Examples
--------
>>> import torch
>>> net = CodeTransformer(TransformerConfig(vocab_size=16, seq_len=12, d_model=8, n_layers=1, n_heads=2))
>>> net(torch.zeros(3, 12, dtype=torch.long)).logits.shape
torch.Size([3, 12, 16])
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CodeTransformer", "TransformerConfig", "TransformerOutput"]


@dataclass(frozen=True)
class TransformerConfig:
    """Arguments that rebuild a :class:`CodeTransformer`.

    Parameters
    ----------
    vocab_size : int
        Codebook size (the tokens ``0 .. vocab_size - 1``).
    seq_len : int
        Length of the code sequences (latent height x width).
    d_model, n_layers, n_heads : int
        Width, depth and attention heads (``d_model`` divisible by ``n_heads``).
    d_ff : int
        Hidden width of the MLPs (0: ``4 * d_model``).
    dropout : float
        Dropout on embeddings, attention and MLP outputs.
    """

    vocab_size: int
    seq_len: int
    d_model: int = 256
    n_layers: int = 8
    n_heads: int = 8
    d_ff: int = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}")

    def to_dict(self) -> dict:
        """JSON-serializable dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TransformerConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


class TransformerOutput(NamedTuple):
    """``logits[:, j]`` are the next-token logits of position ``j`` given positions ``< j``."""

    logits: torch.Tensor


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position ``j`` sees positions ``<= j``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_heads, self.dropout = config.n_heads, config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the prefix of every position."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class DecoderBlock(nn.Module):
    """Pre-LayerNorm block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        hidden = config.d_ff or 4 * config.d_model
        self.ln1, self.ln2 = nn.LayerNorm(config.d_model), nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.mlp = nn.Sequential(nn.Linear(config.d_model, hidden), nn.GELU(), nn.Linear(hidden, config.d_model),
                                 nn.Dropout(config.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One residual attention + MLP update."""
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CodeTransformer(nn.Module):
    """Autoregressive model of code sequences ``(B, L)`` with ``L <= seq_len`` (no training logic)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab_size + 1, config.d_model)  # last row: begin of sequence
        self.position = nn.Embedding(config.seq_len, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([DecoderBlock(config) for _ in range(config.n_layers)])
        self.ln = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size)

    @property
    def bos(self) -> int:
        """Index of the begin-of-sequence token."""
        return self.config.vocab_size

    def forward(self, codes: torch.Tensor) -> TransformerOutput:
        """Next-token logits of every position of ``codes`` (teacher forcing)."""
        if codes.dim() != 2 or codes.shape[1] > self.config.seq_len or codes.dtype != torch.long:
            raise ValueError(f"codes must be a (B, L) long tensor with L <= {self.config.seq_len}; "
                             f"got {tuple(codes.shape)} {codes.dtype}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.vocab_size):
            raise ValueError(f"codes must lie in [0, {self.config.vocab_size})")
        inputs = torch.cat([torch.full_like(codes[:, :1], self.bos), codes[:, :-1]], 1)
        positions = torch.arange(codes.shape[1], device=codes.device)
        h = self.drop(self.token(inputs) + self.position(positions))
        for block in self.blocks:
            h = block(h)
        return TransformerOutput(self.head(self.ln(h)))
