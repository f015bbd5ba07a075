"""Numerical constants of the OCSVM solvers, one place for both engines.

``RIDGE``: added to ``K_FF`` so that duplicated points stay solvable; ``SET_TOL``: the
slack of the active-set moves; ``DEFAULT_TOL``: the KKT residual a returned solution
must meet. Keyed by the dtype of the solve; the compiled CPU engine always works in
float64. ``FALLBACK_SET_REL``: how close to ``0`` or ``C`` (relative to ``C``) an entry of
libsvm's approximate solution must be to start at that bound when an engine restarts from it
(:func:`~ogae_core.ocsvm.fallback.state_from_alpha`, the torch engine's ``polish``).

Examples
--------
>>> import torch
>>> RIDGE[torch.float64], DEFAULT_TOL[torch.float32]
(1e-12, 0.0002)
"""
from __future__ import annotations

import torch

__all__ = ["DEFAULT_TOL", "FALLBACK_SET_REL", "RIDGE", "SET_TOL"]

RIDGE = {torch.float64: 1e-12, torch.float32: 1e-7}
SET_TOL = {torch.float64: 1e-13, torch.float32: 1e-7}
DEFAULT_TOL = {torch.float64: 1e-8, torch.float32: 2e-4}
FALLBACK_SET_REL = 1e-6
