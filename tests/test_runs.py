"""The run store: atomic writes, interrupted writes never look finished, no overwrite, round trip."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from ogae_core import runs as store

CONFIG = {"method": "ogae", "scoring": "ocsvm", "seed": 3, "task": {"normal": 3, "anomaly": 8}, "nu": 0.5}


def _scores(n=6):
    return pd.DataFrame({"score": np.linspace(0, 1, n), "label": [0, 1] * (n // 2), "corruption": ["stripe"] * n})


def _write(root, config=CONFIG, **kw):
    with store.create_run(root, "exp", config, seed=config.get("seed"), data_hash="abc123", **kw) as w:
        w.write_scores(_scores())
        w.write_history(
            pd.DataFrame({"epoch": [1, 2], "loss_reconstruction": [0.2, 0.1], "phase": ["expander", "both"]})
        )
        w.write_latents(pd.DataFrame({"umap_x": [0.0, 1.0], "umap_y": [1.0, 0.0], "label": [0, 1]}))
        w.write_model({"w": np.arange(6, dtype=np.float32).reshape(2, 3)})
        w.write_metrics({"test": {"auroc": 0.9}, "selected": True})
    return w.final_path


def test_round_trip(tmp_path):
    path = _write(tmp_path)
    assert path == tmp_path / "exp" / store.run_id(CONFIG)
    run = store.read_run(path)
    assert run.label == "ogae-ocsvm" and run.seed == 3 and run.experiment == "exp"
    assert run.config["task"] == {"normal": 3, "anomaly": 8}
    prov = run.config["provenance"]
    assert prov["seed"] == 3 and prov["data_hash"] == "abc123" and prov["code_version"]
    assert prov["libraries"]["numpy"] == np.__version__ and prov["libraries"]["python"]
    assert run.metrics == {"test": {"auroc": 0.9}, "selected": True}
    pd.testing.assert_frame_equal(run.scores(), _scores())
    assert run.history().phase.tolist() == ["expander", "both"]
    assert run.latents().shape == (2, 3)
    np.testing.assert_array_equal(run.model_tensors()["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert [r.run_id for r in store.list_runs(tmp_path)] == [path.name]
    assert store.list_experiments(tmp_path) == ["exp"]


def test_refuses_to_overwrite_a_finished_run(tmp_path):
    path = _write(tmp_path)
    before = (path / "scores.parquet").read_bytes()
    with pytest.raises(FileExistsError, match="never overwritten"):
        _write(tmp_path)
    assert (path / "scores.parquet").read_bytes() == before
    assert store.partial_runs(tmp_path) == []


def test_nothing_visible_until_commit_and_exception_cleans_up(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with store.create_run(tmp_path, "exp", CONFIG) as w:
            w.write_scores(_scores())
            assert w.path.is_dir() and w.path.name.startswith(".tmp-")
            assert not w.final_path.exists()
            assert store.list_runs(tmp_path) == []
            raise RuntimeError("boom")
    assert not w.path.exists() and not w.final_path.exists()
    assert store.list_runs(tmp_path) == [] and store.partial_runs(tmp_path) == []


CRASH = textwrap.dedent(
    """
    import os, sys
    import pandas as pd
    from ogae_core import runs as store
    root, stage = sys.argv[1], sys.argv[2]
    if stage == "rename":  # die after FINISHED is written, just before the atomic rename
        os.rename = lambda *a, **k: os._exit(9)
    with store.create_run(root, "exp", {"method": "ae", "seed": 0}) as w:
        w.write_scores(pd.DataFrame({"score": [0.1, 0.9], "label": [0, 1]}))
        if stage == "mid":
            os._exit(9)  # a crash: no cleanup, no commit
    """
)


@pytest.mark.parametrize("stage", ["mid", "rename"])
def test_interrupted_write_never_looks_finished(tmp_path, stage):
    proc = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path), stage], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    config = {"method": "ae", "seed": 0}
    leftovers = store.partial_runs(tmp_path)
    assert len(leftovers) == 1
    if stage == "rename":
        assert (leftovers[0] / store.FINISHED).is_file()  # marker present, yet not a run
    assert store.list_runs(tmp_path) == [] and store.list_experiments(tmp_path) == []
    assert not store.run_exists(tmp_path, "exp", config)
    assert not store.is_finished(leftovers[0])
    with pytest.raises(ValueError, match="not a finished run"):
        store.read_run(leftovers[0])
    # the sweep redoes it; the leftover can be removed explicitly
    with store.create_run(tmp_path, "exp", config) as w:
        w.write_scores(pd.DataFrame({"score": [0.2, 0.8], "label": [0, 1]}))
    assert store.run_exists(tmp_path, "exp", config)
    store.remove_partial_run(leftovers[0])
    assert store.partial_runs(tmp_path) == []


def test_run_id_is_deterministic_and_config_sensitive():
    a = store.run_id(CONFIG)
    assert a == store.run_id(dict(reversed(list(CONFIG.items()))))
    assert a.startswith("ogae-ocsvm-s3-")
    assert store.run_id({**CONFIG, "nu": 0.1}) != a
    assert store.run_id({**CONFIG, "nu": np.float64(0.5)}) == a
    assert store.run_id(CONFIG, name="my run/1").startswith("my_run_1-")
    with pytest.raises(ValueError, match="not JSON-serializable"):
        store.config_hash({"x": object()})


def test_filter_and_table(tmp_path):
    _write(tmp_path)
    _write(tmp_path, {**CONFIG, "method": "ae", "scoring": "recons", "task": {"normal": 3, "anomaly": 4}})
    runs = store.list_runs(tmp_path)
    assert [r.label for r in store.filter_runs(runs, task__anomaly=4)] == ["ae-recons"]
    assert len(store.list_runs(tmp_path, method=["ae", "ogae"])) == 2
    assert store.list_runs(tmp_path, "exp", method="vae") == []
    table = store.runs_table(runs)
    assert set(table["config.task.anomaly"]) == {4, 8}
    assert "metrics.test.auroc" in table.columns and table.code_version.notna().all()


@pytest.mark.parametrize(
    "frame,match",
    [
        (pd.DataFrame({"score": [0.1]}), "label"),
        (pd.DataFrame({"score": [np.nan, 1.0], "label": [0, 1]}), "non-finite"),
        (pd.DataFrame({"score": [0.1, 1.0], "label": [0, 2]}), "0 \\(normal\\) or 1"),
    ],
)
def test_bad_scores_rejected_and_nothing_written(tmp_path, frame, match):
    with pytest.raises(ValueError, match=match):
        with store.create_run(tmp_path, "exp", CONFIG) as w:
            w.write_scores(frame)
    assert store.list_runs(tmp_path) == [] and store.partial_runs(tmp_path) == []


def test_bad_names(tmp_path):
    with pytest.raises(ValueError, match="experiment"):
        store.create_run(tmp_path, "../escape", CONFIG)
    with pytest.raises(ValueError, match="run id"):
        store.create_run(tmp_path, "exp", CONFIG, run_id=".tmp-x")
    with pytest.raises(ValueError, match="history lacks"):
        with store.create_run(tmp_path, "exp", CONFIG) as w:
            w.write_history(pd.DataFrame({"loss": [1.0]}))


def test_default_root_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv(store.RUNS_ENV, str(tmp_path))
    assert store.default_root() == tmp_path
    monkeypatch.delenv(store.RUNS_ENV)
    assert str(store.default_root()) == "runs"


def test_config_json_is_plain_json(tmp_path):
    path = _write(tmp_path)
    data = json.loads((path / "config.json").read_text())
    assert data["run_id"] == path.name and data["nu"] == 0.5


def test_pure_io_no_torch():
    code = "import sys, ogae_core.runs, ogae_core.evaluation, ogae_core.viz; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ})
    assert out.stdout.strip() == "False"


def test_concurrent_writer_loses_without_damage(tmp_path):
    with pytest.raises(FileExistsError, match="appeared while writing"):
        with store.create_run(tmp_path, "exp", CONFIG) as outer:
            outer.write_scores(_scores(4))
            inner_path = _write(tmp_path)  # another process finishes the same run first
    assert not outer.path.exists()
    run = store.read_run(inner_path)
    assert len(run.scores()) == 6 and run.metrics["selected"] is True
    assert store.partial_runs(tmp_path) == []


def _write_result(root, config, auroc, seconds, score_shift=0.0):
    with store.create_run(root, "exp", config, seed=config.get("seed")) as w:
        s = _scores()
        w.write_scores(s.assign(score=s["score"] + score_shift))
        w.write_metrics({"test": {"auroc": auroc, "per_corruption": {"stripe": {"auroc": auroc}}},
                         "train_seconds": seconds, "umap_seconds": seconds / 2})
    return w.final_path


def test_compare_stores_ignores_wall_clock_only(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    other = {**CONFIG, "seed": 4}
    for root, secs in ((a, 1.0), (b, 7.5)):
        _write_result(root, CONFIG, 0.9, secs)
        _write_result(root, other, 0.8, secs)
    same = store.compare_stores(a, b)
    assert same.identical and same.compared == 2 and same.render().endswith("IDENTICAL (run ids, metrics.json but "
                                                                            "wall-clock fields, scores.parquet)")
    # a metric that differs, a run only in one store, scores that differ: each is found
    c = tmp_path / "c"
    _write_result(c, CONFIG, 0.91, 1.0)
    _write_result(c, {**CONFIG, "seed": 5}, 0.8, 1.0)
    diff = store.compare_stores(a, c)
    assert not diff.identical and diff.compared == 1
    assert list(diff.metrics_differ.values()) == [["test.auroc", "test.per_corruption.stripe.auroc"]]
    assert diff.only_a == [f"exp/{store.run_id(other)}"] and diff.only_b == [f"exp/{store.run_id({**CONFIG, 'seed': 5})}"]
    d = tmp_path / "d"
    _write_result(d, CONFIG, 0.9, 1.0, score_shift=1e-9)
    assert store.compare_stores(a, d, experiments=["exp"]).scores_differ == [f"exp/{store.run_id(CONFIG)}"]
    assert not store.compare_stores(tmp_path / "empty", tmp_path / "empty2").identical  # nothing compared


def test_experiment_kinds_come_from_the_store(tmp_path):
    _write(tmp_path, {**CONFIG, "experiment_kind": "mnistc"})
    _write(tmp_path, {**CONFIG, "seed": 9})  # a run that did not record its kind
    runs = store.list_runs(tmp_path)
    assert sorted(r.kind for r in runs if r.kind) == ["mnistc"]
    assert store.experiment_kinds(runs) == {"exp": ["mnistc"]}
