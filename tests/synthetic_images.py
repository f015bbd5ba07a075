"""Synthetic 28x28 training images for the method, trainer and detector tests."""
from __future__ import annotations

import torch


def blobs(n: int, seed: int = 0) -> torch.Tensor:
    """``(n, 28, 28)`` images in [0, 1]: one or two Gaussian blobs of random position/size."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    c = 8 + 12 * torch.rand(n, 2, 2, generator=g)
    s = 2 + 3 * torch.rand(n, 2, generator=g)
    img = torch.zeros(n, 28, 28)
    for k in range(2):
        d2 = (yy - c[:, k, 0, None, None]) ** 2 + (xx - c[:, k, 1, None, None]) ** 2
        img = torch.maximum(img, torch.exp(-d2 / (2 * s[:, k, None, None] ** 2)))
    return img
