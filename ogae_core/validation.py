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

__all__ = ["check_integer", "check_nu_times_n", "check_real", "is_integer"]


def is_integer(value) -> bool:
    """True for Python and NumPy integers, False for ``bool`` and everything else.

    Examples
    --------
    >>> is_integer(3), is_integer(np.int64(3)), is_integer(True), is_integer(3.0)
    (True, True, False, False)
    """
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (numbers.Integral, np.integer))


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
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (numbers.Real, np.floating, np.integer))
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
