"""Experiment 2 (brain MRI) as an experiment kind: one MRI method on one cohort, end to end.

:func:`run_training_group` loads the cohort (:func:`ogae_core.data.mri.load_cohort`; a simulated
preset is built on first use), fits the detector (:func:`ogae_core.volumes.build_volume_detector`)
on the training controls with early stopping on the held-out controls, computes one anomaly map
per test subject (test controls and patients), evaluates it and writes one run directory
atomically (:func:`ogae_core.runs.create_run`):

``config.json``
    the resolved :class:`~ogae_core.experiments.mri_config.MriConfig` + provenance;
``model/``
    the detector (:meth:`VolumeDetector.save`: safetensors + JSON);
``history.parquet``
    the detector's ``history_`` (one row per epoch; one row when it has none);
``maps/<subject>.nii.gz``
    the float32 anomaly map of each test subject on the full cropped grid (186x218x135) with
    that grid's affine, NaN outside the brain and, on a slab preset, outside the slab;
``scores.parquet``
    one row per test subject: ``score`` (the configured subject score, default q98 without
    the ventricles), ``label`` (1 = patient), ``subject_id, role, site, age, sex, lesion_cm3,
    n_lesions, prevalence, map`` and ``score_<aggregation>`` for every rule of
    :data:`ogae_core.evaluation.mri.AGGREGATIONS`;
``voxel_metrics.parquet``
    one row per patient: voxel ``auroc, auroc30, aupr, best_dice, prevalence`` over the brain
    minus the ventricles and ``wm_*`` the same restricted to white matter;
``lesions.parquet``
    one row per connected lesion of every patient: size, hit fraction, detected;
``metrics.json``
    ``classification`` (AUROC, AUROC30, AUPR of the subject score; ``by_aggregation``),
    ``localization`` (means over patients, brain and ``wm``), ``pooled`` (voxel AUPRC and
    best Dice over all patients), chance levels, ``evaluation`` (regions, labels), timings.

Shared trainings
----------------
Configurations with one :meth:`MriConfig.training_key` form one group and train once. A
detector class that offers the hook

* ``training_family: ClassVar[str]`` -- classes with the same family train the same network;
* ``scoring_params: ClassVar[tuple[str, ...]]`` -- hyperparameters that do not change training;
* ``from_trained(trained, params, train, early_stop, *, seed, progress) -> VolumeDetector``
  (classmethod) -- a fitted detector with ``params`` that reuses ``trained``'s network (and
  fits only its own scorer, e.g. the localized or the patient-specific OCSVM);

shares its training with the others of its family (``sae-loc`` and ``sae-ps``). A resumed group
loads the network from a finished run of the group (``model/``). A class may also offer
``preset_params(cohort) -> dict`` (classmethod): hyperparameter defaults for a cohort preset
(e.g. fewer epochs on ``smoke``), overridden by the config's ``hyperparameters``; the ones a run
used, with the defaults its network's method took (:func:`method_default_settings`, e.g. OgAE's
guidance regime), are stored in its provenance (``resolved_settings``) and, like the cohort's key
(``data_hash``), compared when a sweep resumes (:mod:`ogae_core.experiments.resume`). A detector whose
``__init__`` takes ``device`` gets the sweep's device (``cuda`` on SLURM with GPUs) unless the
config sets it (``device`` is then part of ``get_params()``, not of the run id).
"""
from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ogae_core.experiments.kinds import ExperimentKind, RunFailed, RunFinished, RunOutcome, register_kind
from ogae_core.experiments.mri_config import MriConfig, MriEvalSpec

__all__ = ["COHORTS", "MAPS_DIR", "MODEL_DIR", "MriConfig", "MriEvalSpec", "evaluate_subject", "full_grid_map",
           "load_mri_cohort", "mri_configs", "registered_methods", "run_mri", "run_training_group",
           "scored_subjects", "select_on_validation"]

#: Cohort presets of ``ogae bench mri --cohort``.
COHORTS = ("smoke", "demo", "default", "full", "paper")
MAPS_DIR, MODEL_DIR = "maps", "model"
VOXEL_METRICS_FILE, LESIONS_FILE = "voxel_metrics.parquet", "lesions.parquet"


# ----------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=4)
def _cached_cohort(name: str, options: tuple):
    from ogae_core.data.mri import load_cohort

    return load_cohort(name, **dict(options))


def load_mri_cohort(cfg: MriConfig):
    """The cohort of a config (built on first use; cached in this process)."""
    return _cached_cohort(cfg.cohort, tuple(sorted(cfg.cohort_options.items())))


def cohort_hash(cohort) -> str:
    """Hash of a cohort's identity: simulated key, or the subjects' ids, roles and T1 checksums."""
    from ogae_core.runs import config_hash

    if cohort.info.get("key"):
        return str(cohort.info["key"])
    return config_hash({"subjects": [[s.subject_id, s.role, s.sha256.get("t1")] for s in cohort.subjects]})


