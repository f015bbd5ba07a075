"""The compiled CPU engine's layer on points: ``z -> K = rbf(z) -> (alpha, rho)``, one problem.

The forward (kernel, solve, KKT check) and its vector-Jacobian product are each one
compiled call: at n = 50 the arithmetic of a training step's OCSVM is tens of microseconds, so the
layer's cost is mostly the number of calls into compiled code and the arrays built between
them. The solver itself is :func:`ogae_core.ocsvm.cpu_engine.active_set.solve_one`.

Backward, derived once: with ``dL/dK = G`` from implicit differentiation (rows of the free
indices only, ``G_ij = -u_i alpha_j``; see :mod:`ogae_core.ocsvm.cpu_engine.backward`) and ``K_ij = exp(-gamma
||z_i - z_j||^2)`` entering the loss through both ``K_ij`` and ``K_ji``::

    dL/dz_i = sum_j c_ij (z_i - z_j),   c_ij = 2 gamma K_ij (u_i alpha_j + u_j alpha_i)

At a vertex (no free index) only ``rho`` moves, through the two indices of libsvm's
midpoint rule: ``u`` is ``-w dL/drho`` on them (``w`` = 1/2, or 1 when one side is missing).

:func:`solve_points` wraps the compiled forward (with the libsvm fallback of the batched
engine) and returns a :class:`PointsSolution`; :class:`DualFromPoints` is the autograd node
that :func:`ogae_core.ocsvm.solve_dual_rbf` applies on the CPU. The guidance node
(:mod:`ogae_core.ocsvm.cpu_engine.guidance`) builds on :func:`solve_points` and
:func:`layer_backward`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from numba import njit

from ogae_core.ocsvm.cpu_engine.builds import one_blas_thread
from ogae_core.ocsvm.cpu_engine.active_set import kkt_residual_one, solve_one
from ogae_core.ocsvm.cpu_engine.backward import adjoint_weights
from ogae_core.ocsvm.cpu_engine.forward import solve_kernels
from ogae_core.ocsvm.cpu_engine.rbf import add_weighted_differences, rbf_self
from ogae_core.ocsvm.fallback import check_residual
from ogae_core.ocsvm.tolerances import RIDGE, SET_TOL

__all__ = ["DualFromPoints", "LayerFactors", "PointsSolution", "as_float64", "layer_backward", "layer_forward",
           "solve_points"]

_SET_TOL64 = SET_TOL[torch.float64]
_RIDGE64 = RIDGE[torch.float64]


@njit(cache=True)
def layer_forward(z, gamma, nu, max_iter, stol, ridge):
    """Kernel and exact dual solution of one point set ``z`` ``(n, d)``.

    Returns ``(K, alpha, rho, state, LU, piv, fidx, m, n_iter, status, residual)``;
    ``status`` is -1 for non-finite ``z`` (nothing else is computed), otherwise as in
    :mod:`~ogae_core.ocsvm.cpu_engine.active_set` (0 converged, 1 not settled, 2 singular reduced system).
    """
    n, d = z.shape
    alpha = np.zeros(n)
    state = np.zeros(n, dtype=np.int8)
    LU = np.zeros((n + 1, n + 1))
    piv = np.zeros(n + 1, dtype=np.int64)
    fidx = np.zeros(n, dtype=np.int64)
    for i in range(n):
        for k in range(d):
            if not np.isfinite(z[i, k]):
                return np.zeros((n, n)), alpha, 0.0, state, LU, piv, fidx, 0, 0, -1, np.inf
    K = np.empty((n, n))
    rbf_self(z, gamma, K)
    rho, n_iter, status, m = solve_one(K, nu, max_iter, stol, ridge, alpha, state, LU, piv, fidx, False)
    residual = kkt_residual_one(K, alpha, rho, 1.0 / (nu * n))
    return K, alpha, rho, state, LU, piv, fidx, m, n_iter, status, residual


@njit(cache=True)
def layer_backward(z, K, gamma, alpha, state, LU, piv, fidx, m, grad_alpha, grad_rho):
    """``dL/dz`` ``(n, d)`` from ``dL/dalpha`` ``(n,)`` and ``dL/drho`` (a float)."""
    n = z.shape[0]
    u = np.empty(n)
    adjoint_weights(K, alpha, state, LU, piv, fidx, m, grad_alpha, grad_rho, u)
    c = np.empty((n, n))
    two_gamma = 2.0 * gamma
    for i in range(n):
        c[i, i] = 0.0
        for j in range(i + 1, n):
            v = two_gamma * K[i, j] * (u[i] * alpha[j] + u[j] * alpha[i])
            c[i, j] = v
            c[j, i] = v
    return add_weighted_differences(-(c @ z), c, z)


def as_float64(z: torch.Tensor) -> np.ndarray:
    """C-contiguous float64 view (or copy) of a CPU tensor, without gradient.

    Examples
    --------
    >>> as_float64(torch.ones(2, 3, dtype=torch.float32)).dtype
    dtype('float64')
    """
    zn = z.detach().numpy()
    if zn.dtype != np.float64 or not zn.flags.c_contiguous:
        zn = np.ascontiguousarray(zn, dtype=np.float64)
    return zn


class LayerFactors(NamedTuple):
    """The arguments of :func:`layer_backward` before its two gradients, in its order."""

    z: np.ndarray
    K: np.ndarray
    gamma: float
    alpha: np.ndarray
    state: np.ndarray
    LU: np.ndarray
    piv: np.ndarray
    fidx: np.ndarray
    m: int


class PointsSolution(NamedTuple):
    """Result of :func:`solve_points`: the dual solution, its diagnostics and the backward's factors."""

    alpha: np.ndarray
    rho: float
    n_iter: int
    kkt_residual: torch.Tensor
    n_fallback: int
    factors: LayerFactors


