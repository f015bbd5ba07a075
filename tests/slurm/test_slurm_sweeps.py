"""Sweeps on a real single-node SLURM cluster (``tests/slurm/local_cluster.py``).

Every test drives the ``ogae`` command line in a subprocess, as a user would, with the
cluster's ``SLURM_CONF``; SLURM exports the submitting environment (PYTHONPATH, the venv's
interpreter through submitit, ``OMP_NUM_THREADS``) to the jobs. Smoke preset only; the group
shares one cluster and takes a few minutes on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ogae_core import runs as store

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
EXPERIMENT = "mnistc-3v8-smoke"


def ogae(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    """Run ``ogae ARGS`` with this interpreter; stdout and stderr together in ``.stdout``."""
    cmd = [sys.executable, "-m", "ogae_core.cli", *args]
    return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def bench(root: Path, *extra: str) -> list[str]:
    return ["bench", "mnistc", "--preset", "smoke", "--runs-root", str(root), *extra]


def slurm(*extra: str) -> list[str]:
    return ["--executor", "slurm", "--cpus", "1", *extra]


def finished_runs(root: Path) -> dict[str, store.Run]:
    return {r.run_id: r for r in store.list_runs(root, EXPERIMENT)}


def test_smoke_sweep_as_array_job_matches_a_local_run(slurm_env, tmp_path):
    # one thread each way; NUMBA_NUM_THREADS too: UMAP's numba (OpenMP layer) otherwise raises the
    # OpenMP threads torch shares to the machine's CPU count once the first embedding is computed
    env = {**slurm_env, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    # the local reference runs in this process's CPUs at the same time (one thread each way)
    local = subprocess.Popen([sys.executable, "-m", "ogae_core.cli", *bench(tmp_path / "local", "--executor", "inline")],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        on_slurm = ogae(bench(tmp_path / "slurm", *slurm("--jobs", "2")), env, timeout=900)
        local_out, _ = local.communicate(timeout=900)
    finally:
        if local.poll() is None:
            local.kill()
    assert on_slurm.returncode == 0, on_slurm.stdout
    assert local.returncode == 0, local_out
    assert "3 runs: 3 finished" in on_slurm.stdout and "SLURM job(s) submitted" in on_slurm.stdout
    (array_id,) = {line.split("(array ")[1].split(")")[0] for line in on_slurm.stdout.splitlines() if "(array " in line}
    logs = sorted(p.name for p in (tmp_path / "slurm" / EXPERIMENT / ".submitit").glob("*_log.out"))
    assert logs == [f"{array_id}_{task}_0_log.out" for task in range(3)]  # one array job, one task per training

    remote_runs, local_runs = finished_runs(tmp_path / "slurm"), finished_runs(tmp_path / "local")
    assert len(remote_runs) == 3 and remote_runs.keys() == local_runs.keys()
    for run_id, run in remote_runs.items():
        assert run.metrics["torch_threads"] == local_runs[run_id].metrics["torch_threads"] == 1
        # same configuration, seed, machine and thread count: bit-identical scores
        pd.testing.assert_frame_equal(run.scores(), local_runs[run_id].scores(), check_exact=True)


def _started_unfinished_task(cluster, submitit_dir: Path, timeout: float = 300) -> str:
    """An array task that runs and has not written its result yet (so cancelling it loses a run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-r", "-t", "R", "-o", "%i"], env=cluster.env(),
                             capture_output=True, text=True)
        for task in out.stdout.split():
            if not list(submitit_dir.glob(f"{task}_*_result.pkl")):
                return task
        time.sleep(0.2)
    raise TimeoutError("no array task started running")


def _wait_for_runs(root: Path, n: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(finished_runs(root)) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"sweep ended before {n} run(s) finished:\n{proc.stdout.read()}")
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {n} finished run(s) after {timeout} s")


def test_cancelled_job_is_reported_and_the_rerun_resubmits_only_what_is_missing(slurm_cluster, slurm_env, tmp_path):
    root = tmp_path / "runs"
    args = bench(root, "--methods", "ae-recons", "--seeds", "0", "1", *slurm("--jobs", "1"))  # 2 trainings in turn
    proc = subprocess.Popen([sys.executable, "-m", "ogae_core.cli", *args], env=slurm_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_runs(root, 1, proc)
        victim = _started_unfinished_task(slurm_cluster, root / EXPERIMENT / ".submitit")
        subprocess.run(["scancel", victim], env=slurm_env, check=True)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    failed_lines = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed_lines) == 1 and "ae-recons seed 1" in failed_lines[0], out  # the cancelled one, named
    assert "1 finished, 0 skipped (already done), 1 failed" in out
    before = finished_runs(root)
    assert [r.seed for r in before.values()] == [0]
    stamp = {rid: (r.path / store.FINISHED).read_text() for rid, r in before.items()}

    rerun = ogae(args, slurm_env, timeout=600)
    assert rerun.returncode == 0, rerun.stdout
    assert "1 run(s) to do, 1 already finished" in rerun.stdout
    assert "submitted 1 SLURM job(s)" in rerun.stdout
    after = finished_runs(root)
    assert sorted(r.seed for r in after.values()) == [0, 1] and before.keys() <= after.keys()
    assert {rid: (after[rid].path / store.FINISHED).read_text() for rid in before} == stamp  # not redone


def test_failing_job_shows_its_error_not_only_a_log_path(slurm_env, tmp_path, monkeypatch):
    """A job that dies before its runs start (here: its MNIST folder is missing — only the jobs
    get that variable, through sbatch's --export) must show the error's last lines, not a log path,
    in the sweep result and in the command's output."""
    from ogae_core.experiments import preset_configs, run_sweep

    missing = tmp_path / "no-mnist-here"
    expected = f"MNIST directory {missing} does not exist"
    monkeypatch.setenv("SBATCH_EXPORT", f"ALL,OGAE_MNIST_DIR={missing}")
    configs = preset_configs("smoke", methods=["ae-recons"])
    result = run_sweep(configs, tmp_path / "api", EXPERIMENT, executor="slurm", slurm={"cpus": 1}, log=None)
    assert not result.ok and expected in str(result.failed[configs[0].run_id()])

    env = {**slurm_env, "SBATCH_EXPORT": f"ALL,OGAE_MNIST_DIR={missing}"}
    out = ogae(bench(tmp_path / "runs", "--methods", "ae-recons", *slurm()), env, timeout=600)
    assert out.returncode != 0
    assert not finished_runs(tmp_path / "runs")
    assert expected in out.stdout, out.stdout


def test_no_wait_submission_then_a_later_command_collects(slurm_cluster, slurm_env, tmp_path):
    args = bench(tmp_path / "runs", "--methods", "ae-recons", "--seeds", "0", "1", *slurm("--jobs", "2"))
    submitted = ogae([*args, "--no-wait"], slurm_env, timeout=300)
    assert submitted.returncode == 0, submitted.stdout
    assert "submitted 2 SLURM job(s)" in submitted.stdout
    slurm_cluster.wait_idle(timeout=600)
    collected = ogae(args, slurm_env, timeout=300)
    assert collected.returncode == 0, collected.stdout
    assert "0 run(s) to do, 2 already finished" in collected.stdout
    assert "submitted" not in collected.stdout
    runs = finished_runs(tmp_path / "runs")
    assert sorted(r.seed for r in runs.values()) == [0, 1]
    assert all(r.has(store.SCORES_FILE) for r in runs.values())
