"""Experiment 1 (MNIST-C): one configuration end to end, written as one run directory.

:func:`run_mnistc` builds the task (:func:`ogae_core.data.mnistc_task`, cached on disk),
trains a :class:`~ogae_core.Detector` on the normal training items, scores the validation and
test splits, embeds a stratified sample of latent codes in 2-D with UMAP, and writes
everything atomically through :func:`ogae_core.runs.create_run`:

``config.json`` (the resolved :class:`RunConfig` + provenance), ``model.safetensors`` /
``model.json`` / ``detector.json`` / ``ocsvm/`` (:meth:`Detector.save`), ``history.parquet``,
``scores.parquet`` (validation + test items), ``metrics.json`` (AUROC / AUPR / AUROC30 per
split, overall and per corruption) and ``latents.parquet``.

Early stopping uses the task's own ``early_stop`` split (10 % of the normal training
digits, fixed by the task seed, the same for every method and run seed); the network is
trained on the ``train`` split and the final OCSVM is fitted on the codes of ``train``.

The run id is a hash of the resolved config, so a configuration that already has a finished
run is recognised (and skipped) by :func:`run_mnistc` and by the sweeps.

Shared trainings: the scoring (``recons`` / ``ocsvm``) and the final-OCSVM options do not
change training, so configurations with the same :meth:`RunConfig.training_key` share one
trained network (:func:`run_training_group`); each still gets its own run directory, whose
``metrics.json`` names the run that trained the network (``trained_in``).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ogae_core.experiments.items import (  # noqa: F401 - re-exported
    build_task,
    embed_latents,
    latent_frame,
    split_metrics,
    stratified_subsample,
    task_items,
)

#: Runtime-only options of the trainer; they never enter the config (nor the run id).
RUNTIME_KEYS = ("device", "progress", "log")
SPLITS_SCORED = ("validation", "test")
#: A split whose largest group of equal scores exceeds this share gets a
#: ``"tied_scores:<split>"`` warning in ``metrics.json`` (see ``collapse_flags``).
TIED_SCORES_LIMIT = 0.5


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
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None; got {v!r}")

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
        d["experiment_kind"] = "mnistc"
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
        filled in (``lam`` left at its default and ``lam=1e-2`` train the same network).

        Examples
        --------
        >>> a = RunConfig("ae", "recons")
        >>> b = RunConfig("ae", "ocsvm", hyperparameters={"ocsvm_nu": 0.03})
        >>> a.training_key() == b.training_key(), a.run_id() == b.run_id()
        (True, False)
        """
        from ogae_core.detector import OCSVM_KEYS
        from ogae_core.runs import config_hash

        d = self.to_dict()
        for k in ("label", "scoring", "latent_sample", "umap_seed"):
            d.pop(k)
        defaults = {}
        try:
            from ogae_core.methods import get_method

            defaults = dataclasses.asdict(get_method(self.method).Config())
        except (ValueError, KeyError, TypeError):
            pass  # an unknown method fails later, in training, with the registry's message
        hp = {**defaults, **{k: v for k, v in d["hyperparameters"].items() if k not in OCSVM_KEYS}}
        d["hyperparameters"] = {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(hp.items())}
        return config_hash(d)

    def run_id(self) -> str:
        """The run directory name of this config."""
        from ogae_core.runs import run_id

        return run_id(self.to_dict())


# ----------------------------------------------------------------------------- one run
def _existing_run(cfg: RunConfig, root: Path | None, experiment: str, skip_existing: bool) -> Path | None:
    from ogae_core.runs import default_root, run_exists

    if not run_exists(root, experiment, cfg.to_dict()):
        return None
    path = (root or default_root()) / experiment / cfg.run_id()
    if skip_existing:
        return path
    raise FileExistsError(f"run {path} already exists; finished runs are never overwritten")


