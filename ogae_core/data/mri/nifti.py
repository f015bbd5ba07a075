"""Reading and writing the cohort's NIfTI files.

:func:`load_volume` is the one reader of the package: it checks the file (exists, sha256 when
given, a readable 3-D NIfTI, finite), reorients it to RAS (``as_closest_canonical``), puts it on
the reference grid (the full 197x233x189 grid is cropped to the paper's 186x218x135; the cropped
grid or a slab of it is kept; anything else is resampled with nilearn when ``resample`` is set,
nearest neighbour for masks, else refused) and returns the array with its affine. Every error
names the subject and the file. :func:`nifti_bytes` writes deterministic ``.nii.gz`` bytes
(no time stamp, no file name in the gzip header) so that the same seed gives identical files.

Examples
--------
>>> import tempfile, pathlib
>>> from ogae_core.data.mri.grid import reference_grid
>>> grid = reference_grid()
>>> data = np.zeros((186, 218, 2), np.float32); data[90, 100, 1] = 4.0
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t1.nii.gz"
>>> _ = path.write_bytes(nifti_bytes(data, grid.cropped_affine(z_start=60)))
>>> vol = load_volume(path, subject="s1", kind="t1", grid=grid)
>>> vol.data.shape, float(vol.data.max()), vol.z_start
((186, 218, 2), 1.0, 60)
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ogae_core.data.mri.grid import ReferenceGrid
from ogae_core.data.sources import ChecksumError, file_sha256

__all__ = ["Volume", "file_sha256", "load_volume", "nifti_bytes"]


@dataclass(frozen=True)
class Volume:
    """A volume on the reference grid: ``data`` (cropped grid or a slab of it starting at ``z_start``)."""

    data: np.ndarray
    affine: np.ndarray
    z_start: int
    source_shape: tuple = ()
    source_affine: np.ndarray | None = None


def nifti_bytes(data: np.ndarray, affine: np.ndarray, dtype: type | None = None) -> bytes:
    """Deterministic gzip-compressed NIfTI-1 bytes of ``data`` (``dtype``: on-disk type, scaled if int)."""
    img = nib.Nifti1Image(np.asarray(data), affine)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(affine, code=4)  # MNI
    img.header.set_sform(affine, code=4)
    if dtype is not None:
        img.set_data_dtype(dtype)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def _read_image(path: Path, subject: str, kind: str, sha256: str | None) -> nib.Nifti1Image:
    where = f"subject {subject}: {kind} file {path}"
    if not path.is_file():
        raise FileNotFoundError(f"{where} does not exist")
    raw = path.read_bytes()
    if sha256:
        got = hashlib.sha256(raw).hexdigest()
        if got != sha256:
            raise ChecksumError(f"{where}: sha256 {got} does not match the manifest ({sha256})")
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        img = nib.Nifti1Image.from_bytes(raw)
    except (EOFError, OSError, zlib.error, ValueError, nib.filebasedimages.ImageFileError) as exc:
        raise ValueError(f"{where}: not a readable NIfTI-1 file (truncated or corrupt: {exc})") from exc
    return img


def _on_grid(img: nib.Nifti1Image, grid: ReferenceGrid, atol: float) -> tuple[np.ndarray | None, int]:
    """Crop/slab placement of an image already on the reference grid, else (None, 0)."""
    shape, affine = tuple(img.shape), img.affine
    if shape == grid.shape and np.allclose(affine, grid.affine, atol=atol):
        return grid.crop_volume(np.asarray(img.dataobj)), 0
    crop0 = grid.cropped_affine()
    if shape[:2] == grid.cropped_shape[:2] and np.allclose(affine[:3, :3], crop0[:3, :3], atol=atol) \
            and np.allclose(affine[:2, 3], crop0[:2, 3], atol=atol):
        z = (affine[2, 3] - crop0[2, 3]) / grid.voxel_mm
        z_start = int(round(z))
        if abs(z - z_start) < atol and 0 <= z_start and z_start + shape[2] <= grid.cropped_shape[2]:
            return np.asarray(img.dataobj), z_start
    return None, 0


def load_volume(path: str | Path, *, subject: str, kind: str, grid: ReferenceGrid, mask: bool = False,
                sha256: str | None = None, resample: bool = False, atol: float = 0.01,
                normalise: bool = True) -> Volume:
    """Read one NIfTI file of a subject onto the reference grid.

    Parameters
    ----------
    path : path
        ``.nii`` or ``.nii.gz``.
    subject, kind : str
        Named in every error (e.g. ``"pat-003"``, ``"lesion_mask"``).
    grid : ReferenceGrid
    mask : bool
        A label image: values must be non-negative integers; nearest-neighbour resampling; not normalised.
    sha256 : str, optional
        Expected sha256 of the file bytes.
    resample : bool
        Resample an image that is not on the reference grid (nilearn) instead of refusing it.
    normalise : bool
        Min-max normalise an intensity image over the whole (cropped) image, as in the paper.

    Raises
    ------
    FileNotFoundError, ValueError (ChecksumError is a ValueError)
    """
    path = Path(path)
    where = f"subject {subject}: {kind} file {path}"
    img = _read_image(path, subject, kind, sha256)
    if img.ndim == 4 and img.shape[3] == 1:
        img = img.slicer[..., 0]
    if img.ndim != 3:
        raise ValueError(f"{where}: expected a 3-D volume, got shape {img.shape}")
    img = nib.as_closest_canonical(img)
    source_shape, source_affine = tuple(img.shape), img.affine.copy()
    data, z_start = _on_grid(img, grid, atol)
    if data is None:
        if not resample:
            raise ValueError(
                f"{where}: grid {img.shape} with affine origin {np.round(img.affine[:3, 3], 2).tolist()} is not the "
                f"reference grid {grid.shape} (origin {list(grid.origin_mm)}) nor its crop; register to MNI first "
                "or load with resample=True")
        from nilearn.image import resample_img

        target = nib.Nifti1Image(np.zeros(grid.shape, np.uint8), grid.affine)
        img = resample_img(img, target_affine=grid.affine, target_shape=grid.shape,
                           interpolation="nearest" if mask else "continuous", force_resample=True,
                           copy_header=True)
        data, z_start = grid.crop_volume(np.asarray(img.dataobj)), 0
    data = np.asarray(data, dtype=np.float32)
    if np.isinf(data).any():
        raise ValueError(f"{where}: the volume holds infinite values")
    data = np.nan_to_num(data, nan=0.0)
    if mask:
        if (data < 0).any() or not np.array_equal(data, np.round(data)):
            raise ValueError(f"{where}: a mask must hold non-negative integer labels")
        data = data.astype(np.uint8)
    elif normalise:
        lo, hi = float(data.min()), float(data.max())
        if hi <= lo:
            raise ValueError(f"{where}: the image is constant")
        data = (data - lo) / (hi - lo)
    return Volume(data=data, affine=grid.cropped_affine(z_start), z_start=z_start,
                  source_shape=source_shape, source_affine=source_affine)
