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

Accuracy: the systems are solved for ``K + ridge * I`` with ``ridge = 1e-12`` in
float64 (``1e-7`` in float32) so that duplicated points stay solvable; the KKT
residual is below ``1e-8`` in float64 and about ``1e-5`` in float32.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch

from ogae_core.ocsvm._torch_engine import _RIDGE, _SET_TOL
from ogae_core.ocsvm.validation import check_kernel_matrix, check_nu, raise_for_values

__all__ = ["DualSolution", "SolverConvergenceError", "solve_dual", "kkt_residual"]


class SolverConvergenceError(RuntimeError):
    """Raised when the OCSVM dual could not be solved to the KKT tolerance."""


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


_DEFAULT_TOL = {torch.float64: 1e-8, torch.float32: 2e-4}


def kkt_residual(K: torch.Tensor, alpha: torch.Tensor, rho: torch.Tensor, nu: float) -> torch.Tensor:
    """Largest violation of the KKT conditions of the OCSVM dual, per problem.

    With ``g = K alpha``: ``|sum(alpha) - 1|``, bound violations of ``alpha``,
    ``|g_i - rho|`` on free indices, ``max(0, rho - g_i)`` where ``alpha_i = 0`` and
    ``max(0, g_i - rho)`` where ``alpha_i = C``. Indices count as bound when within
    ``1e-12 * C`` (float64) of it.

    Examples
    --------
    >>> import torch
    >>> K = torch.eye(2, dtype=torch.float64)
    >>> a = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> float(kkt_residual(K, a, torch.tensor(0.5, dtype=torch.float64), 1.0))
    0.0
    """
    n = K.shape[-1]
    C = 1.0 / (nu * n)
    eps = 1e-12 * C if alpha.dtype == torch.float64 else 1e-6 * C
    g = (K @ alpha.unsqueeze(-1)).squeeze(-1)
    lam = g - rho.unsqueeze(-1)
    at_lower = alpha <= eps
    at_upper = alpha >= C - eps
    free = ~(at_lower | at_upper)
    r = torch.where(free, lam.abs(), torch.zeros_like(lam))
    r = torch.maximum(r, torch.where(at_lower & ~at_upper, (-lam).clamp_min(0), torch.zeros_like(lam)))
    r = torch.maximum(r, torch.where(at_upper & ~at_lower, lam.clamp_min(0), torch.zeros_like(lam)))
    r = torch.maximum(r, (-alpha).clamp_min(0))
    r = torch.maximum(r, (alpha - C).clamp_min(0))
    return torch.maximum(r.amax(-1), (alpha.sum(-1) - 1).abs())


