"""The RBF kernel of the compiled CPU engine (numba, float64), and its gradient helper.

Every kernel entry of the engine is :func:`rbf_entry`: ``exp(-gamma d)`` with the squared
distance ``d = |x|^2 + |y|^2 - 2 x.y`` clamped at zero, the dot products from one BLAS
product. :func:`rbf_self` (one point set; symmetric, unit diagonal), :func:`rbf_batch`
(a batch of point sets, threads) and :func:`rbf_cross` (two point sets) differ only in
where the squared norms come from.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["add_weighted_differences", "rbf_batch", "rbf_cross", "rbf_entry", "rbf_self"]


@njit(cache=True)
def rbf_entry(sq_x, sq_y, dot, gamma):
    """``exp(-gamma max(0, sq_x + sq_y - 2 dot))``: one kernel entry from the squared norms and the dot product."""
    dist = sq_x + sq_y - 2.0 * dot
    if dist < 0.0:
        dist = 0.0
    return np.exp(-gamma * dist)


@njit(cache=True)
def rbf_self(z, gamma, out):
    """``out = exp(-gamma ||z_i - z_j||^2)`` for one point set (Gram matrix by BLAS;
    symmetric, unit diagonal)."""
    n = z.shape[0]
    G = z @ z.T
    for i in range(n):
        out[i, i] = 1.0
        for j in range(i + 1, n):
            v = rbf_entry(G[i, i], G[j, j], G[i, j], gamma)
            out[i, j] = v
            out[j, i] = v


@njit(cache=True, parallel=True)
def rbf_batch(Z, gammas):
    """RBF kernels of a batch of point sets ``(B, n, d)`` with one gamma per problem."""
    B, n, d = Z.shape
    out = np.empty((B, n, n))
    for b in prange(B):
        rbf_self(Z[b], gammas[b], out[b])
    return out


@njit(cache=True)
def rbf_cross(x, y, gamma):
    """Cross kernel ``K_il = exp(-gamma ||x_i - y_l||^2)``, ``(n, m)``."""
    n, d = x.shape
    m = y.shape[0]
    G = x @ y.T
    sq_y = np.zeros(m)
    for l in range(m):
        for k in range(d):
            sq_y[l] += y[l, k] * y[l, k]
    out = np.empty((n, m))
    for i in range(n):
        sq_i = 0.0
        for k in range(d):
            sq_i += x[i, k] * x[i, k]
        for l in range(m):
            out[i, l] = rbf_entry(sq_i, sq_y[l], G[i, l], gamma)
    return out


@njit(cache=True)
def add_weighted_differences(out, c, x):
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
