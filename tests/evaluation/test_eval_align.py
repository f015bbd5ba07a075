"""Aligning score tables of several runs on the same test items."""

import numpy as np
import pandas as pd
import pytest

from ogae_core.evaluation import align_scores


def _frame(order, split=None):
    items = pd.DataFrame({"corruption": ["a", "a", "b", "b"], "source_index": [0, 1, 0, 1], "label": [0, 1, 0, 1]})
    items["score"] = np.arange(4) / 10
    items = items.iloc[order].reset_index(drop=True)
    if split is not None:
        items["split"] = split
    return items


def test_align_on_identity_columns_and_split():
    a = _frame([0, 1, 2, 3], "test")
    b = _frame([3, 2, 1, 0], "test")
    b["score"] = b["score"] * 2
    val = _frame([0, 1, 2, 3], "validation").assign(score=9.0)
    out = align_scores({"a": a, "b": pd.concat([b, val])})
    np.testing.assert_allclose(out.scores["b"], 2 * out.scores["a"])
    assert out.items.columns.tolist() == ["corruption", "source_index"]
    assert out.labels.tolist() == [0, 1, 0, 1]


def test_positional_alignment_checks_labels():
    a = pd.DataFrame({"score": [0.1, 0.2], "label": [0, 1]})
    b = pd.DataFrame({"score": [0.3, 0.4], "label": [1, 0]})
    with pytest.raises(ValueError, match="labels of 'b' disagree"):
        align_scores({"a": a, "b": b})


def test_different_items_and_missing_columns():
    a = _frame([0, 1, 2, 3])
    b = _frame([0, 1, 2, 3])
    b.loc[3, "source_index"] = 7
    with pytest.raises(ValueError, match="different items"):
        align_scores({"a": a, "b": b})
    with pytest.raises(ValueError, match="cover 3 items"):
        align_scores({"a": a, "b": a.iloc[:3]})
    with pytest.raises(ValueError, match="lack column"):
        align_scores({"a": a.drop(columns="score")})
    with pytest.raises(ValueError, match="repeat items"):
        align_scores({"a": pd.concat([a, a.iloc[:1]])})
