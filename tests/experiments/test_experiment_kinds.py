"""Experiment kinds are plug-ins: a toy kind runs through the shared sweep (local processes,
interrupted and resumed) and shows up in `ogae report`, without touching the sweep machinery."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ogae_core.cli import main as cli_main
from ogae_core.experiments import (
    ExperimentKind,
    RunConfig,
    experiment_kind,
    experiment_report,
    get_kind,
    kind_names,
    kind_of,
    register_kind,
    run_sweep,
)
from ogae_core.runs import list_runs

from .toy_kind import KIND, ToyConfig

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_path(monkeypatch):
    """Let submitit's worker processes import this test package (the toy kind's module)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))


def test_registry_finds_builtin_and_registered_kinds():
    assert kind_names()[0] == "mnistc" and "toy" in kind_names()
    assert get_kind("toy") is KIND and kind_of(ToyConfig()) is KIND
    assert kind_of(RunConfig("ae", "recons")).name == "mnistc"
    assert RunConfig("ae", "recons").to_dict()["experiment_kind"] == "mnistc"
    with pytest.raises(ValueError, match="unknown experiment kind 'nope'"):
        get_kind("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_kind(ExperimentKind("toy", ToyConfig, KIND.run_training_group))
    with pytest.raises(ValueError, match="kind must be 'other'"):
        ExperimentKind("other", ToyConfig, KIND.run_training_group)
    with pytest.raises(ValueError, match="experiment kind"):
        run_sweep([{"shift": 1.0}], "/nonexistent", "toy", executor="inline", log=None)


@pytest.mark.slow
def test_toy_kind_runs_locally_resumes_after_a_killed_worker_and_is_reported(tmp_path, worker_path, monkeypatch,
                                                                           capsys):
    configs = [ToyConfig(shift=s) for s in (0.5, 1.0, 2.0)]  # one shared "training" (seed 0): one job
    monkeypatch.setenv("OGAE_TOY_DIE_AFTER", "1")
    first = run_sweep(configs, tmp_path, "toy-exp", executor="local", timeout_min=5, log=None, poll_s=0.2)
    done = [r.run_id for r in list_runs(tmp_path, "toy-exp")]
    assert done == [configs[0].run_id()]  # the worker wrote one run before it was killed
    # that run counts as finished (its job died later); the two others failed, with the job's stderr tail
    assert [p.name for p in first.finished] == done and len(first.failed) == 2
    assert all(f.traceback for f in first.failed.values())
    assert all("stopped without a result" in f.message for f in first.failed.values()), first.failed

    monkeypatch.delenv("OGAE_TOY_DIE_AFTER")
    second = run_sweep(configs, tmp_path, "toy-exp", executor="local", timeout_min=5, log=None, poll_s=0.2)
    assert second.ok and [p.name for p in second.skipped] == done
    assert sorted(p.name for p in second.finished) == sorted(c.run_id() for c in configs[1:])
    assert sorted(r.run_id for r in list_runs(tmp_path, "toy-exp")) == sorted(c.run_id() for c in configs)

    assert experiment_kind(tmp_path, "toy-exp") == "toy"
    text = experiment_report(tmp_path, "toy-exp").render()
    assert all(c.label in text for c in configs)
    assert cli_main(["report", "--runs-root", str(tmp_path), "--experiment", "toy-exp"]) == 0
    out = capsys.readouterr().out
    assert "toy report" in out and all(c.label in out for c in configs)


def test_toy_kind_failure_is_typed_and_cli_bench_discovers_the_kind(tmp_path, capsys):
    bad, good = ToyConfig(shift=-1.0, seed=1), ToyConfig(shift=1.0, seed=2)
    result = run_sweep([bad, good], tmp_path, "toy-exp", executor="inline", log=None)
    assert list(result.failed) == [bad.run_id()] and "shift must be >= 0" in result.failed[bad.run_id()].message
    assert [p.name for p in result.finished] == [good.run_id()]
    code = cli_main(["bench", "toy", "--shifts", "3.0", "--executor", "inline", "--runs-root", str(tmp_path)])
    assert code == 0 and ToyConfig(shift=3.0).run_id() in [r.run_id for r in list_runs(tmp_path, "toy")]
