"""Parameter checks shared by every module: one wording per kind of mistake.

Each check returns the value it accepted (converted to a plain Python type) or raises
``ValueError`` naming the parameter, the accepted range and what it got.

Examples
--------
>>> check_integer("epochs", 3, minimum=1)
3
>>> check_integer("epochs", True, minimum=1)
Traceback (most recent call last):
...
ValueError: epochs must be an integer >= 1; got True
>>> check_nu_times_n(0.1, 5)
Traceback (most recent call last):
...
ValueError: nu * n must be >= 1 (got nu=0.1, n=5, nu*n=0.5); use more points or a larger nu
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_integer", "check_kernel_matrix", "check_nu", "check_nu_times_n", "check_real", "is_integer",
           "is_real", "raise_for_values", "symmetry_rtol"]


def is_integer(value) -> bool:
    """True for Python and NumPy integers, False for ``bool`` and everything else.

    Examples
    --------
    >>> is_integer(3), is_integer(np.int64(3)), is_integer(True), is_integer(3.0)
    (True, True, False, False)
    """
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (numbers.Integral, np.integer))


def is_real(value) -> bool:
    """True for Python and NumPy real numbers (integers included, NaN too), False for ``bool``.

    Examples
    --------
    >>> is_real(0.5), is_real(np.float32(1)), is_real(2), is_real(True), is_real("1")
    (True, True, True, False, False)
    """
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (numbers.Real, np.floating, np.integer))


def check_integer(name: str, value, minimum: int | None = None, maximum: int | None = None,
                  allow_none: bool = False) -> int | None:
    """``value`` as ``int`` if it is an integer in ``[minimum, maximum]``, else ``ValueError``.

    Parameters
    ----------
    name : str
        Parameter name used in the message.
    value : object
        Value to check (``bool`` is refused).
    minimum, maximum : int, optional
        Inclusive bounds.
    allow_none : bool
        Accept ``None`` (returned unchanged).

    Examples
    --------
    >>> check_integer("digit", 7, 0, 9)
    7
    >>> check_integer("max_test", None, 1, allow_none=True) is None
    True
    >>> check_integer("digit", 10, 0, 9)
    Traceback (most recent call last):
    ...
    ValueError: digit must be an integer in [0, 9]; got 10
    """
    if value is None and allow_none:
        return None
    ok = is_integer(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        if minimum is not None and maximum is not None:
            bound = f" in [{minimum}, {maximum}]"
        elif minimum is not None:
            bound = f" >= {minimum}"
        elif maximum is not None:
            bound = f" <= {maximum}"
        else:
            bound = ""
        tail = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an integer{bound}{tail}; got {value!r}")
    return int(value)


def check_real(name: str, value, minimum: float | None = None, maximum: float | None = None, *,
               strict_minimum: bool = False) -> float:
    """``value`` as ``float`` if it is a finite real number within the bounds, else ``ValueError``.

    ``strict_minimum`` excludes the lower bound (``> minimum`` instead of ``>= minimum``).

    Examples
    --------
    >>> check_real("lr", 1e-3, 0, strict_minimum=True)
    0.001
    >>> check_real("lr", 0, 0, strict_minimum=True)
    Traceback (most recent call last):
    ...
    ValueError: lr must be a real number > 0; got 0
    """
    ok = is_real(value)
    if ok:
        v = float(value)
        ok = np.isfinite(v) and (minimum is None or (v > minimum if strict_minimum else v >= minimum)) \
            and (maximum is None or v <= maximum)
    if not ok:
        parts = []
        if minimum is not None:
            parts.append(f"{'>' if strict_minimum else '>='} {minimum}")
        if maximum is not None:
            parts.append(f"<= {maximum}")
        bound = (" " + " and ".join(parts)) if parts else ""
        raise ValueError(f"{name} must be a real number{bound}; got {value!r}")
    return float(value)


def check_nu_times_n(nu: float, n: int, what: str = "") -> None:
    """Raise ``ValueError`` unless ``nu * n >= 1`` (an OCSVM of ``n`` points needs it).

    ``what`` names the problem in the message (e.g. ``"voxel (12, 40)"``).

    Examples
    --------
    >>> check_nu_times_n(0.5, 2)
    """
    if nu * n < 1.0 - 1e-12:
        where = f" for {what}" if what else ""
        raise ValueError(f"nu * n must be >= 1{where} (got nu={nu}, n={n}, nu*n={nu * n:.4g}); "
                         "use more points or a larger nu")


# --------------------------------------------------------------------------- OCSVM inputs


def check_nu(nu) -> float:
    """``nu`` as ``float`` if it is a real number in ``(0, 1]`` (the OCSVM's nu), else ``ValueError``.

    Examples
    --------
    >>> check_nu(0.5)
    0.5
    >>> check_nu(0)
    Traceback (most recent call last):
    ...
    ValueError: nu must be in (0, 1]; got 0
    """
    if not (is_real(nu) and 0.0 < float(nu) <= 1.0):
        raise ValueError(f"nu must be in (0, 1]; got {nu!r}")
    return float(nu)


def symmetry_rtol(dtype) -> float:
    """Relative tolerance of the kernel symmetry check: 1e-10 (float64), 1e-5 (float32)."""
    import torch

    return 1e-10 if dtype == torch.float64 else 1e-5


def raise_for_values(finite: bool, asym: float, scale: float, dtype) -> None:
    """Raise the documented ``ValueError`` for a non-finite or non-symmetric kernel matrix ``K``.

    ``asym`` is ``max |K - K^T|``, ``scale`` is ``max |K|``, ``dtype`` that of ``K``.

    Examples
    --------
    >>> import torch
    >>> raise_for_values(True, 0.5, 1.0, torch.float64)
    Traceback (most recent call last):
    ...
    ValueError: K must be symmetric; max |K - K^T| = 0.5
    """
    if not finite:
        raise ValueError("K contains non-finite values (nan or inf)")
    if asym > symmetry_rtol(dtype) * (scale or 1.0):
        raise ValueError(f"K must be symmetric; max |K - K^T| = {asym:.3g}")


def check_kernel_matrix(K, nu: float, check_values: bool = True):
    """Validate one ``(n, n)`` or a batch ``(B, n, n)`` of OCSVM kernel matrices; returns ``K``.

    Raises ``ValueError`` naming the problem: not a tensor of floats, wrong number of
    dimensions, non-square, empty, ``nu * n < 1`` (the box ``alpha_i <= 1/(nu n)`` would
    then be inactive and the problem is not an OCSVM) and, with ``check_values``,
    non-finite entries or non-symmetric (relative tolerance :func:`symmetry_rtol`).

    Examples
    --------
    >>> import torch
    >>> check_kernel_matrix(torch.eye(3), 0.5).shape
    torch.Size([3, 3])
    """
    import torch

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
    check_nu_times_n(nu, n)
    if check_values:
        with torch.no_grad():
            finite = bool(torch.isfinite(K).all())
            scale = float(K.abs().amax()) if finite else 0.0
            asym = float((K - K.transpose(-1, -2)).abs().amax()) if finite else 0.0
        raise_for_values(finite, asym, scale, K.dtype)
    return K
