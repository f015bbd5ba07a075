"""LocalizedOCSVM: per-voxel equality with scikit-learn, layout, persistence and bad input.

The reference is ``sklearn.svm.OneClassSVM`` fitted voxel by voxel with ``tol=1e-12``:
libsvm's default ``tol=1e-3`` stops before the optimum, while our solver is exact.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM as SkOneClassSVM

from ogae_core.ocsvm import LocalizedOCSVM


def _codes(seed: int, V: int = 10, n: int = 24, d: int = 12, m: int = 7, dtype=np.float64):
    """Training (V, n, d) and test (V, m, d) codes; each voxel has its own scales and
    offsets (so that per-voxel gamma and standardization matter), test codes are wider."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.3, 3.0, size=(V, 1, d))
    shift = rng.normal(scale=2.0, size=(V, 1, d))
    train = rng.normal(size=(V, n, d)) * scale + shift
    test = rng.normal(size=(V, m, d)) * scale * 1.5 + shift
    return train.astype(dtype), test.astype(dtype)


def _sklearn(train, test, nu, gamma, standardize):
    """Per-voxel decision values, score_samples, offsets and gammas of scikit-learn."""
    f, s, off, gam = [], [], [], []
    for x, t in zip(train, test):
        svm = SkOneClassSVM(nu=nu, gamma=gamma, tol=1e-12)
        model = make_pipeline(StandardScaler(), svm) if standardize else svm
        model.fit(x.astype(np.float64))
        f.append(model.decision_function(t.astype(np.float64)))
        s.append(model.score_samples(t.astype(np.float64)))
        off.append(svm.offset_[0])
        gam.append(svm._gamma)  # the resolved gamma of this voxel's problem
    return np.array(f), np.array(s), np.array(off), np.array(gam)


