"""Names and places of the run store (see :mod:`ogae_core.runs`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

RUNS_ENV = "OGAE_RUNS"
FINISHED = "FINISHED"
TMP_PREFIX = ".tmp-"
CONFIG_FILE, METRICS_FILE = "config.json", "metrics.json"
SCORES_FILE, HISTORY_FILE, LATENTS_FILE, MODEL_FILE = (
    "scores.parquet",
    "history.parquet",
    "latents.parquet",
    "model.safetensors",
)
SCORES_COLUMNS = ("score", "label", "split", "item", "digit", "corruption", "source_index")
LIBRARIES = ("numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "torch", "safetensors", "ogae-core")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,199}$")


def default_root() -> Path:
    """The runs root: ``$OGAE_RUNS`` or ``./runs``.

    Examples
    --------
    >>> isinstance(default_root(), Path)
    True
    """
    return Path(os.environ.get(RUNS_ENV) or "runs")


def check_name(kind: str, name: str) -> str:
    """``name`` if it is a valid experiment or run directory name, else ``ValueError``.

    Examples
    --------
    >>> check_name("experiment", "mnistc-3v8-quick")
    'mnistc-3v8-quick'
    """
    if not isinstance(name, str) or not _NAME.match(name) or name.startswith(TMP_PREFIX):
        raise ValueError(f"{kind} {name!r} is not a valid directory name (letters, digits, . _ = + -; no leading dot)")
    return name
