"""Input checks shared by the OCSVM solvers and estimator (clear errors, no guessing)."""
from __future__ import annotations

import numbers

import torch


def check_nu(nu: float) -> float:
    """Return ``nu`` as float or raise ``ValueError`` unless ``0 < nu <= 1``.

    Examples
    --------
    >>> check_nu(0.5)
    0.5
    """
    if isinstance(nu, bool) or not isinstance(nu, numbers.Real):
        raise ValueError(f"nu must be a real number in (0, 1]; got {nu!r}")
    nu = float(nu)
    if not (0.0 < nu <= 1.0):
        raise ValueError(f"nu must be in (0, 1]; got {nu}")
    return nu


def check_kernel_matrix(K, nu: float, check_values: bool = True) -> torch.Tensor:
    """Validate one ``(n, n)`` or a batch ``(B, n, n)`` of kernel matrices.

    Raises ``ValueError`` naming the problem: not a tensor of floats, wrong number of
    dimensions, non-square, empty, non-finite entries, non-symmetric (relative
    tolerance 1e-10 in float64, 1e-5 in float32), or ``nu * n < 1`` (the box
    ``alpha_i <= 1/(nu n)`` would then be inactive and the problem is not an OCSVM).

    Examples
    --------
    >>> import torch
    >>> check_kernel_matrix(torch.eye(3), 0.5).shape
    torch.Size([3, 3])
    """
    if not isinstance(K, torch.Tensor):
        raise ValueError(f"K must be a torch.Tensor; got {type(K).__name__}")
    if K.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"K must be float32 or float64; got {K.dtype}")
    if K.dim() not in (2, 3):
        raise ValueError(f"K must have shape (n, n) or (B, n, n); got {tuple(K.shape)}")
    n = K.shape[-1]
    if K.shape[-2] != n:
        raise ValueError(f"K must be square; got {tuple(K.shape)}")
    if n == 0 or (K.dim() == 3 and K.shape[0] == 0):
        raise ValueError(f"K must not be empty; got {tuple(K.shape)}")
    if nu * n < 1.0 - 1e-12:
        raise ValueError(f"nu * n must be >= 1 (got nu={nu}, n={n}, nu*n={nu * n:.4g}); use more points or a larger nu")
    if check_values:
        with torch.no_grad():
            finite = bool(torch.isfinite(K).all())
            scale = float(K.abs().amax()) if finite else 0.0
            asym = float((K - K.transpose(-1, -2)).abs().amax()) if finite else 0.0
        raise_for_values(finite, asym, scale, K.dtype)
    return K


def symmetry_rtol(dtype: torch.dtype) -> float:
    """Relative tolerance of the symmetry check: 1e-10 (float64), 1e-5 (float32)."""
    return 1e-10 if dtype == torch.float64 else 1e-5


def raise_for_values(finite: bool, asym: float, scale: float, dtype: torch.dtype) -> None:
    """Raise the documented ``ValueError`` for non-finite or non-symmetric ``K``."""
    if not finite:
        raise ValueError("K contains non-finite values (nan or inf)")
    if asym > symmetry_rtol(dtype) * (scale or 1.0):
        raise ValueError(f"K must be symmetric; max |K - K^T| = {asym:.3g}")
