"""Plain ``nn.Module`` networks (no training code).

``MnistBackbone`` is the paper's S-H1 network shared by every Experiment-1 method.
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

__all__ = [
    "IMAGE_SHAPE",
    "BackboneConfig",
    "BackboneOutput",
    "BatchNorm2d",
    "EncoderOutput",
    "MnistBackbone",
    "nearest_upsample_conv2d",
    "to_transposed_kernel",
]
