"""Build (or find in the cache) a simulated cohort, and load any cohort by name or CSV.

A simulated cohort lives in ``$OGAE_CACHE/mri/<preset>-<key>/``, where ``key`` hashes the preset,
the simulator settings, the reference grid and the code versions: one folder per subject
(``t1.nii.gz``, ``brain_mask.nii.gz``, ``ventricle_mask.nii.gz``, ``lesion_mask.nii.gz``,
``wm_prob.nii.gz``, ``params.json``), each written atomically, then ``cohort.csv`` (the same
manifest format as a real cohort, with sha256 of every file) and ``cohort.json``. A cohort is
complete only once ``cohort.json`` exists; an interrupted build resumes with the subjects done.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ogae_core.atomic import atomic_write_dir, atomic_write_file
from ogae_core.data.mri.anatomy import ANATOMY_VERSION, Anatomy, mri_cache_dir, template_anatomy
from ogae_core.data.mri.cohort import Cohort, read_cohort_csv, write_cohort_csv
from ogae_core.data.mri.grid import reference_grid
from ogae_core.data.mri.manifest import cohorts_manifest, preset_config
from ogae_core.data.mri.nifti import file_sha256, nifti_bytes
from ogae_core.data.mri.simulate import SIMULATOR_VERSION, SimulatedSubject, plan_subjects, simulate_subject

__all__ = ["build_simulated_cohort", "cohort_key", "load_cohort", "simulated_cohort_key", "write_subject"]

_FILES = {"t1": "t1.nii.gz", "brain_mask": "brain_mask.nii.gz", "ventricle_mask": "ventricle_mask.nii.gz",
          "lesion_mask": "lesion_mask.nii.gz", "wm_prob": "wm_prob.nii.gz"}


def cohort_key(config: dict) -> str:
    """Hash of everything that determines a simulated cohort's files."""
    m = cohorts_manifest()
    content = {"config": config, "simulator": m["simulator"], "grid": m["reference_grid"],
               "versions": [SIMULATOR_VERSION, ANATOMY_VERSION]}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def simulated_cohort_key(preset: str, **overrides) -> str:
    """``<preset>-<cohort_key>``: the cache folder name of a simulated cohort, also its
    ``info["key"]`` (what MRI runs store as their data hash); computed without building it.

    It changes with everything that changes the cohort's files: the preset's counts, slab
    (slices), seed, ``site_balanced`` and ``confound``, the simulator, the grid, the code versions.

    Examples
    --------
    >>> simulated_cohort_key("smoke") == simulated_cohort_key("smoke", site_balanced=None)
    True
    >>> simulated_cohort_key("smoke") == simulated_cohort_key("smoke", site_balanced=True)
    False
    """
    config = preset_config(preset, **{k: v for k, v in overrides.items() if k != "progress"})
    return f"{preset}-{cohort_key(config)}"


def write_subject(folder: Path, subject: SimulatedSubject, affine) -> None:
    """Write one subject's NIfTI files and ``params.json`` into ``folder`` (deterministic bytes)."""
    import numpy as np

    arrays = {"t1": (subject.t1, np.int16), "brain_mask": (subject.brain.astype(np.uint8), None),
              "ventricle_mask": (subject.ventricles.astype(np.uint8), None),
              "lesion_mask": (subject.lesion, None), "wm_prob": (subject.wm, np.uint8)}
    for key, (data, dtype) in arrays.items():
        (folder / _FILES[key]).write_bytes(nifti_bytes(data, affine, dtype))
    (folder / "params.json").write_text(json.dumps(subject.params, indent=1, sort_keys=True))


