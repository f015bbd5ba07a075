"""The AE/UNet of Baur et al. (2021) on whole 2-D axial slices: a convolutional autoencoder with skips.

Facts used (Pinon & Lartizien's release ``Nicolas-Pinon/uad_ocsvm_guided_repr_learning``,
``models_xp2/`` as summarised in issue 15 -- read for facts only, GPL-3.0 -- and Baur, Denner,
Wiestler, Navab, Albarqouni, "Autoencoders for unsupervised anomaly segmentation in brain MR
images: a comparative study", MedIA 2021 / Radiology: AI 2021):

* filters ``(64, 128, 256, 512, 64)``: four encoder levels with 64, 128, 256 and 512 filters,
  then a bottleneck of 64 channels (our reading of the fifth number);
* 5x5 convolutions, stride 1 for the first level and stride 2 for the others (the spatial size
  is divided by ``2 ** (len(widths) - 2)``, i.e. 8 for the paper's widths);
* skip connections from every encoder level to the decoder level of the same size (the "UNet"
  of "AE/UNet"; ``skips=False`` gives the plain AE);
* ``tanh`` output.

Not stated there and chosen here: batch normalisation and LeakyReLU(0.2) after each hidden
convolution, a 1x1 convolution into and out of the bottleneck, transposed 5x5 convolutions
(stride 2) in the decoder, and a final 1x1 convolution to one channel. Input heights and
widths must be multiples of ``2 ** (len(widths) - 2)``.

Examples
--------
>>> import torch
>>> net = SliceUNet(UNetConfig(widths=(4, 8, 8)))
>>> out = net(torch.zeros(2, 1, 16, 24))
>>> out.x_hat.shape, out.z.shape
(torch.Size([2, 1, 16, 24]), torch.Size([2, 8]))
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["PAPER_UNET_WIDTHS", "SliceUNet", "UNetConfig", "UNetOutput"]

#: The release's filters: four encoder levels and the bottleneck channels.
PAPER_UNET_WIDTHS = (64, 128, 256, 512, 64)


@dataclass(frozen=True)
class UNetConfig:
    """Arguments that rebuild a :class:`SliceUNet`.

    Parameters
    ----------
    widths : tuple of int
        Filters of the encoder levels, then the bottleneck channels (at least three numbers;
        paper: :data:`PAPER_UNET_WIDTHS`).
    kernel_size : int
        Size of the (odd) square kernels (paper: 5).
    skips : bool
        Skip connections (concatenation) from each encoder level to the decoder.
    in_channels : int
        Image channels (1 for T1).
    """

    widths: tuple = PAPER_UNET_WIDTHS
    kernel_size: int = 5
    skips: bool = True
    in_channels: int = 1

    def __post_init__(self) -> None:
        widths = tuple(int(w) for w in self.widths)
        if len(widths) < 3 or min(widths) < 1:
            raise ValueError(f"widths must hold at least three positive numbers (levels then bottleneck); got {self.widths!r}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number; got {self.kernel_size!r}")
        object.__setattr__(self, "widths", widths)

    @property
    def downsampling(self) -> int:
        """Factor by which the encoder divides heights and widths."""
        return 2 ** (len(self.widths) - 2)

    def to_dict(self) -> dict:
        """JSON-serializable dictionary."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "widths": tuple(d.get("widths", PAPER_UNET_WIDTHS))})


class UNetOutput(NamedTuple):
    """Output of :meth:`SliceUNet.forward`: the reconstruction and the pooled bottleneck."""

    x_hat: torch.Tensor
    z: torch.Tensor


def _block(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.LeakyReLU(0.2))


class SliceUNet(nn.Module):
    """AE/UNet on ``(N, C, H, W)`` slices (see the module docstring)."""

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or UNetConfig()
        k, pad = config.kernel_size, config.kernel_size // 2
        levels, bottleneck = config.widths[:-1], config.widths[-1]
        self.encoder = nn.ModuleList()
        previous = config.in_channels
        for i, width in enumerate(levels):
            stride = 1 if i == 0 else 2
            self.encoder.append(_block(nn.Conv2d(previous, width, k, stride, pad), width))
            previous = width
        self.to_bottleneck = _block(nn.Conv2d(previous, bottleneck, 1), bottleneck)
        self.from_bottleneck = _block(nn.Conv2d(bottleneck, previous, 1), previous)
        self.decoder = nn.ModuleList()
        for i in range(len(levels) - 1, 0, -1):
            in_ch = levels[i] * (2 if config.skips else 1)
            self.decoder.append(_block(nn.ConvTranspose2d(in_ch, levels[i - 1], k, 2, pad, output_padding=1),
                                       levels[i - 1]))
        self.head = nn.Conv2d(levels[0] * (2 if config.skips else 1), config.in_channels, 1)

    def forward(self, x: torch.Tensor) -> UNetOutput:
        """Reconstruct ``x``; heights and widths must be multiples of ``config.downsampling``."""
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected (N, {self.config.in_channels}, H, W) slices; got {tuple(x.shape)}")
        f = self.config.downsampling
        if x.shape[2] % f or x.shape[3] % f:
            raise ValueError(f"slice height and width must be multiples of {f}; got {tuple(x.shape[2:])}")
        features = []
        h = x
        for block in self.encoder:
            h = block(h)
            features.append(h)
        code = self.to_bottleneck(h)
        h = self.from_bottleneck(code)
        for block, skip in zip(self.decoder, reversed(features[1:])):
            h = block(torch.cat([h, skip], 1) if self.config.skips else h)
        h = torch.cat([h, features[0]], 1) if self.config.skips else h
        return UNetOutput(torch.tanh(self.head(h)), code.mean(dim=(2, 3)))
