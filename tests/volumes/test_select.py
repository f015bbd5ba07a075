"""Localized-OCSVM settings selected on validation patients: grid, voxel sample, scores, choice."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ogae_core.volumes import build_volume_detector
from ogae_core.volumes.select import choose_setting, evaluate_localized_grid, localized_settings, validation_voxels
from tests.volumes.toy_volumes import FAST, toy_cohort, toy_volumes


def test_settings_respect_nu_times_n_and_scale_gamma():
    s = localized_settings(16, 400)
    assert {(x["nu"], x["neighbourhood"]) for x in s} == {(0.1, 0), (0.3, 0), (0.05, 1), (0.1, 1), (0.3, 1)}
    assert all(x["nu"] * x["n"] >= 1 for x in s)
    assert {x["gamma"] for x in s} == {"scale", 0.5 / 400, 2.0 / 400}
    with pytest.raises(ValueError, match="nu \\* n >= 1"):
        localized_settings(2, 400, nus=(0.1,), radii=(0,))


def test_voxel_sample_keeps_every_lesion_and_weights_the_rest():
    patients = [toy_volumes(1, blob=(26, 14)), toy_volumes(2, blob=(12, 20))]
    mask, weight = validation_voxels(patients, 0.3, seed=0)
    lesion = patients[0].lesion | patients[1].lesion
    brain = patients[0].brain | patients[1].brain
    assert mask[lesion].all() and not mask[~brain].any()
    share = mask[brain & ~lesion].mean()
    assert 0.2 < share < 0.4 and np.allclose(weight[~lesion], 1 / 0.3) and (weight[lesion] == 1).all()
    full, w = validation_voxels(patients, 1.0)
    assert (full == brain).all() and (w == 1).all()


def test_grid_scores_the_planted_blob_and_choice_is_the_best_mean():
    train, stop, _, _ = toy_cohort()
    det = build_volume_detector("sae-loc", FAST).fit(train, stop, seed=0)
    patients = [toy_volumes(90, blob=(26, 14)), toy_volumes(91, blob=(14, 24))]
    settings = localized_settings(len(train), 400, nus=(0.2,), gamma_factors=(1.0, 2.0), radii=(0, 1))
    table = evaluate_localized_grid(det.network_, det.reference_t1_, patients, settings, patch_size=15)
    assert len(table) == len(settings) * 2 and table["aupr"].between(0, 1).all()
    assert table["auroc"].mean() > 0.75                             # the blobs stand out
    # one setting's AUPR equals what the detector's own map gives on the same voxels
    one = settings[-1]
    same = build_volume_detector("sae-loc", {**FAST, "nu": one["nu"], "gamma": one["gamma"],
                                             "neighbourhood": one["neighbourhood"]})
    for attr in ("network_", "history_", "seed_", "shape_", "z_start_", "affine_", "reference_t1_"):
        setattr(same, attr, getattr(det, attr))
    from sklearn.metrics import average_precision_score

    amap = same.anomaly_map(patients[0])
    region = patients[0].brain & ~patients[0].ventricles
    row = table[(table["gamma"] == str(one["gamma"])) & (table["neighbourhood"] == 1)].iloc[0]
    assert row["aupr"] == pytest.approx(average_precision_score(patients[0].lesion[region], amap[region]), abs=1e-9)
    best = choose_setting(table)
    means = table.groupby(["nu", "gamma", "neighbourhood"])["aupr"].mean()
    assert best["mean_aupr"] == pytest.approx(means.max())


def test_choice_breaks_ties_by_order_and_needs_patients():
    t = pd.DataFrame({"nu": [0.1, 0.3], "gamma": ["scale", "scale"], "gamma_factor": [1.0, 1.0],
                      "neighbourhood": [1, 1], "aupr": [0.5, 0.5], "auroc": [0.9, 0.8]})
    assert choose_setting(t)["nu"] == 0.1
    with pytest.raises(ValueError, match="no validation patients"):
        evaluate_localized_grid(None, None, [], [])


def test_selection_refuses_a_cohort_without_validation_patients(tmp_path):
    from ogae_core.experiments.mri import MriConfig, select_on_validation

    with pytest.raises(ValueError, match="no validation_patient subjects"):
        select_on_validation(MriConfig("sae-loc", cohort="smoke"), tmp_path)
