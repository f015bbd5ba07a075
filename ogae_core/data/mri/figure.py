"""The cohort figure: a young control, an old control and two patients with their lesion contours."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ogae_core.atomic import atomic_write_file
from ogae_core.data.mri.cohort import Cohort

__all__ = ["cohort_figure", "figure_subjects"]


def figure_subjects(cohort: Cohort) -> list:
    """The youngest training control, the oldest test control and the patients with the
    smallest and the largest lesion load (by the ``age`` and the manifest order)."""
    young = min(cohort.by_role("train_control"), key=lambda s: s.age)
    old = max(cohort.by_role("test_control"), key=lambda s: s.age)
    patients = cohort.by_role("patient")
    loads = [(s.load(verify=False).lesion_cm3, i) for i, s in enumerate(patients)]
    small, large = patients[min(loads)[1]], patients[max(loads)[1]]
    return [young, old, small] + ([large] if large is not small else [])


def cohort_figure(cohort: Cohort, path: str | Path, z: int | None = None, dpi: int = 110) -> Path:
    """Write a PNG with one axial slice of each subject of :func:`figure_subjects` (atomically).

    ``z`` is the slice index within the loaded volumes (default: the slice with most lesion
    voxels of the larger-load patient, else the middle one).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subjects = figure_subjects(cohort)
    vols = [s.load(verify=False) for s in subjects]
    if z is None:
        per_slice = vols[-1].lesion.sum((0, 1))
        z = int(np.argmax(per_slice)) if per_slice.any() else vols[0].t1.shape[2] // 2
    fig, axes = plt.subplots(1, len(vols), figsize=(3.3 * len(vols), 4.3), facecolor="black")
    for ax, s, v in zip(np.atleast_1d(axes), subjects, vols):
        ax.imshow(v.t1[:, :, z].T, cmap="gray", origin="lower", vmin=0, vmax=1)
        if (v.labels[:, :, z] == 1).any():
            ax.contour((v.labels[:, :, z] == 1).T.astype(float), levels=[0.5], colors=["#7fd3ff"], linewidths=0.9)
        if (v.labels[:, :, z] == 2).any():
            ax.contour((v.labels[:, :, z] == 2).T.astype(float), levels=[0.5], colors=["#1f4fff"], linewidths=0.9)
        if v.ventricles[:, :, z].any():
            ax.contour(v.ventricles[:, :, z].T.astype(float), levels=[0.5], colors=["#ffb000"], linewidths=0.5)
        label = {"train_control": "young control", "test_control": "old control"}.get(s.role, s.role.replace("_", " "))
        extra = f", lesions {v.lesion_cm3:.1f} cm³" if s.role == "patient" else ""
        where = " in slab" if v.t1.shape[2] < cohort.grid.cropped_shape[2] else ""
        ax.set_title(f"{label} {s.subject_id} ({s.site}, age {s.age:.0f})\nventricles "
                     f"{v.ventricles.sum() / 1000:.1f} cm³{where}{extra.replace(', ', chr(10))}", color="white",
                     fontsize=8)
        ax.axis("off")
    z_mm = float(vols[0].affine[2, 3] + z)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.text(0.5, 0.02, f"cohort '{cohort.name}': axial slice z = {z_mm:.0f} mm (MNI); lesion contours light blue "
             "(label 2: dark blue), ventricles orange", color="white", fontsize=9, ha="center")
    path = Path(path)
    atomic_write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, facecolor="black", bbox_inches="tight"))
    plt.close(fig)
    return path
