"""Interrupted and concurrent sweeps (issue 11, point 5): claims, stopping local jobs, runs
finished by another process, two sweeps on one store. The command-line tests drive
``ogae bench toy`` (the toy kind of ``toy_kind.py``) in subprocesses, as a user would."""
from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ogae_core.experiments import RunFailed, RunFinished, run_sweep
from ogae_core.experiments.jobs import job_failure, run_group_job
from ogae_core.experiments.sweep import InvalidConfigError
from ogae_core.runs import claim_path, holder, list_runs, live_claims, release_claim, try_claim
from ogae_core.runs.claims import STALE_GRACE_S, Claim, pid_alive, read_claim

from .toy_kind import ToyConfig
from .toy_kind import run_training_group as toy_group

REPO = Path(__file__).resolve().parents[2]
#: ``ogae`` with the toy kind registered (the CLI finds kinds through the registry).
TOY_CLI = "import sys, tests.experiments.toy_kind; from ogae_core.cli import main; sys.exit(main(sys.argv[1:]))"


def toy_env(counter: Path, **extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "OGAE_TOY_COUNTER": str(counter), **extra}
    env.pop("OGAE_TOY_DIE_AFTER", None)
    return env


def toy_bench(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", TOY_CLI, "bench", "toy", "--runs-root", str(root), "--experiment", "toy-exp",
            "--executor", "local", "--jobs", "1", *extra]


def counted(counter: Path) -> tuple[collections.Counter, collections.Counter, set]:
    """(trainings per training key, writes per run id, worker pids) from the toy's counter file."""
    trains, runs, pids = collections.Counter(), collections.Counter(), set()
    if counter.exists():
        for line in counter.read_text().splitlines():
            what, name, pid = line.split()
            (trains if what == "train" else runs)[name] += 1
            pids.add(int(pid))
    return trains, runs, pids


# ------------------------------------------------------------------ claim files
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claim_is_exclusive_and_released_only_by_its_owner(tmp_path):
    mine = try_claim(tmp_path, "k", time_limit_s=60)
    assert mine is not None and read_claim(claim_path(tmp_path, "k")) == mine
    assert try_claim(tmp_path, "k", time_limit_s=60) is None  # held by a live process (this one)
    other = Claim(mine.pid, mine.host, mine.started + 1, 60.0)
    release_claim(tmp_path, "k", other)  # not the stored claim: left alone
    assert holder(tmp_path, "k") == mine and live_claims(tmp_path) == {"k": mine}
    release_claim(tmp_path, "k", mine)
    assert holder(tmp_path, "k") is None and not claim_path(tmp_path, "k").exists()


@pytest.mark.parametrize("stale", [
    lambda: Claim(_dead_pid(), socket.gethostname(), time.time(), 3600.0),  # a dead local process
    lambda: Claim(1, "some-slurm-node", time.time() - 3600 - STALE_GRACE_S - 1, 3600.0),  # past its time limit
])
def test_stale_claims_are_taken_over(tmp_path, stale):
    claim = stale()
    path = claim_path(tmp_path, "k")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(claim.__dict__))
    assert holder(tmp_path, "k") is None
    mine = try_claim(tmp_path, "k", time_limit_s=60)
    assert mine is not None and mine.pid == os.getpid() and read_claim(path) == mine
    assert not path.with_name(path.name + ".takeover").exists()


def test_claim_of_a_live_process_on_another_host_within_its_time_limit_holds(tmp_path):
    path = claim_path(tmp_path, "k")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(Claim(1, "some-slurm-node", time.time(), 3600.0).__dict__))
    assert try_claim(tmp_path, "k", time_limit_s=60) is None and holder(tmp_path, "k").host == "some-slurm-node"


@pytest.mark.parametrize(("queue", "stale"), [("", True), ("RUNNING", False)])
def test_claim_of_a_slurm_job_on_another_node_is_stale_once_squeue_no_longer_lists_it(tmp_path, monkeypatch,
                                                                                      queue, stale):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    squeue.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'calls'}\nprintf '{queue}'\n")
    squeue.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    job = f"4242_{int(stale)}"  # one job id per case: squeue answers are reused for a while
    path = claim_path(tmp_path, "k")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(Claim(1, "some-slurm-node", time.time(), 3600.0, job).__dict__))
    assert (holder(tmp_path, "k") is None) is stale
    assert (tmp_path / "calls").read_text().split() == ["-h", "-j", job, "-o", "%T"]
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    mine = try_claim(tmp_path, "k", time_limit_s=60)
    assert (mine is not None and mine.slurm_job == "77_3") is stale


