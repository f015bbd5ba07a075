"""Small dense linear algebra of the compiled OCSVM engine (numba, float64).

Pivoted LU of the bordered KKT matrix, Cholesky of ``K_FF + ridge I`` (the Schur-complement
form), and the transposed reduced solve of the backward pass, which works with either factor.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def lu_factor(A, piv):
    """In-place LU with partial pivoting, ``P A = L U``; False if singular."""
    m = A.shape[0]
    for k in range(m):
        p = k
        best = abs(A[k, k])
        for i in range(k + 1, m):
            if abs(A[i, k]) > best:
                best = abs(A[i, k])
                p = i
        piv[k] = p
        if p != k:
            for j in range(m):
                tmp = A[k, j]
                A[k, j] = A[p, j]
                A[p, j] = tmp
        if A[k, k] == 0.0:
            return False
        inv = 1.0 / A[k, k]
        for i in range(k + 1, m):
            A[i, k] *= inv
            f = A[i, k]
            if f != 0.0:
                for j in range(k + 1, m):
                    A[i, j] -= f * A[k, j]
    return True


@njit(cache=True)
def lu_solve(LU, piv, b):
    """Solve ``A x = b`` in place in ``b`` from the factors of ``A``."""
    m = LU.shape[0]
    for k in range(m):
        p = piv[k]
        if p != k:
            tmp = b[k]
            b[k] = b[p]
            b[p] = tmp
    for i in range(m):
        s = b[i]
        for j in range(i):
            s -= LU[i, j] * b[j]
        b[i] = s
    for i in range(m - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, m):
            s -= LU[i, j] * b[j]
        b[i] = s / LU[i, i]


@njit(cache=True)
def lu_solve_transposed(LU, piv, b):
    """Solve ``A^T x = b`` in place in ``b`` from the factors of ``A``."""
    m = LU.shape[0]
    for i in range(m):  # U^T y = b
        s = b[i]
        for j in range(i):
            s -= LU[j, i] * b[j]
        b[i] = s / LU[i, i]
    for i in range(m - 1, -1, -1):  # L^T w = y
        s = b[i]
        for j in range(i + 1, m):
            s -= LU[j, i] * b[j]
        b[i] = s
    for k in range(m - 1, -1, -1):  # x = P^T w
        p = piv[k]
        if p != k:
            tmp = b[k]
            b[k] = b[p]
            b[p] = tmp


@njit(cache=True)
def chol_factor(A, m):
    """In-place Cholesky ``H = L L^T`` of the lower triangle of ``A[:m, :m]``; False when a
    pivot falls below ``1e-9`` of its diagonal entry (nearly singular: the caller then uses
    the bordered LU, which is better conditioned there)."""
    for j in range(m):
        s = A[j, j]
        floor = 1e-9 * abs(s)
        for k in range(j):
            s -= A[j, k] * A[j, k]
        if not s > floor:
            return False
        d = np.sqrt(s)
        A[j, j] = d
        inv = 1.0 / d
        for i in range(j + 1, m):
            t = A[i, j]
            for k in range(j):
                t -= A[i, k] * A[j, k]
            A[i, j] = t * inv
    return True


@njit(cache=True)
def chol_solve(A, m, b):
    """Solve ``L L^T x = b`` in place in ``b[:m]`` from the factor in ``A``."""
    for i in range(m):
        s = b[i]
        for k in range(i):
            s -= A[i, k] * b[k]
        b[i] = s / A[i, i]
    for i in range(m - 1, -1, -1):
        s = b[i]
        for k in range(i + 1, m):
            s -= A[k, i] * b[k]
        b[i] = s / A[i, i]


@njit(cache=True)
def reduced_solve_transposed(LU, piv, m, v):
    """Solve the transposed reduced KKT system in place in ``v`` (length ``m + 1``).

    Two factorizations are stored (see :func:`ogae_core.ocsvm.cpu_engine.active_set.solve_sets`): the Cholesky/Schur form, marked
    by ``piv[m] == -1`` (``L`` in the lower triangle, ``H^-1 1`` in column ``m`` and
    ``1^T H^-1 1`` at ``[m, m]``), or the pivoted LU of the bordered matrix.
    """
    if piv[m] != -1:
        lu_solve_transposed(LU[: m + 1, : m + 1], piv[: m + 1], v)
        return
    # [[H, 1], [-1^T, 0]] [y; s] = [g; r]:  y = H^-1 g - s H^-1 1,  s = (r + 1^T H^-1 g) / (1^T H^-1 1)
    chol_solve(LU, m, v)
    total = 0.0
    for a in range(m):
        total += v[a]
    s = (v[m] + total) / LU[m, m]
    for a in range(m):
        v[a] -= s * LU[a, m]
    v[m] = s
