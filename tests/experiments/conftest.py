"""Fixtures of the experiment tests.

``smoke_store`` runs the real ``smoke`` preset once per session (real MNIST slice, 1 epoch, three
rows) into a temporary run store; the end-to-end, report, CLI and notebook tests read it.
Like the data tests' ``real_mnist``, it uses the user cache for MNIST (downloaded once if needed).
"""
from __future__ import annotations

import pytest

from ogae_core.experiments import experiment_name, preset_configs, run_sweep

SMOKE_EXPERIMENT = experiment_name("smoke")


@pytest.fixture(scope="session")
def smoke_store(tmp_path_factory):
    """``(root, SweepResult)`` of the smoke preset (3 vs 8) run in-process."""
    root = tmp_path_factory.mktemp("runs")
    result = run_sweep(preset_configs("smoke"), root, SMOKE_EXPERIMENT, executor="inline", log=None)
    assert result.ok, result.failed
    return root, result
