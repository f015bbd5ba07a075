"""The simulated subjects: anatomy variation, age, scanner effects, sites, lesions, determinism."""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from ogae_core.data.mri.lesions import draw_load, place_lesions
from ogae_core.data.mri.manifest import cohorts_manifest
from ogae_core.data.mri.simulate import SubjectPlan, plan_subjects, simulate_subject


def _plan(role="train_control", site="site-A", age=35.0, index=0, seed=0):
    return SubjectPlan(f"s-{index}", role, site, age, "F", (seed, 0, index))


def _quiet(sim):
    """Simulator settings without bias, noise and blur."""
    sim = copy.deepcopy(sim)
    for site in sim["sites"].values():
        site.update(bias=0.0, noise=0.0, blur_mm=0.0)
    sim["site_jitter"].update(bias=0.0, noise=0.0)
    return sim


def test_masks_inside_brain(toy):
    s = simulate_subject(toy, _plan(role="patient", age=70))
    assert s.brain.any() and s.ventricles.any() and s.lesion.any()
    assert not (s.ventricles & ~s.brain).any()
    assert not ((s.lesion > 0) & ~s.brain).any()
    assert (s.t1[~s.brain] == 0).all() and s.t1.min() == 0.0 and s.t1.max() == 1.0


def test_nonrigid_variation_between_young_controls(toy):
    subjects = [simulate_subject(toy, _plan(index=i, age=35.0)) for i in range(4)]
    vent = [s.ventricles.sum() for s in subjects]
    assert len(set(vent)) == len(vent)                       # ventricle volumes vary
    template_brain = toy.supratentorial
    a, b = subjects[0].brain, subjects[1].brain
    assert (a != template_brain).sum() > 0.01 * a.sum()       # differs from the template
    # no integer translation maps one subject's brain onto the other's: the deformation is not rigid
    best = min((np.roll(a, (dx, dy, dz), (0, 1, 2)) != b).sum()
               for dx in range(-2, 3) for dy in range(-2, 3) for dz in range(-2, 3))
    assert best > 0.005 * a.sum()


def test_old_subjects_have_larger_ventricles(toy):
    young = simulate_subject(toy, _plan(age=30.0))
    old = simulate_subject(toy, _plan(age=80.0))
    assert old.ventricles.sum() > 1.5 * young.ventricles.sum()
    assert old.params["atrophy"] == 1.0 and young.params["atrophy"] == 0.0


def _wm_core(s, toy_wm):
    return ndimage.binary_erosion((s.wm > 0.97) & s.brain, iterations=2)


def test_bias_field_and_noise_on_white_matter(toy):
    sim = cohorts_manifest()["simulator"]
    sim["sites"]["site-A"].update(bias=0.15, noise=0.03)
    noisy = simulate_subject(toy, _plan(), sim)
    clean = simulate_subject(toy, _plan(), _quiet(sim))   # same anatomy (same random stream), no scanner effects
    core = _wm_core(clean, None)
    ratio = np.log(noisy.t1[core] / clean.t1[core])
    xyz = np.argwhere(core)
    octant = (xyz[:, 0] > xyz[:, 0].mean()) * 4 + (xyz[:, 1] > xyz[:, 1].mean()) * 2 + (xyz[:, 2] > xyz[:, 2].mean())
    means = np.array([ratio[octant == k].mean() for k in range(8)])
    resid = ratio - means[octant]
    assert np.ptp(means) > 0.05                  # a smooth multiplicative bias field
    assert 0.01 < resid.std() < 0.2              # voxel-wise noise on WM
    # and without scanner effects, WM is smooth: neighbouring voxels differ far less than with noise
    diff = lambda v: np.abs(np.diff(v, axis=0))[core[1:] & core[:-1]].mean()  # noqa: E731
    assert diff(noisy.t1) > 3 * diff(clean.t1)


def _gm_wm_ratio(s):
    wm = np.median(s.t1[(s.wm > 0.97) & s.brain])
    gm_region = s.brain & (s.wm < 0.05) & (s.t1 > 0.3)
    return np.median(s.t1[gm_region]) / wm


def test_site_statistics_differ_between_sites_and_match_within(toy):
    sim = cohorts_manifest()["simulator"]
    ratios = {site: [_gm_wm_ratio(simulate_subject(toy, _plan(site=site, index=i), sim)) for i in range(3)]
              for site in ("site-E", "site-F")}                 # GM/WM 0.70 vs 0.80 in the manifest
    within = max(np.ptp(v) for v in ratios.values())
    between = abs(np.mean(ratios["site-E"]) - np.mean(ratios["site-F"]))
    assert between > 2 * within


def test_lesions_in_white_matter_and_hypointense(toy):
    s = simulate_subject(toy, _plan(role="patient", age=70))
    les = s.lesion == 1
    assert les.any() and (s.wm[les] > 0.5).all()
    normal_wm = (s.wm > 0.95) & s.brain & ~ndimage.binary_dilation(les, iterations=2)
    assert s.t1[les].mean() < np.median(s.t1[normal_wm])
    assert s.params["lesion_cm3"] == pytest.approx(les.sum() / 1000)


