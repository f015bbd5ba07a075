"""Save and load a fitted :class:`~ogae_core.ocsvm.LocalizedOCSVM` (safetensors + JSON, no pickle).

A model directory holds two files:

* ``localized_ocsvm.json`` — format name and version, constructor parameters, the
  shape ``(V, n, d)`` of the training codes, the support-vector dtype, solver counters
  and library versions;
* ``arrays.safetensors`` — only what scoring needs, support vectors *ragged*:
  ``support_vectors`` ``(sum n_SV, d)`` (each voxel's support vectors in training
  order, voxel after voxel, in the training codes' dtype), ``dual_coef`` ``(sum n_SV,)``
  float64 (libsvm scaling), ``n_support`` ``(V,)`` int64, ``offset`` and ``gamma``
  ``(V,)`` float64, and with standardization ``mean`` and ``scale`` ``(V, d)`` float64.

On load the support vectors are padded to ``(V, max n_SV, d)`` with zero coefficients
(the layout :class:`~ogae_core.ocsvm.LocalizedOCSVM` scores with). The directory is
written atomically and read back with the checks of :mod:`ogae_core.ocsvm.model_files`
(shared with :mod:`ogae_core.ocsvm.persistence`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ogae_core.ocsvm.model_files import ModelFiles, check_target, params_json, read_arrays, read_meta, write_model

__all__ = ["FILES", "load_localized", "ragged_arrays", "save_localized"]

FORMAT = "ogae-localized-ocsvm"
VERSION = 1
PARAMS_FILE = "localized_ocsvm.json"
ARRAYS_FILE = "arrays.safetensors"
FILES = ModelFiles(
    label="LocalizedOCSVM", format=FORMAT, version=VERSION, params_file=PARAMS_FILE, arrays_file=ARRAYS_FILE,
    required=("support_vectors", "dual_coef", "n_support", "offset", "gamma"), framework="torch",
)


def ragged_arrays(model) -> dict[str, torch.Tensor]:
    """The arrays written by :func:`save_localized` (CPU, contiguous), support vectors ragged."""
    coef = model.dual_coef_.cpu()
    keep = coef > 0
    sv = model.support_vectors_.cpu()[keep]  # (sum n_SV, d), voxel after voxel, training order
    arrays = {
        "support_vectors": sv.contiguous(),
        "dual_coef": coef[keep].contiguous(),
        "n_support": keep.sum(1).to(torch.int64),
        "offset": model.offset_.cpu().contiguous(),
        "gamma": model.gamma_.cpu().contiguous(),
    }
    if model.mean_ is not None:
        arrays["mean"] = model.mean_.cpu().contiguous()
        arrays["scale"] = model.scale_.cpu().contiguous()
    return arrays


def save_localized(model, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` to directory ``path``; returns ``path``.

    Raises
    ------
    FileExistsError
        ``path`` is a file, or a non-empty directory and ``overwrite`` is false, or a
        non-empty directory that does not hold a saved LocalizedOCSVM (never replaced).
    """
    path = Path(path)
    check_target(FILES, path, overwrite=overwrite)
    arrays = ragged_arrays(model)
    sections = {
        "params": params_json(model),
        "fitted": {
            "n_voxels_": int(model.n_voxels_),
            "n_samples_fit_": int(model.n_samples_fit_),
            "n_features_in_": int(model.n_features_in_),
            "support_dtype": str(arrays["support_vectors"].dtype).removeprefix("torch."),
            "n_iter_": int(model.n_iter_),
            "n_fallback_": int(model.n_fallback_),
        },
    }
    return write_model(FILES, path, sections, arrays)


def _check_arrays(path: Path, a: dict[str, torch.Tensor], V: int, n: int, d: int, standardize: bool) -> None:
    n_sv = a["n_support"]
    total = int(n_sv.sum()) if n_sv.dim() == 1 else -1
    ok = (
        n_sv.shape == (V,) and bool((n_sv >= 1).all()) and bool((n_sv <= n).all())
        and a["support_vectors"].shape == (total, d) and a["dual_coef"].shape == (total,)
        and a["offset"].shape == (V,) and a["gamma"].shape == (V,)
        and (not standardize or (a.get("mean") is not None and a["mean"].shape == (V, d)
                                 and a.get("scale") is not None and a["scale"].shape == (V, d)))
    )
    if not ok:
        shapes = {k: tuple(v.shape) for k, v in a.items()}
        raise ValueError(f"{path}: arrays inconsistent with V={V}, n={n}, d={d}: {shapes}")
    finite = all(bool(torch.isfinite(v).all()) for k, v in a.items() if k != "n_support")
    if not finite or not bool((a["gamma"] > 0).all()) or not bool((a["dual_coef"] > 0).all()):
        raise ValueError(f"{path}: non-finite arrays, non-positive gamma or non-positive coefficients")


def load_localized(path: Path) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """Read directory ``path``: ``(params, fitted, state)``.

    ``params`` are the constructor parameters, ``fitted`` the JSON's fitted scalars,
    ``state`` the CPU tensors in the padded layout: ``support_vectors`` ``(V, s, d)``,
    ``dual_coef`` ``(V, s)`` (0 on padding), ``n_support``, ``offset``, ``gamma`` and,
    when the model standardizes, ``mean`` and ``scale``.

    Raises
    ------
    FileNotFoundError
        ``path`` or one of its files is missing.
    ValueError
        A file is corrupt, of another format or version, or inconsistent.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory holding a saved LocalizedOCSVM")
    meta = read_meta(FILES, path)
    arrays = read_arrays(FILES, path)
    params, fitted = dict(meta["params"]), dict(meta["fitted"])
    try:
        V, n, d = int(fitted["n_voxels_"]), int(fitted["n_samples_fit_"]), int(fitted["n_features_in_"])
        fitted["n_iter_"], fitted["n_fallback_"] = int(fitted["n_iter_"]), int(fitted["n_fallback_"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path / PARAMS_FILE}: bad or missing fitted attributes ({err})") from err
    _check_arrays(path, arrays, V, n, d, bool(params.get("standardize")))
    n_sv = arrays["n_support"]
    s = int(n_sv.max())
    slot = (torch.arange(s).unsqueeze(0) < n_sv.unsqueeze(1)).flatten().nonzero().squeeze(1)  # where SVs go
    sv = torch.zeros(V * s, d, dtype=arrays["support_vectors"].dtype)
    sv.index_copy_(0, slot, arrays["support_vectors"])
    coef = torch.zeros(V * s, dtype=torch.float64)
    coef.index_copy_(0, slot, arrays["dual_coef"].to(torch.float64))
    sv, coef = sv.view(V, s, d), coef.view(V, s)
    state = {"support_vectors": sv, "dual_coef": coef, "n_support": n_sv,
             "offset": arrays["offset"].to(torch.float64), "gamma": arrays["gamma"].to(torch.float64)}
    if params.get("standardize"):
        state["mean"] = arrays["mean"].to(torch.float64)
        state["scale"] = arrays["scale"].to(torch.float64)
    return params, fitted, state
