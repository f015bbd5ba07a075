"""Data for the OgAE experiments: real MNIST, MNIST-C corruptions, the paper's task splits.

- :func:`load_mnist` -- the 70,000 real digits from the first available verified source;
- :func:`corrupt` and :data:`CORRUPTIONS` -- the 15 MNIST-C corruptions plus identity;
- :func:`mnistc_task` -- train / early-stop / validation / test splits of supplementary S-D.

Everything is driven by the YAML files in ``data_manifests/``.
"""
from __future__ import annotations

from ogae_core.data.corruptions import CORRUPTIONS, corrupt, corruption_params
from ogae_core.data.manifests import ManifestError
from ogae_core.data.mnist import MNIST, MNISTNotFoundError, cache_dir, load_mnist
from ogae_core.data.sources import ChecksumError
from ogae_core.data.tasks import MnistCTask, Split, mnistc_task

__all__ = [
    "CORRUPTIONS",
    "ChecksumError",
    "MNIST",
    "MNISTNotFoundError",
    "ManifestError",
    "MnistCTask",
    "Split",
    "cache_dir",
    "corrupt",
    "corruption_params",
    "load_mnist",
    "mnistc_task",
]
