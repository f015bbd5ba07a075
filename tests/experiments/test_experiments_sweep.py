"""Sweeps: resume after a kill without redoing finished runs, failures isolated, submitit executors."""
from __future__ import annotations

import numpy as np
import pytest

from ogae_core import Detector
from ogae_core.experiments import RunConfig, RunFailed, TaskSpec, pending_configs, run_sweep
from ogae_core.runs import TMP_PREFIX, list_runs

TINY = TaskSpec(mnist_limit=1500, max_train=150, max_validation=60, max_test=60)


def _configs(n=3):
    return [RunConfig("ae", "recons", seed=s, epochs=1, task=TINY, latent_sample=30, hyperparameters={"batch_size": 50})
            for s in range(n)]


@pytest.fixture
def counted_fit(monkeypatch):
    """Count Detector.fit calls; ``state["kill_at"] = k`` raises KeyboardInterrupt in the k-th call."""
    state = {"calls": 0, "kill_at": None}
    real_fit = Detector.fit

    def fit(self, *args, **kwargs):
        state["calls"] += 1
        if state["calls"] == state["kill_at"]:
            raise KeyboardInterrupt("simulated kill during training")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(Detector, "fit", fit)
    return state


@pytest.mark.slow
def test_sweep_resumes_after_kill_without_rerunning_finished_runs(tmp_path, counted_fit):
    configs = _configs(3)
    counted_fit["kill_at"] = 2
    with pytest.raises(KeyboardInterrupt):
        run_sweep(configs, tmp_path, "exp", executor="inline", log=None)
    finished = list_runs(tmp_path, "exp")
    assert [r.run_id for r in finished] == [configs[0].run_id()]
    stamp = (finished[0].path / "FINISHED").stat().st_mtime_ns
    # a SIGKILL during a write would leave a hidden temporary directory behind
    stale = tmp_path / "exp" / f"{TMP_PREFIX}{configs[1].run_id()}-xyz"
    stale.mkdir()
    (stale / "scores.parquet").write_bytes(b"partial")

    counted_fit.update(calls=0, kill_at=None)
    result = run_sweep(configs, tmp_path, "exp", executor="inline", log=None)
    assert counted_fit["calls"] == 2  # only the two unfinished configurations are trained
    assert result.ok and len(result.finished) == 2 and [p.name for p in result.skipped] == [configs[0].run_id()]
    assert result.partial == [stale]
    assert sorted(r.run_id for r in list_runs(tmp_path, "exp")) == sorted(c.run_id() for c in configs)
    assert (finished[0].path / "FINISHED").stat().st_mtime_ns == stamp  # the finished run was not touched

    counted_fit["calls"] = 0
    again = run_sweep(configs + configs[:1], tmp_path, "exp", executor="inline", log=None)
    assert counted_fit["calls"] == 0 and len(again.skipped) == 3 and not again.finished


def test_failed_configuration_does_not_stop_the_sweep(tmp_path):
    bad = RunConfig("ogae", "ocsvm", epochs=1, task=TINY, latent_sample=30, hyperparameters={"lam": -1.0})
    good = _configs(1)[0]
    lines = []
    result = run_sweep([bad, good], tmp_path, "exp", executor="inline", log=lines.append)
    assert not result.ok and list(result.failed) == [bad.run_id()]
    failure = result.failed[bad.run_id()]
    assert isinstance(failure, RunFailed) and "lam" in failure.message and failure.message.startswith("ValueError")
    assert "Traceback" in failure.traceback or "lam" in failure.traceback  # the tail of the traceback travels along
    assert [p.name for p in result.finished] == [good.run_id()]
    assert any("FAILED" in line for line in lines) and "1 failed" in result.summary()
    assert not (tmp_path / "exp" / bad.run_id()).exists()


@pytest.mark.slow
def test_local_executor_runs_the_same_function_in_subprocesses(tmp_path):
    configs = _configs(1)
    result = run_sweep(configs, tmp_path, "exp", executor="local", jobs=1, timeout_min=10, log=None, poll_s=0.2)
    assert result.ok, result.failed
    runs = list_runs(tmp_path, "exp")
    assert [r.run_id for r in runs] == [configs[0].run_id()]
    assert runs[0].metrics["test"]["n_items"] == TINY.max_test
    assert (tmp_path / "exp" / ".submitit").is_dir()  # job files stay out of the run listing
    assert run_sweep(configs, tmp_path, "exp", executor="local", log=None).skipped == [runs[0].path]


def test_pending_configs_deduplicates(tmp_path):
    c = _configs(2)
    todo, done = pending_configs(c + c, tmp_path, "exp")
    assert [x.run_id() for x in todo] == [x.run_id() for x in c] and done == []