# ------------------------------------------------------------------ in-process behaviour
def test_invalid_configuration_is_refused_before_anything_starts(tmp_path):
    configs = [ToyConfig(shift=1.0), ToyConfig(shift=5000.0, seed=1)]
    with pytest.raises(InvalidConfigError, match=r"shift must be at most 1000; got 5000.0 \(toy-shift5000.0 seed 1\)"):
        run_sweep(configs, tmp_path, "toy-exp", executor="local", log=None)
    assert not (tmp_path / "toy-exp").exists()  # no job, no directory


def test_run_finished_by_another_process_counts_as_done_not_failed(tmp_path):
    cfg = ToyConfig(shift=1.0)
    exp = tmp_path / "toy-exp"
    message = f"FileExistsError: run {exp / cfg.run_id()} already exists; finished runs are never overwritten"

    def another_process_wins_the_race(group, runs_root, experiment, **kwargs):
        toy_group(group, runs_root, experiment)  # "meanwhile" another process commits the run ...
        return {cfg.run_id(): RunFailed(cfg.run_id(), message)}  # ... and this job's commit fails

    def job_raises(group, runs_root, experiment, **kwargs):
        raise FileExistsError(message)

    out = run_group_job(another_process_wins_the_race, [cfg], str(tmp_path), "toy-exp", time_limit_s=60)
    assert out == {cfg.run_id(): RunFinished(cfg.run_id(), exp / cfg.run_id(), preexisting=True)}
    assert not live_claims(exp)  # released
    # a job that finds every run of its group finished does not call the kind at all
    assert run_group_job(job_raises, [cfg], str(tmp_path), "toy-exp", time_limit_s=60) == out
    result = run_sweep([cfg, ToyConfig(shift=2.0)], tmp_path, "toy-exp", executor="inline", log=None)
    assert result.ok and [p.name for p in result.skipped] == [cfg.run_id()]


@pytest.mark.slow
def test_sweep_waits_for_a_claimed_training_and_skips_what_the_other_process_finished(tmp_path):
    configs = [ToyConfig(shift=s) for s in (0.5, 1.0)]
    exp = tmp_path / "toy-exp"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # "another sweep's worker"
    try:
        path = claim_path(exp, configs[0].training_key())
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(Claim(other.pid, socket.gethostname(), time.time(), 3600.0).__dict__))

        def other_finishes():
            toy_group(configs, str(tmp_path), "toy-exp")
            other.kill()
            other.wait()

        threading.Timer(1.0, other_finishes).start()
        lines: list[str] = []
        result = run_sweep(configs, tmp_path, "toy-exp", executor="inline", log=lines.append, poll_s=0.1)
    finally:
        other.kill()
    assert result.ok and not result.finished
    assert sorted(p.name for p in result.skipped) == sorted(c.run_id() for c in configs)
    assert sum("already finished (by another process)" in ln for ln in lines) == 2, lines
    assert "2 runs: 0 finished, 2 skipped" in lines[-1]


def test_job_failure_without_a_result_is_described_by_its_stderr():
    err = RuntimeError("Job 12_1 (task: 0) with path /x/12_1_result.pkl\nhas not produced any output (state: CANCELLED)\n"
                       "Error stream produced:\n" + "-" * 40 + "\nsubmitit INFO (2026) - Starting\n"
                       "slurmstepd: error: *** JOB 13 ON node CANCELLED AT 2026-12-01T05:00:00 ***")
    failure = job_failure("r", err, log_path="/x/12_1_0_log.err")
    assert isinstance(failure, RunFailed)
    assert failure.message == ("the job stopped without a result (state: CANCELLED): "
                               "slurmstepd: error: *** JOB 13 ON node CANCELLED AT 2026-12-01T05:00:00 ***")
    assert "submitit INFO" not in failure.traceback and failure.traceback.endswith("(full log: /x/12_1_0_log.err)")


