"""Experiment 1 (MNIST-C): one configuration end to end, written as one run directory.

:func:`run_mnistc` builds the task (:func:`ogae_core.data.mnistc_task`, cached on disk),
trains a :class:`~ogae_core.Detector` on the normal training items, scores the validation and
test splits, embeds a stratified sample of latent codes in 2-D with UMAP, and writes
everything atomically through :func:`ogae_core.runs.create_run`:

``config.json`` (the resolved :class:`RunConfig` + provenance), ``model.safetensors`` /
``model.json`` / ``detector.json`` / ``ocsvm/`` (:meth:`Detector.save`), ``history.parquet``,
``scores.parquet`` (validation + test items), ``metrics.json`` (AUROC / AUPR / AUROC30 per
split, overall and per corruption) and ``latents.parquet``.

Early stopping: the detector is fitted on ``train ∪ early_stop`` (every corrupted normal
training item); the trainer holds out ``val_fraction`` (0.1, the size of the task's
``early_stop`` split) of them, drawn from the run's seed.

The run id is a hash of the resolved config, so a configuration that already has a finished
run is recognised (and skipped) by :func:`run_mnistc` and by the sweeps.
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
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RunConfig":
        """Inverse of :meth:`to_dict` (extra keys such as ``provenance`` are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["task"] = TaskSpec(**kwargs.get("task", {}))
        return cls(**kwargs)

    def group_key(self) -> str:
        """Hash of everything but the seed: the unit of hyperparameter selection."""
        from ogae_core.runs import config_hash

        d = self.to_dict()
        d.pop("seed")
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
    """Images and metadata of the items a run uses: ``{"train"|"validation"|"test": (images, frame)}``.

    ``train`` is ``train ∪ early_stop`` (item numbers continue after the train split).
    """
    task = build_task(spec) if task is None else task
    tr_images = np.concatenate([task.train.images, task.early_stop.images])
    tr_frame = pd.concat([_split_frame(task.train, "train", np.arange(len(task.train))),
                          _split_frame(task.early_stop, "train", np.arange(len(task.early_stop)))], ignore_index=True)
    tr_frame["item"] = np.arange(len(tr_frame))
    out = {}
    limits = {"train": spec.max_train, "validation": spec.max_validation, "test": spec.max_test}
    parts = {"train": (tr_images, tr_frame),
             "validation": (task.validation.images, _split_frame(task.validation, "validation", np.arange(len(task.validation)))),
             "test": (task.test.images, _split_frame(task.test, "test", np.arange(len(task.test))))}
    for i, (name, (images, frame)) in enumerate(parts.items()):
        idx = stratified_subsample([frame["label"].to_numpy(), frame["corruption"].to_numpy()], limits[name], seed=spec.seed + 17 * i)
        out[name] = (images[idx], frame.iloc[idx].reset_index(drop=True))
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

    from ogae_core import Detector
    from ogae_core.runs import create_run, run_exists

    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    cfg_dict = cfg.to_dict()
    root = Path(runs_root) if runs_root is not None else None
    if run_exists(root, experiment, cfg_dict):
        from ogae_core.runs import default_root

        path = (root or default_root()) / experiment / cfg.run_id()
        if skip_existing:
            return path
        raise FileExistsError(f"run {path} already exists; finished runs are never overwritten")
    if threads:
        torch.set_num_threads(int(threads))
    task = build_task(cfg.task)
    items = task_items(cfg.task, task)
    x_train, _ = items["train"]
    det = Detector(cfg.method, scoring=cfg.scoring, epochs=cfg.epochs, seed=cfg.seed, device=device,
                   progress=progress, log=log, **cfg.hyperparameters)
    t0 = time.perf_counter()
    det.fit(x_train)
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    scored = [f.assign(score=det.score_samples(x)) for x, f in (items[s] for s in SPLITS_SCORED)]
    score_seconds = time.perf_counter() - t0
    scores = pd.concat(scored, ignore_index=True)
    metrics = {s: split_metrics(scores[scores["split"] == s]) for s in SPLITS_SCORED}
    t0 = time.perf_counter()
    latents = latent_frame(det, items, cfg.latent_sample, cfg.umap_seed)
    metrics.update({
        "train_seconds": train_seconds, "score_seconds": score_seconds, "umap_seconds": time.perf_counter() - t0,
        "epochs_run": len(det.history_), "stopped_early": det.stopped_early_, "warnings": list(det.warnings_),
        "n_train": int(len(x_train)), "device": str(device), "torch_threads": torch.get_num_threads(),
    })
    data_hash = task.cache_key if cfg.task.mnist_limit is None else f"{task.cache_key}:first{cfg.task.mnist_limit}"
    with create_run(root, experiment, cfg_dict, seed=cfg.seed, data_hash=data_hash) as w:
        det.save(w.path)
        w.write_history(pd.DataFrame(det.history_))
        w.write_scores(scores)
        w.write_latents(latents)
        w.write_metrics(metrics)
    return w.final_path
