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
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

#: Runtime-only options of the trainer; they never enter the config (nor the run id).
RUNTIME_KEYS = ("device", "progress", "log")
SPLITS_SCORED = ("validation", "test")


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


# ----------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=4)
def build_task(spec: TaskSpec):
    """The :class:`~ogae_core.data.MnistCTask` of ``spec`` (disk cache; in-process cache)."""
    from ogae_core.data import MNIST, load_mnist, mnistc_task

    kwargs = dict(train_corruptions=spec.train_corruptions, test_corruptions=spec.test_corruptions, seed=spec.seed)
    if spec.mnist_limit is None:
        return mnistc_task(spec.normal, spec.anomaly, **kwargs)
    full = load_mnist()
    n_tr, n_te = spec.mnist_limit, max(1, spec.mnist_limit // 6)
    part = MNIST(full.train_images[:n_tr], full.train_labels[:n_tr], full.test_images[:n_te], full.test_labels[:n_te],
                 source=f"{full.source} (first {n_tr} train / {n_te} test images)")
    # a partial MNIST must never reach the task cache (its key does not include the data)
    return mnistc_task(spec.normal, spec.anomaly, mnist=part, use_cache=False, **kwargs)


def stratified_subsample(strata: Sequence[np.ndarray], n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a subsample of ``n`` items, proportional within each stratum.

    Every stratum keeps at least one item when ``n`` allows; ``None`` or ``n >= N`` keeps
    everything.

    Examples
    --------
    >>> lab = np.r_[np.zeros(90, int), np.ones(10, int)]
    >>> idx = stratified_subsample([lab], 20, seed=0)
    >>> len(idx), int(lab[idx].sum())
    (20, 2)
    """
    keys = pd.MultiIndex.from_arrays([np.asarray(s) for s in strata]) if len(strata) > 1 else pd.Index(np.asarray(strata[0]))
    n_items = len(keys)
    if n is None or n >= n_items:
        return np.arange(n_items)
    codes, uniques = pd.factorize(keys)
    rng = np.random.default_rng(seed)
    counts = np.bincount(codes, minlength=len(uniques))
    quota = np.maximum(1, np.floor(counts * n / n_items)).astype(int)
    quota = np.minimum(quota, counts)
    # hand out the remainder to the strata with the largest fractional parts
    short = n - quota.sum()
    if short > 0:
        frac = counts * n / n_items - np.floor(counts * n / n_items)
        for k in np.argsort(-frac, kind="stable"):
            if short == 0:
                break
            if quota[k] < counts[k]:
                quota[k] += 1
                short -= 1
    picked = [rng.permutation(np.flatnonzero(codes == k))[: quota[k]] for k in range(len(uniques))]
    return np.sort(np.concatenate(picked))


def _split_frame(split, name: str, index: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "split": name, "item": index.astype(np.int64), "label": split.labels[index].astype(np.int64),
        "digit": split.digits[index].astype(np.int64), "corruption": split.corruptions[index].astype(str),
        "source_index": split.source_index[index].astype(np.int64),
    })


def task_items(spec: TaskSpec, task=None) -> dict[str, tuple[np.ndarray, pd.DataFrame]]:
    """Images and metadata of the items a run uses: ``{"train"|"early_stop"|"validation"|"test": (images, frame)}``.

    ``max_train`` subsamples ``train ∪ early_stop`` (stratified by split, label and
    corruption, so both keep their proportions); item numbers of ``early_stop`` continue after
    those of ``train``.
    """
    task = build_task(spec) if task is None else task
    tr_images = np.concatenate([task.train.images, task.early_stop.images])
    tr_frame = pd.concat([_split_frame(task.train, "train", np.arange(len(task.train))),
                          _split_frame(task.early_stop, "early_stop", np.arange(len(task.early_stop)))], ignore_index=True)
    tr_frame["item"] = np.arange(len(tr_frame))
    out = {}
    parts = {"train": (tr_images, tr_frame, spec.max_train),
             "validation": (task.validation.images, _split_frame(task.validation, "validation", np.arange(len(task.validation))),
                            spec.max_validation),
             "test": (task.test.images, _split_frame(task.test, "test", np.arange(len(task.test))), spec.max_test)}
    for i, (name, (images, frame, limit)) in enumerate(parts.items()):
        strata = [frame["label"].to_numpy(), frame["corruption"].to_numpy()]
        if name == "train":
            strata.append(frame["split"].to_numpy())
        idx = stratified_subsample(strata, limit, seed=spec.seed + 17 * i)
        images, frame = images[idx], frame.iloc[idx].reset_index(drop=True)
        if name == "train":
            held = (frame["split"] == "early_stop").to_numpy()
            out["train"] = (images[~held], frame[~held].reset_index(drop=True))
            out["early_stop"] = (images[held], frame[held].reset_index(drop=True))
        else:
            out[name] = (images, frame)
    return out


# ----------------------------------------------------------------------------- metrics, latents
def split_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    """AUROC / AUPR / AUROC30 (+ raw) of one split, overall and per corruption.

    Examples
    --------
    >>> f = pd.DataFrame({"score": [0.1, 0.9, 0.2, 0.8], "label": [0, 1, 0, 1], "corruption": ["a", "a", "b", "b"]})
    >>> m = split_metrics(f)
    >>> m["auroc"], m["per_corruption"]["b"]["auroc"]
    (1.0, 1.0)
    """
    from ogae_core.evaluation import all_metrics

    out: dict[str, Any] = all_metrics(frame["label"].to_numpy(), frame["score"].to_numpy())
    out["n_items"] = int(len(frame))
    out["n_anomalies"] = int(frame["label"].sum())
    per = {}
    for c, g in frame.groupby("corruption", sort=False):
        if g["label"].nunique() == 2:
            per[str(c)] = all_metrics(g["label"].to_numpy(), g["score"].to_numpy())
    out["per_corruption"] = per
    return out


def embed_latents(codes: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2-D UMAP embedding of latent codes (``random_state=seed``: deterministic, single-threaded)."""
    import warnings

    import umap

    codes = np.asarray(codes, dtype=np.float64)
    if codes.shape[0] < 4:
        raise ValueError(f"need at least 4 latent codes to embed; got {codes.shape[0]}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by setting random_state" and numba notes
        reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, codes.shape[0] - 1), random_state=seed)
        return reducer.fit_transform(codes)


def latent_frame(det, items: Mapping[str, tuple[np.ndarray, pd.DataFrame]], n: int, seed: int) -> pd.DataFrame:
    """UMAP of the codes of a stratified sample of train (normal) and test items."""
    images, frames = [], []
    share = {"train": n // 3, "test": n - n // 3}
    for name, k in share.items():
        x, f = items[name]
        idx = stratified_subsample([f["label"].to_numpy(), f["corruption"].to_numpy()], k, seed=seed)
        images.append(x[idx])
        frames.append(f.iloc[idx])
    frame = pd.concat(frames, ignore_index=True)
    xy = embed_latents(det.encode(np.concatenate(images)), seed=seed)
    return frame.assign(umap_x=xy[:, 0], umap_y=xy[:, 1])


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
        "epochs_run": len(det.history_), "stopped_early": det.stopped_early_, "warnings": list(det.warnings_),
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
    from ogae_core.runs import is_finished, read_run

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
    for rid, path in out.items():
        if is_finished(Path(path)):
            metrics = read_run(path).metrics
            base = Detector.load(path, device=device)
            seconds = float(metrics.get("train_seconds", 0.0))
            base_id = metrics.get("trained_in") or rid
            break
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
