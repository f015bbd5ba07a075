"""Chunk-level fit and scoring of :class:`~ogae_core.ocsvm.LocalizedOCSVM` (one chunk of voxels at a time).

Two fits, both exact (the full problem's KKT conditions hold at the solver's tolerance):

* **full Gram** (:func:`fit_chunk_full`): the ``(B, n, n)`` kernels from one ``torch.bmm`` and
  :func:`ogae_core.ocsvm.solve_dual` on them (compiled engine on the CPU, torch engine on CUDA);
* **working set** (:func:`fit_chunk_working_set`, CPU): with small ``nu`` only a fraction of
  the points are support vectors (about a quarter at ``nu = 0.1``, ``n = 144`` on MRI patch
  codes), so each voxel starts from a working set ``S`` (the points farthest from its mean),
  computes only the kernel rows ``K[S, :]`` (``n |S| d`` multiply-adds instead of ``n^2 d``),
  solves the dual restricted to ``S`` and adds the points outside ``S`` that violate the
  KKT conditions (``(K alpha)_i < rho``), until none does: then ``alpha`` (0 outside ``S``)
  solves the full dual. Voxels whose reduced solve fails go to the full-Gram fit.

On the CPU the per-voxel standardization, squared norms and ``gamma`` come from one compiled
pass (:mod:`ogae_core.ocsvm.cpu_engine.localized_kernels`); on other devices from torch
operations (:func:`prepare_torch`). Scoring (:func:`decision_chunk`) uses only the support
vectors: their standardized rows, one ``bmm`` with the test codes, ``exp``, one ``bmm`` with the
coefficients.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ogae_core.ocsvm.solver import solve_dual
from ogae_core.ocsvm.tolerances import DEFAULT_TOL, RIDGE, SET_TOL

__all__ = ["ALGORITHMS", "check_finite", "decision_chunk", "fit_chunk", "gamma_code", "prepare_torch",
           "working_set_size"]

#: Values of ``LocalizedOCSVM(algorithm=...)``.
ALGORITHMS = ("auto", "working_set", "full_gram")
#: ``"auto"`` uses the working set on the CPU when ``nu`` is at most this (few support vectors).
WORKING_SET_MAX_NU = 0.25
_MAX_ITER = 100


def gamma_code(gamma) -> tuple[int, float]:
    """``(rule, value)`` of a gamma parameter for the compiled pass: 0 ``"scale"``, 1 ``"auto"``, 2 a number."""
    if gamma == "scale":
        return 0, 0.0
    if gamma == "auto":
        return 1, 0.0
    return 2, float(gamma)


def working_set_size(nu: float, n: int) -> int:
    """Initial working-set size: ``2 nu n + 8`` points (at least ``nu n + 1``, at most ``n``).

    Examples
    --------
    >>> working_set_size(0.1, 144), working_set_size(1 / 16, 16), working_set_size(1.0, 10)
    (37, 16, 10)
    """
    return int(min(n, max(math.ceil(nu * n) + 1, math.ceil(2 * nu * n) + 8)))


def check_finite(sq_norm: torch.Tensor, start: int, name: str) -> None:
    """Refuse NaN/infinite codes, seen in their squared norms ``(B, k)`` (no extra pass)."""
    finite = torch.isfinite(sq_norm).all(1)
    if not bool(finite.all()):
        first = start + int((~finite).nonzero()[0, 0])
        raise ValueError(f"{name} contain NaN or infinite values (or values too large to square in "
                         f"float64), first at voxel {first}")


# ------------------------------------------------------------------ preparation
def prepare_torch(z: torch.Tensor, gamma, standardize: bool, start: int) -> dict:
    """Torch version of the compiled pass (any device): standardizes float64 ``z`` ``(B, n, d)``
    in place; returns ``w`` (= ``z``), ``mean``, ``scale`` (or None), ``sqn``, ``spread``, ``gamma``."""
    B, n, d = z.shape
    out: dict = {"mean": None, "scale": None}
    if standardize:
        mean = z.mean(1)
        z.sub_(mean.unsqueeze(1))
        var = torch.linalg.vector_norm(z, dim=1).square_().div_(n)
        eps = torch.finfo(torch.float64).eps
        constant = var <= n * eps * var + (n * mean * eps) ** 2
        scale = torch.where(constant, torch.ones_like(var), var.sqrt())
        z.div_(scale.unsqueeze(1))
        out.update(mean=mean, scale=scale)
    sqn = torch.linalg.vector_norm(z, dim=2).square_()
    check_finite(sqn, start, "codes")
    centre = z.mean(1, keepdim=True)
    out["spread"] = torch.linalg.vector_norm(z - centre, dim=2).square_()
    out.update(w=z, sqn=sqn, gamma=_gamma_torch(z, gamma))
    return out


def _gamma_torch(z: torch.Tensor, gamma) -> torch.Tensor:
    B, n, d = z.shape
    if gamma == "auto":
        return torch.full((B,), 1.0 / d, dtype=torch.float64, device=z.device)
    if gamma != "scale":
        return torch.full((B,), float(gamma), dtype=torch.float64, device=z.device)
    var = z.reshape(B, n * d).var(1, unbiased=False)
    return torch.where(var > 0, 1.0 / (d * var), torch.ones_like(var))


def prepare_cpu(x: torch.Tensor, gamma, standardize: bool, start: int, w: torch.Tensor) -> dict:
    """The compiled pass on CPU codes ``x`` ``(B, n, d)`` (float32 or float64) into the float64 buffer ``w``."""
    from ogae_core.ocsvm.cpu_engine.localized_kernels import prepare_codes

    B, n, d = x.shape
    xn = np.ascontiguousarray(x.numpy())
    mean = np.empty((B, d))
    scale = np.empty((B, d))
    sqn = np.empty((B, n))
    spread = np.empty((B, n))
    gam = np.empty(B)
    rule, value = gamma_code(gamma)
    prepare_codes(xn, bool(standardize), rule, value, w.numpy(), mean, scale, sqn, spread, gam)
    out = {"w": w, "sqn": torch.from_numpy(sqn), "spread": torch.from_numpy(spread), "gamma": torch.from_numpy(gam),
           "mean": torch.from_numpy(mean) if standardize else None,
           "scale": torch.from_numpy(scale) if standardize else None}
    check_finite(out["sqn"], start, "codes")
    return out


# ----------------------------------------------------------------------- fits
def fit_chunk(x: torch.Tensor, w_buf: torch.Tensor, k_buf: torch.Tensor, nu: float, gamma, standardize: bool,
              start: int, algorithm: str) -> dict:
    """Fit the OCSVMs of one chunk of codes ``x`` ``(B, n, d)``; ``w_buf`` ``(B, n, d)`` and
    ``k_buf`` ``(B, n, n)`` float64 buffers on the device (overwritten).

    ``algorithm``: ``"working_set"`` or ``"full_gram"`` (resolved). Returns the
    libsvm-scaled coefficients ``(B, n)`` (0 off the support), offsets, gammas, squared norms
    of the (standardized) codes, standardization statistics and solver counters.
    """
    if w_buf.device.type == "cpu":
        prep = prepare_cpu(x.cpu(), gamma, standardize, start, w_buf)
    else:
        prep = prepare_torch(w_buf.copy_(x), gamma, standardize, start)
    if algorithm == "working_set" and w_buf.device.type == "cpu":
        part = _fit_working_set(prep, k_buf, nu)
    else:
        part = _fit_full(prep, k_buf, nu)
    part.update(gamma=prep["gamma"], sq_norm=prep["sqn"], mean=prep["mean"], scale=prep["scale"])
    return part


def _kernels(prep: dict, k_buf: torch.Tensor) -> torch.Tensor:
    """RBF Gram matrices ``(B, n, n)`` of the prepared codes (exactly symmetric, unit diagonal)."""
    w = prep["w"]
    G = torch.bmm(w, w.transpose(1, 2), out=k_buf)
    if G.device.type == "cpu":
        from ogae_core.ocsvm.cpu_engine.localized_kernels import self_exponent

        self_exponent(G.numpy(), prep["sqn"].numpy(), prep["gamma"].numpy())
        return G.exp_()
    sq = prep["sqn"]
    G.mul_(-2.0).add_(sq.unsqueeze(2)).add_(sq.unsqueeze(1))
    G = G.add_(G.transpose(1, 2).clone()).mul_(0.5)
    G.diagonal(dim1=1, dim2=2).zero_()
    return G.clamp_min_(0.0).mul_(-prep["gamma"].view(-1, 1, 1)).exp_()


def _fit_full(prep: dict, k_buf: torch.Tensor, nu: float) -> dict:
    n = prep["w"].shape[1]
    K = _kernels(prep, k_buf)
    if K.device.type == "cpu" and _GRAM_WS[0]:
        return _solve_gram_working_set(K, nu)
    with torch.no_grad():
        sol = solve_dual(K, nu)
    scale = nu * n  # paper scaling -> libsvm scaling
    return dict(coef=sol.alpha.to(torch.float64) * scale, offset=sol.rho.to(torch.float64) * scale,
                n_iter=int(sol.n_iter), n_fallback=int(sol.n_fallback))


_GRAM_WS = [False]


def _solve_gram_working_set(K: torch.Tensor, nu: float) -> dict:
    from ogae_core.ocsvm.cpu_engine.localized_kernels import gram_working_set

    B, n, _ = K.shape
    nu_n = nu * n
    alpha = np.zeros((B, n))
    rho = np.zeros(B)
    n_iter = np.zeros(B, dtype=np.int64)
    status = np.zeros(B, dtype=np.int64)
    residual = np.zeros(B)
    gram_working_set(K.numpy(), nu_n, working_set_size(nu, n), max(8, math.ceil(nu_n)), _MAX_ITER,
                     SET_TOL[torch.float64], RIDGE[torch.float64], DEFAULT_TOL[torch.float64], alpha, rho, n_iter,
                     status, residual)
    part = dict(coef=torch.from_numpy(alpha * nu_n), offset=torch.from_numpy(rho * nu_n), n_iter=int(n_iter.max()),
                n_fallback=0)
    failed = np.flatnonzero(status != 0)
    if len(failed):
        ft = torch.from_numpy(failed)
        with torch.no_grad():
            sol = solve_dual(K[ft].contiguous(), nu)
        part["coef"][ft] = sol.alpha.to(torch.float64) * nu_n
        part["offset"][ft] = sol.rho.to(torch.float64) * nu_n
        part["n_fallback"] = int(sol.n_fallback)
    return part


def _kernel_rows(w: torch.Tensor, sqn: torch.Tensor, gamma: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Kernel rows ``K[points[b, j], :]`` ``(B, t, n)`` of every voxel of the chunk."""
    from ogae_core.ocsvm.cpu_engine.localized_kernels import cross_exponent

    rows = w[torch.arange(w.shape[0]).unsqueeze(1), points]  # (B, t, d)
    G = torch.bmm(rows, w.transpose(1, 2))
    cross_exponent(G.numpy(), np.ascontiguousarray(sqn.gather(1, points).numpy()), sqn.numpy(), gamma.numpy())
    return G.exp_()