@pytest.mark.parametrize("kwargs, match", [
    ({"executor": "mpi"}, "unknown executor"),
    ({"jobs": 0}, "jobs"),
    ({"timeout_min": 0}, "timeout_min"),
])
def test_sweep_rejects_bad_options(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_sweep(_configs(1), tmp_path, "exp", log=None, **kwargs)


def test_sweep_rejects_non_configs(tmp_path):
    with pytest.raises(ValueError, match="experiment kind"):
        run_sweep([{"method": "ae"}], tmp_path, "exp", executor="inline", log=None)


def test_slurm_executor_writes_an_array_job(tmp_path, monkeypatch):
    """Without a cluster: fake `srun`/`sbatch` on PATH; check the submitted sbatch script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 'Submitted batch job 4242'\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    configs = _configs(3)
    result = run_sweep(configs, tmp_path / "runs", "exp", executor="slurm", jobs=2, timeout_min=30, wait=False, log=None,
                       slurm={"partition": "gpu", "gpus": 1, "cpus": 4, "mem_gb": 8})
    assert result.submitted == ["4242_0", "4242_1", "4242_2"] and not result.finished
    script = next((tmp_path / "runs" / "exp" / ".submitit").glob("*_submission.sh")).read_text()
    for line in ("--array=0-2%2", "--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=4", "--time=30", "--mem=8GB"):
        assert line in script, line


def test_configs_that_differ_only_in_scoring_share_one_training(tmp_path, counted_fit):
    base = dict(seed=0, epochs=1, task=TINY, latent_sample=30)
    hp = {"batch_size": 50}
    configs = [RunConfig("ae", "recons", hyperparameters=hp, **base),
               RunConfig("ae", "ocsvm", hyperparameters={**hp, "ocsvm_nu": 0.1}, **base),
               RunConfig("ae", "ocsvm", hyperparameters={**hp, "ocsvm_nu": 0.3, "ocsvm_standardize": False}, **base),
               RunConfig("ae", "recons", hyperparameters={**hp, "lr": 5e-4}, **base)]  # another training
    lines = []
    result = run_sweep(configs, tmp_path, "exp", executor="inline", log=lines.append)
    assert result.ok and len(result.finished) == 4
    assert counted_fit["calls"] == 2
    assert any("2 training(s) shared by the 4 run(s)" in line for line in lines)
    runs = {r.run_id: r for r in list_runs(tmp_path, "exp")}
    first = configs[0].run_id()
    assert runs[first].metrics["trained_in"] is None
    assert [runs[c.run_id()].metrics["trained_in"] for c in configs[1:3]] == [first, first]
    assert runs[configs[3].run_id()].metrics["trained_in"] is None
    shared, source = runs[configs[1].run_id()].model_tensors(), runs[first].model_tensors()
    assert shared.keys() == source.keys() and all(np.array_equal(shared[k], source[k]) for k in source)

    # a shared run's scores equal those of training that configuration on its own (CPU determinism)
    counted_fit["calls"] = 0
    alone = run_sweep([configs[2]], tmp_path / "alone", "exp", executor="inline", log=None)
    assert alone.ok and counted_fit["calls"] == 1
    shared_scores = runs[configs[2].run_id()].scores()
    alone_scores = list_runs(tmp_path / "alone", "exp")[0].scores()
    assert shared_scores["score"].to_numpy().tobytes() == alone_scores["score"].to_numpy().tobytes()


def test_interrupted_group_resumes_from_the_stored_network(tmp_path, counted_fit, monkeypatch):
    from ogae_core.experiments import mnistc

    base = dict(seed=0, epochs=1, task=TINY, latent_sample=30, hyperparameters={"batch_size": 50})
    configs = [RunConfig("ae", "recons", **base), RunConfig("ae", "ocsvm", **base)]
    real_write = mnistc._write_run
    state = {"writes": 0}

    def write(*args, **kwargs):
        state["writes"] += 1
        if state["writes"] == 2:
            raise KeyboardInterrupt("simulated kill while scoring the second run")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(mnistc, "_write_run", write)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(configs, tmp_path, "exp", executor="inline", log=None)
    assert [r.run_id for r in list_runs(tmp_path, "exp")] == [configs[0].run_id()]
    counted_fit["calls"] = 0
    result = run_sweep(configs, tmp_path, "exp", executor="inline", log=None)
    assert result.ok and counted_fit["calls"] == 0  # the network came from the finished run
    resumed = next(r for r in list_runs(tmp_path, "exp") if r.run_id == configs[1].run_id())
    assert resumed.metrics["trained_in"] == configs[0].run_id()
    monkeypatch.setattr(mnistc, "_write_run", real_write)
    alone = run_sweep([configs[1]], tmp_path / "alone", "exp", executor="inline", log=None)
    assert alone.ok
    assert np.array_equal(resumed.scores()["score"], list_runs(tmp_path / "alone", "exp")[0].scores()["score"])


def test_training_group_rejects_mixed_trainings(tmp_path):
    from ogae_core.experiments import run_training_group

    with pytest.raises(ValueError, match="one training key"):
        run_training_group([RunConfig("ae", "recons"), RunConfig("vae", "recons")], tmp_path, "exp")
