"""Helpers of the training loop that hold no loop state: seeding, device choice, image
validation, the hold-out split, batching (the sampler) and the latent-spread statistic.

Determinism: :func:`deterministic` is a context manager that seeds everything and asks
torch for deterministic algorithms, then restores the previous flags and random states on
exit, so that a program embedding a :class:`ogae_core.Detector` keeps its own settings.
:func:`set_determinism` does the same without restoring (for scripts).

Samplers cut the training items into batches and fix their layout: a method declares the
layout it needs (:attr:`ogae_core.methods.Method.batch_layout`), the trainer checks that
the sampler provides it. :class:`ShuffledBatches` (the default) serves both layouts of
Experiment 1; :class:`PatchBatches` samples the patch banks of the brain-MRI patch models
(random patches over training controls and locations every epoch, or pairs at the same voxel
from two different controls for the siamese autoencoder).

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

__all__ = ["PatchBatches", "ShuffledBatches", "batch_slices", "deterministic", "holdout_split", "images_to_tensor", "latent_spread",
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


class PatchBatches:
    """Sampler of a patch bank laid out subject-major: item ``i`` is the patch of subject
    ``i // n_locations`` centred on location ``i % n_locations`` (every subject has a patch at
    every location; see :func:`ogae_core.volumes.patch_training.patch_bank`).

    Every epoch draws ``patches_per_epoch`` patches afresh from ``generator`` (seeded by the
    trainer), so that an epoch is "random patches over training controls and locations":

    * ``pairs=False`` (layout ``"independent"``): patches drawn without replacement from the
      given items (all of them when ``patches_per_epoch`` is ``None`` or larger);
    * ``pairs=True`` (layout ``"pairs"``, the siamese autoencoder): ``patches_per_epoch // 2``
      pairs (``len(items) // 2`` when ``None``) drawn with replacement; each pair is a location
      drawn uniformly and two *different* subjects drawn uniformly among the given items'
      subjects; a batch is the first patches of its pairs followed by the second ones (item
      ``j`` of the first half goes with item ``j`` of the second half). With a single subject
      among the items (e.g. a hold-out of one control) the two patches come from two
      different locations of that subject.

    :meth:`ordered_batches` (hold-out losses) is deterministic: the first ``eval_items`` items
    in order, or for pairs the same drawing with a fixed seed.

    Parameters
    ----------
    n_locations : int
        Locations per subject in the bank.
    patches_per_epoch : int, optional
        Patches per training epoch (``None``: every item once).
    pairs : bool
        Provide the ``"pairs"`` layout instead of ``"independent"``.
    eval_items : int, optional
        Most items of a hold-out evaluation (``None``: all).

    Examples
    --------
    >>> import torch
    >>> s = PatchBatches(n_locations=5, patches_per_epoch=8, pairs=True)
    >>> b = s.epoch_batches(torch.arange(15), 4, torch.Generator().manual_seed(0))  # 3 subjects x 5 locations
    >>> [len(x) for x in b]
    [4, 4]
    >>> first, second = b[0][:2], b[0][2:]
    >>> bool((first % 5 == second % 5).all()), bool((first // 5 != second // 5).all())
    (True, True)
    >>> s.layouts
    ('pairs',)
    """

    def __init__(self, n_locations: int, patches_per_epoch: int | None = None, pairs: bool = False,
                 eval_items: int | None = None) -> None:
        self.n_locations = check_integer("n_locations", n_locations, minimum=1)
        self.patches_per_epoch = None if patches_per_epoch is None else check_integer(
            "patches_per_epoch", patches_per_epoch, minimum=2 if pairs else 1)
        self.pairs = bool(pairs)
        self.eval_items = None if eval_items is None else check_integer("eval_items", eval_items, minimum=1)
        self.layouts: tuple[str, ...] = ("pairs",) if self.pairs else ("independent",)

    def _subjects(self, idx: torch.Tensor) -> torch.Tensor:
        subjects = torch.unique(torch.div(idx, self.n_locations, rounding_mode="floor"))
        if len(idx) != len(subjects) * self.n_locations:
            raise ValueError(f"PatchBatches needs every location of each subject in the items; got {len(idx)} items "
                             f"for {len(subjects)} subjects of {self.n_locations} locations")
        return subjects

    def _pair_batches(self, idx: torch.Tensor, n_items: int, batch_size: int,
                      generator: torch.Generator) -> list[torch.Tensor]:
        subjects = self._subjects(idx).cpu()
        n_pairs = max(1, n_items // 2)
        if len(subjects) >= 2:
            loc = torch.randint(self.n_locations, (n_pairs,), generator=generator)
            a = torch.randint(len(subjects), (n_pairs,), generator=generator)
            b = (a + torch.randint(1, len(subjects), (n_pairs,), generator=generator)) % len(subjects)
            first, second = subjects[a] * self.n_locations + loc, subjects[b] * self.n_locations + loc
        else:
            if self.n_locations < 2:
                raise ValueError("pairs from a single subject need at least two locations")
            loc = torch.randint(self.n_locations, (n_pairs,), generator=generator)
            other = (loc + torch.randint(1, self.n_locations, (n_pairs,), generator=generator)) % self.n_locations
            base = subjects[0] * self.n_locations
            first, second = base + loc, base + other
        first, second = first.to(idx.device), second.to(idx.device)
        return [torch.cat([first[a:b], second[a:b]]) for a, b in batch_slices(n_pairs, max(1, batch_size // 2))]

    def epoch_batches(self, idx: torch.Tensor, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        """Index tensors of one training epoch's batches (drawn with ``generator``)."""
        if self.pairs:  # pairs are drawn with replacement: any number per epoch
            return self._pair_batches(idx, self.patches_per_epoch or len(idx), batch_size, generator)
        n = len(idx) if self.patches_per_epoch is None else min(self.patches_per_epoch, len(idx))
        self._subjects(idx)
        chosen = idx[torch.randperm(len(idx), generator=generator)[:n].to(idx.device)]
        return [chosen[a:b] for a, b in batch_slices(len(chosen), batch_size)]

    def ordered_batches(self, idx: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
        """Deterministic batches of the items (hold-out losses, phase set-up)."""
        n = len(idx) if self.eval_items is None else min(self.eval_items, len(idx))
        if self.pairs:
            return self._pair_batches(idx, n, batch_size, torch.Generator().manual_seed(0))
        step = max(1, len(idx) // n)
        chosen = idx[::step][:n]
        return [chosen[a:b] for a, b in batch_slices(len(chosen), batch_size)]


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


def images_to_tensor(X, image_shape: tuple[int, int, int] = (1, 28, 28)) -> torch.Tensor:
    """Validate images and return float32 ``(N, *image_shape)`` in [0, 1].

    Accepts arrays or tensors of shape ``(N, H, W)`` or ``(N, 1, H, W)`` with ``(1, H, W) ==
    image_shape`` (MNIST's ``(1, 28, 28)`` by default; ``(1, 15, 15)`` for the S-H2 patches,
    see :attr:`ogae_core.methods.Method.input_shape`), float in [0, 1] or uint8 (divided by 255).

    Examples
    --------
    >>> import numpy as np
    >>> images_to_tensor(np.zeros((2, 28, 28), dtype=np.uint8)).shape
    torch.Size([2, 1, 28, 28])
    >>> images_to_tensor(np.zeros((3, 15, 15), dtype=np.float32), (1, 15, 15)).shape
    torch.Size([3, 1, 15, 15])
    """
    image_shape = tuple(int(v) for v in image_shape)
    t = X.detach().cpu() if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    elif not (t.is_floating_point()):
        raise ValueError(f"images must be float in [0, 1] or uint8; got dtype {t.dtype}")
    t = t.float()
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.dim() != 4 or tuple(t.shape[1:]) != image_shape:
        h, w = image_shape[1:]
        raise ValueError(f"images must have shape (N, {h}, {w}) or (N, 1, {h}, {w}); got {tuple(np.shape(X))}")
    if t.shape[0] == 0:
        raise ValueError("no images given (N = 0)")
    if not torch.isfinite(t).all():
        raise ValueError("images contain NaN or infinite values")
    if t.min() < 0 or t.max() > 1:
        raise ValueError(f"float images must lie in [0, 1]; got range [{float(t.min()):.3g}, {float(t.max()):.3g}]")
    return t.contiguous()
