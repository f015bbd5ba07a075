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

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ogae_core.evaluation.run_metrics import split_metrics
from ogae_core.experiments.items import (  # noqa: F401 - re-exported
    build_task,
    embed_latents,
    latent_frame,
    stratified_subsample,
    task_items,
)
from ogae_core.experiments.kinds import ExperimentKind, RunFailed, RunFinished, RunOutcome, register_kind
from ogae_core.validation import check_integer
from ogae_core.data.tasks import check_corruption_names
from ogae_core.experiments.mnistc_config import RUNTIME_KEYS, RunConfig, TaskSpec, default_label  # noqa: F401 - re-exported

SPLITS_SCORED = ("validation", "test")
#: A split whose largest group of equal scores exceeds this share gets a
#: ``"tied_scores:<split>"`` warning in ``metrics.json`` (see ``collapse_flags``).
TIED_SCORES_LIMIT = 0.5


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
    from ogae_core.detector import Detector

    det = Detector(cfg.method, scoring=cfg.scoring, epochs=cfg.epochs, seed=cfg.seed, device=device,
                   progress=progress, log=log, **cfg.hyperparameters)
    t0 = time.perf_counter()
    det.fit(items["train"][0], X_val=items["early_stop"][0])
    return det, time.perf_counter() - t0


def task_data_hash(spec: TaskSpec, task) -> str:
    """What a run stores as its data hash: the task's cache key (manifests, task arguments, seed
    and the code of the corruptions), plus ``:first<n>`` for a task on the first ``n`` MNIST images."""
    return task.cache_key if spec.mnist_limit is None else f"{task.cache_key}:first{spec.mnist_limit}"


def data_hash(cfg: RunConfig) -> str:
    """The data hash a run of ``cfg`` would store now (the kind's ``data_hash`` hook; loads the
    task from its cache, or builds it)."""
    return task_data_hash(cfg.task, build_task(cfg.task))


def resolved_settings(cfg: RunConfig) -> dict:
    """The settings a run of ``cfg`` takes from its method's defaults and its config does not
    set (:meth:`ogae_core.methods.Method.default_settings`; the kind's ``resolved_settings``
    hook): the run id does not hold them, so a resumed sweep compares them with the ones a
    finished run stored and refuses to reuse a run trained under other defaults.

    Examples
    --------
    >>> resolved_settings(RunConfig("ogae", "ocsvm"))
    {'early_stopping': 'run', 'guidance': 'authors', 'negative_slope': 0.3}
    >>> resolved_settings(RunConfig("ogae", "ocsvm", hyperparameters={"guidance": "project"}))
    {'early_stopping': 'run', 'negative_slope': 0.3}
    >>> resolved_settings(RunConfig("ae", "recons"))
    {}
    """
    from ogae_core.methods import get_method

    try:
        defaults = get_method(cfg.method).default_settings()
    except ValueError:
        return {}  # an unknown method fails in its run, with the registry's message
    return {k: v for k, v in sorted(defaults.items()) if k not in cfg.hyperparameters}


