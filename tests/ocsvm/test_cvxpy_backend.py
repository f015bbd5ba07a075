"""The cvxpylayers reference backend (paper's formulation) against libsvm, the native
solver and finite differences. Few, small problems: every solve costs ~10 ms."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.svm import OneClassSVM as SkOneClassSVM

from ogae_core.ocsvm import cvxpy_backend as cb
from ogae_core.ocsvm.kernels import rbf_kernel, resolve_gamma
from ogae_core.ocsvm.solver import solve_dual

# cvxpylayers' backward pass emits numpy-2 copy-keyword DeprecationWarnings from its own code
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:cvxpylayers")

# Tolerances: the layer solves K + 1e-8 I with SCS at eps=1e-9, so its alpha differs from
# libsvm's exact solution of K by ~1e-7 in the libsvm scaling a = nu n alpha in [0, 1].
ALPHA_ATOL_SCALED = 1e-5
RHO_RTOL = 1e-6


def _problem(seed: int, n: int, d: int) -> tuple[torch.Tensor, float]:
    z = torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    gamma = float(resolve_gamma(z, "scale"))
    return z, gamma


def _libsvm(K: np.ndarray, nu: float) -> tuple[np.ndarray, float]:
    """libsvm's exact dual (tight tol), rescaled to the paper: alpha = a/(nu n), rho = offset/(nu n)."""
    n = K.shape[0]
    model = SkOneClassSVM(kernel="precomputed", nu=nu, tol=1e-12, shrinking=False).fit(K)
    alpha = np.zeros(n)
    alpha[model.support_] = model.dual_coef_[0] / (nu * n)
    return alpha, float(model.offset_[0]) / (nu * n)


@pytest.mark.parametrize("seed,n,d,nu", [(0, 20, 3, 0.1), (1, 35, 8, 0.3), (2, 40, 32, 0.6), (3, 16, 2, 0.9)])
def test_alpha_rho_agree_with_libsvm(seed, n, d, nu):
    z, gamma = _problem(seed, n, d)
    K = rbf_kernel(z, gamma=gamma)
    alpha, rho = cb.solve_dual_cvxpylayers(K, nu)
    ref_alpha, ref_rho = _libsvm(K.numpy(), nu)
    assert alpha.shape == (n,) and rho.shape == ()
    assert alpha.dtype == torch.float64
    np.testing.assert_allclose(alpha.sum().item(), 1.0, atol=1e-7)
    np.testing.assert_allclose(alpha.numpy() * nu * n, ref_alpha * nu * n, atol=ALPHA_ATOL_SCALED)
    np.testing.assert_allclose(rho.item(), ref_rho, rtol=RHO_RTOL)


def test_rho_midpoint_when_no_support_vector_is_free():
    # points -1, 1, 0 on a line, nu n = 2: the optimum is the vertex a = (1, 1, 0);
    # rho is the midpoint of [max over a_i = 1 of (K a)_i, (K a)_3], as libsvm computes it
    z = torch.tensor([[-1.0], [1.0], [0.0]], dtype=torch.float64)
    K = rbf_kernel(z, gamma=0.1)
    nu = 2 / 3
    alpha, rho = cb.solve_dual_cvxpylayers(K, nu)
    ref_alpha, ref_rho = _libsvm(K.numpy(), nu)
    np.testing.assert_allclose(ref_alpha * 2, [1.0, 1.0, 0.0], atol=1e-12)  # the case is a vertex
    g = (K @ torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)) / 2
    assert float(g[0]) < float(g[2])  # non-degenerate interval
    np.testing.assert_allclose(alpha.numpy(), ref_alpha, atol=1e-6)
    np.testing.assert_allclose(rho.item(), ref_rho, rtol=1e-7)
    np.testing.assert_allclose(rho.item(), 0.5 * (float(g[0]) + float(g[2])), rtol=1e-7)


def test_batched_equals_single_and_keeps_dtype():
    zs = [_problem(10 + b, 18, 4)[0] for b in range(3)]
    Kb = torch.stack([rbf_kernel(z, gamma=0.3) for z in zs]).to(torch.float32)
    alpha, rho = cb.solve_dual_cvxpylayers(Kb, 0.3)
    assert alpha.shape == (3, 18) and rho.shape == (3,) and alpha.dtype == torch.float32
    for b in range(3):
        a1, r1 = cb.solve_dual_cvxpylayers(Kb[b], 0.3)
        np.testing.assert_allclose(alpha[b].numpy(), a1.numpy(), atol=1e-6)
        np.testing.assert_allclose(rho[b].item(), r1.item(), rtol=1e-5)


def _objective(z: torch.Tensor, w: torch.Tensor, nu: float, gamma: float, backend: str) -> torch.Tensor:
    K = rbf_kernel(z, gamma=gamma)
    if backend == "cvxpylayers":
        alpha, rho = cb.solve_dual_cvxpylayers(K, nu)
    else:
        sol = solve_dual(K, nu)
        alpha, rho = sol.alpha, sol.rho
    return (w * alpha).sum() + rho


def _grad(z: torch.Tensor, w: torch.Tensor, nu: float, gamma: float, backend: str) -> torch.Tensor:
    z = z.detach().clone().requires_grad_(True)
    _objective(z, w, nu, gamma, backend).backward()
    return z.grad


