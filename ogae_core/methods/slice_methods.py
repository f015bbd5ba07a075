"""Training objectives of the whole-slice baselines of Experiment 2, as :class:`Method` s.

* ``ae-unet`` (:class:`AEUNet`, Baur et al. 2021): pixel-mean squared reconstruction error of
  the :class:`~ogae_core.nets.SliceUNet`; one phase ``"train"``.
* ``vqvae-transformer`` (:class:`VQVAETransformer`, Pinaya et al. 2022): two phases of one plan,
  as Deep SVDD's pretraining is --

  1. ``"vqvae"``: ``reconstruction + codebook + beta * commitment`` (van den Oord et al. 2017,
     ``beta = 0.25``). The codebook is learnt by **exponential moving averages** by default
     (``codebook="ema"`` in :class:`~ogae_core.nets.VQVAEConfig`; the codebook term is then
     reported but carries no gradient) or by the codebook loss (``codebook="loss"``). The
     codebook starts from encoder outputs of the first training batch.
  2. ``"transformer"`` (fresh Adam state): next-token cross-entropy of the
     :class:`~ogae_core.nets.CodeTransformer` over the raster-ordered codes of the frozen
     VQ-VAE (codes computed without gradient, so the VQ-VAE does not move; the EMA updates
     only run in phase ``"vqvae"``).

* Healing (:func:`heal_codes`): tokens whose probability under the Transformer is below a
  threshold are resampled -- ``"release"``: every unlikely token after one teacher-forced pass
  (Pinon & Lartizien's release, the CPU default); ``"sequential"``: position by position in
  raster order, each decision conditioned on the already healed prefix (Pinaya et al.; about
  sequence-length times the compute). Replacements are drawn, with a seeded generator, from the
  Transformer's distribution restricted to the tokens at or above the threshold (so that a
  replacement is itself likely; our choice -- the release samples from the whole distribution),
  the most likely token when none is.

Training augmentation (translation 0.1, brightness +-0.1, :func:`ogae_core.data.mri.slices.augment_slices`)
is applied to training batches only (``self.training``); hold-out losses and scoring see the
slices as they are. The one trainer gathers batches itself and has no per-batch transform hook,
so the objective applies the data pipeline's transform.

History: besides the trainer's columns (``loss_reconstruction``, ``train_loss`` = the phase's
objective, ``val_loss``, ``latent_spread`` of the spatially pooled codes), the VQ-VAE's codebook
and commitment losses, perplexity and codebook usage, and the Transformer's NLL are history
columns of their own: declared in :attr:`VQVAETransformer.history_columns`, returned by its
``end_epoch`` and kept (and checkpointed) by the trainer.

Examples
--------
>>> import torch
>>> from ogae_core.nets import UNetConfig
>>> m = AEUNet(backbone=UNetConfig(widths=(4, 8, 8)))
>>> float(m.loss(torch.rand(2, 1, 16, 16), "train", 0).total.detach()) > 0
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ogae_core.methods.base import COMMON_HISTORY_COLUMNS, LossOutput, Method, MethodConfig, Phase, reconstruction_error
from ogae_core.nets.transformer import CodeTransformer, TransformerConfig
from ogae_core.nets.unet import SliceUNet, UNetConfig
from ogae_core.nets.vqvae import SliceVQVAE, VQVAEConfig, perplexity
from ogae_core.validation import check_real

__all__ = ["AEUNet", "AEUNetConfig", "HEALING_MODES", "SLICE_METHODS", "VQTransformerNets", "VQVAETransformer",
           "VQVAETransformerConfig", "build_slice_method", "heal_codes", "token_probabilities"]

#: Healing procedures (see :func:`heal_codes`).
HEALING_MODES = ("release", "sequential")

#: History columns the VQ-VAE + Transformer adds (returned by its ``end_epoch`` each epoch).
VQ_HISTORY_COLUMNS = {
    "loss_codebook": "codebook term ||sg[z_e] - e||² (training mean; no gradient in EMA mode)",
    "loss_commitment": "commitment term ||z_e - sg[e]||² before the weight beta (training mean)",
    "perplexity": "exp(entropy) of the codes used over the epoch's training batches",
    "codebook_usage": "fraction of the codebook used over the epoch's training batches",
    "restarted_codes": "codes restarted on encoder outputs in the epoch (EMA mode)",
    "loss_nll": "next-token cross-entropy of the Transformer (nats per token, training mean)",
}


def _check_augmentation(config) -> None:
    check_real("translation", config.translation, 0, 0.5)
    check_real("brightness", config.brightness, 0, 1)


@dataclass(frozen=True)
class AEUNetConfig(MethodConfig):
    """Hyperparameters of :class:`AEUNet`: the training augmentation (release: 0.1 and 0.1)."""

    translation: float = 0.1
    brightness: float = 0.1

    def __post_init__(self) -> None:
        _check_augmentation(self)


@dataclass(frozen=True)
class VQVAETransformerConfig(MethodConfig):
    """Hyperparameters of :class:`VQVAETransformer`.

    Attributes
    ----------
    beta : float
        Weight of the commitment loss (van den Oord et al.: 0.25).
    transformer_epochs : int
        Epochs of the Transformer phase (-1: as many as the VQ-VAE phase).
    translation, brightness : float
        Training augmentation.
    """

    beta: float = 0.25
    transformer_epochs: int = -1
    translation: float = 0.1
    brightness: float = 0.1

    def __post_init__(self) -> None:
        check_real("beta", self.beta, 0)
        if int(self.transformer_epochs) != self.transformer_epochs or self.transformer_epochs < -1:
            raise ValueError(f"transformer_epochs must be an integer >= -1; got {self.transformer_epochs!r}")
        _check_augmentation(self)


@dataclass(frozen=True)
class VQTransformerNets:
    """Network options of :class:`VQVAETransformer`: the VQ-VAE's and the Transformer's."""

    vqvae: VQVAEConfig
    transformer: TransformerConfig

    def to_dict(self) -> dict:
        """JSON-serializable dictionary."""
        return {"vqvae": self.vqvae.to_dict(), "transformer": self.transformer.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "VQTransformerNets":
        """Inverse of :meth:`to_dict`."""
        return cls(VQVAEConfig.from_dict(d["vqvae"]), TransformerConfig.from_dict(d["transformer"]))


class SliceMethod(Method):
    """Base of the slice methods: builds its own networks (no S-H1 backbone)."""

    Backbone: ClassVar[type] = object
    scorings: ClassVar[tuple] = ("recons",)
    #: Height and width of the slices it trains on (its detector sets it; ``None``: the slice
    #: pipeline's ``ogae_core.data.mri.slices.SLICE_SHAPE``). The networks are fully convolutional.
    slice_shape: tuple[int, int] | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(1, height, width)`` of the slices: what the trainer validates its images against."""
        if self.slice_shape is None:
            from ogae_core.data.mri.slices import SLICE_SHAPE  # lazy: keeps nibabel out of `import ogae_core.methods`

            return (1, *SLICE_SHAPE)
        return (1, *self.slice_shape)

    def __init__(self, config: MethodConfig | None = None, backbone=None) -> None:
        nn.Module.__init__(self)
        config = config if config is not None else self.Config()
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name} expects a {self.Config.__name__}; got {type(config).__name__}")
        if backbone is None or not isinstance(backbone, self.Backbone):
            raise TypeError(f"{self.name} needs a {self.Backbone.__name__} backbone; got {type(backbone).__name__}")
        self.config, self.backbone_config = config, backbone
        self.build(backbone)

    def build(self, backbone) -> None:
        """Create the networks from ``backbone``."""
        raise NotImplementedError

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """Training augmentation in training mode, ``x`` itself otherwise."""
        if not self.training:
            return x
        from ogae_core.data.mri.slices import augment_slices  # lazy: keeps nibabel out of `import ogae_core.methods`

        return augment_slices(x, self.config.translation, self.config.brightness)