def data_hash(cfg: MriConfig) -> str:
    """The data hash a run of ``cfg`` would store now (the kind's ``data_hash`` hook): for a
    simulated preset its key (:func:`ogae_core.data.mri.simulated_cohort_key`, which covers the
    preset's subject counts, slab slices, seed, ``site_balanced`` and ``confound``; nothing is
    built), for a CSV cohort :func:`cohort_hash` of the manifest.

    Examples
    --------
    >>> data_hash(MriConfig("wm-prior", cohort="smoke")).startswith("smoke-")
    True
    """
    if str(cfg.cohort).endswith(".csv"):
        return cohort_hash(load_mri_cohort(cfg))
    from ogae_core.data.mri import simulated_cohort_key

    return simulated_cohort_key(cfg.cohort, **cfg.cohort_options)


def preset_settings(cfg: MriConfig) -> dict:
    """The detector's ``preset_params(cohort)`` that the config's hyperparameters do not override
    (short training on the small cohort presets; they become the detector's keyword arguments).

    Examples
    --------
    >>> preset_settings(MriConfig("sae-loc", cohort="smoke"))["epochs"]
    2
    >>> "epochs" in preset_settings(MriConfig("sae-loc", cohort="smoke", hyperparameters={"epochs": 1}))
    False
    >>> preset_settings(MriConfig("sae-loc", cohort="default"))
    {}
    """
    from ogae_core.volumes import get_volume_method

    try:
        cls = get_volume_method(cfg.method)
    except ValueError:
        return {}  # an unknown method fails in its run, with the registry's message
    preset = getattr(cls, "preset_params", None)
    defaults = dict(preset(cfg.cohort)) if callable(preset) else {}
    return {k: v for k, v in sorted(defaults.items()) if k not in cfg.hyperparameters}


def method_default_settings(cfg: MriConfig) -> dict:
    """What a patch model's network takes from its method's defaults and the config does not set
    (:meth:`ogae_core.methods.Method.default_settings` without the MNIST network's): the trainer's
    ``early_stopping`` and, inside ``method_params``, e.g. OgAE's guidance regime
    (``"method_params.guidance"``). Empty for the other MRI methods.

    Examples
    --------
    >>> method_default_settings(MriConfig("ogae-loc"))
    {'early_stopping': 'run', 'method_params.guidance': 'authors'}
    >>> method_default_settings(MriConfig("sae-loc")), method_default_settings(MriConfig("wm-prior"))
    ({}, {})
    """
    from ogae_core.methods import get_method
    from ogae_core.volumes import get_volume_method

    try:
        network_method = getattr(get_volume_method(cfg.method), "method", "")
        defaults = get_method(network_method).default_settings(network=False) if network_method else {}
    except ValueError:
        return {}
    given = dict(cfg.hyperparameters.get("method_params") or {})
    out = {}
    for k, v in sorted(defaults.items()):
        if k == "early_stopping":
            if cfg.hyperparameters.get("early_stopping") is None:
                out[k] = v
        elif k not in given:
            out[f"method_params.{k}"] = v
    return out


def resolved_settings(cfg: MriConfig) -> dict:
    """Settings a run of ``cfg`` resolves at run time that its run id does not hold (the kind's
    ``resolved_settings`` hook, compared when a sweep resumes): :func:`preset_settings` and
    :func:`method_default_settings`.

    Examples
    --------
    >>> resolved_settings(MriConfig("ogae-loc", cohort="smoke"))["method_params.guidance"]
    'authors'
    >>> resolved_settings(MriConfig("sae-loc", cohort="default"))
    {}
    """
    return {**preset_settings(cfg), **method_default_settings(cfg)}


def full_grid_map(anomaly_map: np.ndarray, z_start: int, grid) -> tuple[np.ndarray, np.ndarray]:
    """A slab's map on the full cropped grid (NaN outside the slab) and that grid's affine.

    Examples
    --------
    >>> from ogae_core.data.mri import reference_grid
    >>> full, aff = full_grid_map(np.ones((186, 218, 2), np.float32), 60, reference_grid())
    >>> full.shape, int(np.isfinite(full).sum()) == 186 * 218 * 2, float(aff[2, 3])
    ((186, 218, 135), True, -52.0)
    """
    shape = grid.cropped_shape
    a = np.asarray(anomaly_map, np.float32)
    if a.shape[:2] != shape[:2] or z_start < 0 or z_start + a.shape[2] > shape[2]:
        raise ValueError(f"map of shape {a.shape} at slice {z_start} does not fit the grid {shape}")
    full = np.full(shape, np.nan, np.float32)
    full[:, :, z_start:z_start + a.shape[2]] = a
    return full, grid.cropped_affine(0)


