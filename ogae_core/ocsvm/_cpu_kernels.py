"""Compiled (numba) CPU engine of the OCSVM dual active-set solver.

Same algorithm as the torch engine in :mod:`ogae_core.ocsvm.solver`, but per problem
and on the *reduced* KKT system of the free set only (size ``|F| + 1``, typically a
handful at n = 50), with its own pivoted LU so the factors are kept for the backward
pass. Problems of a batch run in parallel threads. Everything is float64.

Status codes per problem: 0 converged, 1 not settled after ``max_iter``,
2 singular reduced system.
"""
from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

from ogae_core.ocsvm._cpu_linalg import (  # noqa: F401 - reduced_solve_transposed is re-exported
    _chol_factor,
    _chol_solve,
    _lu_factor,
    _lu_solve,
    reduced_solve_transposed,
)


@njit(cache=True)
def _vertex_rho(g, state):
    """libsvm midpoint of [max over upper of g, min over lower of g]; also its two indices."""
    lb = -np.inf
    ub = np.inf
    ia = -1
    ib = -1
    for i in range(g.shape[0]):
        if state[i] == 2 and g[i] > lb:
            lb = g[i]
            ia = i
        elif state[i] == 0 and g[i] < ub:
            ub = g[i]
            ib = i
    if ia >= 0 and ib >= 0:
        return 0.5 * (lb + ub), ia, ib
    if ia >= 0:
        return lb, ia, ib
    return ub, ia, ib


@njit(cache=True)
def _solve_sets(K, C, ridge, state, alpha, g, LU, piv, fidx):
    """Solve the KKT system for fixed sets (state: 0 lower, 1 free, 2 upper).

    Fills alpha, g = K alpha, the factors of the reduced system (top-left ``m+1``
    block; see :func:`reduced_solve_transposed`) and the free indices; returns
    (rho, m, ok). The Schur/Cholesky form is tried first; where ``K_FF + ridge I`` is
    not numerically positive definite (near-duplicate points), the pivoted LU of the
    bordered matrix is used.
    """
    n = K.shape[0]
    m = 0
    n_up = 0
    for i in range(n):
        if state[i] == 1:
            fidx[m] = i
            m += 1
        elif state[i] == 2:
            n_up += 1
    for i in range(n):
        alpha[i] = C if state[i] == 2 else 0.0
    if m == 0:
        _update_gradient(K, alpha, g)  # alpha is C on the upper set, 0 elsewhere
        rho, _, _ = _vertex_rho(g, state)
        return rho, 0, True
    b = np.empty(m + 1)
    _reduced_rhs(K, C, state, fidx, m, n_up, b)
    # Schur complement on H = K_FF + ridge I (Cholesky, half the work of LU): with
    # x = H^-1 b_F and w = H^-1 1, rho = (c - 1^T x) / (1^T w) and alpha_F = x + rho w.
    for a in range(m):
        fa = fidx[a]
        for c in range(a + 1):
            LU[a, c] = K[fa, fidx[c]]
        LU[a, a] += ridge
    if _chol_factor(LU, m):
        _chol_solve(LU, m, b)
        wcol = np.ones(m)
        _chol_solve(LU, m, wcol)
        sx = 0.0
        sw = 0.0
        for a in range(m):
            sx += b[a]
            sw += wcol[a]
        if sw > 0.0 and np.isfinite(sw) and np.isfinite(sx):
            rho = (b[m] - sx) / sw
            for a in range(m):
                LU[a, m] = wcol[a]
                alpha[fidx[a]] = b[a] + rho * wcol[a]
            LU[m, m] = sw
            piv[m] = -1
            _update_gradient(K, alpha, g)
            return rho, m, True
        _reduced_rhs(K, C, state, fidx, m, n_up, b)  # not usable: the bordered LU below
    A = LU[: m + 1, : m + 1]
    for a in range(m):
        fa = fidx[a]
        for c in range(m):
            A[a, c] = K[fa, fidx[c]]
        A[a, a] += ridge
        A[a, m] = -1.0
        A[m, a] = 1.0
    A[m, m] = 0.0
    if not _lu_factor(A, piv[: m + 1]):
        return 0.0, m, False
    _lu_solve(A, piv[: m + 1], b)
    for a in range(m):
        alpha[fidx[a]] = b[a]
    _update_gradient(K, alpha, g)
    return b[m], m, True


