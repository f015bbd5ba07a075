"""What runs inside a sweep's job, and how the driver reads and stops jobs.

* :func:`run_group_job` — every executor's job: claim the training group
  (:mod:`ogae_core.runs.claims`, recording the group's data fingerprint), check that the runs
  found finished were made on the current data (:mod:`ogae_core.experiments.resume`), run the
  kind's group function, release the claim; runs found finished come back as
  ``RunFinished(..., preexisting=True)``.
* :func:`job_failure` — a readable :class:`~ogae_core.experiments.kinds.RunFailed` from the
  error submitit raises for a failed job (exception line, traceback or stderr tail).
* :func:`stop_local_jobs` — stop submitit local jobs and their workers (an interrupted sweep).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ogae_core.experiments.kinds import RunFailed, RunFinished, tail


def _wait_for_claim(exp_dir: Path, key: str, time_limit_s: float, poll_s: float, fingerprint: str = ""):
    from ogae_core.experiments.resume import stale_error
    from ogae_core.runs import claim_path, holder, try_claim

    announced = False
    while True:
        claim = try_claim(exp_dir, key, time_limit_s, fingerprint)
        if claim is not None:
            return claim
        other = holder(exp_dir, key)
        if other is not None and other.fingerprint and fingerprint and other.fingerprint != fingerprint:
            raise stale_error({claim_path(exp_dir, key): [
                f"training claimed by {other.describe()} with fingerprint {other.fingerprint}, "
                f"this job's is {fingerprint}"]}, "this job stopped before training")
        if not announced and other is not None:
            print(f"training {key} is claimed by {other.describe()}; waiting for it", flush=True)
            announced = True
        time.sleep(poll_s)


def _settle(outcomes: Mapping[str, Any], exp_dir: Path, before: set) -> dict[str, Any]:
    """Outcomes of a job, with runs found finished (before, or made meanwhile by another
    process, even if this job then failed on them) marked ``preexisting``."""
    from ogae_core.runs import is_finished

    out = {}
    for rid, outcome in outcomes.items():
        path = exp_dir / rid
        if isinstance(outcome, RunFinished) and rid in before:
            outcome = RunFinished(rid, outcome.path, preexisting=True)
        elif isinstance(outcome, RunFailed) and is_finished(path):
            outcome = RunFinished(rid, path, preexisting=True)
        out[rid] = outcome
    return out


def run_group_job(run_group: Callable[..., Mapping[str, Any]], group: Sequence[Any], runs_root: str,
                  experiment: str, *, time_limit_s: float, claim_poll_s: float = 1.0, **kwargs: Any) -> dict[str, Any]:
    """What every executor runs for one training group: claim it, run it, release it.

    Waits while another process holds the group's claim (:mod:`ogae_core.runs.claims`); runs
    that are finished then (by anyone) are not redone and come back as
    ``RunFinished(..., preexisting=True)``. A finished run of the group made on other data or
    settings, or a claim held by a process training on other data, raises
    :class:`~ogae_core.experiments.resume.StaleRunError` before anything is trained. An error of the kind's group function becomes a
    :class:`RunFailed` of every run it did not finish. ``kwargs`` go to ``run_group``.
    """
    from ogae_core.experiments.resume import check_finished_runs, group_fingerprint
    from ogae_core.runs import is_finished, release_claim

    if os.environ.get("SUBMITIT_EXECUTOR") == "local":  # a local worker: interruptible by the driver's SIGINT
        import signal                                   # even when started with SIGINT ignored

        signal.signal(signal.SIGINT, signal.default_int_handler)
    exp_dir = Path(runs_root) / experiment
    key = group[0].training_key()
    claim = _wait_for_claim(exp_dir, key, time_limit_s, claim_poll_s, group_fingerprint(group[0]))
    try:
        before = {c.run_id() for c in group if is_finished(exp_dir / c.run_id())}
        check_finished_runs([c for c in group if c.run_id() in before], exp_dir, "this job stopped before training")
        if len(before) == len(group):
            outcomes: Mapping[str, Any] = {rid: RunFinished(rid, exp_dir / rid) for rid in before}
        else:
            try:
                outcomes = run_group(group, runs_root, experiment, **kwargs)
            except Exception as err:  # noqa: BLE001 - reported per run, with its traceback
                failure = RunFailed.from_exception(group[0].run_id(), err)
                outcomes = {c.run_id(): (RunFinished(c.run_id(), exp_dir / c.run_id())
                                         if is_finished(exp_dir / c.run_id())
                                         else RunFailed(c.run_id(), failure.message, failure.traceback))
                            for c in group}
        return _settle(outcomes, exp_dir, before)
    finally:
        release_claim(exp_dir, key, claim)


_SUBMITIT_INFO = re.compile(r"^submitit (INFO|DEBUG) \(")


def job_failure(run_id: str, err: BaseException, stderr: str = "", log_path: str | Path | None = None) -> RunFailed:
    r"""A :class:`RunFailed` from the error submitit raises for a job, readable without the log.

    A job whose function raised carries the worker's traceback (message: its last exception
    line); a job that stopped without a result (killed, cancelled, out of time or memory)
    is described by the tail of its stderr. The log path is appended to the traceback tail.

    Examples
    --------
    >>> text = ("Job (task=0) failed during processing with trace:\n----------------------\n"
    ...         "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
    ...         "ValueError: normal and anomaly digits must differ\n----------------------\n"
    ...         "You can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n  - a\n  - b")
    >>> str(job_failure("r", RuntimeError(text)))
    'ValueError: normal and anomaly digits must differ'
    """
    text = str(err)
    marker = "failed during processing with trace:"
    if marker in text:
        trace = text.split(marker, 1)[1].split("-" * 22)
        body = trace[1] if len(trace) > 1 else trace[0]
        lines = [ln for ln in body.strip().splitlines() if ln.strip()]
        start = max((i for i, ln in enumerate(lines) if ln.startswith("  ")), default=-1) + 1
        message = "\n".join(lines[start:]) or f"{type(err).__name__}: job failed"
        detail = tail(body)
    else:
        raw = stderr or text.split("-" * 40, 1)[-1]
        err_tail = tail("\n".join(ln for ln in raw.splitlines() if not _SUBMITIT_INFO.match(ln)))
        first = text.strip().splitlines()[1] if len(text.strip().splitlines()) > 1 else text.strip()
        state = first[first.find("(state"):] if "(state" in first else ""
        last = err_tail.splitlines()[-1].strip() if err_tail.strip() else "no error output (killed?)"
        message = f"the job stopped without a result {state}: {last}".replace("  ", " ")
        detail = err_tail
    if log_path is not None:
        detail = f"{detail}\n(full log: {log_path})"
    return RunFailed(run_id, message, detail)


def _child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux ``/proc``; empty elsewhere)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def stop_local_jobs(jobs: Sequence[Any], grace_s: float = 5.0) -> None:
    """Stop submitit local jobs and their workers.

    Each worker (or, where its pid cannot be found, its controller) gets SIGINT: the worker stops its run (a run interrupted
    mid-write leaves no run, at most a hidden partial directory), releases its claim and
    exits. Workers and controllers still alive after ``grace_s`` (e.g. started with SIGINT
    ignored) are killed with SIGKILL.
    """
    import signal

    def send(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    workers = {job.job_id: _child_pids(int(job.job_id)) for job in jobs}
    for job in jobs:
        for pid in workers[job.job_id]:
            send(pid, signal.SIGINT)  # its controller then ends by itself
        if not workers[job.job_id]:
            job.cancel(check=False)  # SIGINT to the controller (no worker found, e.g. no /proc)
    deadline = time.monotonic() + grace_s
    while any(not job.done() for job in jobs) and time.monotonic() < deadline:
        time.sleep(0.1)
    for job in jobs:
        if not job.done():
            for pid in [*workers[job.job_id], *_child_pids(int(job.job_id)), int(job.job_id)]:
                send(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    while any(not job.done() for job in jobs) and time.monotonic() < deadline:
        time.sleep(0.1)