@pytest.mark.slow
def test_failing_local_job_shows_its_error_lines_in_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    lines: list[str] = []
    bad = ToyConfig(shift=-1.0)
    result = run_sweep([bad], tmp_path, "toy-exp", executor="local", log=lines.append, poll_s=0.2, timeout_min=5)
    assert str(result.failed[bad.run_id()]) == "ValueError: shift must be >= 0; got -1.0"
    failed = [i for i, ln in enumerate(lines) if "FAILED" in ln]
    assert len(failed) == 1 and lines[failed[0]].endswith("FAILED toy-shift-1.0 seed 0: ValueError: shift must be >= 0; got -1.0")
    assert lines[failed[0] + 1].startswith("    ") and "toy_kind.py" in "\n".join(lines)  # the traceback's last lines


# ------------------------------------------------------------------ the command line, interrupted
def _wait_until(predicate, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended before {what}:\n{proc.communicate()[0]}")
        time.sleep(0.1)
    raise TimeoutError(f"no {what} after {timeout} s")


def _controller_pids(exp: Path) -> set[int]:
    """The submitit local controllers of an experiment (a local job's id is its controller's pid)."""
    return {int(p.name.split("_")[0]) for p in (exp / ".submitit").glob("*_log.out")}


@pytest.mark.slow
def test_sigterm_stops_local_jobs_and_the_rerun_loses_and_repeats_nothing(tmp_path):
    root, counter, exp = tmp_path / "runs", tmp_path / "counter.txt", tmp_path / "runs" / "toy-exp"
    args = toy_bench(root, "--shifts", "1", "2", "3", "--seeds", "0", "1")  # 2 trainings of 3 runs each, in turn
    env = toy_env(counter, OGAE_TOY_TRAIN_S="1", OGAE_TOY_RUN_S="2")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until(lambda: list_runs(root, "toy-exp"), proc, 180, "a finished run")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out
    assert "ogae: error: interrupted: stopped 1 local job(s)" in out and "Traceback" not in out, out
    trains, runs, workers = counted(counter)
    processes = workers | _controller_pids(exp)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in processes if pid_alive(p)], "a local job survived the interrupted command"
    assert not live_claims(exp)
    before = {r.run_id: (r.path / "FINISHED").read_text() for r in list_runs(root, "toy-exp")}
    assert before and len(before) < 6 and set(before) == set(runs)

    rerun = subprocess.run(args, cwd=REPO, env=toy_env(counter), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout
    assert f"{6 - len(before)} run(s) to do, {len(before)} already finished" in rerun.stdout
    assert "FAILED" not in rerun.stdout and "0 failed" in rerun.stdout
    after = {r.run_id: r for r in list_runs(root, "toy-exp")}
    assert len(after) == 6 and {rid: (after[rid].path / "FINISHED").read_text() for rid in before} == before
    trains, runs, _ = counted(counter)
    assert set(runs) == set(after) and set(runs.values()) == {1}, runs  # every run written once
    assert len(trains) == 2 and set(trains.values()) == {1}, trains  # every training done once


@pytest.mark.slow
def test_two_sweeps_started_at_once_train_each_configuration_once(tmp_path):
    root, counter = tmp_path / "runs", tmp_path / "counter.txt"
    args = toy_bench(root, "--shifts", "1", "2", "--seeds", "0", "1", "2")  # 3 trainings of 2 runs each
    env = toy_env(counter, OGAE_TOY_TRAIN_S="1.5", OGAE_TOY_RUN_S="0.3")
    procs = [subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = []
    try:
        for proc in procs:
            outs.append(proc.communicate(timeout=600)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("FAILED" in out for out in outs), outs
    trains, runs, _ = counted(counter)
    assert len(trains) == 3 and set(trains.values()) == {1}, trains
    assert len(runs) == 6 and set(runs.values()) == {1}, runs
    assert len(list_runs(root, "toy-exp")) == 6
    made = [int(out.split(" runs: ")[1].split(" finished")[0]) for out in outs]
    assert sum(made) == 6, outs  # each run made by one sweep, found finished by the other
