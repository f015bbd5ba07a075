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
and one compiled backward (:class:`ogae_core.ocsvm.cpu_engine.guidance.GuidanceCpu`; at the
paper's batch size the composition of torch operations costs several times the arithmetic).
Elsewhere it is the composition of differentiable torch operations
(:func:`guidance_loss_composite`); both give the same values and gradients (tested, to a
stated tolerance: the two compute in different orders).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ogae_core.ocsvm.kernels import GammaSpec, rbf_kernel, resolve_gamma
from ogae_core.ocsvm.kernels import standardize as standardize_codes
from ogae_core.ocsvm.layer_on_points import solve_dual_rbf
from ogae_core.ocsvm.tolerances import DEFAULT_TOL
from ogae_core.validation import check_nu, check_nu_times_n

__all__ = ["GuidanceOutput", "decision_values", "guidance_loss", "guidance_loss_composite"]


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
        ``"each"``: standardize each half with its own mean and population std (no
        epsilon), with gradients through these statistics — what the authors' released
        TensorFlow code does; the loss is then invariant to the scale of the codes. With
        ``True`` it is not: the expander can lower the penalty by inflating the raw scale,
        which the next step's standardization undoes (see :mod:`ogae_core.methods.ogae`).
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
    if on_cpu and solver_dtype == torch.float64:
        return _guidance_cpu(z_svm, z_loss, nu, gamma, expander_weight, compactor_weight, standardize, reduction)
    return guidance_loss_composite(z_svm, z_loss, nu, gamma, expander_weight, compactor_weight, standardize,
                                   reduction, solver_dtype)


def guidance_loss_composite(z_svm, z_loss, nu=0.5, gamma="scale", expander_weight=1.0, compactor_weight=1.0,
                            standardize=False, reduction="sum", solver_dtype=torch.float64) -> GuidanceOutput:
    """:func:`guidance_loss` as a composition of differentiable torch operations (any device).

    The same parameters and result as :func:`guidance_loss` (which checks them and calls
    this function off the CPU and for a float32 solve); the reference the fused CPU node is
    tested and benchmarked against.

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(60, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> a = guidance_loss_composite(z[:30], z[30:], nu=0.2)
    >>> b = guidance_loss(z[:30], z[30:], nu=0.2)
    >>> abs(a.loss.item() - b.loss.item()) <= 1e-10 * max(1.0, b.loss.item())
    True
    """
    out_dtype = z_svm.dtype
    zs = _route(z_svm, expander_weight).to(solver_dtype)
    zl = _route(z_loss, compactor_weight).to(solver_dtype)
    if standardize == "each":
        (zs,), (zl,) = standardize_codes(zs, rule="authors"), standardize_codes(zl, rule="authors")
    elif standardize:
        zs, zl = standardize_codes(zs, zl)
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
    from ogae_core.ocsvm.cpu_engine.guidance import GuidanceCpu  # numba loads on first use

    check_nu(nu)
    check_nu_times_n(nu, z_svm.shape[0])
    for name, z in (("z_svm", z_svm), ("z_loss", z_loss)):
        if z.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{name} must be float32 or float64; got {z.dtype}")
    info: dict = {}
    mode = standardize if standardize == "each" else bool(standardize)
    opts = (gamma, float(nu), 100, DEFAULT_TOL[torch.float64], mode, reduction == "mean",
            float(expander_weight), float(compactor_weight))
    loss = GuidanceCpu.apply(z_svm, z_loss, opts, info)
    return GuidanceOutput(loss, info["misclassified_fraction"], info["n_support"], info["rho"], info["n_iter"],
                          info["gamma"])


def _route(z: torch.Tensor, weight: float) -> torch.Tensor:
    """Same values as ``z``; gradient multiplied by ``weight`` (stopped when 0)."""
    if weight == 0:
        return z.detach()
    if weight == 1:
        return z
    return z.detach() + weight * (z - z.detach())
