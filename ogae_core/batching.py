"""Helpers of the training loop that hold no loop state: seeding, device choice, image
validation, the hold-out split, batching (the sampler) and the latent-spread statistic.

Determinism: :func:`deterministic` is a context manager that seeds everything and asks
torch for deterministic algorithms, then restores the previous flags and random states on
exit, so that a program embedding a :class:`ogae_core.Detector` keeps its own settings.
:func:`set_determinism` does the same without restoring (for scripts).

Samplers cut the training items into batches and fix their layout: a method declares the
layout it needs (:attr:`ogae_core.methods.Method.batch_layout`), the trainer checks that
the sampler provides it. :class:`ShuffledBatches` (the default) serves both layouts of
Experiment 1.

All are re-exported by :mod:`ogae_core.train`.
"""
from __future__ import annotations

import contextlib
import os
import random
from typing import Iterator

import numpy as np
import torch

from ogae_core.validation import check_integer

__all__ = ["ShuffledBatches", "batch_slices", "deterministic", "holdout_split", "images_to_tensor", "latent_spread",
           "resolve_device", "set_determinism"]


def set_determinism(seed: int) -> None:
    """Seed ``random``, NumPy and torch, and request deterministic torch algorithms.

    Deterministic mode's debugging aid of filling every new uninitialized tensor with
    NaN (``torch.utils.deterministic.fill_uninitialized_memory``) is switched off: it does
    not change any result, and costs ~200 fills (about 6 %) per training step of the
    MNIST network on the CPU.

    Examples
    --------
    >>> import torch
    >>> set_determinism(0); a = torch.rand(2)
    >>> set_determinism(0); bool((a == torch.rand(2)).all())
    True
    """
    check_integer("seed", seed, minimum=0)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _determinism_flags() -> dict:
    return {
        "algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "fill_uninitialized_memory": torch.utils.deterministic.fill_uninitialized_memory,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
    }


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Context manager: :func:`set_determinism` inside, the previous state restored on exit.

    Restored: torch's deterministic-algorithm flags, ``fill_uninitialized_memory``, the cuDNN
    flags, ``CUBLAS_WORKSPACE_CONFIG`` and the random states of ``random``, NumPy and torch
    (CPU, and CUDA when initialized).

    Examples
    --------
    >>> import torch
    >>> before = torch.are_deterministic_algorithms_enabled()
    >>> with deterministic(0):
    ...     a = torch.rand(2)
    ...     inside = torch.are_deterministic_algorithms_enabled()
    >>> with deterministic(0):
    ...     b = torch.rand(2)
    >>> bool((a == b).all()), inside, torch.are_deterministic_algorithms_enabled() == before
    (True, True, True)
    """
    check_integer("seed", seed, minimum=0)
    flags = _determinism_flags()
    cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        set_determinism(seed)
        yield
    finally:
        torch.use_deterministic_algorithms(flags["algorithms"], warn_only=flags["warn_only"])
        torch.utils.deterministic.fill_uninitialized_memory = flags["fill_uninitialized_memory"]
        torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
        torch.backends.cudnn.deterministic = flags["cudnn_deterministic"]
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; other names are validated.

    Examples
    --------
    >>> resolve_device("cpu").type
    'cpu'
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto' or a torch device name; got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def holdout_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into (train, hold-out) index arrays (sorted).

    The hold-out has ``round(n * val_fraction)`` images (at least 1 when the fraction is
    positive and ``n >= 2``).

    Examples
    --------
    >>> tr, va = holdout_split(10, 0.2, seed=0)
    >>> len(tr), len(va), sorted(set(tr) | set(va)) == list(range(10))
    (8, 2, True)
    """
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, n - 1) if n > 1 else 0
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def batch_slices(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Cut ``n`` items into ``max(1, round(n / batch_size))`` nearly equal batches.

    Examples
    --------
    >>> [b - a for a, b in batch_slices(250, 100)]
    [125, 125]
    >>> [b - a for a, b in batch_slices(301, 100)]
    [101, 100, 100]
    """
    k = max(1, int(round(n / batch_size)))
    bounds = np.linspace(0, n, k + 1).round().astype(int) if n else np.zeros(2, dtype=int)
    sizes = np.diff(bounds)
    sizes = np.sort(sizes)[::-1]
    ends = np.cumsum(sizes)
    return [(int(e - s), int(e)) for s, e in zip(sizes, ends)]


class ShuffledBatches:
    """The default sampler: every epoch a fresh permutation of the training items, cut into
    :func:`batch_slices` (no item dropped, sizes differ by at most one).

    Layouts (see :attr:`ogae_core.methods.Method.batch_layout`): ``"independent"``, and
    ``"pairs"`` — item ``i`` of the first half of a shuffled batch and item ``i`` of its
    second half are two distinct items drawn at random, the pairs of the siamese
    autoencoder on MNIST. Another sampler (e.g. same voxel in two different controls for
    MRI patches) declares the layouts it provides in its own ``layouts``.

    Examples
    --------
    >>> import torch
    >>> s = ShuffledBatches()
    >>> [len(b) for b in s.epoch_batches(torch.arange(10), 4, torch.Generator().manual_seed(0))]
    [5, 5]
    >>> [b.tolist() for b in s.ordered_batches(torch.arange(5), 3)]
    [[0, 1, 2], [3, 4]]
    """

    layouts: tuple[str, ...] = ("independent", "pairs")

    def epoch_batches(self, idx: torch.Tensor, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        """Index tensors of one training epoch's batches (drawn with ``generator``)."""
        perm = idx[torch.randperm(len(idx), generator=generator).to(idx.device)]
        return [perm[a:b] for a, b in batch_slices(len(perm), batch_size)]

    def ordered_batches(self, idx: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
        """Index tensors of batches in the given order (hold-out losses, phase set-up)."""
        return [idx[a:b] for a, b in batch_slices(len(idx), batch_size)]


def latent_spread(z: torch.Tensor) -> float:
    """Mean squared distance between latent codes, averaged over dimensions: the mean over
    pairs ``i != j`` of ``||z_i - z_j||² / d`` (the paper's Fig. 6 "average pairwise
    MSE"). Computed in closed form in float64.

    Examples
    --------
    >>> import torch
    >>> latent_spread(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
    2.0
    """
    n, d = z.shape
    if n < 2:
        return float("nan")
    z = z.double()
    total = 2 * n * z.pow(2).sum() - 2 * z.sum(0).pow(2).sum()
    return float(total / (n * (n - 1) * d))


def images_to_tensor(X) -> torch.Tensor:
    """Validate images and return float32 ``(N, 1, 28, 28)`` in [0, 1].

    Accepts arrays or tensors of shape ``(N, 28, 28)`` or ``(N, 1, 28, 28)``, float in
    [0, 1] or uint8 (divided by 255).

    Examples
    --------
    >>> import numpy as np
    >>> images_to_tensor(np.zeros((2, 28, 28), dtype=np.uint8)).shape
    torch.Size([2, 1, 28, 28])
    """
    t = X.detach().cpu() if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    elif not (t.is_floating_point()):
        raise ValueError(f"images must be float in [0, 1] or uint8; got dtype {t.dtype}")
    t = t.float()
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4 or tuple(t.shape[1:]) != (1, 28, 28):
        raise ValueError(f"images must have shape (N, 28, 28) or (N, 1, 28, 28); got {tuple(np.shape(X))}")
    if t.shape[0] == 0:
        raise ValueError("no images given (N = 0)")
    if not torch.isfinite(t).all():
        raise ValueError("images contain NaN or infinite values")
    if t.min() < 0 or t.max() > 1:
        raise ValueError(f"float images must lie in [0, 1]; got range [{float(t.min()):.3g}, {float(t.max()):.3g}]")
    return t.contiguous()
