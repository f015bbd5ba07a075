"""Metrics of a run's scored splits as ``metrics.json`` stores them, and tables over seeds.

* :func:`split_metrics`: AUROC / AUPR / AUROC30 of a scored split (items with ``label``,
  ``score``, ``corruption``), overall and per corruption, in both conventions (anomalies or
  normals as the positive class), with the share of tied scores;
* :func:`stored_metrics` reads one convention back; :func:`run_test_metrics` a run's test
  metrics (recomputed from its scores for runs written before both conventions were stored);
* :func:`seeds_beside_paper`: the selected configurations' test metrics as ``mean ± sd`` over
  seeds in both conventions, the paper's values beside them (``ogae report``, notebook 01 and
  the dashboard's Results page); :func:`corruptions_over_seeds` the same within each test
  corruption.

Runs are duck-typed (``run_id``, ``metrics``, ``scores()``): this module imports no run store,
so the dashboard can use it.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ogae_core.evaluation.metrics import all_metrics, check_positive, largest_tie_fraction
from ogae_core.evaluation.tables import mean_sd

__all__ = ["BOTH_CONVENTIONS", "NORMAL_POSITIVE_KEY", "corruptions_over_seeds", "run_test_metrics", "seeds_beside_paper",
           "seeds_text", "split_metrics", "stored_metrics"]

#: Key of the normal-positive metrics inside each split (and each corruption) of ``metrics.json``;
#: the top-level ``auroc`` / ``aupr`` / ``auroc30`` / ``auroc30_raw`` stay anomaly-positive.
NORMAL_POSITIVE_KEY = "normal_positive"


def _both_conventions(labels, scores) -> dict[str, Any]:
    out: dict[str, Any] = all_metrics(labels, scores)
    out[NORMAL_POSITIVE_KEY] = all_metrics(labels, scores, positive="normal")
    return out


def split_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    """AUROC / AUPR / AUROC30 (+ raw) of one split, overall and per corruption, under both
    metric conventions, and the share of the largest group of tied scores (``tied_fraction``).

    The anomaly-positive values are the top-level keys; the normal-positive ones (labels
    flipped, scores negated) are in a nested ``"normal_positive"`` block of the split and of
    every corruption. Read either with :func:`stored_metrics`.

    Examples
    --------
    >>> f = pd.DataFrame({"score": [0.1, 0.9, 0.2, 0.8], "label": [0, 1, 0, 1], "corruption": ["a", "a", "b", "b"]})
    >>> m = split_metrics(f)
    >>> m["auroc"], m["per_corruption"]["b"]["auroc"], m["normal_positive"]["aupr"]
    (1.0, 1.0, 1.0)
    """
    out = _both_conventions(frame["label"].to_numpy(), frame["score"].to_numpy())
    out["tied_fraction"] = largest_tie_fraction(frame["score"].to_numpy())
    out["n_items"] = int(len(frame))
    out["n_anomalies"] = int(frame["label"].sum())
    per = {}
    for c, g in frame.groupby("corruption", sort=False):
        if g["label"].nunique() == 2:
            per[str(c)] = _both_conventions(g["label"].to_numpy(), g["score"].to_numpy())
    out["per_corruption"] = per
    return out


def stored_metrics(block: Mapping[str, Any], positive: str = "anomaly") -> dict[str, float] | None:
    """The metrics of one convention from a split (or corruption) block of ``metrics.json``.

    Returns ``None`` when the block lacks them (runs written before both conventions were
    stored): recompute from ``scores.parquet`` then, with :func:`split_metrics`.

    Examples
    --------
    >>> f = pd.DataFrame({"score": [0.1, 0.9, 0.2, 0.8], "label": [0, 1, 0, 1], "corruption": "a"})
    >>> stored_metrics(split_metrics(f), "normal")["auroc"]
    1.0
    >>> stored_metrics({"auroc": 0.6}, "normal") is None
    True
    """
    check_positive(positive)
    source = block if positive == "anomaly" else block.get(NORMAL_POSITIVE_KEY)
    if not isinstance(source, Mapping):
        return None
    values = {m: source.get(m) for m in ("auroc", "aupr", "auroc30", "auroc30_raw")}
    if any(values[m] is None for m in ("auroc", "aupr", "auroc30")):
        return None
    return values


def _test_block(run, positive: str, per_corruption: bool = False) -> dict[str, Any]:
    """A run's test block of ``metrics.json`` when it holds ``positive``'s metrics (and, with
    ``per_corruption``, every corruption's), else the block recomputed from ``scores.parquet``
    (runs written before both conventions were stored)."""
    block = run.metrics.get("test") or {}
    complete = stored_metrics(block, positive) is not None
    if per_corruption:
        blocks = block.get("per_corruption") or {}
        complete = bool(blocks) and all(stored_metrics(b or {}, positive) is not None for b in blocks.values())
    if complete:
        return block
    scores = run.scores()
    return split_metrics(scores[scores["split"] == "test"])


def run_test_metrics(run, positive: str = "anomaly") -> dict:
    """A run's test metrics under ``positive`` (from ``metrics.json``, else recomputed from
    ``scores.parquet`` for runs written before both conventions were stored)."""
    return stored_metrics(_test_block(run, positive), positive)


def seeds_text(values, n_seeds: int, digits: int = 2) -> str:
    """``mean ± sd`` of the finite ``values`` (:func:`~ogae_core.evaluation.tables.mean_sd`),
    with ``(n=k)`` when only ``k`` of the ``n_seeds`` runs have a value.

    Examples
    --------
    >>> seeds_text([0.6, 0.64], 2), seeds_text([0.7, float("nan")], 2), seeds_text([], 3)
    ('0.62 ± 0.03', '0.70 (n=1)', '–')
    """
    v = np.asarray([np.nan if x is None else x for x in values], float)
    k = int(np.isfinite(v).sum())
    return mean_sd(v, digits) if k in (0, n_seeds) else f"{mean_sd(v, digits)} (n={k})"


#: Columns of :func:`seeds_beside_paper`: ``(metric, positive class, header)``.
BOTH_CONVENTIONS = (("auroc", "anomaly", "AUROC"), ("aupr", "anomaly", "AUPR"), ("auroc30", "anomaly", "AUROC30"),
                    ("aupr", "normal", "AUPR (normal +)"), ("auroc30", "normal", "AUROC30 (normal +)"))


def seeds_beside_paper(runs: list, selection: pd.DataFrame, paper: pd.DataFrame | None = None,
                       digits: int = 2) -> pd.DataFrame:
    """Test metrics of each selected configuration as ``mean ± sd`` over its seeds, in both
    conventions (:data:`BOTH_CONVENTIONS`), and the paper's values beside them.

    Parameters
    ----------
    runs : list of Run
        The runs the ``selection`` was made from.
    selection : pandas.DataFrame
        :func:`~ogae_core.runs.selection.select_configurations` (``label``, ``run_ids``).
    paper : pandas.DataFrame, optional
        :func:`~ogae_core.evaluation.paper.paper_table`; adds ``paper AUROC``, ``paper AUPR``
        and ``paper AUROC30`` (the paper does not say which class its AUPR and AUROC30 count as
        positive, so they stand beside both of ours).
    digits : int
        Decimals.

    Returns
    -------
    pandas.DataFrame
        One row per selected label in ``selection``'s order (``model``, ``seeds``, the metrics as
        text, :func:`seeds_text`); with ``paper``, the paper's rows first in its order (those we
        did not run get ``–``), then ours that it lacks. The paper's values keep its two decimals.

    Examples
    --------
    >>> seeds_beside_paper([], pd.DataFrame(columns=["label", "run_ids"])).columns.tolist()[:3]
    ['model', 'seeds', 'AUROC']
    """
    by_id = {r.run_id: r for r in runs}
    rows = []
    for row in selection.itertuples(index=False):
        tests = {pos: [run_test_metrics(by_id[rid], pos) for rid in row.run_ids] for pos in ("anomaly", "normal")}
        out = {"model": row.label, "seeds": str(len(row.run_ids))}
        for metric, pos, header in BOTH_CONVENTIONS:
            out[header] = seeds_text([t.get(metric, float("nan")) for t in tests[pos]], len(row.run_ids), digits)
        rows.append(out)
    frame = pd.DataFrame(rows, columns=["model", "seeds", *(h for *_, h in BOTH_CONVENTIONS)])
    if paper is None:
        return frame
    order = list(paper.index) + [m for m in frame["model"] if m not in paper.index]
    frame = frame.set_index("model").reindex(order).fillna("–")
    for col in ("auroc", "aupr", "auroc30"):
        frame[f"paper {col.upper()}"] = [f"{paper.at[m, col]:.2f}" if m in paper.index else "–" for m in order]
    frame.index.name = "model"
    return frame.reset_index()


def corruptions_over_seeds(runs: list, selection: pd.DataFrame, metric: str = "auroc", positive: str = "anomaly",
                           digits: int = 2) -> pd.DataFrame:
    """Test ``metric`` within each test corruption of each selected configuration, ``mean ± sd``
    over its seeds (stored per-corruption blocks of ``metrics.json``; recomputed from the scores
    for runs that lack them).

    Returns
    -------
    pandas.DataFrame
        ``model``, ``seeds``, then one column per corruption (first-seen order).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> m = lambda v: {"auroc": v, "aupr": v, "auroc30": v}
    >>> block = lambda a, b: {"per_corruption": {"stripe": m(a), "brightness": m(b)}}
    >>> runs = [SimpleNamespace(run_id=f"r{i}", metrics={"test": block(0.5 + i / 10, 0.7)}) for i in (0, 2)]
    >>> corruptions_over_seeds(runs, pd.DataFrame({"label": ["m"], "run_ids": [["r0", "r2"]]})).iloc[0].tolist()
    ['m', '2', '0.60 ± 0.14', '0.70 ± 0.00']
    """
    check_positive(positive)
    by_id = {r.run_id: r for r in runs}
    rows, columns = [], []
    for row in selection.itertuples(index=False):
        values: dict[str, list[float]] = {}
        for rid in row.run_ids:
            for corruption, got in _test_per_corruption(by_id[rid], positive).items():
                values.setdefault(corruption, []).append(float(got[metric]))
        columns += [c for c in values if c not in columns]
        rows.append({"model": row.label, "seeds": str(len(row.run_ids)),
                     **{c: seeds_text(v, len(row.run_ids), digits) for c, v in values.items()}})
    return pd.DataFrame(rows, columns=["model", "seeds", *columns]).fillna("–")


def _test_per_corruption(run, positive: str) -> dict[str, dict]:
    """``{corruption: metrics under positive}`` of a run's test split, stored or recomputed."""
    blocks = _test_block(run, positive, per_corruption=True).get("per_corruption") or {}
    return {c: stored_metrics(b, positive) for c, b in blocks.items()}