def _fit_working_set(prep: dict, k_buf: torch.Tensor, nu: float) -> dict:
    """The working-set fit of the module docstring (CPU)."""
    from ogae_core.ocsvm.cpu_engine.localized_kernels import add_rows, working_set_round

    w, sqn, gamma = prep["w"], prep["sqn"], prep["gamma"]
    B, n, _ = w.shape
    nu_n = nu * n
    s0 = working_set_size(nu, n)
    Kc = k_buf.numpy()  # (B, n, n): row a = K[idx[b, a], :]
    idx = np.zeros((B, n), dtype=np.int64)
    s = np.zeros(B, dtype=np.int64)
    state = np.zeros((B, n), dtype=np.int8)
    alpha = np.zeros((B, n))
    rho = np.zeros(B)
    n_iter = np.zeros(B, dtype=np.int64)
    status = np.zeros(B, dtype=np.int64)
    residual = np.zeros(B)
    new = np.zeros((B, n), dtype=np.int64)
    n_new = np.full(B, s0, dtype=np.int64)
    new[:, :s0] = torch.topk(prep["spread"], s0, dim=1).indices.numpy()
    warm = np.zeros(B, dtype=np.bool_)
    cap_add = max(8, math.ceil(nu_n))
    tol = DEFAULT_TOL[torch.float64]
    stol, ridge = SET_TOL[torch.float64], RIDGE[torch.float64]
    rounds = 0
    while True:
        voxels = np.flatnonzero(n_new > 0)
        if len(voxels) == 0:
            break
        t = int(n_new[voxels].max())
        rows = _kernel_rows(w, sqn, gamma, torch.from_numpy(np.ascontiguousarray(new[:, :t])))
        add_rows(Kc, idx, s, state, np.arange(B), rows.numpy(), new, n_new)
        active = np.zeros(B, dtype=np.int64)
        active[voxels] = 1
        # solve only the voxels that got new rows: status 0 there, 3 (skip) elsewhere
        round_status = np.where(active == 1, status, 3)
        n_new[:] = 0
        working_set_round(Kc, idx, s, nu_n, _MAX_ITER, stol, ridge, tol, alpha, state, warm, new, n_new, rho,
                          n_iter, round_status, residual, cap_add)
        status = np.where(active == 1, round_status, status)
        warm[voxels] = True
        rounds += 1
    coef = np.zeros((B, n))
    rows_b = np.repeat(np.arange(B), n).reshape(B, n)
    valid = np.arange(n)[None, :] < s[:, None]
    coef[rows_b[valid], idx[valid]] = alpha[valid]
    part = dict(coef=torch.from_numpy(coef * nu_n), offset=torch.from_numpy(rho * nu_n),
                n_iter=int(n_iter.max()), n_fallback=0, n_rounds=rounds)
    failed = np.flatnonzero(status != 0)
    if len(failed):  # the full-Gram fit (with its libsvm fallback) for these voxels
        ft = torch.from_numpy(failed)
        sub = {"w": w[ft], "sqn": sqn[ft], "gamma": gamma[ft]}
        full = _fit_full(sub, torch.empty(len(failed), n, n, dtype=torch.float64), nu)
        part["coef"][ft] = full["coef"]
        part["offset"][ft] = full["offset"]
        part["n_iter"] = max(part["n_iter"], full["n_iter"])
        part["n_fallback"] = full["n_fallback"]
    return part