class AEUNet(SliceMethod):
    """AE/UNet of Baur et al.: reconstruction loss of a :class:`~ogae_core.nets.SliceUNet`."""

    name: ClassVar[str] = "ae-unet"
    Config: ClassVar[type] = AEUNetConfig
    Backbone: ClassVar[type] = UNetConfig
    description: ClassVar[str] = "AE/UNet on whole axial slices (Baur et al. 2021)"
    history_columns: ClassVar[dict] = COMMON_HISTORY_COLUMNS

    def __init__(self, config: AEUNetConfig | None = None, backbone: UNetConfig | None = None) -> None:
        super().__init__(config, backbone if backbone is not None else UNetConfig())

    def build(self, backbone: UNetConfig) -> None:
        """The UNet."""
        self.backbone = SliceUNet(backbone)

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        """Pixel-mean squared error of the reconstruction of the (augmented, in training) slices."""
        x = self.augment(x)
        out = self.backbone(x)
        mse = F.mse_loss(out.x_hat, x)
        return LossOutput(mse, {"reconstruction": mse.detach()}, out.z.detach(), {})

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x`` (eval mode is the caller's business)."""
        return self.backbone(x).x_hat

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Spatially pooled bottleneck codes."""
        return self.backbone(x).z

    @torch.no_grad()
    def score(self, x: torch.Tensor, scoring: str) -> torch.Tensor:
        """Mean squared reconstruction error per slice (``scoring="recons"``)."""
        if scoring != "recons":
            raise ValueError(f"{self.name} scores with 'recons' only; got {scoring!r}")
        return reconstruction_error(x, self.reconstruct(x))


class VQVAETransformer(SliceMethod):
    """VQ-VAE then Transformer (Pinaya et al.), two phases of one plan (see the module docstring)."""

    name: ClassVar[str] = "vqvae-transformer"
    Config: ClassVar[type] = VQVAETransformerConfig
    Backbone: ClassVar[type] = VQTransformerNets
    description: ClassVar[str] = "VQ-VAE + autoregressive Transformer with latent healing (Pinaya et al. 2022)"
    history_columns: ClassVar[dict] = {**COMMON_HISTORY_COLUMNS, **VQ_HISTORY_COLUMNS}

    def build(self, backbone: VQTransformerNets) -> None:
        """The VQ-VAE and the Transformer (vocabulary = codebook size)."""
        if backbone.transformer.vocab_size != backbone.vqvae.num_embeddings:
            raise ValueError(f"the Transformer's vocab_size ({backbone.transformer.vocab_size}) must equal the "
                             f"codebook size ({backbone.vqvae.num_embeddings})")
        self.vqvae = SliceVQVAE(backbone.vqvae)
        self.transformer = CodeTransformer(backbone.transformer)
        self.reset_epoch_stats()

    def reset_epoch_stats(self) -> None:
        """Start collecting a new epoch's statistics."""
        self.epoch_sums: dict[str, float] = {}
        self.epoch_counts = torch.zeros(self.backbone_config.vqvae.num_embeddings, dtype=torch.long)
        self.epoch_items = 0

    def phases(self, epochs: int) -> list[Phase]:
        """``vqvae`` for ``epochs`` epochs, then ``transformer`` (fresh optimizer)."""
        te = epochs if self.config.transformer_epochs < 0 else int(self.config.transformer_epochs)
        return [Phase("vqvae", epochs), Phase("transformer", te, new_optimizer=True)]

    def start_phase(self, phase: str, batches) -> None:
        """Reset the epoch statistics."""
        self.reset_epoch_stats()

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices ``(N, h, w)`` of slices ``x``."""
        return self.vqvae.quantizer.nearest(self.vqvae.encode(x))

    def record(self, k: int, **values: float) -> None:
        """Add batch values (weighted by the batch size ``k``) to the epoch's sums (training only)."""
        if not self.training:
            return
        for name, v in values.items():
            self.epoch_sums[name] = self.epoch_sums.get(name, 0.0) + float(v) * k
        self.epoch_items += k

    def loss(self, x: torch.Tensor, phase: str, epoch: int) -> LossOutput:
        """The phase's objective on one batch (see the module docstring)."""
        x = self.augment(x)
        q = self.vqvae.quantizer
        if phase == "vqvae":
            z_e = self.vqvae.encode(x)
            if self.training and not bool(q.initialized):
                q.initialize_from(z_e)
            out = q(z_e)
            x_hat = self.vqvae.decoder(out.z_q)
            rec = F.mse_loss(x_hat, x)
            total = rec + self.config.beta * out.commitment_loss
            if q.mode == "loss":
                total = total + out.codebook_loss
            restarted = q.update_ema(z_e, out.indices) if (self.training and q.mode == "ema") else 0
            if self.training:
                self.epoch_counts += torch.bincount(out.indices.reshape(-1).cpu(), minlength=q.num_embeddings)
                self.epoch_sums["restarted_codes"] = self.epoch_sums.get("restarted_codes", 0.0) + restarted
            self.record(x.shape[0], loss_codebook=out.codebook_loss.detach(), loss_commitment=out.commitment_loss.detach())
            z = out.z_q.detach().mean((2, 3))
            return LossOutput(total, {"reconstruction": rec.detach()}, z, {})
        if phase == "transformer":
            codes = self.codes(x)
            logits = self.transformer(codes.flatten(1)).logits
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.reshape(-1))
            self.record(x.shape[0], loss_nll=nll.detach())
            z = q.lookup(codes).mean((2, 3))
            return LossOutput(nll, {}, z, {})
        raise ValueError(f"unknown phase {phase!r} of {self.name}")

    def end_epoch(self, phase: str, epoch: int) -> dict:
        """The epoch's codebook and Transformer statistics: history columns the trainer keeps
        (declared in :attr:`history_columns`)."""
        n = max(self.epoch_items, 1)
        row = {}
        for name, total in self.epoch_sums.items():
            row[name] = total if name == "restarted_codes" else total / n
        if phase == "vqvae":
            used = self.epoch_counts > 0
            row["codebook_usage"] = float(used.float().mean())
            counts = self.epoch_counts.double()
            p = counts / counts.sum().clamp_min(1)
            row["perplexity"] = float(torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()))
        self.reset_epoch_stats()
        return row

    @torch.no_grad()
    def codebook_perplexity(self, x: torch.Tensor) -> float:
        """Perplexity of the codes of slices ``x`` (effective number of codes used)."""
        return float(perplexity(self.codes(x), self.vqvae.quantizer.num_embeddings))

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Spatially pooled quantized latents."""
        return self.vqvae.quantizer.lookup(self.codes(x)).mean((2, 3))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Plain VQ-VAE reconstruction (no healing)."""
        return self.vqvae.decode_indices(self.codes(x))

    @torch.no_grad()
    def score(self, x: torch.Tensor, scoring: str) -> torch.Tensor:
        """Mean squared VQ-VAE reconstruction error per slice (``scoring="recons"``)."""
        if scoring != "recons":
            raise ValueError(f"{self.name} scores with 'recons' only; got {scoring!r}")
        return reconstruction_error(x, self.reconstruct(x))


