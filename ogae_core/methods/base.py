"""What every method shares: a loss on a batch, phases, and scoring rules.

A method is an ``nn.Module`` that owns the backbone (``self.backbone``) and its own state
as buffers (e.g. the Deep SVDD center), so that one ``state_dict`` is the whole model.
It holds no loop: :mod:`ogae_core.train` drives it through

* :meth:`Method.phases` — the epoch plan (e.g. AE pretraining, then the method's loss);
* :meth:`Method.start_phase` — once per phase, with an iterator over the training data
  (Deep SVDD computes its center here);
* :meth:`Method.loss` — the training loss on one batch, with its terms by name;
* :meth:`Method.end_epoch` — after each training epoch (soft Deep SVDD updates R here).

Scoring: ``"recons"`` (mean squared reconstruction error per image) is implemented here;
``"svdd"`` by the Deep SVDD family; ``"ocsvm"`` (an OCSVM fitted on :meth:`Method.encode`
of the training set) by :class:`ogae_core.Detector`. Every score is "higher = more
anomalous".

What a method declares (the trainer, :class:`ogae_core.Detector` and the presets ask these,
never the method's name):

* :attr:`Method.default_scoring` — the scoring a detector uses when none is given;
* :meth:`Method.min_batch_size` / :meth:`Method.min_batch_reason` — the smallest batch
  :meth:`Method.loss` accepts and why;
* :attr:`Method.batch_layout` — how a batch must be laid out: ``"independent"`` items, or
  ``"pairs"`` (item ``i`` of the first half goes with item ``i`` of the second half); the
  sampler that cuts the batches (see :mod:`ogae_core.batching`) must provide it;
* :meth:`Method.phase_weights` — guidance weights of a phase, filling the history's
  ``expander_weight`` / ``compactor_weight`` columns;
* :attr:`Method.history_columns` — what the history columns the method fills mean;
* :meth:`Method.scale_with_epochs` — how epoch-dependent hyperparameters follow a change of
  the number of epochs (OgAE's ``switch_epoch``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ogae_core.nets import BackboneConfig, PatchBackboneConfig, build_backbone
from ogae_core.validation import check_real

#: Batch layouts a method may declare (see :attr:`Method.batch_layout`).
BATCH_LAYOUTS = ("independent", "pairs")

#: Meaning of the history columns every method fills (see :attr:`Method.history_columns`).
COMMON_HISTORY_COLUMNS = {
    "train_loss": "mean training loss of the epoch (weighted by batch size)",
    "val_loss": "hold-out loss after the epoch (eval mode)",
    "loss_reconstruction": "pixel-mean squared reconstruction error (training mean)",
    "latent_spread": "mean pairwise squared distance of hold-out codes per latent dimension",
}

#: Column names of the loss terms in the training history (NaN where a term does not apply).
LOSS_TERMS = ("reconstruction", "kl", "similarity", "svdd", "guidance", "expander", "compactor")


class LossOutput(NamedTuple):
    """Result of :meth:`Method.loss`.

    Attributes
    ----------
    total : torch.Tensor
        Scalar to minimize.
    terms : dict of str to torch.Tensor
        Detached scalar terms by name (names from :data:`LOSS_TERMS`).
    z : torch.Tensor
        Detached latent codes of the batch.
    diagnostics : dict of str to float
        Per-step numbers (OCSVM diagnostics for OgAE), averaged per epoch by the trainer.
    """

    total: torch.Tensor
    terms: dict
    z: torch.Tensor
    diagnostics: dict


@dataclass(frozen=True)
class Phase:
    """A block of consecutive epochs trained with one objective.

    ``new_optimizer`` starts a fresh Adam state at the beginning of the phase (as Ruff et
    al. do between autoencoder pretraining and Deep SVDD training). Early stopping acts
    per phase: when the hold-out loss stops improving, the phase ends (best weights
    restored) and the next phase starts.
    """

    name: str
    epochs: int
    new_optimizer: bool = False


@dataclass(frozen=True)
class MethodConfig:
    """Base class of the frozen hyperparameter dataclasses."""

    def to_dict(self) -> dict:
        """JSON-serializable dictionary of the hyperparameters."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MethodConfig":
        """Build from a dictionary; unknown names raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {sorted(unknown)} for {cls.__name__}; valid: {sorted(known)}"
            )
        return cls(**d)


def check_nonnegative(name: str, value: float, allow_zero: bool = True) -> float:
    """``value`` if it is a real number ``>= 0`` (``> 0`` without ``allow_zero``), else ``ValueError``.

    Examples
    --------
    >>> check_nonnegative("lam", 0.0)
    0.0
    >>> check_nonnegative("gamma", 0.0, allow_zero=False)
    Traceback (most recent call last):
    ...
    ValueError: gamma must be a real number > 0; got 0.0
    """
    return check_real(name, value, 0, strict_minimum=not allow_zero)


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, shape ``(N,)``.

    Examples
    --------
    >>> import torch
    >>> reconstruction_error(torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)).tolist()
    [1.0, 1.0]
    """
    return (x - x_hat).pow(2).flatten(1).mean(1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, summed over latent dims, shape ``(N,)``.

    Examples
    --------
    >>> import torch
    >>> kl_divergence(torch.ones(1, 3), torch.zeros(1, 3)).tolist()
    [1.5]
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


class Method(nn.Module):
    """Base class: subclasses set the class attributes and implement :meth:`loss`.

    Parameters
    ----------
    config : MethodConfig, optional
        Hyperparameters (the subclass's ``Config``); defaults when omitted.
    backbone : BackboneConfig or PatchBackboneConfig, optional
        Network options; the config's type chooses the network (the S-H1 MNIST backbone by
        default, the S-H2 patch network of Experiment 2 for a
        :class:`~ogae_core.nets.PatchBackboneConfig`, see :func:`ogae_core.nets.build_backbone`);
        :meth:`adapt_backbone` then enforces what the method needs (bias-free, variational).
        ``None``: the MNIST network with the method's :attr:`network_defaults`.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = MethodConfig
    scorings: ClassVar[tuple] = ("recons", "ocsvm")
    default_scoring: ClassVar[str] = "recons"
    variational: ClassVar[bool] = False
    bias_free: ClassVar[bool] = False
    description: ClassVar[str] = ""
    #: How a batch must be laid out (one of :data:`BATCH_LAYOUTS`).
    batch_layout: ClassVar[str] = "independent"
    #: ``{history column: meaning}`` of the columns this method fills (besides the
    #: trainer's own); :data:`COMMON_HISTORY_COLUMNS` hold those every method fills.
    history_columns: ClassVar[dict] = COMMON_HISTORY_COLUMNS
    #: Options of the MNIST network (:class:`~ogae_core.nets.BackboneConfig`) this method
    #: trains with when a run does not set them (e.g. OgAE's LeakyReLU slope).
    network_defaults: ClassVar[dict] = {}
    #: Trainer options (:class:`~ogae_core.train.TrainConfig`) this method trains with when a
    #: run does not set them (e.g. OgAE's one early-stopping criterion over all epochs). Applied
    #: by :class:`~ogae_core.Detector`, the sweeps and the MRI patch trainer; a direct
    #: ``train(model, X, TrainConfig(...))`` uses the config it is given.
    training_defaults: ClassVar[dict] = {}

    @classmethod
    def default_settings(cls, network: bool = True) -> dict:
        """Settings a run of this method takes from its defaults beyond its config's fields:
        :attr:`network_defaults` (``network=False``: left out, e.g. on the patch network, which
        has none of them) and :attr:`training_defaults`. Sweeps store those a run did not set
        (``resolved_settings``), so a resumed sweep notices when a default changed.

        Examples
        --------
        >>> Method.default_settings()
        {}
        """
        return {**(cls.network_defaults if network else {}), **cls.training_defaults}

    @classmethod
    def mnist_backbone(cls, options: Mapping[str, Any] | None = None) -> BackboneConfig:
        """The MNIST network this method trains with: :attr:`network_defaults`, then ``options``
        (fields of :class:`~ogae_core.nets.BackboneConfig`; unknown ones raise ``ValueError``).

        Examples
        --------
        >>> Method.mnist_backbone({"latent_dim": 8}).latent_dim
        8
        """
        return BackboneConfig.from_dict({**cls.network_defaults, **dict(options or {})})

    def __init__(self, config: MethodConfig | None = None,
                 backbone: BackboneConfig | PatchBackboneConfig | None = None) -> None:
        super().__init__()
        config = config if config is not None else self.Config()
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name} expects a {self.Config.__name__}; got {type(config).__name__}")
        self.config = config
        self.backbone_config = self.adapt_backbone(backbone or self.mnist_backbone())
        self.backbone = build_backbone(self.backbone_config)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one input item: ``(1, 28, 28)`` on the MNIST backbone,
        ``(1, p, p)`` on the patch network (what the trainer validates its inputs against).

        Examples
        --------
        >>> from ogae_core.methods import build_method
        >>> build_method("ae").input_shape, build_method("ae", backbone={"kind": "patch"}).input_shape
        ((1, 28, 28), (1, 15, 15))
        """
        return tuple(getattr(self.backbone_config, "input_shape", (1, 28, 28)))

    @classmethod
    def adapt_backbone(cls, cfg: BackboneConfig | PatchBackboneConfig) -> BackboneConfig | PatchBackboneConfig:
        """The backbone this method trains: forces ``bias`` / ``variational`` as required."""
        return dataclasses.replace(cfg, bias=not cls.bias_free, variational=cls.variational, decoder=True)

    # ------------------------------------------------------------------ training plan
    def min_batch_size(self) -> int:
        """Smallest batch :meth:`loss` accepts (the trainer checks its batches up front)."""
        return 1

    def min_batch_reason(self) -> str:
        """Why :meth:`min_batch_size` is what it is (shown in the trainer's error)."""
        return ""

    def phase_weights(self, phase: str) -> dict:
        """Guidance weights of ``phase`` as history fields (``expander_weight``,
        ``compactor_weight``); empty for methods without guidance."""
        return {}

    @classmethod
    def scale_with_epochs(cls, hyperparameters: dict, epochs: int) -> dict:
        """Hyperparameters adapted to a run of ``epochs`` epochs when a preset's number of
        epochs is overridden (default: unchanged). Only the keys present are adapted.

        Examples
        --------
        >>> Method.scale_with_epochs({"lam": 0.1}, 4)
        {'lam': 0.1}
        """
        return dict(hyperparameters)

    def phases(self, epochs: int) -> list[Phase]:
        """Epoch plan for ``epochs`` training epochs (default: one phase)."""
        return [Phase("train", epochs)]

    def start_phase(self, phase: str, batches: Callable[[], Iterator[torch.Tensor]]) -> None:
        """Hook called before the first epoch of each phase (and again on resume: no-op
        by default). ``batches()`` yields training images batch by batch."""

    def end_epoch(self, phase: str, epoch: int) -> dict:
        """Hook after each training epoch; returns extra history fields."""
        return {}

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        """Training loss of one batch ``x`` of shape ``(N, 1, 28, 28)``."""
        raise NotImplementedError

    def reconstruction_loss(self, x: torch.Tensor) -> LossOutput:
        """Plain autoencoder loss (pixel-mean MSE); also the pretraining loss."""
        out = self.backbone(x)
        mse = F.mse_loss(out.x_hat, x)
        return LossOutput(mse, {"reconstruction": mse.detach()}, out.z.detach(), {})

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic latent codes (the posterior mean for variational networks)."""
        enc = self.backbone.encode(x)
        return enc.mu if enc.mu is not None else enc.z

    @torch.no_grad()
    def score(self, x: torch.Tensor, scoring: str) -> torch.Tensor:
        """Anomaly score per image (higher = more anomalous) for a native ``scoring``.

        ``"recons"``: mean squared reconstruction error of the image (decoded from the
        posterior mean for variational networks). ``"ocsvm"`` is not native (it needs a
        fitted OCSVM): use :class:`ogae_core.Detector`.
        """
        if scoring == "recons":
            if "recons" not in self.scorings:
                raise ValueError(f"method {self.name!r} has no 'recons' scoring; use one of {self.scorings}")
            return reconstruction_error(x, self.backbone.decode(self.encode(x)))
        raise ValueError(f"scoring {scoring!r} is not native to {self.name!r}; native: 'recons'")

    def extra_config(self) -> dict:
        """Learned non-tensor state to store in JSON (tensors live in buffers)."""
        return {}
