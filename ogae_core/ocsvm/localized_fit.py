"""Chunk-level fit and scoring of :class:`~ogae_core.ocsvm.LocalizedOCSVM` (one chunk of voxels at a time).

The kernels ``(B, n, n)`` of a chunk come from one ``torch.bmm`` (squared distances from the
squared norms, exactly symmetric, unit diagonal); two exact solves of the duals:

* ``full_gram``: :func:`ogae_core.ocsvm.solve_dual` on the whole kernels (compiled engine on
  the CPU, torch engine on CUDA);
* ``working_set`` (CPU): with small ``nu`` only a fraction of the points are support vectors
  (about a quarter at ``nu = 0.1``, ``n = 144`` on MRI patch codes), so each voxel's dual is
  first solved on a working set ``S`` (its ``2 nu n + 8`` least dense points, row sums of
  ``K``) with the active-set solver on ``K_SS`` only; the points outside ``S`` that violate
  the KKT conditions (``(K alpha)_i < rho``) are added, and so on until none does: then
  ``alpha`` (0 outside ``S``) solves the full dual, to the same tolerance. The reduced
  systems are much smaller than the full solver's first ones (which start with two thirds
  of the points free). Voxels whose reduced solve fails go to ``solve_dual``. Computing only
  the kernel rows of ``S`` (``n |S| d`` instead of ``n^2 d``) was measured slower: the least
  dense points need the full kernels, and starting from the points farthest from the mean
  took 4-5 rounds of small products to reach ``|S| ~ n / 2``.

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

__all__ = ["ALGORITHMS", "check_finite", "chunk_buffers", "decision_chunk", "fit_bytes_per_voxel", "fit_chunk",
           "gamma_code", "prepare_cpu", "prepare_torch", "working_set_size"]

#: Values of ``LocalizedOCSVM(algorithm=...)``.
ALGORITHMS = ("auto", "working_set", "full_gram")
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
    (37, 10, 10)
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
    in place; returns ``w`` (= ``z``), ``mean``, ``scale`` (or None), ``sqn``, ``gamma``."""
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
    gam = np.empty(B)
    rule, value = gamma_code(gamma)
    prepare_codes(xn, bool(standardize), rule, value, w.numpy(), mean, scale, sqn, gam)
    out = {"w": w, "sqn": torch.from_numpy(sqn), "gamma": torch.from_numpy(gam),
           "mean": torch.from_numpy(mean) if standardize else None,
           "scale": torch.from_numpy(scale) if standardize else None}
    check_finite(out["sqn"], start, "codes")
    return out


