"""The coupled Deep SVDD family: h-DSVDD, s-DSVDD (Ruff et al., 2018), DSPSVDD, DVAESVDD.

All use the bias-free backbone (no bias anywhere, batch norms without affine parameters),
which Ruff et al. prove necessary to avoid the trivial "hypersphere collapse" solution.
Their native score (``scoring="svdd"``) is the squared latent distance to the center
(minus R² for the soft-boundary variant), higher = more anomalous.

Choices where the articles leave room (documented per class): the center is computed in
eval mode over the training split; pretraining is a plain autoencoder on the same
bias-free network, with its own Adam state; ``pretrain_epochs`` count in addition to the
trainer's ``epochs``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from ogae_core.methods.base import COMMON_HISTORY_COLUMNS, LossOutput, Method, MethodConfig, Phase, check_nonnegative, kl_divergence


def init_center(z_mean: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Ruff et al.'s center rule: the mean latent code, with coordinates closer than
    ``eps`` to zero pushed to ``±eps`` (a coordinate at 0 could be matched by zero
    weights, a trivial solution).

    Examples
    --------
    >>> import torch
    >>> init_center(torch.tensor([0.05, -0.01, 0.0, 2.0])).tolist()
    [0.10000000149011612, -0.10000000149011612, 0.10000000149011612, 2.0]
    """
    c = z_mean.clone()
    small = c.abs() < eps
    c[small & (c < 0)] = -eps
    c[small & (c >= 0)] = eps
    return c


