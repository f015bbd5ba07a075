"""The torch engine on kernel matrices: solve (with the libsvm fallback), KKT residual, ``dL/dK``.

:func:`solve_kernels` is what :func:`ogae_core.ocsvm.solve_dual` runs off the CPU (or
with ``engine="torch"``): the batched active set
(:func:`~ogae_core.ocsvm.torch_engine.active_set.active_set`) on ``K``'s device and dtype,
libsvm's SMO for the problems that did not settle and one exact Newton step from its
sets. :func:`grad_K` is its backward.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ogae_core.ocsvm.fallback import libsvm_alpha
from ogae_core.ocsvm.tolerances import RIDGE
from ogae_core.ocsvm.torch_engine import active_set as te
from ogae_core.ocsvm.torch_engine.backward import dual_backward

__all__ = ["TorchFactors", "TorchForward", "grad_K", "kkt_residual", "solve_kernels"]


def kkt_residual(K: torch.Tensor, alpha: torch.Tensor, rho: torch.Tensor, nu: float) -> torch.Tensor:
    """Largest violation of the KKT conditions of the OCSVM dual, per problem.

    With ``g = K alpha``: ``|sum(alpha) - 1|``, bound violations of ``alpha``,
    ``|g_i - rho|`` on free indices, ``max(0, rho - g_i)`` where ``alpha_i = 0`` and
    ``max(0, g_i - rho)`` where ``alpha_i = C``. Indices count as bound when within
    ``1e-12 * C`` (float64) of it.

    Examples
    --------
    >>> import torch
    >>> K = torch.eye(2, dtype=torch.float64)
    >>> a = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> float(kkt_residual(K, a, torch.tensor(0.5, dtype=torch.float64), 1.0))
    0.0
    """
    n = K.shape[-1]
    C = 1.0 / (nu * n)
    eps = 1e-12 * C if alpha.dtype == torch.float64 else 1e-6 * C
    g = (K @ alpha.unsqueeze(-1)).squeeze(-1)
    lam = g - rho.unsqueeze(-1)
    at_lower = alpha <= eps
    at_upper = alpha >= C - eps
    free = ~(at_lower | at_upper)
    r = torch.where(free, lam.abs(), torch.zeros_like(lam))
    r = torch.maximum(r, torch.where(at_lower & ~at_upper, (-lam).clamp_min(0), torch.zeros_like(lam)))
    r = torch.maximum(r, torch.where(at_upper & ~at_lower, lam.clamp_min(0), torch.zeros_like(lam)))
    r = torch.maximum(r, (-alpha).clamp_min(0))
    r = torch.maximum(r, (alpha - C).clamp_min(0))
    return torch.maximum(r.amax(-1), (alpha.sum(-1) - 1).abs())


class TorchFactors(NamedTuple):
    """What the backward pass needs from a forward (tensors on ``K``'s device)."""

    alpha: torch.Tensor
    free: torch.Tensor
    upper: torch.Tensor
    LU: torch.Tensor
    piv: torch.Tensor


class TorchForward(NamedTuple):
    """Forward result plus the factors for :func:`grad_K`."""

    alpha: torch.Tensor
    rho: torch.Tensor
    n_iter: int
    residual: torch.Tensor
    n_fallback: int
    saved: TorchFactors


def solve_kernels(K: torch.Tensor, nu: float, max_iter: int, tol: float, keep: bool) -> TorchForward:
    """Solve a batch ``(B, n, n)`` of kernel matrices (masked full systems; any device and dtype).

    ``keep`` is accepted for symmetry with the CPU engine (the factors are always kept).
    """
    alpha, rho, free, upper, done, n_iter, LU, piv = te.active_set(K, nu, max_iter)
    res = kkt_residual(K, alpha, rho, nu)
    bad = (~done) | (res > tol) | ~torch.isfinite(res)
    n_fb = int(bad.sum())
    if n_fb:
        idx = bad.nonzero().squeeze(-1)
        a0 = torch.from_numpy(libsvm_alpha(K[idx].detach().cpu().double().numpy(), nu)).to(K.device, K.dtype)
        a, r, f, u, lu, pv = te.polish(K[idx], a0, nu)
        alpha[idx], rho[idx], free[idx], upper[idx], LU[idx], piv[idx] = a, r, f, u, lu, pv
        res[idx] = kkt_residual(K[idx], a, r, nu)
    saved = TorchFactors(alpha=alpha, free=free, upper=upper, LU=LU, piv=piv)
    return TorchForward(alpha, rho, n_iter, res, n_fb, saved)


def grad_K(K: torch.Tensor, saved: TorchFactors, nu: float, grad_alpha, grad_rho) -> torch.Tensor:
    """dL/dK ``(B, n, n)`` (symmetric, dtype of ``K``) from a forward's :class:`TorchFactors`."""
    return dual_backward(K, saved.alpha, saved.free, saved.upper, nu, grad_alpha, grad_rho, RIDGE[K.dtype],
                         (saved.LU, saved.piv))
