"""Reconstruction-based baselines: AE, VAE and the siamese autoencoder (SAE).

Each is scored either by its reconstruction error (``"recons"``) or by a final OCSVM on
its latent codes (``"ocsvm"``, the decoupled AE -> OCSVM baselines of the paper).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ogae_core.methods.base import COMMON_HISTORY_COLUMNS, LossOutput, Method, MethodConfig, check_nonnegative, kl_divergence


@dataclass(frozen=True)
class AEConfig(MethodConfig):
    """The plain autoencoder has no hyperparameter beyond the trainer's."""


class AE(Method):
    """Convolutional autoencoder trained with the pixel-mean squared error.

    Loss: ``MSE(x, x_hat)`` averaged over pixels and batch.

    Examples
    --------
    >>> import torch
    >>> m = AE()
    >>> out = m.loss(torch.rand(4, 1, 28, 28), "train", 0)
    >>> sorted(out.terms)
    ['reconstruction']
    """

    name = "ae"
    Config = AEConfig
    description = "autoencoder, MSE"

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        return self.reconstruction_loss(x)


@dataclass(frozen=True)
class VAEConfig(MethodConfig):
    """Hyperparameters of :class:`VAE`.

    Attributes
    ----------
    kl_weight : float
        Weight ``w`` of the KL term (the paper sweeps it).
    """

    kl_weight: float = 1e-3

    def __post_init__(self) -> None:
        check_nonnegative("kl_weight", self.kl_weight)


class VAE(Method):
    """Variational autoencoder: ``MSE + w * KL``.

    ``MSE`` is the pixel-mean squared error of the reconstruction of the sampled code;
    ``KL`` is the Gaussian KL divergence to N(0, I), summed over latent dimensions and
    averaged over the batch (as the authors' released VAE). Scoring uses the posterior
    mean (no sampling), so scores are deterministic.

    Default ``kl_weight = 1e-3``: the authors' code defaults to 1, which with a summed KL
    against a pixel-mean MSE nearly collapses the posterior (3,000 MNIST 3s, 3 epochs: KL
    0.18 nats and reconstruction MSE 0.075, vs KL 5.9 and MSE 0.059 with 1e-3); the paper
    sweeps this weight anyway.
    """

    name = "vae"
    Config = VAEConfig
    variational = True
    description = "variational autoencoder, MSE + w·KL"
    history_columns = {**COMMON_HISTORY_COLUMNS, "loss_kl": "KL divergence to N(0, I) (training mean)"}

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        out = self.backbone(x)
        mse = F.mse_loss(out.x_hat, x)
        kl = kl_divergence(out.mu, out.logvar).mean()
        total = mse + self.config.kl_weight * kl
        return LossOutput(total, {"reconstruction": mse.detach(), "kl": kl.detach()}, out.z.detach(), {})


@dataclass(frozen=True)
class SAEConfig(MethodConfig):
    """Hyperparameters of :class:`SAE`.

    Attributes
    ----------
    similarity_weight : float
        Weight ``w`` of the latent similarity term.
    similarity : {"cosine", "mse"}
        ``"cosine"``: ``mean(1 - cos(z1, z2))`` (the paper's text); ``"mse"``: mean squared
        difference of the codes (the authors' released code).
    """

    similarity_weight: float = 0.1
    similarity: str = "cosine"

    def __post_init__(self) -> None:
        check_nonnegative("similarity_weight", self.similarity_weight)
        if self.similarity not in ("cosine", "mse"):
            raise ValueError(f"similarity must be 'cosine' or 'mse'; got {self.similarity!r}")


def similarity_term(z1: torch.Tensor, z2: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Dissimilarity of paired latent codes (0 when the pairs coincide).

    Examples
    --------
    >>> import torch
    >>> round(float(similarity_term(torch.ones(2, 3), 2 * torch.ones(2, 3), "cosine")), 6)
    0.0
    >>> float(similarity_term(torch.zeros(2, 3), torch.ones(2, 3), "mse"))
    1.0
    """
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(z1, z2, dim=1, eps=1e-8)).mean()
    if kind == "mse":
        return (z1 - z2).pow(2).mean()
    raise ValueError(f"similarity must be 'cosine' or 'mse'; got {kind!r}")


class SAE(Method):
    """Siamese autoencoder (the paper's ref. [45]; we could not read the reference list and
    follow the issue's description and the authors' released code).

    Each batch (already shuffled) is split into pairs: image ``i`` of the first half with
    image ``i`` of the second half. Both go through the same encoder/decoder (one forward
    pass of the whole batch, so batch-norm statistics are those of the batch); the loss is
    ``0.5 * (MSE_1 + MSE_2) + w * S(z_1, z_2)`` with ``S`` from :func:`similarity_term`,
    pulling the codes of two normal images together. With an odd batch the last image is
    reconstructed but not paired.
    """

    name = "sae"
    Config = SAEConfig
    description = "siamese autoencoder, MSE + w·similarity of paired codes"
    batch_layout = "pairs"
    history_columns = {**COMMON_HISTORY_COLUMNS,
                       "loss_similarity": "dissimilarity of the paired codes (training mean)"}

    def min_batch_size(self) -> int:
        return 2

    def min_batch_reason(self) -> str:
        return "a pair needs two images"

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        if x.shape[0] < 2:
            raise ValueError("the siamese autoencoder needs batches of at least 2 images")
        out = self.backbone(x)
        half = x.shape[0] // 2
        mse1 = F.mse_loss(out.x_hat[:half], x[:half])
        mse2 = F.mse_loss(out.x_hat[half:], x[half:])
        mse = 0.5 * (mse1 + mse2)
        sim = similarity_term(out.z[:half], out.z[half : 2 * half], self.config.similarity)
        total = mse + self.config.similarity_weight * sim
        return LossOutput(total, {"reconstruction": mse.detach(), "similarity": sim.detach()}, out.z.detach(), {})