def _libsvm_alpha(Kn: np.ndarray, nu: float) -> np.ndarray:
    """Solve each problem of ``(B, n, n)`` with libsvm's SMO (float64); paper scaling."""
    from sklearn.svm import OneClassSVM as _SkOCSVM

    B, n, _ = Kn.shape
    alphas = np.zeros((B, n))
    for b in range(B):
        model = _SkOCSVM(kernel="precomputed", nu=nu, tol=1e-12, shrinking=False, max_iter=100_000 * n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(Kn[b])
        alphas[b, model.support_] = model.dual_coef_.ravel() / (nu * n)
    return alphas


def _state_from_alpha(alpha: np.ndarray, C: float) -> np.ndarray:
    """Index sets (0 lower, 1 free, 2 upper) read off an approximate solution."""
    rel = 1e-6
    state = np.ones(alpha.shape, dtype=np.int8)
    state[alpha <= C * rel] = 0
    state[alpha >= C * (1 - rel)] = 2
    return state


class _Solved(NamedTuple):
    """Forward result plus what the backward pass of its engine needs."""

    alpha: torch.Tensor
    rho: torch.Tensor
    n_iter: int
    residual: torch.Tensor
    n_fallback: int
    saved: dict


def _forward_cpu(K: torch.Tensor, nu: float, max_iter: int, tol: float, keep: bool) -> _Solved:
    """Compiled CPU engine (reduced systems, float64, threads over the batch)."""
    from ogae_core.ocsvm import _cpu_kernels as ck

    Kn = K.detach().numpy()
    Kn = np.ascontiguousarray(Kn, dtype=np.float64)
    raise_for_values(*ck.check_values(Kn), K.dtype)
    B, n, _ = Kn.shape
    state = np.zeros((B, n), dtype=np.int8)
    stol = _SET_TOL[torch.float64]
    ridge = _RIDGE[torch.float64]
    out = ck.solve_batch(Kn, nu, max_iter, stol, ridge, keep, state, False)
    alpha, rho, state, n_iter, status, LU, piv, fidx, msize, res = out
    bad = (status != 0) | ~(res <= tol)
    n_fb = int(bad.sum())
    if n_fb:
        idx = np.flatnonzero(bad)
        a0 = _libsvm_alpha(Kn[idx], nu)
        st0 = _state_from_alpha(a0, 1.0 / (nu * n))
        o2 = ck.solve_batch(np.ascontiguousarray(Kn[idx]), nu, max(max_iter, 3 * n), stol, ridge, keep, st0, True)
        alpha[idx], rho[idx], state[idx], fidx[idx], msize[idx], res[idx] = o2[0], o2[1], o2[2], o2[7], o2[8], o2[9]
        if keep:
            LU[idx], piv[idx] = o2[5], o2[6]
    saved = dict(engine="cpu", K=Kn, alpha=alpha, state=state, LU=LU, piv=piv, fidx=fidx, msize=msize)
    return _Solved(
        torch.from_numpy(alpha).to(K.dtype),
        torch.from_numpy(rho).to(K.dtype),
        int(n_iter.max()),
        torch.from_numpy(res),
        n_fb,
        saved,
    )


def cpu_grad_K(saved: dict, grad_alpha, grad_rho) -> np.ndarray:
    """dL/dK ``(B, n, n)`` (float64, symmetric) from a CPU-engine forward's ``saved``."""
    from ogae_core.ocsvm import _cpu_kernels as ck

    K = saved["K"]
    B, n, _ = K.shape
    ga = np.zeros((B, n)) if grad_alpha is None else grad_alpha.detach().to(torch.float64).numpy().reshape(B, n)
    gr = np.zeros(B) if grad_rho is None else grad_rho.detach().to(torch.float64).numpy().reshape(B)
    return ck.backward_batch(K, saved["alpha"], saved["state"], saved["LU"], saved["piv"], saved["fidx"],
                             saved["msize"], ga, gr)


def _forward_torch(K: torch.Tensor, nu: float, max_iter: int, tol: float, keep: bool) -> _Solved:
    """Torch engine (masked full systems; any device and dtype)."""
    from ogae_core.ocsvm import _torch_engine as te

    alpha, rho, free, upper, done, n_iter, LU, piv = te.active_set(K, nu, max_iter)
    res = kkt_residual(K, alpha, rho, nu)
    bad = (~done) | (res > tol) | ~torch.isfinite(res)
    n_fb = int(bad.sum())
    if n_fb:
        idx = bad.nonzero().squeeze(-1)
        a0 = torch.from_numpy(_libsvm_alpha(K[idx].detach().cpu().double().numpy(), nu)).to(K.device, K.dtype)
        a, r, f, u, lu, pv = te.polish(K[idx], a0, nu)
        alpha[idx], rho[idx], free[idx], upper[idx], LU[idx], piv[idx] = a, r, f, u, lu, pv
        res[idx] = kkt_residual(K[idx], a, r, nu)
    saved = dict(engine="torch", alpha=alpha, free=free, upper=upper, LU=LU, piv=piv)
    return _Solved(alpha, rho, n_iter, res, n_fb, saved)


def _check_residual(res: torch.Tensor, tol: float, strict: bool, batch: int) -> None:
    worst = float(res.max())
    if worst <= tol:
        return
    msg = (
        f"OCSVM dual not solved to tolerance {tol:g} for {int((res > tol).sum())} of {batch} problems "
        f"(worst KKT residual {worst:.3g}) even after the libsvm fallback; check that K is positive "
        "semidefinite and well scaled"
    )
    if strict:
        raise SolverConvergenceError(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=4)


class _DualFunction(torch.autograd.Function):
    """alpha, rho = OCSVM dual solution of K; backward by implicit differentiation."""

    @staticmethod
    def forward(ctx, K, nu, max_iter, tol, strict, engine, info):  # noqa: PLR0913
        keep = K.requires_grad
        with torch.no_grad():
            fwd = _forward_cpu if engine == "cpu" else _forward_torch
            sol = fwd(K, nu, max_iter, tol, keep)
        _check_residual(sol.residual, tol, strict, K.shape[0])
        info.update(n_iter=sol.n_iter, kkt_residual=sol.residual, n_fallback=sol.n_fallback)
        ctx.nu = nu
        ctx.saved = sol.saved
        ctx.save_for_backward(K)
        ctx.mark_non_differentiable()
        return sol.alpha, sol.rho

    @staticmethod
    def backward(ctx, grad_alpha, grad_rho):
        (K,) = ctx.saved_tensors
        sv = ctx.saved
        if sv["engine"] == "cpu":
            grad_K = torch.from_numpy(cpu_grad_K(sv, grad_alpha, grad_rho)).to(K.dtype)
        else:
            from ogae_core.ocsvm.implicit import dual_backward

            grad_K = dual_backward(
                K, sv["alpha"], sv["free"], sv["upper"], ctx.nu, grad_alpha, grad_rho,
                _RIDGE[K.dtype], (sv["LU"], sv["piv"]),
            )
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
            tol = _DEFAULT_TOL[K.dtype]  # the dtype was checked above
        if engine not in ("cpu", "torch"):
            raise ValueError(f"engine must be 'auto', 'cpu' or 'torch'; got {engine!r}")
        if engine == "cpu" and Kb.device.type != "cpu":
            raise ValueError("engine='cpu' needs K on the CPU")
        if engine == "cpu":
            tol = max(tol, _DEFAULT_TOL[torch.float64])
        info: dict = {}
        alpha, rho = _DualFunction.apply(Kb, float(nu), int(max_iter), float(tol), bool(strict), engine, info)
        sol = DualSolution(alpha, rho, info["n_iter"], info["kkt_residual"], info["n_fallback"])
    else:
        raise ValueError(f"backend must be 'native' or 'cvxpylayers'; got {backend!r}")
    if single:
        sol = sol._replace(alpha=sol.alpha[0], rho=sol.rho[0], kkt_residual=sol.kkt_residual[0])
    return sol
