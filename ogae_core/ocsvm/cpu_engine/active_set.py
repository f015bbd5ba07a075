"""Forward of the compiled CPU engine (numba): the OCSVM dual active-set solver.

Same algorithm as the torch engine (:mod:`ogae_core.ocsvm.torch_engine.active_set`), but per problem
and on the *reduced* KKT system of the free set only (size ``|F| + 1``, typically a
handful at n = 50), with its own pivoted LU so the factors are kept for the backward
pass. Problems of a batch run in parallel threads. Everything is float64.

Status codes per problem: 0 converged, 1 not settled after ``max_iter``,
2 singular reduced system. :func:`solve_batch` is the entry point (a :class:`BatchSolution`);
:func:`solve_one` and :func:`kkt_residual_one` also serve the layer on points
(:mod:`ogae_core.ocsvm.cpu_engine.layer`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from ogae_core.ocsvm.cpu_engine.builds import serial_and_parallel
from ogae_core.ocsvm.cpu_engine.linalg import chol_factor, chol_solve, lu_factor, lu_solve


@njit(cache=True)
def vertex_rho(g, state):
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
def solve_sets(K, C, ridge, state, alpha, g, LU, piv, fidx):
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
        update_gradient(K, alpha, g)  # alpha is C on the upper set, 0 elsewhere
        rho, _, _ = vertex_rho(g, state)
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
    if chol_factor(LU, m):
        chol_solve(LU, m, b)
        wcol = np.ones(m)
        chol_solve(LU, m, wcol)
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
            update_gradient(K, alpha, g)
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
    if not lu_factor(A, piv[: m + 1]):
        return 0.0, m, False
    lu_solve(A, piv[: m + 1], b)
    for a in range(m):
        alpha[fidx[a]] = b[a]
    update_gradient(K, alpha, g)
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
def update_gradient(K, alpha, g):
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
    r2, m2, ok = solve_sets(K, C, ridge, state, alpha, g, LU, piv, fidx)
    if ok and kkt_residual_one(K, alpha, r2, C) <= 1e-10:
        return r2, m2
    for i in range(n):
        state[i] = original[i]
    r3, m3, _ = solve_sets(K, C, ridge, state, alpha, g, LU, piv, fidx)
    return r3, m3


@njit(cache=True)
def solve_one(K, nu, max_iter, stol, ridge, alpha, state, LU, piv, fidx, warm):
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
        rho, m, ok = solve_sets(K, C, ridge, state, alpha, g, LU, piv, fidx)
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
def kkt_residual_one(K, alpha, rho, C):
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
        r, it, st, m = solve_one(K[b], nu, max_iter, stol, ridge, alpha[b], state[b], LU, piv, fidx_all[b], warm)
        rho[b] = r
        n_iter[b] = it
        status[b] = st
        msize[b] = m
        residual[b] = kkt_residual_one(K[b], alpha[b], r, C)
        if keep_factors:
            LU_all[b] = LU
            piv_all[b] = piv
    return alpha, rho, state, n_iter, status, LU_all, piv_all, fidx_all, msize, residual




class BatchSolution(NamedTuple):
    """Result of :func:`solve_batch` (NumPy arrays, one row per problem).

    ``state``: final sets (0 lower, 1 free, 2 upper); ``status``: 0 converged, 1 not
    settled, 2 singular reduced system; ``LU``, ``piv``, ``fidx``, ``m``: the factors of
    the reduced KKT system, the free indices and their number (the backward pass's input;
    ``LU``/``piv`` hold one dummy row unless ``keep_factors``); ``residual``: KKT residual.
    """

    alpha: np.ndarray
    rho: np.ndarray
    state: np.ndarray
    n_iter: np.ndarray
    status: np.ndarray
    LU: np.ndarray
    piv: np.ndarray
    fidx: np.ndarray
    m: np.ndarray
    residual: np.ndarray


_solve_batch_builds = serial_and_parallel(_solve_batch, "_solve_batch")


def solve_batch(K, nu, max_iter, stol, ridge, keep_factors, state, warm) -> BatchSolution:
    """Solve a batch ``(B, n, n)`` (float64, C-contiguous) of OCSVM duals; threads for large batches.

    ``state`` (int8, ``(B, n)``; 0 lower, 1 free, 2 upper) is the warm start when
    ``warm`` is true and is overwritten with the final sets.
    """
    return BatchSolution(*_solve_batch_builds(K, nu, max_iter, stol, ridge, keep_factors, state, warm))
