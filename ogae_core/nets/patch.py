"""The paper's S-H2 patch network: a small convolutional autoencoder of 15x15 axial patches.

Architecture (paper, supplementary S-H2), every convolution unpadded (``padding=0``):

* encoder: ``conv 5x5 (3) -> BN -> GELU -> conv 3x3 (4) -> BN -> GELU -> conv 3x3 (12) ->
  BN -> GELU -> conv 3x3 (16) -> BN -> GELU``; a 15x15 patch gives a 16x5x5 map, flattened
  into the latent code of 400 values (:attr:`PatchBackboneConfig.latent_dim`);
* decoder, the mirror: ``transposed 3x3 (12) -> BN -> GELU -> transposed 3x3 (4) -> BN ->
  GELU -> transposed 3x3 (3) -> BN -> GELU -> transposed 5x5 (1) -> sigmoid``.

4,849 parameters. The paper does not state the latent size: with unpadded convolutions it is
``widths[-1] * (patch_size - sum(k - 1))**2`` (400 at the defaults, larger than the 225-pixel
input); change ``widths`` or ``patch_size`` to change it. ``bias=False`` gives the bias-free
Deep SVDD variant (no biases, batch norms without affine parameters), as the MNIST backbone.

The module holds no training logic; ``forward`` returns the same typed outputs as
:class:`ogae_core.nets.MnistBackbone` (:class:`~ogae_core.nets.mnist.BackboneOutput`), so that
every method of :mod:`ogae_core.methods` trains either network.

Examples
--------
>>> import torch
>>> net = PatchBackbone().eval()
>>> out = net(torch.rand(2, 1, 15, 15))
>>> tuple(out.z.shape), tuple(out.x_hat.shape), net.config.latent_dim
((2, 400), (2, 1, 15, 15), 400)
>>> sum(p.numel() for p in net.parameters())
4849
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ogae_core.nets.mnist import BackboneOutput, BatchNorm2d, EncoderOutput

__all__ = ["PatchBackbone", "PatchBackboneConfig"]


@dataclass(frozen=True)
class PatchBackboneConfig:
    """Arguments that rebuild a :class:`PatchBackbone` (the paper's S-H2 at the defaults).

    Parameters
    ----------
    patch_size : int
        Odd side of the square input patches (paper: 15).
    widths : tuple of int
        Filters of the encoder convolutions (paper: (3, 4, 12, 16)); the decoder mirrors them.
    kernel_sizes : tuple of int
        Odd sizes of the encoder convolutions (paper: (5, 3, 3, 3)); the decoder mirrors them.
    bias : bool
        ``False`` gives the bias-free variant.
    variational : bool
        Not supported by S-H2 (must be ``False``; present so that methods can ask for it and
        get a clear error).
    decoder : bool
        ``False`` builds the encoder only.

    Examples
    --------
    >>> PatchBackboneConfig().latent_dim, PatchBackboneConfig().latent_shape
    (400, (16, 5, 5))
    >>> PatchBackboneConfig(patch_size=14)
    Traceback (most recent call last):
    ...
    ValueError: patch_size must be odd (a patch is centred on its voxel); got 14
    """

    patch_size: int = 15
    widths: tuple[int, ...] = (3, 4, 12, 16)
    kernel_sizes: tuple[int, ...] = (5, 3, 3, 3)
    bias: bool = True
    variational: bool = False
    decoder: bool = True

    #: Tells :func:`ogae_core.nets.backbone_config_from_dict` which network a saved config rebuilds.
    kind = "patch"

    def __post_init__(self) -> None:
        widths = tuple(int(w) for w in self.widths)
        kernels = tuple(int(k) for k in self.kernel_sizes)
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "kernel_sizes", kernels)
        if int(self.patch_size) != self.patch_size or self.patch_size < 1 or self.patch_size % 2 == 0:
            raise ValueError(f"patch_size must be odd (a patch is centred on its voxel); got {self.patch_size!r}")
        if not widths or len(widths) != len(kernels) or min(widths) < 1:
            raise ValueError(f"widths must be positive integers, one per kernel size; got {self.widths!r} "
                             f"and kernel_sizes {self.kernel_sizes!r}")
        if min(kernels) < 1 or any(k % 2 == 0 for k in kernels):
            raise ValueError(f"kernel_sizes must be positive odd integers; got {self.kernel_sizes!r}")
        if self.latent_side < 1:
            raise ValueError(f"patch_size {self.patch_size} is too small for unpadded kernels {kernels}: the "
                             f"encoder needs patches larger than {sum(k - 1 for k in kernels)}")
        if self.variational:
            raise ValueError("the S-H2 patch network has no variational head (variational=False)")

    @property
    def latent_side(self) -> int:
        """Side of the last encoder map (``patch_size - sum(k - 1)``)."""
        return int(self.patch_size) - sum(k - 1 for k in self.kernel_sizes)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(channels, side, side)`` of the code before flattening."""
        return (self.widths[-1], self.latent_side, self.latent_side)

    @property
    def latent_dim(self) -> int:
        """Length of the flattened latent code (400 at the defaults)."""
        c, h, w = self.latent_shape
        return c * h * w

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(1, patch_size, patch_size)``."""
        return (1, int(self.patch_size), int(self.patch_size))

    def to_dict(self) -> dict:
        """JSON-serializable dictionary, with ``"kind": "patch"`` (tuples become lists)."""
        d = asdict(self)
        d["widths"], d["kernel_sizes"] = list(self.widths), list(self.kernel_sizes)
        return {"kind": self.kind, **d}

    @classmethod
    def from_dict(cls, d: dict) -> "PatchBackboneConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"not a patch backbone config (kind {kind!r})")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown patch backbone config keys {sorted(unknown)}; valid: {sorted(known)}")
        for key in ("widths", "kernel_sizes"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


def _layer(conv: nn.Module, channels: int, bias: bool) -> list[nn.Module]:
    return [conv, BatchNorm2d(channels, affine=bias), nn.GELU()]


class PatchBackbone(nn.Module):
    """S-H2 convolutional autoencoder for ``(N, 1, p, p)`` patches in [0, 1] (see the module docstring).

    Parameters
    ----------
    config : PatchBackboneConfig, optional
        Architecture options; defaults to the paper's network.
    """

    def __init__(self, config: PatchBackboneConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or PatchBackboneConfig()
        layers: list[nn.Module] = []
        c_in = 1
        for width, k in zip(cfg.widths, cfg.kernel_sizes):
            layers += _layer(nn.Conv2d(c_in, width, k, bias=cfg.bias), width, cfg.bias)
            c_in = width
        self.encoder_conv = nn.Sequential(*layers)
        if cfg.decoder:
            outs = list(cfg.widths[:-1][::-1]) + [1]
            layers = []
            for i, (c_out, k) in enumerate(zip(outs, cfg.kernel_sizes[::-1])):
                conv = nn.ConvTranspose2d(c_in, c_out, k, bias=cfg.bias)
                layers += [conv] if i == len(outs) - 1 else _layer(conv, c_out, cfg.bias)
                c_in = c_out
            self.decoder_conv = nn.Sequential(*layers, nn.Sigmoid())
        else:
            self.decoder_conv = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(1, patch_size, patch_size)``: what :meth:`forward` accepts per item."""
        return self.config.input_shape

    @property
    def has_decoder(self) -> bool:
        """Whether the network reconstructs patches."""
        return self.decoder_conv is not None

    def encode(self, x: torch.Tensor) -> EncoderOutput:
        """Encode patches ``(N, 1, p, p)`` into flattened codes ``(N, latent_dim)``."""
        return EncoderOutput(self.encoder_conv(x).flatten(1), None, None)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode codes ``(N, latent_dim)`` into patches ``(N, 1, p, p)``."""
        if self.decoder_conv is None:
            raise RuntimeError("this backbone was built with decoder=False and cannot reconstruct")
        return self.decoder_conv(z.reshape(z.shape[0], *self.config.latent_shape))

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """Encode, then decode when the network has a decoder."""
        enc = self.encode(x)
        x_hat = self.decode(enc.z) if self.decoder_conv is not None else None
        return BackboneOutput(enc.z, x_hat, None, None)
