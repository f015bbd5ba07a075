"""The paper's S-H1 MNIST network: a small convolutional (variational) autoencoder.

Architecture (the MNIST network of DVAESVDD reused by the OgAE paper for every method):

* encoder: ``conv 5x5 (4) -> BN -> LeakyReLU -> maxpool 2x2 -> conv 5x5 (8) -> BN ->
  LeakyReLU -> maxpool 2x2 -> flatten (8*7*7) -> dense (latent_dim)``; with
  ``variational=True`` the dense layer is doubled into a mean and a log-variance head;
* decoder: ``dense (8*7*7) -> reshape -> [upsample x2 -> conv 5x5 (8) -> BN -> LeakyReLU]
  -> [upsample x2 -> conv 5x5 (4) -> BN -> LeakyReLU] -> conv 5x5 (1) -> sigmoid``.

Implementation notes
--------------------
* The decoder's "transposed convolutions" have stride 1 and padding 2, so each one is
  exactly a 5x5 "same" convolution whose kernel is the flipped, channel-transposed
  transposed-convolution kernel. We parametrize them directly as ``nn.Conv2d`` (same
  function class, same parameter count, same receptive field): on CPU this is the fast
  path, while ``ConvTranspose2d`` has no fast channels-last kernel. ``to_transposed_kernel``
  converts a weight for comparison with a ``ConvTranspose2d``.
* ``bias=False`` is the Deep SVDD variant (Ruff et al., 2018): no bias in any layer and
  batch norms without affine parameters, so that the network cannot map every input to a
  constant (hypersphere collapse). As in Ruff's own MNIST autoencoder, the decoder is
  bias-free too.
* LeakyReLU uses PyTorch's default negative slope 0.01 (as the authors' PyTorch port).

The module holds no training logic; ``forward`` returns a typed ``NamedTuple``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple, Optional

import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)


@dataclass(frozen=True)
class BackboneConfig:
    """Arguments that rebuild a :class:`MnistBackbone`.

    Parameters
    ----------
    latent_dim : int
        Dimension of the latent code (paper: 32).
    widths : tuple of int
        Number of filters of the two encoder convolutions (paper: (4, 8)); the decoder
        mirrors them.
    kernel_size : int
        Odd convolution size (paper: 5).
    bias : bool
        ``False`` gives the bias-free Deep SVDD variant.
    variational : bool
        Mean / log-variance heads and reparameterized sampling in training mode.
    decoder : bool
        ``False`` builds the encoder only (Ruff's h-/s-DSVDD networks).
    negative_slope : float
        LeakyReLU slope.

    Examples
    --------
    >>> BackboneConfig(latent_dim=16).latent_dim
    16
    """

    latent_dim: int = 32
    widths: tuple[int, int] = (4, 8)
    kernel_size: int = 5
    bias: bool = True
    variational: bool = False
    decoder: bool = True
    negative_slope: float = 0.01

    def __post_init__(self) -> None:
        widths = tuple(int(w) for w in self.widths)
        object.__setattr__(self, "widths", widths)
        if int(self.latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer; got {self.latent_dim!r}")
        if len(widths) != 2 or min(widths) < 1:
            raise ValueError(f"widths must be two positive integers; got {self.widths!r}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer; got {self.kernel_size!r}")
        if not self.negative_slope >= 0:
            raise ValueError(f"negative_slope must be >= 0; got {self.negative_slope!r}")

    def to_dict(self) -> dict:
        """JSON-serializable dictionary (tuples become lists)."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BackboneConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown backbone config keys {sorted(unknown)}; valid: {sorted(known)}")
        d = dict(d)
        if "widths" in d:
            d["widths"] = tuple(d["widths"])
        return cls(**d)


class EncoderOutput(NamedTuple):
    """Latent code ``z`` (sampled in training mode when variational, else the mean),
    and for variational networks the posterior ``mu`` and ``logvar`` (else ``None``)."""

    z: torch.Tensor
    mu: Optional[torch.Tensor]
    logvar: Optional[torch.Tensor]


class BackboneOutput(NamedTuple):
    """Result of :meth:`MnistBackbone.forward`; ``x_hat`` is ``None`` without decoder."""

    z: torch.Tensor
    x_hat: Optional[torch.Tensor]
    mu: Optional[torch.Tensor]
    logvar: Optional[torch.Tensor]


