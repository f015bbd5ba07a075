"""Reading the run store: finished runs, listing, filtering, leftovers of interrupted writes."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ogae_core.runs.layout import (
    CONFIG_FILE,
    FINISHED,
    HISTORY_FILE,
    LATENTS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SCORES_FILE,
    TMP_PREFIX,
    default_root,
)
from ogae_core.runs.provenance import run_id


@dataclass(frozen=True)
class Run:
    """A finished run (read-only view).

    Attributes
    ----------
    path : Path
    experiment, run_id : str
    config : dict
        ``config.json`` (with ``provenance``).
    metrics : dict
        ``metrics.json``.
    """

    path: Path
    experiment: str
    run_id: str
    config: dict = field(repr=False)
    metrics: dict = field(repr=False)

    @property
    def label(self) -> str:
        """Display name: ``config["label"]``, else ``method-scoring`` (e.g. ``ogae-ocsvm``)."""
        if self.config.get("label"):
            return str(self.config["label"])
        parts = [str(self.config[k]) for k in ("method", "scoring") if self.config.get(k)]
        return "-".join(parts) or self.run_id

    @property
    def kind(self) -> str | None:
        """The experiment kind that wrote the run (``config["experiment_kind"]``), if recorded."""
        value = self.config.get("experiment_kind")
        return str(value) if value is not None else None

    @property
    def seed(self) -> int | None:
        return self.config.get("seed", self.config.get("provenance", {}).get("seed"))

    @property
    def mtime(self) -> float:
        """Modification time of the FINISHED marker (a cache key)."""
        return (self.path / FINISHED).stat().st_mtime

    def has(self, filename: str) -> bool:
        return (self.path / filename).is_file()

    def scores(self) -> pd.DataFrame:
        """``scores.parquet`` (``FileNotFoundError`` if the run has none)."""
        return _read_parquet(self.path / SCORES_FILE)

    def history(self) -> pd.DataFrame:
        return _read_parquet(self.path / HISTORY_FILE)

    def latents(self) -> pd.DataFrame:
        return _read_parquet(self.path / LATENTS_FILE)

    def model_tensors(self) -> dict[str, np.ndarray]:
        """Weights as numpy arrays (``safetensors.numpy``; no torch)."""
        from safetensors.numpy import load_file

        path = self.path / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"run {self.run_id} has no {MODEL_FILE}")
        return load_file(str(path))


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return pd.read_parquet(path)


def is_finished(path: str | Path) -> bool:
    """True when ``path`` is a committed run directory.

    Examples
    --------
    >>> is_finished("/nonexistent")
    False
    """
    p = Path(path)
    return p.is_dir() and not p.name.startswith(".") and (p / FINISHED).is_file() and (p / CONFIG_FILE).is_file()


def run_exists(root: str | Path | None, experiment: str, config: Mapping[str, Any], name: str | None = None) -> bool:
    """Whether the run of this config is already finished (for resuming sweeps).

    Examples
    --------
    >>> run_exists("/nonexistent", "demo", {"method": "ae"})
    False
    """
    base = Path(root if root is not None else default_root())
    return is_finished(base / experiment / run_id(config, name))


def read_run(path: str | Path) -> Run:
    """Read a finished run directory (``ValueError`` if it is not finished)."""
    p = Path(path)
    if not is_finished(p):
        raise ValueError(f"{p} is not a finished run (no {FINISHED} marker or config)")
    with open(p / CONFIG_FILE, encoding="utf-8") as fh:
        config = json.load(fh)
    metrics_path = p / METRICS_FILE
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    return Run(p, p.parent.name, p.name, config, metrics)


def list_experiments(root: str | Path | None = None) -> list[str]:
    """Experiments (sub-directories) with at least one finished run, sorted.

    Examples
    --------
    >>> list_experiments("/nonexistent")
    []
    """
    base = Path(root if root is not None else default_root())
    if not base.is_dir():
        return []
    return sorted(
        d.name
        for d in base.iterdir()
        if d.is_dir() and not d.name.startswith(".") and any(is_finished(r) for r in d.iterdir())
    )


def list_runs(root: str | Path | None = None, experiment: str | None = None, **criteria: Any) -> list[Run]:
    """Finished runs, sorted by experiment then run id, optionally filtered (see :func:`filter_runs`).

    Examples
    --------
    >>> list_runs("/nonexistent")
    []
    """
    base = Path(root if root is not None else default_root())
    experiments = [experiment] if experiment is not None else list_experiments(base)
    runs = []
    for exp in experiments:
        d = base / exp
        if d.is_dir():
            runs.extend(read_run(r) for r in sorted(d.iterdir()) if is_finished(r))
    return filter_runs(runs, **criteria) if criteria else runs


def experiment_kinds(runs: Iterable[Run]) -> dict[str, list[str]]:
    """``{experiment: sorted experiment kinds of its runs}`` (read from the run store alone:
    the dashboard lists kinds without importing any experiment code).

    Examples
    --------
    >>> r = Run(Path("x"), "e", "x", {"experiment_kind": "mnistc"}, {})
    >>> experiment_kinds([r])
    {'e': ['mnistc']}
    """
    out: dict[str, set] = {}
    for run in runs:
        kinds = out.setdefault(run.experiment, set())
        if run.kind is not None:
            kinds.add(run.kind)
    return {e: sorted(k) for e, k in sorted(out.items())}


def config_value(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """Look up a dotted key (``"task.anomaly"``) in a nested config.

    Examples
    --------
    >>> config_value({"task": {"anomaly": 8}}, "task.anomaly")
    8
    """
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def filter_runs(runs: Iterable[Run], **criteria: Any) -> list[Run]:
    """Keep runs whose config matches every criterion.

    A criterion ``key=value`` matches when ``config_value(config, key)`` equals the value, or
    is in it when the value is a list/tuple/set. Use ``__`` for dots in keyword names
    (``task__anomaly=8``).

    Examples
    --------
    >>> r = Run(Path("x"), "e", "x", {"method": "ae", "task": {"anomaly": 8}}, {})
    >>> len(filter_runs([r], method=["ae", "vae"], task__anomaly=8))
    1
    """
    out = []
    for run in runs:
        ok = True
        for key, want in criteria.items():
            value = config_value(run.config, key.replace("__", "."))
            ok = value in want if isinstance(want, (list, tuple, set, frozenset)) else value == want
            if not ok:
                break
        if ok:
            out.append(run)
    return out


def runs_table(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per run: experiment, run id, label, seed, flattened config and metrics.

    Examples
    --------
    >>> runs_table([]).empty
    True
    """
    rows = []
    for run in runs:
        row = {"experiment": run.experiment, "run_id": run.run_id, "label": run.label, "seed": run.seed}
        cfg = {k: v for k, v in run.config.items() if k not in ("provenance", "run_id", "seed", "label")}
        row.update({f"config.{k}": v for k, v in flatten_mapping(cfg).items()})
        row.update({f"metrics.{k}": v for k, v in flatten_mapping(run.metrics).items()})
        row["code_version"] = run.config.get("provenance", {}).get("code_version")
        rows.append(row)
    return pd.DataFrame(rows)


