"""The OCSVM layer on points: ``z -> K = rbf(z) -> (alpha, rho)`` as one operation.

``solve_dual_rbf(z, nu, gamma)`` equals ``solve_dual(rbf_kernel(z, gamma=gamma), nu)``
(values and gradients; tested). On the CPU a single problem is one autograd node whose
forward (kernel + solve + KKT check) and backward (implicit differentiation of the KKT
system chained with the closed-form gradient of the RBF kernel) are one compiled call each
(:class:`ogae_core.ocsvm.cpu_engine.layer.DualFromPoints`), without a torch graph in
between — the per-batch layer of OgAE training is dominated by per-operation overhead, not
by arithmetic. A batch without gradient computes its kernels in compiled parallel code
(:func:`ogae_core.ocsvm.cpu_engine.rbf.rbf_batch`). On other devices, and for a batch
with gradient, it is the composition itself.
"""
from __future__ import annotations

import numpy as np
import torch

from ogae_core.ocsvm.kernels import rbf_kernel
from ogae_core.ocsvm.solver import DualSolution, solve_dual
from ogae_core.ocsvm.tolerances import DEFAULT_TOL
from ogae_core.validation import check_nu, check_nu_times_n

__all__ = ["solve_dual_rbf"]


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
    check_nu_times_n(nu, z.shape[-2])
    if z.dim() == 3:
        return _solve_batch_of_points(z, nu, gamma, max_iter=max_iter, tol=tol, strict=strict)
    gamma = float(gamma)
    if not gamma > 0:
        raise ValueError(f"gamma must be positive; got {gamma}")
    if z.device.type != "cpu":
        return solve_dual(rbf_kernel(z, gamma=gamma), nu, max_iter=max_iter, tol=tol, strict=strict)
    from ogae_core.ocsvm.cpu_engine.layer import DualFromPoints  # numba loads on first use

    tol = DEFAULT_TOL[torch.float64] if tol is None else max(float(tol), DEFAULT_TOL[torch.float64])
    info: dict = {}
    alpha, rho = DualFromPoints.apply(z, (gamma, float(nu), int(max_iter), tol, bool(strict)), info)
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
    from ogae_core.ocsvm.cpu_engine.builds import call_within_torch_threads  # numba loads on first use
    from ogae_core.ocsvm.cpu_engine.rbf import rbf_batch

    zn = np.ascontiguousarray(z.detach().numpy(), dtype=np.float64)
    if not np.isfinite(zn).all():
        raise ValueError("z contains non-finite values (nan or inf)")
    K = torch.from_numpy(call_within_torch_threads(rbf_batch, zn, np.ascontiguousarray(g.numpy())))
    sol = solve_dual(K, nu, **kw)
    return sol._replace(alpha=sol.alpha.to(z.dtype), rho=sol.rho.to(z.dtype))
