"""The compiled CPU engine on kernel matrices: solve (with the libsvm fallback) and ``dL/dK``.

:func:`solve_kernels` is what :func:`ogae_core.ocsvm.solve_dual` runs for CPU tensors:
the batched compiled solver (:func:`~ogae_core.ocsvm.cpu_engine.active_set.solve_batch`,
float64), libsvm's SMO for the problems that did not settle, and a warm restart from
libsvm's sets. :func:`grad_K` is its backward.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ogae_core.ocsvm.cpu_engine import active_set, backward
from ogae_core.ocsvm.fallback import libsvm_alpha, state_from_alpha
from ogae_core.ocsvm.tolerances import RIDGE, SET_TOL
from ogae_core.validation import raise_for_values

__all__ = ["CpuFactors", "CpuForward", "grad_K", "solve_kernels"]


class CpuFactors(NamedTuple):
    """What the backward pass needs from a forward (float64 NumPy arrays)."""

    K: np.ndarray
    alpha: np.ndarray
    state: np.ndarray
    LU: np.ndarray
    piv: np.ndarray
    fidx: np.ndarray
    msize: np.ndarray


class CpuForward(NamedTuple):
    """Forward result (alpha and rho in the dtype of ``K``) plus the factors for :func:`grad_K`."""

    alpha: torch.Tensor
    rho: torch.Tensor
    n_iter: int
    residual: torch.Tensor
    n_fallback: int
    saved: CpuFactors


def solve_kernels(K: torch.Tensor, nu: float, max_iter: int, tol: float, keep: bool) -> CpuForward:
    """Solve a batch ``(B, n, n)`` of CPU kernel matrices (reduced systems, float64, threads over the batch).

    Raises the documented ``ValueError`` for non-finite or non-symmetric ``K`` (checked in
    the same compiled pass). ``keep``: keep the factors for the backward pass.
    """
    Kn = K.detach().numpy()
    Kn = np.ascontiguousarray(Kn, dtype=np.float64)
    raise_for_values(*active_set.check_values(Kn), K.dtype)
    B, n, _ = Kn.shape
    state = np.zeros((B, n), dtype=np.int8)
    stol = SET_TOL[torch.float64]
    ridge = RIDGE[torch.float64]
    sol = active_set.solve_batch(Kn, nu, max_iter, stol, ridge, keep, state, False)
    alpha, rho, state, LU, piv, fidx, msize, res = sol.alpha, sol.rho, sol.state, sol.LU, sol.piv, sol.fidx, sol.m, \
        sol.residual
    bad = (sol.status != 0) | ~(res <= tol)
    n_fb = int(bad.sum())
    if n_fb:
        idx = np.flatnonzero(bad)
        a0 = libsvm_alpha(Kn[idx], nu)
        st0 = state_from_alpha(a0, 1.0 / (nu * n))
        redo = active_set.solve_batch(np.ascontiguousarray(Kn[idx]), nu, max(max_iter, 3 * n), stol, ridge, keep,
                                      st0, True)
        alpha[idx], rho[idx], state[idx] = redo.alpha, redo.rho, redo.state
        fidx[idx], msize[idx], res[idx] = redo.fidx, redo.m, redo.residual
        if keep:
            LU[idx], piv[idx] = redo.LU, redo.piv
    saved = CpuFactors(K=Kn, alpha=alpha, state=state, LU=LU, piv=piv, fidx=fidx, msize=msize)
    return CpuForward(
        torch.from_numpy(alpha).to(K.dtype),
        torch.from_numpy(rho).to(K.dtype),
        int(sol.n_iter.max()),
        torch.from_numpy(res),
        n_fb,
        saved,
    )


def grad_K(saved: CpuFactors, grad_alpha, grad_rho) -> np.ndarray:
    """dL/dK ``(B, n, n)`` (float64, symmetric) from a forward's :class:`CpuFactors`."""
    K = saved.K
    B, n, _ = K.shape
    ga = np.zeros((B, n)) if grad_alpha is None else grad_alpha.detach().to(torch.float64).numpy().reshape(B, n)
    gr = np.zeros(B) if grad_rho is None else grad_rho.detach().to(torch.float64).numpy().reshape(B)
    return backward.backward_batch(K, saved.alpha, saved.state, saved.LU, saved.piv, saved.fidx, saved.msize, ga, gr)