def squared_distance(z: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """``||z_i - c||²`` per row, shape ``(N,)``."""
    return (z - center).pow(2).sum(1)


def soft_radius(dist: torch.Tensor, nu: float) -> float:
    """Radius minimizing ``R² + 1/(ν n) Σ max(0, d_i - R²)`` for fixed squared distances
    ``d``: the (1 - ν)-quantile of the distances ``sqrt(d)`` (Ruff et al.'s update;
    linear interpolation between order statistics).

    Examples
    --------
    >>> import torch
    >>> round(soft_radius(torch.arange(1.0, 11.0) ** 2, nu=0.1), 2)
    9.1
    """
    return float(torch.quantile(dist.detach().double().clamp_min(0).sqrt(), 1.0 - nu))


@dataclass(frozen=True)
class HardDeepSVDDConfig(MethodConfig):
    """Hyperparameters of :class:`HardDeepSVDD`.

    Attributes
    ----------
    pretrain_epochs : int
        Autoencoder pretraining epochs before the center is fixed (0: random network).
    center_eps : float
        Minimum absolute value of a center coordinate.
    """

    pretrain_epochs: int = 10
    center_eps: float = 0.1

    def __post_init__(self) -> None:
        if int(self.pretrain_epochs) != self.pretrain_epochs or self.pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs must be an integer >= 0; got {self.pretrain_epochs!r}")
        check_nonnegative("center_eps", self.center_eps)


class _CenteredMethod(Method):
    """Shared machinery: pretraining phase, fixed center, ``svdd`` score."""

    scorings = ("svdd",)
    default_scoring = "svdd"
    bias_free = True
    history_columns = {**COMMON_HISTORY_COLUMNS,
                       "loss_svdd": "mean squared latent distance to the center (training mean)",
                       "radius": "soft-boundary radius R after the epoch (s-DSVDD only)"}

    def __init__(self, config=None, backbone=None) -> None:
        super().__init__(config, backbone)
        d = self.backbone_config.latent_dim
        self.register_buffer("center", torch.zeros(d))
        self.register_buffer("center_ready", torch.zeros((), dtype=torch.bool))

    def phases(self, epochs: int) -> list[Phase]:
        pre = int(getattr(self.config, "pretrain_epochs", 0))
        plan = [Phase("pretrain", pre)] if pre > 0 else []
        return plan + [Phase("train", epochs, new_optimizer=pre > 0)]

    @torch.no_grad()
    def start_phase(self, phase: str, batches: Callable[[], Iterator[torch.Tensor]]) -> None:
        if phase != "train":
            return
        was_training = self.training
        self.eval()
        total, n = None, 0
        for x in batches():
            z = self.encode(x).double()
            total = z.sum(0) if total is None else total + z.sum(0)
            n += z.shape[0]
        self.train(was_training)
        self.center.copy_(init_center((total / n).float(), self.config.center_eps))
        self.center_ready.fill_(True)

    def _require_center(self) -> None:
        if not bool(self.center_ready):
            raise RuntimeError(f"{self.name}: the center is not initialized; train the model first")

    @torch.no_grad()
    def score(self, x: torch.Tensor, scoring: str) -> torch.Tensor:
        if scoring != "svdd":
            raise ValueError(f"method {self.name!r} scores with 'svdd' only; got {scoring!r}")
        self._require_center()
        return squared_distance(self.encode(x), self.center)


class HardDeepSVDD(_CenteredMethod):
    """One-class (hard-boundary) Deep SVDD, Ruff et al. (ICML 2018).

    Loss: ``mean_i ||phi(x_i) - c||²`` with ``c`` fixed after autoencoder pretraining
    (:func:`init_center`). Score: ``||phi(x) - c||²``. Weight decay, which the article
    adds, is the trainer's ``weight_decay`` (0 for every method by default, as in the
    OgAE authors' comparison).
    """

    name = "h-dsvdd"
    Config = HardDeepSVDDConfig
    description = "hard-boundary Deep SVDD (Ruff et al. 2018)"

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        if phase == "pretrain":
            return self.reconstruction_loss(x)
        self._require_center()
        z = self.backbone.encode(x).z
        svdd = squared_distance(z, self.center).mean()
        return LossOutput(svdd, {"svdd": svdd.detach()}, z.detach(), {})


@dataclass(frozen=True)
class SoftDeepSVDDConfig(HardDeepSVDDConfig):
    """Hyperparameters of :class:`SoftDeepSVDD`.

    Attributes
    ----------
    nu : float
        ν in (0, 1]: trade-off between the radius and the penalties (upper bound on the
        fraction of training points outside the sphere). Ruff et al. use 0.1.
    radius_warmup_epochs : int
        Epochs of the Deep SVDD phase before the first radius update (Ruff et al.'s
        released code uses 10).
    """

    nu: float = 0.1
    radius_warmup_epochs: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (0 < self.nu <= 1):
            raise ValueError(f"nu must be in (0, 1]; got {self.nu!r}")
        if int(self.radius_warmup_epochs) != self.radius_warmup_epochs or self.radius_warmup_epochs < 0:
            raise ValueError(f"radius_warmup_epochs must be an integer >= 0; got {self.radius_warmup_epochs!r}")


class SoftDeepSVDD(_CenteredMethod):
    """Soft-boundary Deep SVDD, Ruff et al. (ICML 2018).

    Loss: ``R² + 1/(ν n) Σ_i max(0, ||phi(x_i) - c||² - R²)`` (the batch mean stands for
    the ``1/n`` sum). ``R`` is not learned by gradient: starting from 0, after
    ``radius_warmup_epochs`` epochs it is set at the end of every epoch to the optimal
    radius for the current network, the (1 - ν)-quantile of the epoch's training
    distances (:func:`soft_radius`; the article solves the same 1-D problem by line
    search, the authors' code uses the quantile). Score: ``||phi(x) - c||² - R²``.
    """

    name = "s-dsvdd"
    Config = SoftDeepSVDDConfig
    description = "soft-boundary Deep SVDD (Ruff et al. 2018)"

    def __init__(self, config=None, backbone=None) -> None:
        super().__init__(config, backbone)
        self.register_buffer("radius", torch.zeros(()))
        self._epoch_dist: list[torch.Tensor] = []

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        if phase == "pretrain":
            return self.reconstruction_loss(x)
        self._require_center()
        z = self.backbone.encode(x).z
        dist = squared_distance(z, self.center)
        r2 = self.radius.pow(2)
        svdd = r2 + F.relu(dist - r2).mean() / self.config.nu
        if self.training:
            self._epoch_dist.append(dist.detach())
        return LossOutput(svdd, {"svdd": svdd.detach()}, z.detach(), {})

    def end_epoch(self, phase: str, epoch: int) -> dict:
        dists, self._epoch_dist = self._epoch_dist, []
        if phase == "train" and dists and epoch + 1 >= self.config.radius_warmup_epochs:
            self.radius.fill_(soft_radius(torch.cat(dists), self.config.nu))
        return {"radius": float(self.radius)} if phase == "train" else {}

    @torch.no_grad()
    def score(self, x: torch.Tensor, scoring: str) -> torch.Tensor:
        return super().score(x, scoring) - self.radius.pow(2)


@dataclass(frozen=True)
class DSPSVDDConfig(HardDeepSVDDConfig):
    """Hyperparameters of :class:`DSPSVDD`.

    Attributes
    ----------
    svdd_weight : float
        γ, weight of the SVDD term against the reconstruction term. The default 10 is the
        authors' setting ``0.1 * MSE + SVDD`` rescaled (Adam is invariant to a constant
        factor on the loss).
    """

    svdd_weight: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_nonnegative("svdd_weight", self.svdd_weight)


class DSPSVDD(_CenteredMethod):
    """Deep SVDD with data-structure preservation (the paper's ref. [28]; we could not read
    the reference list: loss as described in the issue and in the authors' released code,
    ``0.1 * MSE + SVDD`` after pretraining — not DASVDD, whose score adds the reconstruction
    error).

    Autoencoder pretraining, center fixed as in Deep SVDD, then fine-tuning of the
    autoencoder with ``MSE(x, x_hat) + γ * mean_i ||phi(x_i) - c||²``: the decoder keeps
    the latent space from collapsing onto the center. Score: ``||phi(x) - c||²``.
    """

    name = "dspsvdd"
    Config = DSPSVDDConfig
    description = "Deep SVDD + reconstruction (structure preservation)"

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        if phase == "pretrain":
            return self.reconstruction_loss(x)
        self._require_center()
        out = self.backbone(x)
        mse = F.mse_loss(out.x_hat, x)
        svdd = squared_distance(out.z, self.center).mean()
        total = mse + self.config.svdd_weight * svdd
        return LossOutput(total, {"reconstruction": mse.detach(), "svdd": svdd.detach()}, out.z.detach(), {})


@dataclass(frozen=True)
class DVAESVDDConfig(MethodConfig):
    """Hyperparameters of :class:`DVAESVDD`.

    Attributes
    ----------
    svdd_weight : float
        α, weight of the SVDD term.
    kl_weight : float
        Weight of the KL term of the VAE.

    The defaults (α = 10/32, KL weight 1/32) are the authors' setting
    ``0.1 * (MSE + mean-over-dims KL) + mean-over-dims SVDD`` rewritten with our summed
    KL and summed squared distance for a 32-dimensional latent, and rescaled by 10.
    """

    svdd_weight: float = 0.3125
    kl_weight: float = 0.03125

    def __post_init__(self) -> None:
        check_nonnegative("svdd_weight", self.svdd_weight)
        check_nonnegative("kl_weight", self.kl_weight)


class DVAESVDD(_CenteredMethod):
    """Deep SVDD on a VAE (the paper's ref. [30]; most likely Zhou et al. 2021, "VAE-based
    Deep SVDD for anomaly detection"; loss as in the authors' released code).

    Loss: ``MSE + w_KL * KL + α * mean_i ||z_i - c||²`` on the sampled codes ``z``, the
    center ``c`` being recomputed on every training batch as the batch mean of ``z``
    (no gradient through ``c``). No pretraining. For scoring, the center is the mean of
    the epoch's batch centers (a noise-free version of the last batch's center); score
    ``||mu(x) - c||²`` with the posterior mean.
    """

    name = "dvaesvdd"
    Config = DVAESVDDConfig
    variational = True
    description = "Deep SVDD on a variational autoencoder, center updated per batch"

    def __init__(self, config=None, backbone=None) -> None:
        super().__init__(config, backbone)
        self._epoch_centers: list[torch.Tensor] = []

    def phases(self, epochs: int) -> list[Phase]:
        return [Phase("train", epochs)]

    def start_phase(self, phase: str, batches) -> None:
        return None

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        out = self.backbone(x)
        if self.training:
            c = out.z.detach().mean(0)
            self._epoch_centers.append(c)
        else:
            self._require_center()
            c = self.center
        mse = F.mse_loss(out.x_hat, x)
        kl = kl_divergence(out.mu, out.logvar).mean()
        svdd = squared_distance(out.z, c).mean()
        total = mse + self.config.kl_weight * kl + self.config.svdd_weight * svdd
        terms = {"reconstruction": mse.detach(), "kl": kl.detach(), "svdd": svdd.detach()}
        return LossOutput(total, terms, out.z.detach(), {})

    @torch.no_grad()
    def end_epoch(self, phase: str, epoch: int) -> dict:
        centers, self._epoch_centers = self._epoch_centers, []
        if centers:
            self.center.copy_(torch.stack(centers).mean(0))
            self.center_ready.fill_(True)
        return {}
