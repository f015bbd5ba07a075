"""Save and load a fitted :class:`~ogae_core.ocsvm.OneClassSVM` without pickle.

A model directory holds two files:

* ``estimator.json`` — format name and version, constructor parameters, scalar
  fitted attributes (``gamma_``, ``n_features_in_``, ``n_samples_fit_``,
  ``n_iter_``, ``feature_names_in_``) and library versions;
* ``arrays.safetensors`` — ``support_vectors_``, ``support_``, ``dual_coef_``,
  ``offset_``.

``intercept_`` is derived from these on load, ``alpha_`` and ``rho_`` by
:meth:`~ogae_core.ocsvm.OneClassSVM.load`. Writing goes through
:func:`ogae_core.atomic.atomic_write_dir` (a temporary sibling directory renamed into
place), so an interrupted save never leaves a half-written model.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ogae_core.atomic import atomic_write_dir

FORMAT = "ogae-ocsvm-estimator"
VERSION = 1
PARAMS_FILE = "estimator.json"
ARRAYS_FILE = "arrays.safetensors"
_ARRAY_KEYS = ("support_vectors_", "support_", "dual_coef_", "offset_")


def saved_with_versions() -> dict[str, str]:
    """Versions recorded beside a saved model: ogae_core, scikit-learn, torch, numpy."""
    import sklearn
    import torch

    from ogae_core.version import __version__

    return {
        "ogae_core": __version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def _params_json(est) -> dict[str, Any]:
    params = est.get_params(deep=False)
    if params.get("device") is not None:
        params["device"] = str(params["device"])
    return params


def save_estimator(est, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``est`` to directory ``path``; returns ``path``.

    Raises
    ------
    FileExistsError
        ``path`` is a non-empty directory and ``overwrite`` is false, or it is
        a file, or it is a non-empty directory that does not hold a saved model
        (never deleted, even with ``overwrite=True``).
    """
    from safetensors.numpy import save_file

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory")
    non_empty = path.is_dir() and any(path.iterdir())
    if non_empty and not overwrite:
        raise FileExistsError(f"{path} is not empty; pass overwrite=True to replace the saved model")
    if non_empty and not _holds_model(path):
        raise FileExistsError(f"{path} is not empty and does not hold a saved OneClassSVM; refusing to replace it")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "class": type(est).__name__,
        "params": _params_json(est),
        "fitted": {
            "gamma_": float(est.gamma_),
            "n_features_in_": int(est.n_features_in_),
            "n_samples_fit_": int(est.n_samples_fit_),
            "n_iter_": int(est.n_iter_),
            "feature_names_in_": (
                [str(f) for f in est.feature_names_in_] if hasattr(est, "feature_names_in_") else None
            ),
        },
        "versions": saved_with_versions(),
    }
    arrays = {
        "support_vectors_": np.ascontiguousarray(est.support_vectors_, dtype=np.float64),
        "support_": np.ascontiguousarray(est.support_, dtype=np.int64),
        "dual_coef_": np.ascontiguousarray(est.dual_coef_, dtype=np.float64),
        "offset_": np.ascontiguousarray(est.offset_, dtype=np.float64),
    }

    def write(tmp: Path) -> None:
        save_file(arrays, str(tmp / ARRAYS_FILE))
        (tmp / PARAMS_FILE).write_text(json.dumps(meta, indent=2))

    # an existing directory is an empty one or a saved model with overwrite=True (checked above)
    return atomic_write_dir(path, write, replace=True)


def _holds_model(path: Path) -> bool:
    try:
        return json.loads((path / PARAMS_FILE).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _read_meta(path: Path) -> dict[str, Any]:
    file = path / PARAMS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: {path} does not hold a saved OneClassSVM")
    try:
        meta = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{file} is not a saved OneClassSVM (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"{file} has format version {meta.get('version')!r}; this code reads version {VERSION}")
    for key in ("params", "fitted"):
        if not isinstance(meta.get(key), dict):
            raise ValueError(f"{file} lacks the {key!r} section")
    return meta


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    file = path / ARRAYS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing")
    try:
        arrays = load_file(str(file))
    except Exception as err:  # safetensors raises its own error types on corrupt headers/data
        raise ValueError(f"{file} is not a readable safetensors file: {err}") from err
    missing = [k for k in _ARRAY_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{file} lacks arrays {missing}")
    return arrays


def load_estimator(cls, path: Path):
    """Rebuild an estimator of class ``cls`` from directory ``path`` (without the paper-scaling
    attributes ``alpha_``/``rho_``, which :meth:`~ogae_core.ocsvm.OneClassSVM.load` adds).

    Raises
    ------
    FileNotFoundError
        ``path`` or one of its two files is missing.
    ValueError
        A file is corrupt, of another format or version, or the arrays are
        inconsistent with each other or with the JSON.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory holding a saved OneClassSVM")
    meta = _read_meta(path)
    arrays = _read_arrays(path)
    fitted = meta["fitted"]
    try:
        est = cls(**meta["params"])
    except TypeError as err:
        raise ValueError(f"{path / PARAMS_FILE} has unknown parameters: {err}") from err
    sv, support = arrays["support_vectors_"], arrays["support_"]
    coef, offset = arrays["dual_coef_"], arrays["offset_"]
    n_sv = sv.shape[0] if sv.ndim == 2 else -1
    try:
        d, n = int(fitted["n_features_in_"]), int(fitted["n_samples_fit_"])
        gamma = float(fitted["gamma_"])
        n_iter = int(fitted["n_iter_"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path / PARAMS_FILE}: bad or missing fitted attribute ({err})") from err
    if (
        sv.ndim != 2 or sv.shape[1] != d or support.shape != (n_sv,) or coef.shape != (1, n_sv)
        or offset.shape != (1,) or (n_sv and (support.min() < 0 or support.max() >= n))
    ):
        raise ValueError(
            f"{path}: inconsistent arrays (support_vectors_ {sv.shape}, support_ {support.shape}, "
            f"dual_coef_ {coef.shape}, offset_ {offset.shape}, n_features_in_={d}, n_samples_fit_={n})"
        )
    if not (np.isfinite(sv).all() and np.isfinite(coef).all() and np.isfinite(offset).all() and gamma > 0):
        raise ValueError(f"{path}: non-finite arrays or non-positive gamma_")
    est.support_vectors_, est.support_, est.dual_coef_ = sv, support, coef
    est.offset_, est.intercept_ = offset, -offset
    est.gamma_, est.n_features_in_, est.n_samples_fit_, est.n_iter_ = gamma, d, n, n_iter
    names = fitted.get("feature_names_in_")
    if names is not None:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    return est
