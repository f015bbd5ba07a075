"""Save and load a fitted :class:`~ogae_core.ocsvm.OneClassSVM` without pickle.

A model directory holds two files:

* ``estimator.json`` — format name and version, constructor parameters, scalar
  fitted attributes (``gamma_``, ``n_features_in_``, ``n_samples_fit_``,
  ``n_iter_``, ``feature_names_in_``) and library versions;
* ``arrays.safetensors`` — ``support_vectors_``, ``support_``, ``dual_coef_``,
  ``offset_``.

``intercept_`` is derived from these on load, ``alpha_`` and ``rho_`` by
:meth:`~ogae_core.ocsvm.OneClassSVM.load`. Writing and the checks on reading are
:mod:`ogae_core.ocsvm.model_files` (shared with :mod:`ogae_core.ocsvm.localized_io`):
the directory is written atomically, so an interrupted save never leaves a
half-written model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ogae_core.ocsvm.model_files import (
    ModelFiles, check_target, params_json, read_arrays, read_meta, saved_with_versions, write_model,
)

__all__ = ["FILES", "load_estimator", "save_estimator", "saved_with_versions"]

FORMAT = "ogae-ocsvm-estimator"
VERSION = 1
PARAMS_FILE = "estimator.json"
ARRAYS_FILE = "arrays.safetensors"
FILES = ModelFiles(
    label="OneClassSVM", format=FORMAT, version=VERSION, params_file=PARAMS_FILE, arrays_file=ARRAYS_FILE,
    required=("support_vectors_", "support_", "dual_coef_", "offset_"), framework="numpy", format_in_errors=True,
)


def save_estimator(est, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``est`` to directory ``path``; returns ``path``.

    Raises
    ------
    FileExistsError
        ``path`` is a non-empty directory and ``overwrite`` is false, or it is
        a file, or it is a non-empty directory that does not hold a saved model
        (never deleted, even with ``overwrite=True``).
    """
    path = Path(path)
    check_target(FILES, path, overwrite=overwrite)
    sections = {
        "class": type(est).__name__,
        "params": params_json(est),
        "fitted": {
            "gamma_": float(est.gamma_),
            "n_features_in_": int(est.n_features_in_),
            "n_samples_fit_": int(est.n_samples_fit_),
            "n_iter_": int(est.n_iter_),
            "feature_names_in_": (
                [str(f) for f in est.feature_names_in_] if hasattr(est, "feature_names_in_") else None
            ),
        },
    }
    arrays = {
        "support_vectors_": np.ascontiguousarray(est.support_vectors_, dtype=np.float64),
        "support_": np.ascontiguousarray(est.support_, dtype=np.int64),
        "dual_coef_": np.ascontiguousarray(est.dual_coef_, dtype=np.float64),
        "offset_": np.ascontiguousarray(est.offset_, dtype=np.float64),
    }
    return write_model(FILES, path, sections, arrays)


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
    meta = read_meta(FILES, path)
    arrays = read_arrays(FILES, path)
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
