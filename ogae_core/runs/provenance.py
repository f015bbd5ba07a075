"""Run identity and provenance: config hashes, run ids, code and library versions."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ogae_core.checkout import source_checkout
from ogae_core.runs.layout import LIBRARIES, check_name


def to_jsonable(obj: Any) -> Any:
    """A configuration as plain JSON types: numpy scalars/arrays, paths, tuples and dataclasses converted.

    Raises
    ------
    ValueError
        A value of a type with no JSON form (the message names it).

    Examples
    --------
    >>> to_jsonable({"nu": np.float64(0.5), "widths": (4, 8), 3: Path("runs")})
    {'nu': 0.5, 'widths': [4, 8], '3': 'runs'}
    >>> to_jsonable({"f": len})
    Traceback (most recent call last):
    ...
    ValueError: config value <built-in function len> of type builtin_function_or_method is not JSON-serializable
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return to_jsonable(asdict(obj))
    raise ValueError(f"config value {obj!r} of type {type(obj).__name__} is not JSON-serializable")


def config_hash(config: Mapping[str, Any], length: int = 12) -> str:
    """Deterministic hash of a configuration (canonical JSON, SHA-256, hex prefix).

    Key order does not matter; tuples and lists hash alike; numpy scalars hash like Python ones.

    Examples
    --------
    >>> config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": (1, 2), "a": 1})
    True
    """
    canonical = json.dumps(to_jsonable(config), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def run_id(config: Mapping[str, Any], name: str | None = None) -> str:
    """Deterministic run id ``<name>-<hash>``; the name defaults to ``method-scoring-s<seed>``.

    The same config always gives the same id, so a resumed sweep can skip finished runs with
    :func:`is_finished`.

    Examples
    --------
    >>> run_id({"method": "ogae", "scoring": "ocsvm", "seed": 0})[:16]
    'ogae-ocsvm-s0-58'
    """
    if name is None:
        parts = [str(config[k]) for k in ("method", "scoring") if config.get(k) is not None]
        if config.get("seed") is not None:
            parts.append(f"s{config['seed']}")
        name = "-".join(parts) or "run"
    slug = re.sub(r"[^A-Za-z0-9._=+-]+", "_", name).strip("._") or "run"
    return check_name("run id", f"{slug[:80]}-{config_hash(config)}")




def code_version() -> str:
    """``git describe --always --dirty --tags`` of the source checkout, else the package version.

    An installed copy (no checkout, see :func:`ogae_core.checkout.source_checkout`), a checkout
    without ``.git`` (an unpacked archive) or a machine without git gives ``ogae_core.__version__``;
    git is never asked about a folder that is not the project's own checkout.

    Examples
    --------
    >>> from ogae_core import __version__
    >>> version = code_version()
    >>> version == __version__ or len(version) >= 7
    True
    """
    from ogae_core.version import __version__

    root = source_checkout()
    if root is None or not (root / ".git").exists():
        return __version__
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else __version__


def library_versions(names: Iterable[str] = LIBRARIES) -> dict[str, str | None]:
    """Installed versions (without importing the libraries).

    Examples
    --------
    >>> "numpy" in library_versions()
    True
    """
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(seed: int | None, data_hash: str | None,
               resolved_settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The provenance block stored under ``config.json["provenance"]``.

    ``resolved_settings`` (settings a kind resolved at run time, outside the config) is
    stored only when given.

    Examples
    --------
    >>> block = provenance(0, "abc", {"epochs": 2})
    >>> block["data_hash"], block["resolved_settings"], "resolved_settings" in provenance(0, "abc")
    ('abc', {'epochs': 2}, False)
    """
    out = {
        "seed": seed,
        "data_hash": data_hash,
        "code_version": code_version(),
        "libraries": library_versions(),
        "platform": platform.platform(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if resolved_settings is not None:
        out["resolved_settings"] = to_jsonable(dict(resolved_settings))
    return out