def build_simulated_cohort(preset: str = "default", *, rebuild: bool = False, anatomy: Anatomy | None = None,
                           progress: bool = False, **overrides) -> Path:
    """Folder of the simulated cohort ``preset`` (built if absent), with ``cohort.csv`` in it.

    Parameters
    ----------
    preset : str
        ``smoke``, ``default``, ``full`` or ``paper`` (``mri_cohorts.yaml``).
    rebuild : bool
        Rebuild every subject even if the cohort is cached (each subject is replaced atomically).
    anatomy : Anatomy, optional
        Defaults to :func:`~ogae_core.data.mri.anatomy.template_anatomy`.
    **overrides
        ``seed``, ``site_balanced``, ``confound``, ``counts``, ``slab``.
    """
    config = preset_config(preset, **overrides)
    grid = reference_grid()
    anatomy = anatomy or template_anatomy()
    folder = mri_cache_dir() / simulated_cohort_key(preset, **overrides)
    if (folder / "cohort.json").is_file() and not rebuild:
        return folder
    slab = None
    if config.get("slab"):
        z0 = grid.z_index(config["slab"]["z_mm"]) if anatomy.crop == grid.crop else 0
        slab = (z0, int(config["slab"]["slices"]))
    plan = plan_subjects(config, slab=slab)
    rows, timings = [], []
    for p in plan:
        sub_dir = folder / p.subject_id
        if rebuild or not (sub_dir / "params.json").is_file():
            t = time.perf_counter()
            sim = simulate_subject(anatomy, p)
            affine = grid.cropped_affine(slab[0] if slab else 0) if anatomy.crop == grid.crop else anatomy.affine
            atomic_write_dir(sub_dir, lambda tmp, s=sim, a=affine: write_subject(tmp, s, a))
            timings.append(time.perf_counter() - t)
            if progress:
                print(f"  {p.subject_id} ({p.role}, {p.site}, age {p.age}): {timings[-1]:.1f} s", flush=True)
        row = {"subject_id": p.subject_id, "role": p.role, "site": p.site, "age": p.age, "sex": p.sex}
        for key, fname in _FILES.items():
            row[key] = f"{p.subject_id}/{fname}"
            row[f"{key}_sha256"] = file_sha256(sub_dir / fname)
        rows.append(row)
    atomic_write_file(folder / "cohort.csv", lambda tmp: write_cohort_csv(tmp, rows))
    info = {"preset": preset, "config": config, "key": folder.name, "slab": list(slab) if slab else None,
            "simulator_version": SIMULATOR_VERSION, "subjects": len(rows),
            "seconds_per_subject": (sum(timings) / len(timings)) if timings else None}
    atomic_write_file(folder / "cohort.json", lambda tmp: tmp.write_text(json.dumps(info, indent=1, sort_keys=True)))
    return folder


def load_cohort(name: str = "default", *, root: str | Path | None = None, build: bool = True,
                **overrides) -> Cohort:
    """A cohort by preset name (simulated, built on first use) or by the path of a CSV manifest.

    Parameters
    ----------
    name : str
        A preset of ``mri_cohorts.yaml`` or a path ending in ``.csv``.
    root : path, optional
        Data root of a CSV cohort (default ``$OGAE_MRI_ROOT``, else the CSV's folder).
    build : bool
        Build a missing simulated cohort (else ``FileNotFoundError``).
    **overrides
        Preset overrides (``seed``, ``site_balanced``, ``confound``, ...) or, for a CSV,
        :func:`~ogae_core.data.mri.cohort.read_cohort_csv` options.
    """
    if str(name).endswith(".csv"):
        return read_cohort_csv(name, root, **overrides)
    folder = mri_cache_dir() / simulated_cohort_key(name, **overrides)
    if not (folder / "cohort.json").is_file():
        if not build:
            raise FileNotFoundError(f"simulated cohort {name!r} is not built ({folder}); run `ogae data mri --cohort {name}`")
        folder = build_simulated_cohort(name, **overrides)
    cohort = read_cohort_csv(folder / "cohort.csv", folder, name=name)
    cohort.info = json.loads((folder / "cohort.json").read_text())
    return cohort
