"""The paper's MNIST-C anomaly-detection task: :func:`mnistc_task` (supplementary S-D).

- ``train``: every MNIST *training* image of the normal digit x each train corruption, minus
  a random ``early_stop_fraction`` of the items, which form ``early_stop``;
- ``validation``: MNIST *test* images of the normal and anomaly digits x each test corruption;
- ``test``: MNIST *training* images of the normal and anomaly digits x each test corruption.

Defaults and the expected sizes of the named tasks come from ``data_manifests/mnistc_tasks.yaml``.
Built arrays are cached as ``$OGAE_CACHE/tasks/*.npz`` keyed by a hash of the manifests, the
task arguments, the seed and the corruption code; a sidecar ``.sha256`` file detects a damaged cache, which is
rebuilt (with a warning), never used.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ogae_core.data.corruptions import CORRUPTIONS, corrupt
from ogae_core.data.manifests import load_manifest, manifest_digest, tasks_manifest
from ogae_core.data.mnist import MNIST, cache_dir, load_mnist
from ogae_core.data.sources import file_sha256

__all__ = ["Split", "MnistCTask", "mnistc_task", "SPLITS", "check_corruption_names"]

SPLITS = ("train", "early_stop", "validation", "test")
_FORMAT = 1  # bump when the cached layout changes (code changes are hashed into the key)
_FIELDS = ("images", "labels", "digits", "corruption_codes", "source_index")


@dataclass(frozen=True)
class Split:
    """One split: items with their label (anomaly = 1), digit, corruption and MNIST index.

    ``source_index`` indexes the MNIST training set for train / early_stop / test and the
    MNIST test set for validation (see ``source_set``).
    """

    pixels: np.ndarray  # uint8 (N, 28, 28)
    labels: np.ndarray
    digits: np.ndarray
    corruption_codes: np.ndarray
    source_index: np.ndarray
    corruption_names: tuple[str, ...]
    source_set: str

    @functools.cached_property
    def images(self) -> np.ndarray:
        """float32 (N, 28, 28) in [0, 1] (computed once, read-only)."""
        out = self.pixels.astype(np.float32) / np.float32(255.0)
        out.setflags(write=False)
        return out

    @functools.cached_property
    def corruptions(self) -> np.ndarray:
        """Corruption name of every item (str array)."""
        out = np.asarray(self.corruption_names)[self.corruption_codes]
        out.setflags(write=False)
        return out

    def __len__(self) -> int:
        return len(self.labels)

    def to_frame(self):
        """Per-item metadata as a pandas DataFrame (label, digit, corruption, source index)."""
        import pandas as pd

        return pd.DataFrame({
            "label": self.labels, "digit": self.digits,
            "corruption": pd.Categorical.from_codes(self.corruption_codes, list(self.corruption_names)),
            "source_set": self.source_set, "source_index": self.source_index,
        })


@dataclass(frozen=True)
class MnistCTask:
    """The four splits of one MNIST-C task and the arguments that built it."""

    normal: int
    anomaly: int
    train_corruptions: tuple[str, ...]
    test_corruptions: tuple[str, ...]
    seed: int
    train: Split
    early_stop: Split
    validation: Split
    test: Split
    cache_key: str

    def counts(self) -> dict[str, int]:
        """Number of items per split."""
        return {s: len(getattr(self, s)) for s in SPLITS}

    def to_frame(self):
        """Metadata of all splits in one DataFrame with a ``split`` column."""
        import pandas as pd

        return pd.concat([getattr(self, s).to_frame().assign(split=s) for s in SPLITS], ignore_index=True)


def check_corruption_names(names: Sequence[str] | str, what: str) -> tuple[str, ...]:
    """``names`` as a tuple if every one is a known MNIST-C corruption, listed once, else ``ValueError``.

    ``what`` names the parameter in the message (e.g. ``"--train-corruptions"``).

    Examples
    --------
    >>> check_corruption_names(["identity", "stripe"], "--train-corruptions")
    ('identity', 'stripe')
    >>> check_corruption_names(["stripes"], "--test-corruptions")
    Traceback (most recent call last):
    ...
    ValueError: unknown --test-corruptions ['stripes']; choose from identity, shot_noise, impulse_noise, glass_blur, motion_blur, shear, scale, rotate, brightness, translate, stripe, fog, spatter, dotted_line, zigzag, canny_edges
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise ValueError(f"{what} must list at least one corruption")
    bad = [n for n in names if n not in CORRUPTIONS]
    if bad:
        raise ValueError(f"unknown {what} {bad}; choose from {', '.join(CORRUPTIONS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} lists a corruption twice: {list(names)}")
    return names


