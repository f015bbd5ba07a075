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


@pytest.mark.parametrize("engine", ["cpu", "torch"])
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
