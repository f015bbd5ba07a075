"""The simulated cohort: subjects built from the template anatomy, deterministic from a seed.

Image model (all parameters in ``mri_cohorts.yaml``, ``simulator``)::

    T1 = gamma( bias * blur( mu_GM GM' + mu_WM WM' (1 - s) + mu_L WM' s + mu_CSF CSF' + r' ) ) + Rician noise

where ' means sampled through the subject's deformation phi (a smooth random displacement of a
few mm, then ventricle growth with the atrophy a), GM' has lost ``a * thinning`` of its part next
to CSF, s is the soft lesion map and mu_L = mu_WM - c (mu_WM - mu_GM) (never brighter than WM).
The image is masked to the supratentorial brain and min-max normalised. Each subject's random
numbers come from ``SeedSequence([seed, role, index])``.

Examples
--------
>>> from ogae_core.data.mri.anatomy import toy_anatomy
>>> plan = plan_subjects({"counts": {"train_control": 2, "test_control": 1, "patient": 1},
...                       "seed": 0, "site_balanced": False, "confound": False})
>>> [p.subject_id for p in plan]
['trn-000', 'trn-001', 'tst-000', 'pat-000']
>>> sub = simulate_subject(toy_anatomy(), plan[-1])
>>> sub.t1.shape, float(sub.t1.min()), float(sub.t1.max()), bool(sub.lesion.any())
((48, 56, 24), 0.0, 1.0, True)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from ogae_core.data.mri.anatomy import Anatomy
from ogae_core.data.mri.fields import sample, smooth_field
from ogae_core.data.mri.lesions import draw_load, lacune, place_lesions
from ogae_core.data.mri.manifest import PATIENT_ROLES, ROLES, cohorts_manifest, role_sites

__all__ = ["SIMULATOR_VERSION", "SimulatedSubject", "SubjectPlan", "plan_subjects", "simulate_subject"]

SIMULATOR_VERSION = 1
_PREFIX = {"train_control": "trn", "test_control": "tst", "patient": "pat", "validation_control": "vct",
           "validation_patient": "vpt"}
_MARGIN = 4  # extra slices simulated around a slab for the smoothing steps


@dataclass(frozen=True)
class SubjectPlan:
    """Who a simulated subject is: id, role, site, age, sex and its random-number stream."""

    subject_id: str
    role: str
    site: str
    age: float
    sex: str
    seed: tuple[int, int, int]
    slab: tuple[int, int] | None = None  # (first slice in the cropped grid, number of slices)


@dataclass
class SimulatedSubject:
    """Arrays of one simulated subject on the output grid and the parameters that made it."""

    t1: np.ndarray
    brain: np.ndarray
    ventricles: np.ndarray
    lesion: np.ndarray
    wm: np.ndarray
    params: dict = field(default_factory=dict)


def _age_to_atrophy(age: float, spec: dict) -> float:
    lo, hi = spec["age_at_zero"], spec["age_at_one"]
    return float(np.clip((age - lo) / (hi - lo), 0.0, 1.0))


def plan_subjects(config: dict, simulator: dict | None = None, slab: tuple[int, int] | None = None) -> list[SubjectPlan]:
    """The subjects of a preset ``config`` (counts, seed, site_balanced, confound), in a fixed order.

    Sites go round-robin over the role's sites; ages are drawn from the young / old
    distributions (patients ``confound_patient_shift`` years older when ``confound``). A role's
    random numbers depend on its index in :data:`~ogae_core.data.mri.manifest.ROLES` only, so
    adding validation subjects leaves the other subjects unchanged; a role absent from
    ``counts`` has no subject.
    """
    sim = simulator or cohorts_manifest()["simulator"]
    plan = []
    for r, role in enumerate(ROLES):
        sites = role_sites(sim, role)
        if config["site_balanced"] and role != "train_control":
            sites = sim["balanced_sites"]
        group = sim["age"]["young" if role == "train_control" else "old"]
        rng = np.random.default_rng([config["seed"], r, 10**6])
        for i in range(int(config["counts"].get(role, 0))):
            age = float(np.clip(rng.normal(group["mean"], group["sd"]), group["min"], group["max"]))
            if role in PATIENT_ROLES and config["confound"]:
                age += sim["age"]["confound_patient_shift"]
            sex = "F" if rng.random() < 0.5 else "M"
            plan.append(SubjectPlan(f"{_PREFIX[role]}-{i:03d}", role, sites[i % len(sites)], round(age, 1), sex,
                                    (int(config["seed"]), r, i), slab))
    return plan


def _site_params(rng: np.random.Generator, site: dict, jitter: dict) -> dict:
    out = {k: float(v) for k, v in site.items()}
    out["bias"] *= 1 + jitter["bias"] * rng.standard_normal()
    out["noise"] *= 1 + jitter["noise"] * rng.standard_normal()
    out["gm_wm_ratio"] += jitter["gm_wm_ratio"] * rng.standard_normal()
    out["gamma"] += jitter["gamma"] * rng.standard_normal()
    out["bias"], out["noise"] = abs(out["bias"]), abs(out["noise"])
    return out


def simulate_subject(anatomy: Anatomy, plan: SubjectPlan, simulator: dict | None = None) -> SimulatedSubject:
    """Simulate one subject on the anatomy's output grid (or the plan's slab of it).

    Returns
    -------
    SimulatedSubject
        ``t1`` float32 in [0, 1]; ``brain``, ``ventricles`` bool; ``lesion`` uint8 (0, 1 = WMH,
        2 = other pathology); ``wm`` float32 WM probability; ``params`` (JSON-ready).
    """
    sim = simulator or cohorts_manifest()["simulator"]
    rng = np.random.default_rng(list(plan.seed))
    out_shape = anatomy.output_shape
    z0, nz = plan.slab if plan.slab else (0, out_shape[2])
    if z0 < 0 or z0 + nz > out_shape[2]:
        raise ValueError(f"{plan.subject_id}: slab {plan.slab} is outside the {out_shape[2]} slices of the grid")
    lo, hi = max(z0 - _MARGIN, 0), min(z0 + nz + _MARGIN, out_shape[2])
    shape = (out_shape[0], out_shape[1], hi - lo)
    core = slice(z0 - lo, z0 - lo + nz)

    # deformation: coarse + fine smooth displacement (mm = voxels), then ventricle growth
    dspec, aspec = sim["deformation"], sim["atrophy"]
    amp = rng.uniform(*dspec["amplitude_mm"]) / np.sqrt(3)
    fine = rng.uniform(*dspec["fine_amplitude_mm"]) / np.sqrt(3)
    coords = np.indices(shape, dtype=np.float32)
    for a in range(3):
        coords[a] += anatomy.crop[a][0] + (lo if a == 2 else 0)
        coords[a] += smooth_field(rng, shape, dspec["coarse_spacing_mm"], amp, out_shape, lo)
        coords[a] += smooth_field(rng, shape, dspec["fine_spacing_mm"], fine, out_shape, lo)
    atrophy = _age_to_atrophy(plan.age, sim["age"])
    push = [sample(anatomy.ventricle_push[a], coords) for a in range(3)]
    for a in range(3):
        coords[a] -= atrophy * aspec["ventricle_push_mm"] * push[a]
    del push

    gm, wm, csf = (sample(m, coords) for m in (anatomy.gm, anatomy.wm, anatomy.csf))
    residual = sample(anatomy.residual, coords)
    brain = sample(anatomy.supratentorial.astype(np.float32), coords)
    ventricles = (sample(anatomy.ventricles.astype(np.float32), coords) > 0.5) & (brain > 0.5)
    distance = sample(anatomy.ventricle_distance, coords)
    thin = atrophy * aspec["cortical_thinning"] * np.clip(sample(anatomy.csf_near, coords), 0, 1) * gm
    del coords
    gm, csf = gm - thin, csf + thin

    # lesions (patients)
    les = sim["lesions"]
    lesion = np.zeros(shape, np.uint8)
    soft = np.zeros(shape, np.float32)
    params: dict = {"load_cm3_drawn": 0.0, "contrast": 0.0, "lacune": False}
    if plan.role in PATIENT_ROLES:
        load = draw_load(rng, les)
        allowed = brain > 0.5
        allowed[:, :, :core.start] = False
        allowed[:, :, core.stop:] = False
        full_brain = float(anatomy.supratentorial.sum())
        n_voxels = int(round(load * 1000 * (allowed.sum() / full_brain)))
        mask, soft = place_lesions(rng, wm, distance, allowed, n_voxels, load, les)
        contrast = float(rng.uniform(*les["contrast"]))
        lesion[mask] = 1
        params.update(load_cm3_drawn=round(load, 4), contrast=round(contrast, 4))
        if rng.random() < les["other_pathology_probability"]:
            ball = lacune(rng, allowed & (wm > les["wm_threshold"]) & ~mask, les)
            lesion[(ball > 0.5) & (lesion == 0)] = 2
            wm, csf = wm * (1 - ball), csf * (1 - ball) + ball
            params["lacune"] = True
        hetero = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.5)
        hetero /= hetero.std() + 1e-12
        cmap = np.clip(contrast * (1 + les["heterogeneity"] * hetero), 0, 1)
    else:
        cmap = np.zeros(shape, np.float32)

    # tissue intensities and scanner effects
    site = _site_params(rng, sim["sites"][plan.site], sim["site_jitter"])
    tissue = sim["tissue"]
    mu_wm = tissue["wm"] * (1 + tissue["intensity_jitter"] * rng.standard_normal())
    mu_gm = mu_wm * site["gm_wm_ratio"] * (1 + tissue["intensity_jitter"] * rng.standard_normal())
    mu_csf = mu_wm * tissue["csf_wm_ratio"] * (1 + tissue["intensity_jitter"] * rng.standard_normal())
    mu_les = mu_wm - cmap * (mu_wm - mu_gm)
    image = mu_gm * gm + mu_wm * wm * (1 - soft) + mu_les * wm * soft + mu_csf * csf
    image += residual * (mu_wm / anatomy.mixture[1])
    image = np.clip(image, 0, None) * np.clip(brain, 0, 1)
    if site["blur_mm"] > 0:
        image = ndimage.gaussian_filter(image, site["blur_mm"])
    bias = smooth_field(rng, shape, 40.0, site["bias"], out_shape, lo)
    image = image * np.exp(bias)
    image = np.power(np.clip(image, 0, None) / mu_wm, site["gamma"]) * mu_wm
    sigma = site["noise"] * mu_wm
    image = np.sqrt((image + sigma * rng.standard_normal(shape)) ** 2 + (sigma * rng.standard_normal(shape)) ** 2)
    mask = brain > 0.5
    image = np.where(mask, image, 0.0).astype(np.float32)

    image, mask, ventricles, lesion, wm = (v[:, :, core] for v in (image, mask, ventricles, lesion, wm))
    lesion = np.where(mask, lesion, 0).astype(np.uint8)
    lo_v, hi_v = float(image.min()), float(image.max())
    image = (image - lo_v) / (hi_v - lo_v) if hi_v > lo_v else np.zeros_like(image)
    params.update({
        **asdict(plan), "seed": list(plan.seed), "slab": list(plan.slab) if plan.slab else None,
        "simulator_version": SIMULATOR_VERSION, "atrophy": round(atrophy, 4),
        "deformation_rms_mm": round(float(amp * np.sqrt(3)), 4), "fine_rms_mm": round(float(fine * np.sqrt(3)), 4),
        "site_params": {k: round(v, 5) for k, v in site.items()},
        "tissue_intensity": {"wm": round(mu_wm, 5), "gm": round(mu_gm, 5), "csf": round(mu_csf, 5)},
        "lesion_cm3": round(float((lesion == 1).sum()) / 1000, 4),
        "lesion_components": int(ndimage.label(lesion == 1)[1]),
        "ventricle_cm3": round(float(ventricles.sum()) / 1000, 4),
        "brain_cm3": round(float(mask.sum()) / 1000, 4),
    })
    return SimulatedSubject(t1=image.astype(np.float32), brain=mask, ventricles=ventricles, lesion=lesion,
                            wm=np.clip(wm, 0, 1).astype(np.float32), params=params)
