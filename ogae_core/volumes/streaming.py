"""Full-volume scoring of the patch models, streamed slice by slice (paper §V, issue 14 item 4).

A voxel's score is the decision value of the patch centred on it (stride 1, per axial slice).

* :func:`localized_slice_decisions` -- one axial slice: encode the reference (training)
  controls' patches around the slice's voxels (in one convolutional pass per slice,
  :func:`ogae_core.volumes.conv_codes.slice_codes`), fit one OCSVM per voxel
  (:class:`ogae_core.ocsvm.LocalizedOCSVM`, on the codes of every reference control at the
  voxel and its in-plane neighbourhood), score every target subject's patch at that voxel,
  and drop the models. Voxels go through in chunks of at most ``chunk_memory`` bytes of
  training codes, so memory is bounded by one slice's codes (reference and targets) whatever
  the number of slices;
* :func:`localized_decision_maps` -- every slice of several target subjects (the models of a
  slice are fitted once for all targets), with a progress bar per slice;
* :func:`patient_specific_decision_map` -- one OCSVM per subject fitted on a seeded sample of
  that subject's own codes (:class:`ogae_core.ocsvm.OneClassSVM`, standardized codes),
  scoring every brain voxel slice by slice;
* :func:`subject_score` -- the subject-level score: the 98th percentile of the anomaly map
  (= minus the 2nd percentile of the decision values, as the paper) over the brain without
  the ventricles.

Decision values have scikit-learn's sign (higher = more normal); anomaly maps are their
negatives (higher = more anomalous), NaN outside the brain.

Examples
--------
>>> neighbourhood_offsets(1).shape
(9, 2)
>>> import numpy as np
>>> amap = np.full((2, 2, 1), np.nan, np.float32); amap[:, :, 0] = [[1.0, 2.0], [3.0, 4.0]]
>>> brain = np.ones((2, 2, 1), bool); vent = np.zeros_like(brain); vent[1, 1] = True
>>> round(subject_score(amap, brain, vent, q=100.0), 3)
3.0
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ogae_core.methods import Method
from ogae_core.ocsvm import OneClassSVM
from ogae_core.ocsvm.estimator import NATIVE_MAX_N
from ogae_core.validation import check_integer, check_nu_times_n
from ogae_core.volumes.conv_codes import slice_codes

__all__ = ["localized_decision_maps", "localized_decisions_from_codes", "localized_slice_codes",
           "localized_slice_decisions", "neighbourhood_offsets",
           "patient_specific_decision_map", "subject_score"]

#: Default bound (bytes) on the float32 training codes gathered for one chunk of voxels.
CHUNK_MEMORY = 256 * 2**20


def neighbourhood_offsets(radius: int) -> np.ndarray:
    """In-plane offsets ``(dx, dy)`` of the ``(2 r + 1)^2`` square neighbourhood (centre first)."""
    radius = check_integer("neighbourhood radius", radius, minimum=0)
    r = np.arange(-radius, radius + 1)
    offsets = np.stack(np.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)
    centre = np.flatnonzero((offsets == 0).all(1))
    return np.concatenate([offsets[centre], np.delete(offsets, centre, 0)])


def _neighbour_grid(xy: np.ndarray, shape: tuple[int, int], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct in-plane voxels ``D`` needed by the neighbourhoods of ``xy`` (clipped to the
    slice), and ``(V, O)`` positions in ``D`` of each voxel's neighbours."""
    offsets = neighbourhood_offsets(radius)
    nb = xy[:, None, :] + offsets[None]
    nb[..., 0] = nb[..., 0].clip(0, shape[0] - 1)
    nb[..., 1] = nb[..., 1].clip(0, shape[1] - 1)
    flat = nb[..., 0] * shape[1] + nb[..., 1]
    needed, positions = np.unique(flat, return_inverse=True)
    return np.column_stack([needed // shape[1], needed % shape[1]]), positions.reshape(flat.shape)


def localized_slice_codes(method: Method, reference_slices: list, target_slices: list, xy: np.ndarray, *,
                          radius: int = 1, patch_size: int = 15) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """What the localized OCSVMs of the voxels ``xy`` of one slice are fitted and scored on:
    ``(reference codes (R, D, d), target codes (m, V, d), positions (V, O))`` where the ``D``
    distinct voxels cover every voxel's ``O = (2 radius + 1)^2`` in-plane neighbours (clipped at
    the slice border) and ``positions`` indexes them (float32 codes, one convolutional pass per slice)."""
    needed, positions = _neighbour_grid(xy, reference_slices[0].shape, radius)
    ref = torch.stack([slice_codes(method, s, needed, patch_size) for s in reference_slices])
    tgt = torch.stack([slice_codes(method, s, xy, patch_size) for s in target_slices])
    return ref, tgt, positions


def localized_decisions_from_codes(ref: torch.Tensor, tgt: torch.Tensor, positions: np.ndarray, *, nu: float,
                                   gamma="scale", device=None, chunk_memory: int = CHUNK_MEMORY,
                                   keep_dir=None) -> np.ndarray:
    """Decision values ``(m, V)``: fit one OCSVM per voxel on the reference codes of its
    neighbourhood (``n = R O`` points, standardized per voxel) and score the targets' codes, in
    chunks of at most ``chunk_memory`` bytes of training codes (:func:`localized_slice_codes`).

    ``keep_dir``: also save each chunk's :class:`~ogae_core.ocsvm.LocalizedOCSVM` in
    ``keep_dir/chunk-NNN`` (voxels ``[a, b)`` of the slice, listed in ``keep_dir/chunks.json``).
    """
    from ogae_core.ocsvm import LocalizedOCSVM

    n_ref, (V, n_off) = ref.shape[0], positions.shape
    n, d = n_ref * n_off, ref.shape[-1]
    out = np.empty((tgt.shape[0], V), np.float64)
    rows = max(1, int(chunk_memory) // (n * d * 4))
    chunks = []
    flat_ref = ref.reshape(n_ref * ref.shape[1], d)                        # (R D, d), a view
    ref_start = torch.arange(n_ref).mul_(ref.shape[1]).view(1, n_ref, 1)   # row of reference r's first voxel
    buffer = torch.empty(min(rows, V) * n, d, dtype=ref.dtype, device=ref.device)  # reused: no fresh pages per chunk
    for k, a in enumerate(range(0, V, rows)):
        pos = torch.from_numpy(positions[a:a + rows])                       # (C, O)
        rows_of = (ref_start + pos.unsqueeze(1)).reshape(-1)                # (C R O): point r O + o of each voxel
        codes = torch.index_select(flat_ref, 0, rows_of, out=buffer[:len(rows_of)]).view(len(pos), n, d)
        model = LocalizedOCSVM(nu=nu, gamma=gamma, standardize=True, device=device)
        f = model.fit_decision_function(codes, tgt[:, a:a + len(pos)].permute(1, 0, 2))  # fit + score in one pass
        out[:, a:a + len(pos)] = (f.cpu().numpy() if torch.is_tensor(f) else np.asarray(f)).T
        if keep_dir is not None:
            model.save(Path(keep_dir) / f"chunk-{k:03d}")
            chunks.append([a, a + len(pos)])
        del model, codes
    if keep_dir is not None:
        (Path(keep_dir) / "chunks.json").write_text(json.dumps({"chunks": chunks}))
    return out


def localized_slice_decisions(method: Method, reference_slices: list, target_slices: list, xy: np.ndarray, *,
                              nu: float, gamma="scale", radius: int = 1, patch_size: int = 15,
                              device=None, chunk_memory: int = CHUNK_MEMORY, keep_dir=None) -> np.ndarray:
    """Decision values ``(len(target_slices), len(xy))`` of the voxels ``xy`` of one slice.

    Voxel ``v``'s OCSVM is fitted on the codes of every reference slice's patches centred on
    ``v`` and its ``(2 radius + 1)^2`` in-plane neighbours (clipped at the slice border), so
    ``n = len(reference_slices) * (2 radius + 1)^2`` points, standardized per voxel, RBF width
    ``gamma`` resolved per voxel (``"scale"``: ``1 / (d Var)``). ``keep_dir``: see
    :func:`localized_decisions_from_codes`.

    Raises
    ------
    ValueError
        ``nu * n < 1``, no reference slice, or NaN codes.
    """
    if not reference_slices:
        raise ValueError("localized OCSVMs need at least one training control")
    n = len(reference_slices) * len(neighbourhood_offsets(radius))
    check_nu_times_n(nu, n, f"each voxel's localized OCSVM ({len(reference_slices)} training controls x "
                            f"{len(neighbourhood_offsets(radius))} neighbourhood voxels)")
    if len(xy) == 0:
        return np.empty((len(target_slices), 0), np.float64)
    ref, tgt, positions = localized_slice_codes(method, reference_slices, target_slices, xy, radius=radius,
                                                patch_size=patch_size)
    return localized_decisions_from_codes(ref, tgt, positions, nu=nu, gamma=gamma, device=device,
                                          chunk_memory=chunk_memory, keep_dir=keep_dir)


def localized_decision_maps(method: Method, reference_t1: list, targets: list, *, nu: float, gamma="scale",
                            radius: int = 1, patch_size: int = 15, device=None,
                            chunk_memory: int = CHUNK_MEMORY, progress: bool = False, keep_dir=None,
                            cover: np.ndarray | None = None) -> list:
    """Decision maps (float32, NaN outside each target's brain) of several target subjects.

    ``reference_t1``: the training controls' T1 volumes; ``targets``: ``(t1, brain)`` pairs on
    the same grid. Streams over axial slices; the models of a slice are fitted once, on the
    union of the targets' brain voxels of that slice (and of ``cover``, a boolean volume, when
    given), and discarded after scoring -- unless ``keep_dir`` is given: then each slice's
    models are saved in ``keep_dir/slice-ZZZ/`` (:func:`ogae_core.volumes.kept_models.write_slice_voxels`)
    for :func:`ogae_core.volumes.kept_models.kept_decision_maps`.
    """
    from ogae_core.volumes.kept_models import slice_dir, write_slice_voxels

    maps = [np.full(t1.shape, np.nan, np.float32) for t1, _ in targets]
    n_slices = targets[0][0].shape[2] if targets else 0
    for z in tqdm(range(n_slices), desc="slices (localized OCSVMs)", disable=not progress, unit="slice"):
        union = np.zeros(targets[0][1].shape[:2], bool) if cover is None else cover[:, :, z].copy()
        for _, brain in targets:
            union |= brain[:, :, z]
        xy = np.argwhere(union)
        if len(xy) == 0:
            continue
        where = None
        if keep_dir is not None:
            where = slice_dir(keep_dir, z)
            write_slice_voxels(where, xy)
        dec = localized_slice_decisions(method, [r[:, :, z] for r in reference_t1], [t[:, :, z] for t, _ in targets],
                                        xy, nu=nu, gamma=gamma, radius=radius, patch_size=patch_size,
                                        device=device, chunk_memory=chunk_memory, keep_dir=where)
        for i, (_, brain) in enumerate(targets):
            inside = brain[xy[:, 0], xy[:, 1], z]
            maps[i][xy[inside, 0], xy[inside, 1], z] = dec[i, inside]
    return maps


def patient_specific_decision_map(method: Method, t1: np.ndarray, brain: np.ndarray, *, nu: float,
                                  gamma="scale", n_samples: int = 2000, seed: int = 0, patch_size: int = 15,
                                  device=None, progress: bool = False) -> np.ndarray:
    """Decision map (float32, NaN outside the brain) of one subject's patient-specific OCSVM.

    The OCSVM (:class:`ogae_core.ocsvm.OneClassSVM`, RBF) is fitted on the codes of
    ``n_samples`` brain voxels of the subject drawn with ``seed`` (all of them when fewer),
    standardized per feature with the sample's mean and standard deviation (constant
    features: scale 1), and scores every brain voxel, slice by slice. The dual is solved exactly
    (``solver="native"``) up to :data:`ogae_core.ocsvm.estimator.NATIVE_MAX_N` samples, by
    libsvm (``tol=1e-6``) beyond.
    """
    voxels = np.argwhere(brain)
    if len(voxels) == 0:
        raise ValueError("the subject's brain mask is empty")
    n_samples = check_integer("n_samples", n_samples, minimum=1)
    pick = np.sort(np.random.default_rng(seed).choice(len(voxels), size=min(n_samples, len(voxels)), replace=False))
    check_nu_times_n(nu, len(pick), f"the patient-specific OCSVM on {len(pick)} of the subject's codes")
    sample = voxels[pick]
    codes = []
    for z in np.unique(sample[:, 2]):
        sel = sample[:, 2] == z
        codes.append(slice_codes(method, t1[:, :, z], sample[sel, :2], patch_size))
    train = torch.cat(codes).double().numpy()
    mean, scale = train.mean(0), train.std(0)
    scale[scale == 0] = 1.0
    solver = "native" if len(train) <= NATIVE_MAX_N else "libsvm"  # exact dual when it fits, else libsvm
    model = OneClassSVM(nu=nu, gamma=gamma, solver=solver, tol=1e-6, device=device).fit((train - mean) / scale)
    out = np.full(t1.shape, np.nan, np.float32)
    for z in tqdm(range(t1.shape[2]), desc="slices (patient-specific OCSVM)", disable=not progress, unit="slice"):
        xy = np.argwhere(brain[:, :, z])
        if len(xy):
            z_codes = slice_codes(method, t1[:, :, z], xy, patch_size).double().numpy()
            out[xy[:, 0], xy[:, 1], z] = model.decision_function((z_codes - mean) / scale)
    return out


def subject_score(anomaly_map: np.ndarray, brain: np.ndarray, ventricles: np.ndarray, q: float = 98.0) -> float:
    """Subject-level score: the ``q``-th percentile of the anomaly map over the brain without the
    ventricles (``q = 98``: minus the 2nd percentile of the decision values, the paper's rule)."""
    values = anomaly_map[brain & ~ventricles]
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("no finite score in the brain outside the ventricles")
    return float(np.percentile(values, q))
