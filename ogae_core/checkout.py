"""Where the source checkout of the project is, when the package runs from one.

``ogae_core`` runs either from a source checkout (``pip install -e .``, or ``PYTHONPATH`` pointing
at the repository) or from an installed copy (``pip install .``, a wheel, ``--target``). Only a
checkout has the repository's folders next to the package (``data_manifests/``, ``notebooks/``,
``.git``); an installed copy carries the manifests as package data instead
(:mod:`ogae_core.data.manifests`). :func:`source_checkout` tells the two apart by looking for the
project's own ``pyproject.toml`` next to the package, never by assuming a folder depth.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["PROJECT_NAME", "source_checkout"]

#: The distribution name written in the checkout's ``pyproject.toml``.
PROJECT_NAME = "ogae-core"


def source_checkout() -> Path | None:
    """Root of the source checkout the imported package lives in, or ``None`` when installed.

    The root is the folder holding the package directory, accepted only when its
    ``pyproject.toml`` declares ``name = "ogae-core"`` (an installed copy sits in
    ``site-packages`` or a ``--target`` folder, which has no such file).

    Returns
    -------
    pathlib.Path or None

    Examples
    --------
    >>> root = source_checkout()
    >>> root is None or (root / "ogae_core" / "__init__.py").is_file()
    True
    """
    root = Path(__file__).resolve().parent.parent  # this module sits at the package's top level
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if f'name = "{PROJECT_NAME}"' in text else None
