"""The OCSVM layer on points: ``z -> K = rbf(z) -> (alpha, rho)`` as one operation.

``solve_dual_rbf(z, nu, gamma)`` equals ``solve_dual(rbf_kernel(z, gamma=gamma), nu)``
(values and gradients; tested). On the CPU it is one autograd node whose forward (kernel +
solve + KKT check) and backward (implicit differentiation of the KKT system chained with
the closed-form gradient of the RBF kernel) are one compiled call each
(:mod:`ogae_core.ocsvm._cpu_layer`), without a torch graph in between — the per-batch layer of OgAE training is dominated by per-operation
overhead, not by arithmetic. On other devices it is the composition itself.
"""
from __future__ import annotations

import numpy as np
import torch

from ogae_core.ocsvm._torch_engine import _RIDGE, _SET_TOL
from ogae_core.ocsvm.kernels import rbf_kernel
from ogae_core.ocsvm.solver import DualSolution, _check_residual, _DEFAULT_TOL, _forward_cpu, solve_dual
from ogae_core.ocsvm.validation import check_nu

__all__ = ["solve_dual_rbf"]


_SET_TOL64 = _SET_TOL[torch.float64]
_RIDGE64 = _RIDGE[torch.float64]


def _as_float64(z: torch.Tensor) -> np.ndarray:
    """C-contiguous float64 view (or copy) of a CPU tensor, without gradient."""
    zn = z.detach().numpy()
    if zn.dtype != np.float64 or not zn.flags.c_contiguous:
        zn = np.ascontiguousarray(zn, dtype=np.float64)
    return zn


def _solve_points_cpu(zn: np.ndarray, opts: tuple, info: dict) -> tuple:
    """Kernel and exact dual of one float64 point set ``zn`` on the CPU (compiled call,
    batched engine with libsvm fallback when it does not settle); fills ``info`` and
    returns ``(alpha, rho, saved)`` with ``saved`` the arguments of ``layer_backward``
    before its two gradients."""
    from ogae_core.ocsvm import _cpu_layer  # numba loads on first use, not on import

    gamma, nu, max_iter, tol, strict = opts
    K, alpha, rho, state, LU, piv, fidx, m, n_iter, status, res = _cpu_layer.layer_forward(
        zn, gamma, nu, max_iter, _SET_TOL64, _RIDGE64)
    if status == -1:
        raise ValueError("z contains non-finite values (nan or inf)")
    n_fallback = 0
    if status != 0 or not res <= tol:  # rare: the libsvm fallback of the batched engine
        sol = _forward_cpu(torch.from_numpy(K)[None], nu, max_iter, tol, True)
        _check_residual(sol.residual, tol, strict, 1)
        sv = sol.saved
        alpha, rho, state, LU, piv = sv["alpha"][0], float(sol.rho[0]), sv["state"][0], sv["LU"][0], sv["piv"][0]
        fidx, m, res, n_iter, n_fallback = sv["fidx"][0], int(sv["msize"][0]), float(sol.residual[0]), sol.n_iter, sol.n_fallback
    info["n_iter"], info["kkt_residual"], info["n_fallback"] = int(n_iter), torch.from_numpy(np.array(res)), n_fallback
    return alpha, rho, (zn, K, gamma, alpha, state, LU, piv, fidx, int(m))


class _DualFromPoints(torch.autograd.Function):
    # Lean on purpose: at n = 50 the compiled work is ~50 us, so every tensor built here
    # (numpy-backed 0-d tensors instead of torch.tensor, options passed as one tuple) counts.
    @staticmethod
    def forward(ctx, z, opts, info):
        zn = _as_float64(z)
        alpha, rho, ctx.saved = _solve_points_cpu(zn, opts, info)
        ctx.dtype = z.dtype
        alpha_t, rho_t = torch.from_numpy(alpha), torch.from_numpy(np.array(rho))
        if z.dtype != torch.float64:
            alpha_t, rho_t = alpha_t.to(z.dtype), rho_t.to(z.dtype)
        return alpha_t, rho_t

    @staticmethod
    def backward(ctx, grad_alpha, grad_rho):
        from ogae_core.ocsvm import _cpu_layer

        zn = ctx.saved[0]
        if grad_alpha is None:
            ga = np.zeros(zn.shape[0])
        else:
            ga = grad_alpha.detach()
            ga = np.ascontiguousarray((ga if ga.dtype == torch.float64 else ga.double()).numpy())
        gr = 0.0 if grad_rho is None else grad_rho.item()
        grad = torch.from_numpy(_cpu_layer.layer_backward(*ctx.saved, ga, gr))
        return (grad if ctx.dtype == torch.float64 else grad.to(ctx.dtype)), None, None


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
    alpha, rho = _DualFromPoints.apply(z, (gamma, float(nu), int(max_iter), tol, bool(strict)), info)
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
