"""Training the S-H2 patch network of a brain-MRI patch model through the one trainer.

* :func:`as_volumes` -- a :class:`~ogae_core.data.mri.Subject` (loaded on demand) or
  :class:`~ogae_core.data.mri.SubjectVolumes` as volumes;
* :func:`sample_locations` -- a seeded sample of voxel locations inside the training brains;
* :func:`patch_bank` -- the patches of several subjects at the same locations, subject-major
  (the layout :class:`ogae_core.batching.PatchBatches` samples);
* :func:`patches_at` -- the patches of one axial slice centred on given in-plane voxels;
* :func:`encode_patches` -- latent codes of patches, in batches, without gradients;
* :func:`train_patch_method` -- build AE / SAE / OgAE on the patch network and train it with
  :func:`ogae_core.train.train` on a patch bank of the training controls, early stopping on
  the early-stopping controls' patches at the same locations.

Examples
--------
>>> import numpy as np
>>> vols = [np.random.default_rng(i).random((12, 12, 2), dtype=np.float32) for i in range(3)]
>>> brains = [np.ones((12, 12, 2), bool)] * 3
>>> loc = sample_locations(brains, 10, patch_size=5, seed=0)
>>> bank = patch_bank(vols, loc, patch_size=5)
>>> bank.shape
(30, 5, 5)
>>> bool(bank[10 + 3, 2, 2] == vols[1][tuple(loc[3])])   # subject 1, location 3
True
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ogae_core.batching import PatchBatches
from ogae_core.data.mri.patches import check_patch_size
from ogae_core.methods import Method, build_method, get_method
from ogae_core.nets import PatchBackboneConfig
from ogae_core.train import TrainConfig, TrainResult, train
from ogae_core.validation import check_integer

__all__ = ["as_volumes", "encode_patches", "patch_bank", "patches_at", "sample_locations", "train_patch_method"]


def as_volumes(subject):
    """``subject.load()`` for a :class:`~ogae_core.data.mri.Subject`, the object itself for volumes."""
    return subject.load() if hasattr(subject, "load") else subject


def sample_locations(brains: list, n: int, patch_size: int = 15, seed: int = 0) -> np.ndarray:
    """``n`` distinct voxel locations ``(x, y, z)`` drawn uniformly (seeded) in the union of ``brains``.

    Fewer when the union has fewer voxels. Raises ``ValueError`` on empty masks.
    """
    check_patch_size(patch_size)
    n = check_integer("number of locations", n, minimum=1)
    union = np.zeros(brains[0].shape, bool)
    for b in brains:
        union |= b
    voxels = np.argwhere(union)
    if len(voxels) == 0:
        raise ValueError("the training controls' brain masks are empty: no patch location to sample")
    pick = np.random.default_rng(seed).choice(len(voxels), size=min(n, len(voxels)), replace=False)
    return voxels[np.sort(pick)]


def patches_at(t1_slice: np.ndarray, xy: np.ndarray, patch_size: int = 15) -> np.ndarray:
    """Patches ``(len(xy), p, p)`` float32 of one axial slice centred on in-plane voxels ``xy``
    (zero padding outside the slice)."""
    half = check_patch_size(patch_size) // 2
    padded = np.pad(np.asarray(t1_slice, dtype=np.float32), half)
    windows = sliding_window_view(padded, (patch_size, patch_size))
    return windows[xy[:, 0], xy[:, 1]]


def patch_bank(volumes: list, locations: np.ndarray, patch_size: int = 15) -> np.ndarray:
    """Patches of every volume at every location, subject-major: ``(len(volumes) * L, p, p)``."""
    L = len(locations)
    out = np.empty((len(volumes) * L, patch_size, patch_size), np.float32)
    for s, vol in enumerate(volumes):
        for z in np.unique(locations[:, 2]):
            sel = np.flatnonzero(locations[:, 2] == z)
            out[s * L + sel] = patches_at(vol[:, :, z], locations[sel, :2], patch_size)
    return out


@torch.no_grad()
def encode_patches(method: Method, patches: np.ndarray, batch_size: int = 8192) -> torch.Tensor:
    """Latent codes ``(N, d)`` float32 (CPU) of patches ``(N, p, p)`` (eval mode, no gradients).

    Raises ``ValueError`` when a code is NaN or infinite (a diverged network).
    """
    method.eval()
    device = next(method.parameters()).device
    out = torch.empty(len(patches), method.backbone_config.latent_dim, dtype=torch.float32)
    for a in range(0, len(patches), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(patches[a:a + batch_size]))[:, None].to(device)
        out[a:a + len(x)] = method.encode(x).float().cpu()
    if not torch.isfinite(out).all():
        raise ValueError("the patch network produced NaN or infinite latent codes (did training diverge?)")
    return out


def method_hyperparameters(method: str, hyperparameters: dict | None, epochs: int) -> dict:
    """The method's hyperparameters for a run of ``epochs`` epochs: methods with an
    epoch-dependent schedule (OgAE's ``switch_epoch``) follow it when it is not given
    (OgAE: expander for the first half, then expander + compactor).

    Examples
    --------
    >>> method_hyperparameters("ogae", {}, 10)["switch_epoch"]
    5
    >>> method_hyperparameters("sae", {"similarity_weight": 0.5}, 10)
    {'similarity_weight': 0.5}
    """
    cls = get_method(method)
    hp = dict(hyperparameters or {})
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    if "switch_epoch" in fields and "switch_epoch" not in hp:
        hp = cls.scale_with_epochs({**hp, "switch_epoch": 0}, epochs)
    return hp


def train_patch_method(method: str, hyperparameters: dict | None, train_volumes: list, stop_volumes: list,
                       locations: np.ndarray, *, backbone: PatchBackboneConfig, epochs: int = 10,
                       batch_size: int = 100, lr: float = 1e-3, patches_per_epoch: int | None = 60_000,
                       eval_patches: int | None = 10_000, patience: int = 5, seed: int = 0,
                       early_stopping: str | None = None, device: str = "auto",
                       progress: bool = False) -> tuple[Method, TrainResult]:
    """Build ``method`` on the patch network and train it on the training controls' patches.

    Each epoch draws ``patches_per_epoch`` patches (or, for the siamese autoencoder, pairs at
    the same location from two different controls) from the bank of the training volumes at
    ``locations`` (:class:`~ogae_core.batching.PatchBatches`); early stopping uses the
    early-stopping volumes at the same locations (none: no early stopping), per phase or over
    the run (``early_stopping``; ``None``: the method's default, e.g. OgAE's ``"run"``, see
    :attr:`ogae_core.methods.Method.training_defaults`).
    """
    hp = method_hyperparameters(method, hyperparameters, epochs)
    model = build_method(method, hp, backbone)
    given = {} if early_stopping is None else {"early_stopping": early_stopping}
    L = len(locations)
    X = patch_bank(train_volumes, locations, backbone.patch_size)
    X_val = patch_bank(stop_volumes, locations, backbone.patch_size) if stop_volumes else None
    config = TrainConfig(**{**type(model).training_defaults, **given, "epochs": epochs, "batch_size": batch_size,
                            "lr": lr, "val_fraction": 0.0, "patience": patience, "seed": seed, "device": device,
                            "progress": progress, "log": progress})
    sampler = PatchBatches(L, patches_per_epoch, pairs=model.batch_layout == "pairs", eval_items=eval_patches)
    result = train(model, X, config, X_val=X_val, sampler=sampler)
    return model.eval(), result
