"""Gradients of the dual solution: gradcheck, finite differences, both engines."""
from __future__ import annotations

import pytest
import torch

from ogae_core.ocsvm import rbf_kernel, solve_dual

from .test_solver import vertex_problems


def _loss_of_points(nu: float, engine: str, weights: torch.Tensor):
    def fn(z: torch.Tensor) -> torch.Tensor:
        sol = solve_dual(rbf_kernel(z, gamma=0.3), nu, engine=engine)
        return (sol.alpha * weights).sum() + 0.7 * sol.rho

    return fn


@pytest.mark.parametrize("engine", ["cpu", "torch"])
@pytest.mark.parametrize("nu", [0.1, 0.3, 0.5, 0.9])
def test_gradcheck_through_the_kernel(engine, nu):
    g = torch.Generator().manual_seed(int(nu * 10))
    z = torch.randn(20, 4, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(20, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(_loss_of_points(nu, engine, w), (z,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("engine", ["cpu", "torch"])
def test_gradcheck_on_a_symmetric_matrix_parameter_batched(engine):
    g = torch.Generator().manual_seed(7)
    Z = torch.randn(2, 10, 5, dtype=torch.float64, generator=g)
    S = rbf_kernel(Z, gamma=0.2).detach().requires_grad_(True)
    w = torch.randn(2, 10, dtype=torch.float64, generator=g)

    def fn(S):
        K = 0.5 * (S + S.transpose(-1, -2))  # the dual sees only the symmetric part
        sol = solve_dual(K, 0.4, engine=engine)
        return (sol.alpha * w).sum() + sol.rho.sum()

    assert torch.autograd.gradcheck(fn, (S,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("engine", ["cpu", pytest.param("torch", marks=pytest.mark.slow)])
def test_gradient_at_a_vertex_is_that_of_the_midpoint(engine):
    checked = 0
    for K, nu in vertex_problems(count=8):
        S = K.clone().requires_grad_(True)
        sol = solve_dual(0.5 * (S + S.T), nu, engine=engine)
        C = 1.0 / (nu * K.shape[0])
        alpha = sol.alpha.detach()
        if ((alpha > 1e-12) & (alpha < C * (1 - 1e-12))).any():
            continue
        # the vertex must be stable under the finite-difference step: clear margins
        g = K @ alpha
        upper, lower = alpha > 0, alpha == 0
        top2 = g[upper].sort().values
        if g[lower].min() - g[upper].max() < 1e-3 or (len(top2) > 1 and top2[-1] - top2[-2] < 1e-4):
            continue
        assert torch.autograd.gradcheck(
            lambda S: solve_dual(0.5 * (S + S.T), nu, engine=engine).rho, (S,), eps=1e-7, atol=1e-6
        )
        checked += 1
    assert checked >= 4


def test_engines_give_the_same_gradient():
    g = torch.Generator().manual_seed(11)
    z = torch.randn(50, 32, dtype=torch.float64, generator=g)
    w = torch.randn(50, dtype=torch.float64, generator=g)
    grads = []
    for engine in ("cpu", "torch"):
        zz = z.clone().requires_grad_(True)
        _loss_of_points(0.5, engine, w)(zz).backward()
        grads.append(zz.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-7, atol=1e-10)


def test_no_graph_no_factor_storage_and_no_grad_flag():
    K = rbf_kernel(torch.randn(10, 3, dtype=torch.float64), gamma=0.5)
    sol = solve_dual(K, 0.5)
    assert not sol.alpha.requires_grad and not sol.rho.requires_grad


def test_fused_points_layer_equals_the_composition():
    from ogae_core.ocsvm import solve_dual_rbf

    g = torch.Generator().manual_seed(12)
    z0 = torch.randn(40, 6, dtype=torch.float64, generator=g)
    w = torch.randn(40, dtype=torch.float64, generator=g)
    for nu in (0.1, 0.5, 0.9):
        outs = []
        for fused in (True, False):
            z = z0.clone().requires_grad_(True)
            sol = solve_dual_rbf(z, nu, 0.3) if fused else solve_dual(rbf_kernel(z, gamma=0.3), nu)
            ((w * sol.alpha).sum() + 0.7 * sol.rho).backward()
            outs.append((sol.alpha.detach(), sol.rho.detach(), z.grad))
        for a, b in zip(*outs):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    z = z0[:15].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: solve_dual_rbf(z, 0.3, 0.3).alpha @ w[:15], (z,), eps=1e-6, atol=1e-6)


def test_fused_points_layer_rejects_bad_input():
    from ogae_core.ocsvm import solve_dual_rbf

    with pytest.raises(ValueError, match="non-finite"):
        solve_dual_rbf(torch.tensor([[0.0, float("nan")], [1.0, 2.0]], dtype=torch.float64), 0.5, 1.0)
    with pytest.raises(ValueError, match="gamma"):
        solve_dual_rbf(torch.zeros(4, 2, dtype=torch.float64), 0.5, 0.0)
    with pytest.raises(ValueError, match="shape"):
        solve_dual_rbf(torch.zeros(4, dtype=torch.float64), 0.5, 1.0)


@pytest.mark.slow
def test_batched_points_equal_the_composition_with_per_problem_gamma():
    from ogae_core.ocsvm import resolve_gamma, solve_dual_rbf

    g = torch.Generator().manual_seed(13)
    Z = torch.randn(12, 30, 5, dtype=torch.float64, generator=g) * torch.linspace(0.5, 2, 12).view(12, 1, 1)
    gam = resolve_gamma(Z, "scale")
    fused = solve_dual_rbf(Z, 0.3, gam)
    ref = solve_dual(rbf_kernel(Z, gamma=gam), 0.3)
    torch.testing.assert_close(fused.alpha, ref.alpha, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(fused.rho, ref.rho, rtol=1e-9, atol=1e-12)
    # with gradients the batched call is the composition itself
    Zg = Z.clone().requires_grad_(True)
    solve_dual_rbf(Zg, 0.3, gam).rho.sum().backward()
    assert torch.isfinite(Zg.grad).all() and Zg.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one per problem"):
        solve_dual_rbf(Z, 0.3, torch.ones(5))


def test_fused_layer_at_a_vertex_and_with_near_duplicates_matches_the_composition():
    """The fused backward's vertex branch (nu = 1: every alpha at C, rho by libsvm's
    midpoint) and near-duplicate points (Cholesky refused, bordered LU used)."""
    from ogae_core.ocsvm import solve_dual_rbf

    g = torch.Generator().manual_seed(21)
    w = torch.randn(12, dtype=torch.float64, generator=g)
    z_vertex = torch.randn(12, 3, dtype=torch.float64, generator=g)
    z_dup = torch.randn(12, 3, dtype=torch.float64, generator=g)
    z_dup[1] = z_dup[0] + 1e-9
    z_dup[2] = z_dup[0]
    for z0, nu in ((z_vertex, 1.0), (z_dup, 0.3), (z_dup, 0.1)):
        outs = []
        for fused in (True, False):
            z = z0.clone().requires_grad_(True)
            sol = solve_dual_rbf(z, nu, 0.5) if fused else solve_dual(rbf_kernel(z, gamma=0.5), nu)
            ((w * sol.alpha).sum() + 0.7 * sol.rho).backward()
            outs.append((sol.alpha.detach(), sol.rho.detach(), z.grad))
        for a, b in zip(*outs):
            torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    z = z_vertex.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: solve_dual_rbf(z, 1.0, 0.5).rho, (z,), eps=1e-6, atol=1e-6)


def test_fused_layer_uses_the_fallback_when_iterations_run_out():
    from ogae_core.ocsvm import solve_dual_rbf

    g = torch.Generator().manual_seed(22)
    z0 = torch.randn(30, 4, dtype=torch.float64, generator=g)
    w = torch.randn(30, dtype=torch.float64, generator=g)
    results = []
    for max_iter in (1, 100):
        z = z0.clone().requires_grad_(True)
        sol = solve_dual_rbf(z, 0.1, 0.4, max_iter=max_iter)
        ((w * sol.alpha).sum() + sol.rho).backward()
        results.append((sol, z.grad))
    (cut, g_cut), (full, g_full) = results
    assert cut.n_fallback == 1 and full.n_fallback == 0 and float(cut.kkt_residual) <= 1e-8
    torch.testing.assert_close(cut.alpha, full.alpha, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(g_cut, g_full, rtol=1e-6, atol=1e-10)


def test_cholesky_and_bordered_lu_give_the_same_reduced_solution():
    """Force the LU path on a well-conditioned problem; alpha, rho and the backward agree."""
    import numpy as np

    from ogae_core.ocsvm.cpu_engine.active_set import solve_sets
    from ogae_core.ocsvm.cpu_engine.linalg import reduced_solve_transposed

    g = torch.Generator().manual_seed(23)
    K = rbf_kernel(torch.randn(25, 5, dtype=torch.float64, generator=g), gamma=0.3).numpy()
    state = np.zeros(25, dtype=np.int8)
    state[:12], state[12:15] = 1, 2  # 12 free, 3 upper
    C = 1.0 / (0.2 * 25)
    out = []
    for force_lu in (False, True):
        a, gv, LU, piv, f = np.zeros(25), np.zeros(25), np.zeros((26, 26)), np.zeros(26, np.int64), np.zeros(25, np.int64)
        # a ridge of -1 makes K_FF + ridge I indefinite: Cholesky refuses, the bordered LU solves it
        rho, m, ok = solve_sets(K, C, -1.0 if force_lu else 0.0, state.copy(), a, gv, LU, piv, f)
        assert (piv[m] == -1) != force_lu  # -1 marks the Cholesky/Schur factors
        v = np.r_[np.linspace(-1, 1, m), 0.3]
        reduced_solve_transposed(LU, piv, m, v)
        out.append((a, rho, v, ok))
    # each against a dense solve of its bordered system
    for (a, rho, v, ok), ridge in zip(out, (0.0, -1.0)):
        F = np.arange(12)
        A = np.zeros((13, 13))
        A[:12, :12] = K[np.ix_(F, F)] + ridge * np.eye(12)
        A[:12, 12], A[12, :12] = -1.0, 1.0
        b = np.r_[-C * K[np.ix_(F, np.arange(12, 15))].sum(1), 1 - 3 * C]
        x = np.linalg.solve(A, b)
        assert ok
        np.testing.assert_allclose(a[:12], x[:12], rtol=1e-9, atol=1e-12)
        assert rho == pytest.approx(x[12], rel=1e-9)
        np.testing.assert_allclose(v, np.linalg.solve(A.T, np.r_[np.linspace(-1, 1, 12), 0.3]), rtol=1e-8, atol=1e-10)