def flatten_mapping(d: Mapping[str, Any], prefix: str = "", lists: str = "json") -> dict[str, Any]:
    """Nested mappings to one level of dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``).

    Parameters
    ----------
    d : Mapping
        The nested mapping (e.g. a run's ``metrics.json``).
    prefix : str
        Prepended to every key.
    lists : {"json", "drop"}
        What happens to values that are not mappings nor scalars (``int``, ``float``, ``str``,
        ``bool``, ``None``): ``"json"`` keeps them, lists encoded as JSON text (one table cell);
        ``"drop"`` leaves them out (tables of numbers only).

    Examples
    --------
    >>> flatten_mapping({"a": {"b": 1, "c": [1, 2]}, "d": None})
    {'a.b': 1, 'a.c': '[1, 2]', 'd': None}
    >>> flatten_mapping({"a": {"b": 1, "c": [1, 2]}}, prefix="m.", lists="drop")
    {'m.a.b': 1}
    """
    if lists not in ("json", "drop"):
        raise ValueError(f"lists must be 'json' or 'drop', got {lists!r}")
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_mapping(v, key + ".", lists))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[key] = v
        elif lists == "json":
            out[key] = json.dumps(v) if isinstance(v, list) else v
    return out


def partial_runs(root: str | Path | None = None, experiment: str | None = None) -> list[Path]:
    """Temporary directories of interrupted writes (never listed as runs).

    Examples
    --------
    >>> partial_runs("/nonexistent")
    []
    """
    base = Path(root if root is not None else default_root())
    dirs = [base / experiment] if experiment else ([d for d in base.iterdir() if d.is_dir()] if base.is_dir() else [])
    return sorted(p for d in dirs if d.is_dir() for p in d.iterdir() if p.is_dir() and p.name.startswith(TMP_PREFIX))


def remove_partial_run(path: str | Path) -> None:
    """Delete one leftover temporary directory (refuses anything else)."""
    p = Path(path)
    if not p.name.startswith(TMP_PREFIX) or not p.is_dir():
        raise ValueError(f"{p} is not a partial-run directory ({TMP_PREFIX}*)")
    shutil.rmtree(p)