def _block(c_in: int, c_out: int, cfg: BackboneConfig, pool: bool, upsample: bool) -> nn.Sequential:
    pad = cfg.kernel_size // 2
    layers: list[nn.Module] = []
    if upsample:
        layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    layers += [
        nn.Conv2d(c_in, c_out, cfg.kernel_size, padding=pad, bias=cfg.bias),
        nn.BatchNorm2d(c_out, affine=cfg.bias),
        nn.LeakyReLU(cfg.negative_slope),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class MnistBackbone(nn.Module):
    """S-H1 convolutional autoencoder for 28x28 grey images in [0, 1].

    Parameters
    ----------
    config : BackboneConfig, optional
        Architecture options; defaults to the paper's network.

    Examples
    --------
    >>> import torch
    >>> net = MnistBackbone(BackboneConfig(latent_dim=8)).eval()
    >>> out = net(torch.rand(3, 1, 28, 28))
    >>> tuple(out.z.shape), tuple(out.x_hat.shape)
    ((3, 8), (3, 1, 28, 28))
    """

    def __init__(self, config: BackboneConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or BackboneConfig()
        w1, w2 = cfg.widths
        self.encoder_conv = nn.Sequential(
            _block(1, w1, cfg, pool=True, upsample=False),
            _block(w1, w2, cfg, pool=True, upsample=False),
            nn.Flatten(),
        )
        flat = w2 * 7 * 7
        self.fc_mu = nn.Linear(flat, cfg.latent_dim, bias=cfg.bias)
        self.fc_logvar = nn.Linear(flat, cfg.latent_dim, bias=cfg.bias) if cfg.variational else None
        if cfg.decoder:
            self.fc_dec = nn.Linear(cfg.latent_dim, flat, bias=cfg.bias)
            self.decoder_conv = nn.Sequential(
                _block(w2, w2, cfg, pool=False, upsample=True),
                _block(w2, w1, cfg, pool=False, upsample=True),
                nn.Conv2d(w1, 1, cfg.kernel_size, padding=cfg.kernel_size // 2, bias=cfg.bias),
                nn.Sigmoid(),
            )
        else:
            self.fc_dec = None
            self.decoder_conv = None

    @property
    def has_decoder(self) -> bool:
        """Whether the network reconstructs images."""
        return self.decoder_conv is not None

    def encode(self, x: torch.Tensor) -> EncoderOutput:
        """Encode images ``(N, 1, 28, 28)`` into latent codes.

        In training mode a variational network samples ``z = mu + exp(logvar / 2) * eps``
        with the global torch generator; in eval mode ``z = mu``.
        """
        h = self.encoder_conv(x)
        mu = self.fc_mu(h)
        if self.fc_logvar is None:
            return EncoderOutput(mu, None, None)
        logvar = self.fc_logvar(h)
        if self.training:
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        else:
            z = mu
        return EncoderOutput(z, mu, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latent codes ``(N, latent_dim)`` into images ``(N, 1, 28, 28)``."""
        if self.decoder_conv is None:
            raise RuntimeError("this backbone was built with decoder=False and cannot reconstruct")
        w2 = self.config.widths[1]
        h = self.fc_dec(z).view(z.shape[0], w2, 7, 7)
        return self.decoder_conv(h)

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """Encode, then decode when the network has a decoder."""
        enc = self.encode(x)
        x_hat = self.decode(enc.z) if self.decoder_conv is not None else None
        return BackboneOutput(enc.z, x_hat, enc.mu, enc.logvar)


def to_transposed_kernel(conv_weight: torch.Tensor) -> torch.Tensor:
    """Kernel of the stride-1 ``ConvTranspose2d`` equal to a "same" ``Conv2d`` kernel.

    ``ConvTranspose2d(c_in, c_out, k, padding=k // 2)`` with weight ``W_t`` (shape
    ``(c_in, c_out, k, k)``) computes the same map as ``Conv2d(c_in, c_out, k,
    padding=k // 2)`` with weight ``W_t.flip(-1, -2).transpose(0, 1)``; this function is
    its inverse (it maps a ``Conv2d`` weight to ``W_t``).

    Examples
    --------
    >>> import torch
    >>> to_transposed_kernel(torch.zeros(4, 8, 5, 5)).shape
    torch.Size([8, 4, 5, 5])
    """
    return conv_weight.transpose(0, 1).flip(-1, -2)
