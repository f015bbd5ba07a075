"""OgAE research environment: OCSVM-guided representation learning for anomaly detection.

Public entry points: :mod:`ogae_core.ocsvm` (exact differentiable one-class SVM),
:mod:`ogae_core.data` (MNIST, MNIST-C, tasks), :class:`ogae_core.Detector`.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Detector", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import ogae_core` stays light (the dashboard imports it).
    if name == "Detector":
        from ogae_core.detector import Detector

        return Detector
    raise AttributeError(f"module 'ogae_core' has no attribute {name!r}")
