"""The compiled CPU engine's OgAE guidance penalty: one autograd node, one compiled call each way.

Forward: standardization (optional: :func:`standardize_pair` with the fitted half's statistics as
constants, or :func:`standardize_own` each half with its own, differentiably), the layer on points
(:func:`~ogae_core.ocsvm.cpu_engine.layer.solve_points`) on the fitted half, decision
values of the penalized half (:func:`penalty_forward`) and ``sum_l max(0, -f_l)``.
Backward (:func:`penalty_backward`): the gradient to both halves, where the fitted half
also moves ``alpha`` and ``rho`` through
:func:`~ogae_core.ocsvm.cpu_engine.layer.layer_backward`. :class:`GuidanceCpu` is the node
:func:`ogae_core.ocsvm.guidance_loss` applies on the CPU; the torch composition it equals
is :func:`ogae_core.ocsvm.guidance.guidance_loss_composite`.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

from ogae_core.ocsvm.cpu_engine.builds import one_blas_thread
from ogae_core.ocsvm.cpu_engine.layer import as_float64, layer_backward, solve_points
from ogae_core.ocsvm.cpu_engine.rbf import add_weighted_differences, rbf_cross
from ogae_core.ocsvm.kernels import resolve_gamma

__all__ = ["GuidanceCpu", "penalty_backward", "penalty_forward", "standardize_own", "standardize_own_backward",
           "standardize_pair"]


@njit(cache=True)
def _column_mean_std(z, floor):
    """Per-column mean and population standard deviation of ``z`` (the deviation at least ``floor``)."""
    n, d = z.shape
    mean = np.zeros(d)
    std = np.zeros(d)
    for i in range(n):
        for k in range(d):
            mean[k] += z[i, k]
    mean /= n
    for i in range(n):
        for k in range(d):
            v = z[i, k] - mean[k]
            std[k] += v * v
    for k in range(d):
        std[k] = max(np.sqrt(std[k] / n), floor)
    return mean, std


@njit(cache=True)
def _apply_standardization(z, mean, std):
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        for k in range(z.shape[1]):
            out[i, k] = (z[i, k] - mean[k]) / std[k]
    return out


@njit(cache=True)
def standardize_pair(zs, zl, eps):
    """``(zs - mean) / std`` and ``(zl - mean) / std`` with the per-column mean and
    population standard deviation (at least ``eps``) of ``zs``; also returns ``std``."""
    mean, std = _column_mean_std(zs, eps)
    return _apply_standardization(zs, mean, std), _apply_standardization(zl, mean, std), std


@njit(cache=True)
def standardize_own(z):
    """``(z - mean) / std`` with the per-column mean and population standard deviation of ``z``
    itself (the authors' rule: no epsilon; a zero deviation is floored at ``1e-12``, see
    :func:`ogae_core.ocsvm.kernels.standardize`); also returns ``std``."""
    mean, std = _column_mean_std(z, 1e-12)
    return _apply_standardization(z, mean, std), std


@njit(cache=True)
def standardize_own_backward(g, y, std):
    """Gradient w.r.t. ``z`` of :func:`standardize_own` given ``g`` w.r.t. its output ``y``:
    per column ``(g - mean(g) - y mean(g y)) / std`` (the mean and the population deviation
    both depend on ``z``)."""
    n, d = g.shape
    out = np.empty_like(g)
    for k in range(d):
        mg = 0.0
        mgy = 0.0
        for i in range(n):
            mg += g[i, k]
            mgy += g[i, k] * y[i, k]
        mg /= n
        mgy /= n
        for i in range(n):
            out[i, k] = (g[i, k] - mg - y[i, k] * mgy) / std[k]
    return out


@njit(cache=True)
def penalty_forward(zs, zl, alpha, rho, gamma):
    """Cross kernel ``Kl = rbf(zs, zl)`` ``(n, m)`` and decision values ``f = alpha Kl - rho``."""
    Kl = rbf_cross(zs, zl, gamma)
    n, m = Kl.shape
    f = np.full(m, -rho)
    for i in range(n):
        for l in range(m):
            f[l] += alpha[i] * Kl[i, l]
    return Kl, f


@njit(cache=True)
def penalty_backward(zs, zl, Kl, f, scale, want_svm, want_loss,
                     K, gamma, alpha, state, LU, piv, fidx, m):
    """Gradients of ``scale * sum_l max(0, -f_l)`` w.r.t. ``zs`` and ``zl``.

    With ``w_l = -scale [f_l < 0]`` (``dL/df_l``): ``dL/dKl_il = alpha_i w_l``, hence
    ``dL/dzs_i = sum_l c_il (zs_i - zl_l)`` and ``dL/dzl_l = sum_i c_il (zl_l - zs_i)``
    with ``c_il = -2 gamma alpha_i w_l Kl_il``; ``zs`` also moves ``alpha`` and ``rho``
    (``dL/dalpha = Kl w``, ``dL/drho = -sum w``), chained by :func:`layer_backward`.
    ``want_svm`` / ``want_loss`` skip a side whose gradient is not needed (zeros).
    """
    n, d = zs.shape
    nl = zl.shape[0]
    w = np.zeros(nl)
    for l in range(nl):
        if f[l] < 0.0:
            w[l] = -scale
    c = np.empty((n, nl))
    for i in range(n):
        for l in range(nl):
            c[i, l] = -2.0 * gamma * alpha[i] * w[l] * Kl[i, l]
    g_svm = np.zeros((n, d))
    g_loss = np.zeros((nl, d))
    if want_loss:
        g_loss = add_weighted_differences(-(c.T @ zs), c.T, zl)
    if want_svm:
        g_svm = layer_backward(zs, K, gamma, alpha, state, LU, piv, fidx, m, Kl @ w, -w.sum()) - c @ zl
        g_svm = add_weighted_differences(g_svm, c, zs)
    return g_svm, g_loss


class GuidanceCpu(torch.autograd.Function):
    """``(z_svm, z_loss) -> penalty`` on the CPU; see :func:`penalty_backward`.

    ``apply(z_svm, z_loss, opts, info)`` with ``opts = (gamma_spec, nu, max_iter, tol,
    standardize, mean_reduction, w_svm, w_loss)``; ``info`` (a dict) receives the
    diagnostics (``n_iter``, ``kkt_residual``, ``n_fallback``, ``misclassified_fraction``,
    ``n_support``, ``rho``, ``gamma``). ``standardize``: ``False``, ``True`` (the fitted
    half's statistics for both, constants of the step) or ``"each"`` (each half its own,
    with gradients through the statistics, :func:`standardize_own_backward`); gamma is a
    constant of the step (as in the composite path); the routing weights scale the gradient
    of each half in the backward.
    """

    @staticmethod
    @one_blas_thread()  # small products: BLAS threads would compete with torch's
    def forward(ctx, z_svm, z_loss, opts, info):
        gamma_spec, nu, max_iter, tol, standardize, mean_reduction, w_svm, w_loss = opts
        zs, zl = as_float64(z_svm), as_float64(z_loss)
        if not np.isfinite(zl).all():
            raise ValueError("z_loss contains non-finite values (nan or inf)")
        std = own = None
        if standardize == "each":
            (zs, std_s), (zl, std_l) = standardize_own(zs), standardize_own(zl)
            own = (std_s, std_l)
        elif standardize:
            zs, zl, std = standardize_pair(zs, zl, 1e-8)
        gamma = float(resolve_gamma(torch.from_numpy(zs), gamma_spec))
        sol = solve_points(zs, gamma, nu, max_iter, tol, True)
        alpha, rho = sol.alpha, sol.rho
        Kl, f = penalty_forward(zs, zl, alpha, rho, gamma)
        scale = 1.0 / f.shape[0] if mean_reduction else 1.0
        info.update(n_iter=sol.n_iter, kkt_residual=sol.kkt_residual, n_fallback=sol.n_fallback,
                    misclassified_fraction=float((f < 0).mean()), n_support=int((alpha > 0).sum()), rho=float(rho),
                    gamma=gamma)
        ctx.state = (zl, Kl, f, scale, std, own, sol.factors, w_svm, w_loss, z_svm.dtype, z_loss.dtype)
        return torch.from_numpy(np.array(scale * np.maximum(-f, 0.0).sum())).to(z_svm.dtype)

    @staticmethod
    @one_blas_thread()
    def backward(ctx, grad):
        zl, Kl, f, scale, std, own, factors, w_svm, w_loss, dtype_svm, dtype_loss = ctx.state
        want_svm = bool(ctx.needs_input_grad[0] and w_svm != 0)
        want_loss = bool(ctx.needs_input_grad[1] and w_loss != 0)
        if not (want_svm or want_loss):
            return None, None, None, None
        zs, K, gamma, alpha, state, LU, piv, fidx, m = factors
        g_svm, g_loss = penalty_backward(zs, zl, Kl, f, scale * grad.item(), want_svm, want_loss,
                                         K, gamma, alpha, state, LU, piv, fidx, m)
        if std is not None:
            g_svm, g_loss = g_svm / std, g_loss / std
        if own is not None:  # through each half's own statistics
            g_svm = standardize_own_backward(g_svm, zs, own[0]) if want_svm else g_svm
            g_loss = standardize_own_backward(g_loss, zl, own[1]) if want_loss else g_loss
        return (torch.from_numpy(w_svm * g_svm).to(dtype_svm) if want_svm else None,
                torch.from_numpy(w_loss * g_loss).to(dtype_loss) if want_loss else None, None, None)