def solve_points(zn: np.ndarray, gamma: float, nu: float, max_iter: int, tol: float, strict: bool) -> PointsSolution:
    """Kernel and exact dual of one float64 point set ``zn`` ``(n, d)`` (one compiled call).

    Problems that do not settle, or miss ``tol``, go through the batched engine's libsvm
    fallback (:func:`~ogae_core.ocsvm.cpu_engine.forward.solve_kernels`); a residual still
    above ``tol`` raises :class:`~ogae_core.ocsvm.SolverConvergenceError` (``strict``) or
    warns. Non-finite ``zn`` raises ``ValueError``.
    """
    K, alpha, rho, state, LU, piv, fidx, m, n_iter, status, res = layer_forward(
        zn, gamma, nu, max_iter, _SET_TOL64, _RIDGE64)
    if status == -1:
        raise ValueError("z contains non-finite values (nan or inf)")
    n_fallback = 0
    if status != 0 or not res <= tol:  # rare: the libsvm fallback of the batched engine
        sol = solve_kernels(torch.from_numpy(K)[None], nu, max_iter, tol, True)
        check_residual(sol.residual, tol, strict, 1)
        sv = sol.saved
        alpha, rho, state, LU, piv = sv.alpha[0], float(sol.rho[0]), sv.state[0], sv.LU[0], sv.piv[0]
        fidx, m, res, n_iter, n_fallback = sv.fidx[0], int(sv.msize[0]), float(sol.residual[0]), sol.n_iter, \
            sol.n_fallback
    factors = LayerFactors(zn, K, gamma, alpha, state, LU, piv, fidx, int(m))
    return PointsSolution(alpha, rho, int(n_iter), torch.from_numpy(np.array(res)), n_fallback, factors)


class DualFromPoints(torch.autograd.Function):
    """``z -> (alpha, rho)`` on the CPU, one compiled call each way.

    ``apply(z, (gamma, nu, max_iter, tol, strict), info)``; ``info`` (a dict) receives
    ``n_iter``, ``kkt_residual`` and ``n_fallback``.
    """

    # Lean on purpose: at n = 50 the compiled work is ~50 us, so every tensor built here
    # (numpy-backed 0-d tensors instead of torch.tensor, options passed as one tuple) counts.
    @staticmethod
    def forward(ctx, z, opts, info):
        zn = as_float64(z)
        with one_blas_thread():  # small products: BLAS threads would compete with torch's
            sol = solve_points(zn, *opts)
        info["n_iter"], info["kkt_residual"], info["n_fallback"] = sol.n_iter, sol.kkt_residual, sol.n_fallback
        ctx.saved = sol.factors
        ctx.dtype = z.dtype
        alpha_t, rho_t = torch.from_numpy(sol.alpha), torch.from_numpy(np.array(sol.rho))
        if z.dtype != torch.float64:
            alpha_t, rho_t = alpha_t.to(z.dtype), rho_t.to(z.dtype)
        return alpha_t, rho_t

    @staticmethod
    def backward(ctx, grad_alpha, grad_rho):
        zn = ctx.saved.z
        if grad_alpha is None:
            ga = np.zeros(zn.shape[0])
        else:
            ga = grad_alpha.detach()
            ga = np.ascontiguousarray((ga if ga.dtype == torch.float64 else ga.double()).numpy())
        gr = 0.0 if grad_rho is None else grad_rho.item()
        with one_blas_thread():
            grad = torch.from_numpy(layer_backward(*ctx.saved, ga, gr))
        return (grad if ctx.dtype == torch.float64 else grad.to(ctx.dtype)), None, None
