"""Backward of the torch engine: ``dL/dK`` by implicit differentiation of the KKT system.

At the solution the index sets are locally constant. On the free set ``F`` the
solution ``x = [alpha_F, rho]`` satisfies ``M x = r`` with
``M = [[K_FF + ridge I, -1], [1^T, 0]]``; differentiating ``(K alpha)_i = rho``
(``i in F``) gives ``dL/dK_ij = -v_i alpha_j`` for ``i in F``, where
``v = M^{-T} [dL/dalpha, dL/drho]``. Indices at a bound have locally constant
``alpha``. When no index is free (a vertex), ``alpha`` is locally constant and
``rho`` is the libsvm midpoint ``(g_a + g_b)/2`` of two kernel rows, ``g = K alpha``.
The gradient is symmetrized, since the dual only sees the symmetric part of ``K``.
"""
from __future__ import annotations

import torch

from ogae_core.ocsvm.torch_engine.active_set import assemble, vertex_rho_weights

__all__ = ["dual_backward"]


def dual_backward(
    K: torch.Tensor,
    alpha: torch.Tensor,
    free: torch.Tensor,
    upper: torch.Tensor,
    nu: float,
    grad_alpha: torch.Tensor | None,
    grad_rho: torch.Tensor | None,
    ridge: float,
    factors: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Gradient of a loss with respect to ``K`` given its gradients w.r.t. ``alpha``, ``rho``.

    Parameters
    ----------
    K, alpha, free, upper : torch.Tensor
        Batched ``(B, n, n)`` / ``(B, n)`` forward quantities.
    nu, ridge : float
        As in the forward solve.
    grad_alpha, grad_rho : torch.Tensor or None
        Upstream gradients ``(B, n)`` and ``(B,)``.
    factors : (LU, pivots), optional
        LU factorization of the forward KKT matrices (reused when given).

    Returns
    -------
    torch.Tensor
        ``(B, n, n)``, symmetric.
    """
    B, n, _ = K.shape
    if grad_alpha is None:
        grad_alpha = torch.zeros_like(alpha)
    if grad_rho is None:
        grad_rho = alpha.new_zeros(B)
    rhs = torch.cat([grad_alpha, grad_rho.unsqueeze(-1)], dim=-1).unsqueeze(-1)
    if factors is None:
        C = 1.0 / (nu * n)
        M, _ = assemble(K, free, upper, C, ridge, alpha.new_zeros(B))
        factors = torch.linalg.lu_factor(M)
    v = torch.linalg.lu_solve(factors[0], factors[1], rhs, adjoint=True).squeeze(-1)
    v_free = v[:, :n] * free.to(K.dtype)
    grad_K = -v_free.unsqueeze(-1) * alpha.unsqueeze(-2)
    vertex = ~free.any(-1)
    if bool(vertex.any()):
        g = (K @ alpha.unsqueeze(-1)).squeeze(-1)
        lower = ~free & ~upper
        w = vertex_rho_weights(g, upper, lower)
        grad_vertex = (grad_rho.unsqueeze(-1) * w).unsqueeze(-1) * alpha.unsqueeze(-2)
        grad_K = torch.where(vertex.view(B, 1, 1), grad_vertex, grad_K)
    return 0.5 * (grad_K + grad_K.transpose(-1, -2))
