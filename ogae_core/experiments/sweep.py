"""Run many configurations through submitit's executor interface, resumably.

* ``executor="local"`` (default): :class:`submitit.LocalExecutor`, one process per run, at
  most ``jobs`` at a time, each with ``cpu_count // jobs`` torch threads.
* ``executor="slurm"``: :class:`submitit.AutoExecutor` on a SLURM cluster (one array job,
  ``jobs`` tasks in parallel; partition, GPUs, CPUs and time limit as options).
* ``executor="inline"``: in this process, one run after another (notebooks, tests, debugging).

The sweep knows no experiment by name: every configuration belongs to an experiment kind
(:mod:`ogae_core.experiments.kinds`, found through the config's class), which supplies the
function that runs a group. Configurations that share a training (same ``training_key()``,
e.g. MNIST-C configurations that differ only in scoring or final-OCSVM options) form one
job. Every executor runs :func:`run_group_job`, which calls the kind's ``run_training_group``
(it trains once and writes one run directory per configuration, atomically) and returns a
typed outcome per run (:class:`~ogae_core.experiments.kinds.RunFinished` or
:class:`~ogae_core.experiments.kinds.RunFailed`). Submitit's job files live in
``<runs-root>/<experiment>/.submitit/`` (hidden from the run store).

Errors. Every configuration is checked by its kind's ``validate`` hook before anything is
submitted; a bad one stops the sweep at once (:class:`InvalidConfigError`, naming the problem
and the configurations). A job that fails reports its exception line as the run's message and
the tail of its traceback (or, for a job killed or cancelled without a result, of its stderr)
as ``RunFailed.traceback``; the log shows both, not only a log path.

Resume. Configurations whose run already exists are skipped before submission (and again
inside the job), so an interrupted sweep — killed at any point — resumes by running the same
command again; finished runs are never redone nor lost. A run id does not cover the data (nor
settings resolved from presets at run time), so every finished run the sweep would reuse is
first compared with the configuration's current data hash and resolved settings (the kind's
hooks; :mod:`ogae_core.experiments.resume`): before anything starts, inside each job (runs
another process finished meanwhile, claims of sweeps on other data) and, at the end, for runs
another process finished. A mismatch raises :class:`~ogae_core.experiments.resume.StaleRunError`
naming the runs; a stale run is never reused nor overwritten.

Claims (two sweeps on one store). A job claims its training group before it trains
(:mod:`ogae_core.runs.claims`: ``<experiment>/.claims/<training key>.json``, created atomically,
holding pid, host, start time and the job's time limit; removed when the job ends). A job
that finds the group claimed by a live process waits for the claim to go, then does only
what is still missing: runs the other process finished count as skipped ("already
finished"), never as failed, and nothing is trained twice at the same time. The local
executor submits groups claimed by another sweep last, so it works on the others meanwhile.
Stale claims (pid dead on this host, or older than their time limit plus a minute) are taken
over.

Interruptions. Ctrl-C (``KeyboardInterrupt``; the CLI turns SIGTERM into one) stops the local
executor's jobs — each submitit controller gets SIGINT, which stops its worker; any still
alive after a grace period are killed — and raises :class:`SweepInterrupted`, whose message
says what was kept. Runs in progress are discarded (at most a hidden partial directory
remains); finished runs stay. SLURM jobs are not cancelled: the message names the array to
``scancel`` and says that rerunning the command collects their runs.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ogae_core.experiments.jobs import job_failure, run_group_job, stop_local_jobs
from ogae_core.experiments.kinds import ExperimentKind, RunFailed, RunFinished, kind_of
from ogae_core.validation import check_integer

EXECUTORS = ("local", "slurm", "inline")


@dataclass
class SweepResult:
    """What a sweep did.

    Attributes
    ----------
    finished : list of Path
        Runs made by this call.
    skipped : list of Path
        Runs that already existed, or that another process finished meanwhile (not redone).
    failed : dict
        ``{run id: RunFailed}`` (``str()`` of one is its message; ``.traceback`` the tail of
        the traceback or of the job's stderr).
    submitted : list of str
        SLURM job ids submitted by this call (their runs appear when the jobs finish).
    partial : list of Path
        Leftover temporary directories of runs interrupted earlier (never listed as runs;
        remove them with :func:`ogae_core.runs.remove_partial_run` when no sweep is running).
    seconds : float
        Wall-clock time of the call.
    """

    finished: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[str, RunFailed] = field(default_factory=dict)
    submitted: list[str] = field(default_factory=list)
    partial: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """One line, e.g. ``4 runs: 3 finished, 1 skipped (already done), 0 failed in 12.3 s``."""
        n = len(self.finished) + len(self.skipped) + len(self.failed)
        line = (f"{n} runs: {len(self.finished)} finished, {len(self.skipped)} skipped (already done), "
                f"{len(self.failed)} failed in {self.seconds:.1f} s")
        if self.submitted:
            line += f"; {len(self.submitted)} SLURM job(s) submitted"
        if self.partial:
            line += f"; {len(self.partial)} leftover partial run(s) from interrupted writes"
        return line


def _resolve_root(runs_root: str | Path | None) -> Path:
    from ogae_core.runs import default_root

    return Path(runs_root) if runs_root is not None else default_root()


def pending_configs(configs: Sequence[Any], runs_root: str | Path | None, experiment: str) -> tuple[list[Any], list[Path]]:
    """Split configs into those without a finished run and the paths of those with one.

    Duplicated configurations (same run id) are run once.
    """
    from ogae_core.runs import is_finished

    root = _resolve_root(runs_root)
    todo, done, seen = [], [], set()
    for c in configs:
        rid = c.run_id()
        if rid in seen:
            continue
        seen.add(rid)
        path = root / experiment / rid
        (done.append(path) if is_finished(path) else todo.append(c))
    return todo, done


def training_groups(todo: Sequence[Any], all_configs: Sequence[Any]) -> list[list[Any]]:
    """Pending configurations grouped by training key, in order of first appearance.

    Each group also carries the finished configurations of the same training (from
    ``all_configs``), so that a resumed group loads the trained network instead of training again.

    Examples
    --------
    >>> from ogae_core.experiments import RunConfig
    >>> a, b = RunConfig("ae", "recons"), RunConfig("ae", "ocsvm")
    >>> [len(g) for g in training_groups([b], [a, b])]
    [2]
    """
    keys: dict[int, tuple[str, str]] = {}  # id(config) -> (training key, run id): each hashed once

    def keys_of(c: Any) -> tuple[str, str]:
        if id(c) not in keys:
            keys[id(c)] = (c.training_key(), c.run_id())
        return keys[id(c)]

    pending = {keys_of(c)[1] for c in todo}
    groups: dict[str, list[tuple[str, Any]]] = {}
    for c in todo:
        groups.setdefault(keys_of(c)[0], [])
    seen = set()
    for c in list(all_configs) + list(todo):
        key, rid = keys_of(c)
        if key in groups and rid not in seen:
            seen.add(rid)
            groups[key].append((rid, c))
    # finished members first: they are the source of the trained network
    return [[c for _, c in sorted(g, key=lambda member: member[0] in pending)] for g in groups.values()]


def validate_configs(configs: Sequence[Any]) -> None:
    """Refuse configurations that cannot run, before anything starts (the kinds' ``validate`` hooks).

    Raises
    ------
    InvalidConfigError
        Naming every distinct problem and the configurations it concerns.

    Examples
    --------
    >>> from ogae_core.experiments import RunConfig, TaskSpec
    >>> validate_configs([RunConfig("ae", "recons", task=TaskSpec(normal=3, anomaly=3))])
    Traceback (most recent call last):
    ...
    ogae_core.experiments.sweep.InvalidConfigError: invalid configuration, nothing was started: normal and anomaly digits must differ (ae-recons seed 0)
    """
    problems: dict[str, list[str]] = {}
    for c in configs:
        kind = kind_of(c)  # ValueError for an object that is no kind's config
        if kind.validate is None:
            continue
        try:
            kind.validate(c)
        except ValueError as err:
            problems.setdefault(str(err), []).append(f"{getattr(c, 'label', c)} seed {getattr(c, 'seed', '?')}")
    if problems:
        parts = [f"{msg} ({', '.join(who[:3])}{f' and {len(who) - 3} more' if len(who) > 3 else ''})"
                 for msg, who in problems.items()]
        noun = "configuration" if sum(map(len, problems.values())) == 1 else "configurations"
        raise InvalidConfigError(f"invalid {noun}, nothing was started: " + "; ".join(parts))


class InvalidConfigError(ValueError):
    """A configuration of a sweep cannot run (found before any job started)."""


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C or SIGTERM; the message says what became of its jobs and runs."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# ------------------------------------------------------------------ reporting
#: Lines of a failure's traceback / stderr tail that the sweep's log shows.
LOG_TAIL_LINES = 6


class _Progress:
    """Numbering and reporting of the pending configurations across groups."""

    def __init__(self, n: int, exp_dir: Path, log) -> None:
        self.n, self.k, self.exp_dir, self.log = n, 0, exp_dir, log
        self.last_detail = None
        self.foreign: list[Any] = []  # configs whose run another process made (checked at the end)

    def record(self, group: Sequence[Any], pending: set, outcomes: Mapping | None, failure: RunFailed | None,
               result: SweepResult) -> None:
        """Record the outcome of every pending configuration of a group (``failure``: the whole job failed)."""
        from ogae_core.runs import is_finished

        for cfg in group:
            rid = cfg.run_id()
            if rid not in pending:
                continue
            self.k += 1
            if failure is not None:
                outcome = RunFailed(rid, failure.message, failure.traceback)
            else:
                outcome = (outcomes or {}).get(rid) or RunFailed(rid, "no result for this configuration")
            if isinstance(outcome, RunFailed) and is_finished(self.exp_dir / rid):
                outcome = RunFinished(rid, self.exp_dir / rid)  # written before its job failed (or by another process)
                self.foreign.append(cfg)
            elif isinstance(outcome, RunFinished) and outcome.preexisting:
                self.foreign.append(cfg)
            if isinstance(outcome, RunFinished):
                (result.skipped if outcome.preexisting else result.finished).append(Path(outcome.path))
            else:
                result.failed[rid] = outcome
            self.report(cfg, outcome)

    def report(self, cfg: Any, outcome: Any) -> None:
        log, k, n = self.log, self.k, self.n
        if log is None:
            return
        if isinstance(outcome, RunFailed):
            lines = outcome.message.strip().splitlines() or ["(no message)"]
            log(f"[{k}/{n}] FAILED {cfg.label} seed {cfg.seed}: {lines[-1]}")
            detail = [ln for ln in outcome.traceback.splitlines() if ln.strip(" ^~")]  # no caret-only lines
            while detail and detail[-1].strip() in {ln.strip() for ln in lines}:
                detail.pop()
            if detail and detail == self.last_detail:
                log("    (same error as above)")
            elif detail:
                for line in detail[-LOG_TAIL_LINES:]:
                    log(f"    {line}")
            self.last_detail = detail
            return
        if outcome.preexisting:
            log(f"[{k}/{n}] {cfg.label} seed {cfg.seed}: already finished (by another process) -> {outcome.path.name}")
            return
        from ogae_core.runs import read_run

        summary = kind_of(cfg).run_summary
        detail = f"{summary(read_run(outcome.path))} " if summary is not None else ""
        log(f"[{k}/{n}] {cfg.label} seed {cfg.seed}: {detail}-> {outcome.path.name}")


# ------------------------------------------------------------------ executors
def _run_inline(groups, pending, root, experiment, result, progress, run_kwargs, time_limit_s):
    for group in groups:
        try:
            outcomes = run_group_job(kind_of(group[0]).run_training_group, group, str(root), experiment,
                                     time_limit_s=time_limit_s, **run_kwargs)
        except KeyboardInterrupt:
            raise SweepInterrupted(
                f"interrupted: the run in progress was discarded; {_count_finished(root / experiment, pending)} of "
                f"the {len(pending)} run(s) to do are finished and kept. Run the same command again to resume.") from None
        progress.record(group, pending, outcomes, None, result)


def _count_finished(exp_dir: Path, run_ids) -> int:
    from ogae_core.runs import is_finished

    return sum(is_finished(exp_dir / rid) for rid in run_ids)


def _collect(job, group, pending, progress, result) -> None:
    try:
        outcomes, failure = job.result(), None
    except Exception as err:  # noqa: BLE001 - submitit re-raises the job's failure here (with its stderr)
        try:
            stderr = job.stderr() or ""
        except Exception:  # noqa: BLE001 - no log (yet) is no reason to lose the failure
            stderr = ""
        outcomes, failure = None, job_failure(group[0].run_id(), err, stderr, job.paths.stderr)
    progress.record(group, pending, outcomes, failure, result)


def _next_group(queue: list, exp_dir: Path, nothing_running: bool, deferred: set, log) -> list | None:
    """The first queued group no other process is training; a claimed one only when nothing of
    ours runs (its job then waits for the claim). ``None``: wait."""
    from ogae_core.runs import holder

    for i, group in enumerate(queue):
        key = group[0].training_key()
        other = holder(exp_dir, key)
        if other is None:
            return queue.pop(i)
        if log is not None and key not in deferred:
            log(f"a training of {group[0].label} seed {group[0].seed} is claimed by {other.describe()} "
                "(another sweep); doing it last")
        deferred.add(key)
    return queue.pop(0) if queue and nothing_running else None


def _run_local(groups, pending, root, experiment, result, progress, run_kwargs, jobs, timeout_min, poll_s):
    import submitit

    exp_dir = root / experiment
    folder = exp_dir / ".submitit"
    executor = submitit.LocalExecutor(folder=str(folder))
    executor.update_parameters(timeout_min=timeout_min)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    queue = list(groups)
    running: list[tuple[Any, list]] = []
    deferred: set = set()
    try:
        while queue or running:
            while queue and len(running) < jobs:
                group = _next_group(queue, exp_dir, not running, deferred, progress.log)
                if group is None:
                    break
                job = executor.submit(run_group_job, kind_of(group[0]).run_training_group, group, str(root.resolve()),
                                      experiment, time_limit_s=timeout_min * 60, claim_poll_s=poll_s,
                                      threads=threads, **run_kwargs)
                running.append((job, group))
            still = []
            for job, group in running:
                if job.done():
                    _collect(job, group, pending, progress, result)
                else:
                    still.append((job, group))
            if len(still) == len(running) and (still or queue):
                time.sleep(poll_s)
            running = still
    except BaseException as err:
        stop_local_jobs([job for job, _ in running])  # an interrupted driver takes its workers down
        if isinstance(err, KeyboardInterrupt):
            kept = _count_finished(exp_dir, pending)
            raise SweepInterrupted(
                f"interrupted: stopped {len(running)} local job(s) (their unfinished runs were discarded); "
                f"{kept} of the {len(pending)} run(s) to do are finished and kept in {exp_dir}. "
                "Run the same command again to resume.") from None
        raise


def _run_slurm(groups, pending, root, experiment, result, progress, run_kwargs, jobs, timeout_min, slurm, wait):
    import submitit

    folder = root / experiment / ".submitit"
    executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
    params: dict[str, Any] = {"timeout_min": timeout_min, "slurm_array_parallelism": jobs, "name": f"ogae-{experiment}"}
    for key, name in (("partition", "slurm_partition"), ("gpus", "gpus_per_node"), ("cpus", "cpus_per_task"),
                      ("mem_gb", "mem_gb"), ("account", "slurm_account"), ("qos", "slurm_qos")):
        if slurm.get(key) is not None:
            params[name] = slurm[key]
    executor.update_parameters(**params)
    kwargs = dict(run_kwargs)
    if slurm.get("gpus"):
        kwargs["device"] = "cuda"
    if slurm.get("cpus"):
        kwargs["threads"] = int(slurm["cpus"])
    with executor.batch():
        submitted = [(executor.submit(run_group_job, kind_of(group[0]).run_training_group, group, str(root.resolve()),
                                      experiment, time_limit_s=timeout_min * 60, **kwargs), group) for group in groups]
    result.submitted = [job.job_id for job, _ in submitted]
    array = submitted[0][0].job_id.split("_")[0] if submitted else "-"
    if progress.log is not None:
        progress.log(f"submitted {len(submitted)} SLURM job(s) (array {array})")
    if not wait:
        return
    try:
        for job, group in submitted:
            _collect(job, group, pending, progress, result)
    except KeyboardInterrupt:
        raise SweepInterrupted(
            f"interrupted: the SLURM job(s) of array {array} keep running on the cluster (logs in {folder}); "
            f"run the same command again to collect their runs, or `scancel {array}` to stop them.") from None


def run_sweep(configs: Sequence[Any], runs_root: str | Path | None = None, experiment: str = "mnistc", *,
              executor: str = "local", jobs: int = 1, timeout_min: float = 24 * 60, device: str = "cpu",
              slurm: dict | None = None, wait: bool = True, log: Callable[[str], None] | None = print,
              train_log: bool = False, poll_s: float = 1.0) -> SweepResult:
    """Run every configuration that has no finished run yet.

    Parameters
    ----------
    configs : sequence of config objects of registered experiment kinds
        E.g. :func:`~ogae_core.experiments.presets.preset_configs` (MNIST-C ``RunConfig``).
    runs_root : path, optional
        Run store root (default ``$OGAE_RUNS`` or ``./runs``).
    experiment : str
        Experiment directory.
    executor : {"local", "slurm", "inline"}
    jobs : int
        Runs at the same time (local processes, or SLURM array parallelism).
    timeout_min : float
        Time limit of one job (one shared training and its runs; minutes).
    device : str
        Torch device of every run (SLURM with GPUs: ``"cuda"``).
    slurm : dict, optional
        ``partition``, ``gpus`` (per node), ``cpus`` (per task), ``mem_gb``, ``account``, ``qos``.
    wait : bool
        SLURM: wait for the jobs (``False``: submit and return; run again to collect).
    log : callable or None
        Receives one line per finished or failed run.
    train_log : bool
        Let the trainer print one line per epoch (local/SLURM: into the job's log file).

    Returns
    -------
    SweepResult

    Raises
    ------
    InvalidConfigError
        A configuration its kind refuses (before anything starts).
    StaleRunError
        A finished run (or another sweep's claim) of these configurations was made on other data
        or resolved settings than they would use now (see :mod:`ogae_core.experiments.resume`).

    Examples
    --------
    >>> from ogae_core.experiments import preset_configs
    >>> res = run_sweep(preset_configs("smoke"), "/tmp/ogae-doc-runs", "smoke", executor="inline")  # doctest: +SKIP
    >>> res.summary()  # doctest: +SKIP
    '3 runs: 3 finished, 0 skipped (already done), 0 failed in 41.2 s'
    """
    from ogae_core.experiments.resume import check_claims, check_finished_runs
    from ogae_core.runs import partial_runs

    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
    check_integer("jobs", jobs, minimum=1)
    if not timeout_min > 0:
        raise ValueError(f"timeout_min must be > 0; got {timeout_min!r}")
    kinds: dict[str, ExperimentKind] = {}
    for c in configs:
        kind = kind_of(c)  # ValueError for an object that is no kind's config
        kinds.setdefault(kind.name, kind)
    validate_configs(configs)
    t0 = time.perf_counter()
    root = _resolve_root(runs_root)
    result = SweepResult()
    todo, result.skipped = pending_configs(configs, root, experiment)
    check_finished_runs(configs, root / experiment)  # StaleRunError: a finished run of other data or settings
    result.partial = partial_runs(root, experiment) if (root / experiment).is_dir() else []
    if log is not None:
        log(f"{experiment}: {len(todo)} run(s) to do, {len(result.skipped)} already finished ({root / experiment})")
    for kind in kinds.values():
        if kind.prepare is not None:  # e.g. fill on-disk caches once, before the workers (or SLURM jobs) start
            kind.prepare([c for c in todo if isinstance(c, kind.config_type)])
    run_kwargs = {"device": device, "log": train_log}
    groups = training_groups(todo, configs)
    pending = {c.run_id() for c in todo}
    if log is not None and todo:
        log(f"{len(groups)} training(s) shared by the {len(todo)} run(s)")
    if todo:
        check_claims(groups, root / experiment)
    progress = _Progress(len(pending), root / experiment, log)
    try:
        if executor == "inline":
            _run_inline(groups, pending, root, experiment, result, progress, run_kwargs, timeout_min * 60)
        elif executor == "local" and todo:
            _run_local(groups, pending, root, experiment, result, progress, run_kwargs, jobs, timeout_min, poll_s)
        elif executor == "slurm" and todo:
            _run_slurm(groups, pending, root, experiment, result, progress, run_kwargs, jobs, timeout_min,
                       dict(slurm or {}), wait)
    finally:
        result.seconds = time.perf_counter() - t0
    if log is not None:
        log(result.summary())
    check_finished_runs(progress.foreign, root / experiment,  # runs another process made meanwhile
                        "this sweep's own runs are kept, the stale ones were not reused")
    return result
