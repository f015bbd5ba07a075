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
* Upsampling then convolving (decoder) is computed without materializing the upsampled
  map: nearest x2 upsampling followed by a ``k x k`` "same" convolution equals a
  ``(2R+1) x (2R+1)`` convolution of the low-resolution map (``R = ceil((k // 2) / 2)``,
  3x3 for k=5) into four output phases, interleaved by ``pixel_shuffle``
  (:func:`nearest_upsample_conv2d`). The phase kernels are sums of taps of the ``k x k``
  weight, so the parameters (and the state dict) are those of the plain layer list; the
  arithmetic drops to about a third.
* Batch norm on channels-last maps with few channels is several times slower in PyTorch's
  CPU kernel than on NCHW maps; :class:`BatchNorm2d` normalizes an NCHW copy and returns
  the layout it was given (same parameters, buffers and results as ``nn.BatchNorm2d``).
* ``bias=False`` is the Deep SVDD variant (Ruff et al., 2018): no bias in any layer and
  batch norms without affine parameters, so that the network cannot map every input to a
  constant (hypersphere collapse). As in Ruff's own MNIST autoencoder, the decoder is
  bias-free too.
* LeakyReLU's negative slope is ``BackboneConfig.negative_slope``: by default PyTorch's
  0.01, as in the authors' PyTorch port; their TensorFlow original (which looks like the
  code the paper ran) uses Keras' default ``LeakyReLU()`` slope 0.3. The fidelity ablation
  (:mod:`ogae_core.experiments.ablation`) compares the two.

The module holds no training logic; ``forward`` returns a typed ``NamedTuple``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import functools
import math
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
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
        LeakyReLU slope (0.01: PyTorch's default and the authors' PyTorch port; 0.3: Keras'
        default, the authors' TensorFlow original).

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


@functools.lru_cache(maxsize=None)
def _phase_taps(kernel_size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """0/1 matrix ``(2, 2R+1, k)``: tap ``t`` of a ``k``-tap filter applied after nearest x2
    upsampling, for output phase ``a``, reads low-resolution offset ``r - R`` (cached per
    device and dtype; never modified)."""
    pad = kernel_size // 2
    radius = math.ceil(pad / 2)
    with torch.inference_mode(False):  # a normal tensor even when first built in inference mode
        taps = torch.zeros(2, 2 * radius + 1, kernel_size, dtype=dtype)
        for phase in range(2):
            for t in range(kernel_size):
                taps[phase, (phase + t - pad) // 2 + radius, t] = 1.0
        return taps.to(device)


def nearest_upsample_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``conv2d(upsample_nearest_x2(x), weight, bias, padding=k // 2)`` without the upsampling.

    Output pixel ``(2i + a, 2j + b)`` of the upsampled-then-convolved map only reads
    low-resolution pixels ``(i + r, j + s)`` with ``|r|, |s| <= R``; summing the taps of
    ``weight`` that land on the same low-resolution pixel gives four ``(2R+1)^2`` phase
    kernels, applied in one convolution with ``4 * C_out`` channels and interleaved with
    ``pixel_shuffle``. Exact up to floating-point rounding, differentiable in all inputs.

    Parameters
    ----------
    x : Tensor
        ``(N, C_in, H, W)`` low-resolution input (any memory format).
    weight : Tensor
        ``(C_out, C_in, k, k)`` kernel of the "same" convolution, ``k`` odd.
    bias : Tensor or None
        ``(C_out,)``.

    Returns
    -------
    Tensor
        ``(N, C_out, 2H, 2W)``.

    Examples
    --------
    >>> import torch, torch.nn.functional as F
    >>> x, w = torch.randn(2, 3, 7, 7), torch.randn(4, 3, 5, 5)
    >>> ref = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, padding=2)
    >>> torch.allclose(nearest_upsample_conv2d(x, w, None), ref, atol=1e-4)
    True
    """
    c_out, c_in, k, k2 = weight.shape
    if k != k2 or k % 2 == 0:
        raise ValueError(f"weight must have an odd square kernel; got shape {tuple(weight.shape)}")
    taps = _phase_taps(k, weight.device, weight.dtype)
    size = taps.shape[1]
    phase_weight = torch.einsum("art,bsu,oitu->oabirs", taps, taps, weight).reshape(4 * c_out, c_in, size, size)
    phase_bias = None if bias is None else bias.repeat_interleave(4)
    return F.pixel_shuffle(F.conv2d(x, phase_weight, phase_bias, padding=size // 2), 2)


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that normalizes channels-last inputs through an NCHW copy.

    PyTorch's CPU batch norm on channels-last maps with few channels (4 or 8 here) runs
    several times slower than on NCHW maps; the copy costs far less. Parameters, buffers,
    running-statistics updates and results are those of ``nn.BatchNorm2d``; the output has
    the input's memory format.

    Examples
    --------
    >>> import torch
    >>> bn = BatchNorm2d(4)
    >>> x = torch.randn(8, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    >>> bn(x).is_contiguous(memory_format=torch.channels_last)
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


class _UpsampleConvBlock(nn.Sequential):
    """``[Upsample x2 nearest, Conv2d "same", BatchNorm2d, LeakyReLU]`` whose first two layers
    run as one :func:`nearest_upsample_conv2d` (same modules and state dict as the list)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, conv, *rest = self
        x = nearest_upsample_conv2d(x, conv.weight, conv.bias)
        for layer in rest:
            x = layer(x)
        return x


def _block(c_in: int, c_out: int, cfg: BackboneConfig, pool: bool, upsample: bool) -> nn.Sequential:
    pad = cfg.kernel_size // 2
    layers: list[nn.Module] = []
    if upsample:
        layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    layers += [
        nn.Conv2d(c_in, c_out, cfg.kernel_size, padding=pad, bias=cfg.bias),
        BatchNorm2d(c_out, affine=cfg.bias),
        nn.LeakyReLU(cfg.negative_slope),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return _UpsampleConvBlock(*layers) if upsample else nn.Sequential(*layers)


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