@pytest.mark.parametrize("seed,n,d,nu", [(4, 12, 3, 0.3), (5, 15, 5, 0.5)])
def test_gradient_matches_finite_differences(seed, n, d, nu):
    z, gamma = _problem(seed, n, d)
    w = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(100 + seed))
    grad = _grad(z, w, nu, gamma, "cvxpylayers")
    eps = 1e-5
    fd = torch.zeros_like(z)
    with torch.no_grad():
        for i in range(n):
            for j in range(d):
                zp, zm = z.clone(), z.clone()
                zp[i, j] += eps
                zm[i, j] -= eps
                fd[i, j] = (_objective(zp, w, nu, gamma, "cvxpylayers") - _objective(zm, w, nu, gamma, "cvxpylayers")) / (2 * eps)
    assert grad.abs().max() > 1e-3  # not a trivially zero gradient
    np.testing.assert_allclose(grad.numpy(), fd.numpy(), atol=1e-5 * float(fd.abs().max()) + 1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("seed,n,d,nu", [(6, 20, 4, 0.2), (7, 30, 32, 0.5), (8, 25, 8, 0.75)])
def test_gradient_and_solution_match_native_backend(seed, n, d, nu):
    z, gamma = _problem(seed, n, d)
    w = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(200 + seed))
    K = rbf_kernel(z, gamma=gamma)
    alpha_c, rho_c = cb.solve_dual_cvxpylayers(K, nu)
    sol = solve_dual(K, nu)
    np.testing.assert_allclose(alpha_c.numpy() * nu * n, sol.alpha.numpy() * nu * n, atol=ALPHA_ATOL_SCALED)
    np.testing.assert_allclose(rho_c.item(), sol.rho.item(), rtol=RHO_RTOL)
    g_c = _grad(z, w, nu, gamma, "cvxpylayers")
    g_n = _grad(z, w, nu, gamma, "native")
    assert g_n.abs().max() > 1e-3
    np.testing.assert_allclose(g_c.numpy(), g_n.numpy(), atol=1e-5 * float(g_n.abs().max()))


def test_dispatch_from_solve_dual_uses_this_backend():
    z, gamma = _problem(9, 14, 3)
    K = rbf_kernel(z, gamma=gamma)
    sol = solve_dual(K, 0.4, backend="cvxpylayers")
    alpha, rho = cb.solve_dual_cvxpylayers(K, 0.4)
    np.testing.assert_allclose(sol.alpha.numpy(), alpha.numpy(), atol=1e-12)
    np.testing.assert_allclose(sol.rho.item(), rho.item(), rtol=1e-12)


def test_sym_sqrt_value_and_gradcheck_and_repeated_eigenvalues():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 6, dtype=torch.float64, generator=g)
    A = A @ A.T + 0.1 * torch.eye(6, dtype=torch.float64)
    S = cb.sym_sqrt(A, jitter=0.0)
    np.testing.assert_allclose((S @ S).numpy(), A.numpy(), atol=1e-10)
    np.testing.assert_allclose(S.numpy(), S.T.numpy(), atol=1e-12)
    assert torch.autograd.gradcheck(lambda m: cb.sym_sqrt(0.5 * (m + m.T), jitter=0.0), (A.clone().requires_grad_(),))
    # duplicate points: K has a repeated eigenvalue; the gradient must stay finite
    z = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.5], [1.0, 0.5]], dtype=torch.float64, requires_grad=True)
    cb.sym_sqrt(rbf_kernel(z, gamma=1.0)).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_layer_cache_is_reused_per_n_and_nu():
    K = rbf_kernel(_problem(11, 13, 2)[0], gamma=0.5)
    cb.solve_dual_cvxpylayers(K, 0.35)
    before = cb._layer.cache_info()
    cb.solve_dual_cvxpylayers(K, 0.35)
    after = cb._layer.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses
    cb.clear_layer_cache()
    assert cb._layer.cache_info().currsize == 0


def test_solver_args_select_another_solver():
    z, gamma = _problem(12, 15, 3)
    K = rbf_kernel(z, gamma=gamma)
    alpha, rho = cb.solve_dual_cvxpylayers(K, 0.4, solver_args={"solve_method": "Clarabel"})
    ref_alpha, ref_rho = _libsvm(K.numpy(), 0.4)
    # Clarabel's default tolerances are looser on this conic form (hence SCS by default)
    np.testing.assert_allclose(alpha.numpy() * 0.4 * 15, ref_alpha * 0.4 * 15, atol=1e-3)
    with pytest.raises(ValueError, match="not supported"):
        cb.solve_dual_cvxpylayers(K, 0.4, solver_args={"solve_method": "NOPE"})


@pytest.mark.parametrize(
    "K,nu,match",
    [
        (torch.eye(4, dtype=torch.float64), 0.0, "nu"),
        (torch.eye(4, dtype=torch.float64), 1.5, "nu"),
        (torch.eye(4, dtype=torch.float64), 0.2, "nu \\* n"),
        (torch.ones(3, 4, dtype=torch.float64), 0.5, "square"),
        (torch.ones(4, dtype=torch.float64), 0.5, "shape"),
        (torch.tensor([[1.0, 0.2], [0.3, 1.0]], dtype=torch.float64), 0.5, "symmetric"),
        (torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]], dtype=torch.float64), 0.5, "non-finite"),
    ],
)
def test_bad_input_raises(K, nu, match):
    with pytest.raises(ValueError, match=match):
        cb.solve_dual_cvxpylayers(K, nu)
