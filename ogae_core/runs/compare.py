"""Comparing two run stores: do they hold the same runs with the same results?

Used to check that a change of code leaves results unchanged (``ogae runs compare A B``):
the same experiments and run ids, every ``metrics.json`` identical except wall-clock fields
(:data:`WALL_CLOCK_KEYS`: keys ending in ``seconds``), and every ``scores.parquet`` identical.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ogae_core.runs.layout import SCORES_FILE
from ogae_core.runs.reader import list_experiments, list_runs

#: A metrics key is wall-clock time (ignored by the comparison) when it ends with one of these.
WALL_CLOCK_KEYS = ("seconds",)


def strip_wall_clock(obj: Any) -> Any:
    """``obj`` without the keys that hold wall-clock time (recursively).

    Examples
    --------
    >>> strip_wall_clock({"train_seconds": 1.2, "test": {"auroc": 0.9, "seconds": 3}})
    {'test': {'auroc': 0.9}}
    """
    if isinstance(obj, dict):
        return {k: strip_wall_clock(v) for k, v in obj.items() if not str(k).endswith(WALL_CLOCK_KEYS)}
    if isinstance(obj, list):
        return [strip_wall_clock(v) for v in obj]
    return obj


@dataclass
class StoreComparison:
    """Result of :func:`compare_stores`.

    Attributes
    ----------
    only_a, only_b : list of str
        ``experiment/run id`` present in one store only.
    metrics_differ : dict
        ``{experiment/run id: [dotted keys that differ]}``.
    scores_differ : list of str
        Runs whose ``scores.parquet`` differ.
    compared : int
        Runs present in both stores.
    """

    only_a: list = field(default_factory=list)
    only_b: list = field(default_factory=list)
    metrics_differ: dict = field(default_factory=dict)
    scores_differ: list = field(default_factory=list)
    compared: int = 0

    @property
    def identical(self) -> bool:
        return not (self.only_a or self.only_b or self.metrics_differ or self.scores_differ) and self.compared > 0

    def render(self) -> str:
        """A short text with the verdict on its last line."""
        lines = [f"runs in both stores: {self.compared}"]
        for name, items in (("only in A", self.only_a), ("only in B", self.only_b)):
            if items:
                lines.append(f"{name}: {', '.join(items)}")
        for rid, keys in self.metrics_differ.items():
            lines.append(f"metrics differ in {rid}: {', '.join(keys[:10])}{' ...' if len(keys) > 10 else ''}")
        for rid in self.scores_differ:
            lines.append(f"scores differ in {rid}")
        lines.append("VERDICT: IDENTICAL (run ids, metrics.json but wall-clock fields, scores.parquet)"
                     if self.identical else "VERDICT: DIFFERENT")
        return "\n".join(lines)


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            key = f"{prefix}.{k}" if prefix else str(k)
            out += [key] if (k not in a or k not in b) else _differences(a[k], b[k], key)
        return out
    return [] if json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) else [prefix or "<root>"]


def compare_stores(a: str | Path, b: str | Path, experiments: Sequence[str] | None = None) -> StoreComparison:
    """Compare the finished runs of two run stores (see the module docstring).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from ogae_core.runs import create_run
    >>> roots = [tempfile.mkdtemp(), tempfile.mkdtemp()]
    >>> for root, secs in zip(roots, (1.0, 2.0)):
    ...     with create_run(root, "e", {"method": "ae", "seed": 0}) as w:
    ...         w.write_scores(pd.DataFrame({"score": [0.1, 0.9], "label": [0, 1]}))
    ...         w.write_metrics({"auroc": 1.0, "train_seconds": secs})
    >>> compare_stores(*roots).identical
    True
    """
    result = StoreComparison()
    names = list(experiments) if experiments else sorted(set(list_experiments(a)) | set(list_experiments(b)))
    for exp in names:
        runs_a = {r.run_id: r for r in list_runs(a, exp)}
        runs_b = {r.run_id: r for r in list_runs(b, exp)}
        result.only_a += [f"{exp}/{rid}" for rid in sorted(set(runs_a) - set(runs_b))]
        result.only_b += [f"{exp}/{rid}" for rid in sorted(set(runs_b) - set(runs_a))]
        for rid in sorted(set(runs_a) & set(runs_b)):
            ra, rb = runs_a[rid], runs_b[rid]
            result.compared += 1
            diff = _differences(strip_wall_clock(ra.metrics), strip_wall_clock(rb.metrics))
            if diff:
                result.metrics_differ[f"{exp}/{rid}"] = diff
            sa, sb = ra.path / SCORES_FILE, rb.path / SCORES_FILE
            if sa.is_file() != sb.is_file() or (sa.is_file() and not pd.read_parquet(sa).equals(pd.read_parquet(sb))):
                result.scores_differ.append(f"{exp}/{rid}")
    return result


__all__ = ["StoreComparison", "WALL_CLOCK_KEYS", "compare_stores", "strip_wall_clock"]
