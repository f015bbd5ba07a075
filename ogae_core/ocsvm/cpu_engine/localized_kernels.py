"""Compiled helpers of the batched localized OCSVMs on the CPU (numba, float64).

Used by :mod:`ogae_core.ocsvm.localized_fit`; every function works on a batch of voxels,
one voxel per thread (``prange``), and never changes a result with the thread count.

* :func:`prepare_codes` -- float32/float64 codes ``(B, n, d)`` to float64, standardized per
  voxel and feature (``StandardScaler``'s statistics), their squared norms and each voxel's
  ``gamma``;
* :func:`transform_rows` -- the same standardization with given statistics, for test codes
  or for the support vectors only (gathered, compacted to the left);
* :func:`cross_exponent` -- ``-gamma max(0, |x|^2 + |y|^2 - 2 x.y)`` from a BLAS product, in
  place (the caller takes ``exp`` with torch, which is vectorized);
* :func:`fit_exponents` -- the fit's whole pass before ``exp``: :func:`prepare_codes` of the
  training codes, the same transform of optional test codes stacked below them, the dot
  products of :func:`gram_lower` (the lower triangle of ``[train; test] [train; test]^T``
  without the test-by-test block: the Gram matrix and the test cross products at once, half
  the flops of a general product) and the exponents of both blocks;
* :func:`gram_working_set` -- the working-set solve of full kernels: each voxel's dual on
  its working set ``S`` (the active-set solver :func:`~ogae_core.ocsvm.cpu_engine.active_set.solve_one`
  on ``K_SS``), the gradient ``K[:, S] alpha_S`` on every point, the points outside ``S``
  that violate the KKT conditions added, until none.

Sums over features use reassociating (vectorized) float arithmetic, and so does the
working-set solve (its own build of the active-set solver, :func:`~ogae_core.ocsvm.cpu_engine.builds.fastmath_chain`):
results equal the sequential arithmetic's to rounding, which the 1e-6 agreement with
scikit-learn does not see.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ogae_core.ocsvm.cpu_engine.active_set import kkt_residual_one, solve_one, vertex_rho
from ogae_core.ocsvm.cpu_engine.builds import fastmath_chain, serial_and_parallel

__all__ = ["cross_exponent", "fit_exponents", "gram_lower", "gram_working_set", "prepare_codes", "transform_rows"]

_FAST = {"reassoc", "contract"}  # vectorized sums; no assumption on NaN/inf (the finiteness checks rely on them)


@njit(cache=True, fastmath=_FAST)
def _row_sq_norms(w, out):
    n, d = w.shape
    for i in range(n):
        s = 0.0
        for f in range(d):
            s += w[i, f] * w[i, f]
        out[i] = s


@njit(cache=True, fastmath=_FAST)
def _prepare_one(x, standardize, rule, gamma_value, w, mean, scale, sqn):
    """One voxel of :func:`prepare_codes`; returns its gamma."""
    n, d = x.shape
    eps = np.finfo(np.float64).eps
    mu = np.zeros(d)
    for i in range(n):
        for f in range(d):
            mu[f] += x[i, f]
    for f in range(d):
        mu[f] /= n
    if standardize:
        var = np.zeros(d)
        for i in range(n):
            for f in range(d):
                t = x[i, f] - mu[f]
                w[i, f] = t
                var[f] += t * t
        inv = np.empty(d)
        for f in range(d):
            v = var[f] / n
            constant = v <= n * eps * v + (n * mu[f] * eps) ** 2  # StandardScaler's constant features
            s = 1.0 if constant else np.sqrt(v)
            mean[f] = mu[f]
            scale[f] = s
            inv[f] = 1.0 / s
            mu[f] = 0.0
        for i in range(n):
            for f in range(d):
                t = w[i, f] * inv[f]
                w[i, f] = t
                mu[f] += t
        for f in range(d):
            mu[f] /= n
    else:
        for i in range(n):
            for f in range(d):
                w[i, f] = x[i, f]
    # squared norms and the variance of all n d entries
    mean_all = 0.0
    for f in range(d):
        mean_all += mu[f]
    mean_all /= d
    total = 0.0
    for i in range(n):
        q = 0.0
        a = 0.0
        for f in range(d):
            v = w[i, f]
            q += v * v
            u = v - mean_all
            a += u * u
        sqn[i] = q
        total += a
    if rule == 0:  # "scale": 1 / (d Var(X)), scikit-learn's X.var() over all entries
        var_all = total / (n * d)
        return 1.0 / (d * var_all) if var_all > 0.0 else 1.0
    if rule == 1:  # "auto"
        return 1.0 / d
    return gamma_value


def _prepare_codes(x, standardize, rule, gamma_value, w, mean, scale, sqn, gamma):
    for b in prange(x.shape[0]):
        gamma[b] = _prepare_one(x[b], standardize, rule, gamma_value, w[b], mean[b], scale[b], sqn[b])


_prepare_builds = serial_and_parallel(_prepare_codes, "_localized_prepare_codes")


def prepare_codes(x, standardize, rule, gamma_value, w, mean, scale, sqn, gamma):
    """Fill ``w`` ``(B, n, d)`` float64 with the (standardized) codes ``x`` (float32 or float64).

    ``mean``, ``scale`` ``(B, d)``: ``StandardScaler``'s statistics (written only when
    ``standardize``); ``sqn`` ``(B, n)``: squared norms of the rows of ``w``; ``gamma`` ``(B,)``: ``rule`` 0 ``"scale"``,
    1 ``"auto"``, 2 the number ``gamma_value``. Non-finite codes give non-finite ``sqn``.
    """
    _prepare_builds(x, standardize, rule, gamma_value, w, mean, scale, sqn, gamma)


def _transform_rows(x, keep, standardize, mean, scale, w, sqn, count):
    B, k, d = x.shape
    for b in prange(B):
        r = 0
        for j in range(k):
            if not keep[b, j]:
                continue
            for f in range(d):
                if standardize:
                    w[b, r, f] = (x[b, j, f] - mean[b, f]) / scale[b, f]
                else:
                    w[b, r, f] = x[b, j, f]
            r += 1
        count[b] = r
        for j in range(r, w.shape[1]):
            for f in range(d):
                w[b, j, f] = 0.0
        _row_sq_norms(w[b], sqn[b])


_transform_builds = serial_and_parallel(_transform_rows, "_localized_transform_rows")


def transform_rows(x, keep, standardize, mean, scale, w, sqn, count):
    """Standardize the rows of ``x`` ``(B, k, d)`` with ``keep[b, j]`` true into ``w``
    ``(B, k', d)`` float64, compacted to the left (``count[b]`` rows, zero rows after them),
    and their squared norms into ``sqn`` ``(B, k')``."""
    _transform_builds(x, keep, standardize, mean, scale, w, sqn, count)


def _cross_exponent(G, sq_rows, sq_cols, gamma):
    B, r, c = G.shape
    for b in prange(B):
        g = gamma[b]
        for i in range(r):
            for j in range(c):
                dist = sq_rows[b, i] + sq_cols[b, j] - 2.0 * G[b, i, j]
                G[b, i, j] = -g * dist if dist > 0.0 else 0.0


_cross_builds = serial_and_parallel(_cross_exponent, "_localized_cross_exponent")


def cross_exponent(G, sq_rows, sq_cols, gamma):
    """``G`` ``(B, r, c)`` (dot products of rows and columns) becomes
    ``-gamma max(0, sq_rows_i + sq_cols_j - 2 G_ij)`` in place."""
    _cross_builds(G, sq_rows, sq_cols, gamma)


@njit(cache=True)
def _round_one(Kc, idx, s, nu_n, max_iter, stol, ridge, tol, alpha, state, warm, new, cap_add):
    """One voxel of :func:`working_set_round`; returns (rho, iterations, status, residual, n_new)."""
    n = Kc.shape[1]
    C = 1.0 / nu_n
    Kss = np.empty((s, s))
    for a in range(s):
        for c in range(a + 1):
            v = Kc[a, idx[c]]  # row a of Kc is K[idx[a], :]; one of the two BLAS values, both halves
            Kss[a, c] = v
            Kss[c, a] = v
        Kss[a, a] = 1.0
    LU = np.zeros((s + 1, s + 1))
    piv = np.zeros(s + 1, dtype=np.int64)
    fidx = np.zeros(s, dtype=np.int64)
    a_s = np.zeros(s)
    st = state[:s].copy()
    rho, it, status, m = solve_one(Kss, nu_n / s, max_iter, stol, ridge, a_s, st, LU, piv, fidx, warm)
    residual = kkt_residual_one(Kss, a_s, rho, C)
    for a in range(s):
        alpha[a] = a_s[a]
        state[a] = st[a]
    if status != 0 or not residual <= tol:
        return rho, it, max(status, 1), residual, 0
    # gradient on every point: g = K[:, S] alpha_S, from the rows of Kc
    g = np.zeros(n)
    for a in range(s):
        if a_s[a] != 0.0:
            for i in range(n):
                g[i] += a_s[a] * Kc[a, i]
    inset = np.zeros(n, dtype=np.bool_)
    for a in range(s):
        inset[idx[a]] = True
    if m == 0:  # no free support vector: libsvm's midpoint over every point (outside S: lower bound)
        full_state = np.zeros(n, dtype=np.int8)
        for a in range(s):
            full_state[idx[a]] = st[a]
        rho, _, _ = vertex_rho(g, full_state)
    worst = 0.0
    cand = np.empty(n, dtype=np.int64)
    viol = np.empty(n)
    k = 0
    for i in range(n):
        if not inset[i]:
            lam = g[i] - rho
            if lam < -stol:
                cand[k] = i
                viol[k] = lam
                k += 1
                if -lam > worst:
                    worst = -lam
    if k > cap_add:  # the most violating first
        order = np.argsort(viol[:k])
        for r in range(cap_add):
            new[r] = cand[order[r]]
        k = cap_add
    else:
        for r in range(k):
            new[r] = cand[r]
    return rho, it, 0, max(residual, worst), k


@njit(cache=True)
def _whole_one(K, nu_n, max_iter, stol, ridge, tol, alpha):
    """The active-set solve of one voxel's whole dual (no working-set copies of ``K``)."""
    n = K.shape[0]
    LU = np.zeros((n + 1, n + 1))
    piv = np.zeros(n + 1, dtype=np.int64)
    fidx = np.zeros(n, dtype=np.int64)
    state = np.zeros(n, dtype=np.int8)
    rho, it, status, _ = solve_one(K, nu_n / n, max_iter, stol, ridge, alpha, state, LU, piv, fidx, False)
    residual = kkt_residual_one(K, alpha, rho, 1.0 / nu_n)
    if status == 0 and not residual <= tol:
        status = 1
    return rho, it, status, residual


@njit(cache=True)
def _gram_working_set_one(K, nu_n, s0, cap_add, max_iter, stol, ridge, tol, alpha):
    """One voxel of :func:`gram_working_set`; returns (rho, iterations, status, residual)."""
    n = K.shape[0]
    if s0 >= n:  # the working set is every point (large nu n): the full dual, on K itself
        return _whole_one(K, nu_n, max_iter, stol, ridge, tol, alpha)
    density = np.empty(n)
    for i in range(n):
        density[i] = K[i].sum()
    order = np.argsort(density)  # least dense first: support vectors lie on the outside of the data
    Kc = np.empty((n, n))
    idx = np.zeros(n, dtype=np.int64)
    state = np.zeros(n, dtype=np.int8)
    a_s = np.zeros(n)
    new = np.empty(n, dtype=np.int64)
    for j in range(s0):
        new[j] = order[j]
    k = s0
    s = 0
    warm = False
    total_it = 0
    rho = 0.0
    residual = 0.0
    while k > 0:
        for j in range(k):
            Kc[s + j, :] = K[new[j], :]
            idx[s + j] = new[j]
            state[s + j] = 1
        s += k
        rho, it, status, residual, k = _round_one(Kc, idx, s, nu_n, max_iter, stol, ridge, tol, a_s, state, warm,
                                                  new, cap_add)
        total_it += it
        warm = True
        if status != 0:
            return rho, total_it, status, residual
    for i in range(n):
        alpha[i] = 0.0
    for a in range(s):
        alpha[idx[a]] = a_s[a]
    return rho, total_it, 0, residual


#: The solve of one voxel with its whole call chain (active-set solver, factorizations) built
#: with reassociating, fused float arithmetic: ~20 % faster at n = 144; the shared engine's
#: own builds (guidance, final OCSVM) are not changed.
_gram_working_set_one_fast = fastmath_chain(_gram_working_set_one, _FAST)


def _gram_working_set(K, nu_n, s0, cap_add, max_iter, stol, ridge, tol, alpha, rho, n_iter, status, residual):
    for b in prange(K.shape[0]):
        r, it, st, res = _gram_working_set_one_fast(K[b], nu_n, s0, cap_add, max_iter, stol, ridge, tol, alpha[b])
        rho[b] = r
        n_iter[b] = it
        status[b] = st
        residual[b] = res


_gram_ws_builds = serial_and_parallel(_gram_working_set, "_localized_gram_working_set")


def gram_working_set(K, nu_n, s0, cap_add, max_iter, stol, ridge, tol, alpha, rho, n_iter, status, residual):
    """Working-set solve of a batch of full kernel matrices ``K`` ``(B, n, n)`` (box ``1 / nu_n``).

    Each voxel starts from its ``s0`` least dense points (row sums of ``K``), solves the dual
    on the working set and adds at most ``cap_add`` violators per round (as
    :func:`_round_one`) until none (with ``s0 >= n``: one solve of the whole dual on ``K``,
    without the working set's copies): ``alpha`` ``(B, n)`` (paper scaling), ``rho``,
    ``n_iter``, ``status`` (0 solved, else the reduced solve failed) and ``residual`` (KKT
    residual of the full problem).
    """
    _gram_ws_builds(K, nu_n, s0, cap_add, max_iter, stol, ridge, tol, alpha, rho, n_iter, status, residual)


# ------------------------------------------------------------------ fused fit pass
@njit(cache=True, fastmath=_FAST)
def _dots_4x2(w, i, j, G):
    """``G[i + a, j + c] = w[i + a] . w[j + c]`` for ``a < 4``, ``c < 2`` (eight sums in
    registers, each vectorized over the features: the loads of one feature serve 8 products)."""
    d = w.shape[1]
    a0, a1, a2, a3 = w[i], w[i + 1], w[i + 2], w[i + 3]
    b0, b1 = w[j], w[j + 1]
    s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = 0.0
    for f in range(d):
        y0 = b0[f]
        y1 = b1[f]
        x = a0[f]
        s00 += x * y0
        s01 += x * y1
        x = a1[f]
        s10 += x * y0
        s11 += x * y1
        x = a2[f]
        s20 += x * y0
        s21 += x * y1
        x = a3[f]
        s30 += x * y0
        s31 += x * y1
    G[i, j] = s00
    G[i, j + 1] = s01
    G[i + 1, j] = s10
    G[i + 1, j + 1] = s11
    G[i + 2, j] = s20
    G[i + 2, j + 1] = s21
    G[i + 3, j] = s30
    G[i + 3, j + 1] = s31


@njit(cache=True, fastmath=_FAST)
def gram_lower(w, n, G):
    """Dot products ``G[i, j] = w_i . w_j`` of the rows of ``w`` ``(r, d)`` for ``j <= i`` and
    ``j < n`` (at least; a few entries above the diagonal or right of column ``n`` are written
    too), in blocks of 4 rows by 2 columns: about 1.2x faster than OpenBLAS's ``dsyrk`` on
    ``72 x 400`` (and than MKL's general product of the ``60 x 60`` block alone).

    Examples
    --------
    >>> w = np.arange(18.0).reshape(6, 3)
    >>> G = np.zeros((6, 6))
    >>> gram_lower(w, 6, G)
    >>> bool(np.array_equal(np.tril(G), np.tril(w @ w.T)))
    True
    """
    r = w.shape[0]
    cols = n + (n & 1)  # even, >= n: the test rows (i >= n, so r > n and cols <= r) need columns < n only
    i = 0
    while i + 4 <= r:
        top = i + 4 if i < n else cols
        for j in range(0, top, 2):
            _dots_4x2(w, i, j, G)
        i += 4
    for a in range(i, r):  # the last r mod 4 rows
        for j in range(a + 1 if a < n else n):
            G[a, j] = _dot(w[a], w[j])


@njit(cache=True, fastmath=_FAST)
def _dot(x, y):
    s = 0.0
    for f in range(x.shape[0]):
        s += x[f] * y[f]
    return s


@njit(cache=True, fastmath=_FAST)
def _fit_one(x, t, standardize, rule, gamma_value, w, G, mean, scale, sqn):
    """One voxel of :func:`fit_exponents`; returns its gamma."""
    n, d = x.shape
    r = w.shape[0]
    g = _prepare_one(x, standardize, rule, gamma_value, w[:n], mean, scale, sqn[:n])
    for i in range(n, r):  # test rows: the training codes' transform
        q = 0.0
        for f in range(d):
            v = (t[i - n, f] - mean[f]) / scale[f] if standardize else t[i - n, f] * 1.0
            w[i, f] = v
            q += v * v
        sqn[i] = q
    gram_lower(w, n, G)
    for i in range(r):
        top = min(i, n)
        for j in range(top):
            dist = sqn[i] + sqn[j] - 2.0 * G[i, j]
            v = -g * dist if dist > 0.0 else 0.0
            G[i, j] = v
            G[j, i] = v
        for j in range(top, r):
            G[i, j] = 0.0
    return g


def _fit_exponents(x, t, standardize, rule, gamma_value, G, mean, scale, sqn, gamma, n_blocks):
    B, n, d = x.shape
    r = G.shape[1]
    for c in prange(n_blocks):  # one scratch per block of voxels: the codes stay in the core's cache
        w = np.empty((r, d))
        for b in range(c * B // n_blocks, (c + 1) * B // n_blocks):
            gamma[b] = _fit_one(x[b], t[b], standardize, rule, gamma_value, w, G[b], mean[b], scale[b], sqn[b])


_fit_builds = serial_and_parallel(_fit_exponents, "_localized_fit_exponents")


def fit_exponents(x, t, standardize, rule, gamma_value, G, mean, scale, sqn, gamma, n_blocks=1):
    """The fit's pass before ``exp`` on training codes ``x`` ``(B, n, d)`` and test codes ``t``
    ``(B, m, d)`` (``m`` may be 0), float32 or float64, C-contiguous.

    Each voxel's codes, converted to float64 and (with ``standardize``) standardized, training
    rows first, go to a scratch array of ``n_blocks`` (one per thread: contiguous blocks of
    voxels, results independent of it). ``mean``, ``scale``, ``gamma`` as in
    :func:`prepare_codes` (from the training rows only); ``sqn`` ``(B, n + m)`` the squared
    norms of the transformed rows; ``G`` ``(B, n + m, n + m)``, C-contiguous float64, the
    exponents ``-gamma max(0, |w_i|^2 + |w_j|^2 - 2 w_i.w_j)`` for every pair with a training
    row (exactly symmetric, zero diagonal) and 0 on the test-by-test block.

    Examples
    --------
    >>> x = np.array([[[0.0, 0.0], [1.0, 0.0]]])
    >>> t = np.array([[[0.0, 2.0]]])
    >>> G = np.empty((1, 3, 3))
    >>> mean, scale, sqn, gamma = np.empty((1, 2)), np.empty((1, 2)), np.empty((1, 3)), np.empty(1)
    >>> fit_exponents(x, t, False, 2, 0.5, G, mean, scale, sqn, gamma)
    >>> G[0].tolist()  # -0.5 |w_i - w_j|^2
    [[0.0, -0.5, -2.0], [-0.5, 0.0, -2.5], [-2.0, -2.5, 0.0]]
    """
    _fit_builds(x, t, standardize, rule, gamma_value, G, mean, scale, sqn, gamma, max(1, min(int(n_blocks), len(x))))
