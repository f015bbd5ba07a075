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
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ogae_core.nets import BackboneConfig, MnistBackbone

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


def _check_positive(name: str, value: float, allow_zero: bool = True) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not (isinstance(value, (int, float)) and ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number {bound}; got {value!r}")


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
    backbone : BackboneConfig, optional
        Network options; :meth:`adapt_backbone` then enforces what the method needs
        (bias-free, variational).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = MethodConfig
    scorings: ClassVar[tuple] = ("recons", "ocsvm")
    default_scoring: ClassVar[str] = "recons"
    variational: ClassVar[bool] = False
    bias_free: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, config: MethodConfig | None = None, backbone: BackboneConfig | None = None) -> None:
        super().__init__()
        config = config if config is not None else self.Config()
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name} expects a {self.Config.__name__}; got {type(config).__name__}")
        self.config = config
        self.backbone_config = self.adapt_backbone(backbone or BackboneConfig())
        self.backbone = MnistBackbone(self.backbone_config)

    @classmethod
    def adapt_backbone(cls, cfg: BackboneConfig) -> BackboneConfig:
        """The backbone this method trains: forces ``bias`` / ``variational`` as required."""
        return dataclasses.replace(cfg, bias=not cls.bias_free, variational=cls.variational, decoder=True)

    # ------------------------------------------------------------------ training plan
    def min_batch_size(self) -> int:
        """Smallest batch :meth:`loss` accepts (the trainer checks its batches up front)."""
        return 1

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