def test_lesion_loads_within_range():
    spec = cohorts_manifest()["simulator"]["lesions"]
    rng = np.random.default_rng(0)
    loads = np.array([draw_load(rng, spec) for _ in range(2000)])
    lo, hi = spec["load_range_cm3"]
    assert loads.min() >= lo and loads.max() <= hi
    assert 3 < np.median(loads) < 10
    # the paper's prevalence: mean load / supratentorial brain (1613 cm³) ~ 0.7 %
    assert 0.004 < loads.mean() / 1613.3 < 0.011


def test_small_loads_scatter_large_loads_merge():
    from ogae_core.data.mri.anatomy import toy_anatomy

    toy = toy_anatomy((96, 112, 48))
    spec = cohorts_manifest()["simulator"]["lesions"]
    allowed = toy.brain
    pieces = {}
    for load in (1.0, 150.0):
        counts = []
        for seed in range(3):
            mask, soft = place_lesions(np.random.default_rng(seed), toy.wm, toy.ventricle_distance, allowed,
                                       1500, load, spec)
            assert mask.sum() == 1500 and soft.max() <= 1.0
            counts.append(ndimage.label(mask)[1])
        pieces[load] = np.mean(counts)
    assert pieces[1.0] > 2 * pieces[150.0]


def test_same_seed_same_arrays_other_seed_differs(toy):
    p = _plan(role="patient", age=70)
    a, b = simulate_subject(toy, p), simulate_subject(toy, p)
    for key in ("t1", "brain", "ventricles", "lesion", "wm"):
        assert np.array_equal(getattr(a, key), getattr(b, key))
    c = simulate_subject(toy, replace(p, seed=(1, 0, 0)))
    assert not np.array_equal(a.t1, c.t1)


def test_plan_sites_ages_and_switches():
    cfg = {"counts": {"train_control": 4, "test_control": 6, "patient": 6}, "seed": 0,
           "site_balanced": False, "confound": False}
    plan = plan_subjects(cfg)
    sites = {r: {p.site for p in plan if p.role == r} for r in ("train_control", "test_control", "patient")}
    assert sites["test_control"].isdisjoint(sites["patient"]) and sites["train_control"].isdisjoint(sites["patient"])
    assert len(sites["patient"]) == 3
    balanced = plan_subjects({**cfg, "site_balanced": True})
    bsites = {r: {p.site for p in balanced if p.role == r} for r in ("test_control", "patient")}
    assert bsites["test_control"] == bsites["patient"]
    young = np.mean([p.age for p in plan if p.role == "train_control"])
    old = np.mean([p.age for p in plan if p.role == "test_control"])
    assert old > young + 20
    conf = plan_subjects({**cfg, "confound": True})
    shift = np.mean([p.age for p in conf if p.role == "patient"]) - np.mean([p.age for p in plan if p.role == "patient"])
    assert shift == pytest.approx(10.0)


def test_slab_outside_grid_is_refused(toy):
    with pytest.raises(ValueError, match="s-0: slab"):
        simulate_subject(toy, replace(_plan(), slab=(30, 5)))


def test_validation_roles_leave_the_other_subjects_unchanged(toy):
    base = {"counts": {"train_control": 2, "test_control": 1, "patient": 2}, "seed": 3, "site_balanced": False,
            "confound": False}
    more = {**base, "counts": {**base["counts"], "validation_control": 1, "validation_patient": 2}}
    before, after = plan_subjects(base), plan_subjects(more)
    assert after[:len(before)] == before                      # same ids, sites, ages, seeds
    extra = after[len(before):]
    assert [p.role for p in extra] == ["validation_control", "validation_patient", "validation_patient"]
    sim = cohorts_manifest()["simulator"]
    assert {p.site for p in extra if p.role == "validation_patient"} <= set(sim["site_plan"]["patient"])
    assert extra[0].site in sim["site_plan"]["test_control"]
    assert len({p.seed for p in after}) == len(after)         # distinct random streams
    assert simulate_subject(toy, extra[-1]).lesion.any()      # validation patients have lesions
    assert not simulate_subject(toy, extra[0]).lesion.any()


def test_preset_counts_of_validation_roles_are_checked(monkeypatch):
    import ogae_core.data.mri.manifest as manifest
    from ogae_core.data.manifests import ManifestError

    good = copy.deepcopy(manifest.load_manifest("mri_cohorts"))
    for bad, match in (({"validation_patient": -1}, "validation_patient"), ({"validation": 2}, "unknown role")):
        m = copy.deepcopy(good)
        m["presets"]["smoke"]["counts"].update(bad)
        monkeypatch.setattr(manifest, "load_manifest", lambda name, m=m: m)
        with pytest.raises(ManifestError, match=match):
            manifest.cohorts_manifest()
