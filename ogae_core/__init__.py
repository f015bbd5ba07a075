"""OgAE research environment: OCSVM-guided representation learning for anomaly detection.

Public entry points: :mod:`ogae_core.ocsvm` (exact differentiable one-class SVM),
:mod:`ogae_core.data` (MNIST, MNIST-C, tasks), :class:`ogae_core.Detector`.
"""
from __future__ import annotations

import os as _os

# OpenMP threads that spin while waiting make every small torch op 10-15x slower as
# soon as another process shares the cores (measured on 2-core machines); passive
# waiting costs nothing measurable when the machine is idle. Effective only if set
# before torch is first imported; an explicit user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ogae_core.version import __version__  # noqa: E402

__all__ = ["Detector", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import ogae_core` stays light (the dashboard imports it).
    if name == "Detector":
        from ogae_core.detector import Detector

        return Detector
    raise AttributeError(f"module 'ogae_core' has no attribute {name!r}")
