"""Exact, batched, differentiable one-class SVM (paper scaling) and the OgAE guidance loss.

Public API
----------
solve_dual(K, nu)            -> DualSolution(alpha, rho, ...)  (differentiable)
solve_dual_rbf(z, nu, gamma) the same on rbf_kernel(z), fused into one node on the CPU
rbf_kernel(x, y, gamma)      RBF kernel; resolve_gamma(z, "scale" | "auto" | float)
standardize(z_ref, *others)  per-batch latent scaling
guidance_loss(z_svm, z_loss, nu=..., gamma=..., expander_weight=..., compactor_weight=...)
OneClassSVM(nu=0.5, gamma="scale")  scikit-learn compatible estimator
LocalizedOCSVM(nu, gamma)    V independent per-voxel OCSVMs fitted and scored in batch (MRI)

Layout
------
Public modules (what a user calls) sit at the top; each of the two engines is a
subpackage with its forward and its backward. Engines never import the public modules
(except :mod:`.kernels` for the gamma rule), so there is no import cycle.

==============================  ==========================================================
``solver.py``                   ``solve_dual`` on kernel matrices: checks, engine choice,
                                the autograd node; ``DualSolution``, ``kkt_residual``
``layer_on_points.py``          ``solve_dual_rbf``: the layer on points ``z -> (alpha, rho)``
``guidance.py``                 ``guidance_loss`` (the OgAE guidance node), ``GuidanceOutput``,
                                ``decision_values``, ``guidance_loss_composite``
``kernels.py``                  ``rbf_kernel``, ``resolve_gamma``, ``standardize`` (torch)
``estimator.py``                ``OneClassSVM`` (scikit-learn compatible)
``persistence.py``              save/load of ``OneClassSVM`` (safetensors + JSON)
``localized.py``                ``LocalizedOCSVM``: one OCSVM per voxel, batched BLAS kernels
``localized_io.py``             its save/load (support vectors only, ragged; safetensors + JSON)
``model_files.py``              the model directory both share: target checks, atomic write,
                                JSON and safetensors reading with their errors
``cvxpy_backend.py``            the paper's cvxpylayers formulation (reference backend)
``fallback.py``                 libsvm fallback, ``SolverConvergenceError``, KKT check
``tolerances.py``               ridge, set and KKT tolerances per dtype
``cpu_engine/``                 compiled (numba, float64) engine: ``active_set`` (forward),
                                ``backward``, ``forward`` (solve + fallback, ``dL/dK`` on
                                kernels), ``layer`` (layer on points, forward + backward),
                                ``guidance`` (fused guidance node), ``rbf`` (its one RBF
                                kernel), ``linalg``, ``builds``
``torch_engine/``               batched tensor engine (any device): ``active_set`` (forward),
                                ``backward`` (implicit differentiation), ``forward``
                                (solve + fallback, ``kkt_residual``, ``dL/dK``)
==============================  ==========================================================

Parameter checks (``check_nu``, ``check_kernel_matrix``, ...) live in
:mod:`ogae_core.validation` with those of the rest of the package.

Examples
--------
>>> import torch
>>> z = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
>>> sol = solve_dual_rbf(z, nu=0.2, gamma=0.5)
>>> round(float(sol.alpha.sum()), 6)
1.0
"""
from ogae_core.ocsvm.kernels import rbf_kernel, resolve_gamma, standardize
from ogae_core.ocsvm.solver import DualSolution, SolverConvergenceError, solve_dual
from ogae_core.ocsvm.layer_on_points import solve_dual_rbf
from ogae_core.ocsvm.guidance import GuidanceOutput, guidance_loss
from ogae_core.ocsvm.estimator import OneClassSVM  # noqa: E402

__all__ = [
    "LocalizedOCSVM",
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
