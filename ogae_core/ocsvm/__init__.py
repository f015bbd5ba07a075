"""Exact, batched, differentiable one-class SVM (paper scaling) and the OgAE guidance loss.

Public API
----------
solve_dual(K, nu)            -> DualSolution(alpha, rho, ...)  (differentiable)
solve_dual_rbf(z, nu, gamma) the same on rbf_kernel(z), fused into one node on the CPU
rbf_kernel(x, y, gamma)      RBF kernel; resolve_gamma(z, "scale" | "auto" | float)
standardize(z_ref, *others)  per-batch latent scaling
guidance_loss(z_svm, z_loss, nu=..., gamma=..., expander_weight=..., compactor_weight=...)
OneClassSVM(nu=0.5, gamma="scale")  scikit-learn compatible estimator
"""
from ogae_core.ocsvm.kernels import rbf_kernel, resolve_gamma, standardize
from ogae_core.ocsvm.solver import DualSolution, SolverConvergenceError, solve_dual
from ogae_core.ocsvm.points import solve_dual_rbf
from ogae_core.ocsvm.guidance import GuidanceOutput, guidance_loss
from ogae_core.ocsvm.estimator import OneClassSVM  # noqa: E402

__all__ = [
    "DualSolution",
    "GuidanceOutput",
    "OneClassSVM",
    "SolverConvergenceError",
    "guidance_loss",
    "rbf_kernel",
    "resolve_gamma",
    "solve_dual",
    "solve_dual_rbf",
    "standardize",
]
from ogae_core.ocsvm.localized import LocalizedOCSVM  # noqa: E402
