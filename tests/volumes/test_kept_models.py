"""Localized models kept on disk: scoring from them equals the streamed scoring that kept them."""
from __future__ import annotations

import numpy as np
import pytest

from ogae_core.volumes import build_volume_detector
from ogae_core.volumes.kept_models import kept_decision_maps, kept_size_bytes, read_index
from ogae_core.volumes.patch_models import SAELocalized
from tests.volumes.toy_volumes import FAST, toy_cohort, toy_volumes


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    train, stop, patient, control = toy_cohort()
    det = build_volume_detector("sae-loc", {**FAST, "nu": 0.2, "keep_models": True}).fit(train, stop, seed=0)
    directory = det.save(tmp_path_factory.mktemp("kept") / "detector")
    streamed = det.decision_maps([patient, control])            # fits, scores, keeps the models
    return det, directory, streamed, (patient, control)


def test_scoring_from_kept_models_equals_streamed_scoring(fitted):
    det, directory, streamed, (patient, control) = fitted
    root = directory / SAELocalized.KEPT_MODELS_DIR
    meta = read_index(root)
    assert 0 < meta["bytes"] <= kept_size_bytes(root) and meta["nu"] == 0.2 and meta["radius"] == 1
    loaded = SAELocalized.load(directory)                       # a new process would do this
    again = loaded.decision_maps([control, patient])
    for a, b in zip(streamed, again[::-1]):
        assert np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_a_new_subject_is_scored_from_the_kept_models_as_by_a_fresh_fit(fitted):
    det, directory, _, _ = fitted
    new = toy_volumes(7, blob=(14, 24))
    from_kept = SAELocalized.load(directory).decision_map(new)
    plain = SAELocalized(**{**det.get_params(), "keep_models": False})
    for attr in ("network_", "history_", "seed_", "shape_", "z_start_", "affine_", "reference_t1_"):
        setattr(plain, attr, getattr(det, attr))
    np.testing.assert_allclose(from_kept, plain.decision_map(new), rtol=1e-9, atol=1e-12, equal_nan=True)


def test_uncovered_voxels_and_other_settings_are_refused(fitted):
    det, directory, _, (patient, _) = fitted
    root = directory / SAELocalized.KEPT_MODELS_DIR
    wide = toy_volumes(8)
    wide.brain[:] = True                                       # the whole slice, corners included
    with pytest.raises(ValueError, match="have no kept localized model"):
        kept_decision_maps(det.network_, root, [(wide.t1, wide.brain)])
    other = SAELocalized.load(directory)
    other.nu = 0.3
    with pytest.raises(ValueError, match="fitted with other settings"):
        other.decision_map(patient)


def test_keep_models_needs_a_saved_detector():
    train, stop, patient, _ = toy_cohort()
    det = build_volume_detector("sae-loc", {**FAST, "keep_models": True}).fit(train[:3], stop, seed=0)
    with pytest.raises(ValueError, match="save\\(\\) the detector before scoring"):
        det.decision_map(patient)
