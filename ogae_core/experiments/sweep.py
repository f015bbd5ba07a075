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
job. Every executor calls the kind's ``run_training_group``, which trains once and writes one
run directory per configuration, atomically, and returns a typed outcome per run
(:class:`~ogae_core.experiments.kinds.RunFinished` or
:class:`~ogae_core.experiments.kinds.RunFailed`). Configurations whose run already exists are skipped
before submission (and again inside the job), so an interrupted sweep — killed at any point —
resumes by running the same command again; finished runs are never redone nor lost. Submitit's
job files live in ``<runs-root>/<experiment>/.submitit/`` (hidden from the run store).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ogae_core.experiments.kinds import ExperimentKind, RunFailed, RunFinished, kind_of, tail
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
        Runs that already existed (not redone).
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
    pending = {c.run_id() for c in todo}
    groups: dict[str, list[Any]] = {}
    for c in todo:
        groups.setdefault(c.training_key(), [])
    seen = set()
    for c in list(all_configs) + list(todo):
        key, rid = c.training_key(), c.run_id()
        if key in groups and rid not in seen:
            seen.add(rid)
            groups[key].append(c)
    # finished members first: they are the source of the trained network
    return [sorted(g, key=lambda c: c.run_id() in pending) for g in groups.values()]


def _report(log: Callable[[str], None] | None, k: int, n: int, cfg: Any, outcome: RunFinished | RunFailed) -> None:
    if log is None:
        return
    if isinstance(outcome, RunFailed):
        last = outcome.message.strip().splitlines()[-1] if outcome.message.strip() else outcome.message
        log(f"[{k}/{n}] FAILED {cfg.label} seed {cfg.seed}: {last}")
        return
    from ogae_core.runs import read_run

    summary = kind_of(cfg).run_summary
    detail = f"{summary(read_run(outcome.path))} " if summary is not None else ""
    log(f"[{k}/{n}] {cfg.label} seed {cfg.seed}: {detail}-> {outcome.path.name}")


class _Progress:
    """Numbering of finished configurations across groups."""

    def __init__(self, n: int) -> None:
        self.n, self.k = n, 0

    def record(self, group: Sequence[Any], pending: set, outcomes: dict | None, failure: RunFailed | None,
               result: SweepResult, log) -> None:
        """Record the outcome of every pending configuration of a group (``failure``: the whole job failed)."""
        for cfg in group:
            rid = cfg.run_id()
            if rid not in pending:
                continue
            self.k += 1
            if failure is not None:
                outcome = RunFailed(rid, failure.message, failure.traceback)
            else:
                outcome = (outcomes or {}).get(rid) or RunFailed(rid, "no result for this configuration")
            if isinstance(outcome, RunFinished):
                result.finished.append(Path(outcome.path))
            else:
                result.failed[rid] = outcome
            _report(log, self.k, self.n, cfg, outcome)


def _submit_target(kind: ExperimentKind):
    """The function a worker runs for ``kind``: the kind's own (pickled by reference, so a kind
    defined in any importable module works in submitit's workers)."""
    return kind.run_training_group


def _run_inline(groups, pending, root, experiment, result, log, run_kwargs):
    progress = _Progress(len(pending))
    for group in groups:
        try:
            outcomes, failure = kind_of(group[0]).run_training_group(group, root, experiment, **run_kwargs), None
        except Exception as err:  # noqa: BLE001 - one failed group must not stop the sweep
            outcomes, failure = None, RunFailed.from_exception(group[0].run_id(), err)
        progress.record(group, pending, outcomes, failure, result, log)


def _collect(job, group, pending, progress, result, log) -> None:
    try:
        outcomes, failure = job.result(), None
    except Exception as err:  # noqa: BLE001 - submitit re-raises the job's failure here (with its stderr)
        outcomes, failure = None, RunFailed(group[0].run_id(), f"{type(err).__name__}: {tail(str(err), 1)}",
                                            tail(str(err)))
    progress.record(group, pending, outcomes, failure, result, log)


def _run_local(groups, pending, root, experiment, result, log, run_kwargs, jobs, timeout_min, poll_s):
    import submitit

    folder = root / experiment / ".submitit"
    executor = submitit.LocalExecutor(folder=str(folder))
    executor.update_parameters(timeout_min=timeout_min)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    queue = list(groups)
    running: list[tuple[Any, list]] = []
    progress = _Progress(len(pending))
    try:
        while queue or running:
            while queue and len(running) < jobs:
                group = queue.pop(0)
                job = executor.submit(_submit_target(kind_of(group[0])), group, str(root.resolve()), experiment,
                                      threads=threads, **run_kwargs)
                running.append((job, group))
            still = []
            for job, group in running:
                if job.done():
                    _collect(job, group, pending, progress, result, log)
                else:
                    still.append((job, group))
            if len(still) == len(running) and (still or queue):
                time.sleep(poll_s)
            running = still
    except BaseException:
        for job, _ in running:  # an interrupted driver takes its workers down; finished runs stay
            job.cancel(check=False)
        raise


def _run_slurm(groups, pending, root, experiment, result, log, run_kwargs, jobs, timeout_min, slurm, wait):
    import submitit

    executor = submitit.AutoExecutor(folder=str(root / experiment / ".submitit"), cluster="slurm")
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
        submitted = [(executor.submit(_submit_target(kind_of(group[0])), group, str(root.resolve()), experiment,
                                      **kwargs), group) for group in groups]
    result.submitted = [job.job_id for job, _ in submitted]
    if log is not None:
        log(f"submitted {len(submitted)} SLURM job(s) (array {submitted[0][0].job_id.split('_')[0] if submitted else '-'})")
    if not wait:
        return
    progress = _Progress(len(pending))
    for job, group in submitted:
        _collect(job, group, pending, progress, result, log)


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

    Examples
    --------
    >>> from ogae_core.experiments import preset_configs
    >>> res = run_sweep(preset_configs("smoke"), "/tmp/ogae-doc-runs", "smoke", executor="inline")  # doctest: +SKIP
    >>> res.summary()  # doctest: +SKIP
    '3 runs: 3 finished, 0 skipped (already done), 0 failed in 41.2 s'
    """
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
    t0 = time.perf_counter()
    root = _resolve_root(runs_root)
    result = SweepResult()
    todo, result.skipped = pending_configs(configs, root, experiment)
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
    try:
        if executor == "inline":
            _run_inline(groups, pending, root, experiment, result, log, run_kwargs)
        elif executor == "local" and todo:
            _run_local(groups, pending, root, experiment, result, log, run_kwargs, jobs, timeout_min, poll_s)
        elif executor == "slurm" and todo:
            _run_slurm(groups, pending, root, experiment, result, log, run_kwargs, jobs, timeout_min, dict(slurm or {}), wait)
    finally:
        result.seconds = time.perf_counter() - t0
    if log is not None:
        log(result.summary())
    return result
