"""Reference backend: the paper's own cvxpylayers formulation of the OCSVM dual.

Pinon & Lartizien solve the one-class SVM dual with a differentiable convex
optimisation layer. This module writes that formulation ourselves so that the
native solver (:func:`ogae_core.ocsvm.solve_dual`) can be cross-checked against
it (values and gradients) and benchmarked:

* parameter ``S = (K + 1e-8 I)^{1/2}``, the symmetric square root computed with
  :func:`torch.linalg.eigh` (differentiable, see :class:`_SymSqrt`);
* variable ``a = nu * n * alpha`` (libsvm scaling, ``0 <= a_i <= 1``);
* ``minimize 0.5 * ||S a||^2  s.t.  0 <= a <= 1,  sum(a) = nu * n``.

Solver: cvxpylayers 1.2 routes problems through diffcp, whose cone solvers are
SCS, ECOS and Clarabel; OSQP is not available to cvxpylayers 1.2 (its QP-capable
paths are the proprietary Moreau, CuClarabel on Julia and MPAX on JAX). diffcp's
own default for this second-order-cone problem is ECOS, which is not installed,
so the default here is SCS at ``eps = 1e-9``, which is more accurate than
Clarabel at default settings on this problem (see the module tests). Pass
``solver_args`` to change it.

Building a :class:`cvxpylayers.torch.CvxpyLayer` (canonicalisation) is much
slower than a solve, so layers are kept in an explicit, bounded cache keyed by
``(n, nu)`` (:func:`clear_layer_cache` empties it).
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import torch

from ogae_core.validation import check_kernel_matrix, check_nu

#: Ridge added to K before the square root, as in the paper's reference code.
JITTER = 1e-8
#: Default solver options passed to diffcp through cvxpylayers.
DEFAULT_SOLVER_ARGS: dict[str, Any] = {"solve_method": "SCS", "eps": 1e-9}
#: Relative tolerance (on ``a = nu n alpha`` in [0, 1]) to call a support vector free.
FREE_TOL = 1e-6


class _SymSqrt(torch.autograd.Function):
    """Symmetric square root of a symmetric PSD matrix (batched), via ``eigh``.

    The backward pass is the exact derivative of the matrix square root: with
    ``A = V diag(w) V^T`` and ``s = sqrt(w)``, the differential ``dS`` solves the
    Sylvester equation ``S dS + dS S = dA``, so the gradient is
    ``V [(V^T G V) / (s_i + s_j)] V^T`` for the symmetrised upstream gradient
    ``G``. Unlike differentiating ``eigh`` itself (terms ``1/(w_i - w_j)``),
    this stays finite when eigenvalues repeat (duplicate points).
    """

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        w, v = torch.linalg.eigh(a)
        s = w.clamp_min(0.0).sqrt()
        ctx.save_for_backward(v, s)
        return (v * s.unsqueeze(-2)) @ v.mT

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        v, s = ctx.saved_tensors
        g = 0.5 * (grad + grad.mT)
        denom = (s.unsqueeze(-1) + s.unsqueeze(-2)).clamp_min(torch.finfo(s.dtype).tiny)
        return v @ ((v.mT @ g @ v) / denom) @ v.mT


def sym_sqrt(a: torch.Tensor, jitter: float = JITTER) -> torch.Tensor:
    """Differentiable symmetric square root of ``a + jitter * I`` (batched).

    Examples
    --------
    >>> import torch
    >>> s = sym_sqrt(torch.tensor([[4.0, 0.0], [0.0, 9.0]], dtype=torch.float64), jitter=0.0)
    >>> s.diagonal().tolist()
    [2.0, 3.0]
    """
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    return _SymSqrt.apply(a + jitter * eye)


@functools.lru_cache(maxsize=32)
def _layer(n: int, nu: float):
    """Build (once per ``(n, nu)``) the CvxpyLayer of the scaled dual."""
    import cvxpy as cp
    from cvxpylayers.torch import CvxpyLayer

    a = cp.Variable(n)
    sqrt_k = cp.Parameter((n, n))
    problem = cp.Problem(
        cp.Minimize(0.5 * cp.sum_squares(sqrt_k @ a)),
        [a >= 0, a <= 1, cp.sum(a) == nu * n],
    )
    return CvxpyLayer(problem, parameters=[sqrt_k], variables=[a])


def clear_layer_cache() -> None:
    """Drop every cached CvxpyLayer (they are rebuilt on demand)."""
    _layer.cache_clear()


def rho_from_kkt(k: torch.Tensor, alpha: torch.Tensor, nu: float, free_tol: float = FREE_TOL) -> torch.Tensor:
    """Offset ``rho`` from the KKT conditions of the dual, as libsvm computes it.

    With ``g = K alpha`` and upper bound ``C = 1 / (nu n)``: on free support
    vectors ``g_i = rho`` (the mean over them is returned); if none is free,
    ``rho`` is the midpoint of ``[max_{alpha_i = C} g_i, min_{alpha_i = 0} g_i]``
    (one end alone when the other set is empty, e.g. ``nu = 1``).

    Parameters
    ----------
    k : torch.Tensor
        ``(..., n, n)`` kernel matrices.
    alpha : torch.Tensor
        ``(..., n)`` dual solutions in the paper's scaling.
    nu : float
        The OCSVM ``nu``.
    free_tol : float
        A point is free when ``free_tol < alpha_i / C < 1 - free_tol``.

    Returns
    -------
    torch.Tensor
        ``(...)`` offsets, differentiable with respect to ``k`` and ``alpha``.

    Examples
    --------
    >>> import torch
    >>> k = torch.eye(2, dtype=torch.float64)
    >>> float(rho_from_kkt(k, torch.tensor([0.5, 0.5], dtype=torch.float64), nu=1.0))
    0.5
    """
    n = alpha.shape[-1]
    scaled = alpha * (nu * n)
    g = (k @ alpha.unsqueeze(-1)).squeeze(-1)
    free = (scaled > free_tol) & (scaled < 1.0 - free_tol)
    n_free = free.sum(-1)
    rho_free = torch.where(free, g, torch.zeros_like(g)).sum(-1) / n_free.clamp_min(1)
    inf = torch.full_like(g, math.inf)
    lower = torch.where(scaled >= 1.0 - free_tol, g, -inf).amax(-1)
    upper = torch.where(scaled <= free_tol, g, inf).amin(-1)
    mid = torch.where(
        torch.isinf(lower), upper, torch.where(torch.isinf(upper), lower, 0.5 * (lower + upper))
    )
    return torch.where(n_free > 0, rho_free, mid)


def _merge_solver_args(solver_args: dict | None) -> dict[str, Any]:
    """Defaults overridden by ``solver_args``; another ``solve_method`` drops SCS's defaults."""
    solver_args = dict(solver_args or {})
    method = solver_args.get("solve_method", DEFAULT_SOLVER_ARGS["solve_method"])
    if method != DEFAULT_SOLVER_ARGS["solve_method"]:
        return solver_args
    return {**DEFAULT_SOLVER_ARGS, **solver_args}


