"""The paper's Tables I (3 vs 8) and IV (3 vs 4) as data, and our results beside them.

The numbers live in ``data_manifests/paper_tables_mnistc.yaml`` (packaged with the other
manifests); :func:`paper_tables_mnistc` loads and checks them, :func:`paper_table` gives one
table as a DataFrame, :func:`beside_paper` puts ours next to it and :func:`convention_check`
ranks the candidate metric definitions (:mod:`ogae_core.evaluation.conventions`) by how well
they reproduce the paper's numbers from our scores. Torch-free (the dashboard uses it); the
run-store side is :func:`ogae_core.experiments.report.convention_check_runs`.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

MANIFEST = "paper_tables_mnistc"
COLUMNS = ("auroc", "aupr", "auroc30")
_LABELS = {"auroc": "AUROC", "aupr": "AUPR", "auroc30": "AUROC30"}


def _fail(message: str) -> None:
    raise ValueError(f"{MANIFEST}.yaml: {message}")


def paper_tables_mnistc() -> dict[str, Any]:
    """The paper's Tables I and IV (``data_manifests/paper_tables_mnistc.yaml``), checked.

    Raises ``ValueError`` unless every table has twelve rows of three values in [0, 1], each
    row naming a method of ``methods``, and bold cells name known rows and columns.

    Examples
    --------
    >>> t = paper_tables_mnistc()
    >>> t["tables"]["3v4"]["values"]["ogae-ocsvm"], t["columns"]
    ([0.74, 0.76, 0.73], ['auroc', 'aupr', 'auroc30'])
    """
    from ogae_core.data.manifests import load_manifest

    m = load_manifest(MANIFEST)
    if m.get("columns") != list(COLUMNS):
        _fail(f"columns must be {list(COLUMNS)}; got {m.get('columns')}")
    methods, tables = m.get("methods") or {}, m.get("tables") or {}
    if not tables:
        _fail("no tables")
    for key, table in tables.items():
        values = table.get("values") or {}
        if len(values) != len(methods):
            _fail(f"table {key!r} has {len(values)} rows; expected one per method ({len(methods)})")
        for method, vals in values.items():
            ok = (method in methods and isinstance(vals, list) and len(vals) == len(COLUMNS)
                  and all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in vals))
            if not ok:
                _fail(f"table {key!r} row {method!r} must name a method and hold three values in [0, 1]; got {vals}")
        for method, cols in (table.get("bold") or {}).items():
            if method not in values or not set(cols) <= set(COLUMNS):
                _fail(f"table {key!r}: bold entry {method!r}: {cols} names an unknown row or column")
        if not isinstance(table.get("normal"), int) or not isinstance(table.get("anomaly"), int):
            _fail(f"table {key!r} must give the normal and anomaly digits")
    return m


def paper_frame() -> pd.DataFrame:
    """All the paper's MNIST-C rows, long: ``table, paper_table, normal, anomaly, model`` + metrics.

    Examples
    --------
    >>> f = paper_frame()
    >>> f.shape, sorted(f.table.unique())
    ((24, 8), ['3v4', '3v8'])
    """
    m = paper_tables_mnistc()
    rows = [{"table": key, "paper_table": t["table"], "normal": t["normal"], "anomaly": t["anomaly"], "model": method,
             **dict(zip(COLUMNS, vals))}
            for key, t in m["tables"].items() for method, vals in t["values"].items()]
    return pd.DataFrame(rows)


def paper_table_key(normal: int, anomaly: int) -> str | None:
    """The key of the paper's table for this digit pair (``"3v8"``), or ``None`` if it has none.

    Examples
    --------
    >>> paper_table_key(3, 4), paper_table_key(1, 7)
    ('3v4', None)
    """
    for key, t in paper_tables_mnistc()["tables"].items():
        if (t["normal"], t["anomaly"]) == (int(normal), int(anomaly)):
            return key
    return None


def paper_table(normal: int, anomaly: int) -> pd.DataFrame | None:
    """The paper's table for a digit pair: models (our labels, paper order) x auroc, aupr, auroc30.

    ``attrs``: ``table`` (``"I"`` / ``"IV"``), ``key``, ``test_corruptions``. ``None`` when the
    paper has no table for the pair.

    Examples
    --------
    >>> paper_table(3, 8).loc["ogae-ocsvm"].tolist()
    [0.59, 0.7, 0.71]
    >>> paper_table(1, 7) is None
    True
    """
    key = paper_table_key(normal, anomaly)
    if key is None:
        return None
    t = paper_tables_mnistc()["tables"][key]
    frame = pd.DataFrame.from_dict(t["values"], orient="index", columns=list(COLUMNS))
    frame.index.name = "model"
    frame.attrs.update({"table": t["table"], "key": key, "test_corruptions": list(t.get("test_corruptions", []))})
    return frame


def estimates(bootstrap: pd.DataFrame) -> pd.DataFrame:
    """Models x metrics of the full-test-set estimates of a tidy bootstrap table (model order kept).

    Examples
    --------
    >>> b = pd.DataFrame({"model": ["a", "a"], "metric": ["auroc", "aupr"], "estimate": [0.6, 0.7]})
    >>> estimates(b).loc["a", "aupr"]
    np.float64(0.7)
    """
    missing = {"model", "metric", "estimate"} - set(bootstrap.columns)
    if missing:
        raise ValueError(f"bootstrap table lacks column(s) {sorted(missing)}")
    return bootstrap.pivot(index="model", columns="metric", values="estimate").reindex(pd.unique(bootstrap.model))


def beside_paper(ours: pd.DataFrame, paper: pd.DataFrame, *, labels: Mapping[str, str] | None = None,
                 digits: int = 2) -> pd.DataFrame:
    """Our metrics and the paper's side by side, as text: ``AUROC ours | AUROC paper | ...``.

    Parameters
    ----------
    ours : pandas.DataFrame
        Models x (some of) ``auroc, aupr, auroc30`` (e.g. the estimates of the report).
    paper : pandas.DataFrame
        :func:`paper_table`.
    labels : mapping, optional
        Row label of the paper's table for each of our rows, when they are named otherwise
        (e.g. the dashboard's ``"ogae-ocsvm (seed 1)"`` -> ``"ogae-ocsvm"``); default: the same.
    digits : int
        Decimals of our values (the paper's are shown as printed).

    Returns
    -------
    pandas.DataFrame
        One row per model of ours (in their order), then the paper's rows that none of ours
        matches; "–" where a side has no value.

    Examples
    --------
    >>> ours = pd.DataFrame({"auroc": [0.55]}, index=["ae-recons"])
    >>> side = beside_paper(ours, paper_table(3, 8))
    >>> side.loc["ae-recons"].tolist()[:2], len(side)
    (['0.55', '0.56'], 12)
    """
    labels = dict(labels or {})
    matched = {labels.get(m, m) for m in ours.index}
    rows = {}
    for model in [*ours.index, *[m for m in paper.index if m not in matched]]:
        key = labels.get(model, model)
        row = {}
        for col in COLUMNS:
            mine = ours.at[model, col] if model in ours.index and col in ours.columns else None
            theirs = paper.at[key, col] if key in paper.index else None
            row[f"{_LABELS[col]} ours"] = "–" if mine is None or pd.isna(mine) else f"{mine:.{digits}f}"
            row[f"{_LABELS[col]} paper"] = "–" if theirs is None else f"{theirs:.2f}"
        rows[model] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "model"
    return out


def convention_check(scores_by_table: Mapping[str, tuple[Mapping[str, Sequence], Sequence]]) -> pd.DataFrame:
    """Rank the candidate AUPR / AUROC30 definitions by how well they reproduce the paper.

    Parameters
    ----------
    scores_by_table : mapping
        ``{table key ("3v8", "3v4"): (scores_by_model, labels)}`` — test scores of our
        selected runs (higher = more anomalous; models named by our row labels) and labels
        (1 = anomaly).

    Returns
    -------
    pandas.DataFrame
        :func:`~ogae_core.evaluation.compare_conventions` over all the given tables' rows.

    Examples
    --------
    >>> y = [0, 0, 1, 1] * 5
    >>> s = [0.1, 0.4, 0.35, 0.8] * 5
    >>> t = convention_check({"3v8": ({"ae-recons": s}, y)})
    >>> sorted(t.positive.unique())
    ['anomaly', 'normal']
    """
    from ogae_core.evaluation.conventions import candidates_by_model, compare_conventions

    known = set(paper_tables_mnistc()["tables"])
    unknown = sorted(set(scores_by_table) - known)
    if unknown:
        raise ValueError(f"unknown paper table(s) {unknown}; the paper has {sorted(known)}")
    frames = [candidates_by_model(scores, labels).assign(table=key) for key, (scores, labels) in scores_by_table.items()]
    return compare_conventions(pd.concat(frames, ignore_index=True), paper_frame())


def table_key_of_configs(configs: Iterable[Mapping[str, Any]]) -> str | None:
    """The paper's table key for MNIST-C run configs (``config.json``) of one task, else ``None``.

    ``None`` also when the configs mix tasks or their test corruptions differ from the paper's.

    Examples
    --------
    >>> table_key_of_configs([{"task": {"normal": 3, "anomaly": 4, "test_corruptions": None}}])
    '3v4'
    >>> table_key_of_configs([{"task": {"normal": 3, "anomaly": 4, "test_corruptions": ["fog"]}}]) is None
    True
    """
    tasks = {((c.get("task") or {}).get("normal"), (c.get("task") or {}).get("anomaly"),
              tuple((c.get("task") or {}).get("test_corruptions") or ())) for c in configs}
    if len(tasks) != 1:
        return None
    normal, anomaly, corruptions = tasks.pop()
    if normal is None or anomaly is None:
        return None
    key = paper_table_key(normal, anomaly)
    if key is None or (corruptions and list(corruptions) != paper_tables_mnistc()["tables"][key]["test_corruptions"]):
        return None
    return key