def _check_map(amap: Any, volumes, method: str, subject: str) -> np.ndarray:
    a = np.asarray(amap)
    if a.shape != volumes.t1.shape:
        raise ValueError(f"{method}: anomaly map of subject {subject} has shape {a.shape}, the T1 {volumes.t1.shape}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a[volumes.brain]).any():
        raise ValueError(f"{method}: anomaly map of subject {subject} has no finite value inside the brain")
    if np.isfinite(a[~volumes.brain]).any():
        a = a.copy()
        a[~volumes.brain] = np.nan  # the contract: NaN outside the brain
    return a


# ----------------------------------------------------------------------------- evaluation of one subject
def evaluate_subject(amap: np.ndarray, volumes, subject, spec: MriEvalSpec) -> tuple[dict, dict | None, pd.DataFrame | None]:
    """Scores row, voxel-metrics row (patients) and lesion table (patients) of one subject's map."""
    from scipy import ndimage

    from ogae_core.evaluation.mri import evaluation_region, lesion_detection, localization_metrics, subject_scores

    scores = subject_scores(amap, volumes.brain, volumes.ventricles)
    lesion = np.isin(volumes.labels, spec.lesion_labels) & volumes.brain
    n_lesions = int(ndimage.label(lesion, structure=np.ones((3, 3, 3), bool))[1]) if lesion.any() else 0
    row = {"subject_id": subject.subject_id, "role": subject.role, "label": int(subject.role == "patient"),
           "site": subject.site, "age": float(subject.age), "sex": subject.sex,
           "score": scores[spec.aggregation], "lesion_cm3": float(lesion.sum()) / 1000.0, "n_lesions": n_lesions,
           "prevalence": float(lesion.sum()) / max(int(volumes.brain.sum()), 1),
           **{f"score_{k}": v for k, v in scores.items()}}
    if subject.role != "patient":
        return row, None, None
    region = evaluation_region(volumes.brain, volumes.ventricles, exclude_ventricles=spec.exclude_ventricles)
    vox = {"subject_id": subject.subject_id, "site": subject.site, "lesion_cm3": row["lesion_cm3"],
           **localization_metrics(amap, lesion, region)}
    if volumes.wm is not None:
        wm_region = evaluation_region(volumes.brain, volumes.ventricles, volumes.wm, region="wm",
                                      exclude_ventricles=spec.exclude_ventricles)
        vox.update({f"wm_{k}": v for k, v in localization_metrics(amap, lesion, wm_region).items()})
    lesions = lesion_detection(amap, lesion, region, quantile=spec.detection_quantile)
    lesions.insert(0, "subject_id", subject.subject_id)
    return row, vox, lesions


def run_metrics(scores: pd.DataFrame, voxels: pd.DataFrame, pooled: tuple[list, list], spec: MriEvalSpec) -> dict:
    """``metrics.json`` content of one run from its tables and the pooled patient voxels."""
    from ogae_core.evaluation import all_metrics
    from ogae_core.evaluation.mri import AGGREGATIONS, best_dice

    y = scores["label"].to_numpy()
    both = 0 < y.sum() < len(y)
    cls = {}
    if both:
        cls = dict(all_metrics(y, scores["score"].to_numpy()))
        cls["by_aggregation"] = {k: all_metrics(y, scores[f"score_{k}"].to_numpy()) for k in AGGREGATIONS}
    cls.update({"n_controls": int((y == 0).sum()), "n_patients": int(y.sum()), "aggregation": spec.aggregation,
                "chance_aupr": float(y.mean()) if len(y) else float("nan")})
    loc: dict[str, Any] = {}
    for prefix in ("", "wm_"):
        cols = [f"{prefix}{m}" for m in ("auroc", "auroc30", "aupr", "best_dice", "prevalence")]
        if all(c in voxels.columns for c in cols) and len(voxels):
            key = "brain" if not prefix else "wm"
            loc[key] = {m: float(np.nanmean(voxels[c])) for m, c in zip(("auroc", "auroc30", "aupr", "best_dice", "prevalence"), cols)}
            loc[key]["chance_aupr"] = loc[key]["prevalence"]
    pooled_metrics = {}
    if pooled[0]:
        ys, ss = np.concatenate(pooled[0]), np.concatenate(pooled[1])
        if 0 < ys.sum() < len(ys):
            m = all_metrics(ys.astype(int), ss.astype(np.float64))
            pooled_metrics = {"auroc": m["auroc"], "aupr": m["aupr"], "auroc30": m["auroc30"],
                              "best_dice": best_dice(ys, ss)[0], "prevalence": float(ys.mean())}
    return {"classification": cls, "localization": loc, "pooled": pooled_metrics,
            "evaluation": {"region": "brain minus ventricles" if spec.exclude_ventricles else "brain",
                           "wm_region": "white matter (WM probability >= 0.5)", "lesion_labels": list(spec.lesion_labels),
                           "subject_score": spec.aggregation, "detection_quantile": spec.detection_quantile,
                           "positive": "patients (classification), lesion voxels (localization)"}}


# ----------------------------------------------------------------------------- one run
def _params(cfg: MriConfig, device: str = "cpu") -> dict:
    """The detector's keyword arguments: its ``preset_params(cohort)`` (:func:`preset_settings`), the config's
    hyperparameters, and the sweep's ``device`` when the detector takes one and the config does not set it."""
    import inspect

    from ogae_core.volumes import get_volume_method

    cls = get_volume_method(cfg.method)
    params = {**preset_settings(cfg), **cfg.hyperparameters}
    if "device" in inspect.signature(cls.__init__).parameters and "device" not in params:
        params["device"] = device
    return params


def _history(det, train_seconds: float) -> pd.DataFrame:
    """The detector's ``history_`` (rows, a DataFrame, or an object with ``.history``) as a frame
    with an ``epoch`` column; one row ``{epoch: 0, seconds}`` when it has none."""
    hist = getattr(det, "history_", None)
    hist = getattr(hist, "history", hist)
    try:
        frame = hist.copy() if isinstance(hist, pd.DataFrame) else pd.DataFrame(list(hist or []))
    except (TypeError, ValueError):
        frame = pd.DataFrame()
    if frame.empty or "epoch" not in frame.columns:
        frame = pd.DataFrame({"epoch": [0], "seconds": [train_seconds]})
    return frame


#: Voxels of test subjects scored together (detectors with a batch method fit their localized
#: models once per batch): about 200 MB of float32 maps.
SCORE_BATCH_VOXELS = 50_000_000


def scored_subjects(det, subjects: Sequence, batch_voxels: int = SCORE_BATCH_VOXELS):
    """Yield ``(subject, volumes, anomaly map, seconds)`` for every subject, in order.

    Subjects are loaded and scored in batches of at most ``batch_voxels`` voxels: through the
    detector's ``anomaly_maps(volumes)`` or ``decision_maps(volumes)`` (negated) when it has one
    (e.g. localized OCSVMs fitted once per batch), else ``anomaly_map`` per subject.
    """
    batch: list = []
    size = 0
    for i, s in enumerate(subjects):
        vols = s.load()
        batch.append((s, vols))
        size += vols.t1.size
        if size >= batch_voxels or i == len(subjects) - 1:
            t0 = time.perf_counter()
            volumes = [v for _, v in batch]
            if callable(getattr(det, "anomaly_maps", None)):
                maps = list(det.anomaly_maps(volumes))
            elif callable(getattr(det, "decision_maps", None)):
                maps = [-np.asarray(m, np.float32) for m in det.decision_maps(volumes)]
            else:
                maps = [det.anomaly_map(v) for v in volumes]
            seconds = (time.perf_counter() - t0) / len(batch)
            if len(maps) != len(batch):
                raise ValueError(f"{det.name}: {len(maps)} maps for {len(batch)} subjects")
            for (subj, v), m in zip(batch, maps):
                yield subj, v, m, seconds
            batch, size = [], 0


def _write_run(cfg: MriConfig, det, cohort, root: Path | None, experiment: str, train_seconds: float,
               trained_in: str | None, n_train: int, n_early: int) -> Path:
    from ogae_core.data.mri.nifti import nifti_bytes
    from ogae_core.runs import create_run

    spec = cfg.evaluation
    subjects = cohort.by_role("test_control") + cohort.by_role("patient")
    if not subjects:
        raise ValueError(f"cohort {cohort.name} has no test controls or patients to score")
    rows, voxels, lesions, pooled = [], [], [], ([], [])
    t_score = 0.0
    with create_run(root, experiment, cfg.to_dict(), seed=cfg.seed, data_hash=cohort_hash(cohort),
                    run_id=cfg.run_id(), resolved_settings=resolved_settings(cfg)) as w:
        det.save(w.path / MODEL_DIR)
        w.write_history(_history(det, train_seconds))
        (w.path / MAPS_DIR).mkdir()
        for s, vols, raw, seconds in scored_subjects(det, subjects):
            t_score += seconds
            amap = _check_map(raw, vols, cfg.method, s.subject_id)
            row, vox, les = evaluate_subject(amap, vols, s, spec)
            if cfg.save_maps:
                full, affine = full_grid_map(amap, vols.z_start, cohort.grid)
                name = f"{MAPS_DIR}/{s.subject_id}.nii.gz"
                (w.path / name).write_bytes(nifti_bytes(full, affine, np.float32))
                row["map"] = name
            rows.append(row)
            if vox is not None:
                voxels.append(vox)
                lesions.append(les)
                from ogae_core.evaluation.mri import evaluation_region

                region = evaluation_region(vols.brain, vols.ventricles, exclude_ventricles=spec.exclude_ventricles)
                region &= np.isfinite(amap)
                pooled[0].append((np.isin(vols.labels, spec.lesion_labels) & vols.brain)[region])
                pooled[1].append(amap[region])
        scores = pd.DataFrame(rows)
        vox_frame = pd.DataFrame(voxels)
        les_frame = pd.concat(lesions, ignore_index=True) if lesions else pd.DataFrame()
        w.write_scores(scores)
        vox_frame.to_parquet(w.path / VOXEL_METRICS_FILE, index=False)
        les_frame.to_parquet(w.path / LESIONS_FILE, index=False)
        metrics = run_metrics(scores, vox_frame, pooled, spec)
        metrics.update({"train_seconds": train_seconds, "score_seconds": t_score, "n_train": n_train,
                        "n_early_stop": n_early, "n_test": len(subjects), "training_key": cfg.training_key(),
                        "trained_in": trained_in, "cohort": cohort.name, "slab": cohort.info.get("slab"),
                        "method": cfg.method, "warnings": list(getattr(det, "warnings_", [])),
                        "params": {k: v for k, v in det.get_params().items() if isinstance(v, (int, float, str, bool))
                                   or v is None}})
        w.write_metrics(metrics)
    return w.final_path


def run_mri(config: MriConfig | Mapping[str, Any], runs_root: str | Path | None = None, experiment: str = "mri",
            **kwargs) -> Path:
    """Train, score and store one configuration (a group of one); returns the run directory.

    Examples
    --------
    >>> path = run_mri(MriConfig("wm-prior", cohort="smoke"), "/tmp/ogae-doc-mri", "doc")  # doctest: +SKIP
    """
    cfg = config if isinstance(config, MriConfig) else MriConfig.from_dict(config)
    outcome = run_training_group([cfg], runs_root, experiment, **kwargs)[cfg.run_id()]
    if isinstance(outcome, RunFailed):
        raise RuntimeError(f"{outcome.message}\n{outcome.traceback}")
    return Path(outcome.path)


def _load_trained(run_path: Path):
    from ogae_core.runs import read_run
    from ogae_core.volumes import get_volume_method

    run = read_run(run_path)
    det = get_volume_method(run.config["method"]).load(run_path / MODEL_DIR)
    return det, float(run.metrics.get("train_seconds", 0.0)), run.metrics.get("trained_in") or run.run_id


def _train_or_reuse(cfg: MriConfig, base, train, early, progress: bool, device: str = "cpu"):
    """A fitted detector for ``cfg``: trained anew (``base`` None), the same detector, or ``base``'s network reused."""
    from ogae_core.volumes import build_volume_detector, get_volume_method

    params = _params(cfg, device)
    if base is None:
        return build_volume_detector(cfg.method, params).fit(train, early, seed=cfg.seed, progress=progress)
    if base.name == cfg.method and base.get_params() == {**base.get_params(), **params}:
        return base  # same detector (configs that differ in label or evaluation only)
    cls = get_volume_method(cfg.method)
    return cls.from_trained(base, params, train, early, seed=cfg.seed, progress=progress)


def run_training_group(configs: Sequence[MriConfig | Mapping[str, Any]], runs_root: str | Path | None = None,
                       experiment: str = "mri", *, device: str = "cpu", threads: int | None = None,
                       progress: bool = False, log: bool = True) -> dict[str, RunOutcome]:
    """Run configurations that share one training (same :meth:`MriConfig.training_key`).

    The detector is fitted once -- or loaded from a finished run of the group -- and every other
    configuration reuses it through its class's ``from_trained`` (see the module docstring).
    Finished runs are skipped; a configuration that fails does not stop the others, a failed
    training fails the rest of the group with its message.
    """
    from ogae_core.runs import default_root, is_finished

    cfgs = [c if isinstance(c, MriConfig) else MriConfig.from_dict(c) for c in configs]
    if not cfgs:
        return {}
    if len({c.training_key() for c in cfgs}) != 1:
        raise ValueError("run_training_group needs configurations with one training key")
    root = Path(runs_root) if runs_root is not None else None
    base_dir = (root or default_root()) / experiment
    out: dict[str, RunOutcome] = {}
    todo = []
    for c in cfgs:
        path = base_dir / c.run_id()
        if is_finished(path):
            out[c.run_id()] = RunFinished(c.run_id(), path)
        else:
            todo.append(c)
    if not todo:
        return out
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    base, base_id, seconds = None, None, 0.0
    failure: RunFailed | None = None
    try:
        cohort = load_mri_cohort(todo[0])
        train, early = cohort.split_training(seed=int(cohort.info.get("config", {}).get("seed", 0)))
        if out:
            base, seconds, base_id = _load_trained(next(iter(out.values())).path)
    except Exception as err:  # noqa: BLE001
        failure = RunFailed.from_exception(todo[0].run_id(), err)
    for c in todo:
        rid = c.run_id()
        if failure is not None:
            out[rid] = RunFailed(rid, f"the shared training failed: {failure.message}", failure.traceback)
            continue
        try:
            t0 = time.perf_counter()
            try:
                det = _train_or_reuse(c, base, train, early, progress, device)
            except Exception as err:  # noqa: BLE001
                if base is None:
                    failure = RunFailed.from_exception(rid, err)
                raise
            trained_in = None
            if base is None:
                base, base_id, seconds = det, rid, time.perf_counter() - t0
            else:
                trained_in = base_id
            out[rid] = RunFinished(rid, _write_run(c, det, cohort, root, experiment, seconds, trained_in,
                                                   len(train), len(early)))
        except Exception as err:  # noqa: BLE001 - one failed configuration must not stop the group
            out[rid] = RunFailed.from_exception(rid, err)
    return out


# ----------------------------------------------------------------------------- selection on validation
SELECTION_FILE = "selection.parquet"


def _finished_network(cfg: MriConfig, base_dir: Path):
    """A detector of a finished run of ``base_dir`` with ``cfg``'s training key (its network), or None.

    A run made on another cohort or under other resolved settings (e.g. a method default that has
    changed since) is not reused: :class:`~ogae_core.experiments.resume.StaleRunError` names it."""
    from ogae_core.experiments.resume import check_finished_runs
    from ogae_core.runs import is_finished, read_run

    for path in sorted(base_dir.iterdir()) if base_dir.is_dir() else []:
        if not is_finished(path):
            continue
        try:
            other = MriConfig.from_dict(read_run(path).config)
        except (ValueError, TypeError, KeyError):
            continue
        if other.training_key() == cfg.training_key():
            check_finished_runs([other], base_dir, "no network was reused")
            return _load_trained(path)[0]
    return None


def select_on_validation(cfg: MriConfig | Mapping[str, Any], runs_root: str | Path | None = None,
                         experiment: str = "mri", *, grid: Mapping[str, Sequence] | None = None,
                         voxel_fraction: float = 1.0, device: str = "cpu", progress: bool = False) -> Path:
    """Select a localized method's OCSVM settings on the cohort's validation patients; returns the run.

    The network is the one of a finished run of ``experiment`` with the same training key
    (``ogae bench mri`` trained it), else trained here; the grid
    (:data:`ogae_core.volumes.select.DEFAULT_GRID` by default: nu, gamma factor of "scale",
    neighbourhood radius) is scored on the ``validation_patient`` subjects only
    (:func:`ogae_core.volumes.select.evaluate_localized_grid`). The run is written to the
    experiment ``<experiment>-select``: ``selection.parquet`` (one row per setting and patient)
    and ``metrics.json`` with ``selected`` (the best mean voxel AUPR, without the ventricles),
    ``current`` (the config's own setting, when in the grid) and the timings.
    """
    from ogae_core.runs import create_run, default_root, run_id
    from ogae_core.volumes.select import DEFAULT_GRID, choose_setting, evaluate_localized_grid, localized_settings

    cfg = cfg if isinstance(cfg, MriConfig) else MriConfig.from_dict(cfg)
    grid = {**DEFAULT_GRID, **dict(grid or {})}
    cohort = load_mri_cohort(cfg)
    patients = cohort.by_role("validation_patient")
    if not patients:
        raise ValueError(f"cohort {cohort.name} has no validation_patient subjects to select on (test subjects "
                         f"are never used for selection)")
    root = Path(runs_root) if runs_root is not None else default_root()
    t0 = time.perf_counter()
    base = _finished_network(cfg, root / experiment)
    train, early = cohort.split_training(seed=int(cohort.info.get("config", {}).get("seed", 0)))
    det = _train_or_reuse(cfg, base, train, early, progress, device)
    if not hasattr(det, "reference_t1_") or not hasattr(det, "neighbourhood"):
        raise ValueError(f"{cfg.method} has no localized OCSVM to select settings for")
    train_seconds = time.perf_counter() - t0
    settings = localized_settings(len(det.reference_t1_), det.network_.backbone_config.latent_dim,
                                  nus=grid["nus"], gamma_factors=grid["gamma_factors"], radii=grid["radii"])
    t0 = time.perf_counter()
    table = evaluate_localized_grid(det.network_, det.reference_t1_, [s.load() for s in patients], settings,
                                    patient_ids=[s.subject_id for s in patients], patch_size=det.patch_size,
                                    voxel_fraction=voxel_fraction, seed=cfg.seed,
                                    device=None if det.device == "auto" else det.device,
                                    chunk_memory=det.chunk_memory, progress=progress)
    best = choose_setting(table)
    current = table[(table["nu"] == float(det.nu)) & (table["neighbourhood"] == int(det.neighbourhood))
                    & (table["gamma"] == str(det.gamma))]
    config = {**cfg.to_dict(), "selection": {"on": "validation_patient", "grid": {k: list(v) for k, v in grid.items()},
                                             "voxel_fraction": float(voxel_fraction), "metric": "mean voxel AUPR"}}
    metrics = {"selected": best, "n_validation_patients": len(patients), "n_settings": len(settings),
               "current": ({"nu": float(det.nu), "gamma": det.gamma, "neighbourhood": int(det.neighbourhood),
                            "mean_aupr": float(current["aupr"].mean()), "mean_auroc": float(current["auroc"].mean())}
                           if len(current) else None),
               "network_reused": base is not None, "train_seconds": train_seconds,
               "grid_seconds": time.perf_counter() - t0}
    with create_run(root, f"{experiment}-select", config, seed=cfg.seed, data_hash=cohort_hash(cohort),
                    run_id=run_id(config, f"{cfg.label}-s{cfg.seed}-select")) as w:
        table.to_parquet(w.path / SELECTION_FILE, index=False)
        w.write_metrics(metrics)
    return w.final_path


def select_from_args(configs: Sequence[MriConfig], args, experiment: str) -> int:
    """``ogae bench mri --select-on validation``: :func:`select_on_validation` for every config
    of a localized method; prints the selected settings."""
    import json

    from ogae_core.runs import read_run

    localized = [c for c in configs if c.method.endswith("-loc")]
    if not localized:
        raise ValueError("--select-on validation needs a localized method (ogae-loc, sae-loc) in --methods")
    grid = {k: v for k, v in (("nus", args.select_nu), ("gamma_factors", args.select_gamma_factor),
                              ("radii", args.select_neighbourhood)) if v}
    for c in localized:
        path = select_on_validation(c, args.runs_root, experiment, grid=grid, voxel_fraction=args.voxel_fraction,
                                    device=args.device if args.device != "auto" else "cpu", progress=args.verbose)
        m = read_run(path).metrics
        print(f"{c.run_id()}: selected {json.dumps(m['selected'])} on {m['n_validation_patients']} validation "
              f"patients ({m['n_settings']} settings, {m['grid_seconds']:.0f} s); current {json.dumps(m['current'])}; "
              f"run {path}")
    return 0


# ----------------------------------------------------------------------------- the kind
def default_methods() -> list[str]:
    """Every registered MRI method (the five of the paper when present, and ``wm-prior``)."""
    from ogae_core.volumes import volume_method_names

    return list(volume_method_names())


def registered_methods(methods: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(registered, missing)``: the names of ``methods`` that the registry knows, and the others
    (notebooks run whatever exists; the CLI refuses unknown names).

    Examples
    --------
    >>> registered_methods(["wm-prior", "no-such-method"])
    (['wm-prior'], ['no-such-method'])
    """
    known = set(default_methods())
    return [m for m in methods if m in known], [m for m in methods if m not in known]


def mri_configs(cohort: str = "smoke", methods: Sequence[str] | None = None, seeds: Sequence[int] = (0,), *,
                hyperparameters: Mapping[str, Mapping[str, Any]] | None = None,
                cohort_options: Mapping[str, Any] | None = None, evaluation: MriEvalSpec | None = None) -> list[MriConfig]:
    """Configurations of a benchmark: every method × seed on one cohort.

    ``wm-prior`` has nothing to train, so it gets one run (seed 0) whatever the seeds.

    Examples
    --------
    >>> [c.run_id()[:11] for c in mri_configs("smoke", ["wm-prior"], seeds=[0, 1])]
    ['wm-prior-s0']
    """
    from ogae_core.volumes import get_volume_method

    methods = list(methods) if methods else default_methods()
    for m in methods:
        get_volume_method(m)  # unknown names fail here, with the registry's list
    hp = dict(hyperparameters or {})
    unknown = sorted(set(hp) - set(methods))
    if unknown:
        raise ValueError(f"hyperparameters given for method(s) {unknown} that are not run ({methods})")
    out = []
    for m in methods:
        for s in (seeds if m != "wm-prior" else [0]):
            out.append(MriConfig(m, cohort=cohort, seed=int(s), hyperparameters=dict(hp.get(m, {})),
                                 cohort_options=dict(cohort_options or {}), evaluation=evaluation or MriEvalSpec()))
    return out


def experiment_name(cohort: str, cohort_options: Mapping[str, Any] | None = None) -> str:
    """``mri-<cohort>`` plus the cohort options (``mri-default-site_balanced``).

    Examples
    --------
    >>> experiment_name("default", {"site_balanced": True, "seed": 3})
    'mri-default-seed3-site_balanced'
    """
    from pathlib import Path as _P

    name = _P(cohort).stem if str(cohort).endswith(".csv") else cohort
    parts = [f"mri-{name}"]
    for k, v in sorted((cohort_options or {}).items()):
        if v is True:
            parts.append(k)
        elif v not in (False, None):
            parts.append(f"{k}{v}")
    return "-".join(parts)


def prepare(configs: Sequence[MriConfig]) -> None:
    """Build the simulated cohorts once, before the workers (or SLURM jobs) start."""
    for c in {(c.cohort, tuple(sorted(c.cohort_options.items()))): c for c in configs}.values():
        load_mri_cohort(c)


def run_summary(run) -> str:
    """Log line of a finished run: training time, classification AUROC, localization AUPR."""
    m = run.metrics
    shared = f" (network of {m['trained_in']})" if m.get("trained_in") else ""
    c = m.get("classification", {}).get("auroc", float("nan"))
    loc = m.get("localization", {}).get("brain", {})
    return (f"train {m.get('train_seconds', float('nan')):.1f} s{shared}, classification AUROC {c:.3f}, "
            f"localization AUPR {loc.get('aupr', float('nan')):.4f} (chance {loc.get('prevalence', float('nan')):.4f})")


def _parse_param(text: str) -> tuple[str, str, Any]:
    import ast

    key, sep, value = text.partition("=")
    method, dot, name = key.rpartition(".")
    if not sep or not dot or not name.isidentifier():
        raise ValueError(f"--param expects METHOD.NAME=VALUE (e.g. ogae-loc.epochs=2); got {text!r}")
    try:
        return method, name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return method, name, value


def add_arguments(parser) -> None:
    """Options of ``ogae bench mri`` (besides the sweep options every kind shares)."""
    parser.add_argument("--cohort", default="smoke",
                        help="simulated preset (smoke | demo | default | full | paper) or a cohort CSV (default smoke)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="MRI methods (default: every registered one, incl. the wm-prior reference)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (default 0)")
    parser.add_argument("--cohort-seed", type=int, default=None, help="seed of the simulated cohort")
    parser.add_argument("--site-balanced", action="store_true",
                        help="test controls and patients on the same sites (site confound off)")
    parser.add_argument("--confound", action="store_true", help="patients older than test controls (age confound on)")
    parser.add_argument("--lesion-labels", nargs="+", type=int, default=[1],
                        help="lesion labels of the localization ground truth (default 1)")
    parser.add_argument("--aggregation", default="q98", help="subject score rule (default q98, ventricles excluded)")
    parser.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                        help="a detector hyperparameter, e.g. ogae-loc.epochs=2 (repeatable)")
    parser.add_argument("--select-on", choices=["validation"], default=None,
                        help="instead of the benchmark: select the localized OCSVM settings (nu, gamma, neighbourhood) "
                             "of the localized methods on the validation patients, into <experiment>-select")
    parser.add_argument("--select-nu", nargs="+", type=float, default=None, help="nu grid (default 0.05 0.1 0.3)")
    parser.add_argument("--select-gamma-factor", nargs="+", type=float, default=None,
                        help="gamma grid as factors of 'scale' (default 1 0.5 2)")
    parser.add_argument("--select-neighbourhood", nargs="+", type=int, default=None,
                        help="neighbourhood radii (default 0 1)")
    parser.add_argument("--voxel-fraction", type=float, default=1.0,
                        help="share of non-lesion voxels scored in the selection (weighted AUPR; default 1: all)")


def configs_from_args(args) -> tuple[list[MriConfig], str]:
    """The configurations and the default experiment name of ``ogae bench mri`` arguments."""
    options = {}
    if args.cohort_seed is not None:
        options["seed"] = args.cohort_seed
    if args.site_balanced:
        options["site_balanced"] = True
    if args.confound:
        options["confound"] = True
    hp: dict[str, dict] = {}
    for text in args.param:
        method, name, value = _parse_param(text)
        hp.setdefault(method, {})[name] = value
    spec = MriEvalSpec(lesion_labels=tuple(args.lesion_labels), aggregation=args.aggregation)
    configs = mri_configs(args.cohort, args.methods, args.seeds, hyperparameters=hp, cohort_options=options,
                          evaluation=spec)
    return configs, experiment_name(args.cohort, options)


def report(runs_root, experiment: str, **options):
    """Tables II and III of one experiment (:func:`ogae_core.experiments.mri_report.mri_report`)."""
    from ogae_core.experiments.mri_report import mri_report

    unsupported = sorted(k for k in ("positive", "paper", "conventions") if k in options)
    if unsupported:
        raise ValueError(f"the brain-MRI report does not take {unsupported} (MNIST-C report options)")
    return mri_report(runs_root, experiment, n_boot=options.get("n_boot") or 1000, seed=options.get("seed") or 0)


#: Experiment 2 as an experiment kind.
KIND = register_kind(ExperimentKind(
    name="mri", config_type=MriConfig, run_training_group=run_training_group,
    description="Experiment 2: brain MRI, subject classification and lesion localization", prepare=prepare,
    data_hash=data_hash, resolved_settings=resolved_settings,
    run_summary=run_summary, report=report, add_arguments=add_arguments, configs_from_args=configs_from_args,
    select=select_from_args,
), replace=True)