def solve_dual_cvxpylayers(
    K: torch.Tensor, nu: float, *, solver_args: dict | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve the OCSVM dual with cvxpylayers (the paper's formulation).

    Minimises ``0.5 alpha^T K alpha`` subject to ``0 <= alpha_i <= 1/(nu n)``
    and ``sum(alpha) = 1`` through the scaled variable ``a = nu n alpha`` and
    the parameter ``(K + 1e-8 I)^{1/2}``. Differentiable with respect to ``K``
    (cvxpylayers/diffcp for the solve, the exact square-root derivative, and
    :func:`rho_from_kkt` in torch).

    Parameters
    ----------
    K : torch.Tensor
        ``(n, n)`` or ``(B, n, n)`` symmetric PSD kernel matrices (any device;
        the solve runs on CPU in float64).
    nu : float
        In ``(0, 1]`` with ``nu * n >= 1``.
    solver_args : dict, optional
        Options for diffcp, merged over :data:`DEFAULT_SOLVER_ARGS`; naming
        another ``solve_method`` (e.g. ``{"solve_method": "Clarabel"}``) uses
        only the given options.

    Returns
    -------
    alpha : torch.Tensor
        ``(n,)`` or ``(B, n)``, paper scaling (``sum = 1``), dtype and device of ``K``.
    rho : torch.Tensor
        ``()`` or ``(B,)``.

    Raises
    ------
    ValueError
        ``K`` not float32/float64, of the wrong shape, non-square, empty,
        non-symmetric or non-finite; ``nu`` out of range or ``nu * n < 1``
        (the checks of :mod:`ogae_core.validation`, shared with the
        native solver).
    cvxpy.error.SolverError
        The cone solver failed (raised by diffcp, not hidden).

    Examples
    --------
    >>> import torch
    >>> from ogae_core.ocsvm.kernels import rbf_kernel
    >>> z = torch.randn(12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> alpha, rho = solve_dual_cvxpylayers(rbf_kernel(z, gamma=0.5), nu=0.25)
    >>> round(float(alpha.sum()), 6)
    1.0
    """
    nu = check_nu(nu)
    check_kernel_matrix(K, nu)
    n = K.shape[-1]
    k64 = K.to(device="cpu", dtype=torch.float64)
    k64 = 0.5 * (k64 + k64.mT)
    layer = _layer(n, nu)
    args = _merge_solver_args(solver_args)
    with warnings.catch_warnings():
        # numpy-2 copy-keyword notices raised inside cvxpylayers' diffcp interface
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cvxpylayers\.")
        (a,) = layer(sym_sqrt(k64), solver_args=args)
    alpha = a / (nu * n)
    rho = rho_from_kkt(k64, alpha, nu)
    return alpha.to(device=K.device, dtype=K.dtype), rho.to(device=K.device, dtype=K.dtype)
