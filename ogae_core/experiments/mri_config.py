"""Configurations of Experiment 2 (brain MRI): :class:`MriEvalSpec` (how maps are scored) and
:class:`MriConfig` (one trained MRI method on one cohort; its run id is a hash of
:meth:`MriConfig.to_dict`).

They hold no training code (see :mod:`ogae_core.experiments.mri`), so reports and the dashboard
import them without the models.

Shared trainings
----------------
Two MRI methods share one training when their detector classes declare the same
``training_family`` and both offer ``from_trained`` (the hook of :mod:`ogae_core.experiments.mri`),
e.g. ``sae-loc`` and ``sae-ps`` (one SAE, two OCSVM scorers). Hyperparameters listed in a
class's ``scoring_params`` do not enter the training key. Detectors without the hook train alone.

Examples
--------
>>> c = MriConfig("wm-prior", cohort="smoke")
>>> c.label, c.to_dict()["experiment_kind"], c.run_id().startswith("wm-prior-s0-")
('wm-prior', 'mri', True)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from ogae_core.evaluation.mri import AGGREGATIONS, DEFAULT_AGGREGATION
from ogae_core.validation import check_integer

__all__ = ["COHORT_OPTIONS", "MriConfig", "MriEvalSpec", "normalised_cohort_options", "scoring_params", "shares_training",
           "training_family"]

#: Simulated-cohort overrides a config may carry (see ``ogae_core.data.mri.preset_config``).
COHORT_OPTIONS = ("seed", "site_balanced", "confound")


@dataclass(frozen=True)
class MriEvalSpec:
    """How anomaly maps are evaluated (recorded in the run's config; does not change training).

    Attributes
    ----------
    lesion_labels : tuple of int
        Lesion-mask labels that count as lesion in the localization metrics (the WMH challenge's
        1 = WMH, 2 = other pathology; the paper does not say, the default is WMH only).
    exclude_ventricles : bool
        Leave the ventricles out of the localization region.
    aggregation : str
        Subject-score rule of the classification (``q98``: the paper's; see
        :data:`ogae_core.evaluation.mri.AGGREGATIONS`; every rule is stored anyway).
    detection_quantile : float
        Share of the region above the threshold of the lesion-wise detection (2 %, as the
        paper's thresholded maps).
    """

    lesion_labels: tuple[int, ...] = (1,)
    exclude_ventricles: bool = True
    aggregation: str = DEFAULT_AGGREGATION
    detection_quantile: float = 0.02

    def __post_init__(self) -> None:
        labels = self.lesion_labels
        labels = (labels,) if isinstance(labels, int) else tuple(int(v) for v in labels)
        if not labels or any(v < 1 for v in labels):
            raise ValueError(f"lesion_labels must be positive label values; got {self.lesion_labels!r}")
        object.__setattr__(self, "lesion_labels", labels)
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; choose one of {list(AGGREGATIONS)}")
        if not 0 < float(self.detection_quantile) < 1:
            raise ValueError(f"detection_quantile must be in (0, 1); got {self.detection_quantile!r}")


def _detector_class(method: str):
    from ogae_core.volumes import get_volume_method

    try:
        return get_volume_method(method)
    except ValueError:
        return None  # an unknown method fails later, in the run, with the registry's message


def training_family(method: str) -> str:
    """The detector's ``training_family`` when it can reuse a trained network, else the method.

    Examples
    --------
    >>> training_family("wm-prior")
    'wm-prior'
    """
    cls = _detector_class(method)
    if cls is not None and shares_training(cls):
        return str(cls.training_family)
    return method


def shares_training(cls: type) -> bool:
    """Whether a detector class offers the shared-training hook (``training_family`` + ``from_trained``)."""
    return bool(getattr(cls, "training_family", None)) and callable(getattr(cls, "from_trained", None))


def scoring_params(method: str) -> tuple[str, ...]:
    """Hyperparameters of ``method`` that do not change its training (``scoring_params``)."""
    cls = _detector_class(method)
    return tuple(getattr(cls, "scoring_params", ())) if cls is not None and shares_training(cls) else ()


def normalised_cohort_options(cohort: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Cohort options without the ones that change nothing (``None``, ``False``, or the preset's
    own value), sorted, so that equal data give equal run ids.

    Examples
    --------
    >>> normalised_cohort_options("smoke", {"seed": 0, "site_balanced": False, "confound": True})
    {'confound': True}
    """
    out = {k: v for k, v in sorted(dict(options).items()) if v is not None and v is not False}
    if str(cohort).endswith(".csv"):
        return out
    from ogae_core.data.mri.manifest import preset_config

    try:
        preset = preset_config(cohort)
    except ValueError:
        return out  # an unknown preset fails when the cohort is loaded, with the manifest's message
    return {k: v for k, v in out.items() if preset.get(k) != v}


@dataclass(frozen=True)
class MriConfig:
    """One MRI method trained on one cohort with one seed.

    Attributes
    ----------
    method : str
        A registered MRI method (``ogae-loc``, ``sae-loc``, ``sae-ps``, ``ae-unet``,
        ``vqvae-transformer``, ``wm-prior``).
    cohort : str
        A simulated preset (``smoke``, ``default``, ``full``, ``paper``) or a CSV manifest path.
    seed : int
        Training seed (the cohort has its own seed, in ``cohort_options``).
    hyperparameters : mapping
        Keyword arguments of the detector.
    cohort_options : mapping
        Simulated-cohort overrides: ``seed``, ``site_balanced`` (site confound off), ``confound``.
    evaluation : MriEvalSpec
    label : str or None
        Row name in the tables (default: the method).
    save_maps : bool
        Write one NIfTI score map per test subject.
    """

    kind: ClassVar[str] = "mri"

    method: str
    cohort: str = "default"
    seed: int = 0
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    cohort_options: Mapping[str, Any] = field(default_factory=dict)
    evaluation: MriEvalSpec = field(default_factory=MriEvalSpec)
    label: str | None = None
    save_maps: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"method must be a non-empty string; got {self.method!r}")
        check_integer("seed", self.seed, minimum=0)
        bad = sorted(set(self.cohort_options) - set(COHORT_OPTIONS))
        if bad:
            raise ValueError(f"unknown cohort option(s) {bad}; known: {list(COHORT_OPTIONS)}")
        if self.label is None:
            object.__setattr__(self, "label", self.method)
        if not isinstance(self.evaluation, MriEvalSpec):
            object.__setattr__(self, "evaluation", MriEvalSpec(**dict(self.evaluation)))
        object.__setattr__(self, "hyperparameters", dict(sorted(dict(self.hyperparameters).items())))
        object.__setattr__(self, "cohort_options", normalised_cohort_options(self.cohort, self.cohort_options))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready resolved config (the run id is a hash of it)."""
        d = dataclasses.asdict(self)
        d["evaluation"]["lesion_labels"] = list(self.evaluation.lesion_labels)
        d["experiment_kind"] = self.kind
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MriConfig":
        """Inverse of :meth:`to_dict` (extra keys such as ``provenance`` are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["evaluation"] = MriEvalSpec(**kwargs.get("evaluation", {}))
        return cls(**kwargs)

    def cohort_key(self) -> dict[str, Any]:
        """What identifies the data: the cohort name and its options."""
        return {"cohort": self.cohort, "cohort_options": dict(self.cohort_options)}

    def training_key(self) -> str:
        """Hash of what determines the trained detector: data, seed, training family and the
        hyperparameters that change training.

        Examples
        --------
        >>> MriConfig("wm-prior").training_key() == MriConfig("wm-prior", label="x").training_key()
        True
        >>> MriConfig("wm-prior").training_key() == MriConfig("wm-prior", seed=1).training_key()
        False
        """
        from ogae_core.runs import config_hash

        skip = set(scoring_params(self.method))
        hp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.hyperparameters.items() if k not in skip}
        return config_hash({"experiment_kind": self.kind, **self.cohort_key(), "seed": self.seed,
                            "family": training_family(self.method), "hyperparameters": hp})

    def run_id(self) -> str:
        """The run directory name: ``<label>-s<seed>-<hash>``."""
        from ogae_core.runs import run_id

        return run_id(self.to_dict(), f"{self.label}-s{self.seed}")
