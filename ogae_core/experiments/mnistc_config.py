"""Configurations of Experiment 1 (MNIST-C): :class:`TaskSpec` (which task, how much of it)
and :class:`RunConfig` (one trained configuration; its run id is a hash of :meth:`RunConfig.to_dict`).

They hold no training code (see :mod:`ogae_core.experiments.mnistc` for running them), so
presets, items and reports import them without the rest of the kind.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from ogae_core.validation import check_integer

#: Runtime-only options of the trainer; they never enter the config (nor the run id).
RUNTIME_KEYS = ("device", "progress", "log")


@dataclass(frozen=True)
class TaskSpec:
    """Which MNIST-C task, and how much of it, a run uses.

    Attributes
    ----------
    normal, anomaly : int
        Digits; items of ``anomaly`` are labelled 1.
    train_corruptions, test_corruptions : tuple of str or None
        ``None``: the manifest defaults (identity, motion_blur, translate / stripe,
        canny_edges, brightness).
    seed : int
        Seed of the corruptions and of the task's early-stopping split.
    max_train, max_validation, max_test : int or None
        Stratified subsample (by label and corruption, fixed seed) of the normal training
        items (``train ∪ early_stop``), of the validation split and of the test split;
        ``None`` keeps the whole split.
    mnist_limit : int or None
        Build the task from the first ``mnist_limit`` MNIST training images and the first
        ``mnist_limit // 6`` test images only (no task cache); for tests and the smoke preset.
    """

    normal: int = 3
    anomaly: int = 8
    train_corruptions: tuple[str, ...] | None = None
    test_corruptions: tuple[str, ...] | None = None
    seed: int = 0
    max_train: int | None = None
    max_validation: int | None = None
    max_test: int | None = None
    mnist_limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("train_corruptions", "test_corruptions"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, (v,) if isinstance(v, str) else tuple(v))
        for name in ("max_train", "max_validation", "max_test", "mnist_limit"):
            check_integer(name, getattr(self, name), minimum=1, allow_none=True)

    @property
    def name(self) -> str:
        """``"3v8"``."""
        return f"{self.normal}v{self.anomaly}"


def default_label(method: str, scoring: str) -> str:
    """Row name in the paper's tables: ``ogae-ocsvm``, ``ae-recons``; Deep SVDD rows by method.

    Examples
    --------
    >>> default_label("ogae", "ocsvm"), default_label("h-dsvdd", "svdd")
    ('ogae-ocsvm', 'h-dsvdd')
    """
    return method if scoring == "svdd" else f"{method}-{scoring}"


@dataclass(frozen=True)
class RunConfig:
    """One trained configuration of Experiment 1.

    Attributes
    ----------
    method, scoring : str
        A row of the paper's table (see :func:`ogae_core.methods.method_rows`).
    seed : int
        Seed of the training run.
    epochs : int
        Training epochs.
    hyperparameters : mapping
        Keyword arguments of :class:`~ogae_core.Detector` (method hyperparameters, backbone,
        trainer and final-OCSVM options); ``device``, ``progress`` and ``log`` are runtime
        options of :func:`run_mnistc` instead.
    task : TaskSpec
    label : str or None
        Display name; default :func:`default_label`.
    latent_sample : int
        Items embedded by UMAP (stratified over split, corruption and label).
    umap_seed : int
        ``random_state`` of UMAP.
    """

    #: The experiment kind of these configs (recorded as ``experiment_kind`` in the run's config).
    kind: ClassVar[str] = "mnistc"

    method: str
    scoring: str
    seed: int = 0
    epochs: int = 20
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    task: TaskSpec = field(default_factory=TaskSpec)
    label: str | None = None
    latent_sample: int = 2000
    umap_seed: int = 0

    def __post_init__(self) -> None:
        bad = [k for k in self.hyperparameters if k in RUNTIME_KEYS or k in ("epochs", "seed", "method", "scoring")]
        if bad:
            raise ValueError(f"hyperparameters must not set {bad}; pass them as RunConfig fields or run_mnistc options")
        if self.label is None:
            object.__setattr__(self, "label", default_label(self.method, self.scoring))
        if not isinstance(self.task, TaskSpec):
            object.__setattr__(self, "task", TaskSpec(**dict(self.task)))
        object.__setattr__(self, "hyperparameters", dict(sorted(dict(self.hyperparameters).items())))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready resolved config (the run id is a hash of it).

        Examples
        --------
        >>> RunConfig("ae", "recons").to_dict()["label"]
        'ae-recons'
        """
        d = dataclasses.asdict(self)
        d["hyperparameters"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.hyperparameters.items()}
        d["experiment_kind"] = self.kind
        d["early_stopping"] = "task-split"  # protocol marker: runs of the earlier 10 % random hold-out get other ids
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        """Inverse of :meth:`to_dict` (extra keys such as ``provenance`` are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        if d.get("early_stopping", "task-split") != "task-split":
            raise ValueError(f"unsupported early_stopping protocol {d['early_stopping']!r}")
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["task"] = TaskSpec(**kwargs.get("task", {}))
        return cls(**kwargs)

    def group_key(self) -> str:
        """Hash of everything but the seed: the unit of hyperparameter selection."""
        from ogae_core.runs import config_hash

        d = self.to_dict()
        d.pop("seed")
        return config_hash(d)

    def training_key(self) -> str:
        """Hash of what determines the trained network: the config without the label, the
        scoring, the final-OCSVM options and the UMAP settings, with the method's defaults
        resolved (``lam`` left at its default and ``lam=0.1`` train the same network; a named
        guidance regime stands for its four settings; OgAE's network and trainer defaults,
        :meth:`~ogae_core.methods.Method.default_settings`, are filled in too).

        Examples
        --------
        >>> a = RunConfig("ae", "recons")
        >>> b = RunConfig("ae", "ocsvm", hyperparameters={"ocsvm_nu": 0.03})
        >>> a.training_key() == b.training_key(), a.run_id() == b.run_id()
        (True, False)
        >>> p = RunConfig("ogae", "ocsvm", hyperparameters={"guidance": "project"})
        >>> q = RunConfig("ogae", "ocsvm", hyperparameters={"guidance": "project", "standardize": "each"})
        >>> p.training_key() == q.training_key()
        False
        >>> RunConfig("ogae", "recons").training_key() == RunConfig("ogae", "ocsvm", hyperparameters={
        ...     "guidance": "authors", "lam": 0.1, "negative_slope": 0.3, "early_stopping": "run"}).training_key()
        True
        """
        from ogae_core.detector import OCSVM_KEYS
        from ogae_core.runs import config_hash

        d = self.to_dict()
        for k in ("label", "scoring", "latent_sample", "umap_seed"):
            d.pop(k)
        given = {k: v for k, v in d["hyperparameters"].items() if k not in OCSVM_KEYS}
        hp = given
        try:
            from ogae_core.methods import get_method

            cls = get_method(self.method)
            fields = {f.name for f in dataclasses.fields(cls.Config)}
            # the method's config as it resolves (a named guidance regime fills its four settings)
            resolved = dataclasses.asdict(cls.Config.from_dict({k: v for k, v in given.items() if k in fields}))
            hp = {**cls.default_settings(), **resolved, **{k: v for k, v in given.items() if k not in fields}}
        except (ValueError, KeyError, TypeError):
            pass  # an unknown method or a bad value fails later, in training, with its own message
        d["hyperparameters"] = {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(hp.items())}
        return config_hash(d)

    def run_id(self) -> str:
        """The run directory name of this config."""
        from ogae_core.runs import run_id

        return run_id(self.to_dict())
