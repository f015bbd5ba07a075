"""The OCSVM layer on points: ``z -> K = rbf(z) -> (alpha, rho)`` as one operation.

``solve_dual_rbf(z, nu, gamma)`` equals ``solve_dual(rbf_kernel(z, gamma=gamma), nu)``
(values and gradients; tested). On the CPU it is one autograd node: the kernel, the
compiled solve and the backward (implicit differentiation of the KKT system chained
with the closed-form gradient of the RBF kernel) run in NumPy/numba, without a torch
graph in between — the per-batch layer of OgAE training is dominated by per-operation
overhead, not by arithmetic. On other devices it is the composition itself.
"""
from __future__ import annotations

import numpy as np
import torch

from ogae_core.ocsvm.kernels import _rbf_numpy, rbf_input_grads, rbf_kernel
from ogae_core.ocsvm.solver import DualSolution, _check_residual, _DEFAULT_TOL, _forward_cpu, cpu_grad_K, solve_dual
from ogae_core.ocsvm.validation import check_nu

__all__ = ["solve_dual_rbf"]


class _DualFromPoints(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, gamma, nu, max_iter, tol, strict, info):  # noqa: PLR0913
        zn = np.ascontiguousarray(z.detach().numpy(), dtype=np.float64)
        if not np.isfinite(zn).all():
            raise ValueError("z contains non-finite values (nan or inf)")
        K = _rbf_numpy(zn, None, gamma)
        sol = _forward_cpu(torch.from_numpy(K)[None], nu, max_iter, tol, z.requires_grad)
        _check_residual(sol.residual, tol, strict, 1)
        info.update(n_iter=sol.n_iter, kkt_residual=sol.residual[0], n_fallback=sol.n_fallback)
        ctx.zn, ctx.gamma, ctx.saved, ctx.dtype = zn, gamma, sol.saved, z.dtype
        ctx.mark_non_differentiable()
        return sol.alpha[0].to(z.dtype), sol.rho[0].to(z.dtype)

    @staticmethod
    def backward(ctx, grad_alpha, grad_rho):
        # dL/dK by implicit differentiation, chained through K_ij = exp(-gamma ||z_i - z_j||^2)
        gK = cpu_grad_K(ctx.saved, grad_alpha, grad_rho)[0]
        gx, gy = rbf_input_grads(ctx.zn, ctx.zn, ctx.saved["K"][0], gK, ctx.gamma)
        return torch.from_numpy(gx + gy).to(ctx.dtype), None, None, None, None, None, None


def solve_dual_rbf(
    z: torch.Tensor,
    nu: float,
    gamma,
    *,
    max_iter: int = 100,
    tol: float | None = None,
    strict: bool = True,
) -> DualSolution:
    """Exact OCSVM dual on the RBF kernel of the points ``z`` (paper scaling).

    Same result and gradients as ``solve_dual(rbf_kernel(z, gamma=gamma), nu)``. On the
    CPU a single problem is one autograd node (several times less overhead per call),
    and a batch without gradient computes its kernels in compiled parallel code.

    Parameters
    ----------
    z : torch.Tensor
        ``(n, d)`` points, or a batch ``(B, n, d)``; gradients flow to them.
    nu : float
        In ``(0, 1]`` with ``nu * n >= 1``.
    gamma : float or torch.Tensor
        Positive RBF width; for a batch also one per problem (``(B,)`` or the
        ``(B, 1, 1)`` of :func:`~ogae_core.ocsvm.resolve_gamma`).
    max_iter, tol, strict
        As in :func:`~ogae_core.ocsvm.solve_dual`.

    Returns
    -------
    DualSolution

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(30, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> a = solve_dual_rbf(z, 0.2, 0.5)
    >>> b = solve_dual(rbf_kernel(z, gamma=0.5), 0.2)
    >>> bool(torch.allclose(a.alpha, b.alpha)), bool(torch.allclose(a.rho, b.rho))
    (True, True)
    """
    check_nu(nu)
    if not isinstance(z, torch.Tensor) or z.dim() not in (2, 3) or z.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"z must be a float32/float64 tensor of shape (n, d) or (B, n, d); got {getattr(z, 'shape', type(z))}")
    n = z.shape[-2]
    if nu * n < 1.0 - 1e-12:
        raise ValueError(f"nu * n must be >= 1 (got nu={nu}, n={n}, nu*n={nu * n:.4g}); use more points or a larger nu")
    if z.dim() == 3:
        return _solve_batch_of_points(z, nu, gamma, max_iter=max_iter, tol=tol, strict=strict)
    gamma = float(gamma)
    if not gamma > 0:
        raise ValueError(f"gamma must be positive; got {gamma}")
    if z.device.type != "cpu":
        return solve_dual(rbf_kernel(z, gamma=gamma), nu, max_iter=max_iter, tol=tol, strict=strict)
    tol = _DEFAULT_TOL[torch.float64] if tol is None else max(float(tol), _DEFAULT_TOL[torch.float64])
    info: dict = {}
    alpha, rho = _DualFromPoints.apply(z, gamma, float(nu), int(max_iter), tol, bool(strict), info)
    return DualSolution(alpha, rho, info["n_iter"], info["kkt_residual"], info["n_fallback"])


def _solve_batch_of_points(z: torch.Tensor, nu: float, gamma, **kw) -> DualSolution:
    """Batched ``(B, n, d)`` points: compiled kernels on the CPU without gradient."""
    B = z.shape[0]
    g = torch.as_tensor(gamma, dtype=torch.float64).reshape(-1).cpu()
    if g.numel() == 1:
        g = g.expand(B)
    if g.numel() != B or not bool((g > 0).all()):
        raise ValueError(f"gamma must be positive, one value or one per problem ({B}); got {tuple(g.shape)}")
    needs_graph = torch.is_grad_enabled() and z.requires_grad
    if z.device.type != "cpu" or needs_graph:
        return solve_dual(rbf_kernel(z, gamma=g.to(z.device, z.dtype).view(B, 1, 1)), nu, **kw)
    from ogae_core.ocsvm import _cpu_kernels as ck

    zn = np.ascontiguousarray(z.detach().numpy(), dtype=np.float64)
    if not np.isfinite(zn).all():
        raise ValueError("z contains non-finite values (nan or inf)")
    K = torch.from_numpy(ck.rbf_batch(zn, np.ascontiguousarray(g.numpy())))
    sol = solve_dual(K, nu, **kw)
    return sol._replace(alpha=sol.alpha.to(z.dtype), rho=sol.rho.to(z.dtype))
