"""Whole-slice baselines of Experiment 2 as volume detectors: ``ae-unet`` and ``vqvae-transformer``.

Both train on the axial slices of the training controls (:mod:`ogae_core.data.mri.slices`:
zero outside the brain, padded to 192 x 224) through the project's one trainer
(:func:`ogae_core.train.train`, with the early-stopping controls as hold-out), and score a
subject slice by slice; the 2-D maps are stacked back onto the subject's grid, NaN outside the
brain (higher = more anomalous):

* ``ae-unet`` (Baur et al. 2021): the residual ``|x - x_hat|``;
* ``vqvae-transformer`` (Pinaya et al. 2022): the codes of each slice are healed
  (:func:`ogae_core.methods.slice_methods.heal_codes`: tokens with probability below
  ``threshold`` resampled; ``healing="release"`` -- one teacher-forced pass, the CPU default --
  or ``"sequential"``, seeded per slice by ``scoring_seed`` and the slice's z index), the healed
  codes decoded, and the residual ``|x - x_healed|`` multiplied by the resampling mask
  (nearest-upsampled to the slice, smoothed by a Gaussian of ``sigma = 5`` pixels, as in the
  release).

Optional post-processing, off by default for parity with the paper's OgAE: ``median_size > 0``
applies a ``median_size``-cube median filter to the stacked map (Baur et al.'s benchmark uses
5x5x5 median filtering).

Sizes (:data:`SLICE_SIZES`, parameter ``size``): ``paper`` -- the release's widths (UNet
64-128-256-512-64; VQ-VAE 256 filters, 3 downsamplings, 3 residual blocks, 512 codes of
dimension 256; Transformer 8 layers of width 256 with 8 heads -- depth and width are not in the
release, these are our assumption), for a GPU; ``default`` -- narrow networks that train on the
``default`` cohort (160 slices) in minutes on 2 CPU cores (UNet 16-32-64-64-16; VQ-VAE 32
filters, one residual block, 64 codes of dimension 16; Transformer 2 layers of width 64);
``smoke`` -- tiny, for tests. Every value can be overridden by the keyword arguments.

The one trainer validates its images against the method's ``input_shape``; a slice method's is
``(1, *slice_shape)``, set from the detector's ``shape`` before training.

Run on a cohort: ``python -m ogae_core.volumes.slice_models --cohort default --out DIR``
(trains both, writes the models, the float32 NIfTI maps of every test subject -- NaN outside the
brain -- and ``summary.json`` with voxel AUROC/AUPR per patient within the brain, the prevalence,
the subject scores and their AUROC, and the times). A quick check of the experiment kind's
metrics, not a replacement for it.

Examples
--------
>>> from ogae_core.volumes import build_volume_detector
>>> det = build_volume_detector("ae-unet", {"size": "smoke", "epochs": 1})
>>> det.get_params()["size"], det.slice_shape
('smoke', (192, 224))
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from scipy.ndimage import gaussian_filter, median_filter

import ogae_core.train as trainer
from ogae_core.atomic import atomic_write_file
from ogae_core.checkpoints import state_dict_cpu
from ogae_core.data.mri.slices import SLICE_SHAPE, restore_shape, slice_stack, training_slices
from ogae_core.methods.slice_methods import (
    HEALING_MODES,
    VQTransformerNets,
    build_slice_method,
    heal_codes,
)
from ogae_core.nets.transformer import TransformerConfig
from ogae_core.nets.unet import UNetConfig
from ogae_core.nets.vqvae import VQVAEConfig
from ogae_core.train import TrainConfig, deterministic, resolve_device
from ogae_core.validation import check_integer, check_real
from ogae_core.volumes.base import VolumeDetector, register_volume_method

__all__ = ["AEUNetDetector", "SLICE_SIZES", "SliceDetector", "VQVAETransformerDetector"]

#: Network and training sizes by name (see the module docstring).
SLICE_SIZES: dict[str, dict[str, dict]] = {
    "paper": {
        "unet": {"widths": [64, 128, 256, 512, 64]},
        "vqvae": {"channels": 256, "n_down": 3, "n_residual": 3, "num_embeddings": 512, "embedding_dim": 256},
        "transformer": {"d_model": 256, "n_layers": 8, "n_heads": 8, "dropout": 0.1},
        "train": {"epochs": 50, "batch_size": 16, "lr": 1e-4, "patience": 10},
    },
    "default": {
        "unet": {"widths": [16, 32, 64, 64, 16]},
        "vqvae": {"channels": 32, "n_down": 3, "n_residual": 1, "num_embeddings": 64, "embedding_dim": 16},
        "transformer": {"d_model": 64, "n_layers": 2, "n_heads": 4, "dropout": 0.0},
        "train": {"epochs": 15, "batch_size": 16, "lr": 1e-3, "patience": 5},
    },
    "smoke": {
        "unet": {"widths": [4, 8, 8, 4]},
        "vqvae": {"channels": 8, "n_down": 3, "n_residual": 0, "num_embeddings": 16, "embedding_dim": 4},
        "transformer": {"d_model": 16, "n_layers": 1, "n_heads": 2, "dropout": 0.0},
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "patience": 0},
    },
}

#: File names of a saved detector.
MODEL_FILE, CONFIG_FILE = "model.safetensors", "detector.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _jsonable(value.item())
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class SliceDetector(VolumeDetector):
    """Shared part of the slice baselines: training through the one trainer, slice-wise scoring, files."""

    method_name: ClassVar[str] = ""
    #: Training options for small cohort presets (:meth:`preset_params`); ``make demo``'s ``demo``
    #: cohort trains 8 epochs (per phase) instead of the size's 15.
    PRESET_PARAMS: ClassVar[dict] = {"demo": {"epochs": 8}}

    @classmethod
    def preset_params(cls, cohort: str) -> dict:
        """Defaults of the experiment kind for a cohort preset (overridden by a run's hyperparameters).

        Examples
        --------
        >>> from ogae_core.volumes import get_volume_method
        >>> get_volume_method("ae-unet").preset_params("demo"), get_volume_method("ae-unet").preset_params("default")
        ({'epochs': 8}, {})
        """
        return dict(cls.PRESET_PARAMS.get(cohort, {}))

    # ------------------------------------------------------------------ configuration
    @property
    def slice_shape(self) -> tuple[int, int]:
        """Network slice size."""
        return tuple(int(s) for s in self.shape)

    def size_config(self) -> dict[str, dict]:
        """The named size's settings (``ValueError`` for an unknown name)."""
        if self.size not in SLICE_SIZES:
            raise ValueError(f"unknown size {self.size!r}; choose one of {list(SLICE_SIZES)}")
        return SLICE_SIZES[self.size]

    def train_config(self, seed: int, progress: bool) -> TrainConfig:
        """Trainer options: the size's, overridden by the explicit arguments."""
        base = dict(self.size_config()["train"])
        for name in ("epochs", "batch_size", "lr", "patience"):
            if getattr(self, name) is not None:
                base[name] = getattr(self, name)
        return TrainConfig(**base, seed=seed, device=self.device, progress=progress, log=progress,
                           channels_last=False, val_fraction=0.2)

    def check_params(self) -> None:
        """Validate the stored arguments (called by :meth:`fit`)."""
        self.size_config()
        if len(self.shape) != 2:
            raise ValueError(f"shape must be (height, width); got {self.shape!r}")
        check_integer("median_size", self.median_size, minimum=0)
        resolve_device(self.device)

    def build_method(self):
        """A fresh method (subclasses)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ training
    def fit(self, train: Sequence, early_stop: Sequence = (), *, seed: int = 0,
            progress: bool = False) -> "SliceDetector":
        """Train on the slices of the subjects ``train`` (hold-out: ``early_stop``, else 20 % of the slices)."""
        self.check_params()
        check_integer("seed", seed, minimum=0)
        X = training_slices(train, self.slice_shape)
        X_val = training_slices(early_stop, self.slice_shape) if len(early_stop) else None
        config = self.train_config(seed, progress)
        with deterministic(seed):
            method = self.build_method()
            method.slice_shape = tuple(self.slice_shape)
            result = trainer.train(method, X, config, X_val=X_val)
        self.method_ = method.eval()
        self.history_ = list(result.history)
        self.train_seconds_ = float(result.seconds)
        self.n_train_slices_ = int(len(X))
        self.seed_ = int(seed)
        return self

    # ------------------------------------------------------------------ scoring
    def check_fitted(self) -> None:
        """``RuntimeError`` before :meth:`fit` or :meth:`load`."""
        if not hasattr(self, "method_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() or load() first")

    def slice_maps(self, x: torch.Tensor, z_indices: Sequence[int]) -> np.ndarray:
        """Anomaly maps ``(n, H, W)`` of network slices ``x`` ``(n, 1, H, W)`` (subclasses)."""
        raise NotImplementedError

    @torch.no_grad()
    def anomaly_map(self, volumes) -> np.ndarray:
        """Stacked slice maps on the subject's grid, float32, NaN outside the brain."""
        self.check_fitted()
        t1, brain = np.asarray(volumes.t1), np.asarray(volumes.brain, bool)
        x_all = slice_stack(t1, brain, self.slice_shape)
        device = next(self.method_.parameters()).device
        maps = np.zeros((t1.shape[2], *self.slice_shape), np.float32)
        chunk = 16
        for start in range(0, len(x_all), chunk):
            x = torch.from_numpy(x_all[start:start + chunk]).to(device)
            z = [int(volumes.z_start) + start + i for i in range(len(x))]
            maps[start:start + len(x)] = self.slice_maps(x, z)
        volume = np.moveaxis(restore_shape(maps, t1.shape[:2]), 0, 2)
        if self.median_size:
            volume = median_filter(volume, size=int(self.median_size), mode="nearest")
        return np.where(brain, volume, np.nan).astype(np.float32)

    # ------------------------------------------------------------------ files
    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``detector.json`` (refuses to overwrite a saved detector)."""
        self.check_fitted()
        directory = Path(directory)
        if (directory / CONFIG_FILE).exists():
            raise FileExistsError(f"{directory} already holds a detector ({CONFIG_FILE})")
        directory.mkdir(parents=True, exist_ok=True)
        state = state_dict_cpu(self.method_)
        atomic_write_file(directory / MODEL_FILE, lambda tmp: save_file(state, str(tmp)))
        config = {
            "format": "ogae-slice-detector/1",
            "name": self.name,
            "params": _jsonable(self.get_params()),
            "method": self.method_.name,
            "hyperparameters": self.method_.config.to_dict(),
            "backbone": self.method_.backbone_config.to_dict(),
            "seed": self.seed_,
            "train_seconds": self.train_seconds_,
            "n_train_slices": self.n_train_slices_,
            "history": _jsonable(self.history_),
        }
        atomic_write_file(directory / CONFIG_FILE, lambda tmp: tmp.write_text(json.dumps(config, indent=1)))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "SliceDetector":
        """Read a detector written by :meth:`save`."""
        directory = Path(directory)
        for name in (CONFIG_FILE, MODEL_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"missing {name} in {directory}")
        config = json.loads((directory / CONFIG_FILE).read_text())
        if config.get("name") != cls.name:
            raise ValueError(f"{directory} holds a {config.get('name')!r} detector, not {cls.name!r}")
        params = dict(config["params"])
        if "shape" in params:
            params["shape"] = tuple(params["shape"])
        det = cls(**params)
        method = build_slice_method(config["method"], config["hyperparameters"], config["backbone"])
        method.load_state_dict(load_file(str(directory / MODEL_FILE)))
        det.method_ = method.to(resolve_device(det.device)).eval()
        det.history_, det.seed_ = config["history"], config["seed"]
        det.train_seconds_, det.n_train_slices_ = config["train_seconds"], config["n_train_slices"]
        return det


@register_volume_method
class AEUNetDetector(SliceDetector):
    """``ae-unet``: AE/UNet of Baur et al. on axial slices; map = ``|x - x_hat|`` (see the module docstring).

    Parameters
    ----------
    size : {"default", "paper", "smoke"}
        Network and training sizes (:data:`SLICE_SIZES`).
    epochs, batch_size, lr, patience : optional
        Override the size's training options.
    widths : sequence of int, optional
        Override the UNet's filters (levels, then bottleneck).
    skips : bool
        Skip connections (the release's UNet; ``False``: plain AE).
    shape : (int, int)
        Network slice size (multiples of the UNet's downsampling).
    median_size : int
        Median filter of the stacked map (0: none, the default).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    """

    name: ClassVar[str] = "ae-unet"
    description: ClassVar[str] = "AE/UNet on whole axial slices (Baur et al. 2021), residual maps"

    def __init__(self, size: str = "default", epochs: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, patience: int | None = None, widths: Sequence[int] | None = None,
                 skips: bool = True, shape: Sequence[int] = SLICE_SHAPE, median_size: int = 0,
                 device: str = "auto") -> None:
        self.size, self.epochs, self.batch_size, self.lr, self.patience = size, epochs, batch_size, lr, patience
        self.widths, self.skips, self.shape, self.median_size, self.device = widths, skips, shape, median_size, device

    def build_method(self):
        """A fresh :class:`~ogae_core.methods.slice_methods.AEUNet`."""
        widths = list(self.widths) if self.widths is not None else self.size_config()["unet"]["widths"]
        return build_slice_method("ae-unet", {}, UNetConfig(widths=tuple(widths), skips=bool(self.skips)).to_dict())

    def slice_maps(self, x: torch.Tensor, z_indices: Sequence[int]) -> np.ndarray:
        """Residual ``|x - x_hat|`` of each slice."""
        return (x - self.method_.reconstruct(x)).abs()[:, 0].cpu().numpy()


@register_volume_method
class VQVAETransformerDetector(SliceDetector):
    """``vqvae-transformer``: VQ-VAE + Transformer of Pinaya et al. with latent healing.

    Parameters
    ----------
    size : {"default", "paper", "smoke"}
        Network and training sizes (:data:`SLICE_SIZES`).
    epochs, batch_size, lr, patience : optional
        Override the size's training options (``epochs`` of each phase).
    transformer_epochs : int
        Epochs of the Transformer phase (-1: as ``epochs``).
    num_embeddings : int, optional
        Override the codebook size.
    codebook : {"ema", "loss"}
        How the codebook is learnt.
    threshold : float
        Tokens with probability below it are resampled (default 0.005, the value we take from
        Pinaya et al.'s 2-D experiments as commonly reported -- not stated in the release).
    healing : {"release", "sequential"}
        Healing procedure (see :func:`ogae_core.methods.slice_methods.heal_codes`).
    sigma : float
        Gaussian smoothing of the resampling mask, in pixels (release: 5).
    scoring_seed : int
        Seed of the resampling (combined with each slice's z index).
    shape, median_size, device
        As for :class:`AEUNetDetector`.
    """

    name: ClassVar[str] = "vqvae-transformer"
    description: ClassVar[str] = "VQ-VAE + Transformer with latent healing (Pinaya et al. 2022), masked residual maps"

    def __init__(self, size: str = "default", epochs: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, patience: int | None = None, transformer_epochs: int = -1,
                 num_embeddings: int | None = None, codebook: str = "ema", threshold: float = 0.005,
                 healing: str = "release", sigma: float = 5.0, scoring_seed: int = 0,
                 shape: Sequence[int] = SLICE_SHAPE, median_size: int = 0, device: str = "auto") -> None:
        self.size, self.epochs, self.batch_size, self.lr, self.patience = size, epochs, batch_size, lr, patience
        self.transformer_epochs, self.num_embeddings, self.codebook = transformer_epochs, num_embeddings, codebook
        self.threshold, self.healing, self.sigma, self.scoring_seed = threshold, healing, sigma, scoring_seed
        self.shape, self.median_size, self.device = shape, median_size, device

    def check_params(self) -> None:
        """Validate the stored arguments."""
        super().check_params()
        check_real("threshold", self.threshold, 0, 1)
        check_real("sigma", self.sigma, 0)
        check_integer("scoring_seed", self.scoring_seed, minimum=0)
        if self.healing not in HEALING_MODES:
            raise ValueError(f"healing must be one of {HEALING_MODES}; got {self.healing!r}")

    def nets(self) -> VQTransformerNets:
        """Network options from the size, the overrides and the slice size."""
        sizes = self.size_config()
        vq = dict(sizes["vqvae"], codebook=self.codebook)
        if self.num_embeddings is not None:
            vq["num_embeddings"] = int(self.num_embeddings)
        vq_config = VQVAEConfig(**vq)
        f = vq_config.downsampling
        h, w = self.slice_shape
        if h % f or w % f:
            raise ValueError(f"shape {self.slice_shape} must be a multiple of the VQ-VAE's downsampling {f}")
        tr = TransformerConfig(vocab_size=vq_config.num_embeddings, seq_len=(h // f) * (w // f), **sizes["transformer"])
        return VQTransformerNets(vq_config, tr)

    def build_method(self):
        """A fresh :class:`~ogae_core.methods.slice_methods.VQVAETransformer`."""
        return build_slice_method("vqvae-transformer", {"transformer_epochs": int(self.transformer_epochs)},
                                  self.nets().to_dict())

    def heal(self, x: torch.Tensor, z_indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Healed images and resampling masks ``(n, h, w)`` of slices ``x`` (seeded per slice)."""
        m = self.method_
        codes = m.codes(x)
        n, h, w = codes.shape
        healed = torch.empty_like(codes)
        mask = torch.zeros_like(codes, dtype=torch.bool)
        for i, z in enumerate(z_indices):
            g = torch.Generator().manual_seed(int(self.scoring_seed) * 100_003 + int(z))
            c, k = heal_codes(m.transformer, codes[i].reshape(1, -1), float(self.threshold), self.healing, g)
            healed[i], mask[i] = c.reshape(h, w), k.reshape(h, w)
        return m.vqvae.decode_indices(healed), mask

    def slice_maps(self, x: torch.Tensor, z_indices: Sequence[int]) -> np.ndarray:
        """``|x - x_healed|`` times the Gaussian-smoothed, upsampled resampling mask."""
        x_healed, mask = self.heal(x, z_indices)
        f = self.method_.backbone_config.vqvae.downsampling
        up = mask.float().repeat_interleave(f, 1).repeat_interleave(f, 2).cpu().numpy()
        smooth = np.stack([gaussian_filter(u, sigma=float(self.sigma)) if self.sigma > 0 else u for u in up])
        return (x - x_healed).abs()[:, 0].cpu().numpy() * smooth


# ---------------------------------------------------------------------- command line
def voxel_metrics(score_map: np.ndarray, volumes) -> dict[str, float]:
    """Voxel AUROC / AUPR of one patient within the brain, and the prevalence (chance AUPR)."""
    from ogae_core.evaluation.metrics import aupr, auroc

    brain = np.asarray(volumes.brain, bool)
    labels, scores = np.asarray(volumes.lesion)[brain], score_map[brain]
    return {"auroc": auroc(labels, scores), "aupr": aupr(labels, scores), "prevalence": float(labels.mean())}


def subject_score(score_map: np.ndarray, volumes) -> float:
    """98th percentile of the map inside the brain, ventricles excluded (the subject score)."""
    keep = np.asarray(volumes.brain, bool) & ~np.asarray(volumes.ventricles, bool)
    return float(np.percentile(score_map[keep], 98))


def run_on_cohort(cohort_name: str, out: Path, methods: Sequence[str], size: str, seed: int,
                  progress: bool = True) -> dict:
    """Fit each method on a cohort's training controls, map every test subject, write files and a summary."""
    from ogae_core.data.mri import load_cohort
    from ogae_core.data.mri.nifti import nifti_bytes
    from ogae_core.evaluation.metrics import aupr, auroc
    from ogae_core.volumes.base import build_volume_detector

    cohort = load_cohort(cohort_name)
    train_subjects, early_stop = cohort.split_training(seed=seed)
    tests = cohort.by_role("test_control") + cohort.by_role("patient")
    summary: dict[str, Any] = {"cohort": cohort_name, "size": size, "seed": seed, "methods": {}}
    for name in methods:
        det = build_volume_detector(name, {"size": size, "device": "cpu"})
        t0 = time.perf_counter()
        det.fit(train_subjects, early_stop, seed=seed, progress=progress)
        fit_seconds = time.perf_counter() - t0
        det.save(out / name / "model")
        rows, score_seconds = [], []
        for subject in tests:
            v = subject.load()
            t0 = time.perf_counter()
            m = det.anomaly_map(v)
            score_seconds.append(time.perf_counter() - t0)
            path = out / name / "maps" / f"{subject.subject_id}.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_file(path, lambda tmp: tmp.write_bytes(nifti_bytes(m, v.affine)))  # float32, NaN outside
            row = {"subject": subject.subject_id, "role": subject.role, "score": subject_score(m, v)}
            if subject.role == "patient":
                row.update(voxel_metrics(m, v))
            rows.append(row)
        patients = [r for r in rows if r["role"] == "patient"]
        labels = [r["role"] == "patient" for r in rows]
        epochs = [r for r in det.history_]
        summary["methods"][name] = {
            "fit_seconds": fit_seconds,
            "seconds_per_epoch": float(np.mean([r["seconds"] for r in epochs])) if epochs else None,
            "epochs": len(epochs),
            "score_seconds_per_volume": float(np.mean(score_seconds)),
            "voxel_auroc_mean": float(np.nanmean([r["auroc"] for r in patients])),
            "voxel_aupr_mean": float(np.nanmean([r["aupr"] for r in patients])),
            "prevalence_mean": float(np.mean([r["prevalence"] for r in patients])),
            "subject_auroc": auroc(labels, [r["score"] for r in rows]),
            "subject_aupr": aupr(labels, [r["score"] for r in rows]),
            "subjects": rows,
        }
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(summary), indent=1)
    atomic_write_file(out / "summary.json", lambda tmp: tmp.write_text(text))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ogae_core.volumes.slice_models --cohort default --out DIR``."""
    parser = argparse.ArgumentParser(description="Train the slice baselines on a cohort and map its test subjects.")
    parser.add_argument("--cohort", default="default")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--methods", nargs="+", default=["ae-unet", "vqvae-transformer"])
    parser.add_argument("--size", default="default", choices=sorted(SLICE_SIZES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty; choose a new directory")
    summary = run_on_cohort(args.cohort, args.out, args.methods, args.size, args.seed)
    for name, s in summary["methods"].items():
        print(f"{name}: fit {s['fit_seconds']:.0f} s ({s['epochs']} epochs, {s['seconds_per_epoch']:.1f} s/epoch), "
              f"{s['score_seconds_per_volume']:.2f} s/volume; voxel AUROC {s['voxel_auroc_mean']:.3f}, "
              f"AUPR {s['voxel_aupr_mean']:.4f} (prevalence {s['prevalence_mean']:.4f}); "
              f"subject AUROC {s['subject_auroc']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