def _write_run(cfg: RunConfig, det, items, task, root: Path | None, experiment: str, device: str,
               train_seconds: float, trained_in: str | None, latent_cache: dict | None = None) -> Path:
    """Score, embed and write the run directory of ``cfg`` for a fitted detector.

    ``latent_cache`` (shared by runs of one network) keeps the UMAP embedding, which depends
    only on the network, ``latent_sample`` and ``umap_seed``."""
    import torch

    from ogae_core.runs import create_run

    t0 = time.perf_counter()
    scored = [f.assign(score=det.anomaly_score(x)) for x, f in (items[s] for s in SPLITS_SCORED)]
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
    with create_run(root, experiment, cfg.to_dict(), seed=cfg.seed, data_hash=task_data_hash(cfg.task, task),
                    resolved_settings=resolved_settings(cfg)) as w:
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
                       progress: bool = False, log: bool = True) -> dict[str, RunOutcome]:
    """Run configurations that share one training (same :meth:`RunConfig.training_key`).

    The network is trained once — or, when one of the configurations already has a finished
    run (an interrupted group), loaded from that run's ``model.safetensors`` — and every other
    configuration only refits its scorer (:meth:`ogae_core.Detector.with_scoring`). Finished
    runs are skipped; a configuration that fails does not stop the others.

    Returns
    -------
    dict
        ``{run id: RunFinished(run id, run directory)}`` for every configuration, or
        ``{run id: RunFailed(run id, message, traceback tail)}`` for one that failed.

    Examples
    --------
    >>> spec = TaskSpec(max_train=200, max_validation=120, max_test=120, mnist_limit=1200)
    >>> cfgs = [RunConfig("ae", s, epochs=1, task=spec, latent_sample=60) for s in ("recons", "ocsvm")]
    >>> out = run_training_group(cfgs, "/tmp/ogae-doc", "doc")  # doctest: +SKIP
    """
    import torch

    from ogae_core.detector import Detector
    from ogae_core.runs import read_run

    cfgs = [c if isinstance(c, RunConfig) else RunConfig.from_dict(c) for c in configs]
    if not cfgs:
        return {}
    keys = {c.training_key() for c in cfgs}
    if len(keys) != 1:
        raise ValueError(f"run_training_group needs configurations with one training key; got {len(keys)} different ones")
    root = Path(runs_root) if runs_root is not None else None
    out: dict[str, RunOutcome] = {}
    todo = []
    for c in cfgs:
        existing = _existing_run(c, root, experiment, skip_existing=True)
        if existing is not None:
            out[c.run_id()] = RunFinished(c.run_id(), existing)
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
        rid, done = next(iter(out.items()))
        metrics = read_run(done.path).metrics
        base = Detector.load(done.path, device=device)
        seconds = float(metrics.get("train_seconds", 0.0))
        base_id = metrics.get("trained_in") or rid
    train_failure: RunFailed | None = None
    latents: dict = {}
    for c in todo:
        rid = c.run_id()
        if train_failure is not None:
            out[rid] = RunFailed(rid, f"the shared training failed: {train_failure.message}", train_failure.traceback)
            continue
        try:
            if base is None:
                try:
                    det, seconds = _train(c, items, device, progress, log)
                except Exception as err:  # noqa: BLE001
                    train_failure = RunFailed.from_exception(rid, err)
                    raise
                base, base_id = det, rid
                out[rid] = RunFinished(rid, _write_run(c, det, items, task, root, experiment, device, seconds, None, latents))
                continue
            det = base.with_scoring(items["train"][0], c.scoring, **{k: v for k, v in c.hyperparameters.items()
                                                                   if k.startswith("ocsvm_")})
            out[rid] = RunFinished(rid, _write_run(c, det, items, task, root, experiment, device, seconds, base_id, latents))
        except Exception as err:  # noqa: BLE001 - one failed configuration must not stop the group
            out[rid] = RunFailed.from_exception(rid, err)
    return out


# ----------------------------------------------------------------------------- the kind
def prepare(configs: Sequence[RunConfig]) -> None:
    """Fill the on-disk task cache once, before the workers (or SLURM jobs) start."""
    for spec in {c.task for c in configs if c.task.mnist_limit is None}:
        build_task(spec)


def run_summary(run) -> str:
    """Log line of a finished run: training time, shared network, validation AUROC."""
    m = run.metrics
    shared = f" (network of {m['trained_in']})" if m.get("trained_in") else ""
    return (f"train {m.get('train_seconds', float('nan')):.1f} s{shared}, "
            f"validation AUROC {m.get('validation', {}).get('auroc', float('nan')):.3f}")


