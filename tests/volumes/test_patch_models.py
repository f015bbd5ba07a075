"""ogae-loc / sae-loc / sae-ps on generated volumes: planted anomaly, equality with scikit-learn,
streaming, save/load, NIfTI maps and bad inputs."""
import dataclasses
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM as SkOCSVM

from ogae_core.ocsvm import LocalizedOCSVM
from ogae_core.volumes import build_volume_detector, volume_method_names
from ogae_core.volumes.patch_training import encode_patches, patches_at
from ogae_core.volumes.score_maps import score_cohort
from ogae_core.volumes.streaming import localized_decision_maps, neighbourhood_offsets, subject_score
from tests.volumes.toy_volumes import FAST, toy_cohort, toy_volumes


@pytest.fixture(scope="module")
def cohort():
    return toy_cohort()


@pytest.fixture(scope="module")
def sae_loc(cohort):
    train, stop, _, _ = cohort
    return build_volume_detector("sae-loc", FAST).fit(train, stop, seed=0)


def test_methods_are_registered():
    assert {"ogae-loc", "sae-loc", "sae-ps"} <= set(volume_method_names())


def test_same_seed_same_network():
    # two fits back to back give bit-identical networks (and so maps). Note: after heavy scoring in
    # the same process, a refit can differ at rounding level (the conv biases before batch norm get
    # near-zero gradients that Adam normalizes); fresh processes are bit-identical.
    train, stop, _, _ = toy_cohort(n_train=3, n_stop=1)
    a, b = (build_volume_detector("sae-loc", {**FAST, "patches_per_epoch": 600}).fit(train, stop, seed=0)
            for _ in range(2))
    c = build_volume_detector("sae-loc", {**FAST, "patches_per_epoch": 600}).fit(train, stop, seed=1)
    sa, sb, sc = (d.network_.state_dict() for d in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("name", ["sae-loc", "ogae-loc"])
@pytest.mark.slow
def test_planted_hypointense_blob_is_ranked_first(cohort, sae_loc, name):
    train, stop, patient, control = cohort
    det = sae_loc if name == "sae-loc" else build_volume_detector(name, FAST).fit(train, stop, seed=0)
    amap = det.anomaly_map(patient)
    brain = patient.brain
    assert amap.dtype == np.float32 and np.isnan(amap[~brain]).all() and np.isfinite(amap[brain]).all()
    assert roc_auc_score(patient.lesion[brain], amap[brain]) > 0.9
    # the subject-level score separates the patient from a control
    assert subject_score(amap, brain, patient.ventricles) > subject_score(det.anomaly_map(control), control.brain,
                                                                         control.ventricles)


def _training_codes(det, train, z, xy, radius):
    """Codes of every training control at voxel xy and its neighbours (clipped), as the model uses them."""
    X, Y = train[0].t1.shape[:2]
    nb = np.clip(xy + neighbourhood_offsets(radius), 0, [X - 1, Y - 1])
    return np.concatenate([encode_patches(det.network_, patches_at(v.t1[:, :, z], nb)).double().numpy()
                           for v in train])


def test_localized_map_equals_per_voxel_scikit_learn(cohort, sae_loc):
    train, _, patient, _ = cohort
    dmap = sae_loc.decision_map(patient)
    rng = np.random.default_rng(0)
    voxels = np.argwhere(patient.brain)
    voxels = np.concatenate([voxels[rng.choice(len(voxels), 4, replace=False)], np.argwhere(patient.lesion)[:1]])
    for x, y, z in voxels:
        codes = _training_codes(sae_loc, train, z, np.array([x, y]), sae_loc.neighbourhood)
        assert len(codes) == len(train) * 9
        ref = make_pipeline(StandardScaler(), SkOCSVM(nu=sae_loc.nu, gamma="scale", tol=1e-10)).fit(codes)
        test = encode_patches(sae_loc.network_, patches_at(patient.t1[:, :, z], np.array([[x, y]]))).double().numpy()
        expected = ref.decision_function(test)[0]
        assert dmap[x, y, z] == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_patient_specific_map_equals_scikit_learn(cohort):
    train, stop, patient, _ = cohort
    det = build_volume_detector("sae-ps", {**FAST, "ps_samples": 300}).fit(train, stop, seed=0)
    dmap = det.decision_map(patient)
    voxels = np.argwhere(patient.brain)
    pick = np.sort(np.random.default_rng(det.seed_).choice(len(voxels), size=300, replace=False))
    sample = voxels[pick]
    codes = np.concatenate([encode_patches(det.network_, patches_at(patient.t1[:, :, z], sample[sample[:, 2] == z, :2]))
                            .double().numpy() for z in np.unique(sample[:, 2])])
    ref = make_pipeline(StandardScaler(), SkOCSVM(nu=det.nu, gamma="scale", tol=1e-10)).fit(codes)
    z = 1
    xy = np.argwhere(patient.brain[:, :, z])
    expected = ref.decision_function(encode_patches(det.network_, patches_at(patient.t1[:, :, z], xy)).double().numpy())
    np.testing.assert_allclose(dmap[xy[:, 0], xy[:, 1], z], expected, rtol=1e-4, atol=1e-4)
    assert np.isnan(dmap[~patient.brain]).all()


@pytest.mark.slow
def test_streaming_equals_non_streaming(cohort, sae_loc):
    train, _, patient, control = cohort
    targets = [(patient.t1, patient.brain), (control.t1, control.brain)]
    streamed = localized_decision_maps(sae_loc.network_, [v.t1 for v in train], targets, nu=sae_loc.nu, radius=1,
                                       chunk_memory=200_000)  # many small chunks per slice
    # non-streaming: every voxel of the whole volume in one LocalizedOCSVM
    union = patient.brain | control.brain
    voxels = np.argwhere(union)
    codes = np.stack([_training_codes(sae_loc, train, z, np.array([x, y]), 1) for x, y, z in voxels])
    model = LocalizedOCSVM(nu=sae_loc.nu, gamma="scale", device="cpu").fit(codes)
    for (t1, brain), smap in zip(targets, streamed):
        test = np.stack([encode_patches(sae_loc.network_, patches_at(t1[:, :, z], np.array([[x, y]])))[0].numpy()
                         for x, y, z in voxels])[:, None]
        full = model.decision_function(test)[:, 0]
        inside = brain[tuple(voxels.T)]
        # float32 codes encoded one patch at a time here, per slice in the stream: rounding-level differences
        np.testing.assert_allclose(smap[tuple(voxels[inside].T)], full[inside], rtol=1e-4, atol=1e-5)
    # and one subject at a time gives the same map as the cohort at once (other voxel sets, other
    # batches: float32 rounding only)
    alone = sae_loc.decision_map(control)
    np.testing.assert_array_equal(np.isnan(alone), np.isnan(streamed[1]))
    np.testing.assert_allclose(alone, streamed[1], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_save_load_reproduces_maps_and_score_cohort_writes_nifti(cohort, sae_loc, tmp_path):
    _, _, patient, control = cohort
    sae_loc.save(tmp_path / "det")
    with pytest.raises(FileExistsError):
        sae_loc.save(tmp_path / "det")
    loaded = type(sae_loc).load(tmp_path / "det")
    assert loaded.get_params() == sae_loc.get_params()
    np.testing.assert_array_equal(loaded.anomaly_map(patient), sae_loc.anomaly_map(patient))
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pt"))
    with pytest.raises(ValueError, match="not a 'ogae-loc'"):
        build_volume_detector("ogae-loc").load(tmp_path / "det")

    scores = score_cohort(loaded, [patient, control], tmp_path / "maps")
    img = nib.load(str(tmp_path / "maps" / "subject-000.nii.gz"))
    np.testing.assert_allclose(img.affine, patient.affine)
    data = np.asarray(img.dataobj)
    np.testing.assert_array_equal(np.isnan(data), ~patient.brain)
    np.testing.assert_allclose(data[patient.brain], sae_loc.anomaly_map(patient)[patient.brain])
    saved = json.loads((tmp_path / "maps" / "subject_scores.json").read_text())["subjects"]
    assert saved["subject-000"]["subject_score"] == pytest.approx(scores["subject-000"]["subject_score"])
    dmap = sae_loc.decision_map(patient)
    keep = patient.brain & ~patient.ventricles
    assert scores["subject-000"]["subject_score"] == pytest.approx(-np.percentile(dmap[keep], 2), rel=1e-5)
    with pytest.raises(FileExistsError):
        score_cohort(loaded, [patient, control], tmp_path / "maps")


# ---------------------------------------------------------------------- bad inputs
def test_bad_inputs(cohort, sae_loc):
    train, stop, patient, _ = cohort
    with pytest.raises(ValueError, match="odd"):
        build_volume_detector("sae-loc", {**FAST, "patch_size": 14}).fit(train, stop)
    with pytest.raises(ValueError, match="nu"):
        build_volume_detector("sae-loc", {**FAST, "nu": 0.01, "neighbourhood": 0}).fit(train, stop)
    with pytest.raises(ValueError, match="nu"):
        build_volume_detector("sae-ps", {**FAST, "nu": 0.01, "ps_samples": 50}).fit(train, stop)
    with pytest.raises(ValueError, match="no training controls"):
        build_volume_detector("ogae-loc", FAST).fit([], stop)
    bad = dataclasses.replace(patient, t1=patient.t1.copy())
    bad.t1[3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sae_loc.anomaly_map(bad)
    with pytest.raises(ValueError, match="another grid"):
        sae_loc.anomaly_map(toy_volumes(5, shape=(40, 42, 2)))
    with pytest.raises(ValueError, match="another grid.*z_start"):
        sae_loc.anomaly_map(toy_volumes(5, z_start=3))
    with pytest.raises(RuntimeError, match="not fitted"):
        build_volume_detector("sae-loc").anomaly_map(patient)


def test_nan_codes_are_refused(cohort, sae_loc):
    _, _, patient, _ = cohort
    net = sae_loc.network_
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    try:
        with torch.no_grad():
            next(net.backbone.encoder_conv.parameters()).fill_(float("nan"))
        with pytest.raises(ValueError, match="NaN"):
            sae_loc.anomaly_map(patient)
    finally:
        net.load_state_dict(saved)


def test_sae_ps_reuses_the_sae_loc_network(cohort, sae_loc):
    train, stop, patient, _ = cohort
    cls = type(build_volume_detector("sae-ps"))
    ps = cls.from_trained(sae_loc, {**FAST, "ps_samples": 300}, train, stop, seed=0)
    assert ps.network_ is sae_loc.network_ and np.isfinite(ps.decision_map(patient)[patient.brain]).all()
    loc = type(sae_loc).from_trained(sae_loc, {**FAST, "nu": 0.2}, train, stop, seed=0)
    assert loc.nu == 0.2 and loc.reference_t1_.shape[0] == len(train)
    with pytest.raises(ValueError, match="differ"):
        cls.from_trained(sae_loc, {**FAST, "epochs": 3}, train, stop)
    with pytest.raises(ValueError, match="training family"):
        type(build_volume_detector("ogae-loc")).from_trained(sae_loc, FAST, train, stop)
