"""Test-only MRI detectors (registered on import; importable so that worker processes can load them).

* ``fake-dark``: anomaly = WM probability x how much darker than the training controls' median
  white-matter intensity a voxel is (T1-hypointense lesions score high), plus seeded noise;
* ``fake-shared-a`` / ``fake-shared-b``: one "network" (the training median) shared through the
  ``from_trained`` hook; ``b`` adds its scoring parameter ``offset``. ``TRAININGS`` counts fits.
* ``fake-broken``: fails in ``fit``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ogae_core.volumes import VolumeDetector, register_volume_method

TRAININGS: list[str] = []


def _wm(volumes) -> np.ndarray:
    w = np.asarray(volumes.wm, np.float32)
    return w / w.max() if w.max() > 1 else w


class _DarkBase(VolumeDetector):
    def __init__(self, noise: float = 0.01, offset: float = 0.0):
        self.noise, self.offset = noise, offset

    def fit(self, train, early_stop=(), *, seed=0, progress=False):
        TRAININGS.append(self.name)
        vols = [s.load() for s in train]
        self.median_ = float(np.median(np.concatenate([v.t1[_wm(v) > 0.5] for v in vols])))
        self.seed_ = int(seed)
        self.history_ = [{"epoch": e, "train_loss": 1.0 / (e + 1), "latent_spread": 0.1 * e} for e in range(2)]
        return self

    def anomaly_map(self, volumes):
        rng = np.random.default_rng([self.seed_, int(volumes.t1.sum() * 1000) % 10_000])
        dark = _wm(volumes) * (self.median_ - volumes.t1)
        out = (dark + self.offset + rng.normal(0, self.noise, volumes.t1.shape)).astype(np.float32)
        out[~volumes.brain] = np.nan
        return out

    def save(self, directory):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "fake.json").write_text(json.dumps({**self.get_params(), "median": self.median_, "seed": self.seed_}))
        return directory

    @classmethod
    def load(cls, directory):
        d = json.loads((Path(directory) / "fake.json").read_text())
        det = cls(noise=d["noise"], offset=d["offset"])
        det.median_, det.seed_, det.history_ = d["median"], d["seed"], []
        return det


@register_volume_method
class FakeDark(_DarkBase):
    name = "fake-dark"


@register_volume_method
class FakeSharedA(_DarkBase):
    name = "fake-shared-a"
    training_family = "fake-shared"
    scoring_params = ("offset",)

    @classmethod
    def from_trained(cls, trained, params, train, early_stop, *, seed=0, progress=False):
        det = cls(**params)
        det.median_, det.seed_, det.history_ = trained.median_, seed, list(getattr(trained, "history_", []))
        return det


@register_volume_method
class FakeSharedB(FakeSharedA):
    name = "fake-shared-b"


@register_volume_method
class FakeBroken(_DarkBase):
    name = "fake-broken"

    def fit(self, train, early_stop=(), *, seed=0, progress=False):
        raise RuntimeError("fake-broken cannot train")


BATCHES: list[int] = []


@register_volume_method
class FakeBatch(_DarkBase):
    """``fake-dark`` scored through a batch ``decision_maps`` (higher = more normal); records batch sizes."""

    name = "fake-batch"

    def anomaly_map(self, volumes):
        raise AssertionError("the experiment kind must use decision_maps")

    def decision_maps(self, volumes):
        BATCHES.append(len(volumes))
        return [-FakeDark.anomaly_map(self, v) for v in volumes]
