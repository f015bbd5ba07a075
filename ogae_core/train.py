"""The one training loop of every method: Adam, early stopping, history, checkpoints.

Paper defaults (all configurable in :class:`TrainConfig`): Adam with learning rate 1e-3,
batches of 100, 20 epochs, early stopping on a 10 % hold-out of the training images.

* Determinism: :func:`~ogae_core.batching.deterministic` (a context manager) or
  :func:`set_determinism` seed Python, NumPy and torch and ask torch for deterministic
  algorithms; the hold-out split and the batch order come from the seed alone, so two CPU
  runs with the same seed are bit-identical.
* Batches: a sampler (default :class:`~ogae_core.batching.ShuffledBatches`) draws a new
  permutation of the training split every epoch and cuts it into ``round(n / batch_size)``
  nearly equal batches (sizes differ by at most one; no image dropped, no tiny last batch).
  The method declares what it needs (:meth:`~ogae_core.methods.Method.min_batch_size`,
  :attr:`~ogae_core.methods.Method.batch_layout`); the trainer checks the sampler and the
  batch sizes against it up front.
* Phases: a method's plan (:meth:`~ogae_core.methods.base.Method.phases`) is a list of
  phases, e.g. Deep SVDD's autoencoder pretraining then its own loss, or OgAE's expander
  stage then its expander + compactor stage. Early stopping (``early_stopping``) acts per
  phase by default: after ``patience`` epochs without hold-out improvement the phase ends,
  its best weights are restored, and the next phase starts — which can roll a later phase
  back to its first epoch. ``early_stopping="run"`` is one criterion over all epochs
  instead: one best hold-out loss and one patience counter across the phases, the whole
  run stops when patience runs out, and the best weights of the whole run are restored
  once, at the end (meaningful when the hold-out loss is comparable across phases, as
  OgAE's MSE + λG is; not across Deep SVDD's pretraining and its own loss).
* History: one flat dict per epoch (see :data:`HISTORY_COLUMNS`), ready for
  ``pandas.DataFrame(history)``; NaN where a column does not apply to the method. What the
  columns mean is declared by the method (:attr:`~ogae_core.methods.Method.history_columns`);
  guidance weights come from :meth:`~ogae_core.methods.Method.phase_weights`.
* Checkpoints (``checkpoint_dir``): after every epoch, atomically, the model
  (safetensors), optimizer and RNG states (safetensors) and the loop state (JSON);
  ``resume=True`` continues an interrupted run exactly where it stopped.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ogae_core.batching import (
    ShuffledBatches,
    batch_slices,
    deterministic,
    holdout_split,
    images_to_tensor,
    latent_spread,
    resolve_device,
    set_determinism,
)
from ogae_core.checkpoints import (
    checkpoint_path,
    load_checkpoint,
    load_model,
    model_config,
    save_checkpoint,
    save_model,
    state_dict_cpu,
)
from ogae_core.methods import LOSS_TERMS, Method
from ogae_core.validation import check_integer

__all__ = [
    "EARLY_STOPPING", "HISTORY_COLUMNS", "ShuffledBatches", "TrainConfig", "TrainResult", "TrainingInterrupted", "batch_slices",
    "deterministic", "holdout_split", "images_to_tensor", "latent_spread", "load_model", "model_config",
    "resolve_device", "save_model", "set_determinism", "train",
]

#: Columns of every history row, in order. Loss terms are training means (``loss_*``).
HISTORY_COLUMNS = (
    "epoch", "phase", "phase_epoch", "train_loss", "val_loss",
    *(f"loss_{t}" for t in LOSS_TERMS),
    "latent_spread", "misclassified_fraction", "n_support", "sv_fraction", "rho", "solver_iterations",
    "expander_weight", "compactor_weight", "radius", "improved", "n_train", "n_val", "seconds",
)

#: Early-stopping modes of :class:`TrainConfig`: one criterion per phase, or one for the run.
EARLY_STOPPING = ("phase", "run")

_DIAGNOSTICS = ("misclassified_fraction", "n_support", "sv_fraction", "rho", "solver_iterations")


@dataclass(frozen=True)
class TrainConfig:
    """Options of :func:`train` (paper defaults).

    Attributes
    ----------
    epochs : int
        Epochs of the method's main objective (pretraining epochs of the Deep SVDD family
        come on top, see their ``pretrain_epochs``).
    batch_size : int
        Target batch size.
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam weight decay (0: none, for every method).
    val_fraction : float
        Hold-out fraction for early stopping, in [0, 1); 0 disables early stopping.
    patience : int
        Epochs without improvement of the hold-out loss before a phase stops (0: never
        stop early; the best hold-out weights are still restored).
    min_delta : float
        Smallest decrease counted as an improvement.
    restore_best : bool
        Restore the best hold-out weights at the end of each phase (``early_stopping="run"``:
        at the end of the run).
    early_stopping : {"phase", "run"}
        ``"phase"``: one criterion per phase (patience and best weights per phase);
        ``"run"``: one criterion over all epochs (see the module docstring).
    seed : int
        Seed of the initialization, the split, the batch order and sampling.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    progress : bool
        One ``tqdm.auto`` bar per epoch.
    log : bool
        One summary line per epoch.
    channels_last : bool
        Channels-last memory format (faster convolutions on CPU).
    """

    epochs: int = 20
    batch_size: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True
    early_stopping: str = "phase"
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    log: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "seed"):
            check_integer(name, getattr(self, name), minimum=1 if name == "batch_size" else 0)
        if not (self.lr > 0):
            raise ValueError(f"lr must be > 0; got {self.lr!r}")
        if not (self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0; got {self.weight_decay!r}")
        if not (0 <= self.val_fraction < 1):
            raise ValueError(f"val_fraction must be in [0, 1); got {self.val_fraction!r}")
        if self.early_stopping not in EARLY_STOPPING:
            raise ValueError(f"early_stopping must be one of {EARLY_STOPPING}; got {self.early_stopping!r}")
        if not (self.min_delta >= 0):
            raise ValueError(f"min_delta must be >= 0; got {self.min_delta!r}")
        resolve_device(self.device)

    def to_dict(self) -> dict:
        """JSON-serializable dictionary."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, **overrides) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; a key this version does not know raises, a missing one
        takes the field's default (e.g. ``early_stopping="phase"`` for files written before it
        existed, which is how they trained); ``overrides`` replace stored values (e.g. the
        ``device`` of the machine that loads a model trained elsewhere).

        Examples
        --------
        >>> TrainConfig.from_dict({"epochs": 3, "device": "cuda"}, device="cpu").device
        'cpu'
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown trainer option(s) {unknown}; valid: {sorted(fields)}")
        return cls(**{**d, **overrides})


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns: the history rows and where each phase ended."""

    history: list
    stopped_early: dict
    best_val: dict
    seconds: float


class TrainingInterrupted(RuntimeError):
    """Raised by a callback to stop training after a checkpoint (used to test resuming)."""


# ---------------------------------------------------------------------- the loop
def _make_optimizer(method: Method, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(method.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _gather(X: torch.Tensor, batches: Sequence[torch.Tensor], channels_last: bool) -> Iterator[torch.Tensor]:
    for b in batches:
        x = X[b]
        yield x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def _evaluate(method: Method, X: torch.Tensor, idx: torch.Tensor, phase: str, epoch: int, config: TrainConfig,
              sampler):
    """Hold-out loss (eval mode, weighted by batch size) and the codes of the hold-out."""
    method.eval()
    total, n, zs = 0.0, 0, []
    for x in _gather(X, sampler.ordered_batches(idx, config.batch_size), config.channels_last):
        out = method.loss(x, phase, epoch)
        total += float(out.total) * x.shape[0]
        n += x.shape[0]
        zs.append(out.z)  # eval mode: the deterministic codes (posterior means for VAEs)
    return (total / n if n else float("nan")), (torch.cat(zs) if zs else None)


def train(
    method: Method,
    X,
    config: TrainConfig | None = None,
    *,
    X_val=None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Callable[[dict], None]] = (),
    sampler=None,
) -> TrainResult:
    """Train ``method`` on images ``X`` (see :func:`images_to_tensor`) in place.

    Parameters
    ----------
    method : Method
        A freshly built method (see :func:`ogae_core.methods.build_method`).
    X : array-like or torch.Tensor
        Training images; ``config.val_fraction`` of them are held out for early stopping
        unless ``X_val`` is given.
    X_val : array-like or torch.Tensor, optional
        Explicit hold-out images for early stopping (e.g. the task's ``early_stop``
        split); then every image of ``X`` is trained on and ``val_fraction`` is ignored.
    config : TrainConfig, optional
        Loop options (paper defaults).
    checkpoint_dir : path, optional
        Where to checkpoint after every epoch (directory ``checkpoint_dir/latest``).
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` if there is one (its method,
        hyperparameters and training config must match, else ``ValueError``).
    callbacks : sequence of callables
        Called with each history row after the epoch's checkpoint; raising
        :class:`TrainingInterrupted` stops the run cleanly.
    sampler : object, optional
        Cuts index tensors into batches (``epoch_batches``, ``ordered_batches``) and lists
        the batch ``layouts`` it provides; default :class:`ShuffledBatches`. ``ValueError``
        when it does not provide the method's :attr:`~ogae_core.methods.Method.batch_layout`.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> import torch
    >>> from ogae_core.methods import build_method
    >>> with deterministic(0):
    ...     m = build_method("ae")
    ...     res = train(m, torch.rand(40, 28, 28), TrainConfig(epochs=1, batch_size=20, progress=False, log=False))
    >>> len(res.history), res.history[0]["phase"]
    (1, 'train')
    """
    config = config or TrainConfig()
    sampler = ShuffledBatches() if sampler is None else sampler
    if method.batch_layout not in sampler.layouts:
        raise ValueError(f"{method.name} needs batches laid out as {method.batch_layout!r} but the sampler "
                         f"{type(sampler).__name__} provides {tuple(sampler.layouts)}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    device = resolve_device(config.device)
    X = images_to_tensor(X, method.input_shape).to(device)
    method.to(device)
    if config.channels_last:
        method.to(memory_format=torch.channels_last)
    if X_val is None:
        tr_np, va_np = holdout_split(X.shape[0], config.val_fraction, config.seed)
    else:
        n = X.shape[0]
        X = torch.cat([X, images_to_tensor(X_val, method.input_shape).to(device)])
        tr_np, va_np = np.arange(n), np.arange(n, X.shape[0])
    tr_idx = torch.as_tensor(tr_np, device=device)
    va_idx = torch.as_tensor(va_np, device=device)
    _check_batch_sizes(method, tr_idx, va_idx, config, sampler)
    gen = torch.Generator().manual_seed(config.seed + 1)
    phases = [p for p in method.phases(config.epochs) if p.epochs > 0]
    optimizer = _make_optimizer(method, config)
    ckpt = Path(checkpoint_dir) / "latest" if checkpoint_dir is not None else None

    fingerprint = _fingerprint(X, len(va_idx))
    loop = {"phase_index": 0, "phase_epoch": 0, "epoch": 0, "best_val": None, "bad_epochs": 0,
            "history": [], "stopped_early": {}, "best_vals": {}, "seconds": 0.0, "phase_started": False,
            "data_sha1": fingerprint}
    best_state = None
    per_phase = config.early_stopping == "phase"
    if resume and ckpt is not None and checkpoint_path(ckpt) is not None:
        loop, best_state = load_checkpoint(ckpt, method, optimizer, gen, config)
        if loop.get("data_sha1") != fingerprint:
            raise ValueError(f"checkpoint in {ckpt} was made with different training images (SHA-1 of the data differs)")

    def train_batches() -> Iterator[torch.Tensor]:
        return _gather(X, sampler.ordered_batches(tr_idx, config.batch_size), config.channels_last)

    while loop["phase_index"] < len(phases):
        phase = phases[loop["phase_index"]]
        if not loop["phase_started"]:
            if phase.new_optimizer and loop["phase_index"] > 0:
                optimizer = _make_optimizer(method, config)
            method.start_phase(phase.name, train_batches)
            loop.update(phase_started=True, phase_epoch=0)
            if per_phase:
                loop.update(best_val=None, bad_epochs=0)
                best_state = None
        if loop["phase_epoch"] >= phase.epochs:
            last = loop["phase_index"] == len(phases) - 1
            _end_phase(method, loop, best_state, config, phase.name, early=False, restore=per_phase or last)
            best_state = None if per_phase else best_state
            continue
        row, improved_state = _run_epoch(method, X, tr_idx, va_idx, gen, optimizer, phase, loop, config, sampler)
        if improved_state is not None:
            best_state = improved_state
        loop["history"].append(row)
        loop["epoch"] += 1
        loop["phase_epoch"] += 1
        loop["seconds"] += row["seconds"]
        stop = len(va_idx) > 0 and loop["bad_epochs"] >= max(1, config.patience) and config.patience > 0
        if stop or loop["phase_epoch"] >= phase.epochs:
            early = stop and (loop["phase_epoch"] < phase.epochs or (not per_phase and loop["phase_index"] < len(phases) - 1))
            last = loop["phase_index"] == len(phases) - 1 or (stop and not per_phase)
            _end_phase(method, loop, best_state, config, phase.name, early=early, restore=per_phase or last)
            if stop and not per_phase:  # one criterion for the run: the remaining phases are skipped
                loop["phase_index"] = len(phases)
            best_state = None if per_phase or last else best_state
        if ckpt is not None:
            save_checkpoint(ckpt, method, optimizer, best_state, loop, gen, config)
        for cb in callbacks:
            cb(row)
    method.eval()
    return TrainResult(list(loop["history"]), dict(loop["stopped_early"]), dict(loop["best_vals"]), loop["seconds"])


def _fingerprint(X: torch.Tensor, n_val: int) -> str:
    """SHA-1 of the images (and of the hold-out size), to refuse resuming on other data."""
    h = hashlib.sha1(X.detach().cpu().contiguous().numpy().tobytes())
    h.update(str(n_val).encode())
    return h.hexdigest()


def _check_batch_sizes(method: Method, tr_idx: torch.Tensor, va_idx: torch.Tensor, config: TrainConfig,
                       sampler) -> None:
    need = method.min_batch_size()
    reason = method.min_batch_reason()
    for what, idx in (("training split", tr_idx), ("hold-out", va_idx)):
        if len(idx) == 0:
            continue
        smallest = min(len(b) for b in sampler.ordered_batches(idx, config.batch_size))
        if smallest < need:
            raise ValueError(
                f"{method.name}: the {what} of {len(idx)} images gives batches of {smallest} but this method needs "
                f"batches of at least {need}{f' ({reason})' if reason else ''}: use more images, a larger "
                f"batch_size or val_fraction, or other hyperparameters"
            )


def _end_phase(method: Method, loop: dict, best_state, config: TrainConfig, name: str, early: bool,
               restore: bool = True) -> None:
    if restore and config.restore_best and best_state is not None:
        device = next(method.parameters()).device
        method.load_state_dict({k: v.to(device) for k, v in best_state.items()})
    loop["stopped_early"][name] = bool(early)
    loop["best_vals"][name] = loop["best_val"]
    loop.update(phase_index=loop["phase_index"] + 1, phase_started=False, phase_epoch=0)


def _run_epoch(method, X, tr_idx, va_idx, gen, optimizer, phase, loop, config, sampler):
    t0 = time.perf_counter()
    method.train()
    batches = sampler.epoch_batches(tr_idx, config.batch_size, gen)
    sums: dict[str, float] = {}
    diag: dict[str, float] = {}
    n_seen, n_steps = 0, 0
    desc = f"epoch {loop['epoch'] + 1} [{phase.name} {loop['phase_epoch'] + 1}/{phase.epochs}]"
    bar = tqdm(total=len(batches), desc=desc, leave=False, disable=not config.progress, unit="batch")
    for batch in batches:
        x = X[batch]
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = method.loss(x, phase.name, loop["phase_epoch"])
        if not torch.isfinite(out.total):
            bar.close()
            raise FloatingPointError(f"non-finite loss at epoch {loop['epoch'] + 1} ({phase.name}): {float(out.total.detach())}")
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        optimizer.step()
        k = x.shape[0]
        sums["total"] = sums.get("total", 0.0) + float(out.total.detach()) * k
        for t, v in out.terms.items():
            sums[t] = sums.get(t, 0.0) + float(v) * k
        for t, v in out.diagnostics.items():
            diag[t] = diag.get(t, 0.0) + float(v)
        n_seen += k
        n_steps += 1
        bar.update(1)
        bar.set_postfix(loss=f"{float(out.total.detach()):.4g}", refresh=False)
    bar.close()
    extra = method.end_epoch(phase.name, loop["phase_epoch"])

    if len(va_idx) > 0:
        val_loss, z_eval = _evaluate(method, X, va_idx, phase.name, loop["phase_epoch"], config, sampler)
    else:
        val_loss = float("nan")
        with torch.no_grad():
            method.eval()
            z_eval = method.encode(X[tr_idx[:1000]])
    improved = False
    state = None
    if math.isfinite(val_loss):
        best = loop["best_val"]
        if best is None or val_loss < best - config.min_delta:
            loop["best_val"], loop["bad_epochs"], improved = val_loss, 0, True
            if config.restore_best:
                state = state_dict_cpu(method)
        else:
            loop["bad_epochs"] += 1

    nan = float("nan")
    # the common columns, then those the method declares beyond them (e.g. the VQ-VAE's perplexity)
    row = {c: nan for c in (*HISTORY_COLUMNS, *(c for c in method.history_columns if c not in HISTORY_COLUMNS))}
    row.update(epoch=loop["epoch"] + 1, phase=phase.name, phase_epoch=loop["phase_epoch"] + 1,
               train_loss=sums["total"] / n_seen, val_loss=val_loss, improved=improved,
               n_train=int(len(tr_idx)), n_val=int(len(va_idx)))
    for t in LOSS_TERMS:
        if t in sums:
            row[f"loss_{t}"] = sums[t] / n_seen
    for t in _DIAGNOSTICS:
        if t in diag:
            row[t] = diag[t] / n_steps
    row.update({k: v for k, v in method.phase_weights(phase.name).items() if k in row})
    row.update({k: v for k, v in extra.items() if k in row})
    row["latent_spread"] = latent_spread(z_eval) if z_eval is not None else nan
    row["seconds"] = time.perf_counter() - t0
    if config.log:
        tqdm.write(_log_line(row))
    return row, state


def _log_line(row: dict) -> str:
    parts = [f"epoch {row['epoch']:>3} {row['phase']:<9}", f"train {row['train_loss']:.5g}", f"val {row['val_loss']:.5g}"]
    for t in LOSS_TERMS:
        v = row[f"loss_{t}"]
        if isinstance(v, float) and math.isfinite(v) and t not in ("expander", "compactor"):
            parts.append(f"{t} {v:.4g}")
    parts.append(f"spread {row['latent_spread']:.4g}")
    if math.isfinite(row["misclassified_fraction"]):
        parts.append(f"miscl {row['misclassified_fraction']:.3f} SV {row['n_support']:.1f} rho {row['rho']:.4g}")
    if math.isfinite(row["radius"]):
        parts.append(f"R {row['radius']:.4g}")
    parts.append(f"{row['seconds']:.1f}s" + (" *" if row["improved"] else ""))
    return " | ".join(parts)
