"""Hyperparameter selection on the validation split (the test split is never looked at).

The unit of selection is a *configuration group*: every run with the same resolved config
except the seed (:meth:`~ogae_core.experiments.mnistc.RunConfig.group_key`). For each table
row (run label), the group with the highest mean validation metric over its seeds wins;
ties go to the group seen first in run-id order. Only ``run.metrics["validation"]`` is read.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import pandas as pd

SELECTION_METRICS = ("auroc", "aupr", "auroc30")


def _group_key(run) -> str:
    from ogae_core.runs import config_hash

    cfg = {k: v for k, v in run.config.items() if k not in ("seed", "provenance", "run_id")}
    return config_hash(cfg)


def _validation_value(run, metric: str) -> float:
    block = run.metrics.get("validation")
    if not isinstance(block, dict) or metric not in block:
        raise ValueError(f"run {run.run_id} has no validation {metric!r} in metrics.json; it cannot take part in selection")
    value = float(block[metric])
    if not math.isfinite(value):
        raise ValueError(f"run {run.run_id}: validation {metric} is {value}")
    return value


def validation_table(runs: Iterable, metric: str = "auroc") -> pd.DataFrame:
    """One row per run: ``label, group, seed, run_id, validation``.

    Examples
    --------
    >>> validation_table([]).empty
    True
    """
    if metric not in SELECTION_METRICS:
        raise ValueError(f"unknown selection metric {metric!r}; choose one of {SELECTION_METRICS}")
    rows = [{"label": r.label, "group": _group_key(r), "seed": r.seed, "run_id": r.run_id,
             "validation": _validation_value(r, metric)} for r in runs]
    return pd.DataFrame(rows, columns=["label", "group", "seed", "run_id", "validation"])


def select_configurations(runs: Sequence, metric: str = "auroc") -> pd.DataFrame:
    """The selected configuration of every row, chosen on the validation split.

    Parameters
    ----------
    runs : sequence of :class:`ogae_core.runs.Run`
        Finished runs of one experiment.
    metric : str
        Validation metric maximized (``auroc``, ``aupr`` or ``auroc30``).

    Returns
    -------
    pandas.DataFrame
        One row per label: ``label, group, validation_mean, validation_std, n_seeds,
        n_candidates, seeds, run_ids`` (run ids of the selected group, by seed).

    Examples
    --------
    >>> from pathlib import Path
    >>> from ogae_core.runs import Run
    >>> mk = lambda i, lam, v: Run(Path(str(i)), "e", f"r{i}", {"method": "ogae", "scoring": "ocsvm", "seed": 0,
    ...                            "hyperparameters": {"lam": lam}}, {"validation": {"auroc": v}})
    >>> sel = select_configurations([mk(0, 0.1, 0.6), mk(1, 0.01, 0.7)])
    >>> sel.loc[0, "run_ids"]
    ['r1']
    """
    table = validation_table(runs, metric)
    columns = ["label", "group", "validation_mean", "validation_std", "n_seeds", "n_candidates", "seeds", "run_ids"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    out = []
    for label, rows in table.groupby("label", sort=False):
        stats = rows.groupby("group", sort=False)["validation"].agg(["mean", "std", "size"])
        best = stats["mean"].idxmax()  # first maximum in order of appearance
        chosen = rows[rows["group"] == best].sort_values("seed", kind="stable")
        out.append({"label": label, "group": best, "validation_mean": float(stats.loc[best, "mean"]),
                    "validation_std": float(stats.loc[best, "std"]) if stats.loc[best, "size"] > 1 else 0.0,
                    "n_seeds": int(stats.loc[best, "size"]), "n_candidates": int(len(stats)),
                    "seeds": chosen["seed"].tolist(), "run_ids": chosen["run_id"].tolist()})
    return pd.DataFrame(out, columns=columns)


def selected_runs(runs: Sequence, metric: str = "auroc", seed: int | None = None) -> dict:
    """``{label: Run}``: the selected configuration's run of ``seed`` (default: its lowest seed).

    Examples
    --------
    >>> selected_runs([])
    {}
    """
    sel = select_configurations(runs, metric)
    by_id = {r.run_id: r for r in runs}
    out = {}
    for row in sel.itertuples(index=False):
        if seed is None:
            out[row.label] = by_id[row.run_ids[0]]
        elif seed in row.seeds:
            out[row.label] = by_id[row.run_ids[row.seeds.index(seed)]]
    return out
