"""RBF kernel, gamma rules and per-batch latent standardization (torch; public).

All functions work on torch tensors of any floating dtype and device and are
differentiable with respect to their tensor inputs. :func:`rbf_kernel` and
:func:`standardize` are the torch engine's one RBF kernel and one standardization (the
compiled CPU engine has its own, :mod:`ogae_core.ocsvm.cpu_engine.rbf` and
:func:`ogae_core.ocsvm.cpu_engine.guidance.standardize_pair`). For 2-D CPU inputs that need
a gradient, :func:`rbf_kernel` is one autograd node computing the same formula in NumPy
with a closed-form backward (:func:`rbf_input_grads`).
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch

GammaSpec = Union[float, str]


def resolve_gamma(z: torch.Tensor, gamma: GammaSpec) -> float | torch.Tensor:
    """Turn a gamma rule into a number, as scikit-learn does.

    Parameters
    ----------
    z : torch.Tensor
        Points of shape ``(n, d)`` or batched ``(B, n, d)``.
    gamma : float or {"scale", "auto"}
        ``"scale"`` is ``1 / (d * Var(z))`` (variance over all entries of one
        problem, computed without gradient: gamma is a constant of the step);
        ``"auto"`` is ``1 / d``; a positive float is returned unchanged.

    Returns
    -------
    float or torch.Tensor
        A float, or for batched ``"scale"`` a tensor of shape ``(B, 1, 1)``.

    Examples
    --------
    >>> import torch
    >>> resolve_gamma(torch.zeros(4, 2), "auto")
    0.5
    """
    d = z.shape[-1]
    if isinstance(gamma, str):
        if gamma == "auto":
            return 1.0 / d
        if gamma == "scale":
            with torch.no_grad():
                if z.dim() == 2:
                    var = float(z.var(unbiased=False))
                    return 1.0 / (d * var) if var > 0 else 1.0
                var = z.flatten(-2).var(dim=-1, unbiased=False)
                var = torch.where(var > 0, var, torch.ones_like(var))
                return (1.0 / (d * var)).reshape(-1, *([1] * (z.dim() - 1)))
        raise ValueError(f"gamma must be a positive float, 'scale' or 'auto'; got {gamma!r}")
    gamma = float(gamma)
    if not gamma > 0:
        raise ValueError(f"gamma must be positive; got {gamma}")
    return gamma


def rbf_kernel(x: torch.Tensor, y: torch.Tensor | None = None, gamma: float | torch.Tensor = 1.0) -> torch.Tensor:
    """RBF kernel ``exp(-gamma * ||x_i - y_j||^2)``, batched over leading dims.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., n, d)``.
    y : torch.Tensor, optional
        ``(..., m, d)``; defaults to ``x`` (the result is then exactly symmetric).
    gamma : float or torch.Tensor
        Positive width; a tensor broadcasts against ``(..., n, m)``.

    Returns
    -------
    torch.Tensor
        ``(..., n, m)`` kernel matrix.

    Examples
    --------
    >>> import torch
    >>> K = rbf_kernel(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), gamma=1.0)
    >>> round(float(K[0, 1]), 4)
    0.3679
    """
    same = y is None
    y = x if same else y
    needs_graph = torch.is_grad_enabled() and (
        x.requires_grad or y.requires_grad or (isinstance(gamma, torch.Tensor) and gamma.requires_grad)
    )
    if needs_graph and x.dim() == 2 and not isinstance(gamma, torch.Tensor) and x.device.type == "cpu" and y.device.type == "cpu":
        # one autograd node with a closed-form backward in NumPy: the per-step OCSVM
        # layer is dominated by per-operation overhead, not arithmetic
        return _RBFCpu.apply(x, None if same else y, float(gamma))
    xx = (x * x).sum(-1, keepdim=True)
    yy = xx if same else (y * y).sum(-1, keepdim=True)
    base = xx + yy.transpose(-1, -2)
    if x.dim() == 2:
        sq = torch.addmm(base, x, y.T, alpha=-2.0)
    elif x.dim() == 3:
        sq = torch.baddbmm(base, x, y.transpose(-1, -2), alpha=-2.0)
    else:
        sq = base - 2.0 * x @ y.transpose(-1, -2)
    scale = -gamma
    if same:  # exact symmetry despite the rounding of the matrix product
        sq = sq + sq.transpose(-1, -2)
        scale = -0.5 * gamma
    if needs_graph:
        return torch.exp(sq.clamp_min(0.0) * scale)
    # no graph: fused in-place ops (large batches of kernels, scoring)
    return sq.clamp_min_(0.0).mul_(scale).exp_()


def _rbf_numpy(x: np.ndarray, y: np.ndarray | None, gamma: float) -> np.ndarray:
    """The same arithmetic as the torch path, in NumPy (2-D inputs)."""
    xx = np.einsum("ij,ij->i", x, x)
    if y is None:
        sq = xx[:, None] + xx[None, :] - 2.0 * (x @ x.T)
        sq = 0.5 * (sq + sq.T)
    else:
        sq = xx[:, None] + np.einsum("ij,ij->i", y, y)[None, :] - 2.0 * (x @ y.T)
    np.maximum(sq, 0.0, out=sq)
    return np.exp(-gamma * sq)


def rbf_input_grads(x: np.ndarray, y: np.ndarray, K: np.ndarray, grad_K: np.ndarray, gamma: float):
    """Gradients of a loss w.r.t. ``x`` and ``y`` given ``dL/dK`` for ``K = rbf(x, y)``.

    With ``W = -gamma * dL/dK * K``: ``dL/dx = 2 (diag(W 1) x - W y)`` and
    ``dL/dy = 2 (diag(W^T 1) y - W^T x)``; for ``K = rbf(x, x)`` the gradient is their sum.
    """
    W = -gamma * grad_K * K
    gx = 2.0 * (W.sum(1)[:, None] * x - W @ y)
    gy = 2.0 * (W.sum(0)[:, None] * y - W.T @ x)
    return gx, gy


class _RBFCpu(torch.autograd.Function):
    """RBF kernel of 2-D CPU tensors with a closed-form backward (:func:`rbf_input_grads`)."""

    @staticmethod
    def forward(ctx, x, y, gamma):
        xn = x.detach().numpy()
        yn = None if y is None else y.detach().numpy()
        K = torch.from_numpy(_rbf_numpy(xn, yn, gamma))
        ctx.gamma = gamma
        ctx.same = y is None
        ctx.save_for_backward(x, x if y is None else y, K)
        return K

    @staticmethod
    def backward(ctx, grad_K):
        x, y, K = ctx.saved_tensors
        gx, gy = rbf_input_grads(x.detach().numpy(), y.detach().numpy(), K.numpy(), grad_K.detach().numpy(), ctx.gamma)
        if ctx.same:
            return torch.from_numpy(gx + gy).to(x.dtype), None, None
        return torch.from_numpy(gx).to(x.dtype), torch.from_numpy(gy).to(y.dtype), None


def standardize(z_ref: torch.Tensor, *others: torch.Tensor, eps: float | None = None,
                rule: str = "paper") -> tuple[torch.Tensor, ...]:
    """Standardize latent codes per dimension with the statistics of ``z_ref``.

    The statistics (over the points, dimension ``-2``) are applied to ``z_ref`` and to
    every tensor in ``others``. Two rules:

    * ``"paper"`` (the paper's optional "scaling of the latent variables"): population
      standard deviation, floored at ``eps`` (default ``1e-8``); the mean and standard
      deviation are computed without gradient (constants of the step, like gamma);
    * ``"authors"`` (the authors' released TensorFlow code, ``models_coupled_tf.py``):
      population standard deviation with no epsilon (``eps`` default ``0``; a zero standard
      deviation is floored at ``1e-12`` only so that a degenerate batch gives large, finite
      codes instead of NaN), with gradients through the mean and the standard deviation.
      (The authors' PyTorch port uses the unbiased standard deviation plus ``1e-6``.)

    Examples
    --------
    >>> import torch
    >>> a, = standardize(torch.tensor([[0.0], [2.0]]))
    >>> a.flatten().tolist()
    [-1.0, 1.0]
    >>> b, = standardize(torch.tensor([[0.0], [2.0]]), rule="authors")
    >>> b.flatten().tolist()
    [-1.0, 1.0]
    """
    if rule == "paper":
        with torch.no_grad():
            mean = z_ref.mean(dim=-2, keepdim=True)
            std = z_ref.std(dim=-2, keepdim=True, unbiased=False).clamp_min(1e-8 if eps is None else eps)
    elif rule == "authors":
        # std before mean, as in the authors' code: the order fixes how autograd sums the
        # three gradient paths into z_ref, hence the last bits of the gradient
        std = z_ref.std(dim=-2, keepdim=True, unbiased=False)
        mean = z_ref.mean(dim=-2, keepdim=True)
        std = (std + (0.0 if eps is None else eps)).clamp_min(1e-12)
    else:
        raise ValueError(f"rule must be 'paper' or 'authors'; got {rule!r}")
    return tuple((t - mean) / std for t in (z_ref, *others))
