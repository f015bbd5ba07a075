"""Candidate AUPR / AUROC30 definitions (against scikit-learn) and their ranking against a table."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from ogae_core.evaluation import candidates_by_model, compare_conventions, metric_candidates


def _data(seed=0, n=500):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.45).astype(int)
    s = rng.normal(size=n) + 0.6 * y + rng.integers(0, 3, n) * (1 - y)  # some normals score high
    return y, s


def test_candidates_equal_sklearn_definitions():
    y, s = _data()
    t = metric_candidates(y, s).set_index(["metric", "definition", "positive"])["value"]
    for positive, (yy, ss) in {"anomaly": (y, s), "normal": (1 - y, -s)}.items():
        assert t["aupr", "ap", positive] == pytest.approx(average_precision_score(yy, ss), abs=1e-12)
        p, r, _ = precision_recall_curve(yy, ss)
        assert t["aupr", "trapezoid", positive] == pytest.approx(auc(r, p), abs=1e-12)
        assert t["auroc30", "mcclish", positive] == pytest.approx(roc_auc_score(yy, ss, max_fpr=0.3), abs=1e-12)
        v = roc_auc_score(yy, ss, max_fpr=0.3)
        raw = (0.045 + (2 * v - 1) * (0.3 - 0.045)) / 0.3  # McClish inverted, divided by 0.3
        assert t["auroc30", "raw", positive] == pytest.approx(raw, abs=1e-12)
        full = roc_auc_score(yy, ss)
        assert t["auroc30", "complement", positive] == pytest.approx((full - 0.3 * raw) / 0.7, abs=1e-12)
    assert t["auroc", "roc", "either"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_compare_conventions_finds_the_definition_that_made_the_table():
    rng = np.random.default_rng(1)
    scores, truth = {}, []
    y, _ = _data(2)
    for k in range(6):
        s = rng.normal(size=y.size) + 0.3 * k * y + rng.integers(0, 3, y.size) * (1 - y)
        scores[f"m{k}"] = s
        truth.append({"model": f"m{k}", "auroc": roc_auc_score(y, s),
                      "aupr": average_precision_score(1 - y, -s),               # normal-positive AP
                      "auroc30": roc_auc_score(1 - y, -s, max_fpr=0.3)})       # normal-positive McClish
    ranked = compare_conventions(candidates_by_model(scores, y), pd.DataFrame(truth))
    best = ranked.groupby("metric").first()
    assert tuple(best.loc["aupr", ["definition", "positive"]]) == ("ap", "normal")
    assert tuple(best.loc["auroc30", ["definition", "positive"]]) == ("mcclish", "normal")
    assert best.loc["aupr", "gap_error"] == pytest.approx(0, abs=1e-12)
    assert (ranked.n_rows == 6).all()


def test_compare_conventions_bad_input():
    cand = candidates_by_model({"a": [0.1, 0.9]}, [0, 1])
    with pytest.raises(ValueError, match="paper lacks"):
        compare_conventions(cand, pd.DataFrame({"model": ["a"], "auroc": [0.5]}))
    with pytest.raises(ValueError, match="no model is in both"):
        compare_conventions(cand, pd.DataFrame({"model": ["b"], "auroc": [0.5], "aupr": [0.5], "auroc30": [0.5]}))
    with pytest.raises(ValueError, match="non-empty mapping"):
        candidates_by_model({}, [0, 1])


def test_complement_is_the_area_right_of_fpr_03():
    from sklearn.metrics import roc_curve

    y, s = _data(3)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    grid = np.linspace(0.3, 1, 20001)
    area = np.trapezoid(np.interp(grid, fpr, tpr), grid) / 0.7
    t = metric_candidates(y, s).set_index(["metric", "definition", "positive"])["value"]
    assert t["auroc30", "complement", "anomaly"] == pytest.approx(area, abs=1e-4)
    assert metric_candidates([0, 1, 0, 1], [0.5] * 4).set_index("definition").loc["complement", "value"].tolist() == \
        pytest.approx([0.65, 0.65])  # chance level of the complement
