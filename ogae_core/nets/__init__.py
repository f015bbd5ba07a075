"""Plain ``nn.Module`` networks (no training code).

``MnistBackbone`` is the paper's S-H1 network shared by every Experiment-1 method;
``SliceUNet`` (AE/UNet of Baur et al.), ``SliceVQVAE`` and ``CodeTransformer`` (VQ-VAE +
Transformer of Pinaya et al.) are the whole-slice baselines of Experiment 2;
``PatchBackbone`` is the S-H2 patch network of Experiment 2 (brain MRI). :func:`build_backbone`
builds either from its config (the type of the config chooses the network), and
:func:`backbone_config_from_dict` reads a saved config back (``"kind": "patch"`` marks the
patch network; MNIST configs carry no kind, as before).

Examples
--------
>>> type(build_backbone(PatchBackboneConfig())).__name__, type(build_backbone(BackboneConfig())).__name__
('PatchBackbone', 'MnistBackbone')
>>> backbone_config_from_dict(PatchBackboneConfig().to_dict()) == PatchBackboneConfig()
True
"""
from ogae_core.nets.mnist import (
    IMAGE_SHAPE,
    BackboneConfig,
    BackboneOutput,
    BatchNorm2d,
    EncoderOutput,
    MnistBackbone,
    nearest_upsample_conv2d,
    to_transposed_kernel,
)
from ogae_core.nets.transformer import CodeTransformer, TransformerConfig, TransformerOutput
from ogae_core.nets.unet import PAPER_UNET_WIDTHS, SliceUNet, UNetConfig, UNetOutput
from ogae_core.nets.vqvae import CODEBOOK_MODES, QuantizerOutput, SliceVQVAE, VectorQuantizer, VQVAEConfig, VQVAEOutput
from ogae_core.nets.patch import PatchBackbone, PatchBackboneConfig


def build_backbone(config):
    """The network of a backbone config: :class:`MnistBackbone` for a :class:`BackboneConfig`,
    :class:`PatchBackbone` for a :class:`PatchBackboneConfig` (``TypeError`` otherwise)."""
    if isinstance(config, PatchBackboneConfig):
        return PatchBackbone(config)
    if isinstance(config, BackboneConfig):
        return MnistBackbone(config)
    raise TypeError(f"backbone config must be a BackboneConfig or a PatchBackboneConfig; got {type(config).__name__}")


def backbone_config_from_dict(d: dict):
    """A backbone config from its ``to_dict()``: ``"kind": "patch"`` gives a
    :class:`PatchBackboneConfig`, no kind (or ``"mnist"``) a :class:`BackboneConfig`."""
    kind = d.get("kind", "mnist")
    if kind == PatchBackboneConfig.kind:
        return PatchBackboneConfig.from_dict(d)
    if kind == "mnist":
        return BackboneConfig.from_dict({k: v for k, v in d.items() if k != "kind"})
    raise ValueError(f"unknown backbone kind {kind!r}; known: 'mnist', 'patch'")


__all__ = [
    "CODEBOOK_MODES",
    "CodeTransformer",
    "PAPER_UNET_WIDTHS",
    "QuantizerOutput",
    "SliceUNet",
    "SliceVQVAE",
    "TransformerConfig",
    "TransformerOutput",
    "UNetConfig",
    "UNetOutput",
    "VQVAEConfig",
    "VQVAEOutput",
    "VectorQuantizer",
    "IMAGE_SHAPE",
    "BackboneConfig",
    "BackboneOutput",
    "BatchNorm2d",
    "EncoderOutput",
    "MnistBackbone",
    "PatchBackbone",
    "PatchBackboneConfig",
    "backbone_config_from_dict",
    "build_backbone",
    "nearest_upsample_conv2d",
    "to_transposed_kernel",
]
