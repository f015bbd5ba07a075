"""Localized OCSVMs kept on disk after streamed scoring, to score new subjects without refitting.

Streamed scoring (:func:`ogae_core.volumes.streaming.localized_decision_maps`) discards each
slice's models; with ``keep_dir`` it saves them instead, one folder per axial slice::

    <root>/models.json                      parameters, grid, slices, size on disk (written last)
    <root>/slice-ZZZ/voxels.safetensors     in-plane voxels (V, 2) of the slice's models, in order
    <root>/slice-ZZZ/chunks.json            voxel ranges [a, b) of the chunks
    <root>/slice-ZZZ/chunk-NNN/             one LocalizedOCSVM (its own save(): safetensors + JSON)

A kept model stores its support vectors (float32, ``n_SV`` of the ``n`` training codes) and
the float64 standardization statistics (``2 d`` values), i.e. about
``4 d n_SV + 16 d`` bytes per voxel: ~30 kB at ``d = 400``, ``n = 144``, ``nu = 0.1``
(``n_SV`` about 15-20), so ~5 GB for the ``default`` slab and ~50 GB for a full volume's
1.6 M voxels. :func:`kept_size_bytes` reports the actual size.

:func:`kept_decision_maps` scores subjects from the kept models (same decision values as the
streamed scoring that saved them: each voxel's model depends only on the training controls'
codes around it). A subject's brain voxel without a kept model is an error.

Examples
--------
>>> import tempfile
>>> root = tempfile.mkdtemp()
>>> write_slice_voxels(slice_dir(root, 3), np.array([[1, 2], [4, 5]]))
>>> read_slice_voxels(slice_dir(root, 3)).tolist()
[[1, 2], [4, 5]]
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ogae_core.methods import Method
from ogae_core.volumes.conv_codes import slice_codes

__all__ = ["INDEX_FILE", "kept_decision_maps", "kept_size_bytes", "read_index", "read_slice_voxels", "slice_dir",
           "write_index", "write_slice_voxels"]

INDEX_FILE = "models.json"
FORMAT = "ogae-kept-localized-models/1"


def slice_dir(root, z: int) -> Path:
    """The folder of slice ``z``'s models under ``root``."""
    return Path(root) / f"slice-{int(z):03d}"


def write_slice_voxels(folder, xy: np.ndarray) -> None:
    """Write the in-plane voxels ``(V, 2)`` of a slice's models (creates ``folder``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"xy": torch.from_numpy(np.ascontiguousarray(xy, dtype=np.int64))}, str(folder / "voxels.safetensors"))


def read_slice_voxels(folder) -> np.ndarray:
    """The voxels written by :func:`write_slice_voxels`."""
    return load_file(str(Path(folder) / "voxels.safetensors"))["xy"].numpy()


def kept_size_bytes(root) -> int:
    """Bytes on disk of everything under ``root``."""
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def write_index(root, *, shape: tuple, patch_size: int, radius: int, nu: float, gamma, n_reference: int) -> dict:
    """Write ``models.json`` (the kept models are complete once it exists); returns its content."""
    root = Path(root)
    slices = sorted(int(p.name.split("-")[1]) for p in root.glob("slice-*") if (p / "chunks.json").is_file())
    meta = {"format": FORMAT, "shape": [int(s) for s in shape], "patch_size": int(patch_size), "radius": int(radius),
            "nu": float(nu), "gamma": gamma if isinstance(gamma, str) else float(gamma),
            "n_reference": int(n_reference), "slices": slices, "bytes": kept_size_bytes(root)}
    (root / INDEX_FILE).write_text(json.dumps(meta, indent=1))
    return meta


def read_index(root) -> dict:
    """``models.json`` of kept models (``FileNotFoundError`` when absent: scoring did not finish)."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no kept localized models in {root} ({INDEX_FILE} missing)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not kept localized models (format {meta.get('format')!r})")
    return meta


def _slice_decisions(method: Method, folder: Path, target_slices: list, xy: np.ndarray, patch_size: int,
                     device) -> np.ndarray:
    from ogae_core.ocsvm import LocalizedOCSVM

    tgt = torch.stack([slice_codes(method, s, xy, patch_size) for s in target_slices])  # (m, V, d)
    out = np.empty((len(target_slices), len(xy)), np.float64)
    chunks = json.loads((folder / "chunks.json").read_text())["chunks"]
    for k, (a, b) in enumerate(chunks):
        model = LocalizedOCSVM.load(folder / f"chunk-{k:03d}", device=device)
        out[:, a:b] = model.decision_function(tgt[:, a:b].permute(1, 0, 2)).cpu().numpy().T
    return out


def kept_decision_maps(method: Method, root, targets: list, *, device=None, progress: bool = False) -> list:
    """Decision maps (float32, NaN outside each brain) of ``targets`` (``(t1, brain)`` pairs) from
    the models kept under ``root`` (no fitting).

    Raises
    ------
    ValueError
        Targets on another grid, or brain voxels without a kept model (fit anew instead).
    """
    meta = read_index(root)
    shape = tuple(meta["shape"])
    maps = []
    for t1, brain in targets:
        if tuple(t1.shape) != shape or tuple(brain.shape) != shape:
            raise ValueError(f"a volume of shape {tuple(t1.shape)} cannot be scored by models kept for {shape}")
        maps.append(np.full(shape, np.nan, np.float32))
    kept = set(meta["slices"])
    for z in tqdm(range(shape[2]), desc="slices (kept localized OCSVMs)", disable=not progress, unit="slice"):
        wanted = [np.argwhere(brain[:, :, z]) for _, brain in targets]
        if not any(len(w) for w in wanted):
            continue
        if z not in kept:
            raise ValueError(f"slice {z} has brain voxels but no kept localized models in {root}")
        folder = slice_dir(root, z)
        xy = read_slice_voxels(folder)
        index = np.full(shape[:2], -1, np.int64)
        index[xy[:, 0], xy[:, 1]] = np.arange(len(xy))
        for w in wanted:
            missing = int((index[w[:, 0], w[:, 1]] < 0).sum())
            if missing:
                raise ValueError(f"{missing} brain voxel(s) of slice {z} have no kept localized model (the models "
                                 f"cover the brains they were fitted for); fit the models anew for this subject")
        dec = _slice_decisions(method, folder, [t1[:, :, z] for t1, _ in targets], xy, meta["patch_size"], device)
        for i, w in enumerate(wanted):
            maps[i][w[:, 0], w[:, 1], z] = dec[i, index[w[:, 0], w[:, 1]]]
    return maps
