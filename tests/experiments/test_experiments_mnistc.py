"""One configuration end to end: a real run directory from a real MNIST-C slice."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ogae_core import Detector
from ogae_core.experiments import (RunConfig, TaskSpec, get_kind, preset_configs, run_mnistc, split_metrics,
                                    stratified_subsample)
from ogae_core.experiments.mnistc import task_items
from ogae_core.runs import list_runs
from tests.experiments.conftest import SMOKE_EXPERIMENT


def _run(root, label):
    return next(r for r in list_runs(root, SMOKE_EXPERIMENT) if r.label == label)


@pytest.mark.slow
def test_smoke_preset_writes_complete_runs(smoke_store):
    root, _ = smoke_store
    runs = list_runs(root, SMOKE_EXPERIMENT)
    assert sorted(r.label for r in runs) == ["ae-recons", "h-dsvdd", "ogae-ocsvm"]
    for run in runs:
        for name in ("config.json", "metrics.json", "model.safetensors", "history.parquet", "scores.parquet",
                     "latents.parquet", "detector.json"):
            assert run.has(name), (run.run_id, name)
        prov = run.config["provenance"]
        assert prov["seed"] == 0 and prov["code_version"] and prov["libraries"]["torch"] and prov["data_hash"]
        assert RunConfig.from_dict(run.config).run_id() == run.run_id  # the id is the hash of the stored config
        # what a resumed sweep compares (ogae_core.experiments.resume): equal for the unchanged task
        assert get_kind("mnistc").data_hash(RunConfig.from_dict(run.config)) == prov["data_hash"]
        # ... and the method defaults the run took (OgAE's; none for the others)
        expected = {"early_stopping": "run", "guidance": "authors", "negative_slope": 0.3} if run.label == "ogae-ocsvm" else {}
        assert prov["resolved_settings"] == expected


@pytest.mark.slow
def test_end_to_end_run_contents(smoke_store):
    root, _ = smoke_store
    run = _run(root, "ogae-ocsvm")
    cfg = RunConfig.from_dict(run.config)
    spec = cfg.task
    scores = run.scores()
    assert set(scores["split"]) == {"validation", "test"}
    items = task_items(spec)
    for split in ("validation", "test"):
        assert (scores["split"] == split).sum() == len(items[split][1]) == getattr(spec, f"max_{split}")
    assert np.array_equal(scores["label"].to_numpy(), (scores["digit"] == spec.anomaly).astype(int).to_numpy())
    assert set(scores["digit"]) == {spec.normal, spec.anomaly}
    assert set(scores["corruption"]) == {"stripe", "canny_edges", "brightness"}
    # metrics.json agrees with scikit-learn on the stored scores, overall and per corruption
    for split in ("validation", "test"):
        s = scores[scores["split"] == split]
        m = run.metrics[split]
        assert m["auroc"] == pytest.approx(roc_auc_score(s["label"], s["score"]), abs=1e-12)
        assert m["aupr"] == pytest.approx(average_precision_score(s["label"], s["score"]), abs=1e-12)
        assert m["auroc30"] == pytest.approx(roc_auc_score(s["label"], s["score"], max_fpr=0.3), abs=1e-12)
        for c, g in s.groupby("corruption"):
            assert m["per_corruption"][c]["auroc"] == pytest.approx(roc_auc_score(g["label"], g["score"]), abs=1e-12)
        tied = s["score"].round(12).value_counts().max() / len(s)
        assert m["tied_fraction"] == pytest.approx(tied)
        assert (f"tied_scores:{split}" in run.metrics["warnings"]) == (tied > 0.5)
    history = run.history()
    assert history["epoch"].tolist() == list(range(1, len(history) + 1)) and len(history) == run.metrics["epochs_run"]
    latents = run.latents()
    assert len(latents) == cfg.latent_sample and np.isfinite(latents[["umap_x", "umap_y"]].to_numpy()).all()
    assert set(latents["split"]) == {"train", "test"}
    assert set(latents.loc[latents["split"] == "train", "corruption"]) == {"identity", "motion_blur", "translate"}
    # the stored model reproduces the stored test scores exactly
    x_test, f_test = items["test"]
    assert np.array_equal(f_test["item"].to_numpy(), scores.loc[scores["split"] == "test", "item"].to_numpy())
    det = Detector.load(run.path)
    # same process and memory layout (the detector restores channels-last): bit-identical
    assert np.array_equal(det.anomaly_score(x_test), scores.loc[scores["split"] == "test", "score"].to_numpy())


@pytest.mark.slow
def test_existing_run_is_not_retrained(smoke_store, monkeypatch):
    root, _ = smoke_store
    calls = []
    monkeypatch.setattr(Detector, "fit", lambda self, *a, **k: calls.append(1))
    cfg = preset_configs("smoke", methods=["ae-recons"])[0]
    before = json.loads((root / SMOKE_EXPERIMENT / cfg.run_id() / "FINISHED").read_text())
    assert run_mnistc(cfg, root, SMOKE_EXPERIMENT) == root / SMOKE_EXPERIMENT / cfg.run_id()
    assert calls == []
    assert json.loads((root / SMOKE_EXPERIMENT / cfg.run_id() / "FINISHED").read_text()) == before
    with pytest.raises(FileExistsError):
        run_mnistc(cfg, root, SMOKE_EXPERIMENT, skip_existing=False)


def test_stratified_subsample_is_proportional_and_deterministic():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 1000)
    b = rng.choice(["x", "y", "z"], 1000, p=[0.6, 0.3, 0.1])
    idx = stratified_subsample([a, b], 200, seed=3)
    assert len(idx) == 200 and len(set(idx)) == 200 and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, stratified_subsample([a, b], 200, seed=3))
    assert not np.array_equal(idx, stratified_subsample([a, b], 200, seed=4))
    full = pd.crosstab(a, b) / 1000
    part = pd.crosstab(a[idx], b[idx]) / 200
    assert np.abs(full.to_numpy() - part.to_numpy()).max() <= 1 / 200 + 1e-12
    assert np.array_equal(stratified_subsample([a], None, 0), np.arange(1000))
    assert np.array_equal(stratified_subsample([a], 5000, 0), np.arange(1000))


def test_split_metrics_matches_sklearn():
    rng = np.random.default_rng(1)
    f = pd.DataFrame({"label": rng.integers(0, 2, 300), "corruption": rng.choice(["a", "b"], 300)})
    f["score"] = f["label"] * 0.5 + rng.normal(size=300)
    m = split_metrics(f)
    assert m["auroc"] == pytest.approx(roc_auc_score(f["label"], f["score"]))
    assert m["n_items"] == 300 and m["n_anomalies"] == int(f["label"].sum())
    g = f[f["corruption"] == "b"]
    assert m["per_corruption"]["b"]["aupr"] == pytest.approx(average_precision_score(g["label"], g["score"]))


@pytest.mark.parametrize("kwargs, match", [
    ({"hyperparameters": {"device": "cpu"}}, "must not set"),
    ({"hyperparameters": {"epochs": 3}}, "must not set"),
    ({"task": TaskSpec(max_train=3)}, None),
])
def test_run_config_validation(kwargs, match):
    if match is None:
        assert RunConfig("ae", "recons", **kwargs).task.max_train == 3
    else:
        with pytest.raises(ValueError, match=match):
            RunConfig("ae", "recons", **kwargs)


@pytest.mark.parametrize("field", ["max_train", "mnist_limit"])
def test_task_spec_rejects_bad_sizes(field):
    with pytest.raises(ValueError, match=field):
        TaskSpec(**{field: 0})


def test_run_config_round_trip_and_group_key():
    a = RunConfig("ogae", "ocsvm", seed=0, hyperparameters={"lam": 0.1, "both_weights": (1.0, 1.0)})
    b = RunConfig.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b.run_id() == a.run_id()
    assert RunConfig("ogae", "ocsvm", seed=1, hyperparameters={"lam": 0.1, "both_weights": (1.0, 1.0)}).group_key() == a.group_key()
    assert RunConfig("ogae", "ocsvm", seed=0, hyperparameters={"lam": 0.2}).group_key() != a.group_key()


def test_task_items_hold_out_the_task_early_stop_split():
    from ogae_core.experiments.mnistc import build_task

    spec = TaskSpec(mnist_limit=1500, max_train=150, max_validation=60, max_test=60)
    items, task = task_items(spec), build_task(spec)
    tr, es = items["train"][1], items["early_stop"][1]
    n_all = len(task.train) + len(task.early_stop)
    assert len(tr) + len(es) == 150
    assert abs(len(es) - 150 * len(task.early_stop) / n_all) <= 3  # proportional (stratified by split)
    assert set(tr["split"]) == {"train"} and set(es["split"]) == {"early_stop"}
    assert not set(tr["item"]) & set(es["item"])
    # the early-stop images are the task's early_stop items, not a random draw of the training ones
    k = es["item"].to_numpy() - len(task.train)
    assert np.array_equal(items["early_stop"][0], task.early_stop.images[k])
    assert np.array_equal(es["source_index"].to_numpy(), task.early_stop.source_index[k])
