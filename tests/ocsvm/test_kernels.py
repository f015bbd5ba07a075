"""RBF kernel and gamma rules against scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import rbf_kernel as sk_rbf
from sklearn.svm import OneClassSVM as SkOneClassSVM

from ogae_core.ocsvm import rbf_kernel, resolve_gamma, standardize


def test_rbf_matches_sklearn_and_is_exactly_symmetric():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 7)), rng.normal(size=(11, 7))
    K = rbf_kernel(torch.from_numpy(X), gamma=0.3)
    np.testing.assert_allclose(K.numpy(), sk_rbf(X, gamma=0.3), rtol=1e-12, atol=1e-14)
    assert torch.equal(K, K.T)
    np.testing.assert_allclose(rbf_kernel(torch.from_numpy(X), torch.from_numpy(Y), 0.3).numpy(), sk_rbf(X, Y, gamma=0.3), rtol=1e-12)


def test_batched_kernel_with_per_problem_gamma():
    rng = np.random.default_rng(1)
    Z = torch.from_numpy(rng.normal(size=(4, 9, 3)) * np.arange(1, 5)[:, None, None])
    gam = resolve_gamma(Z, "scale")
    K = rbf_kernel(Z, gamma=gam)
    for b in range(4):
        np.testing.assert_allclose(K[b].numpy(), sk_rbf(Z[b].numpy(), gamma=float(gam[b])), rtol=1e-12)


def test_gamma_rules_match_sklearn():
    rng = np.random.default_rng(2)
    X = rng.normal(scale=3.0, size=(40, 5))
    model = SkOneClassSVM(gamma="scale").fit(X)
    assert resolve_gamma(torch.from_numpy(X), "scale") == pytest.approx(model._gamma, rel=1e-12)
    assert resolve_gamma(torch.from_numpy(X), "auto") == pytest.approx(1 / 5)
    assert resolve_gamma(torch.from_numpy(X), 0.25) == 0.25
    with pytest.raises(ValueError, match="gamma"):
        resolve_gamma(torch.from_numpy(X), "median")
    with pytest.raises(ValueError, match="positive"):
        resolve_gamma(torch.from_numpy(X), 0.0)


def test_standardize_uses_reference_statistics():
    rng = np.random.default_rng(3)
    a, b = torch.from_numpy(rng.normal(2, 5, size=(50, 4))), torch.from_numpy(rng.normal(size=(7, 4)))
    sa, sb = standardize(a, b)
    torch.testing.assert_close(sa.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(sa.std(0, unbiased=False), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(sb, (b - a.mean(0)) / a.std(0, unbiased=False))


def test_cpu_kernel_node_gradients_match_finite_differences_and_the_torch_path():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(7, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.randn(5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: rbf_kernel(a, gamma=0.4), (x,))
    assert torch.autograd.gradcheck(lambda a, b: rbf_kernel(a, b, gamma=0.4), (x, y))
    # the batched torch path (a 1-problem batch) gives the same gradient
    w = torch.randn(7, 7, dtype=torch.float64, generator=g)
    (rbf_kernel(x, gamma=0.4) * w).sum().backward()
    g_node = x.grad.clone()
    x.grad = None
    (rbf_kernel(x.unsqueeze(0), gamma=0.4)[0] * w).sum().backward()
    torch.testing.assert_close(g_node, x.grad)
