"""Build hook: ship every ``data_manifests/**/*.yaml`` inside the package.

``data_manifests/`` at the top of the repository is the one home of the manifests (edit them
there). When a wheel is built (``pip install .``, ``python -m build``), this hook copies every
YAML file of that folder and its subfolders -- including ones added later -- into
``ogae_core/data/manifest_files/`` of the build, where :func:`ogae_core.data.manifests.manifest_dir`
reads them through :mod:`importlib.resources` when no source checkout is around. Nothing is
copied into the source tree. All other metadata lives in ``pyproject.toml``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MANIFESTS = Path(__file__).resolve().parent / "data_manifests"
PACKAGED = ("ogae_core", "data", "manifest_files")  # keep in sync with manifests.PACKAGED_MANIFESTS


class build_py_with_manifests(build_py):
    """``build_py`` that also copies ``data_manifests/*.yaml`` into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads data_manifests/ of the checkout directly
            return
        files = sorted(MANIFESTS.rglob("*.yaml"))
        if not files:
            raise FileNotFoundError(f"no *.yaml in {MANIFESTS}: the package would ship without its manifests")
        target = Path(self.build_lib).joinpath(*PACKAGED)
        shutil.rmtree(target, ignore_errors=True)  # a stale build/ must not ship a removed manifest
        for src in files:  # subfolders keep their relative place
            dest = target / src.relative_to(MANIFESTS)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)


if __name__ == "__main__":  # setuptools runs this file as __main__; importing it (pytest, linters) builds nothing
    setup(cmdclass={"build_py": build_py_with_manifests})
