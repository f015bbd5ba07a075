"""Experiment kinds: the plug-in interface of the sweep machinery, and their registry.

An experiment kind (MNIST-C, brain MRI, a toy kind in the tests) supplies

* a frozen **config type** with ``kind`` (a class attribute naming the kind), ``label``,
  ``seed``, ``to_dict()`` (JSON, holding ``experiment_kind``), ``run_id()`` (the run
  directory name) and ``training_key()`` (configurations with equal keys share one
  training);
* :attr:`ExperimentKind.run_training_group` — prepares, trains, scores and writes a group
  of configurations that share one training, returning one :data:`RunOutcome` per run id;
* optional hooks: :attr:`~ExperimentKind.validate` (refuse a bad config before any job
  starts), :attr:`~ExperimentKind.data_hash` / :attr:`~ExperimentKind.resolved_settings`
  (what a finished run must have been made on to be resumed, see
  :mod:`ogae_core.experiments.resume`), :attr:`~ExperimentKind.prepare` (fill caches once, before workers
  start), :attr:`~ExperimentKind.run_summary` (one log line per finished run),
  :attr:`~ExperimentKind.report` (the kind's results report of one experiment),
  :attr:`~ExperimentKind.add_arguments` / :attr:`~ExperimentKind.configs_from_args` (its
  ``ogae bench <kind>`` command line).

:func:`ogae_core.experiments.run_sweep` (inline, local processes, SLURM; resume; shared
trainings), ``ogae bench <kind>``, ``ogae report`` and the dashboard only go through this
registry; none of them imports a kind's module by name. Built-in kinds are listed in
:data:`BUILTIN_KINDS` as module paths, imported on first lookup (the module registers its
kind with :func:`register_kind`).

Examples
--------
>>> "mnistc" in kind_names()
True
>>> get_kind("mnistc").name
'mnistc'
"""
from __future__ import annotations

import importlib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

#: Built-in kinds: name -> module that registers it when imported.
BUILTIN_KINDS: dict[str, str] = {"mnistc": "ogae_core.experiments.mnistc", "mri": "ogae_core.experiments.mri"}

#: Lines of a traceback (or of a job's stderr) kept in a failure.
TRACEBACK_LINES = 15


@dataclass(frozen=True)
class RunFinished:
    """A configuration whose run directory exists.

    ``preexisting`` is True when the job found the run finished instead of making it (made
    earlier, or meanwhile by another process); the sweep then counts it as skipped.
    """

    run_id: str
    path: Path
    preexisting: bool = False

    ok = True


@dataclass(frozen=True)
class RunFailed:
    """A configuration that failed: a one-line message and the tail of the traceback or stderr.

    Examples
    --------
    >>> f = RunFailed.from_exception("r1", ValueError("bad lam"))
    >>> f.message, str(f)
    ('ValueError: bad lam', 'ValueError: bad lam')
    """

    run_id: str
    message: str
    traceback: str = ""

    ok = False

    def __str__(self) -> str:
        return self.message

    @classmethod
    def from_exception(cls, run_id: str, err: BaseException, prefix: str = "") -> "RunFailed":
        """A failure from an exception (message ``Type: text``; traceback tail kept)."""
        tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        return cls(run_id, f"{prefix}{type(err).__name__}: {err}", tail(tb))


#: What :attr:`ExperimentKind.run_training_group` returns per run id.
RunOutcome = Union[RunFinished, RunFailed]


