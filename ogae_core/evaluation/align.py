"""Put the per-item scores of several runs side by side, on the same test items.

The paired bootstrap needs every model's score of the *same* item at the same position.
Score tables (``scores.parquet`` of a run, see :mod:`ogae_core.runs`) are matched on the
first available identity:

1. an ``item`` column (the item's position in its split), or
2. ``source_index`` together with whichever of ``corruption`` and ``digit`` are present, or
3. row position, when no identity column exists (then the labels must agree row by row).
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd

META_COLUMNS: tuple[str, ...] = ("corruption", "digit", "source_index", "item", "subject")


class AlignedScores(NamedTuple):
    """Scores of several models on the same items.

    Attributes
    ----------
    scores : dict of str to ndarray
        ``{model: scores}``, all in the order of ``items``.
    labels : ndarray of int8
        1 = anomaly.
    items : pandas.DataFrame
        One row per item: the metadata columns common to all tables (corruption, digit, …).
    """

    scores: dict[str, np.ndarray]
    labels: np.ndarray
    items: pd.DataFrame


def _identity(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    common = set.intersection(*(set(f.columns) for f in frames.values()))
    if "item" in common:
        return ["item"]
    if "source_index" in common:
        return [c for c in ("corruption", "digit", "source_index") if c in common]
    return []


def align_scores(frames: Mapping[str, pd.DataFrame], *, split: str | None = "test") -> AlignedScores:
    """Align the score tables of several models.

    Parameters
    ----------
    frames : mapping of str to pandas.DataFrame
        ``{model: scores table}`` with columns ``score`` and ``label`` and optional metadata.
    split : str or None
        Keep only rows of this ``split`` when the tables have a ``split`` column.

    Returns
    -------
    AlignedScores

    Raises
    ------
    ValueError
        When tables miss columns, cover different items, or disagree on labels.

    Examples
    --------
    >>> a = pd.DataFrame({"item": [0, 1], "score": [0.1, 0.9], "label": [0, 1]})
    >>> b = pd.DataFrame({"item": [1, 0], "score": [0.7, 0.2], "label": [1, 0]})
    >>> align_scores({"a": a, "b": b}).scores["b"].tolist()
    [0.2, 0.7]
    """
    if not frames:
        raise ValueError("no score tables to align")
    prepared: dict[str, pd.DataFrame] = {}
    for name, f in frames.items():
        missing = {"score", "label"} - set(f.columns)
        if missing:
            raise ValueError(f"scores of {name!r} lack column(s) {sorted(missing)}")
        if split is not None and "split" in f.columns:
            f = f[f["split"] == split]
        if len(f) == 0:
            raise ValueError(f"scores of {name!r} have no rows" + (f" in split {split!r}" if split else ""))
        prepared[name] = f.reset_index(drop=True)
    keys = _identity(prepared)
    names = list(prepared)
    ref = prepared[names[0]]
    if keys:
        if ref.duplicated(keys).any():
            raise ValueError(f"scores of {names[0]!r} repeat items (columns {keys})")
        ref = ref.sort_values(keys, kind="stable").reset_index(drop=True)
    meta_cols = [c for c in META_COLUMNS if all(c in f.columns for f in prepared.values())]
    labels = ref["label"].to_numpy()
    scores = {names[0]: ref["score"].to_numpy(dtype=np.float64)}
    for name in names[1:]:
        f = prepared[name]
        if len(f) != len(ref):
            raise ValueError(f"scores of {name!r} cover {len(f)} items, {names[0]!r} covers {len(ref)}")
        if keys:
            if f.duplicated(keys).any():
                raise ValueError(f"scores of {name!r} repeat items (columns {keys})")
            merged = ref[keys].merge(f, on=keys, how="left", validate="one_to_one", indicator=True)
            if (merged["_merge"] != "both").any():
                raise ValueError(f"scores of {name!r} cover different items than {names[0]!r} (matched on {keys})")
            f = merged
        if not np.array_equal(f["label"].to_numpy(), labels):
            raise ValueError(f"labels of {name!r} disagree with those of {names[0]!r} on the same items")
        scores[name] = f["score"].to_numpy(dtype=np.float64)
    return AlignedScores(scores, labels.astype(np.int8), ref[meta_cols].reset_index(drop=True))