def _train(cfg: RunConfig, items, device: str, progress: bool, log: bool):
    """A fitted Detector for ``cfg`` and its training time (early stopping on the task's split)."""
    from ogae_core import Detector

    det = Detector(cfg.method, scoring=cfg.scoring, epochs=cfg.epochs, seed=cfg.seed, device=device,
                   progress=progress, log=log, **cfg.hyperparameters)
    t0 = time.perf_counter()
    det.fit(items["train"][0], X_val=items["early_stop"][0])
    return det, time.perf_counter() - t0


def _write_run(cfg: RunConfig, det, items, task, root: Path | None, experiment: str, device: str,
               train_seconds: float, trained_in: str | None, latent_cache: dict | None = None) -> Path:
    """Score, embed and write the run directory of ``cfg`` for a fitted detector.

    ``latent_cache`` (shared by runs of one network) keeps the UMAP embedding, which depends
    only on the network, ``latent_sample`` and ``umap_seed``."""
    import torch

    from ogae_core.runs import create_run

    t0 = time.perf_counter()
    scored = [f.assign(score=det.score_samples(x)) for x, f in (items[s] for s in SPLITS_SCORED)]
    score_seconds = time.perf_counter() - t0
    scores = pd.concat(scored, ignore_index=True)
    metrics = {s: split_metrics(scores[scores["split"] == s]) for s in SPLITS_SCORED}
    warnings = list(det.warnings_) + [f"tied_scores:{s}" for s in SPLITS_SCORED
                                      if metrics[s]["tied_fraction"] > TIED_SCORES_LIMIT]
    t0 = time.perf_counter()
    key = (cfg.latent_sample, cfg.umap_seed)
    if latent_cache is not None and key in latent_cache:
        latents = latent_cache[key]
    else:
        latents = latent_frame(det, items, cfg.latent_sample, cfg.umap_seed)
        if latent_cache is not None:
            latent_cache[key] = latents
    metrics.update({
        "train_seconds": train_seconds, "score_seconds": score_seconds, "umap_seconds": time.perf_counter() - t0,
        "epochs_run": len(det.history_), "stopped_early": det.stopped_early_, "warnings": warnings,
        "n_train": int(len(items["train"][0])), "n_early_stop": int(len(items["early_stop"][0])),
        "device": str(device), "torch_threads": torch.get_num_threads(),
        "training_key": cfg.training_key(), "trained_in": trained_in,
    })
    data_hash = task.cache_key if cfg.task.mnist_limit is None else f"{task.cache_key}:first{cfg.task.mnist_limit}"
    with create_run(root, experiment, cfg.to_dict(), seed=cfg.seed, data_hash=data_hash) as w:
        det.save(w.path)
        w.write_history(pd.DataFrame(det.history_))
        w.write_scores(scores)
        w.write_latents(latents)
        w.write_metrics(metrics)
    return w.final_path


def run_mnistc(config: RunConfig | Mapping[str, Any], runs_root: str | Path | None = None, experiment: str = "mnistc",
               *, device: str = "cpu", threads: int | None = None, progress: bool = False, log: bool = True,
               skip_existing: bool = True) -> Path:
    """Train, score and store one configuration; returns the run directory.

    Parameters
    ----------
    config : RunConfig or dict
    runs_root : path, optional
        Run store root (default ``$OGAE_RUNS`` or ``./runs``).
    experiment : str
        Experiment directory, e.g. ``"mnistc-3v8-quick"``.
    device : str
        Torch device (``"cpu"``, ``"cuda"``, ``"auto"``); not part of the config.
    threads : int, optional
        ``torch.set_num_threads`` for this process.
    progress, log : bool
        Trainer progress bar and per-epoch log line.
    skip_existing : bool
        Return the existing run when this config already has a finished one (else raise
        ``FileExistsError`` before training).

    Examples
    --------
    >>> spec = TaskSpec(max_train=200, max_validation=120, max_test=120, mnist_limit=1200)
    >>> path = run_mnistc(RunConfig("ae", "recons", epochs=1, task=spec, latent_sample=60,
    ...                             hyperparameters={"batch_size": 50}), "/tmp/ogae-doc", "doc")  # doctest: +SKIP
    """
    import torch

    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    root = Path(runs_root) if runs_root is not None else None
    existing = _existing_run(cfg, root, experiment, skip_existing)
    if existing is not None:
        return existing
    if threads:
        torch.set_num_threads(int(threads))
    task = build_task(cfg.task)
    items = task_items(cfg.task, task)
    det, seconds = _train(cfg, items, device, progress, log)
    return _write_run(cfg, det, items, task, root, experiment, device, seconds, None)


