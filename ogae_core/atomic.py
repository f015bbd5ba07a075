"""Atomic writes: a file or a directory appears complete or not at all.

Every writer of the package (caches, checkpoints, models, run directories) goes through
these two functions: the content is written into a temporary sibling in the same directory
(same file system), then renamed into place, so that a reader or an interrupted process
never sees a half-written file.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> p = atomic_write_file(d / "a.txt", lambda tmp: tmp.write_text("hello"))
>>> p.read_text()
'hello'
>>> q = atomic_write_dir(d / "run", lambda tmp: (tmp / "x.json").write_text("{}"))
>>> sorted(f.name for f in q.iterdir())
['x.json']
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write_dir", "atomic_write_file"]


def atomic_write_file(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``.

    An existing file is replaced atomically (``os.replace``); if ``write`` raises, the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_dir(path: str | Path, write: Callable[[Path], object], *, replace: bool = True) -> Path:
    """Fill a temporary sibling directory with ``write(tmp)``, then move it to ``path``.

    With ``replace`` an existing directory is swapped out (renamed aside, then removed);
    without it, an existing ``path`` raises ``FileExistsError`` before anything is written.
    If ``write`` raises, the temporary directory is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.exists() and not replace:
        raise FileExistsError(f"{path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    tmp.mkdir()
    try:
        write(tmp)
        if path.exists():
            if not replace:
                raise FileExistsError(f"{path} already exists")
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path
