"""Items, metrics and latent embeddings of one MNIST-C run (used by :mod:`.mnistc`).

:func:`build_task` / :func:`task_items` give the images and metadata of the splits a
:class:`~ogae_core.experiments.mnistc_config.TaskSpec` selects (with the task's own ``early_stop``
hold-out), and :func:`latent_frame` the stored UMAP embedding of latent codes.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ogae_core.experiments.mnistc_config import TaskSpec


# ----------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=4)
def build_task(spec: TaskSpec):
    """The :class:`~ogae_core.data.MnistCTask` of ``spec`` (disk cache; in-process cache)."""
    from ogae_core.data import MNIST, load_mnist, mnistc_task

    kwargs = dict(train_corruptions=spec.train_corruptions, test_corruptions=spec.test_corruptions, seed=spec.seed)
    if spec.mnist_limit is None:
        return mnistc_task(spec.normal, spec.anomaly, **kwargs)
    full = load_mnist()
    n_tr, n_te = spec.mnist_limit, max(1, spec.mnist_limit // 6)
    part = MNIST(full.train_images[:n_tr], full.train_labels[:n_tr], full.test_images[:n_te], full.test_labels[:n_te],
                 source=f"{full.source} (first {n_tr} train / {n_te} test images)")
    # a partial MNIST must never reach the task cache (its key does not include the data)
    return mnistc_task(spec.normal, spec.anomaly, mnist=part, use_cache=False, **kwargs)


def stratified_subsample(strata: Sequence[np.ndarray], n: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a subsample of ``n`` items, proportional within each stratum.

    Every stratum keeps at least one item when ``n`` allows; ``None`` or ``n >= N`` keeps
    everything.

    Examples
    --------
    >>> lab = np.r_[np.zeros(90, int), np.ones(10, int)]
    >>> idx = stratified_subsample([lab], 20, seed=0)
    >>> len(idx), int(lab[idx].sum())
    (20, 2)
    """
    keys = pd.MultiIndex.from_arrays([np.asarray(s) for s in strata]) if len(strata) > 1 else pd.Index(np.asarray(strata[0]))
    n_items = len(keys)
    if n is None or n >= n_items:
        return np.arange(n_items)
    codes, uniques = pd.factorize(keys)
    rng = np.random.default_rng(seed)
    counts = np.bincount(codes, minlength=len(uniques))
    quota = np.maximum(1, np.floor(counts * n / n_items)).astype(int)
    quota = np.minimum(quota, counts)
    # hand out the remainder to the strata with the largest fractional parts
    short = n - quota.sum()
    if short > 0:
        frac = counts * n / n_items - np.floor(counts * n / n_items)
        for k in np.argsort(-frac, kind="stable"):
            if short == 0:
                break
            if quota[k] < counts[k]:
                quota[k] += 1
                short -= 1
    picked = [rng.permutation(np.flatnonzero(codes == k))[: quota[k]] for k in range(len(uniques))]
    return np.sort(np.concatenate(picked))


def _split_frame(split, name: str, index: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "split": name, "item": index.astype(np.int64), "label": split.labels[index].astype(np.int64),
        "digit": split.digits[index].astype(np.int64), "corruption": split.corruptions[index].astype(str),
        "source_index": split.source_index[index].astype(np.int64),
    })


def task_items(spec: TaskSpec, task=None) -> dict[str, tuple[np.ndarray, pd.DataFrame]]:
    """Images and metadata of the items a run uses: ``{"train"|"early_stop"|"validation"|"test": (images, frame)}``.

    ``max_train`` subsamples ``train ∪ early_stop`` (stratified by split, label and
    corruption, so both keep their proportions); item numbers of ``early_stop`` continue after
    those of ``train``.
    """
    task = build_task(spec) if task is None else task
    tr_images = np.concatenate([task.train.images, task.early_stop.images])
    tr_frame = pd.concat([_split_frame(task.train, "train", np.arange(len(task.train))),
                          _split_frame(task.early_stop, "early_stop", np.arange(len(task.early_stop)))], ignore_index=True)
    tr_frame["item"] = np.arange(len(tr_frame))
    out = {}
    parts = {"train": (tr_images, tr_frame, spec.max_train),
             "validation": (task.validation.images, _split_frame(task.validation, "validation", np.arange(len(task.validation))),
                            spec.max_validation),
             "test": (task.test.images, _split_frame(task.test, "test", np.arange(len(task.test))), spec.max_test)}
    for i, (name, (images, frame, limit)) in enumerate(parts.items()):
        strata = [frame["label"].to_numpy(), frame["corruption"].to_numpy()]
        if name == "train":
            strata.append(frame["split"].to_numpy())
        idx = stratified_subsample(strata, limit, seed=spec.seed + 17 * i)
        images, frame = images[idx], frame.iloc[idx].reset_index(drop=True)
        if name == "train":
            held = (frame["split"] == "early_stop").to_numpy()
            out["train"] = (images[~held], frame[~held].reset_index(drop=True))
            out["early_stop"] = (images[held], frame[held].reset_index(drop=True))
        else:
            out[name] = (images, frame)
    return out


# ----------------------------------------------------------------------------- latents
def embed_latents(codes: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2-D UMAP embedding of latent codes (``random_state=seed``: deterministic, single-threaded)."""
    import warnings

    import umap

    codes = np.asarray(codes, dtype=np.float64)
    if codes.shape[0] < 4:
        raise ValueError(f"need at least 4 latent codes to embed; got {codes.shape[0]}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by setting random_state" and numba notes
        reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, codes.shape[0] - 1), random_state=seed)
        return reducer.fit_transform(codes)


def latent_frame(det, items: Mapping[str, tuple[np.ndarray, pd.DataFrame]], n: int, seed: int) -> pd.DataFrame:
    """UMAP of the codes of a stratified sample of train (normal) and test items."""
    images, frames = [], []
    share = {"train": n // 3, "test": n - n // 3}
    for name, k in share.items():
        x, f = items[name]
        idx = stratified_subsample([f["label"].to_numpy(), f["corruption"].to_numpy()], k, seed=seed)
        images.append(x[idx])
        frames.append(f.iloc[idx])
    frame = pd.concat(frames, ignore_index=True)
    xy = embed_latents(det.encode(np.concatenate(images)), seed=seed)
    return frame.assign(umap_x=xy[:, 0], umap_y=xy[:, 1])