def _max_rel(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest per-voxel ``max |ours - ref| / max |ref|``."""
    return float((np.abs(ours - ref).max(1) / np.abs(ref).max(1)).max())


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("nu,gamma", [(0.1, "scale"), (0.5, "scale"), (0.3, 0.05), (0.8, "auto"), (1 / 24, "scale")])
def test_equals_sklearn_per_voxel(nu, gamma, standardize):
    train, test = _codes(seed=int(nu * 1000) + standardize)
    model = LocalizedOCSVM(nu=nu, gamma=gamma, standardize=standardize, device="cpu").fit(train)
    f_ref, s_ref, off_ref, gamma_ref = _sklearn(train, test, nu, gamma, standardize)
    f = model.decision_function(test)
    assert isinstance(f, np.ndarray) and f.shape == f_ref.shape and f.dtype == np.float64
    assert _max_rel(f, f_ref) <= 1e-6
    assert _max_rel(model.score_samples(test), s_ref) <= 1e-6
    np.testing.assert_array_equal(model.anomaly_score(test), -f)
    np.testing.assert_array_equal(model.predict(test), np.where(f >= 0, 1, -1))
    np.testing.assert_allclose(model.offset_.numpy(), off_ref, rtol=1e-6)
    np.testing.assert_allclose(model.gamma_.numpy(), gamma_ref, rtol=1e-12)
    coef = model.dual_coef_.numpy()
    np.testing.assert_allclose(coef.sum(1), nu * train.shape[1], rtol=1e-10)  # libsvm scaling
    assert (coef >= 0).all() and (coef <= 1 + 1e-12).all()


def test_gamma_scale_is_resolved_per_voxel():
    train, _ = _codes(seed=3)
    model = LocalizedOCSVM(nu=0.5, gamma="scale", standardize=False, device="cpu").fit(train)
    expected = 1.0 / (train.shape[2] * train.reshape(train.shape[0], -1).var(1))
    np.testing.assert_allclose(model.gamma_.numpy(), expected, rtol=1e-12)
    assert np.ptp(expected) > 0.1 * expected.min()  # the voxels really differ


def test_float32_codes_are_kept_float32_and_match_sklearn():
    train, test = _codes(seed=4, dtype=np.float32)
    model = LocalizedOCSVM(nu=0.2, standardize=True, device="cpu").fit(train)
    assert model.support_vectors_.dtype == torch.float32
    f_ref, *_ = _sklearn(train, test, 0.2, "scale", True)
    assert _max_rel(model.decision_function(test), f_ref) <= 1e-6


def test_chunking_does_not_change_the_result():
    train, test = _codes(seed=5, V=9)
    one = LocalizedOCSVM(nu=0.3, device="cpu", max_memory=1).fit(train)  # one voxel per chunk
    big = LocalizedOCSVM(nu=0.3, device="cpu").fit(train)
    np.testing.assert_allclose(one.decision_function(test), big.decision_function(test), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(one.offset_.numpy(), big.offset_.numpy(), rtol=1e-12)


def test_reversed_and_integer_arrays_are_accepted():
    train, test = _codes(seed=15)
    reversed_model = LocalizedOCSVM(nu=0.5, device="cpu").fit(train[::-1])  # negative strides
    np.testing.assert_allclose(reversed_model.decision_function(test[::-1])[::-1],
                               LocalizedOCSVM(nu=0.5, device="cpu").fit(train).decision_function(test), rtol=1e-10)
    ints = np.round(train * 10).astype(np.int64)
    model = LocalizedOCSVM(nu=0.5, device="cpu").fit(ints)
    assert model.support_vectors_.dtype == torch.float64
    f_ref, *_ = _sklearn(ints.astype(np.float64), test, 0.5, "scale", True)
    assert _max_rel(model.decision_function(test), f_ref) <= 1e-6


def test_tensor_in_tensor_out_and_constant_feature():
    train, test = _codes(seed=6)
    train[:, :, 0] = 1.5  # a constant feature: StandardScaler gives it scale 1
    model = LocalizedOCSVM(nu=0.4, device="cpu").fit(torch.from_numpy(train))
    out = model.decision_function(torch.from_numpy(test))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.device.type == "cpu"
    f_ref, *_ = _sklearn(train, test, 0.4, "scale", True)
    assert _max_rel(out.numpy(), f_ref) <= 1e-6
    np.testing.assert_array_equal(model.scale_[:, 0].numpy(), 1.0)


def test_reference_or_copy_of_the_training_codes():
    train, test = _codes(seed=7)
    kept = LocalizedOCSVM(nu=0.5, device="cpu").fit(train)
    copied = LocalizedOCSVM(nu=0.5, device="cpu", copy=True).fit(train)
    before = copied.decision_function(test)
    assert np.shares_memory(kept.support_vectors_.numpy(), train)
    assert not np.shares_memory(copied.support_vectors_.numpy(), train)
    train += 1.0  # in-place change after fit: the copy is not affected
    np.testing.assert_array_equal(copied.decision_function(test), before)


def test_estimator_contract():
    model = LocalizedOCSVM(nu=-3, gamma="bogus")  # __init__ only stores
    assert model.get_params()["nu"] == -3
    with pytest.raises(ValueError, match="nu must be a real number"):
        model.fit(np.zeros((2, 4, 3)))
    fitted = LocalizedOCSVM(nu=0.5, device="cpu").fit(_codes(seed=8)[0])
    assert clone(fitted).get_params() == fitted.get_params() and not hasattr(clone(fitted), "offset_")
    assert int(fitted.n_support_.min()) >= 1 and fitted.n_voxels_ == 10


def test_save_load_roundtrip_keeps_only_support_vectors(tmp_path):
    from safetensors.torch import load_file

    train, test = _codes(seed=9, dtype=np.float32)
    model = LocalizedOCSVM(nu=0.1, device="cpu").fit(train)
    path = model.save(tmp_path / "loc")
    arrays = load_file(str(path / "arrays.safetensors"))
    n_sv = model.n_support_.numpy()
    assert arrays["support_vectors"].shape == (n_sv.sum(), train.shape[2])
    assert arrays["support_vectors"].dtype == torch.float32
    assert n_sv.sum() < train.shape[0] * train.shape[1]  # nu = 0.1: not every code is a SV
    loaded = LocalizedOCSVM.load(path, device="cpu")
    assert loaded.support_vectors_.shape == (train.shape[0], n_sv.max(), train.shape[2])
    np.testing.assert_allclose(loaded.decision_function(test), model.decision_function(test), rtol=1e-13, atol=1e-15)
    assert loaded.get_params() == model.get_params()
    with pytest.raises(FileExistsError, match="not empty"):
        model.save(path)
    model.save(path, overwrite=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="does not hold a saved LocalizedOCSVM"):
        model.save(tmp_path / "other", overwrite=True)


def test_load_refuses_corrupt_files(tmp_path):
    train, _ = _codes(seed=10)
    path = LocalizedOCSVM(nu=0.5, device="cpu").fit(train).save(tmp_path / "loc")
    meta = json.loads((path / "localized_ocsvm.json").read_text())
    meta["fitted"]["n_voxels_"] = 11
    (path / "localized_ocsvm.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="arrays inconsistent with V=11"):
        LocalizedOCSVM.load(path)
    (path / "arrays.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        LocalizedOCSVM.load(path)
    with pytest.raises(FileNotFoundError):
        LocalizedOCSVM.load(tmp_path / "missing")


@pytest.mark.parametrize("codes,match", [
    (np.zeros((4, 3)), r"codes must have shape \(V, n, d\) \(3 dimensions\); got shape \(4, 3\)"),
    (np.zeros((0, 3, 2)), "V, n, d >= 1"),
    (np.array([[["a"]]]), "must hold real numbers"),
])
def test_bad_training_codes(codes, match):
    with pytest.raises(ValueError, match=match):
        LocalizedOCSVM(nu=0.5, device="cpu").fit(codes)


def test_nu_times_n_below_one_is_named():
    with pytest.raises(ValueError, match=r"nu \* n must be >= 1 for each voxel's OCSVM of n=4 training codes"):
        LocalizedOCSVM(nu=0.2, device="cpu").fit(np.random.default_rng(0).normal(size=(3, 4, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_codes_name_the_voxel(bad):
    train, test = _codes(seed=11)
    broken = train.copy()
    broken[6, 2, 1] = bad
    with pytest.raises(ValueError, match="codes contain NaN or infinite values.*first at voxel 6"):
        LocalizedOCSVM(nu=0.5, device="cpu", max_memory=1).fit(broken)
    model = LocalizedOCSVM(nu=0.5, device="cpu").fit(train)
    test[3, 0, 0] = bad
    with pytest.raises(ValueError, match="test codes contain NaN or infinite values.*first at voxel 3"):
        model.decision_function(test)


def test_scoring_shape_mismatch_and_unfitted():
    train, test = _codes(seed=12)
    with pytest.raises(ValueError, match="not fitted yet"):
        LocalizedOCSVM().decision_function(test)
    model = LocalizedOCSVM(nu=0.5, device="cpu").fit(train)
    with pytest.raises(ValueError, match=r"V=9, d=12\) but the model was fitted on V=10 voxels of d=12"):
        model.decision_function(test[:9])
    with pytest.raises(ValueError, match=r"V=10, d=5\) but the model was fitted on V=10 voxels of d=12"):
        model.decision_function(test[:, :, :5])
    with pytest.raises(ValueError, match="3 dimensions"):
        model.decision_function(test[0])


@pytest.mark.parametrize("params,match", [
    (dict(gamma="bogus"), "gamma must be 'scale', 'auto' or a real number > 0"),
    (dict(gamma=0.0), "gamma must be a real number > 0"),
    (dict(nu=1.5), "nu must be a real number"),
    (dict(max_memory=0), "max_memory must be an integer >= 1"),
    (dict(standardize="yes"), "standardize must be True or False"),
    (dict(device="nonsense"), "device must be 'auto' or a torch device name"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        LocalizedOCSVM(**{"device": "cpu", **params}).fit(_codes(seed=13)[0])


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA device (test_localized_fit.py runs the torch path on CPU tensors)")
def test_cuda_equals_sklearn_and_cpu():
    train, test = _codes(seed=14, dtype=np.float32)
    gpu = LocalizedOCSVM(nu=0.2, device="cuda").fit(torch.from_numpy(train).cuda())
    out = gpu.decision_function(torch.from_numpy(test).cuda())
    assert out.device.type == "cuda"
    f_ref, *_ = _sklearn(train, test, 0.2, "scale", True)
    assert _max_rel(out.cpu().numpy(), f_ref) <= 1e-6
    cpu = LocalizedOCSVM(nu=0.2, device="cpu").fit(train)
    np.testing.assert_allclose(out.cpu().numpy(), cpu.decision_function(test), rtol=1e-8, atol=1e-12)
