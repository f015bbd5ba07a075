"""Validated access to ``mri_cohorts.yaml`` and ``mri_atlases.yaml``.

Both files are read through :func:`ogae_core.data.manifests.load_manifest` (so they are found
wherever the package's manifests live) and checked here; a wrong structure raises
:class:`~ogae_core.data.manifests.ManifestError` naming the file and the key.

Examples
--------
>>> cohorts = cohorts_manifest()
>>> sorted(cohorts["presets"])
['default', 'demo', 'full', 'paper', 'smoke']
>>> preset_config("smoke")["counts"]["patient"]
3
"""
from __future__ import annotations

import re
from typing import Any

from ogae_core.data.manifests import ManifestError, load_manifest, require

__all__ = ["PATIENT_ROLES", "REQUIRED_ROLES", "ROLES", "VALIDATION_ROLES", "atlases_manifest", "cohorts_manifest",
           "preset_config", "require", "role_sites"]

#: Every subject role. Training controls fit the models; validation controls and patients select
#: hyperparameters (never the test subjects); test controls and patients are the reported evaluation.
ROLES = ("train_control", "test_control", "patient", "validation_control", "validation_patient")
#: Roles every cohort preset has at least one subject of (the validation roles are optional).
REQUIRED_ROLES = ("train_control", "test_control", "patient")
VALIDATION_ROLES = ("validation_control", "validation_patient")
#: Roles with lesions (a non-empty lesion mask).
PATIENT_ROLES = ("patient", "validation_patient")
#: Where a role without its own ``simulator.site_plan`` entry takes its sites: validation
#: subjects come from the scanners of their test counterparts.
_SITE_FALLBACK = {"validation_control": "test_control", "validation_patient": "patient"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_range(pair: Any, where: str) -> None:
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair)
            and pair[0] <= pair[1]):
        raise ManifestError(f"{where}: expected [low, high] with low <= high, got {pair!r}")


def _check_sha(value: Any, where: str) -> None:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise ManifestError(f"{where}: not a sha256 hex digest")


def atlases_manifest() -> dict[str, Any]:
    """Validated ``mri_atlases.yaml`` (template files, atlas wheels, mask rules)."""
    m = load_manifest("mri_atlases")
    w = "mri_atlases.yaml"
    tpl = require(m, "template", dict, w)
    for key in ("package", "folder"):
        require(tpl, key, str, f"{w}.template")
    if len(require(tpl, "shape", list, f"{w}.template")) != 3:
        raise ManifestError(f"{w}.template.shape: need 3 sizes")
    for name in ("t1", "gm", "wm"):
        entry = require(require(tpl, "files", dict, f"{w}.template"), name, dict, f"{w}.template.files")
        require(entry, "name", str, f"{w}.template.files.{name}")
        _check_sha(entry.get("sha256"), f"{w}.template.files.{name}.sha256")
    require(tpl, "brain_threshold", float, f"{w}.template")
    wheels = require(m, "wheels", dict, w)
    for name in ("aal", "dk"):
        spec = require(wheels, name, dict, f"{w}.wheels")
        for key in ("requirement", "filename", "member"):
            require(spec, key, str, f"{w}.wheels.{name}")
        for key in ("sha256", "member_sha256"):
            _check_sha(spec.get(key), f"{w}.wheels.{name}.{key}")
        labels = require(spec, "labels", list, f"{w}.wheels.{name}")
        if not labels or not all(isinstance(v, int) and v > 0 for v in labels):
            raise ManifestError(f"{w}.wheels.{name}.labels: need positive integer labels")
    masks = require(m, "masks", dict, w)
    for key in ("infratentorial_closing_iterations", "infratentorial_dilation_iterations"):
        require(masks, key, int, f"{w}.masks")
    require(masks, "ventricle_csf_threshold", float, f"{w}.masks")
    box = require(masks, "ventricle_box_mm", dict, f"{w}.masks")
    for axis in "xyz":
        _check_range(box.get(axis), f"{w}.masks.ventricle_box_mm.{axis}")
    require(masks, "third_ventricle_midline_mm", dict, f"{w}.masks")
    return m


