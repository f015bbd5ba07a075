"""Exact batched solver of the one-class SVM dual (paper scaling), differentiable.

The problem (Pinon & Lartizien, eq. 3), for each kernel matrix ``K`` of a batch::

    min_a  1/2 a^T K a   s.t.  0 <= a_i <= C = 1/(nu n),   sum_i a_i = 1

with offset ``rho`` from the KKT conditions: ``(K a)_i = rho`` on free support vectors
(``0 < a_i < C``); when none is free, ``rho`` is the midpoint of the feasible interval
``[max_{a_i = C} (K a)_i, min_{a_i = 0} (K a)_i]``, as libsvm does.

Algorithm
---------
A primal-dual active-set iteration (the semismooth Newton method for the box
constraints): the index sets *lower* (``a_i = 0``), *upper* (``a_i = C``) and *free*
are guessed from a kernel-density ranking (small ``nu``: the least dense two thirds
free, the rest at 0; otherwise the least dense ~``nu n`` points at ``C``), then each iteration solves the equality-constrained
KKT system on the free set exactly and moves indices whose bound or multiplier has
the wrong sign. It stops when the sets no longer change, which certifies the KKT
conditions. Typically 2–5 iterations at n = 50. Problems that have not settled
after ``max_iter`` iterations (active-set methods can cycle on indefinite
reduced systems) go to libsvm's SMO solver on the CPU in float64; from libsvm's active
set the CPU engine restarts its iteration and the torch engine takes one exact Newton step. Every returned solution is
checked against the KKT conditions; a failure raises :class:`SolverConvergenceError`
(or warns, with ``strict=False``) instead of returning a wrong answer silently.

Engines: ``engine="cpu"`` runs :func:`ogae_core.ocsvm.cpu_engine.forward.solve_kernels`
(compiled, reduced systems, float64) and ``engine="torch"``
:func:`ogae_core.ocsvm.torch_engine.forward.solve_kernels` (masked full systems on the
device and dtype of ``K``); each engine's backward is its own implicit differentiation of
the KKT system.

Accuracy: the systems are solved for ``K + ridge * I`` with ``ridge = 1e-12`` in
float64 (``1e-7`` in float32) so that duplicated points stay solvable; the KKT
residual is below ``1e-8`` in float64 and about ``1e-5`` in float32.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ogae_core.ocsvm.fallback import SolverConvergenceError, check_residual
from ogae_core.ocsvm.tolerances import DEFAULT_TOL
from ogae_core.ocsvm.torch_engine import forward as torch_engine
from ogae_core.ocsvm.torch_engine.forward import kkt_residual
from ogae_core.validation import check_kernel_matrix, check_nu

__all__ = ["DualSolution", "SolverConvergenceError", "solve_dual", "kkt_residual"]


class DualSolution(NamedTuple):
    """Solution of a batch of OCSVM duals (paper scaling).

    Attributes
    ----------
    alpha : torch.Tensor
        ``(..., n)``; sums to one, ``0 <= alpha <= 1/(nu n)``. Differentiable.
    rho : torch.Tensor
        ``(...)``; offset of the decision function ``f(x) = sum_i alpha_i k(x_i, x) - rho``.
        Differentiable.
    n_iter : int
        Active-set iterations used (maximum over the batch).
    kkt_residual : torch.Tensor
        ``(...)``; largest violation of the KKT conditions (see :func:`kkt_residual`).
    n_fallback : int
        Problems of the batch that needed the libsvm fallback.
    """

    alpha: torch.Tensor
    rho: torch.Tensor
    n_iter: int
    kkt_residual: torch.Tensor
    n_fallback: int


class _DualFunction(torch.autograd.Function):
    """alpha, rho = OCSVM dual solution of K; backward by implicit differentiation (in the forward's engine)."""

    @staticmethod
    def forward(ctx, K, nu, max_iter, tol, strict, engine, info):  # noqa: PLR0913
        with torch.no_grad():
            if engine == "cpu":
                from ogae_core.ocsvm.cpu_engine import forward as cpu  # numba loads on first use

                sol = cpu.solve_kernels(K, nu, max_iter, tol, K.requires_grad)
            else:
                sol = torch_engine.solve_kernels(K, nu, max_iter, tol, K.requires_grad)
        check_residual(sol.residual, tol, strict, K.shape[0])
        info.update(n_iter=sol.n_iter, kkt_residual=sol.residual, n_fallback=sol.n_fallback)
        ctx.nu = nu
        ctx.engine = engine
        ctx.saved = sol.saved
        ctx.save_for_backward(K)
        ctx.mark_non_differentiable()
        return sol.alpha, sol.rho

    @staticmethod
    def backward(ctx, grad_alpha, grad_rho):
        (K,) = ctx.saved_tensors
        if ctx.engine == "cpu":
            from ogae_core.ocsvm.cpu_engine import forward as cpu

            grad_K = torch.from_numpy(cpu.grad_K(ctx.saved, grad_alpha, grad_rho)).to(K.dtype)
        else:
            grad_K = torch_engine.grad_K(K, ctx.saved, ctx.nu, grad_alpha, grad_rho)
        return grad_K, None, None, None, None, None, None


def solve_dual(
    K: torch.Tensor,
    nu: float,
    *,
    backend: str = "native",
    max_iter: int = 100,
    tol: float | None = None,
    strict: bool = True,
    engine: str = "auto",
) -> DualSolution:
    """Solve the OCSVM dual exactly for one or a batch of kernel matrices.

    Parameters
    ----------
    K : torch.Tensor
        ``(n, n)`` or ``(B, n, n)`` symmetric positive semidefinite kernel matrices,
        float32 or float64, any device. Gradients flow to ``K``.
    nu : float
        In ``(0, 1]`` with ``nu * n >= 1``.
    backend : {"native", "cvxpylayers"}
        ``"cvxpylayers"`` is the paper's own formulation (slow, approximate; for
        cross-checks and benchmarks).
    max_iter : int
        Active-set iterations before the libsvm fallback.
    tol : float, optional
        KKT tolerance a solution must meet (default 1e-8 in float64, 2e-4 in float32).
    strict : bool
        Raise :class:`SolverConvergenceError` when a problem misses ``tol``
        (else warn).
    engine : {"auto", "cpu", "torch"}
        ``"cpu"``: compiled engine on reduced systems (float64 internally, threads
        over the batch); ``"torch"``: batched tensor engine on K's device and dtype.
        ``"auto"`` picks ``"cpu"`` for CPU tensors and ``"torch"`` otherwise.

    Returns
    -------
    DualSolution

    Examples
    --------
    >>> import torch
    >>> from ogae_core.ocsvm import rbf_kernel
    >>> z = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> sol = solve_dual(rbf_kernel(z, gamma=0.5), nu=0.3)
    >>> round(float(sol.alpha.sum()), 6), bool((sol.alpha <= 1 / (0.3 * 20) + 1e-12).all())
    (1.0, True)
    """
    check_nu(nu)
    if engine == "auto":
        engine = "cpu" if isinstance(K, torch.Tensor) and K.device.type == "cpu" else "torch"
    # the compiled CPU engine checks finiteness and symmetry itself, in one pass
    K = check_kernel_matrix(K, nu, check_values=not (backend == "native" and engine == "cpu"))
    single = K.dim() == 2
    Kb = K.unsqueeze(0) if single else K
    if backend == "cvxpylayers":
        from ogae_core.ocsvm.cvxpy_backend import solve_dual_cvxpylayers

        alpha, rho = solve_dual_cvxpylayers(Kb, nu)
        res = kkt_residual(Kb.detach(), alpha.detach(), rho.detach(), nu)
        sol = DualSolution(alpha, rho, 0, res, 0)
    elif backend == "native":
        if tol is None:
            tol = DEFAULT_TOL[K.dtype]  # the dtype was checked above
        if engine not in ("cpu", "torch"):
            raise ValueError(f"engine must be 'auto', 'cpu' or 'torch'; got {engine!r}")
        if engine == "cpu" and Kb.device.type != "cpu":
            raise ValueError("engine='cpu' needs K on the CPU")
        if engine == "cpu":
            tol = max(tol, DEFAULT_TOL[torch.float64])
        info: dict = {}
        alpha, rho = _DualFunction.apply(Kb, float(nu), int(max_iter), float(tol), bool(strict), engine, info)
        sol = DualSolution(alpha, rho, info["n_iter"], info["kkt_residual"], info["n_fallback"])
    else:
        raise ValueError(f"backend must be 'native' or 'cvxpylayers'; got {backend!r}")
    if single:
        sol = sol._replace(alpha=sol.alpha[0], rho=sol.rho[0], kkt_residual=sol.kkt_residual[0])
    return sol
