"""The VQ-VAE of Pinaya et al. (2022) on whole 2-D axial slices, and its vector quantizer.

Facts used:

* Pinon & Lartizien's release (``Nicolas-Pinon/uad_ocsvm_guided_repr_learning``,
  ``models_xp2/vq_vae_transformer_pinaya_torch.py``, GPL-3.0, read for facts only): encoder of
  three 4x4 convolutions with stride 2 and ReLU, then three residual blocks, 256 filters; the
  decoder mirrors it with transposed 4x4 convolutions; the latent vectors have the filters'
  dimension; codebook of 512 vectors; codebook learnt by a loss (weight 0.25) or by exponential
  moving averages; perplexity of the code usage monitored; codebook initialised from encoder
  outputs (k-means on a reservoir there).
* van den Oord et al., "Neural discrete representation learning" (NeurIPS 2017): straight-through
  gradient, codebook loss ``||sg[z_e] - e||²``, commitment loss ``beta ||z_e - sg[e]||²``
  with ``beta = 0.25``, and the EMA codebook update (decay 0.99) of its appendix.
* Pinaya et al., "Unsupervised brain imaging 3D anomaly detection and segmentation with
  transformers", MedIA 79:102475 (2022), https://pmc.ncbi.nlm.nih.gov/articles/PMC10108352 :
  a VQ-VAE whose discrete latent grid is modelled by autoregressive transformers.

Chosen here: a 1x1 convolution from the encoder's channels to ``embedding_dim`` (and back), so
that narrow CPU configurations can use short code vectors; codebook initialised with randomly
chosen encoder outputs of the first training batch (:meth:`VectorQuantizer.initialize_from`);
in EMA mode, codes whose EMA count falls below ``dead_threshold`` are restarted on random
encoder outputs; sigmoid output (images in [0, 1]).

Examples
--------
>>> import torch
>>> net = SliceVQVAE(VQVAEConfig(channels=8, n_down=2, n_residual=1, num_embeddings=16, embedding_dim=4))
>>> out = net(torch.rand(2, 1, 16, 24))
>>> out.x_hat.shape, out.indices.shape, int(out.indices.max()) < 16
(torch.Size([2, 1, 16, 24]), torch.Size([2, 4, 6]), True)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CODEBOOK_MODES", "QuantizerOutput", "SliceVQVAE", "VQVAEConfig", "VQVAEOutput", "VectorQuantizer",
           "perplexity"]

#: How the codebook is learnt: by exponential moving averages, or by the codebook loss.
CODEBOOK_MODES = ("ema", "loss")


def perplexity(indices: torch.Tensor, num_embeddings: int) -> torch.Tensor:
    """``exp`` of the entropy of the code histogram: the effective number of codes used.

    Examples
    --------
    >>> import torch
    >>> float(perplexity(torch.tensor([0, 1, 2, 3]), 8))
    4.0
    """
    counts = torch.bincount(indices.reshape(-1), minlength=num_embeddings).double()
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return entropy.exp().float()


class QuantizerOutput(NamedTuple):
    """Output of :meth:`VectorQuantizer.forward`.

    ``z_q`` carries the straight-through gradient to ``z_e``; the losses are scalars
    (``codebook_loss`` has no gradient path in EMA mode); ``perplexity`` is detached.
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantization of ``(N, D, h, w)`` maps onto ``num_embeddings`` vectors.

    Parameters
    ----------
    num_embeddings, dim : int
        Codebook size and vector dimension.
    mode : {"ema", "loss"}
        ``"ema"``: the codebook (a parameter without gradient) follows exponential moving
        averages of the encoder outputs assigned to each code (:meth:`update_ema`, called by
        the training objective); ``"loss"``: it is learnt by the codebook loss.
    decay : float
        EMA decay.
    dead_threshold : float
        EMA count (vectors per batch) under which a code is restarted on a random encoder
        output (EMA mode; 0: never). The default 1.0 restarts codes used less than about once
        per batch, as Jukebox's codebook restarts do (Dhariwal et al. 2020).
    """

    def __init__(self, num_embeddings: int, dim: int, mode: str = "ema", decay: float = 0.99,
                 dead_threshold: float = 1.0) -> None:
        super().__init__()
        if mode not in CODEBOOK_MODES:
            raise ValueError(f"codebook mode must be one of {CODEBOOK_MODES}; got {mode!r}")
        self.num_embeddings, self.dim, self.mode = int(num_embeddings), int(dim), mode
        self.decay, self.dead_threshold = float(decay), float(dead_threshold)
        self.codebook = nn.Parameter(torch.randn(num_embeddings, dim) / dim ** 0.5, requires_grad=mode == "loss")
        self.register_buffer("ema_count", torch.ones(num_embeddings))
        self.register_buffer("ema_sum", self.codebook.detach().clone())
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    @staticmethod
    def flatten(z_e: torch.Tensor) -> torch.Tensor:
        """``(N, D, h, w)`` -> ``(N*h*w, D)`` (raster order within each map)."""
        return z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codebook vector at every position, shape ``(N, h, w)``."""
        flat = self.flatten(z_e)
        e = self.codebook
        d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)
        return d.argmin(1).reshape(z_e.shape[0], z_e.shape[2], z_e.shape[3])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codebook vectors of ``(N, h, w)`` indices as an ``(N, D, h, w)`` map."""
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2).contiguous()

    def forward(self, z_e: torch.Tensor) -> QuantizerOutput:
        """Quantize ``z_e``; returns the straight-through map, indices, losses and perplexity."""
        indices = self.nearest(z_e.detach())
        e = self.lookup(indices)
        codebook_loss = F.mse_loss(e, z_e.detach())
        commitment_loss = F.mse_loss(z_e, e.detach())
        z_q = z_e + (e - z_e).detach()
        return QuantizerOutput(z_q, indices, codebook_loss, commitment_loss,
                               perplexity(indices.detach(), self.num_embeddings))

    @torch.no_grad()
    def initialize_from(self, z_e: torch.Tensor) -> None:
        """Set the codebook to randomly chosen encoder outputs (torch's global generator)."""
        flat = self.flatten(z_e.detach())
        pick = torch.randint(len(flat), (self.num_embeddings,), device=flat.device)
        self.codebook.data.copy_(flat[pick])
        self.ema_sum.copy_(flat[pick])
        self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def update_ema(self, z_e: torch.Tensor, indices: torch.Tensor) -> int:
        """One EMA step of the codebook on a batch; returns the number of restarted codes."""
        flat = self.flatten(z_e.detach())
        onehot = F.one_hot(indices.reshape(-1), self.num_embeddings).to(flat.dtype)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
        n = self.ema_count.sum()
        count = (self.ema_count + 1e-5) / (n + self.num_embeddings * 1e-5) * n  # Laplace smoothing
        self.codebook.data.copy_(self.ema_sum / count.unsqueeze(1))
        dead = self.ema_count < self.dead_threshold
        n_dead = int(dead.sum())
        if n_dead:
            pick = torch.randint(len(flat), (n_dead,), device=flat.device)
            self.codebook.data[dead] = flat[pick]
            self.ema_sum[dead] = flat[pick]
            self.ema_count[dead] = 1.0
        return n_dead


@dataclass(frozen=True)
class VQVAEConfig:
    """Arguments that rebuild a :class:`SliceVQVAE` (paper: the release's values).

    Parameters
    ----------
    channels : int
        Filters of every convolution (release: 256).
    n_down : int
        Stride-2 4x4 convolutions (release: 3, i.e. latent grid = slice / 8).
    n_residual : int
        Residual blocks after the encoder's and before the decoder's convolutions (release: 3).
    num_embeddings : int
        Codebook size (release default: 512).
    embedding_dim : int
        Dimension of the code vectors.
    codebook : {"ema", "loss"}
        How the codebook is learnt (see :class:`VectorQuantizer`).
    decay : float
        EMA decay (van den Oord et al.: 0.99).
    dead_threshold : float
        EMA count under which a code is restarted (see :class:`VectorQuantizer`).
    in_channels : int
        Image channels.
    """

    channels: int = 256
    n_down: int = 3
    n_residual: int = 3
    num_embeddings: int = 512
    embedding_dim: int = 256
    codebook: str = "ema"
    decay: float = 0.99
    dead_threshold: float = 1.0
    in_channels: int = 1

    def __post_init__(self) -> None:
        for name in ("channels", "n_down", "num_embeddings", "embedding_dim", "in_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)!r}")
        if self.n_residual < 0:
            raise ValueError(f"n_residual must be >= 0; got {self.n_residual!r}")
        if self.codebook not in CODEBOOK_MODES:
            raise ValueError(f"codebook must be one of {CODEBOOK_MODES}; got {self.codebook!r}")
        if not 0 < self.decay < 1:
            raise ValueError(f"decay must be in (0, 1); got {self.decay!r}")
        if not self.dead_threshold >= 0:
            raise ValueError(f"dead_threshold must be >= 0; got {self.dead_threshold!r}")

    @property
    def downsampling(self) -> int:
        """Factor between the slice and the latent grid."""
        return 2 ** self.n_down

    def to_dict(self) -> dict:
        """JSON-serializable dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VQVAEConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


class VQVAEOutput(NamedTuple):
    """Output of :meth:`SliceVQVAE.forward`."""

    x_hat: torch.Tensor
    z_e: torch.Tensor
    indices: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor


class ResidualBlock(nn.Module):
    """``x + conv1x1(relu(conv3x3(relu(x))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update of ``x``."""
        return x + self.body(x)


class SliceVQVAE(nn.Module):
    """VQ-VAE on ``(N, C, H, W)`` slices (see the module docstring); no training logic."""

    def __init__(self, config: VQVAEConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or VQVAEConfig()
        down: list[nn.Module] = []
        previous = c.in_channels
        for _ in range(c.n_down):
            down += [nn.Conv2d(previous, c.channels, 4, 2, 1), nn.ReLU()]
            previous = c.channels
        self.encoder = nn.Sequential(*down, *[ResidualBlock(c.channels) for _ in range(c.n_residual)],
                                     nn.ReLU(), nn.Conv2d(c.channels, c.embedding_dim, 1))
        self.quantizer = VectorQuantizer(c.num_embeddings, c.embedding_dim, c.codebook, c.decay, c.dead_threshold)
        up: list[nn.Module] = []
        for i in range(c.n_down):
            up += [nn.ConvTranspose2d(c.channels, c.channels, 4, 2, 1), nn.ReLU()]
        self.decoder = nn.Sequential(nn.Conv2d(c.embedding_dim, c.channels, 1),
                                     *[ResidualBlock(c.channels) for _ in range(c.n_residual)], nn.ReLU(),
                                     *up, nn.Conv2d(c.channels, c.in_channels, 1), nn.Sigmoid())

    def check_input(self, x: torch.Tensor) -> None:
        """``ValueError`` unless ``x`` is ``(N, C, H, W)`` with ``H, W`` multiples of the downsampling."""
        f = self.config.downsampling
        if x.dim() != 4 or x.shape[1] != self.config.in_channels or x.shape[2] % f or x.shape[3] % f:
            raise ValueError(f"expected (N, {self.config.in_channels}, H, W) slices with H and W multiples of {f}; "
                             f"got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous encoder output ``z_e`` of shape ``(N, embedding_dim, H/f, W/f)``."""
        self.check_input(x)
        return self.encoder(x)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Image decoded from a grid of code indices ``(N, h, w)``."""
        return self.decoder(self.quantizer.lookup(indices))

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        """Encode, quantize (straight-through) and decode ``x``."""
        z_e = self.encode(x)
        q = self.quantizer(z_e)
        return VQVAEOutput(self.decoder(q.z_q), z_e, q.indices, q.codebook_loss, q.commitment_loss, q.perplexity)
