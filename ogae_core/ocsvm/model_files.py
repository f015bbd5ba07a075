"""A saved model directory: one JSON file of metadata beside one safetensors file of arrays.

Both :class:`~ogae_core.ocsvm.OneClassSVM` (:mod:`ogae_core.ocsvm.persistence`) and
:class:`~ogae_core.ocsvm.LocalizedOCSVM` (:mod:`ogae_core.ocsvm.localized_io`) store
themselves this way; a :class:`ModelFiles` names one such layout (format, version, file
names, required arrays) and the functions here do the part both share:

* :func:`check_target` refuses a target that is a file, a non-empty directory without
  ``overwrite``, or a non-empty directory that does not hold a model of this format
  (never replaced, even with ``overwrite``);
* :func:`write_model` writes the JSON (``format`` and ``version`` first, the caller's
  sections, then ``versions`` from :func:`saved_with_versions`) and the arrays
  atomically (:func:`ogae_core.atomic.atomic_write_dir`);
* :func:`read_meta` and :func:`read_arrays` read them back with clear errors for a
  missing, corrupt or foreign file.

Examples
--------
>>> import tempfile, pathlib
>>> import numpy as np
>>> files = ModelFiles(label="Toy", format="toy-model", version=1, params_file="toy.json",
...                    required=("w",), framework="numpy")
>>> d = pathlib.Path(tempfile.mkdtemp()) / "model"
>>> check_target(files, d, overwrite=False)
>>> _ = write_model(files, d, {"params": {"a": 1}, "fitted": {}}, {"w": np.arange(3.0)})
>>> sorted(p.name for p in d.iterdir())
['arrays.safetensors', 'toy.json']
>>> read_meta(files, d)["params"]
{'a': 1}
>>> read_arrays(files, d)["w"]
array([0., 1., 2.])
>>> holds_model(files, d)
True
>>> check_target(files, d, overwrite=False)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
FileExistsError: ... is not empty; pass overwrite=True to replace the saved model
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ogae_core.atomic import atomic_write_dir

__all__ = [
    "ModelFiles", "check_target", "holds_model", "params_json", "read_arrays", "read_meta",
    "saved_with_versions", "write_model",
]


@dataclass(frozen=True)
class ModelFiles:
    """The on-disk layout of one model type.

    Parameters
    ----------
    label : str
        The class name used in error messages (``"OneClassSVM"``).
    format, version : str, int
        Written as the JSON's ``format`` and ``version``; reading anything else fails.
    params_file : str
        Name of the JSON file.
    required : tuple of str
        Arrays the safetensors file must hold.
    framework : {"numpy", "torch"}
        Which safetensors flavour writes and reads the arrays (numpy arrays or tensors).
    arrays_file : str
        Name of the safetensors file.
    format_in_errors : bool
        Whether the "not a saved <label>" error also shows the format found.

    Examples
    --------
    >>> ModelFiles(label="Toy", format="toy", version=1, params_file="toy.json",
    ...            required=("w",), framework="numpy").arrays_file
    'arrays.safetensors'
    """

    label: str
    format: str
    version: int
    params_file: str
    required: tuple[str, ...]
    framework: str
    arrays_file: str = "arrays.safetensors"
    format_in_errors: bool = False


def saved_with_versions() -> dict[str, str]:
    """Versions recorded beside a saved model: ogae_core, scikit-learn, torch, numpy.

    Examples
    --------
    >>> sorted(saved_with_versions())
    ['numpy', 'ogae_core', 'scikit-learn', 'torch']
    """
    import numpy as np
    import sklearn
    import torch

    from ogae_core.version import __version__

    return {
        "ogae_core": __version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def params_json(est) -> dict[str, Any]:
    """``est.get_params(deep=False)`` with a ``device`` turned into its string (JSON-ready).

    Examples
    --------
    >>> import torch
    >>> from ogae_core.ocsvm import OneClassSVM
    >>> params_json(OneClassSVM(device=torch.device("cpu")))["device"]
    'cpu'
    """
    params = est.get_params(deep=False)
    if params.get("device") is not None:
        params["device"] = str(params["device"])
    return params


def check_target(files: ModelFiles, path: Path, *, overwrite: bool) -> None:
    """Raise ``FileExistsError`` unless a model may be written to ``path``.

    ``path`` may be missing, an empty directory, or (with ``overwrite``) a directory
    that holds a saved model of this format.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> files = ModelFiles(label="Toy", format="toy", version=1, params_file="toy.json",
    ...                    required=(), framework="numpy")
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "notes.txt").write_text("mine")
    4
    >>> check_target(files, d, overwrite=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    FileExistsError: ... is not empty and does not hold a saved Toy; refusing to replace it
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory")
    non_empty = path.is_dir() and any(path.iterdir())
    if non_empty and not overwrite:
        raise FileExistsError(f"{path} is not empty; pass overwrite=True to replace the saved model")
    if non_empty and not holds_model(files, path):
        raise FileExistsError(f"{path} is not empty and does not hold a saved {files.label}; refusing to replace it")


def write_model(files: ModelFiles, path: Path, sections: Mapping[str, Any], arrays: Mapping[str, Any]) -> Path:
    """Write ``path`` atomically: the JSON (``format``, ``version``, ``sections``, ``versions``)
    and the ``arrays``; returns ``path``.

    Call :func:`check_target` first: an existing directory is replaced.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> import numpy as np
    >>> files = ModelFiles(label="Toy", format="toy", version=2, params_file="toy.json",
    ...                    required=("w",), framework="numpy")
    >>> d = write_model(files, pathlib.Path(tempfile.mkdtemp()) / "m", {"params": {}}, {"w": np.zeros(2)})
    >>> list(json.loads((d / "toy.json").read_text()))
    ['format', 'version', 'params', 'versions']
    """
    if files.framework == "torch":
        from safetensors.torch import save_file
    else:
        from safetensors.numpy import save_file

    meta = {"format": files.format, "version": files.version, **sections, "versions": saved_with_versions()}

    def write(tmp: Path) -> None:
        save_file(dict(arrays), str(tmp / files.arrays_file))
        (tmp / files.params_file).write_text(json.dumps(meta, indent=2))

    # an existing directory is an empty one or a saved model with overwrite=True (check_target)
    return atomic_write_dir(path, write, replace=True)


def holds_model(files: ModelFiles, path: Path) -> bool:
    """Whether directory ``path`` holds a JSON file of this format.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> files = ModelFiles(label="Toy", format="toy", version=1, params_file="toy.json",
    ...                    required=(), framework="numpy")
    >>> holds_model(files, pathlib.Path(tempfile.mkdtemp()))
    False
    """
    try:
        return json.loads((Path(path) / files.params_file).read_text()).get("format") == files.format
    except (OSError, ValueError, AttributeError):
        return False


def read_meta(files: ModelFiles, path: Path) -> dict[str, Any]:
    """The JSON of the model in directory ``path``, checked for format, version and the
    ``params`` and ``fitted`` sections.

    Raises
    ------
    FileNotFoundError
        The JSON file is missing.
    ValueError
        It is not JSON, of another format or version, or lacks a section.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> files = ModelFiles(label="Toy", format="toy", version=1, params_file="toy.json",
    ...                    required=(), framework="numpy")
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "toy.json").write_text('{"format": "toy", "version": 3}')
    31
    >>> read_meta(files, d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: ... has format version 3; this code reads version 1
    """
    file = Path(path) / files.params_file
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: {path} does not hold a saved {files.label}")
    try:
        meta = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != files.format:
        found = f" (format {meta.get('format') if isinstance(meta, dict) else None!r})" if files.format_in_errors else ""
        raise ValueError(f"{file} is not a saved {files.label}{found}")
    if meta.get("version") != files.version:
        raise ValueError(f"{file} has format version {meta.get('version')!r}; this code reads version {files.version}")
    for key in ("params", "fitted"):
        if not isinstance(meta.get(key), dict):
            raise ValueError(f"{file} lacks the {key!r} section")
    return meta


def read_arrays(files: ModelFiles, path: Path) -> dict[str, Any]:
    """The arrays of the model in directory ``path`` (numpy arrays or CPU tensors, after
    ``files.framework``), checked for the ``files.required`` names.

    Raises
    ------
    FileNotFoundError
        The safetensors file is missing.
    ValueError
        It is unreadable or lacks a required array.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> files = ModelFiles(label="Toy", format="toy", version=1, params_file="toy.json",
    ...                    required=("w",), framework="torch")
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "arrays.safetensors").write_bytes(b"garbage")
    7
    >>> read_arrays(files, d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: ... is not a readable safetensors file: ...
    """
    if files.framework == "torch":
        from safetensors.torch import load_file
    else:
        from safetensors.numpy import load_file

    file = Path(path) / files.arrays_file
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing")
    try:
        arrays = load_file(str(file))
    except Exception as err:  # safetensors raises its own error types on corrupt headers/data
        raise ValueError(f"{file} is not a readable safetensors file: {err}") from err
    missing = [k for k in files.required if k not in arrays]
    if missing:
        raise ValueError(f"{file} lacks arrays {missing}")
    return arrays
