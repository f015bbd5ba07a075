"""Brain-MRI anomaly detectors on whole volumes (Experiment 2): one estimator per method.

Every MRI method -- the patch models with localized or patient-specific OCSVMs (``ogae-loc``,
``sae-loc``, ``sae-ps``), the whole-slice baselines (``ae-unet``, ``vqvae-transformer``) and the
reference maps (``wm-prior``) -- is a :class:`~ogae_core.volumes.base.VolumeDetector`: fitted on
a cohort's training controls, it returns one anomaly map per subject (higher = more anomalous,
NaN outside the brain) and saves itself as safetensors + JSON. The registry maps the names that
the CLI, the run store and the dashboard use to their classes.

Examples
--------
>>> from ogae_core.volumes import volume_method_names
>>> isinstance(volume_method_names(), tuple)
True
"""
from __future__ import annotations

from ogae_core.volumes.base import (
    VolumeDetector,
    build_volume_detector,
    get_volume_method,
    register_volume_method,
    volume_method_names,
)

__all__ = ["VolumeDetector", "build_volume_detector", "get_volume_method", "register_volume_method",
           "volume_method_names"]