@njit(cache=True)
def _reduced_rhs(K, C, state, fidx, m, n_up, b):
    """Right-hand side of the reduced KKT system: ``-C K_FU 1`` and ``1 - C |U|``."""
    n = K.shape[0]
    for a in range(m):
        fa = fidx[a]
        s = 0.0
        for j in range(n):
            if state[j] == 2:
                s += K[fa, j]
        b[a] = -C * s
    b[m] = 1.0 - C * n_up


@njit(cache=True)
def _update_gradient(K, alpha, g):
    """``g = K alpha`` skipping the zero entries of ``alpha``."""
    n = K.shape[0]
    for i in range(n):
        s = 0.0
        for j in range(n):
            if alpha[j] != 0.0:
                s += K[i, j] * alpha[j]
        g[i] = s


@njit(cache=True)
def _initial_state(density, nu, state):
    """Initial sets from a kernel-density ranking (``density``: the row means of K).

    Small nu (< 0.25): the least dense two thirds of the points free, the rest at the lower
    bound (support vectors lie on the outside of the data; measured at n = 50–60, d = 32:
    fewer iterations, each on a smaller system, than starting with every point free, about
    2x faster). Otherwise the least dense ~nu n points at the upper bound, one free, the
    rest at the lower bound.
    """
    n = density.shape[0]
    order = np.argsort(density)
    if nu < 0.25:
        n_free = max(int(np.ceil(2.0 * n / 3.0)), int(np.ceil(nu * n)) + 1)
        for r in range(n):
            state[order[r]] = 1 if r < n_free else 0
        return
    k = nu * n
    k_floor = int(np.floor(k + 1e-9))
    n_up = k_floor - 1 if abs(k - np.round(k)) < 1e-9 else k_floor
    for r in range(n):
        i = order[r]
        if r < n_up:
            state[i] = 2
        elif r <= k_floor:
            state[i] = 1
        else:
            state[i] = 0


@njit(cache=True)
def _repair(state, g, C):
    """An empty free set with |U| C != 1 is infeasible: free one index."""
    n = state.shape[0]
    n_free = 0
    n_up = 0
    for i in range(n):
        if state[i] == 1:
            n_free += 1
        elif state[i] == 2:
            n_up += 1
    if n_free > 0:
        return
    mass = C * n_up
    if mass < 1.0 - 1e-9:
        best = -1
        for i in range(n):
            if state[i] == 0 and (best < 0 or g[i] < g[best]):
                best = i
        if best >= 0:
            state[best] = 1
    elif mass > 1.0 + 1e-9:
        best = -1
        for i in range(n):
            if state[i] == 2 and (best < 0 or g[i] > g[best]):
                best = i
        if best >= 0:
            state[best] = 1


@njit(cache=True)
def _snap_to_bounds(K, C, ridge, state, alpha, g, LU, piv, fidx, rho, m):
    """Reclassify free indices sitting on a bound (within 1e-9 C) as bound.

    At such degenerate solutions both classifications satisfy the KKT conditions;
    the bound one gives libsvm's rho rule and a well-defined derivative (a vertex
    has locally constant alpha). Kept only if the re-solved KKT residual stays below
    1e-10; otherwise the original sets are restored and re-solved.
    """
    n = K.shape[0]
    original = state.copy()
    moved = False
    for i in range(n):
        if state[i] == 1:
            if alpha[i] >= C * (1.0 - 1e-9):
                state[i] = 2
                moved = True
            elif alpha[i] <= C * 1e-9:
                state[i] = 0
                moved = True
    if not moved:
        return rho, m
    r2, m2, ok = _solve_sets(K, C, ridge, state, alpha, g, LU, piv, fidx)
    if ok and _kkt_residual_one(K, alpha, r2, C) <= 1e-10:
        return r2, m2
    for i in range(n):
        state[i] = original[i]
    r3, m3, _ = _solve_sets(K, C, ridge, state, alpha, g, LU, piv, fidx)
    return r3, m3


