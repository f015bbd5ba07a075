"""Cohorts of subjects described by a CSV manifest: the objects the MRI models consume.

CSV columns (one row per subject; ``*`` = required)::

    subject_id*, role* (train_control | test_control | patient | validation_control |
    validation_patient), site*, age*, sex*, t1*,
    lesion_mask, brain_mask, ventricle_mask, wm_prob,
    t1_sha256 (or sha256), lesion_mask_sha256, brain_mask_sha256, ventricle_mask_sha256, wm_prob_sha256

Paths are relative to ``root`` (default ``$OGAE_MRI_ROOT``, else the CSV's folder). An empty path
cell may be filled from a BIDS-derivatives ``patterns`` entry such as
``"derivatives/spm/sub-{subject_id}/anat/sub-{subject_id}_space-MNI152NLin2009cSym_T1w.nii.gz"``.
Volumes are read only when asked (:meth:`Subject.load`), checked (sha256, 3-D, finite, grid, T1 and
masks on the same grid, patients with a non-empty lesion mask, controls without) and cropped to
the paper's grid. Without a brain mask the brain is T1 > 0; without a ventricle mask (or with
``ventricle_mask: template``) the template's ventricles are used.

Examples
--------
>>> import tempfile, pathlib
>>> from ogae_core.data.mri.grid import reference_grid
>>> from ogae_core.data.mri.nifti import nifti_bytes
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> aff = reference_grid().cropped_affine(z_start=60)
>>> t1 = np.ones((186, 218, 2), np.float32); t1[80:100, 90:110] = 2.0
>>> les = np.zeros((186, 218, 2), np.uint8); les[85, 95, 0] = 1
>>> for name, arr in [("a.nii.gz", t1), ("b.nii.gz", t1), ("b_les.nii.gz", les), ("m.nii.gz", (t1 > 0).astype(np.uint8))]:
...     _ = (root / name).write_bytes(nifti_bytes(arr, aff))
>>> _ = (root / "cohort.csv").write_text(
...     "subject_id,role,site,age,sex,t1,lesion_mask,brain_mask,ventricle_mask\\n"
...     "c1,test_control,s1,70,F,a.nii.gz,,m.nii.gz,m.nii.gz\\n"
...     "p1,patient,s2,71,M,b.nii.gz,b_les.nii.gz,m.nii.gz,m.nii.gz\\n")
>>> cohort = read_cohort_csv(root / "cohort.csv")
>>> [s.subject_id for s in cohort.by_role("patient")]
['p1']
>>> vols = cohort.subject("p1").load()
>>> vols.t1.shape, int(vols.lesion.sum()), round(vols.prevalence, 6)
((186, 218, 2), 1, 1.2e-05)
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ogae_core.data.mri.grid import ReferenceGrid, reference_grid
from ogae_core.data.mri.manifest import PATIENT_ROLES, REQUIRED_ROLES, ROLES, cohorts_manifest
from ogae_core.data.mri.nifti import Volume, load_volume

__all__ = ["FILE_COLUMNS", "Cohort", "Subject", "SubjectVolumes", "read_cohort_csv", "write_cohort_csv"]

REQUIRED = ("subject_id", "role", "site", "age", "sex", "t1")
FILE_COLUMNS = ("t1", "lesion_mask", "brain_mask", "ventricle_mask", "wm_prob")


@dataclass
class SubjectVolumes:
    """One subject's arrays on the reference grid (or a slab of it).

    ``t1`` float32 in [0, 1]; ``brain``, ``ventricles`` and ``lesion`` bool (``lesion`` holds the
    labels counted by the cohort's ``lesion_labels``); ``labels`` the raw lesion labels;
    ``wm`` the WM probability when the cohort has one.
    """

    t1: np.ndarray
    brain: np.ndarray
    ventricles: np.ndarray
    lesion: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    z_start: int
    wm: np.ndarray | None = None

    @property
    def lesion_cm3(self) -> float:
        """Lesion volume in cm³ (1 mm voxels)."""
        return float(self.lesion.sum()) / 1000.0

    @property
    def prevalence(self) -> float:
        """Lesion voxels / brain voxels: the chance AUPR of voxel-wise localization."""
        return float(self.lesion.sum()) / max(int(self.brain.sum()), 1)


@dataclass(frozen=True)
class Subject:
    """One row of a cohort manifest; volumes are read on demand by :meth:`load`."""

    subject_id: str
    role: str
    site: str
    age: float
    sex: str
    files: dict
    sha256: dict
    cohort: "Cohort" = field(repr=False, compare=False, default=None)

    def load(self, verify: bool = True) -> SubjectVolumes:
        """Read, check and crop the subject's volumes (see the module docstring)."""
        c = self.cohort
        kw = {"subject": self.subject_id, "grid": c.grid, "resample": c.resample, "atol": c.atol}
        sha = (lambda k: self.sha256.get(k)) if verify else (lambda k: None)
        t1 = load_volume(self.files["t1"], kind="t1", sha256=sha("t1"), **kw)
        masks: dict[str, Volume] = {}
        for key in ("lesion_mask", "brain_mask", "ventricle_mask", "wm_prob"):
            if self.files.get(key):
                masks[key] = load_volume(self.files[key], kind=key, sha256=sha(key), mask=key != "wm_prob",
                                         normalise=False, **kw)
                _same_grid(t1, masks[key], self.subject_id, key, self.files[key])
        labels = masks["lesion_mask"].data if "lesion_mask" in masks else np.zeros(t1.data.shape, np.uint8)
        lesion = np.isin(labels, c.lesion_labels)
        if self.role in PATIENT_ROLES and not lesion.any():
            raise ValueError(f"subject {self.subject_id}: a patient needs a non-empty lesion mask with labels "
                             f"{c.lesion_labels} ({self.files.get('lesion_mask') or 'no lesion_mask given'})")
        if self.role not in PATIENT_ROLES and labels.any():
            raise ValueError(f"subject {self.subject_id}: a control ({self.role}) must not have lesion voxels "
                             f"({self.files.get('lesion_mask')})")
        brain = masks["brain_mask"].data > 0 if "brain_mask" in masks else t1.data > 0
        if "ventricle_mask" in masks and c.ventricle_mask == "subject":
            ventricles = masks["ventricle_mask"].data > 0
        else:
            ventricles = c.template_ventricles(t1.z_start, t1.data.shape[2])
        wm = masks["wm_prob"].data if "wm_prob" in masks else None
        return SubjectVolumes(t1=t1.data, brain=brain, ventricles=ventricles & brain, lesion=lesion & brain,
                              labels=labels, affine=t1.affine, z_start=t1.z_start, wm=wm)


def _same_grid(t1: Volume, other: Volume, subject: str, kind: str, path) -> None:
    if other.source_shape != t1.source_shape or not np.allclose(other.source_affine, t1.source_affine, atol=1e-3):
        raise ValueError(f"subject {subject}: {kind} file {path} has shape {other.source_shape} and affine origin "
                         f"{np.round(other.source_affine[:3, 3], 2).tolist()}, the T1 {t1.source_shape} and "
                         f"{np.round(t1.source_affine[:3, 3], 2).tolist()}; they must be on the same grid")


@dataclass
class Cohort:
    """Subjects by role plus the loader options (grid, lesion labels, ventricle source)."""

    name: str
    subjects: list
    grid: ReferenceGrid
    lesion_labels: tuple = (1, 2)
    ventricle_mask: str = "subject"
    resample: bool = False
    atol: float = 0.01
    early_stop_fraction: float = 0.2
    info: dict = field(default_factory=dict)

    def by_role(self, role: str) -> list:
        """Subjects of one role, in manifest order."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; known: {list(ROLES)}")
        return [s for s in self.subjects if s.role == role]

    def subject(self, subject_id: str) -> Subject:
        """The subject with this id."""
        for s in self.subjects:
            if s.subject_id == subject_id:
                return s
        raise KeyError(f"cohort {self.name}: no subject {subject_id!r}")

    def split_training(self, seed: int = 0) -> tuple[list, list]:
        """Training controls split into (train, early stop), seeded (paper: 80 % / 20 %)."""
        train = self.by_role("train_control")
        n_stop = int(round(self.early_stop_fraction * len(train)))
        order = np.random.default_rng(seed).permutation(len(train))
        stop = set(order[:n_stop].tolist())
        return [s for i, s in enumerate(train) if i not in stop], [s for i, s in enumerate(train) if i in stop]

    def template_ventricles(self, z_start: int, n_slices: int) -> np.ndarray:
        """The template's ventricles on the cropped grid (slices ``z_start:z_start + n_slices``)."""
        from ogae_core.data.mri.anatomy import template_anatomy

        vent = self.grid.crop_volume(template_anatomy().ventricles)
        return np.ascontiguousarray(vent[:, :, z_start:z_start + n_slices])

    def summary(self, verify: bool = True) -> dict:
        """Load every subject (all checks run) and report counts, lesion loads and prevalence."""
        rows = []
        for s in self.subjects:
            v = s.load(verify=verify)
            rows.append({"subject_id": s.subject_id, "role": s.role, "site": s.site, "age": s.age,
                         "lesion_cm3": v.lesion_cm3, "brain_cm3": float(v.brain.sum()) / 1000,
                         "ventricle_cm3": float(v.ventricles.sum()) / 1000, "prevalence": v.prevalence,
                         "shape": list(v.t1.shape), "z_start": v.z_start})
        roles = [r for r in ROLES if r in REQUIRED_ROLES or self.by_role(r)]  # validation roles when present
        patients = [r for r in rows if r["role"] == "patient"]  # the test patients
        lesion = sum(r["lesion_cm3"] for r in patients)
        brain = sum(r["brain_cm3"] for r in patients)
        return {
            "cohort": self.name,
            "counts": {role: len(self.by_role(role)) for role in roles},
            "sites": {role: sorted({s.site for s in self.by_role(role)}) for role in roles},
            "lesion_labels": list(self.lesion_labels),
            "shape": rows[0]["shape"] if rows else None,
            "lesion_cm3": [round(r["lesion_cm3"], 3) for r in patients],
            "prevalence_pooled": lesion / brain if brain else 0.0,
            "prevalence_mean": float(np.mean([r["prevalence"] for r in patients])) if patients else 0.0,
            "ventricle_cm3_mean": {role: round(float(np.mean([r["ventricle_cm3"] for r in rows if r["role"] == role])), 2)
                                   for role in roles if any(r["role"] == role for r in rows)},
            "subjects": rows,
        }


def _resolve(cell: str, pattern: str | None, row: dict, root: Path) -> Path | None:
    text = cell.strip() if cell else ""
    if not text and pattern:
        text = pattern.format(**row)
    if not text:
        return None
    p = Path(os.path.expandvars(text)).expanduser()
    return p if p.is_absolute() else root / p


def read_cohort_csv(path: str | Path, root: str | Path | None = None, *, patterns: dict | None = None,
                    name: str | None = None, resample: bool = False, lesion_labels=None,
                    ventricle_mask: str | None = None) -> Cohort:
    """A :class:`Cohort` from a CSV manifest (columns in the module docstring).

    Raises
    ------
    FileNotFoundError
        If the CSV does not exist.
    ValueError
        Missing columns, an unknown role, a duplicate id, a bad age, a missing T1 path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cohort manifest {path} does not exist")
    opts = cohorts_manifest()["options"]
    root = Path(root or os.environ.get("OGAE_MRI_ROOT") or path.parent).expanduser()
    patterns = patterns or {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing} (required: {list(REQUIRED)})")
        rows = list(reader)
    cohort = Cohort(name=name or path.stem, subjects=[], grid=reference_grid(),
                    lesion_labels=tuple(lesion_labels or opts["lesion_labels"]),
                    ventricle_mask=ventricle_mask or opts["ventricle_mask"], resample=resample,
                    atol=float(opts["affine_atol_mm"]), early_stop_fraction=float(opts["early_stop_fraction"]))
    seen = set()
    for line, row in enumerate(rows, start=2):
        sid = (row.get("subject_id") or "").strip()
        where = f"{path}:{line} subject {sid or '?'}"
        if not sid or sid in seen:
            raise ValueError(f"{where}: subject_id empty or used twice")
        seen.add(sid)
        role = (row.get("role") or "").strip()
        if role not in ROLES:
            raise ValueError(f"{where}: unknown role {role!r}; known: {list(ROLES)}")
        try:
            age = float(row["age"])
        except ValueError as exc:
            raise ValueError(f"{where}: age {row['age']!r} is not a number") from exc
        files = {k: _resolve(row.get(k, ""), patterns.get(k), row, root) for k in FILE_COLUMNS}
        if files["t1"] is None:
            raise ValueError(f"{where}: no t1 path (column t1 empty and no pattern)")
        sha = {k: (row.get(f"{k}_sha256") or "").strip() or None for k in FILE_COLUMNS}
        sha["t1"] = sha["t1"] or (row.get("sha256") or "").strip() or None
        cohort.subjects.append(Subject(sid, role, row["site"].strip(), age, row["sex"].strip(),
                                       {k: v for k, v in files.items() if v}, sha, cohort))
    return cohort


def write_cohort_csv(path: Path, rows: list) -> None:
    """Write manifest rows (dicts with the columns above) as CSV (callers make it atomic)."""
    columns = list(REQUIRED[:5]) + list(FILE_COLUMNS) + [f"{k}_sha256" for k in FILE_COLUMNS]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