# ----------------------------------------------------------------------- fits
def chunk_buffers(rows: int, n: int, m: int, d: int, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The float64 buffers ``(codes, kernels)`` of :func:`fit_chunk` for chunks of at most
    ``rows`` voxels of ``n`` training and ``m`` test codes: on the CPU no codes buffer (the
    compiled pass transforms each voxel's codes in a per-thread scratch) and kernels
    ``(rows, n + m, n + m)`` (test rows below the training rows); elsewhere codes
    ``(rows, n, d)`` and kernels ``(rows, n, n)``."""
    if device.type == "cpu":
        return None, torch.empty(rows, n + m, n + m, dtype=torch.float64, device=device)
    return (torch.empty(rows, n, d, dtype=torch.float64, device=device),
            torch.empty(rows, n, n, dtype=torch.float64, device=device))


def fit_bytes_per_voxel(n: int, m: int, d: int, device: torch.device) -> int:
    """Working memory of one voxel in :func:`fit_chunk` (bytes): the buffers of
    :func:`chunk_buffers` and the per-voxel statistics.

    Examples
    --------
    >>> fit_bytes_per_voxel(60, 12, 400, torch.device("cpu"))
    50176
    """
    if device.type == "cpu":
        r = n + m
        return 8 * (r * r + 2 * d + 4 * r)
    return 8 * (n * d + 4 * n * n + 4 * d + 2 * m * n)


def fit_chunk(x: torch.Tensor, w_buf: torch.Tensor | None, k_buf: torch.Tensor, nu: float, gamma, standardize: bool,
              start: int, algorithm: str, compiled: bool | None = None, test: torch.Tensor | None = None) -> dict:
    """Fit the OCSVMs of one chunk of codes ``x`` ``(B, n, d)`` (and score ``test`` ``(B, m, d)``).

    ``w_buf``, ``k_buf``: float64 buffers of :func:`chunk_buffers` (at least ``B`` voxels; the
    first ``B`` are overwritten; ``w_buf`` unused by the compiled pass). ``algorithm``:
    ``"working_set"`` or ``"full_gram"`` (resolved; the working set needs ``compiled``).
    ``compiled``: the compiled CPU passes (default: buffers on the CPU); false runs the
    torch operations of other devices.
    Returns the libsvm-scaled coefficients ``(B, n)`` (0 off the support), offsets, gammas,
    squared norms of the (standardized) codes, standardization statistics and solver
    counters; with ``test``, also ``decision`` ``(B, m)``, float64: the test codes' decision
    values (on the CPU from the kernel rows computed with the Gram matrices, by the same
    products; elsewhere by :func:`decision_chunk`).
    """
    if compiled is None:
        compiled = k_buf.device.type == "cpu"
    B, n, d = x.shape
    working_set = algorithm == "working_set" and compiled
    if compiled:
        t = test.cpu() if test is not None else torch.empty(B, 0, d, dtype=x.dtype)
        r = n + t.shape[1]
        G = k_buf.view(-1)[:B * r * r].view(B, r, r)  # contiguous
        prep = _fit_exponents_cpu(x.cpu(), t, gamma, standardize, start, G)
        G.exp_()
        part = _solve(G[:, :n, :n], nu, working_set)
        if test is not None:
            part["decision"] = _decision_from_kernels(G[:, n:, :n], part)
    else:
        prep = prepare_torch(w_buf[:B].copy_(x), gamma, standardize, start)
        part = _solve(_kernels_torch(prep, k_buf[:B]), nu, False)
    part.update(gamma=prep["gamma"], sq_norm=prep["sqn"][:, :n], mean=prep["mean"], scale=prep["scale"])
    if test is not None and not compiled:
        part["decision"] = decision_chunk(test, x, {k: part[k] for k in ("coef", "offset", "gamma", "mean", "scale")},
                                          start, compiled=False)
    return part


def _fit_exponents_cpu(x: torch.Tensor, t: torch.Tensor, gamma, standardize: bool, start: int,
                       G: torch.Tensor) -> dict:
    """The compiled pass :func:`~ogae_core.ocsvm.cpu_engine.localized_kernels.fit_exponents`:
    fills ``G`` (exponents, before ``exp``); refuses non-finite training/test codes."""
    from ogae_core.ocsvm.cpu_engine.localized_kernels import fit_exponents

    B, n, d = x.shape
    mean = np.empty((B, d))
    scale = np.empty((B, d))
    sqn = np.empty((B, G.shape[1]))
    gam = np.empty(B)
    rule, value = gamma_code(gamma)
    fit_exponents(np.ascontiguousarray(x.numpy()), np.ascontiguousarray(t.numpy()), bool(standardize), rule, value,
                  G.numpy(), mean, scale, sqn, gam, torch.get_num_threads())
    sq = torch.from_numpy(sqn)
    check_finite(sq[:, :n], start, "codes")
    if sq.shape[1] > n:
        check_finite(sq[:, n:], start, "test codes")
    return {"sqn": sq, "gamma": torch.from_numpy(gam), "mean": torch.from_numpy(mean) if standardize else None,
            "scale": torch.from_numpy(scale) if standardize else None}


def _decision_from_kernels(Kx: torch.Tensor, part: dict) -> torch.Tensor:
    """Decision values ``(B, m)`` from the test kernel rows ``Kx`` ``(B, m, n)`` and the fit."""
    return torch.bmm(Kx, part["coef"].unsqueeze(2)).squeeze(2) - part["offset"].unsqueeze(1)


def _kernels_torch(prep: dict, k_buf: torch.Tensor) -> torch.Tensor:
    """RBF Gram matrices ``(B, n, n)`` of the prepared codes (exactly symmetric, unit diagonal)."""
    w = prep["w"]
    G = torch.bmm(w, w.transpose(1, 2), out=k_buf)
    sq = prep["sqn"]
    G.mul_(-2.0).add_(sq.unsqueeze(2)).add_(sq.unsqueeze(1))
    G = G.add_(G.transpose(1, 2).clone()).mul_(0.5)
    G.diagonal(dim1=1, dim2=2).zero_()
    return G.clamp_min_(0.0).mul_(-prep["gamma"].view(-1, 1, 1)).exp_()


def _solve(K: torch.Tensor, nu: float, working_set: bool) -> dict:
    n = K.shape[1]
    if working_set:
        return _solve_working_set(K, nu)
    with torch.no_grad():
        sol = solve_dual(K.contiguous(), nu)
    scale = nu * n  # paper scaling -> libsvm scaling
    return dict(coef=sol.alpha.to(torch.float64) * scale, offset=sol.rho.to(torch.float64) * scale,
                n_iter=int(sol.n_iter), n_fallback=int(sol.n_fallback))


def _solve_working_set(K: torch.Tensor, nu: float) -> dict:
    """The working-set solve of the module docstring on CPU kernels ``(B, n, n)``; voxels
    whose reduced solve fails are solved by :func:`~ogae_core.ocsvm.solve_dual`."""
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
    if len(failed):  # the full active-set solve, with its libsvm fallback
        ft = torch.from_numpy(failed)
        with torch.no_grad():
            sol = solve_dual(K[ft].contiguous(), nu)
        part["coef"][ft] = sol.alpha.to(torch.float64) * nu_n
        part["offset"][ft] = sol.rho.to(torch.float64) * nu_n
        part["n_fallback"] = int(sol.n_fallback)
    return part


# -------------------------------------------------------------------- scoring
def decision_chunk(x: torch.Tensor, sv: torch.Tensor, state: dict, start: int,
                   compiled: bool | None = None) -> torch.Tensor:
    """Decision values ``(B, m)`` of test codes ``x`` ``(B, m, d)`` for one chunk of voxels
    with support vectors ``sv`` ``(B, k, d)`` (padded layout) and ``state`` (the chunk's
    ``coef``, ``offset``, ``gamma``, ``mean``, ``scale`` on the device); ``compiled`` as in
    :func:`fit_chunk` (default: on the CPU)."""
    if compiled is None:
        compiled = state["coef"].device.type == "cpu"
    if compiled:
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
