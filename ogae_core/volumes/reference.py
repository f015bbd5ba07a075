"""Reference anomaly maps that need no training: the white-matter prior (``wm-prior``).

The paper warns that a model which scores white matter high looks good at localization,
because white-matter lesions lie in white matter. :class:`WhiteMatterPrior` makes that
baseline explicit: its anomaly map *is* the subject's white-matter probability (plus an
optional tiny seeded jitter that breaks ties), so any method whose localization metrics do not
beat it has learned little more than "where the white matter is". It reads the cohort's
``wm_prob`` volume (:attr:`ogae_core.data.mri.SubjectVolumes.wm`); a subject without one gets
a clear error.

Examples
--------
>>> import numpy as np
>>> from ogae_core.data.mri import SubjectVolumes
>>> wm = np.zeros((4, 4, 1), np.float32); wm[1:3, 1:3] = 0.9
>>> brain = np.ones((4, 4, 1), bool); brain[0, 0] = False
>>> vols = SubjectVolumes(t1=wm.copy(), brain=brain, ventricles=np.zeros_like(brain), lesion=np.zeros_like(brain),
...                       labels=np.zeros((4, 4, 1), np.uint8), affine=np.eye(4), z_start=0, wm=wm)
>>> m = WhiteMatterPrior().fit([]).anomaly_map(vols)
>>> round(float(m[1, 1, 0]), 3), bool(np.isnan(m[0, 0, 0]))
(0.9, True)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ogae_core.volumes.base import VolumeDetector, register_volume_method

__all__ = ["WhiteMatterPrior"]

PARAMS_FILE = "wm_prior.json"


@register_volume_method
class WhiteMatterPrior(VolumeDetector):
    """The white-matter probability as anomaly map (a reference row, not a method).

    Parameters
    ----------
    jitter : float
        Standard deviation of a seeded Gaussian added to the map to break ties (0 = none).
        The WM probability is stored as uint8, so large groups of voxels share a value.
    """

    name = "wm-prior"
    description = "reference: the white-matter probability as anomaly map (no training)"

    def __init__(self, jitter: float = 0.0):
        self.jitter = jitter

    def fit(self, train: Sequence = (), early_stop: Sequence = (), *, seed: int = 0,
            progress: bool = False) -> "WhiteMatterPrior":
        """Nothing to learn; records the seed of the tie-breaking jitter."""
        if not (isinstance(self.jitter, (int, float)) and self.jitter >= 0 and np.isfinite(self.jitter)):
            raise ValueError(f"jitter must be a finite number >= 0; got {self.jitter!r}")
        self.seed_ = int(seed)
        self.history_ = [{"epoch": 0, "seconds": 0.0}]
        return self

    def anomaly_map(self, volumes) -> np.ndarray:
        """The WM probability inside the brain (float32), NaN outside."""
        if not hasattr(self, "seed_"):
            raise RuntimeError("WhiteMatterPrior is not fitted; call fit() first")
        if volumes.wm is None:
            raise ValueError("wm-prior needs the subject's white-matter probability (cohort column wm_prob); "
                             "this subject has none")
        out = np.asarray(volumes.wm, dtype=np.float32).copy()
        if out.size and np.nanmax(out) > 1.0:  # stored as 0..255 or 0..100 by some pipelines
            out /= np.float32(np.nanmax(out))
        if self.jitter:
            rng = np.random.default_rng([self.seed_, int(volumes.z_start)])
            out += rng.normal(0.0, self.jitter, out.shape).astype(np.float32)
        out[~np.asarray(volumes.brain, bool)] = np.nan
        return out

    def save(self, directory: str | Path) -> Path:
        """Write ``wm_prior.json`` (parameters and seed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / PARAMS_FILE).write_text(json.dumps({"jitter": self.jitter, "seed": self.seed_}))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "WhiteMatterPrior":
        """Read a detector written by :meth:`save`."""
        path = Path(directory) / PARAMS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; not a wm-prior model directory")
        d = json.loads(path.read_text())
        return cls(jitter=float(d["jitter"])).fit(seed=int(d["seed"]))