def tail(text: str, lines: int = TRACEBACK_LINES) -> str:
    """The last ``lines`` lines of ``text``.

    Examples
    --------
    >>> tail("a\\nb\\nc", 2)
    'b\\nc'
    """
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class ExperimentKind:
    """One kind of experiment (see the module docstring).

    Attributes
    ----------
    name : str
        ``ogae bench <name>``; the ``experiment_kind`` of its configs.
    config_type : type
        The frozen config dataclass (``config_type.kind == name``).
    run_training_group : callable
        ``(configs, runs_root, experiment, *, device, threads, progress, log) ->
        {run id: RunOutcome}``; must be importable by name (submitit pickles it for workers).
    description : str
        One line for ``ogae bench --help``.
    validate : callable, optional
        ``(config) -> None``; raises ``ValueError`` with a readable message for a
        configuration that cannot run (e.g. equal normal and anomaly digits). The sweep calls
        it for every configuration before anything is submitted.
    data_hash : callable, optional
        ``(config) -> str``: the hash of the data the configuration would run on now, equal to
        what the kind's runs store as ``config.json["provenance"]["data_hash"]``. A resumed sweep
        compares it with every finished run it would reuse (:mod:`ogae_core.experiments.resume`).
        Should be cheap (no training; loading a cached data set is fine).
    resolved_settings : callable, optional
        ``(config) -> dict``: settings that change training but that the kind resolves at run
        time (e.g. a cohort preset's short-training defaults) instead of holding them in the
        config, so that the run id does not cover them; the kind stores them with
        ``create_run(..., resolved_settings=...)`` and a resumed sweep compares them like the
        data hash (a run that stored none counts as ``{}``).
    prepare : callable, optional
        ``(configs) -> None``, called once in the driver before any job starts.
    run_summary : callable, optional
        ``(Run) -> str``: the log line of a finished run.
    report : callable, optional
        ``(runs_root, experiment, **options) -> object with render(fmt)``.
    add_arguments : callable, optional
        ``(argparse.ArgumentParser) -> None``: the kind's own options of ``ogae bench <name>``.
    configs_from_args : callable, optional
        ``(argparse.Namespace) -> (configs, default experiment name)``.
    select : callable, optional
        ``(configs, argparse.Namespace, experiment) -> exit code``: hyperparameter selection on
        validation data, run by ``ogae bench <name> --select-on validation`` instead of the sweep.
    """

    name: str
    config_type: type
    run_training_group: Callable[..., Mapping[str, RunOutcome]]
    description: str = ""
    prepare: Callable[[Sequence[Any]], None] | None = None
    validate: Callable[[Any], None] | None = None
    data_hash: Callable[[Any], str | None] | None = None
    resolved_settings: Callable[[Any], Mapping[str, Any]] | None = None
    run_summary: Callable[[Any], str] | None = None
    report: Callable[..., Any] | None = None
    add_arguments: Callable[[Any], None] | None = None
    configs_from_args: Callable[[Any], tuple[list, str]] | None = None
    select: Callable[[Sequence[Any], Any, str], int] | None = None

    def __post_init__(self) -> None:
        if getattr(self.config_type, "kind", None) != self.name:
            raise ValueError(f"{self.config_type.__name__}.kind must be {self.name!r} for the kind {self.name!r}; "
                             f"got {getattr(self.config_type, 'kind', None)!r}")


_REGISTRY: dict[str, ExperimentKind] = {}


def register_kind(kind: ExperimentKind, *, replace: bool = False) -> ExperimentKind:
    """Add ``kind`` to the registry (``ValueError`` if another kind has its name, unless ``replace``)."""
    if not isinstance(kind, ExperimentKind):
        raise TypeError(f"register_kind expects an ExperimentKind; got {type(kind).__name__}")
    old = _REGISTRY.get(kind.name)
    if old is not None and old is not kind and not replace:
        raise ValueError(f"an experiment kind named {kind.name!r} is already registered")
    _REGISTRY[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Remove a registered kind (tests)."""
    _REGISTRY.pop(name, None)


def kind_names() -> tuple[str, ...]:
    """Names of the built-in and the registered kinds, built-in first."""
    return tuple(dict.fromkeys([*BUILTIN_KINDS, *_REGISTRY]))


def get_kind(name: str) -> ExperimentKind:
    """The kind called ``name`` (imports a built-in kind's module on first use)."""
    if name not in _REGISTRY and name in BUILTIN_KINDS:
        importlib.import_module(BUILTIN_KINDS[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown experiment kind {name!r}; known: {list(kind_names())}") from None


def kind_of(config: Any) -> ExperimentKind:
    """The kind of a config object (through its class attribute ``kind``).

    Examples
    --------
    >>> from ogae_core.experiments import RunConfig
    >>> kind_of(RunConfig("ae", "recons")).name
    'mnistc'
    """
    name = getattr(type(config), "kind", None)
    if not isinstance(name, str):
        raise ValueError(f"configs must be the config objects of an experiment kind; got {type(config).__name__}")
    kind = get_kind(name)
    if not isinstance(config, kind.config_type):
        raise ValueError(f"a {type(config).__name__} is not a config of the kind {name!r} "
                         f"(expects {kind.config_type.__name__})")
    return kind


def experiment_kind(runs_root: str | Path | None, experiment: str) -> str:
    """The kind of an experiment of the run store, read from its runs' ``config.json``
    (``"mnistc"`` for runs written before kinds were recorded).

    Examples
    --------
    >>> experiment_kind("/nonexistent", "demo")
    Traceback (most recent call last):
    ...
    ValueError: experiment 'demo' has no finished run in /nonexistent
    """
    from ogae_core.runs import default_root, list_runs

    root = Path(runs_root) if runs_root is not None else default_root()
    runs = list_runs(root, experiment)
    if not runs:
        raise ValueError(f"experiment {experiment!r} has no finished run in {root}")
    kinds = sorted({str(r.config.get("experiment_kind", "mnistc")) for r in runs})
    if len(kinds) > 1:
        raise ValueError(f"experiment {experiment!r} mixes runs of several kinds: {kinds}")
    return kinds[0]


def experiment_report(runs_root: str | Path | None, experiment: str, **options: Any) -> Any:
    """The report of one experiment, by its kind's ``report`` hook (see :func:`experiment_kind`).

    ``ValueError`` when the kind has no report.
    """
    kind = get_kind(experiment_kind(runs_root, experiment))
    if kind.report is None:
        raise ValueError(f"the experiment kind {kind.name!r} has no report")
    return kind.report(runs_root, experiment, **options)