# -------------------------------------------------------------------- scoring
def decision_chunk(x: torch.Tensor, sv: torch.Tensor, state: dict, start: int) -> torch.Tensor:
    """Decision values ``(B, m)`` of test codes ``x`` ``(B, m, d)`` for one chunk of voxels
    with support vectors ``sv`` ``(B, k, d)`` (padded layout) and ``state`` (the chunk's
    ``coef``, ``offset``, ``gamma``, ``mean``, ``scale`` on the device)."""
    if state["coef"].device.type == "cpu":
        return _decision_cpu(x.cpu(), sv.cpu(), state, start)
    return _decision_torch(x, sv, state, start)


def _decision_cpu(x: torch.Tensor, sv: torch.Tensor, state: dict, start: int) -> torch.Tensor:
    from ogae_core.ocsvm.cpu_engine.localized_kernels import cross_exponent, transform_rows

    B, m, d = x.shape
    coef = state["coef"]
    keep = coef > 0
    count = np.zeros(B, dtype=np.int64)
    kmax = max(1, int(keep.sum(1).max()))
    standardize = state["mean"] is not None
    mean = state["mean"].numpy() if standardize else np.zeros((1, 1))
    scale = state["scale"].numpy() if standardize else np.ones((1, 1))
    w_sv = np.empty((B, kmax, d))
    sq_sv = np.empty((B, kmax))
    transform_rows(np.ascontiguousarray(sv.numpy()), np.ascontiguousarray(keep.numpy()), standardize, mean, scale,
                   w_sv, sq_sv, count)
    w_x = np.empty((B, m, d))
    sq_x = np.empty((B, m))
    transform_rows(np.ascontiguousarray(x.numpy()), np.ones((B, m), dtype=np.bool_), standardize, mean, scale, w_x,
                   sq_x, np.zeros(B, dtype=np.int64))
    check_finite(torch.from_numpy(sq_x), start, "test codes")
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :kmax]  # support vectors first, in order
    coef_c = coef.gather(1, order).masked_fill_(torch.arange(kmax) >= torch.from_numpy(count).unsqueeze(1), 0.0)
    G = torch.bmm(torch.from_numpy(w_x), torch.from_numpy(w_sv).transpose(1, 2))
    cross_exponent(G.numpy(), sq_x, sq_sv, np.ascontiguousarray(state["gamma"].numpy()))
    K = G.exp_()
    return torch.bmm(K, coef_c.unsqueeze(2)).squeeze(2) - state["offset"].unsqueeze(1)


def _decision_torch(x: torch.Tensor, sv: torch.Tensor, state: dict, start: int) -> torch.Tensor:
    x = x.to(torch.float64)
    sv = sv.to(torch.float64)
    if state["mean"] is not None:
        mean, scale = state["mean"].unsqueeze(1), state["scale"].unsqueeze(1)
        x = (x - mean).div_(scale)
        sv = (sv - mean).div_(scale)
    x_sq = torch.linalg.vector_norm(x, dim=2).square_()
    check_finite(x_sq, start, "test codes")
    sv_sq = torch.linalg.vector_norm(sv, dim=2).square_()
    sq = torch.baddbmm(x_sq.unsqueeze(2) + sv_sq.unsqueeze(1), x, sv.transpose(1, 2), alpha=-2.0)
    K = sq.clamp_min_(0.0).mul_(-state["gamma"].view(-1, 1, 1)).exp_()
    return torch.bmm(K, state["coef"].unsqueeze(2)).squeeze(2) - state["offset"].unsqueeze(1)
