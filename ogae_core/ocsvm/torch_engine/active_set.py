"""Forward of the torch engine: the OCSVM dual active-set solver (batched, any device and dtype).

Works on the full masked KKT system ``(n+1) x (n+1)`` per problem so that a batch
runs as a few large tensor operations (the engine used on CUDA). The compiled CPU engine
(:mod:`ogae_core.ocsvm.cpu_engine.active_set`) runs the same iteration on the reduced system.
"""
from __future__ import annotations

import math

import torch

from ogae_core.ocsvm.tolerances import FALLBACK_SET_REL, RIDGE, SET_TOL

__all__ = ["active_set", "assemble", "initial_sets", "polish", "vertex_rho", "vertex_rho_weights"]


def initial_sets(K: torch.Tensor, nu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Guess (free, upper) from the mean kernel similarity of each point.

    Points of lowest density are outliers (``alpha = C``); about ``nu n`` of them.
    The two around the quantile start free.
    """
    B, n, _ = K.shape
    density = K.mean(-1)
    rank = density.argsort(-1).argsort(-1)  # 0 = least dense
    k = nu * n
    k_floor = math.floor(k + 1e-9)
    upper = rank < (k_floor - 1 if abs(k - round(k)) < 1e-9 else k_floor)
    free = (~upper) & (rank <= k_floor)
    return free, upper


def assemble(K, free, upper, C, ridge, vertex_rho):
    """Build the masked KKT system ``M x = r`` for ``x = [alpha, rho]``."""
    B, n, _ = K.shape
    f = free.to(K.dtype)
    u = upper.to(K.dtype)
    M = K.new_zeros(B, n + 1, n + 1)
    M[:, :n, :n] = K * f.unsqueeze(-1) * f.unsqueeze(-2)
    # ridge on free rows, identity on fixed rows (alpha_i = 0 or C)
    M[:, :n, :n].diagonal(dim1=-2, dim2=-1).add_(ridge * f + (1.0 - f))
    M[:, :n, n] = -f
    M[:, n, :n] = f
    no_free = ~free.any(-1)
    M[:, n, n] = no_free.to(K.dtype)
    r = K.new_zeros(B, n + 1)
    r[:, :n] = -f * (K @ (C * u).unsqueeze(-1)).squeeze(-1) + (1.0 - f) * C * u
    r[:, n] = torch.where(no_free, vertex_rho, 1.0 - C * u.sum(-1))
    return M, r


def vertex_rho_weights(g: torch.Tensor, upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """Weights ``w`` with ``rho = w . g`` for the libsvm midpoint rule.

    Examples
    --------
    >>> import torch
    >>> g = torch.tensor([[0.1, 0.5, 0.9]])
    >>> vertex_rho_weights(g, torch.tensor([[True, False, False]]), torch.tensor([[False, True, True]])).tolist()
    [[0.5, 0.5, 0.0]]
    """
    inf = torch.finfo(g.dtype).max
    a = torch.where(upper, g, torch.full_like(g, -inf)).argmax(-1)
    b = torch.where(lower, g, torch.full_like(g, inf)).argmin(-1)
    has_a = upper.any(-1)
    has_b = lower.any(-1)
    both = (has_a & has_b).to(g.dtype)
    w = torch.zeros_like(g)
    rows = torch.arange(g.shape[0], device=g.device)
    w[rows, a] += torch.where(has_a, 1.0 - 0.5 * both, torch.zeros_like(both))
    w[rows, b] += torch.where(has_b, 1.0 - 0.5 * both, torch.zeros_like(both))
    return w


def vertex_rho(g: torch.Tensor, upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """libsvm's rho when no index is free: midpoint of [max_U g, min_L g]."""
    return (vertex_rho_weights(g, upper, lower) * g).sum(-1)


def _repair_empty_free(free, upper, g, C, n):
    """Give an empty free set one index when ``|U| C != 1`` (the vertex is infeasible)."""
    no_free = ~free.any(-1)
    mass = C * upper.sum(-1).to(g.dtype)
    short = no_free & (mass < 1 - 1e-9)
    excess = no_free & (mass > 1 + 1e-9)
    if short.any():
        lower = ~free & ~upper
        inf = torch.finfo(g.dtype).max
        cand = torch.where(lower, g, torch.full_like(g, inf)).argmin(-1)
        free = free.clone()
        free[short, cand[short]] = True
    if excess.any():
        inf = torch.finfo(g.dtype).max
        cand = torch.where(upper, g, torch.full_like(g, -inf)).argmax(-1)
        free = free.clone()
        upper = upper.clone()
        free[excess, cand[excess]] = True
        upper[excess, cand[excess]] = False
    return free, upper


def _factor_solve(M: torch.Tensor, r: torch.Tensor):
    """LU-factor ``M`` and solve ``M x = r``; returns x and the factors (for backward)."""
    LU, piv = torch.linalg.lu_factor(M)
    x = torch.linalg.lu_solve(LU, piv, r.unsqueeze(-1)).squeeze(-1)
    return x, LU, piv


def active_set(K: torch.Tensor, nu: float, max_iter: int):
    """Run the active-set iteration; returns alpha, rho, free, upper, done, n_iter, LU, piv."""
    B, n, _ = K.shape
    C = 1.0 / (nu * n)
    ridge = RIDGE[K.dtype]
    stol = SET_TOL[K.dtype]
    free, upper = initial_sets(K, nu)
    done = torch.zeros(B, dtype=torch.bool, device=K.device)
    alpha = K.new_zeros(B, n)
    rho = K.new_zeros(B)
    g = K.mean(-1)
    LU = K.new_zeros(B, n + 1, n + 1)
    piv = torch.zeros(B, n + 1, dtype=torch.int32, device=K.device)
    it = 0
    for it in range(1, max_iter + 1):
        todo = (~done).nonzero().squeeze(-1)
        Kt, ft, ut = K[todo], free[todo], upper[todo]
        ft, ut = _repair_empty_free(ft, ut, g[todo], C, n)
        lower_t = ~ft & ~ut
        # rho for vertex problems is set after the solve (alpha does not depend on it)
        M, r = assemble(Kt, ft, ut, C, ridge, torch.zeros(len(todo), dtype=K.dtype, device=K.device))
        x, LU_t, piv_t = _factor_solve(M, r)
        LU[todo], piv[todo] = LU_t, piv_t
        a, rh = x[:, :n], x[:, n]
        a = torch.where(ft, a, C * ut.to(K.dtype))
        gt = (Kt @ a.unsqueeze(-1)).squeeze(-1)
        vertex = ~ft.any(-1)
        if vertex.any():
            rh = torch.where(vertex, vertex_rho(gt, ut, lower_t), rh)
        lam = gt - rh.unsqueeze(-1)
        # semismooth Newton / primal-dual active-set update
        new_lower = (lower_t & (lam >= -stol)) | (ft & (a <= stol * C))
        new_upper = (ut & (lam <= stol)) | (ft & (a >= C * (1 + stol)))
        new_free = ~new_lower & ~new_upper
        settled = (new_free == ft).all(-1) & (new_upper == ut).all(-1)
        alpha[todo], rho[todo], g[todo] = a, rh, gt
        # keep the sets the factors belong to; advance only unsettled problems
        free[todo] = torch.where(settled.unsqueeze(-1), ft, new_free)
        upper[todo] = torch.where(settled.unsqueeze(-1), ut, new_upper)
        done[todo] = settled
        if bool(done.all()):
            break
    return alpha, rho, free, upper, done, it, LU, piv


def polish(K: torch.Tensor, alpha: torch.Tensor, nu: float):
    """One exact Newton step on the active set read off an approximate solution (the sets of
    :func:`~ogae_core.ocsvm.fallback.state_from_alpha`)."""
    n = K.shape[-1]
    C = 1.0 / (nu * n)
    rel = FALLBACK_SET_REL
    upper = alpha >= C * (1 - rel)
    free = (alpha > C * rel) & ~upper
    g = (K @ alpha.unsqueeze(-1)).squeeze(-1)
    free, upper = _repair_empty_free(free, upper, g, C, n)
    M, r = assemble(K, free, upper, C, RIDGE[K.dtype], torch.zeros(K.shape[0], dtype=K.dtype, device=K.device))
    x, LU, piv = _factor_solve(M, r)
    a = torch.where(free, x[:, :n], C * upper.to(K.dtype))
    g = (K @ a.unsqueeze(-1)).squeeze(-1)
    vertex = ~free.any(-1)
    rho = torch.where(vertex, vertex_rho(g, upper, ~free & ~upper), x[:, n])
    return a, rho, free, upper, LU, piv
