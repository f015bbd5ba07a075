"""Shared pytest configuration: deterministic, single-threaded-friendly defaults."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see ogae_core/__init__.py