def run_training_group(configs: Sequence[RunConfig | Mapping[str, Any]], runs_root: str | Path | None = None,
                       experiment: str = "mnistc", *, device: str = "cpu", threads: int | None = None,
                       progress: bool = False, log: bool = True) -> dict[str, str]:
    """Run configurations that share one training (same :meth:`RunConfig.training_key`).

    The network is trained once — or, when one of the configurations already has a finished
    run (an interrupted group), loaded from that run's ``model.safetensors`` — and every other
    configuration only refits its scorer (:meth:`ogae_core.Detector.with_scoring`). Finished
    runs are skipped; a configuration that fails does not stop the others.

    Returns
    -------
    dict
        ``{run id: run directory}`` for every configuration, or ``{run id: "ERROR: ..."}``
        for one that failed.

    Examples
    --------
    >>> spec = TaskSpec(max_train=200, max_validation=120, max_test=120, mnist_limit=1200)
    >>> cfgs = [RunConfig("ae", s, epochs=1, task=spec, latent_sample=60) for s in ("recons", "ocsvm")]
    >>> out = run_training_group(cfgs, "/tmp/ogae-doc", "doc")  # doctest: +SKIP
    """
    import torch

    from ogae_core import Detector
    from ogae_core.runs import read_run

    cfgs = [c if isinstance(c, RunConfig) else RunConfig.from_dict(c) for c in configs]
    if not cfgs:
        return {}
    keys = {c.training_key() for c in cfgs}
    if len(keys) != 1:
        raise ValueError(f"run_training_group needs configurations with one training key; got {len(keys)} different ones")
    root = Path(runs_root) if runs_root is not None else None
    out: dict[str, str] = {}
    todo = []
    for c in cfgs:
        existing = _existing_run(c, root, experiment, skip_existing=True)
        if existing is not None:
            out[c.run_id()] = str(existing)
        else:
            todo.append(c)
    if not todo:
        return out
    if threads:
        torch.set_num_threads(int(threads))
    task = build_task(todo[0].task)
    items = task_items(todo[0].task, task)
    base, base_id, seconds = None, None, 0.0
    if out:  # finished runs of this training (every entry of `out` so far): load the network of one
        rid, path = next(iter(out.items()))
        metrics = read_run(path).metrics
        base = Detector.load(path, device=device)
        seconds = float(metrics.get("train_seconds", 0.0))
        base_id = metrics.get("trained_in") or rid
    train_error, latents = None, {}
    for c in todo:
        if train_error is not None:
            out[c.run_id()] = f"ERROR: the shared training failed: {train_error}"
            continue
        try:
            if base is None:
                try:
                    det, seconds = _train(c, items, device, progress, log)
                except Exception as err:  # noqa: BLE001
                    train_error = f"{type(err).__name__}: {err}"
                    raise
                base, base_id = det, c.run_id()
                out[c.run_id()] = str(_write_run(c, det, items, task, root, experiment, device, seconds, None, latents))
                continue
            det = base.with_scoring(items["train"][0], c.scoring, **{k: v for k, v in c.hyperparameters.items()
                                                                   if k.startswith("ocsvm_")})
            out[c.run_id()] = str(_write_run(c, det, items, task, root, experiment, device, seconds, base_id, latents))
        except Exception as err:  # noqa: BLE001 - one failed configuration must not stop the group
            out[c.run_id()] = f"ERROR: {type(err).__name__}: {err}"
    return out