def validate(config: RunConfig) -> None:
    """Refuse a configuration that cannot run, without loading data or training (the kind's
    ``validate`` hook): digits, corruption names, method, scoring and hyperparameter names.

    Examples
    --------
    >>> validate(RunConfig("ae", "recons", task=TaskSpec(normal=3, anomaly=3)))
    Traceback (most recent call last):
    ...
    ValueError: normal and anomaly digits must differ
    """
    from ogae_core.detector import BACKBONE_KEYS, OCSVM_KEYS, TRAIN_KEYS
    from ogae_core.methods import get_method, hyperparameter_names

    task = config.task
    for name in ("normal", "anomaly"):
        v = getattr(task, name)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 9:
            raise ValueError(f"{name} must be a digit 0..9, got {v!r}")
    if task.normal == task.anomaly:
        raise ValueError("normal and anomaly digits must differ")
    for what in ("train_corruptions", "test_corruptions"):
        if getattr(task, what) is not None:
            check_corruption_names(getattr(task, what), what)
    cls = get_method(config.method)
    if config.scoring not in cls.scorings:
        raise ValueError(f"scoring {config.scoring!r} is not available for method {config.method!r}; "
                         f"choose one of {cls.scorings}")
    valid = set(hyperparameter_names(config.method)) | set(BACKBONE_KEYS) | set(TRAIN_KEYS) | set(OCSVM_KEYS)
    unknown = sorted(set(config.hyperparameters) - valid)
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for method {config.method!r}; valid: {sorted(valid)}")
    check_integer("epochs", config.epochs, minimum=1)


def add_arguments(parser) -> None:
    """Options of ``ogae bench mnistc`` (besides the sweep options every kind shares)."""
    from ogae_core.experiments.presets import PRESETS

    parser.add_argument("--normal", type=int, default=3, help="normal digit (default 3)")
    parser.add_argument("--anomaly", type=int, default=8, help="anomaly digit (default 8)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                        help="smoke | quick | reduced | paper (default quick)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="keep only these rows (labels like ogae-ocsvm, or methods)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="override the preset's seeds")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--max-train", type=int, default=None, help="subsample the training items")
    parser.add_argument("--max-validation", type=int, default=None, help="subsample the validation split")
    parser.add_argument("--max-test", type=int, default=None, help="subsample the test split")
    parser.add_argument("--train-corruptions", nargs="+", default=None, metavar="NAME",
                        help="corruptions of the training items (default: the manifest's identity motion_blur "
                             "translate); names from data_manifests/mnistc.yaml")
    parser.add_argument("--test-corruptions", nargs="+", default=None, metavar="NAME",
                        help="corruptions of the validation and test items (default: stripe canny_edges brightness)")


def configs_from_args(args) -> tuple[list[RunConfig], str]:
    """The configurations and the default experiment name of ``ogae bench mnistc`` arguments."""
    from ogae_core.experiments.presets import experiment_name, preset_configs

    overrides = {k: getattr(args, k) for k in ("max_train", "max_validation", "max_test") if getattr(args, k) is not None}
    corruptions = {}
    for key in ("train_corruptions", "test_corruptions"):
        if getattr(args, key, None) is not None:
            corruptions[key] = check_corruption_names(getattr(args, key), "--" + key.replace("_", "-"))
    configs = preset_configs(args.preset, args.normal, args.anomaly, methods=args.methods, seeds=args.seeds,
                             epochs=args.epochs, task_overrides=overrides, **corruptions)
    name = experiment_name(args.preset, args.normal, args.anomaly)
    if corruptions:  # another task: its own experiment, so that a report never mixes tasks
        from ogae_core.runs import config_hash

        name += "-c" + config_hash({k: list(v) for k, v in corruptions.items()})[:8]
    return configs, name


def report(runs_root, experiment: str, **options):
    """The paper's table of one experiment (:func:`ogae_core.experiments.report.benchmark_report`)."""
    from ogae_core.experiments.report import benchmark_report

    return benchmark_report(runs_root, experiment, **options)


#: Experiment 1 as an experiment kind.
KIND = register_kind(ExperimentKind(
    name="mnistc", config_type=RunConfig, run_training_group=run_training_group,
    description="Experiment 1: MNIST-C normal vs anomaly digit", prepare=prepare, validate=validate,
    data_hash=data_hash, resolved_settings=resolved_settings,
    run_summary=run_summary,
    report=report, add_arguments=add_arguments, configs_from_args=configs_from_args,
), replace=True)