@torch.no_grad()
def token_probabilities(transformer: CodeTransformer, codes: torch.Tensor) -> torch.Tensor:
    """Probability of every token of ``codes`` ``(B, L)`` given its prefix (one teacher-forced pass).

    Examples
    --------
    >>> import torch
    >>> from ogae_core.nets import CodeTransformer, TransformerConfig
    >>> t = CodeTransformer(TransformerConfig(vocab_size=4, seq_len=5, d_model=8, n_layers=1, n_heads=2)).eval()
    >>> p = token_probabilities(t, torch.zeros(2, 5, dtype=torch.long))
    >>> p.shape, bool(((p > 0) & (p < 1)).all())
    (torch.Size([2, 5]), True)
    """
    probs = transformer(codes).logits.softmax(-1)
    return probs.gather(-1, codes.unsqueeze(-1)).squeeze(-1)


def _draw_likely(probs: torch.Tensor, threshold: float, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of ``probs`` ``(n, V)`` among those with probability >= threshold."""
    keep = probs >= threshold
    none = ~keep.any(-1)
    keep[none] = F.one_hot(probs[none].argmax(-1), probs.shape[-1]).bool()
    restricted = torch.where(keep, probs, torch.zeros_like(probs)).double()
    return torch.multinomial(restricted.cpu(), 1, generator=generator).squeeze(-1).to(probs.device)


@torch.no_grad()
def heal_codes(transformer: CodeTransformer, codes: torch.Tensor, threshold: float, mode: str = "release",
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample the tokens of ``codes`` ``(B, L)`` whose probability is below ``threshold``.

    Parameters
    ----------
    transformer : CodeTransformer
        In eval mode.
    codes : torch.Tensor
        Raster-ordered code sequences.
    threshold : float
        Tokens with probability ``< threshold`` given their prefix are resampled.
    mode : {"release", "sequential"}
        See the module docstring.
    generator : torch.Generator, optional
        Seeded CPU generator of the replacements.

    Returns
    -------
    healed : torch.Tensor
        ``(B, L)`` codes; equal to ``codes`` wherever ``mask`` is false.
    mask : torch.Tensor
        ``(B, L)`` bool, the resampled positions.

    Examples
    --------
    >>> import torch
    >>> from ogae_core.nets import CodeTransformer, TransformerConfig
    >>> t = CodeTransformer(TransformerConfig(vocab_size=4, seq_len=6, d_model=8, n_layers=1, n_heads=2)).eval()
    >>> codes = torch.randint(0, 4, (2, 6), generator=torch.Generator().manual_seed(0))
    >>> healed, mask = heal_codes(t, codes, threshold=0.0)
    >>> bool(mask.any()), bool((healed == codes).all())
    (False, True)
    """
    check_real("threshold", threshold, 0, 1)
    if mode not in HEALING_MODES:
        raise ValueError(f"healing mode must be one of {HEALING_MODES}; got {mode!r}")
    healed = codes.clone()
    if mode == "release":
        probs = transformer(codes).logits.softmax(-1)
        mask = probs.gather(-1, codes.unsqueeze(-1)).squeeze(-1) < threshold
        if mask.any():
            healed[mask] = _draw_likely(probs[mask], threshold, generator)
        return healed, mask
    mask = torch.zeros_like(codes, dtype=torch.bool)
    for j in range(codes.shape[1]):
        probs = transformer(healed[:, :j + 1]).logits[:, j].softmax(-1)
        unlikely = probs.gather(-1, healed[:, j:j + 1]).squeeze(-1) < threshold
        if unlikely.any():
            healed[unlikely, j] = _draw_likely(probs[unlikely], threshold, generator)
            mask[unlikely, j] = True
    return healed, mask


#: Slice methods by name (kept apart from :data:`ogae_core.methods.METHODS`, the MNIST table's rows).
SLICE_METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (AEUNet, VQVAETransformer)}


def build_slice_method(name: str, hyperparameters: dict | None = None, backbone: dict | None = None) -> Method:
    """Instantiate slice method ``name`` from JSON-like dictionaries (unknown names raise).

    Examples
    --------
    >>> m = build_slice_method("ae-unet", {"translation": 0.0}, {"widths": [4, 8, 8]})
    >>> m.config.translation, m.backbone_config.widths
    (0.0, (4, 8, 8))
    """
    try:
        cls = SLICE_METHODS[name]
    except KeyError:
        raise ValueError(f"unknown slice method {name!r}; choose one of {list(SLICE_METHODS)}") from None
    config = cls.Config.from_dict(dict(hyperparameters or {}))
    nets = cls.Backbone.from_dict(backbone) if backbone is not None else None
    return cls(config, nets)