def _corrupt_set(images: np.ndarray, index: np.ndarray, offset: int, names: tuple[str, ...], codes: dict[str, int],
                 seed: int) -> dict[str, np.ndarray]:
    """Every image x every corruption, grouped by corruption."""
    parts = [corrupt(images[index], n, seed=seed, indices=index + offset) for n in names]
    k = len(names)
    return {
        "images": np.concatenate(parts) if parts else np.zeros((0, 28, 28), np.uint8),
        "source_index": np.tile(index, k).astype(np.int64),
        "corruption_codes": np.repeat([codes[n] for n in names], len(index)).astype(np.int16),
    }


def _build(data: MNIST, normal: int, anomaly: int, train_c: tuple[str, ...], test_c: tuple[str, ...],
           seed: int, frac: float, names: tuple[str, ...]) -> dict[str, dict[str, np.ndarray]]:
    codes = {n: i for i, n in enumerate(names)}
    tr_lab, te_lab = data.train_labels, data.test_labels
    n_train = len(tr_lab)
    out: dict[str, dict[str, np.ndarray]] = {}
    normal_idx = np.flatnonzero(tr_lab == normal)
    full = _corrupt_set(data.train_images, normal_idx, 0, train_c, codes, seed)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1_000_003, normal, anomaly])))
    n_es = int(round(frac * len(full["images"])))
    held = np.zeros(len(full["images"]), bool)
    held[rng.permutation(len(held))[:n_es]] = True
    out["train"] = {k: v[~held] for k, v in full.items()}
    out["early_stop"] = {k: v[held] for k, v in full.items()}
    val_idx = np.flatnonzero((te_lab == normal) | (te_lab == anomaly))
    out["validation"] = _corrupt_set(data.test_images, val_idx, n_train, test_c, codes, seed)
    test_idx = np.flatnonzero((tr_lab == normal) | (tr_lab == anomaly))
    out["test"] = _corrupt_set(data.train_images, test_idx, 0, test_c, codes, seed)
    for split, part in out.items():
        lab = te_lab if split == "validation" else tr_lab
        part["digits"] = lab[part["source_index"]].astype(np.int64)
        part["labels"] = (part["digits"] == anomaly).astype(np.int64)
    return out


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """sha256 of the modules that decide the task's pixels (a code change invalidates caches)."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("tasks.py", "corruptions.py", "corruption_noise.py", "corruption_geometry.py",
                 "corruption_overlay.py", "fog.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _load_cached(path: Path, key: str) -> dict[str, dict[str, np.ndarray]] | None:
    side = path.with_suffix(".sha256")
    if not path.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
        if meta.get("key") != key or meta.get("sha256") != file_sha256(path):
            raise ValueError("checksum mismatch")
        with np.load(path, allow_pickle=False) as z:
            return {s: {f: z[f"{s}/{f}"] for f in _FIELDS} for s in SPLITS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"task cache {path} is damaged ({exc}); rebuilding it", stacklevel=3)
        return None


def _save_cached(path: Path, key: str, parts: dict[str, dict[str, np.ndarray]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{f"{s}/{k}": v for s, d in parts.items() for k, v in d.items()})
        digest = file_sha256(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    side_tmp = path.with_suffix(".sha256.tmp")
    side_tmp.write_text(json.dumps({"key": key, "sha256": digest}))
    os.replace(side_tmp, path.with_suffix(".sha256"))


def _expected_counts(m: dict[str, Any], normal: int, anomaly: int, train_c, test_c, frac: float) -> dict | None:
    d = m["defaults"]
    if list(train_c) != d["train_corruptions"] or list(test_c) != d["test_corruptions"] \
            or frac != d["early_stop_fraction"]:
        return None
    for t in m["tasks"]:
        if t["normal"] == normal and t["anomaly"] == anomaly:
            return t["expected_counts"]
    return None


def _mnist_digest(mnist: MNIST) -> str:
    """Cache-key part for explicitly given digits: ``"manifest"`` when they are the real
    MNIST of ``mnist.yaml`` (same entry as ``mnist=None``), else a sha256 of the arrays."""
    from ogae_core.data.mnist import array_sha256

    spec = load_manifest("mnist")["arrays"]
    arrays = {"train_images": mnist.train_images, "train_labels": mnist.train_labels,
              "test_images": mnist.test_images, "test_labels": mnist.test_labels}
    digests = {k: array_sha256(a) for k, a in arrays.items()}
    if all(digests[k] == spec[k]["sha256"] for k in arrays):
        return "manifest"
    return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()


def mnistc_task(
    normal: int = 3,
    anomaly: int = 8,
    train_corruptions: Sequence[str] | None = None,
    test_corruptions: Sequence[str] | None = None,
    seed: int | None = None,
    *,
    early_stop_fraction: float | None = None,
    mnist: MNIST | None = None,
    use_cache: bool = True,
) -> MnistCTask:
    """Build (or load from cache) the MNIST-C task ``normal`` vs ``anomaly``.

    Parameters
    ----------
    normal, anomaly : int
        Digits 0..9, different. Items of ``anomaly`` have label 1.
    train_corruptions, test_corruptions : sequence of str, optional
        Defaults from ``mnistc_tasks.yaml``: (identity, motion_blur, translate) and
        (stripe, canny_edges, brightness).
    seed : int, optional
        Seeds the corruptions and the early-stopping holdout (default from the manifest, 0).
    early_stop_fraction : float, optional
        Share of the train items held out for early stopping (default 0.1).
    mnist : MNIST, optional
        Digits to use (default :func:`~ogae_core.data.load_mnist`); a cache hit does not load them.
    use_cache : bool
        Read and write the on-disk cache.

    Returns
    -------
    MnistCTask
        ``train``, ``early_stop``, ``validation``, ``test`` splits; each has ``images``
        (float32, (N, 28, 28) in [0, 1]), ``labels``, ``digits``, ``corruptions``, ``source_index``.

    Examples
    --------
    >>> task = mnistc_task(3, 8)  # doctest: +SKIP
    >>> task.counts()  # doctest: +SKIP
    {'train': 16554, 'early_stop': 1839, 'validation': 5952, 'test': 35946}
    """
    m = tasks_manifest()
    d = m["defaults"]
    for name, v in (("normal", normal), ("anomaly", anomaly)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= 9:
            raise ValueError(f"{name} must be a digit 0..9, got {v!r}")
    if normal == anomaly:
        raise ValueError("normal and anomaly digits must differ")
    train_c = check_corruption_names(d["train_corruptions"] if train_corruptions is None else train_corruptions,
                                 "train_corruptions")
    test_c = check_corruption_names(d["test_corruptions"] if test_corruptions is None else test_corruptions,
                                "test_corruptions")
    seed = int(d.get("seed", 0)) if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    frac = float(d["early_stop_fraction"] if early_stop_fraction is None else early_stop_fraction)
    if not 0.0 <= frac < 1.0:
        raise ValueError(f"early_stop_fraction must be in [0, 1), got {frac}")
    names = tuple(dict.fromkeys(train_c + test_c))
    key_src = {"format": _FORMAT, "manifests": manifest_digest("mnist", "mnistc", "mnistc_tasks"),
               "code": _code_digest(), "normal": int(normal), "anomaly": int(anomaly), "train": train_c, "test": test_c,
               "seed": int(seed), "early_stop_fraction": frac,
               # digits given explicitly (e.g. a slice) must never share the real data's cache entry
               "data": "manifest" if mnist is None else _mnist_digest(mnist)}
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()
    path = cache_dir() / "tasks" / f"mnistc-{normal}v{anomaly}-{key[:20]}.npz"
    parts = _load_cached(path, key) if use_cache else None
    if parts is None:
        parts = _build(mnist or load_mnist(), int(normal), int(anomaly), train_c, test_c, int(seed), frac, names)
        if use_cache:
            _save_cached(path, key, parts)
    splits = {}
    for s in SPLITS:
        p = parts[s]
        for a in p.values():
            a.setflags(write=False)
        splits[s] = Split(pixels=p["images"], labels=p["labels"], digits=p["digits"],
                          corruption_codes=p["corruption_codes"], source_index=p["source_index"],
                          corruption_names=names, source_set="test" if s == "validation" else "train")
    task = MnistCTask(int(normal), int(anomaly), train_c, test_c, int(seed), cache_key=key, **splits)
    expected = _expected_counts(m, normal, anomaly, train_c, test_c, frac)
    full_data = mnist is None or (len(mnist.train_labels), len(mnist.test_labels)) == (60000, 10000)
    if expected is not None and full_data and task.counts() != expected:
        raise ValueError(f"task {normal}v{anomaly} has split sizes {task.counts()}, manifest expects {expected}")
    return task
