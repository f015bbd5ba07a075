"""Compiled forward and backward of the single-problem OCSVM layer on points (CPU).

``z -> K = rbf(z) -> (alpha, rho)`` and its vector-Jacobian product, each in one compiled
call: at n = 50 the arithmetic of a training step's OCSVM is tens of microseconds, so the
layer's cost is mostly the number of calls into compiled code and the arrays built between
them. The solver itself is the CPU engine of :mod:`ogae_core.ocsvm._cpu_kernels`.

Backward, derived once: with ``dL/dK = G`` from implicit differentiation (rows of the free
indices only, ``G_ij = -u_i alpha_j``; see ``implicit.py``) and ``K_ij = exp(-gamma
||z_i - z_j||^2)`` entering the loss through both ``K_ij`` and ``K_ji``::

    dL/dz_i = sum_j c_ij (z_i - z_j),   c_ij = 2 gamma K_ij (u_i alpha_j + u_j alpha_i)

At a vertex (no free index) only ``rho`` moves, through the two indices of libsvm's
midpoint rule: ``u`` is ``-w dL/drho`` on them (``w`` = 1/2, or 1 when one side is missing).

The OgAE guidance penalty builds on it (``standardize_pair``, ``penalty_forward``,
``penalty_backward``; the autograd node is ``guidance._GuidanceCpu``): decision values of the
penalized codes, ``sum_l max(0, -f_l)``, and its gradient to both halves, where the fitted
half also moves ``alpha`` and ``rho`` through :func:`layer_backward`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ogae_core.ocsvm._cpu_kernels import _kkt_residual_one, _solve_one, adjoint_weights, rbf_self


@njit(cache=True)
def layer_forward(z, gamma, nu, max_iter, stol, ridge):
    """Kernel and exact dual solution of one point set ``z`` ``(n, d)``.

    Returns ``(K, alpha, rho, state, LU, piv, fidx, m, n_iter, status, residual)``;
    ``status`` is -1 for non-finite ``z`` (nothing else is computed), otherwise as in
    ``_cpu_kernels`` (0 converged, 1 not settled, 2 singular reduced system).
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
    rho, n_iter, status, m = _solve_one(K, nu, max_iter, stol, ridge, alpha, state, LU, piv, fidx, False)
    residual = _kkt_residual_one(K, alpha, rho, 1.0 / (nu * n))
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
    return _add_weighted_differences(-(c @ z), c, z)


@njit(cache=True)
def _add_weighted_differences(out, c, x):
    """Complete ``out = base - c @ y`` into ``base + sum_j c_ij (x_i - y_j)`` in place: the
    gradient of a loss through RBF kernel entries ``k(x_i, y_j)``, with the chain factors in
    ``c`` ``(n, m)``; returns ``out``."""
    for i in range(x.shape[0]):
        s = 0.0
        for j in range(c.shape[1]):
            s += c[i, j]
        for k in range(x.shape[1]):
            out[i, k] += s * x[i, k]
    return out


@njit(cache=True)
def standardize_pair(zs, zl, eps):
    """``(zs - mean) / std`` and ``(zl - mean) / std`` with the per-column mean and
    population standard deviation (at least ``eps``) of ``zs``; also returns ``std``."""
    n, d = zs.shape
    mean = np.zeros(d)
    std = np.zeros(d)
    for i in range(n):
        for k in range(d):
            mean[k] += zs[i, k]
    mean /= n
    for i in range(n):
        for k in range(d):
            v = zs[i, k] - mean[k]
            std[k] += v * v
    for k in range(d):
        std[k] = max(np.sqrt(std[k] / n), eps)
    out_s = np.empty_like(zs)
    out_l = np.empty_like(zl)
    for i in range(n):
        for k in range(d):
            out_s[i, k] = (zs[i, k] - mean[k]) / std[k]
    for i in range(zl.shape[0]):
        for k in range(d):
            out_l[i, k] = (zl[i, k] - mean[k]) / std[k]
    return out_s, out_l, std


@njit(cache=True)
def penalty_forward(zs, zl, alpha, rho, gamma):
    """Cross kernel ``Kl = rbf(zs, zl)`` ``(n, m)`` and decision values ``f = alpha Kl - rho``."""
    n, d = zs.shape
    m = zl.shape[0]
    G = zs @ zl.T
    sq_l = np.zeros(m)
    for l in range(m):
        for k in range(d):
            sq_l[l] += zl[l, k] * zl[l, k]
    Kl = np.empty((n, m))
    f = np.full(m, -rho)
    for i in range(n):
        sq_i = 0.0
        for k in range(d):
            sq_i += zs[i, k] * zs[i, k]
        for l in range(m):
            dist = sq_i + sq_l[l] - 2.0 * G[i, l]
            if dist < 0.0:
                dist = 0.0
            v = np.exp(-gamma * dist)
            Kl[i, l] = v
            f[l] += alpha[i] * v
    return Kl, f


@njit(cache=True)
def penalty_backward(zs, zl, Kl, f, scale, want_svm, want_loss,
                     K, gamma, alpha, state, LU, piv, fidx, m):
    """Gradients of ``scale * sum_l max(0, -f_l)`` w.r.t. ``zs`` and ``zl``.

    With ``w_l = -scale [f_l < 0]`` (``dL/df_l``): ``dL/dKl_il = alpha_i w_l``, hence
    ``dL/dzs_i = sum_l c_il (zs_i - zl_l)`` and ``dL/dzl_l = sum_i c_il (zl_l - zs_i)``
    with ``c_il = -2 gamma alpha_i w_l Kl_il``; ``zs`` also moves ``alpha`` and ``rho``
    (``dL/dalpha = Kl w``, ``dL/drho = -sum w``), chained by :func:`layer_backward`.
    ``want_svm`` / ``want_loss`` skip a side whose gradient is not needed (zeros).
    """
    n, d = zs.shape
    nl = zl.shape[0]
    w = np.zeros(nl)
    for l in range(nl):
        if f[l] < 0.0:
            w[l] = -scale
    c = np.empty((n, nl))
    for i in range(n):
        for l in range(nl):
            c[i, l] = -2.0 * gamma * alpha[i] * w[l] * Kl[i, l]
    g_svm = np.zeros((n, d))
    g_loss = np.zeros((nl, d))
    if want_loss:
        g_loss = _add_weighted_differences(-(c.T @ zs), c.T, zl)
    if want_svm:
        g_svm = layer_backward(zs, K, gamma, alpha, state, LU, piv, fidx, m, Kl @ w, -w.sum()) - c @ zl
        g_svm = _add_weighted_differences(g_svm, c, zs)
    return g_svm, g_loss
