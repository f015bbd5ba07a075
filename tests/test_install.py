"""A non-editable install of the package works away from the source checkout.

``pip install --no-deps --target <tmp> .`` builds a wheel (``setup.py`` copies every
``data_manifests/*.yaml`` into ``ogae_core/data/manifest_files/``); from another folder the
installed copy must import, read its manifests through :mod:`importlib.resources` and run
``ogae data fetch`` against an already-verified MNIST cache (no network).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ogae_core.checkout import source_checkout
from ogae_core.data.manifests import PACKAGED_MANIFESTS, manifest_dir

REPO = source_checkout()
#: What a build reads (pyproject.toml names README.md as the long description).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "ogae_core", "data_manifests")
pytestmark = pytest.mark.skipif(REPO is None, reason="needs the source checkout to build from")


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would point Python back at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OGAE_MANIFEST_DIR")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory, real_mnist_cache):
    """The package installed (not editable) into a temporary --target folder."""
    source = tmp_path_factory.mktemp("source")  # build from a copy: pip's build/ and egg-info stay out of the checkout
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    target = tmp_path_factory.mktemp("target")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path_factory.mktemp("cwd")), env=_clean_env())
    assert build.returncode == 0, build.stderr
    return target


@pytest.fixture(scope="module")
def real_mnist_cache(tmp_path_factory):
    """A cache folder whose ``mnist/mnist.npz`` links to the verified user cache (read-only use)."""
    from ogae_core.data import load_mnist
    from ogae_core.data.mnist import cache_dir

    load_mnist()  # the user cache holds the verified arrays (downloads once on a fresh machine)
    cache = tmp_path_factory.mktemp("cache")
    (cache / "mnist").mkdir()
    (cache / "mnist" / "mnist.npz").symlink_to(cache_dir() / "mnist" / "mnist.npz")
    return cache


def _run_outside(installed: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, cwd=str(cwd),
                          env=_clean_env(PYTHONPATH=str(installed), **env))


@pytest.mark.slow  # builds and installs a wheel (about 10 s)
def test_installed_package_ships_every_manifest_unchanged(installed):
    packaged = installed / "ogae_core" / "data" / PACKAGED_MANIFESTS
    home = REPO / "data_manifests"
    sources = sorted(str(p.relative_to(home)) for p in home.rglob("*.yaml"))
    assert sources and sorted(str(p.relative_to(packaged)) for p in packaged.rglob("*.yaml")) == sources
    for name in sources:
        assert (packaged / name).read_bytes() == (home / name).read_bytes(), name


@pytest.mark.slow  # builds and installs a wheel (about 10 s)
def test_installed_package_imports_from_another_folder(installed, tmp_path):
    code = ("import ogae_core, ogae_core.data as d; from ogae_core.data.manifests import manifest_dir; "
            "from ogae_core.checkout import source_checkout; "
            "from ogae_core.runs import code_version; "
            "print(len(d.CORRUPTIONS)); print(ogae_core.__file__); print(manifest_dir()); print(source_checkout()); "
            "print(code_version() == ogae_core.__version__)")
    out = _run_outside(installed, tmp_path, sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr
    n_corruptions, package_file, manifests, checkout, plain_version = out.stdout.splitlines()
    assert n_corruptions == "16"
    assert Path(package_file).is_relative_to(installed)  # the installed copy, not the checkout
    assert Path(manifests) == installed / "ogae_core" / "data" / PACKAGED_MANIFESTS
    assert checkout == "None"
    assert plain_version == "True"  # no git lookup outside a checkout


@pytest.mark.slow  # builds and installs a wheel (about 10 s)
def test_installed_copy_names_where_the_notebooks_were_expected(installed, tmp_path):
    code = "from ogae_core.experiments.notebooks import notebook_paths; notebook_paths()"
    out = _run_outside(installed, tmp_path, sys.executable, "-c", code)
    assert out.returncode != 0
    assert "FileNotFoundError" in out.stderr and "--notebooks-dir" in out.stderr


@pytest.mark.slow  # builds and installs a wheel (about 10 s)
def test_installed_cli_fetches_mnist_from_the_cache(installed, real_mnist_cache, tmp_path):
    out = _run_outside(installed, tmp_path, str(installed / "bin" / "ogae"), "data", "fetch",
                       OGAE_CACHE=str(real_mnist_cache), OGAE_MNIST_MIRRORS="none")
    assert out.returncode == 0, out.stderr
    assert "MNIST ready: 60000 training and 10000 test digits" in out.stdout
    assert str(real_mnist_cache) in out.stdout


def test_source_checkout_reads_the_top_level_manifests(monkeypatch):
    monkeypatch.delenv("OGAE_MANIFEST_DIR", raising=False)
    assert manifest_dir() == REPO / "data_manifests"
    assert not (REPO / "ogae_core" / "data" / PACKAGED_MANIFESTS).exists()  # no second copy to drift