@njit(cache=True)
def _solve_one(K, nu, max_iter, stol, ridge, alpha, state, LU, piv, fidx, warm):
    """Active-set iteration for one problem; returns (rho, n_iter, status, m).

    ``warm``: start from the sets in ``state`` instead of the density guess.
    """
    n = K.shape[0]
    C = 1.0 / (nu * n)
    g = np.empty(n)
    new_state = np.empty(n, dtype=np.int8)
    for i in range(n):
        g[i] = K[i].mean()
    if not warm:
        _initial_state(g, nu, state)
    # Block exchanges while the number of infeasible indices keeps falling; once it
    # has failed to reach a new low `patience` times, single exchanges of the most
    # violating index from then on (a safeguard in the spirit of Judice & Pires' block
    # principal pivoting; returning to block exchanges, or Murty's least-index rule,
    # needed many more iterations on near-singular 2-D kernels in our measurements).
    patience = 3
    best = n + 1
    fails = 0
    rho = 0.0
    m = 0
    for it in range(1, max_iter + 1):
        _repair(state, g, C)
        rho, m, ok = _solve_sets(K, C, ridge, state, alpha, g, LU, piv, fidx)
        if not ok:
            return rho, it, 2, m
        changed = 0
        worst = 0.0
        worst_i = -1
        for i in range(n):
            lam = g[i] - rho
            s = state[i]
            ns = s
            viol = 0.0
            if s == 0 and lam < -stol:
                ns = 1
                viol = -lam
            elif s == 2 and lam > stol:
                ns = 1
                viol = lam
            elif s == 1 and alpha[i] <= stol * C:
                ns = 0
                viol = -alpha[i] / C
            elif s == 1 and alpha[i] >= C * (1.0 + stol):
                ns = 2
                viol = alpha[i] / C - 1.0
            new_state[i] = ns
            if ns != s:
                changed += 1
                if viol >= worst:
                    worst = viol
                    worst_i = i
        if changed == 0:
            rho, m = _snap_to_bounds(K, C, ridge, state, alpha, g, LU, piv, fidx, rho, m)
            return rho, it, 0, m
        if changed < best:
            best = changed
        else:
            fails += 1
        if fails >= patience:
            state[worst_i] = new_state[worst_i]
        else:
            for i in range(n):
                state[i] = new_state[i]
    return rho, max_iter, 1, m


@njit(cache=True)
def _kkt_residual_one(K, alpha, rho, C):
    """Same definition as :func:`ogae_core.ocsvm.solver.kkt_residual` (float64)."""
    n = K.shape[0]
    eps = 1e-12 * C
    worst = 0.0
    total = 0.0
    for i in range(n):
        a = alpha[i]
        total += a
        s = 0.0
        for j in range(n):
            s += K[i, j] * alpha[j]
        lam = s - rho
        lower = a <= eps
        upper = a >= C - eps
        if lower and not upper:
            r = max(0.0, -lam)
        elif upper and not lower:
            r = max(0.0, lam)
        elif not lower and not upper:
            r = abs(lam)
        else:
            r = 0.0
        r = max(r, -a, a - C)
        if not r <= worst:  # also propagates nan
            worst = r
    return max(worst, abs(total - 1.0))


@njit(cache=True)
def check_values(K):
    """(all finite, max |K - K^T|, max |K|) over a batch, in one pass."""
    B, n, _ = K.shape
    asym = 0.0
    scale = 0.0
    for b in range(B):
        for i in range(n):
            for j in range(n):
                v = K[b, i, j]
                if not np.isfinite(v):
                    return False, 0.0, 0.0
                a = abs(v)
                if a > scale:
                    scale = a
                if j > i:
                    d = abs(v - K[b, j, i])
                    if d > asym:
                        asym = d
    return True, asym, scale