def cohorts_manifest() -> dict[str, Any]:
    """Validated ``mri_cohorts.yaml`` (reference grid, options, simulator, presets)."""
    m = load_manifest("mri_cohorts")
    w = "mri_cohorts.yaml"
    grid = require(m, "reference_grid", dict, w)
    shape = require(grid, "shape", list, f"{w}.reference_grid")
    crop = require(grid, "crop", list, f"{w}.reference_grid")
    if len(shape) != 3 or len(crop) != 3:
        raise ManifestError(f"{w}.reference_grid: shape and crop need 3 axes")
    for axis, (pair, size) in enumerate(zip(crop, shape)):
        _check_range(pair, f"{w}.reference_grid.crop[{axis}]")
        if not 0 <= pair[0] < pair[1] <= size:
            raise ManifestError(f"{w}.reference_grid.crop[{axis}]: {pair} is outside 0..{size}")
    opts = require(m, "options", dict, w)
    if tuple(require(opts, "roles", list, f"{w}.options")) != ROLES:
        raise ManifestError(f"{w}.options.roles: must be {list(ROLES)}")
    labels = require(opts, "lesion_labels", list, f"{w}.options")
    if not labels or not all(isinstance(v, int) and v > 0 for v in labels):
        raise ManifestError(f"{w}.options.lesion_labels: need positive integer labels")
    if require(opts, "ventricle_mask", str, f"{w}.options") not in ("subject", "template"):
        raise ManifestError(f"{w}.options.ventricle_mask: must be 'subject' or 'template'")
    frac = require(opts, "early_stop_fraction", float, f"{w}.options")
    if not 0.0 <= frac < 1.0:
        raise ManifestError(f"{w}.options.early_stop_fraction: must be in [0, 1)")
    sim = require(m, "simulator", dict, w)
    sites = require(sim, "sites", dict, f"{w}.simulator")
    for name, site in sites.items():
        for key in ("bias", "gm_wm_ratio", "gamma", "noise", "blur_mm"):
            require(site, key, (int, float), f"{w}.simulator.sites.{name}")
    plan = require(sim, "site_plan", dict, f"{w}.simulator")
    for role in ROLES:
        if role not in REQUIRED_ROLES and role not in plan:
            continue  # optional: the test counterpart's sites (role_sites)
        for site in require(plan, role, list, f"{w}.simulator.site_plan"):
            if site not in sites:
                raise ManifestError(f"{w}.simulator.site_plan.{role}: unknown site {site!r}")
    for site in require(sim, "balanced_sites", list, f"{w}.simulator"):
        if site not in sites:
            raise ManifestError(f"{w}.simulator.balanced_sites: unknown site {site!r}")
    les = require(sim, "lesions", dict, f"{w}.simulator")
    for key in ("load_range_cm3", "contrast", "lacune_diameter_mm"):
        _check_range(les.get(key), f"{w}.simulator.lesions.{key}")
    if not 0.0 <= les["contrast"][0] and les["contrast"][1] <= 1.0:
        raise ManifestError(f"{w}.simulator.lesions.contrast: must lie in [0, 1] (never brighter than WM)")
    for name, preset in require(m, "presets", dict, w).items():
        where = f"{w}.presets.{name}"
        counts = require(preset, "counts", dict, where)
        for role in REQUIRED_ROLES:
            if require(counts, role, int, f"{where}.counts") < 1:
                raise ManifestError(f"{where}.counts.{role}: need at least 1 subject")
        for role in VALIDATION_ROLES:  # optional (absent = 0)
            if role in counts and (not isinstance(counts[role], int) or counts[role] < 0):
                raise ManifestError(f"{where}.counts.{role}: need a number of subjects >= 0")
        unknown = sorted(set(counts) - set(ROLES))
        if unknown:
            raise ManifestError(f"{where}.counts: unknown role(s) {unknown}; known: {list(ROLES)}")
        slab = preset.get("slab")
        if slab is not None:
            require(slab, "z_mm", (int, float), f"{where}.slab")
            if require(slab, "slices", int, f"{where}.slab") < 1:
                raise ManifestError(f"{where}.slab.slices: need at least 1 slice")
        require(preset, "seed", int, where)
        for key in ("site_balanced", "confound"):
            require(preset, key, bool, where)
    return m


def role_sites(simulator: dict, role: str) -> list:
    """Sites of ``role`` in ``simulator.site_plan``; a validation role without its own entry gets
    its test counterpart's (validation controls: the test controls', validation patients: the patients').

    Examples
    --------
    >>> sim = cohorts_manifest()["simulator"]
    >>> role_sites(sim, "validation_patient") == role_sites(sim, "patient")
    True
    """
    plan = simulator["site_plan"]
    return list(plan[role] if role in plan else plan[_SITE_FALLBACK[role]])


def preset_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The preset ``name`` of ``mri_cohorts.yaml`` with ``overrides`` (seed, site_balanced, ...).

    Raises
    ------
    ValueError
        For an unknown preset or override key (lists the known ones).
    """
    presets = cohorts_manifest()["presets"]
    if name not in presets:
        raise ValueError(f"unknown MRI cohort preset {name!r}; known: {sorted(presets)}")
    config = dict(presets[name])
    for key, value in overrides.items():
        if key not in config:
            raise ValueError(f"unknown preset setting {key!r}; known: {sorted(config)}")
        if value is not None:
            config[key] = value
    config["name"] = name
    return config
