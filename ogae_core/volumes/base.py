"""The contract of a brain-MRI detector and the registry of MRI method names.

A volume detector follows scikit-learn's estimator contract: ``__init__`` only stores keyword
arguments (hyperparameters); :meth:`VolumeDetector.fit` validates, seeds and trains on a
cohort's training controls (with the early-stopping controls given separately); learned state
ends in ``_``. Scores follow the package's one convention for names:

* :meth:`VolumeDetector.anomaly_map` -- higher = more anomalous (what metrics, run stores and
  the dashboard use), a float32 volume on the subject's grid, NaN outside the brain;
* methods that have a decision function (the OCSVM-based ones) may also offer
  ``decision_map`` with scikit-learn's sign (higher = more normal): ``anomaly_map == -decision_map``.

Implementations register themselves under the names users type (``ogae-loc``, ``sae-loc``,
``sae-ps``, ``ae-unet``, ``vqvae-transformer``, ``wm-prior``) with :func:`register_volume_method`;
the modules that hold them are listed in :data:`VOLUME_METHOD_MODULES` and imported on first
lookup, so that this module imports no model code.

Examples
--------
>>> @register_volume_method
... class Constant(VolumeDetector):
...     name = "constant-doc"
...     def __init__(self, value: float = 0.0):
...         self.value = value
...     def fit(self, train, early_stop=(), *, seed=0, progress=False):
...         self.fitted_ = True
...         return self
...     def anomaly_map(self, volumes):
...         import numpy as np
...         out = np.full(volumes.t1.shape, np.nan, np.float32)
...         out[volumes.brain] = self.value
...         return out
...     def save(self, directory):
...         return directory
...     @classmethod
...     def load(cls, directory):
...         return cls()
>>> get_volume_method("constant-doc") is Constant
True
>>> build_volume_detector("constant-doc", {"value": 2.0}).get_params()
{'value': 2.0}
"""
from __future__ import annotations

import abc
import importlib
import inspect
from pathlib import Path
from typing import Any, ClassVar, Sequence

#: Modules that register volume methods when imported (looked up lazily by name).
VOLUME_METHOD_MODULES: tuple[str, ...] = (
    "ogae_core.volumes.patch_models",
    "ogae_core.volumes.slice_models",
    "ogae_core.volumes.reference",
)

_REGISTRY: dict[str, type] = {}


class VolumeDetector(abc.ABC):
    """Base class of every brain-MRI method (see the module docstring for the contract).

    Subclasses set :attr:`name` and implement :meth:`fit`, :meth:`anomaly_map`, :meth:`save`
    and :meth:`load`. ``fit`` receives :class:`ogae_core.data.mri.Subject` lists (volumes are
    loaded on demand, so that memory stays bounded); ``anomaly_map`` receives one subject's
    :class:`ogae_core.data.mri.SubjectVolumes`.
    """

    #: Name users type (CLI, run store, dashboard).
    name: ClassVar[str] = ""
    #: One line for listings.
    description: ClassVar[str] = ""
    #: Subject-level score rule the method's paper uses on the anomaly map (see the evaluation).
    subject_score: ClassVar[str] = "q98"

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments as stored (scikit-learn's contract)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: getattr(self, p) for p in names}

    @abc.abstractmethod
    def fit(self, train: Sequence, early_stop: Sequence = (), *, seed: int = 0, progress: bool = False) -> "VolumeDetector":
        """Train on the training controls ``train`` (early stopping on ``early_stop``); returns ``self``."""

    @abc.abstractmethod
    def anomaly_map(self, volumes) -> Any:
        """Anomaly map of one subject (float32, the subject's grid, NaN outside the brain)."""

    @abc.abstractmethod
    def save(self, directory: str | Path) -> Path:
        """Write what scoring needs (safetensors + JSON, no pickle) into ``directory``."""

    @classmethod
    @abc.abstractmethod
    def load(cls, directory: str | Path) -> "VolumeDetector":
        """Read a detector written by :meth:`save`."""


def register_volume_method(cls: type) -> type:
    """Class decorator: register ``cls`` under ``cls.name`` (a duplicate name raises ``ValueError``)."""
    if not (isinstance(cls, type) and issubclass(cls, VolumeDetector)) or not cls.name:
        raise ValueError(f"{cls!r} must be a VolumeDetector subclass with a non-empty name")
    other = _REGISTRY.get(cls.name)
    if other is not None and other is not cls and other.__qualname__ != cls.__qualname__:
        raise ValueError(f"volume method {cls.name!r} is already registered by {other.__module__}.{other.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def _import_builtin_methods() -> None:
    for module in VOLUME_METHOD_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # a missing dependency inside an existing module is a real error
                raise


def volume_method_names() -> tuple[str, ...]:
    """Registered MRI method names, in registration order."""
    _import_builtin_methods()
    return tuple(_REGISTRY)


def get_volume_method(name: str) -> type:
    """The class registered under ``name`` (``ValueError`` listing the known names)."""
    if name not in _REGISTRY:
        _import_builtin_methods()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown MRI method {name!r}; choose one of {list(_REGISTRY)}") from None


def build_volume_detector(name: str, params: dict | None = None) -> VolumeDetector:
    """Instantiate the MRI method ``name`` with keyword arguments ``params`` (unknown names raise)."""
    cls = get_volume_method(name)
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params or {}) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for MRI method {name!r}; valid: {allowed}")
    return cls(**dict(params or {}))
