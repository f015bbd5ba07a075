"""Writing one run atomically (temporary directory, FINISHED marker, one rename)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

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
    check_name,
    default_root,
)
from ogae_core.runs.provenance import provenance, to_jsonable
from ogae_core.runs.provenance import run_id as default_run_id


def _write_json(path: Path, obj: Any) -> None:
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _write_parquet(path: Path, frame: pd.DataFrame, required: Iterable[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks required column(s) {missing}")
    frame.reset_index(drop=True).to_parquet(path, index=False)


class RunWriter:
    """Assemble one run in a hidden temporary directory; :meth:`commit` renames it into place.

    Use :func:`create_run` (a context manager) rather than this class directly.

    Attributes
    ----------
    path : Path
        The temporary directory; callers may write extra files (e.g. ``model.safetensors``).
    final_path : Path
        Where the run will live once committed.
    """

    def __init__(
        self, experiment_dir: Path, run_id_: str, config: Mapping[str, Any], seed: int | None, data_hash: str | None,
        resolved_settings: Mapping[str, Any] | None = None,
    ):
        self.final_path = experiment_dir / run_id_
        if self.final_path.exists():
            raise FileExistsError(f"run {self.final_path} already exists; finished runs are never overwritten")
        experiment_dir.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{run_id_}-", dir=experiment_dir))
        full = dict(to_jsonable(config))
        full["provenance"] = provenance(seed, data_hash, resolved_settings)
        full["run_id"] = run_id_
        self.config = full
        self._metrics: dict[str, Any] | None = None
        self.committed = False

    def write_scores(self, scores: pd.DataFrame) -> None:
        """Per-item scores; ``score`` finite, ``label`` in {0, 1}."""
        _write_parquet(self.path / SCORES_FILE, _check_scores(scores), ("score", "label"), "scores")

    def write_history(self, history: pd.DataFrame) -> None:
        """Per-epoch history (column ``epoch`` required)."""
        _write_parquet(self.path / HISTORY_FILE, history, ("epoch",), "history")

    def write_latents(self, latents: pd.DataFrame) -> None:
        """2-D embedding of latent codes for the Latent-space page (``umap_x``, ``umap_y``)."""
        _write_parquet(self.path / LATENTS_FILE, latents, ("umap_x", "umap_y"), "latents")

    def write_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Summary metrics (a JSON object)."""
        if not isinstance(metrics, Mapping):
            raise ValueError("metrics must be a mapping")
        self._metrics = dict(to_jsonable(metrics))

    def write_model(
        self, tensors: Mapping[str, np.ndarray] | Callable[[Path], None], metadata_: Mapping[str, str] | None = None
    ) -> None:
        """Weights as ``model.safetensors``: a mapping of numpy arrays, or a callable writing the file.

        A callable receives the target path (e.g. ``lambda p: safetensors.torch.save_file(sd, p)``),
        which keeps this module free of torch.
        """
        target = self.path / MODEL_FILE
        if callable(tensors):
            tensors(target)
        else:
            from safetensors.numpy import save_file

            save_file(
                {k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(target), metadata=dict(metadata_ or {})
            )
        if not target.is_file():
            raise ValueError(f"the model writer did not create {target}")

    def commit(self) -> Path:
        """Write config, metrics and the FINISHED marker, then rename into place atomically."""
        if self.committed:
            raise RuntimeError("run already committed")
        _write_json(self.path / CONFIG_FILE, self.config)
        _write_json(self.path / METRICS_FILE, self._metrics or {})
        _write_json(self.path / FINISHED, {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        if self.final_path.exists():
            raise FileExistsError(f"run {self.final_path} appeared while writing; finished runs are never overwritten")
        try:
            os.rename(self.path, self.final_path)
        except OSError as err:  # a concurrent writer won the race: the other copy stays
            raise FileExistsError(f"could not move the run into {self.final_path}: {err}") from err
        _fsync_dir(self.final_path.parent)
        self.committed = True
        return self.final_path

    def abort(self) -> None:
        """Delete the temporary directory (nothing at the final path is touched)."""
        shutil.rmtree(self.path, ignore_errors=True)


def _check_scores(scores: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame):
        raise ValueError(f"scores must be a pandas DataFrame; got {type(scores).__name__}")
    for col in ("score", "label"):
        if col not in scores.columns:
            raise ValueError(f"scores lack required column {col!r}")
    s = pd.to_numeric(scores["score"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError(f"scores contain {int(np.sum(~np.isfinite(s)))} non-finite value(s)")
    labels = set(pd.unique(scores["label"]).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"labels must be 0 (normal) or 1 (anomaly); found {sorted(map(str, labels))}")
    return scores


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class create_run:  # noqa: N801 - used as a context manager, reads like a function
    """Context manager writing one run atomically.

    On normal exit the run is committed (renamed into place with its FINISHED marker); on an
    exception the temporary directory is removed and the exception propagates.

    Parameters
    ----------
    root : str or Path
        Runs root (``default_root()`` when None).
    experiment : str
        Experiment name (a directory under the root), e.g. ``"mnistc-3v8-quick"``.
    config : mapping
        The full resolved configuration (JSON-serializable).
    seed : int, optional
        Seed of the run (also in provenance).
    data_hash : str, optional
        Hash of the data the run used.
    resolved_settings : mapping, optional
        Settings that changed training but are not in ``config`` (resolved from a preset at run
        time); stored as ``provenance.resolved_settings``, compared when a sweep resumes.
    run_id : str, optional
        Defaults to :func:`run_id` of the config.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from ogae_core.runs import list_runs
    >>> root = tempfile.mkdtemp()
    >>> with create_run(root, "demo", {"method": "ae", "scoring": "recons", "seed": 0}, seed=0) as w:
    ...     w.write_scores(pd.DataFrame({"score": [0.1, 0.9], "label": [0, 1]}))
    ...     w.write_metrics({"test": {"auroc": 1.0}})
    >>> [r.run_id[:15] for r in list_runs(root, "demo")]
    ['ae-recons-s0-5d']
    """

    def __init__(
        self,
        root: str | Path | None,
        experiment: str,
        config: Mapping[str, Any],
        *,
        seed: int | None = None,
        data_hash: str | None = None,
        run_id: str | None = None,
        resolved_settings: Mapping[str, Any] | None = None,
    ):
        self.experiment_dir = Path(root if root is not None else default_root()) / check_name("experiment", experiment)
        self.run_id = check_name("run id", run_id) if run_id is not None else default_run_id(config)
        self._args = (config, seed, data_hash, resolved_settings)
        self.writer: RunWriter | None = None

    def __enter__(self) -> RunWriter:
        self.writer = RunWriter(self.experiment_dir, self.run_id, *self._args)
        return self.writer

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.writer is not None
        if exc_type is not None:
            self.writer.abort()
            return False
        try:
            self.writer.commit()
        except BaseException:
            self.writer.abort()
            raise
        return False
