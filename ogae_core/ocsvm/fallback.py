"""What happens when the active set does not settle: libsvm's SMO, then the KKT check.

Both engines send the problems of a batch that did not converge (or missed the KKT
tolerance) to :func:`libsvm_alpha`, restart from the index sets read off its solution
(:func:`state_from_alpha`), and :func:`check_residual` raises
:class:`SolverConvergenceError` (or warns) for any problem still above tolerance.

Examples
--------
>>> import numpy as np
>>> state_from_alpha(np.array([0.0, 0.25, 0.5]), C=0.5).tolist()
[0, 1, 2]
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ogae_core.ocsvm.tolerances import FALLBACK_SET_REL

__all__ = ["SolverConvergenceError", "check_residual", "libsvm_alpha", "state_from_alpha"]


class SolverConvergenceError(RuntimeError):
    """Raised when the OCSVM dual could not be solved to the KKT tolerance."""


def libsvm_alpha(Kn: np.ndarray, nu: float) -> np.ndarray:
    """Solve each problem of ``(B, n, n)`` with libsvm's SMO (float64); paper scaling."""
    from sklearn.svm import OneClassSVM as _SkOCSVM

    B, n, _ = Kn.shape
    alphas = np.zeros((B, n))
    for b in range(B):
        model = _SkOCSVM(kernel="precomputed", nu=nu, tol=1e-12, shrinking=False, max_iter=100_000 * n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(Kn[b])
        alphas[b, model.support_] = model.dual_coef_.ravel() / (nu * n)
    return alphas


def state_from_alpha(alpha: np.ndarray, C: float) -> np.ndarray:
    """Index sets (0 lower, 1 free, 2 upper) read off an approximate solution
    (bounds within :data:`~ogae_core.ocsvm.tolerances.FALLBACK_SET_REL` ``* C``)."""
    rel = FALLBACK_SET_REL
    state = np.ones(alpha.shape, dtype=np.int8)
    state[alpha <= C * rel] = 0
    state[alpha >= C * (1 - rel)] = 2
    return state


def check_residual(res: torch.Tensor, tol: float, strict: bool, batch: int) -> None:
    """Raise :class:`SolverConvergenceError` (``strict``) or warn when a KKT residual exceeds ``tol``."""
    worst = float(res.max())
    if worst <= tol:
        return
    msg = (
        f"OCSVM dual not solved to tolerance {tol:g} for {int((res > tol).sum())} of {batch} problems "
        f"(worst KKT residual {worst:.3g}) even after the libsvm fallback; check that K is positive "
        "semidefinite and well scaled"
    )
    if strict:
        raise SolverConvergenceError(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=4)
