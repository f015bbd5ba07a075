"""The OgAE guidance loss (Pinon & Lartizien, eqs. 5–7).

An exact OCSVM is fitted on the first half of a batch of latent codes (``z_svm``);
the second half (``z_loss``, the paper's ``z_L``) is penalized where it falls outside
the boundary: ``sum_l max(0, -f(z_l))`` with ``f(z) = sum_i alpha_i k(z_i, z) - rho``
in the paper's scaling (``sum alpha = 1``).

The gradient is split in two routes, weighted as in eq. (7). Since ``z_svm`` enters
the penalty only through the expander paths and ``z_loss`` only through the
compactor path, the routes are realized on one graph by scaling the gradient that
reaches each half:

* **expander** (weight ``beta_1``): through ``z_svm`` only — via the kernel between
  ``z_svm`` and ``z_loss`` and via the optimal ``alpha*`` and ``rho*`` (implicit
  differentiation of the dual); ``z_loss`` is treated as a constant;
* **compactor** (weight ``beta_2``): through ``z_loss`` only — ``alpha*``, ``rho*`` and
  ``z_svm`` are constants.

``(1, 0)`` is expander only, ``(0, 1)`` compactor only and ``(1, 1)`` the full
gradient of eq. (6). The returned loss *value* is always the unweighted penalty;
only its gradient is weighted.

On the CPU (float64 solve, the default) the whole loss — standardization, kernel, dual
solve, decision values and penalty — is one autograd node with one compiled forward
and one compiled backward (:class:`_GuidanceCpu`; at the paper's batch size the
composition of torch operations costs several times the arithmetic). Elsewhere it is
the composition of differentiable torch operations (:func:`_guidance_composite`); both
give the same values and gradients (tested).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ogae_core.ocsvm.kernels import GammaSpec, rbf_kernel, resolve_gamma
from ogae_core.ocsvm.kernels import standardize as _standardize
from ogae_core.ocsvm.points import _as_float64, _solve_points_cpu, solve_dual_rbf
from ogae_core.ocsvm.solver import _DEFAULT_TOL
from ogae_core.ocsvm.validation import check_nu

__all__ = ["GuidanceOutput", "guidance_loss", "decision_values"]


class GuidanceOutput(NamedTuple):
    """Guidance loss and per-step diagnostics.

    Attributes
    ----------
    loss : torch.Tensor
        Scalar, differentiable (gradient routed and weighted, see module docs).
    misclassified_fraction : float
        Fraction of ``z_loss`` with ``f(z) < 0``.
    n_support : int
        Support vectors (``alpha_i > 0``) among ``z_svm``.
    rho : float
        Offset of the fitted OCSVM (paper scaling).
    n_iter : int
        Active-set iterations of the solver.
    gamma : float
        RBF width used.
    """

    loss: torch.Tensor
    misclassified_fraction: float
    n_support: int
    rho: float
    n_iter: int
    gamma: float


def decision_values(z_svm: torch.Tensor, alpha: torch.Tensor, rho: torch.Tensor, z: torch.Tensor, gamma: float) -> torch.Tensor:
    """``f(z) = sum_i alpha_i k(z_svm_i, z) - rho`` for every row of ``z``.

    Examples
    --------
    >>> import torch
    >>> f = decision_values(torch.zeros(1, 2), torch.ones(1), torch.tensor(0.5), torch.zeros(3, 2), 1.0)
    >>> f.tolist()
    [0.5, 0.5, 0.5]
    """
    return alpha @ rbf_kernel(z_svm, z, gamma) - rho


def guidance_loss(
    z_svm: torch.Tensor,
    z_loss: torch.Tensor,
    nu: float = 0.5,
    gamma: GammaSpec = "scale",
    expander_weight: float = 1.0,
    compactor_weight: float = 1.0,
    standardize: bool | str = False,
    reduction: str = "sum",
    solver_dtype: torch.dtype = torch.float64,
) -> GuidanceOutput:
    """OCSVM guidance penalty of ``z_loss`` under an exact OCSVM fitted on ``z_svm``.

    Parameters
    ----------
    z_svm : torch.Tensor
        ``(n, d)`` latent codes the OCSVM is fitted on (``nu * n >= 1``).
    z_loss : torch.Tensor
        ``(m, d)`` latent codes that are penalized.
    nu : float
        OCSVM ``nu`` in ``(0, 1]``.
    gamma : float or {"scale", "auto"}
        RBF width; ``"scale"`` is computed from the (standardized) ``z_svm`` without
        gradient (a constant of the step).
    expander_weight, compactor_weight : float
        ``beta_1`` and ``beta_2`` of eq. (7); non-negative.
    standardize : bool or "each"
        ``True``: standardize both halves with the per-dimension mean/std of ``z_svm``
        (constants of the step) — the paper's "scaling of the latent variables".
        ``"each"``: standardize each half with its own mean and unbiased std (+1e-6), with
        gradients through these statistics — what the authors' released code does.
    reduction : {"sum", "mean"}
        ``"sum"`` over ``z_loss`` is the paper's eq. (5); ``"mean"`` divides by ``m``
        so that the weight ``lambda`` does not depend on the batch size.
    solver_dtype : torch.dtype
        Precision of the kernel matrix and the dual solve (float64 by default; the
        result is cast back to the dtype of the codes).

    Returns
    -------
    GuidanceOutput

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> z = torch.randn(100, 8, generator=g, requires_grad=True)
    >>> out = guidance_loss(z[:50], z[50:], nu=0.5, expander_weight=1.0, compactor_weight=0.0)
    >>> out.loss.backward()
    >>> bool(z.grad[50:].abs().sum() == 0)
    True
    """
    if z_svm.dim() != 2 or z_loss.dim() != 2 or z_svm.shape[1] != z_loss.shape[1]:
        raise ValueError(f"z_svm and z_loss must be (n, d) and (m, d) with the same d; got {tuple(z_svm.shape)} and {tuple(z_loss.shape)}")
    if expander_weight < 0 or compactor_weight < 0:
        raise ValueError(f"expander_weight and compactor_weight must be >= 0; got {expander_weight}, {compactor_weight}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean'; got {reduction!r}")
    if z_svm.shape[0] == 0 or z_loss.shape[0] == 0:
        raise ValueError("z_svm and z_loss must not be empty")
    if not (isinstance(standardize, bool) or standardize == "each"):
        raise ValueError(f"standardize must be True, False or 'each'; got {standardize!r}")
    on_cpu = z_svm.device.type == "cpu" and z_loss.device.type == "cpu"
    if on_cpu and solver_dtype == torch.float64 and standardize != "each":
        return _guidance_cpu(z_svm, z_loss, nu, gamma, expander_weight, compactor_weight, standardize, reduction)
    return _guidance_composite(z_svm, z_loss, nu, gamma, expander_weight, compactor_weight, standardize, reduction,
                               solver_dtype)


def _guidance_composite(z_svm, z_loss, nu, gamma, expander_weight, compactor_weight, standardize, reduction,
                        solver_dtype=torch.float64) -> GuidanceOutput:
    """:func:`guidance_loss` as a composition of differentiable torch operations (any device)."""
    out_dtype = z_svm.dtype
    zs = _route(z_svm, expander_weight).to(solver_dtype)
    zl = _route(z_loss, compactor_weight).to(solver_dtype)
    if standardize == "each":
        zs, zl = _standardize_each(zs), _standardize_each(zl)
    elif standardize:
        zs, zl = _standardize(zs, zl)
    g = float(resolve_gamma(zs, gamma))
    # One graph: every gradient path into z_svm is the expander, into z_loss the
    # compactor; _route scales (or stops) each at the input.
    sol = solve_dual_rbf(zs, nu, g)
    f = decision_values(zs, sol.alpha, sol.rho, zl, g)
    penalty = torch.relu(-f)
    loss = penalty.sum() if reduction == "sum" else penalty.mean()
    with torch.no_grad():
        misclassified = float((f < 0).to(torch.float64).mean()) if f.numel() else 0.0
        n_support = int((sol.alpha > 0).sum())
        rho = sol.rho.detach().item()
    return GuidanceOutput(
        loss=loss.to(out_dtype),
        misclassified_fraction=misclassified,
        n_support=n_support,
        rho=rho,
        n_iter=int(sol.n_iter),
        gamma=g,
    )


def _guidance_cpu(z_svm, z_loss, nu, gamma, expander_weight, compactor_weight, standardize, reduction) -> GuidanceOutput:
    """:func:`guidance_loss` as one autograd node with compiled forward and backward (CPU)."""
    check_nu(nu)
    n = z_svm.shape[0]
    if nu * n < 1.0 - 1e-12:
        raise ValueError(f"nu * n must be >= 1 (got nu={nu}, n={n}, nu*n={nu * n:.4g}); use more points or a larger nu")
    for name, z in (("z_svm", z_svm), ("z_loss", z_loss)):
        if z.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{name} must be float32 or float64; got {z.dtype}")
    info: dict = {}
    opts = (gamma, float(nu), 100, _DEFAULT_TOL[torch.float64], bool(standardize), reduction == "mean",
            float(expander_weight), float(compactor_weight))
    loss = _GuidanceCpu.apply(z_svm, z_loss, opts, info)
    return GuidanceOutput(loss, info["misclassified_fraction"], info["n_support"], info["rho"], info["n_iter"],
                          info["gamma"])


class _GuidanceCpu(torch.autograd.Function):
    """``(z_svm, z_loss) -> penalty`` on the CPU; see :func:`_cpu_layer.penalty_backward`.

    Standardization statistics and gamma are constants of the step (as in the composite
    path); the routing weights scale the gradient of each half in the backward.
    """

    @staticmethod
    def forward(ctx, z_svm, z_loss, opts, info):
        from ogae_core.ocsvm import _cpu_layer

        gamma_spec, nu, max_iter, tol, standardize, mean_reduction, w_svm, w_loss = opts
        zs, zl = _as_float64(z_svm), _as_float64(z_loss)
        if not np.isfinite(zl).all():
            raise ValueError("z_loss contains non-finite values (nan or inf)")
        std = None
        if standardize:
            zs, zl, std = _cpu_layer.standardize_pair(zs, zl, 1e-8)
        gamma = float(resolve_gamma(torch.from_numpy(zs), gamma_spec))
        alpha, rho, saved = _solve_points_cpu(zs, (gamma, nu, max_iter, tol, True), info)
        Kl, f = _cpu_layer.penalty_forward(zs, zl, alpha, rho, gamma)
        scale = 1.0 / f.shape[0] if mean_reduction else 1.0
        info.update(misclassified_fraction=float((f < 0).mean()), n_support=int((alpha > 0).sum()), rho=float(rho),
                    gamma=gamma)
        ctx.state = (zl, Kl, f, scale, std, saved, w_svm, w_loss, z_svm.dtype, z_loss.dtype)
        return torch.from_numpy(np.array(scale * np.maximum(-f, 0.0).sum())).to(z_svm.dtype)

    @staticmethod
    def backward(ctx, grad):
        from ogae_core.ocsvm import _cpu_layer

        zl, Kl, f, scale, std, saved, w_svm, w_loss, dtype_svm, dtype_loss = ctx.state
        want_svm = bool(ctx.needs_input_grad[0] and w_svm != 0)
        want_loss = bool(ctx.needs_input_grad[1] and w_loss != 0)
        if not (want_svm or want_loss):
            return None, None, None, None
        zs, K, gamma, alpha, state, LU, piv, fidx, m = saved
        g_svm, g_loss = _cpu_layer.penalty_backward(zs, zl, Kl, f, scale * grad.item(), want_svm, want_loss,
                                                    K, gamma, alpha, state, LU, piv, fidx, m)
        if std is not None:
            g_svm, g_loss = g_svm / std, g_loss / std
        return (torch.from_numpy(w_svm * g_svm).to(dtype_svm) if want_svm else None,
                torch.from_numpy(w_loss * g_loss).to(dtype_loss) if want_loss else None, None, None)


def _standardize_each(z: torch.Tensor) -> torch.Tensor:
    """``(z - mean) / (std + 1e-6)`` with the statistics of ``z`` itself (unbiased std),
    differentiable through them (the authors' released code; one point: std 0)."""
    std = z.std(dim=0) if z.shape[0] > 1 else torch.zeros_like(z[0])
    return (z - z.mean(dim=0)) / (std + 1e-6)


def _route(z: torch.Tensor, weight: float) -> torch.Tensor:
    """Same values as ``z``; gradient multiplied by ``weight`` (stopped when 0)."""
    if weight == 0:
        return z.detach()
    if weight == 1:
        return z
    return z.detach() + weight * (z - z.detach())


