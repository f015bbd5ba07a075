"""Backward pass of the compiled CPU engine: ``dL/dK`` by implicit differentiation.

At the solution the index sets are locally constant; on the free set ``F``,
``dL/dK_ij = -u_i alpha_j`` with ``u_F`` the solution of the transposed reduced KKT system
(the forward's factors are reused, :func:`~ogae_core.ocsvm.cpu_engine.linalg.reduced_solve_transposed`).
At a vertex (no free index) only ``rho`` moves, through the two indices of libsvm's
midpoint rule. The gradient is symmetrized: the dual only sees the symmetric part of ``K``.
The torch engine's counterpart is :mod:`ogae_core.ocsvm.torch_engine.backward`.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ogae_core.ocsvm.cpu_engine.active_set import update_gradient, vertex_rho
from ogae_core.ocsvm.cpu_engine.builds import serial_and_parallel
from ogae_core.ocsvm.cpu_engine.linalg import reduced_solve_transposed

__all__ = ["adjoint_weights", "backward_batch"]


def _backward_batch(K, alpha, state, LU_all, piv_all, fidx_all, msize, grad_alpha, grad_rho):
    """dL/dK by implicit differentiation (see the module docstring), symmetrized: the dual
    only sees the symmetric part of K."""
    B, n, _ = K.shape
    out = np.zeros((B, n, n))
    for b in prange(B):
        u = np.empty(n)
        adjoint_weights(K[b], alpha[b], state[b], LU_all[b], piv_all[b], fidx_all[b], msize[b],
                        grad_alpha[b], grad_rho[b], u)
        for i in range(n):
            if u[i] != 0.0:
                for j in range(n):
                    out[b, i, j] = -u[i] * alpha[b, j]
        for i in range(n):
            for j in range(i + 1, n):
                sym = 0.5 * (out[b, i, j] + out[b, j, i])
                out[b, i, j] = sym
                out[b, j, i] = sym
    return out


@njit(cache=True)
def adjoint_weights(K, alpha, state, LU, piv, fidx, m, grad_alpha, grad_rho, u):
    """Fill ``u`` with ``dL/dK_ij = -u_i alpha_j`` (before symmetrization), one problem.

    With free indices: ``u_F = v``, where ``M^T [v; s] = [dL/dalpha_F; dL/drho]`` on the
    forward's reduced factors. At a vertex (no free index) only rho moves, through the two
    indices of libsvm's midpoint rule: ``u = -w dL/drho`` there (``w`` = 1/2, or 1 when one
    side is missing). Shared by the batched backward and the fused layer's backward.
    """
    n = K.shape[0]
    for i in range(n):
        u[i] = 0.0
    if m > 0:
        v = np.empty(m + 1)
        for a in range(m):
            v[a] = grad_alpha[fidx[a]]
        v[m] = grad_rho
        reduced_solve_transposed(LU, piv, m, v)
        for a in range(m):
            u[fidx[a]] = v[a]
        return
    g = np.empty(n)
    update_gradient(K, alpha, g)
    _, ia, ib = vertex_rho(g, state)
    w = 0.5 if (ia >= 0 and ib >= 0) else 1.0
    if ia >= 0:
        u[ia] -= w * grad_rho
    if ib >= 0:
        u[ib] -= w * grad_rho


_backward_batch_builds = serial_and_parallel(_backward_batch, "_backward_batch")


def backward_batch(K, alpha, state, LU_all, piv_all, fidx_all, msize, grad_alpha, grad_rho) -> np.ndarray:
    """dL/dK ``(B, n, n)`` (symmetric) of a batch solved by :func:`~ogae_core.ocsvm.cpu_engine.active_set.solve_batch`."""
    return _backward_batch_builds(K, alpha, state, LU_all, piv_all, fidx_all, msize, grad_alpha, grad_rho)
