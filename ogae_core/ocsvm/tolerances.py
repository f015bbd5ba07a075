"""Numerical constants of the OCSVM solvers, one place for both engines.

``RIDGE``: added to ``K_FF`` so that duplicated points stay solvable; ``SET_TOL``: the
slack of the active-set moves; ``DEFAULT_TOL``: the KKT residual a returned solution
must meet. Keyed by the dtype of the solve; the compiled CPU engine always works in
float64.

Examples
--------
>>> import torch
>>> RIDGE[torch.float64], DEFAULT_TOL[torch.float32]
(1e-12, 0.0002)
"""
from __future__ import annotations

import torch

__all__ = ["DEFAULT_TOL", "RIDGE", "SET_TOL"]

RIDGE = {torch.float64: 1e-12, torch.float32: 1e-7}
SET_TOL = {torch.float64: 1e-13, torch.float32: 1e-7}
DEFAULT_TOL = {torch.float64: 1e-8, torch.float32: 2e-4}
