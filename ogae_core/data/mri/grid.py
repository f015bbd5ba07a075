"""The reference grid: MNI 1 mm, 197x233x189, and the paper's crop to 186x218x135.

Examples
--------
>>> grid = reference_grid()
>>> grid.cropped_shape
(186, 218, 135)
>>> grid.cropped_affine()[:3, 3].tolist()
[-92.0, -126.0, -52.0]
>>> float(grid.cropped_affine(z_start=66)[2, 3])
14.0
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ogae_core.data.mri.manifest import cohorts_manifest

__all__ = ["ReferenceGrid", "reference_grid"]


@dataclass(frozen=True)
class ReferenceGrid:
    """A 1 mm RAS grid (``shape``, ``origin_mm``) and the crop ``[(start, stop)] * 3`` of the paper."""

    shape: tuple[int, int, int]
    origin_mm: tuple[float, float, float]
    voxel_mm: float
    crop: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

    @property
    def affine(self) -> np.ndarray:
        """Voxel-to-MNI affine of the full grid."""
        a = np.diag([self.voxel_mm] * 3 + [1.0])
        a[:3, 3] = self.origin_mm
        return a

    @property
    def cropped_shape(self) -> tuple[int, int, int]:
        """Shape after the crop (the paper's 186x218x135)."""
        return tuple(int(b - a) for a, b in self.crop)

    def cropped_affine(self, z_start: int = 0) -> np.ndarray:
        """Affine of the cropped grid, or of a slab starting ``z_start`` slices into it."""
        offset = np.array([self.crop[0][0], self.crop[1][0], self.crop[2][0] + z_start, 1.0])
        a = self.affine.copy()
        a[:3, 3] = (self.affine @ offset)[:3]
        return a

    def crop_volume(self, volume: np.ndarray, where: str = "volume") -> np.ndarray:
        """The paper's crop of a volume on the full grid (a view).

        Raises
        ------
        ValueError
            If ``volume`` is not on the full grid.
        """
        if tuple(volume.shape) != self.shape:
            raise ValueError(f"{where}: shape {tuple(volume.shape)} is not the reference grid {self.shape}")
        return volume[tuple(slice(a, b) for a, b in self.crop)]

    def z_index(self, z_mm: float) -> int:
        """Index in the cropped grid of the axial slice at MNI height ``z_mm``."""
        return int(round((z_mm - self.origin_mm[2]) / self.voxel_mm)) - self.crop[2][0]


def reference_grid() -> ReferenceGrid:
    """The grid of ``mri_cohorts.yaml`` (``reference_grid``)."""
    g = cohorts_manifest()["reference_grid"]
    return ReferenceGrid(
        shape=tuple(int(s) for s in g["shape"]),
        origin_mm=tuple(float(v) for v in g["origin_mm"]),
        voxel_mm=float(g["voxel_mm"]),
        crop=tuple((int(a), int(b)) for a, b in g["crop"]),
    )
