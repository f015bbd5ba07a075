"""The exact dual solver against libsvm, its KKT certificate and its errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ogae_core.ocsvm import SolverConvergenceError, rbf_kernel, solve_dual, solve_dual_rbf
from ogae_core.ocsvm.solver import kkt_residual

from .helpers import libsvm_reference, random_problem

KINDS = ["plain"] * 5 + ["duplicates", "tight", "lowdim"]


def _problems(count: int, seed: int):
    rng = np.random.default_rng(seed)
    for i in range(count):
        yield i, KINDS[i % len(KINDS)], *random_problem(rng, KINDS[i % len(KINDS)])


@pytest.mark.parametrize("engine", ["cpu", "torch"])
def test_agrees_with_libsvm_on_200_random_problems(engine):
    worst_dec = 0.0
    for i, kind, K, X, nu, gamma in _problems(200 if engine == "cpu" else 40, seed=1 if engine == "cpu" else 2):
        sol = solve_dual(K, nu, engine=engine)
        alpha, rho = sol.alpha.numpy(), float(sol.rho)
        a_ref, rho_ref, model = libsvm_reference(K, nu)
        Kn = K.numpy()
        C = 1.0 / (nu * len(alpha))
        # feasibility and exactness
        assert abs(alpha.sum() - 1) < 1e-10 and alpha.min() >= -1e-12 and alpha.max() <= C * (1 + 1e-10), (i, kind)
        assert float(sol.kkt_residual) <= 1e-8, (i, kind, float(sol.kkt_residual))
        # same dual objective; ours is never worse than libsvm's (tol 1e-10)
        obj, obj_ref = 0.5 * alpha @ Kn @ alpha, 0.5 * a_ref @ Kn @ a_ref
        assert obj <= obj_ref + 1e-12, (i, kind, obj - obj_ref)
        assert obj_ref - obj <= 1e-8 * max(1.0, obj_ref), (i, kind, obj_ref - obj)
        # same decision values (libsvm's are nu*n times ours)
        dec = Kn @ alpha - rho
        dec_ref = model.decision_function(Kn) / (nu * len(alpha))
        worst_dec = max(worst_dec, float(np.abs(dec - dec_ref).max()))
        # alpha itself is unique and well conditioned unless points are duplicated
        # or K is near singular (d = 2): there only objective and decisions must agree
        if kind in ("plain", "tight"):
            # (libsvm stops at a gradient gap of 1e-10; its alpha is off by up to ~1e-5 C)
            np.testing.assert_allclose(alpha, a_ref, rtol=0, atol=1e-4 * C, err_msg=f"problem {i} ({kind})")
    assert worst_dec < 1e-6


def test_batch_equals_individual_solves_and_engines_agree():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(40, 30, 8, dtype=torch.float64, generator=g)
    K = rbf_kernel(Z, gamma=1 / 8)
    batch = solve_dual(K, 0.2)
    other = solve_dual(K, 0.2, engine="torch")
    for b in range(K.shape[0]):
        one = solve_dual(K[b], 0.2)
        torch.testing.assert_close(batch.alpha[b], one.alpha, rtol=0, atol=1e-12)
        torch.testing.assert_close(batch.rho[b], one.rho, rtol=0, atol=1e-12)
    torch.testing.assert_close(batch.alpha, other.alpha, rtol=0, atol=1e-9)
    torch.testing.assert_close(batch.rho, other.rho, rtol=0, atol=1e-9)
    assert batch.kkt_residual.shape == (40,)


def vertex_problems(count: int = 20, seed: int = 3):
    """Problems whose solution has no free support vector (a vertex of the box).

    Three far points on a slightly irregular unit triangle and the rest near its
    centre, with nu * n = 3: the far points sit at C = 1/3 because every centre
    point is more similar to them than they are to each other (small gamma).
    """
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(4, 12))
        X = rng.normal(scale=0.05, size=(n, 2))
        angles = np.array([0.0, 2.1, 4.2]) + rng.uniform(-0.15, 0.15, size=3)
        radii = 1.0 + rng.uniform(-0.1, 0.1, size=3)
        X[:3] = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
        K = torch.from_numpy(np.exp(-0.1 * ((X[:, None] - X[None]) ** 2).sum(-1)))
        yield K, 3.0 / n


@pytest.mark.parametrize("engine", ["cpu", "torch"])
def test_vertex_solution_uses_the_midpoint_of_the_feasible_interval(engine):
    seen_vertex = 0
    for K, nu in vertex_problems():
        sol = solve_dual(K, nu, engine=engine)
        C = 1.0 / (nu * K.shape[0])
        alpha = sol.alpha.numpy()
        a_ref, rho_ref, _ = libsvm_reference(K, nu, tol=1e-12)
        np.testing.assert_allclose(alpha, a_ref, rtol=0, atol=1e-9)
        g = K.numpy() @ alpha
        upper, lower = alpha >= C * (1 - 1e-12), alpha <= 1e-12 * C
        if (upper | lower).all():
            seen_vertex += 1
            lb, ub = g[upper].max(), g[lower].min()
            assert lb <= ub
            assert abs(float(sol.rho) - 0.5 * (lb + ub)) < 1e-12
            # libsvm's offset is a valid one too (it sits at an end of the interval
            # when rounding of nu * n leaves it a "free" variable at C - 1e-16)
            assert lb - 1e-7 <= rho_ref <= ub + 1e-7
    assert seen_vertex >= 15


def test_nu_one_puts_every_point_at_the_bound():
    # libsvm returns an infinite offset here; we take the only finite end of the
    # feasible interval, rho = max_i (K alpha)_i, so that no point lies inside.
    g = torch.Generator().manual_seed(0)
    K = rbf_kernel(torch.randn(12, 3, dtype=torch.float64, generator=g), gamma=0.3)
    sol = solve_dual(K, 1.0)
    torch.testing.assert_close(sol.alpha, torch.full((12,), 1 / 12, dtype=torch.float64))
    torch.testing.assert_close(sol.rho, (K @ sol.alpha).max())


@pytest.mark.parametrize("engine", ["cpu", "torch"])
def test_float32_meets_documented_tolerance(engine):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(8, 50, 32, generator=g)
    K = rbf_kernel(z, gamma=1 / 32)
    sol = solve_dual(K, 0.5, engine=engine)
    assert sol.alpha.dtype == torch.float32
    ref = solve_dual(K.double(), 0.5)
    assert float(kkt_residual(K, sol.alpha, sol.rho, 0.5).max()) <= 2e-4
    torch.testing.assert_close(sol.alpha.double(), ref.alpha, rtol=0, atol=1e-4)


def test_fallback_recovers_exact_solution_when_iterations_run_out():
    rng = np.random.default_rng(5)
    K, X, nu, _ = random_problem(rng, "plain")
    sol = solve_dual(K, nu, max_iter=1)
    full = solve_dual(K, nu)
    if full.n_iter > 1:
        assert sol.n_fallback == 1
    torch.testing.assert_close(sol.alpha, full.alpha, rtol=0, atol=1e-10)
    assert float(sol.kkt_residual) <= 1e-8


def test_unsolvable_problem_is_reported_loudly(monkeypatch):
    from ogae_core.ocsvm.cpu_engine import active_set

    real = active_set.solve_batch

    def sabotaged(*args):
        out = real(*args)
        out.status[:] = 1  # not settled
        out.residual[:] = 1.0
        return out._replace(alpha=out.alpha * 3.0)  # alpha no longer sums to one

    monkeypatch.setattr(active_set, "solve_batch", sabotaged)
    rng = np.random.default_rng(0)
    K, _, nu, _ = random_problem(rng, "plain")
    with pytest.raises(SolverConvergenceError, match="not solved to tolerance"):
        solve_dual(K, nu, engine="cpu")
    with pytest.warns(RuntimeWarning, match="not solved to tolerance"):
        solve_dual(K, nu, engine="cpu", strict=False)


@pytest.mark.parametrize(
    "K, nu, message",
    [
        (torch.eye(4, dtype=torch.float64), 0.0, "nu must be in"),
        (torch.eye(4, dtype=torch.float64), 1.5, "nu must be in"),
        (torch.eye(4, dtype=torch.float64), float("nan"), "nu must be in"),
        (torch.eye(4, dtype=torch.float64), 0.2, "nu \\* n must be >= 1"),
        (torch.ones(4, 3, dtype=torch.float64), 0.5, "square"),
        (torch.ones(4, dtype=torch.float64), 0.5, "shape"),
        (torch.tensor([[1.0, 0.5], [0.2, 1.0]], dtype=torch.float64), 0.5, "symmetric"),
        (torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]), 0.5, "non-finite"),
        (torch.eye(3, dtype=torch.int64), 0.5, "float32 or float64"),
        (np.eye(3), 0.5, "torch.Tensor"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(K, nu, message):
    with pytest.raises(ValueError, match=message):
        solve_dual(K, nu)


def test_unknown_backend_and_engine_are_rejected():
    K = torch.eye(4, dtype=torch.float64)
    with pytest.raises(ValueError, match="backend"):
        solve_dual(K, 0.5, backend="scs")
    with pytest.raises(ValueError, match="engine"):
        solve_dual(K, 0.5, engine="gpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    K = rbf_kernel(torch.randn(16, 50, 32, dtype=torch.float64, generator=g), gamma=1 / 32)
    cpu = solve_dual(K, 0.5)
    gpu = solve_dual(K.cuda(), 0.5)
    assert gpu.alpha.device.type == "cuda"
    torch.testing.assert_close(gpu.alpha.cpu(), cpu.alpha, rtol=0, atol=1e-9)


def test_batched_cpu_solve_keeps_torch_thread_count():
    """The threaded compiled engine shares OpenMP with torch; it must not leave torch on more
    threads than the caller allotted (a run's scores depend on the thread count)."""
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 or more CPU threads to observe a change of torch's thread count")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        K = torch.eye(30, dtype=torch.float64).expand(64, 30, 30).contiguous()
        solve_dual(K, 0.5)
        z = torch.randn(16, 20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        solve_dual_rbf(z, 0.3, 0.5)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
