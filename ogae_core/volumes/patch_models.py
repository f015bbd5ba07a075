"""The patch models of Experiment 2: S-H2 patch autoencoders with localized or patient-specific OCSVMs.

Registered MRI methods (:func:`ogae_core.volumes.build_volume_detector`):

=========== ============================================ ==========================================
name        network (trained on 15x15 axial patches)     OCSVM on the latent codes
=========== ============================================ ==========================================
``ogae-loc`` OgAE (proposed; expander, then both)          localized: one per voxel, training controls
``sae-loc``  siamese AE, pairs at one voxel, 2 controls    localized
``sae-ps``   siamese AE                                    patient-specific: one per test subject
=========== ============================================ ==========================================

Training (:meth:`PatchModelDetector.fit`): the S-H2 network (:class:`ogae_core.nets.PatchBackbone`)
is trained by the one trainer (:func:`ogae_core.train.train`, Adam ``lr``, ``batch_size``,
``epochs``, early stopping on the early-stopping controls) on patches of the training controls:
every epoch ``patches_per_epoch`` random patches (SAE: pairs at the same voxel from two
different controls) drawn from a bank of all training controls' patches at
``pool_locations`` voxel locations sampled (seeded) in their brains.

Scoring defaults (documented here, sweepable through the constructor; the paper does not
restate them):

* localized (``ogae-loc``, ``sae-loc``): ``nu = 0.1``, ``gamma = "scale"`` resolved per voxel
  on that voxel's standardized training codes (``1 / (d Var)``), ``neighbourhood = 1``: a
  voxel's OCSVM gets the codes of every training control at the voxel and its 3x3 in-plane
  neighbours, i.e. ``n = 9 x`` training controls (144 for the ``default`` cohort's 16), so that
  ``nu * n >= 1`` holds with room; ``neighbourhood = 0`` is the strict one-point-per-subject
  model. Scoring streams slice by slice (:mod:`ogae_core.volumes.streaming`) and keeps no model
  unless ``keep_models=True`` (:mod:`ogae_core.volumes.kept_models`): the detector keeps the
  training controls' T1 slab and fits each slice's models when asked to score
  (:func:`score_cohort` fits them once for all subjects).
* patient-specific (``sae-ps``): ``nu = 0.1``, ``gamma = "scale"`` on standardized codes, fitted
  on ``ps_samples = 2000`` codes drawn (seeded) in the subject's own brain.

Maps follow :class:`~ogae_core.volumes.base.VolumeDetector`: :meth:`~PatchModelDetector.anomaly_map`
is higher = more anomalous, :meth:`~PatchModelDetector.decision_map` has scikit-learn's sign,
NaN outside the brain; the subject-level score is :func:`ogae_core.volumes.streaming.subject_score`
(the paper's 2nd percentile of the decision values without the ventricles).

Examples
--------
>>> from ogae_core.volumes import build_volume_detector
>>> det = build_volume_detector("sae-loc", {"nu": 0.2, "epochs": 1})
>>> det.get_params()["neighbourhood"], det.get_params()["nu"]
(1, 0.2)
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ogae_core.atomic import atomic_write_dir
from ogae_core.batching import deterministic
from ogae_core.checkpoints import load_model, save_model
from ogae_core.nets import PatchBackboneConfig
from ogae_core.validation import check_integer, check_nu, check_nu_times_n
from ogae_core.volumes.base import VolumeDetector, register_volume_method
from ogae_core.volumes.patch_training import as_volumes, sample_locations, train_patch_method
from ogae_core.volumes.streaming import (
    CHUNK_MEMORY,
    localized_decision_maps,
    neighbourhood_offsets,
    patient_specific_decision_map,
)

__all__ = ["LocalizedPatchDetector", "OgAELocalized", "PatchModelDetector", "SAELocalized",
           "SAEPatientSpecific", "check_grid"]

FORMAT = "ogae-volume-patch-model/1"


def check_grid(volumes, shape: tuple, z_start: int, affine: np.ndarray) -> None:
    """``ValueError`` unless ``volumes`` (a SubjectVolumes) lie on the grid the models were fitted on."""
    problems = []
    if tuple(volumes.t1.shape) != tuple(shape):
        problems.append(f"shape {tuple(volumes.t1.shape)} (fitted: {tuple(shape)})")
    if int(volumes.z_start) != int(z_start):
        problems.append(f"z_start {volumes.z_start} (fitted: {z_start})")
    if not np.allclose(np.asarray(volumes.affine, float), np.asarray(affine, float), atol=1e-3):
        problems.append("an affine other than the training controls'")
    if problems:
        raise ValueError("the volume is on another grid than the models were fitted on: " + ", ".join(problems))


def _check_inputs(volumes) -> None:
    if not np.isfinite(volumes.t1).all():
        raise ValueError("the T1 volume contains NaN or infinite values")
    if volumes.brain.shape != volumes.t1.shape:
        raise ValueError(f"brain mask shape {volumes.brain.shape} differs from the T1's {volumes.t1.shape}")


class PatchModelDetector(VolumeDetector):
    """Shared training, grid checks and persistence of the patch models (see the module docstring).

    Parameters
    ----------
    method_params : dict, optional
        Hyperparameters of the network's method (:class:`ogae_core.methods.OgAEConfig` or
        :class:`ogae_core.methods.SAEConfig` fields); OgAE's ``switch_epoch`` defaults to
        ``epochs // 2`` (expander first, then expander + compactor).
    patch_size : int
        Odd patch side (paper: 15).
    widths : tuple of int
        S-H2 encoder filters (paper: (3, 4, 12, 16); the last one sets the code size 16x5x5 = 400).
    epochs, batch_size, lr, patience
        Trainer options (paper: 10 epochs, batches of 100, Adam 1e-3).
    patches_per_epoch : int
        Random training patches per epoch.
    pool_locations : int
        Voxel locations of the bank of training patches (each training control contributes
        its patch at each location).
    eval_patches : int
        Early-stopping patches evaluated per epoch.
    nu, gamma
        OCSVM parameters (see the subclasses).
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``.
    early_stopping : {"phase", "run"} or None
        Early stopping per trainer phase or over the run (:class:`ogae_core.train.TrainConfig`);
        ``None``: the network's method decides (OgAE: ``"run"``, the others have one phase).
    """

    method: ClassVar[str] = ""
    #: Classes of one family train the same network (``ogae bench mri`` trains it once, see
    #: :meth:`from_trained`).
    training_family: ClassVar[str] = ""
    #: Hyperparameters of the OCSVM scorer only (they do not change the trained network).
    scoring_params: ClassVar[tuple] = ("nu", "gamma")
    #: Short training settings of the small cohort presets (:meth:`preset_params`): ``smoke`` (CI)
    #: and ``demo`` (``make demo``: 4 epochs, 2 expander + 2 expander + compactor for OgAE).
    PRESET_PARAMS: ClassVar[dict] = {
        "smoke": {"epochs": 2, "patches_per_epoch": 5000, "pool_locations": 3000, "eval_patches": 2000},
        "demo": {"epochs": 4, "patches_per_epoch": 5000, "pool_locations": 3000, "eval_patches": 2000},
    }

    @classmethod
    def preset_params(cls, cohort: str) -> dict:
        """Defaults for a cohort preset: short training on ``smoke`` (CI) and ``demo``, the paper's otherwise.

        Examples
        --------
        >>> SAELocalized.preset_params("smoke")["epochs"], SAELocalized.preset_params("demo")["epochs"]
        (2, 4)
        >>> SAELocalized.preset_params("default")
        {}
        """
        return dict(cls.PRESET_PARAMS.get(cohort, {}))

    @classmethod
    def from_trained(cls, trained: "PatchModelDetector", params: dict, train: Sequence, early_stop: Sequence = (),
                     *, seed: int = 0, progress: bool = False) -> "PatchModelDetector":
        """A fitted ``cls`` with ``params`` that reuses ``trained``'s network (same training family
        and training hyperparameters; ``ValueError`` otherwise) and keeps its own scorer state."""
        det = cls(**params)
        if getattr(trained, "training_family", None) != cls.training_family:
            raise ValueError(f"cannot reuse a {trained.name!r} network for {cls.name!r} (other training family)")
        trained._check_fitted()
        mine, theirs = det.get_params(), trained.get_params()
        differ = sorted(k for k in set(mine) & set(theirs)
                        if k not in cls.scoring_params and k not in trained.scoring_params and k != "device"
                        and mine[k] != theirs[k])
        if differ:
            raise ValueError(f"cannot reuse the trained network: training hyperparameters {differ} differ")
        det._check_ocsvm_params(len(list(train)))
        for attr in ("network_", "history_", "seed_", "shape_", "z_start_", "affine_"):
            setattr(det, attr, getattr(trained, attr))
        det._keep_training_state([as_volumes(s) for s in train])
        return det

    def __init__(self, method_params: dict | None = None, patch_size: int = 15, widths: tuple = (3, 4, 12, 16),
                 epochs: int = 10, batch_size: int = 100, lr: float = 1e-3, patience: int = 5,
                 patches_per_epoch: int = 60_000, pool_locations: int = 20_000, eval_patches: int = 10_000,
                 nu: float = 0.1, gamma: float | str = "scale", device: str = "auto",
                 early_stopping: str | None = None) -> None:
        self.method_params = method_params
        self.patch_size = patch_size
        self.widths = widths
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.patches_per_epoch = patches_per_epoch
        self.pool_locations = pool_locations
        self.eval_patches = eval_patches
        self.nu = nu
        self.gamma = gamma
        self.early_stopping = early_stopping
        self.device = device

    # ------------------------------------------------------------------ training
    def _backbone(self) -> PatchBackboneConfig:
        return PatchBackboneConfig(patch_size=self.patch_size, widths=tuple(self.widths))

    def _check_ocsvm_params(self, n_train: int) -> None:
        check_nu(self.nu)
        if isinstance(self.gamma, str) and self.gamma not in ("scale", "auto"):
            raise ValueError(f"gamma must be a positive float, 'scale' or 'auto'; got {self.gamma!r}")

    def fit(self, train: Sequence, early_stop: Sequence = (), *, seed: int = 0, progress: bool = False):
        """Train the patch network on the training controls ``train`` (early stopping on
        ``early_stop``), then keep what scoring needs. ``train`` and ``early_stop`` hold
        :class:`~ogae_core.data.mri.Subject` or :class:`~ogae_core.data.mri.SubjectVolumes`.

        Raises
        ------
        ValueError
            No training controls, an even patch size, ``nu * n < 1``, volumes on different grids.
        """
        train = list(train)
        if not train:
            raise ValueError(f"{self.name}: the cohort has no training controls to fit on")
        backbone = self._backbone()
        self._check_ocsvm_params(len(train))
        vols = [as_volumes(s) for s in train]
        stop = [as_volumes(s) for s in early_stop]
        for v in vols + stop:
            _check_inputs(v)
            check_grid(v, vols[0].t1.shape, vols[0].z_start, vols[0].affine)
        with deterministic(seed):
            locations = sample_locations([v.brain for v in vols], self.pool_locations, self.patch_size, seed)
            self.network_, self.history_ = train_patch_method(
                self.method, self.method_params, [v.t1 for v in vols], [v.t1 for v in stop], locations,
                backbone=backbone, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                patches_per_epoch=self.patches_per_epoch, eval_patches=self.eval_patches, patience=self.patience,
                seed=seed, early_stopping=self.early_stopping, device=self.device, progress=progress)
        # the trainer leaves the weights channels-last; a contiguous CPU copy scores as the saved one will
        self.network_.to("cpu").to(memory_format=torch.contiguous_format)
        self.seed_ = int(seed)
        self.shape_ = tuple(int(s) for s in vols[0].t1.shape)
        self.z_start_ = int(vols[0].z_start)
        self.affine_ = np.asarray(vols[0].affine, float)
        self._keep_training_state(vols)
        return self

    def _keep_training_state(self, vols: list) -> None:
        """What scoring needs besides the network (subclasses)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise RuntimeError(f"this {self.name} detector is not fitted; call fit() first")

    def _ocsvm_device(self):
        return None if self.device == "auto" else self.device

    # ------------------------------------------------------------------ scoring
    def decision_map(self, volumes):
        """Decision values of one subject (scikit-learn's sign: higher = more normal), NaN outside the brain."""
        return self.decision_maps([volumes])[0]

    def decision_maps(self, subjects: Sequence, progress: bool = False) -> list:
        """Decision maps of several subjects (streamed; localized models fitted once per slice)."""
        raise NotImplementedError

    def anomaly_map(self, volumes):
        """``-decision_map``: higher = more anomalous, float32, NaN outside the brain."""
        return -self.decision_map(volumes)

    def anomaly_maps(self, subjects: Sequence, progress: bool = False) -> list:
        """``[-m for m in decision_maps(subjects)]``."""
        return [-m for m in self.decision_maps(subjects, progress=progress)]

    def _checked_targets(self, subjects: Sequence) -> list:
        self._check_fitted()
        vols = [as_volumes(s) for s in subjects]
        for v in vols:
            _check_inputs(v)
            check_grid(v, self.shape_, self.z_start_, self.affine_)
        return vols

    # ------------------------------------------------------------------ persistence
    def _extra_tensors(self) -> dict:
        return {}

    def _load_extra(self, tensors: dict) -> None:
        pass

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the detector into ``directory`` (``detector.json``, the network as
        ``network/model.safetensors`` + ``model.json``, and ``state.safetensors``); no pickle.

        Raises ``FileExistsError`` when ``directory`` exists and ``overwrite`` is false.
        """
        self._check_fitted()
        directory = Path(directory)
        if directory.exists() and any(directory.iterdir()) and not overwrite:
            raise FileExistsError(f"{directory} is not empty; pass overwrite=True to replace it")
        params = self.get_params()
        params["widths"] = list(params["widths"])
        meta = {"format": FORMAT, "name": self.name, "params": params, "seed": self.seed_,
                "shape": list(self.shape_), "z_start": self.z_start_, "affine": self.affine_.tolist(),
                "history": self.history_.history}

        def write(tmp: Path) -> None:
            save_model(tmp / "network", self.network_)
            save_file({k: v.contiguous() for k, v in self._extra_tensors().items()} or {"empty": torch.zeros(0)},
                      str(tmp / "state.safetensors"))
            (tmp / "detector.json").write_text(json.dumps(meta, indent=1, default=_json_default))

        atomic_write_dir(directory, write, replace=True)
        self._saved_in(directory)
        return directory

    def _saved_in(self, directory: Path) -> None:
        """Hook: the detector lives in ``directory`` now (saved there or loaded from there)."""

    @classmethod
    def load(cls, directory: str | Path) -> "PatchModelDetector":
        """Read a detector written by :meth:`save` (``ValueError`` on another method or format)."""
        directory = Path(directory)
        meta_path = directory / "detector.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no detector.json in {directory}")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT or meta.get("name") != cls.name:
            raise ValueError(f"{directory} holds {meta.get('name')!r} ({meta.get('format')}), not a {cls.name!r} detector")
        params = dict(meta["params"])
        params["widths"] = tuple(params["widths"])
        det = cls(**params)
        det.network_ = load_model(directory / "network", device="cpu")
        det.seed_, det.shape_, det.z_start_ = int(meta["seed"]), tuple(meta["shape"]), int(meta["z_start"])
        det.affine_ = np.asarray(meta["affine"], float)
        det.history_ = None
        det._load_extra(load_file(str(directory / "state.safetensors")))
        det._saved_in(directory)
        return det


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    return str(o)


class LocalizedPatchDetector(PatchModelDetector):
    """Patch network + localized OCSVMs (one per voxel, on the training controls' codes).

    Parameters (besides :class:`PatchModelDetector`'s)
    ----------
    neighbourhood : int
        In-plane radius ``r`` of the voxels pooled per model: ``n = (2 r + 1)^2`` x training
        controls (default 1: 3x3).
    chunk_memory : int
        Bytes of training codes gathered per chunk of voxels (bounds memory with the slice).
    keep_models : bool
        Keep the localized models instead of discarding them after each slice: scoring saves
        every slice's :class:`~ogae_core.ocsvm.LocalizedOCSVM` in ``<detector dir>/localized_models``
        (:mod:`ogae_core.volumes.kept_models`; the detector must have been saved first), fitted on
        the union of the scored subjects' brains and the training controls' (T1 > 0), so that later
        subjects on the grid are scored from them without refitting -- also after :meth:`load`.
        About 30 kB per voxel at the defaults (~5 GB for the ``default`` slab).
    """

    def __init__(self, method_params: dict | None = None, patch_size: int = 15, widths: tuple = (3, 4, 12, 16),
                 epochs: int = 10, batch_size: int = 100, lr: float = 1e-3, patience: int = 5,
                 patches_per_epoch: int = 60_000, pool_locations: int = 20_000, eval_patches: int = 10_000,
                 nu: float = 0.1, gamma: float | str = "scale", neighbourhood: int = 1,
                 chunk_memory: int = CHUNK_MEMORY, keep_models: bool = False, device: str = "auto",
                 early_stopping: str | None = None) -> None:
        super().__init__(method_params, patch_size, widths, epochs, batch_size, lr, patience, patches_per_epoch,
                         pool_locations, eval_patches, nu, gamma, device, early_stopping)
        self.neighbourhood = neighbourhood
        self.chunk_memory = chunk_memory
        self.keep_models = keep_models

    scoring_params: ClassVar[tuple] = ("nu", "gamma", "neighbourhood", "chunk_memory", "keep_models")
    #: Folder of the kept localized models inside the detector's directory.
    KEPT_MODELS_DIR: ClassVar[str] = "localized_models"

    def _saved_in(self, directory: Path) -> None:
        self.directory_ = Path(directory)

    def _kept_models(self) -> Path | None:
        """The kept models of this detector's directory, when they are complete."""
        from ogae_core.volumes.kept_models import INDEX_FILE

        from ogae_core.volumes.kept_models import read_index

        directory = getattr(self, "directory_", None)
        root = directory / self.KEPT_MODELS_DIR if directory is not None else None
        if root is None or not (root / INDEX_FILE).is_file():
            return None
        meta = read_index(root)
        mine = {"nu": float(self.nu), "gamma": self.gamma if isinstance(self.gamma, str) else float(self.gamma),
                "radius": int(self.neighbourhood), "patch_size": int(self.patch_size)}
        differ = {k: (meta.get(k), v) for k, v in mine.items() if meta.get(k) != v}
        if differ:
            raise ValueError(f"the localized models kept in {root} were fitted with other settings "
                             f"(kept, now): {differ}; delete them or restore the settings")
        return root

    def _check_ocsvm_params(self, n_train: int) -> None:
        super()._check_ocsvm_params(n_train)
        per = len(neighbourhood_offsets(self.neighbourhood))
        check_integer("chunk_memory", self.chunk_memory, minimum=1)
        check_nu_times_n(self.nu, n_train * per, f"each voxel's localized OCSVM ({n_train} training controls x "
                                                 f"{per} neighbourhood voxels)")

    def _keep_training_state(self, vols: list) -> None:
        self.reference_t1_ = np.stack([v.t1 for v in vols]).astype(np.float32)

    def _extra_tensors(self) -> dict:
        return {"reference_t1": torch.from_numpy(self.reference_t1_)}

    def _load_extra(self, tensors: dict) -> None:
        self.reference_t1_ = tensors["reference_t1"].numpy()

    def decision_maps(self, subjects: Sequence, progress: bool = False) -> list:
        """Decision maps of several subjects: from the kept models when the detector has them
        (``keep_models``), else streamed (localized models fitted once per slice for all subjects)."""
        from ogae_core.volumes import kept_models as kept

        vols = self._checked_targets(subjects)
        if not vols:
            return []
        targets = [(v.t1, v.brain) for v in vols]
        root = self._kept_models()
        if root is not None:
            return kept.kept_decision_maps(self.network_, root, targets, device=self._ocsvm_device(), progress=progress)
        keep_dir = cover = None
        if self.keep_models:
            if getattr(self, "directory_", None) is None:
                raise ValueError(f"{self.name}: keep_models=True keeps the localized models in the detector's "
                                 f"directory; save() the detector before scoring")
            keep_dir = self.directory_ / self.KEPT_MODELS_DIR
            if keep_dir.exists():
                shutil.rmtree(keep_dir)  # an unfinished earlier scoring (no index): start afresh
            cover = (self.reference_t1_ > 0).any(0)
        maps = localized_decision_maps(self.network_, list(self.reference_t1_), targets,
                                       nu=self.nu, gamma=self.gamma, radius=self.neighbourhood,
                                       patch_size=self.patch_size, device=self._ocsvm_device(),
                                       chunk_memory=self.chunk_memory, progress=progress, keep_dir=keep_dir,
                                       cover=cover)
        if keep_dir is not None:
            kept.write_index(keep_dir, shape=self.shape_, patch_size=self.patch_size, radius=self.neighbourhood,
                             nu=self.nu, gamma=self.gamma, n_reference=len(self.reference_t1_))
        return maps


@register_volume_method
class OgAELocalized(LocalizedPatchDetector):
    """OgAE (S-H2) + localized OCSVM: the paper's proposed MRI method."""

    name = "ogae-loc"
    description = "OgAE patch network (S-H2) + localized OCSVM per voxel"
    method = "ogae"
    training_family = "ogae-patch"


@register_volume_method
class SAELocalized(LocalizedPatchDetector):
    """Siamese AE (S-H2) + localized OCSVM (paper ref. [45])."""

    name = "sae-loc"
    description = "siamese patch autoencoder (S-H2) + localized OCSVM per voxel"
    method = "sae"
    training_family = "sae-patch"


@register_volume_method
class SAEPatientSpecific(PatchModelDetector):
    """Siamese AE (S-H2) + patient-specific OCSVM (paper ref. [46]).

    Parameters (besides :class:`PatchModelDetector`'s)
    ----------
    ps_samples : int
        Codes of the subject's own brain voxels the OCSVM is fitted on (seeded by the fit seed).
    """

    name = "sae-ps"
    description = "siamese patch autoencoder (S-H2) + patient-specific OCSVM"
    method = "sae"
    training_family = "sae-patch"
    scoring_params = ("nu", "gamma", "ps_samples")

    def __init__(self, method_params: dict | None = None, patch_size: int = 15, widths: tuple = (3, 4, 12, 16),
                 epochs: int = 10, batch_size: int = 100, lr: float = 1e-3, patience: int = 5,
                 patches_per_epoch: int = 60_000, pool_locations: int = 20_000, eval_patches: int = 10_000,
                 nu: float = 0.1, gamma: float | str = "scale", ps_samples: int = 2000, device: str = "auto",
                 early_stopping: str | None = None) -> None:
        super().__init__(method_params, patch_size, widths, epochs, batch_size, lr, patience, patches_per_epoch,
                         pool_locations, eval_patches, nu, gamma, device, early_stopping)
        self.ps_samples = ps_samples

    def _check_ocsvm_params(self, n_train: int) -> None:
        super()._check_ocsvm_params(n_train)
        check_integer("ps_samples", self.ps_samples, minimum=1)
        check_nu_times_n(self.nu, self.ps_samples, f"the patient-specific OCSVM on {self.ps_samples} codes")

    def decision_maps(self, subjects: Sequence, progress: bool = False) -> list:
        vols = self._checked_targets(subjects)
        return [patient_specific_decision_map(self.network_, v.t1, v.brain, nu=self.nu, gamma=self.gamma,
                                              n_samples=self.ps_samples, seed=self.seed_,
                                              patch_size=self.patch_size, device=self._ocsvm_device(),
                                              progress=progress)
                for v in vols]
