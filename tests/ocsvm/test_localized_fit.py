"""The chunk-level fits of LocalizedOCSVM: working set == full Gram == scikit-learn; torch path on the CPU.

Equality with scikit-learn is checked against ``OneClassSVM(tol=1e-12)`` per voxel (as in
``test_localized.py``); the two exact algorithms must agree with each other far more tightly.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM as SkOneClassSVM

from ogae_core.ocsvm import LocalizedOCSVM
from ogae_core.ocsvm.localized_fit import decision_chunk, fit_chunk, prepare_cpu, prepare_torch


def _codes(seed: int, V: int = 8, n: int = 30, d: int = 10, m: int = 6, constant: bool = False,
           duplicates: bool = False, dtype=np.float64):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.3, 3.0, size=(V, 1, d))
    shift = rng.normal(scale=2.0, size=(V, 1, d))
    train = rng.normal(size=(V, n, d)) * scale + shift
    test = rng.normal(size=(V, m, d)) * scale * 1.5 + shift
    if constant:
        train[:, :, 0] = 2.5
        train[::2, :, 3] = -1.0
    if duplicates:
        train[:, 1:5] = train[:, :1]
    return train.astype(dtype), test.astype(dtype)


def _sklearn(train, test, nu, gamma, standardize):
    out = []
    for x, t in zip(train, test):
        svm = SkOneClassSVM(nu=nu, gamma=gamma, tol=1e-12)
        model = make_pipeline(StandardScaler(), svm) if standardize else svm
        out.append(model.fit(x.astype(np.float64)).decision_function(t.astype(np.float64)))
    return np.array(out)


def _max_rel(ours, ref):
    return float((np.abs(ours - ref).max(1) / np.abs(ref).max(1)).max())


CASES = [  # nu, gamma, standardize, problem options
    (1 / 30, "scale", True, {}),          # nu n = 1: one support vector at the bound
    (0.1, "scale", True, {}),
    (0.1, "scale", True, {"constant": True}),
    (0.1, "auto", False, {}),
    (0.5, "scale", False, {}),
    (0.5, 0.07, True, {"duplicates": True}),
    (0.3, "scale", False, {"constant": True}),
    (0.9, "scale", True, {}),             # most points at the bound
]


@pytest.mark.parametrize("nu,gamma,standardize,options", CASES)
def test_working_set_equals_full_gram_and_sklearn(nu, gamma, standardize, options):
    train, test = _codes(seed=int(1000 * nu) + len(options), **options)
    fits = {alg: LocalizedOCSVM(nu=nu, gamma=gamma, standardize=standardize, device="cpu", algorithm=alg).fit(train)
            for alg in ("working_set", "full_gram")}
    f = {alg: model.decision_function(test) for alg, model in fits.items()}
    np.testing.assert_allclose(f["working_set"], f["full_gram"], rtol=1e-8, atol=1e-10 * np.abs(f["full_gram"]).max())
    if not options.get("duplicates"):  # with duplicated points the coefficients are not unique
        np.testing.assert_allclose(fits["working_set"].dual_coef_.numpy(), fits["full_gram"].dual_coef_.numpy(),
                                   atol=1e-8)
    assert _max_rel(f["working_set"], _sklearn(train, test, nu, gamma, standardize)) <= 1e-6
    coef = fits["working_set"].dual_coef_.numpy()
    np.testing.assert_allclose(coef.sum(1), nu * train.shape[1], rtol=1e-10)
    assert (coef >= 0).all() and (coef <= 1 + 1e-12).all()


def test_working_set_on_many_points_few_support_vectors():
    """n = 120, nu = 0.05: the working set starts far smaller than n and must grow to the
    exact solution (points added in rounds)."""
    train, test = _codes(seed=21, V=4, n=120, d=20, m=5)
    ws = LocalizedOCSVM(nu=0.05, device="cpu", algorithm="working_set").fit(train)
    assert int(ws.n_support_.max()) < 120
    assert _max_rel(ws.decision_function(test), _sklearn(train, test, 0.05, "scale", True)) <= 1e-6


@pytest.mark.parametrize("standardize,gamma", [(True, "scale"), (False, "scale"), (True, 0.2), (False, "auto")])
def test_compiled_preparation_equals_torch(standardize, gamma):
    train, _ = _codes(seed=22, constant=True, dtype=np.float32)
    x = torch.from_numpy(train)
    compiled = prepare_cpu(x, gamma, standardize, 0, torch.empty(x.shape, dtype=torch.float64))
    reference = prepare_torch(x.to(torch.float64), gamma, standardize, 0)
    for key in ("w", "sqn", "gamma", "mean", "scale"):
        if reference[key] is None:
            assert compiled[key] is None
        else:
            torch.testing.assert_close(compiled[key], reference[key], rtol=1e-12, atol=1e-12)


def test_compiled_gamma_scale_equals_sklearn_on_standardized_codes():
    train, _ = _codes(seed=23, constant=True)
    prep = prepare_cpu(torch.from_numpy(train), "scale", True, 0, torch.empty(train.shape, dtype=torch.float64))
    expected = [SkOneClassSVM(gamma="scale").fit(StandardScaler().fit_transform(x))._gamma for x in train]
    np.testing.assert_allclose(prep["gamma"].numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("standardize", [True, False])
def test_torch_path_on_the_cpu_equals_sklearn(standardize):
    """The code that CUDA runs (torch preparation, full Gram, torch engine is CUDA-only but
    the torch preparation and scoring are not), run on CPU tensors."""
    train, test = _codes(seed=24, constant=standardize)
    x = torch.from_numpy(train)
    V, n, d = x.shape
    part = fit_chunk(x, torch.empty(V, n, d, dtype=torch.float64), torch.empty(V, n, n, dtype=torch.float64), 0.2,
                     "scale", standardize, 0, "full_gram", compiled=False)
    state = {key: part[key] for key in ("coef", "offset", "gamma", "mean", "scale")}
    f_torch = decision_chunk(torch.from_numpy(test), x, state, 0, compiled=False)
    f_compiled = decision_chunk(torch.from_numpy(test), x, state, 0, compiled=True)
    torch.testing.assert_close(f_torch, f_compiled, rtol=1e-10, atol=1e-12)
    assert _max_rel(f_torch.numpy(), _sklearn(train, test, 0.2, "scale", standardize)) <= 1e-6


def test_bad_algorithm_is_named():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        LocalizedOCSVM(algorithm="fast", device="cpu").fit(_codes(seed=25)[0])


# ------------------------------------------------------- fit and score in one pass
@pytest.mark.parametrize("nu,gamma,standardize,options", CASES[:6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_decision_function_equals_fit_then_decision_function_and_sklearn(nu, gamma, standardize, options, dtype):
    train, test = _codes(seed=int(100 * nu) + 7, dtype=dtype, **options)
    # small chunks: several chunks, the last one partial
    fused_model = LocalizedOCSVM(nu=nu, gamma=gamma, standardize=standardize, device="cpu", max_memory=30_000)
    f = fused_model.fit_decision_function(train, test)
    separate = LocalizedOCSVM(nu=nu, gamma=gamma, standardize=standardize, device="cpu").fit(train)
    reference = separate.decision_function(test)
    assert isinstance(f, np.ndarray) and f.shape == reference.shape
    np.testing.assert_allclose(f, reference, rtol=1e-9, atol=1e-12 * np.abs(reference).max())
    for name in ("dual_coef_", "offset_", "gamma_", "support_sq_norms_"):
        torch.testing.assert_close(getattr(fused_model, name), getattr(separate, name), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fused_model.decision_function(test), f, rtol=1e-9, atol=1e-12)
    assert _max_rel(f, _sklearn(train, test, nu, gamma, standardize)) <= 1e-6


def test_fit_decision_function_returns_tensors_for_tensors():
    train, test = _codes(seed=31)
    f = LocalizedOCSVM(nu=0.2, device="cpu").fit_decision_function(torch.from_numpy(train), torch.from_numpy(test))
    assert isinstance(f, torch.Tensor) and f.dtype == torch.float64 and f.shape == (8, 6)


@pytest.mark.parametrize("standardize", [True, False])
def test_fit_chunk_with_test_codes_torch_path_equals_compiled(standardize):
    """The torch path (CUDA's) of the fused fit and score, run on CPU tensors, against the compiled one."""
    train, test = _codes(seed=32, constant=standardize)
    x, t = torch.from_numpy(train), torch.from_numpy(test)
    V, n, d = x.shape
    m = t.shape[1]
    parts = {}
    for compiled in (True, False):
        r = n + m if compiled else n
        parts[compiled] = fit_chunk(x, torch.empty(V, r, d, dtype=torch.float64),
                                    torch.empty(V, r, r, dtype=torch.float64), 0.2, "scale", standardize, 0,
                                    "full_gram", compiled=compiled, test=t)
    torch.testing.assert_close(parts[True]["decision"], parts[False]["decision"], rtol=1e-9, atol=1e-12)
    assert _max_rel(parts[False]["decision"].numpy(), _sklearn(train, test, 0.2, "scale", standardize)) <= 1e-6


def test_fit_decision_function_refuses_bad_test_codes():
    train, test = _codes(seed=33)
    model = LocalizedOCSVM(nu=0.2, device="cpu")
    with pytest.raises(ValueError, match="test codes have shape"):
        model.fit_decision_function(train, test[:, :, :-1])
    with pytest.raises(ValueError, match="test codes have shape"):
        model.fit_decision_function(train, test[:-1])
    bad = test.copy()
    bad[5, 2, 1] = np.nan
    with pytest.raises(ValueError, match="test codes contain NaN.*voxel 5"):
        model.fit_decision_function(train, bad)


@pytest.mark.parametrize("standardize", [True, False])
def test_fit_exponents_equal_squared_distances(standardize):
    """The compiled pass (dot products of the stacked codes) against float64 NumPy distances."""
    from ogae_core.ocsvm.cpu_engine.localized_kernels import fit_exponents

    train, test = _codes(seed=34, V=9, dtype=np.float32, constant=True)
    B, n, d = train.shape
    r = n + test.shape[1]
    G = np.empty((B, r, r))
    mean, scale, sqn, gamma = np.empty((B, d)), np.empty((B, d)), np.empty((B, r)), np.empty(B)
    fit_exponents(train, test, standardize, 0, 0.0, G, mean, scale, sqn, gamma, n_blocks=4)
    z = np.concatenate([train, test], 1).astype(np.float64)
    if standardize:
        z = np.stack([StandardScaler().fit(x.astype(np.float64)).transform(zz) for x, zz in zip(train, z)])
    np.testing.assert_allclose(sqn, (z ** 2).sum(-1), rtol=1e-12)
    sq = ((z[:, :, None, :] - z[:, None, :, :]) ** 2).sum(-1)
    expected = -gamma[:, None, None] * sq
    expected[:, n:, n:] = 0.0
    np.testing.assert_allclose(G, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())
    assert (G == G.transpose(0, 2, 1)).all() and (np.diagonal(G, axis1=1, axis2=2) == 0).all()


def test_gram_lower_covers_every_needed_pair():
    """Every (r, n) shape of the blocked dot products (blocks of 4 rows, leftover rows, odd n):
    the lower triangle for training rows, the n training columns for test rows."""
    from ogae_core.ocsvm.cpu_engine.localized_kernels import gram_lower

    rng = np.random.default_rng(35)
    for r in range(1, 14):
        for n in range(1, r + 1):
            w = rng.normal(size=(r, 7))
            G = np.full((r, r), np.nan)
            gram_lower(w, n, G)
            needed = np.tril(np.ones((r, r), dtype=bool))
            needed[n:, n:] = False
            np.testing.assert_allclose(G[needed], (w @ w.T)[needed], rtol=1e-13, atol=1e-13, err_msg=f"r={r} n={n}")


@pytest.mark.parametrize("nu", [0.1, 0.5])
def test_whole_dual_path_equals_growing_working_set(nu):
    """``s0 >= n`` solves each voxel's whole dual directly; a small start grows to the same optimum."""
    from ogae_core.ocsvm.cpu_engine.localized_kernels import gram_working_set
    from ogae_core.ocsvm.tolerances import DEFAULT_TOL, RIDGE, SET_TOL

    train, _ = _codes(seed=36, V=9)
    model = LocalizedOCSVM(nu=nu, standardize=False, device="cpu").fit(train)
    z = torch.from_numpy(train)
    sq = ((z[:, :, None, :] - z[:, None, :, :]) ** 2).sum(-1)
    K = torch.exp(-model.gamma_.view(-1, 1, 1) * sq).numpy()
    B, n, _ = K.shape
    small = int(np.ceil(nu * n)) + 1  # the smallest feasible working set
    out = {}
    for s0 in (n, small):
        alpha, rho, residual = np.zeros((B, n)), np.zeros(B), np.zeros(B)
        n_iter, status = np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64)
        f64 = torch.float64
        gram_working_set(K, nu * n, s0, 8, 100, SET_TOL[f64], RIDGE[f64], DEFAULT_TOL[f64], alpha, rho, n_iter, status,
                         residual)
        assert (status == 0).all() and (residual <= DEFAULT_TOL[f64]).all()
        out[s0] = (alpha, rho)
    np.testing.assert_allclose(out[n][0], out[small][0], atol=1e-8)
    np.testing.assert_allclose(out[n][1], out[small][1], rtol=1e-9)
