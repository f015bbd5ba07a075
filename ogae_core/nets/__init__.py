"""Plain ``nn.Module`` networks (no training code).

``MnistBackbone`` is the paper's S-H1 network shared by every Experiment-1 method;
``SliceUNet`` (AE/UNet of Baur et al.), ``SliceVQVAE`` and ``CodeTransformer`` (VQ-VAE +
Transformer of Pinaya et al.) are the whole-slice baselines of Experiment 2.
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
    "nearest_upsample_conv2d",
    "to_transposed_kernel",
]