def _solve_batch(K, nu, max_iter, stol, ridge, keep_factors, state, warm):
    """Solve a batch ``(B, n, n)``; returns alpha, rho, state, n_iter, status, LU, piv, fidx, m, residual.

    ``state`` (int8, ``(B, n)``; 0 lower, 1 free, 2 upper) is the warm start when
    ``warm`` is true and is overwritten with the final sets.
    """
    B, n, _ = K.shape
    alpha = np.zeros((B, n))
    rho = np.zeros(B)
    n_iter = np.zeros(B, dtype=np.int64)
    status = np.zeros(B, dtype=np.int64)
    msize = np.zeros(B, dtype=np.int64)
    nk = n + 1 if keep_factors else 1
    LU_all = np.zeros((B if keep_factors else 1, nk, nk))
    piv_all = np.zeros((B if keep_factors else 1, nk), dtype=np.int64)
    fidx_all = np.zeros((B, n), dtype=np.int64)
    residual = np.zeros(B)
    C = 1.0 / (nu * n)
    for b in prange(B):
        LU = np.zeros((n + 1, n + 1))
        piv = np.zeros(n + 1, dtype=np.int64)
        r, it, st, m = _solve_one(K[b], nu, max_iter, stol, ridge, alpha[b], state[b], LU, piv, fidx_all[b], warm)
        rho[b] = r
        n_iter[b] = it
        status[b] = st
        msize[b] = m
        residual[b] = _kkt_residual_one(K[b], alpha[b], r, C)
        if keep_factors:
            LU_all[b] = LU
            piv_all[b] = piv
    return alpha, rho, state, n_iter, status, LU_all, piv_all, fidx_all, msize, residual


def _backward_batch(K, alpha, state, LU_all, piv_all, fidx_all, msize, grad_alpha, grad_rho):
    """dL/dK by implicit differentiation (see ``implicit.py``), symmetrized: the dual
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
    _update_gradient(K, alpha, g)
    _, ia, ib = _vertex_rho(g, state)
    w = 0.5 if (ia >= 0 and ib >= 0) else 1.0
    if ia >= 0:
        u[ia] -= w * grad_rho
    if ib >= 0:
        u[ib] -= w * grad_rho


@njit(cache=True)
def rbf_self(z, gamma, out):
    """``out = exp(-gamma ||z_i - z_j||^2)`` for one point set (Gram matrix by BLAS;
    symmetric, unit diagonal)."""
    n = z.shape[0]
    G = z @ z.T
    for i in range(n):
        out[i, i] = 1.0
        for j in range(i + 1, n):
            dist = G[i, i] + G[j, j] - 2.0 * G[i, j]
            if dist < 0.0:
                dist = 0.0
            v = np.exp(-gamma * dist)
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


def _renamed(fn, name: str):
    """A copy of ``fn`` under another qualified name: numba's on-disk cache is keyed by
    the function's name and line, so the serial and the parallel build of one function
    would otherwise overwrite (and load) each other's machine code."""
    clone = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    clone.__qualname__ = name
    return clone


# Threads pay off for large batches only; a single problem runs the serial build.
_solve_parallel = njit(cache=True, parallel=True)(_renamed(_solve_batch, "_solve_batch_parallel"))
_solve_serial = njit(cache=True)(_renamed(_solve_batch, "_solve_batch_serial"))
_backward_parallel = njit(cache=True, parallel=True)(_renamed(_backward_batch, "_backward_batch_parallel"))
_backward_serial = njit(cache=True)(_renamed(_backward_batch, "_backward_batch_serial"))
PARALLEL_MIN_BATCH = 8


def solve_batch(K, nu, max_iter, stol, ridge, keep_factors, state, warm):
    """Solve a batch ``(B, n, n)``; see ``_solve_batch``."""
    fn = _solve_parallel if K.shape[0] >= PARALLEL_MIN_BATCH else _solve_serial
    return fn(K, nu, max_iter, stol, ridge, keep_factors, state, warm)


def backward_batch(K, alpha, state, LU_all, piv_all, fidx_all, msize, grad_alpha, grad_rho):
    """dL/dK (symmetric); see ``_backward_batch``."""
    fn = _backward_parallel if K.shape[0] >= PARALLEL_MIN_BATCH else _backward_serial
    return fn(K, alpha, state, LU_all, piv_all, fidx_all, msize, grad_alpha, grad_rho)
