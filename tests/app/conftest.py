"""Fixtures of the dashboard tests: a synthetic run store written through ogae_core.runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.synthetic_store import write_synthetic_store


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_synthetic_store(root)
    write_synthetic_store(root, experiment="mnistc-3v4-smoke", n_per_class=20, seed=1)
    return root
