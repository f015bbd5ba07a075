"""Metrics against scikit-learn on golden cases (ties, constant scores, weights)."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from ogae_core.evaluation import all_metrics, aupr, auroc, auroc30, partial_auroc, pr_points, roc_points
from ogae_core.evaluation.metrics import ranking_metrics_batch, sort_scores


def _cases():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    yield "continuous", y, rng.normal(size=300) + y
    yield "ties", y, rng.integers(0, 4, 300).astype(float)
    yield "constant", y, np.full(300, 0.7)
    yield "perfect", y, y * 2.0 - 1
    yield "inverse", y, 1.0 - y
    y_rare = (rng.random(500) < 0.03).astype(int)
    y_rare[:2] = 1
    yield "rare anomalies", y_rare, rng.normal(size=500) + 2 * y_rare
    yield "bool labels, two items", np.array([False, True]), np.array([0.3, 0.1])
    yield "all tied but one", y, np.where(np.arange(300) == 5, 1.0, 0.0)


CASES = list(_cases())


@pytest.mark.parametrize("name,y,s", CASES, ids=[c[0] for c in CASES])
def test_metrics_equal_sklearn(name, y, s):
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert aupr(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert auroc30(y, s) == pytest.approx(roc_auc_score(y, s, max_fpr=0.3), abs=1e-12)
    for m in (0.05, 0.5, 0.99):
        assert partial_auroc(y, s, max_fpr=m) == pytest.approx(roc_auc_score(y, s, max_fpr=m), abs=1e-12)


@pytest.mark.parametrize("name,y,s", CASES, ids=[c[0] for c in CASES])
def test_raw_partial_auc_is_the_unstandardized_area(name, y, s):
    # Invert McClish's standardization of sklearn's value: pAUC = min + (2 v - 1) (max - min).
    v = roc_auc_score(y, s, max_fpr=0.3)
    area = 0.5 * 0.09 + (2 * v - 1) * (0.3 - 0.5 * 0.09)
    assert auroc30(y, s, standardized=False) == pytest.approx(area / 0.3, abs=1e-12)


def test_constant_detector_values():
    y = np.array([0] * 70 + [1] * 30)
    s = np.zeros(100)
    assert auroc(y, s) == 0.5
    assert aupr(y, s) == pytest.approx(0.3)  # step-wise AP = prevalence (trapezoid would say 0.65)
    assert auroc30(y, s) == pytest.approx(0.5)
    assert auroc30(y, s, standardized=False) == pytest.approx(0.15)


def test_weights_equal_duplicated_items():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    y[:2] = [0, 1]
    s = rng.integers(0, 6, 60).astype(float)
    w = rng.integers(0, 4, 60)
    w[:2] = 1
    rep = np.repeat(np.arange(60), w)
    assert auroc(y, s, weights=w) == pytest.approx(roc_auc_score(y[rep], s[rep]), abs=1e-12)
    assert aupr(y, s, weights=w) == pytest.approx(average_precision_score(y[rep], s[rep]), abs=1e-12)
    assert auroc30(y, s, weights=w) == pytest.approx(roc_auc_score(y[rep], s[rep], max_fpr=0.3), abs=1e-12)
    # float weights agree with sklearn's sample_weight
    wf = rng.random(60)
    assert auroc(y, s, weights=wf) == pytest.approx(roc_auc_score(y, s, sample_weight=wf), abs=1e-12)
    assert aupr(y, s, weights=wf) == pytest.approx(average_precision_score(y, s, sample_weight=wf), abs=1e-12)


def test_batch_rows_equal_single_evaluations_and_empty_class_is_nan():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 40)
    y[:2] = [0, 1]
    s = rng.normal(size=40)
    W = rng.integers(0, 3, (5, 40))
    W[4] = np.where(y == 1, 0, 1)  # no anomalies left
    out = ranking_metrics_batch(sort_scores(y, s), W)
    for i in range(4):
        assert out["auroc"][i] == pytest.approx(auroc(y, s, weights=W[i]), abs=1e-12)
        assert out["aupr"][i] == pytest.approx(aupr(y, s, weights=W[i]), abs=1e-12)
    assert all(np.isnan(out[k][4]) for k in out)


def test_curve_points_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    s = rng.integers(0, 10, 80).astype(float)
    fpr, tpr, thr = roc_points(y, s)
    f2, t2, th2 = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    np.testing.assert_array_equal(thr[1:], th2[1:])
    recall, precision, _ = pr_points(y, s)
    p2, r2, _ = precision_recall_curve(y, s)
    # sklearn orders by increasing threshold and ends at (recall 0, precision 1)
    np.testing.assert_allclose(recall, r2[::-1])
    np.testing.assert_allclose(precision, p2[::-1])


def test_all_metrics_keys_and_values():
    y, s = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    m = all_metrics(y, s)
    assert m["auroc"] == pytest.approx(0.75)
    assert m["aupr"] == pytest.approx(average_precision_score(y, s))


@pytest.mark.parametrize(
    "labels,scores,match",
    [
        ([0, 0, 0], [0.1, 0.2, 0.3], "no anomalies"),
        ([1, 1], [0.1, 0.2], "no normal"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "0 \\(normal\\) or 1"),
        ([0, 1], [0.1, np.nan], "non-finite"),
        ([0, 1, 1], [0.1, 0.2], "differ in length"),
        ([], [], "empty"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
    ],
)
def test_bad_input_raises_clear_errors(labels, scores, match):
    with pytest.raises(ValueError, match=match):
        auroc(labels, scores)


def test_bad_weights_and_max_fpr():
    with pytest.raises(ValueError, match="non-negative"):
        auroc([0, 1], [0.1, 0.2], weights=[1, -1])
    with pytest.raises(ValueError, match="max_fpr"):
        partial_auroc([0, 1], [0.1, 0.2], max_fpr=0)


def test_largest_tie_fraction_counts_the_biggest_group_of_equal_scores():
    from collections import Counter

    from ogae_core.evaluation import largest_tie_fraction

    rng = np.random.default_rng(3)
    scores = np.r_[rng.normal(size=70), np.full(20, 0.25), np.full(10, -1.0)]
    rng.shuffle(scores)
    assert largest_tie_fraction(scores) == max(Counter(scores.tolist()).values()) / len(scores) == 0.2
    # equal to 9 significant digits counts as tied, the 10th digit does not matter
    assert largest_tie_fraction([1.0, 1.0 + 1e-12, 2.0]) == pytest.approx(2 / 3)
    assert largest_tie_fraction([1.0, 1.0 + 1e-6, 2.0]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="non-finite"):
        largest_tie_fraction([1.0, np.nan])
    with pytest.raises(ValueError, match="empty"):
        largest_tie_fraction([])


# ----------------------------------------------------------------------------- both conventions
@pytest.mark.parametrize("name,y,s", CASES, ids=[c[0] for c in CASES])
def test_normal_positive_equals_sklearn_on_flipped_labels_and_negated_scores(name, y, s):
    yn, sn = 1 - np.asarray(y, dtype=int), -np.asarray(s, dtype=float)
    assert auroc(y, s, positive="normal") == pytest.approx(roc_auc_score(yn, sn), abs=1e-12)
    assert aupr(y, s, positive="normal") == pytest.approx(average_precision_score(yn, sn), abs=1e-12)
    assert auroc30(y, s, positive="normal") == pytest.approx(roc_auc_score(yn, sn, max_fpr=0.3), abs=1e-12)
    assert partial_auroc(y, s, max_fpr=0.1, positive="normal") == pytest.approx(
        roc_auc_score(yn, sn, max_fpr=0.1), abs=1e-12)
    both = all_metrics(y, s, positive="normal")
    assert both["aupr"] == pytest.approx(average_precision_score(yn, sn), abs=1e-12)
    # AUROC does not depend on the convention; the others in general do
    assert auroc(y, s, positive="normal") == pytest.approx(auroc(y, s), abs=1e-12)


def test_conventions_differ_where_they_should():
    rng = np.random.default_rng(5)
    y = (rng.random(400) < 0.3).astype(int)  # prevalence 0.3: AP of a random detector differs by class
    s = rng.normal(size=400)
    assert aupr(y, s) == pytest.approx(average_precision_score(y, s))
    assert abs(aupr(y, s) - aupr(y, s, positive="normal")) > 0.2


def test_normal_positive_curves_and_weights_match_sklearn():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 80)
    y[:2] = [0, 1]
    s = rng.integers(0, 7, 80).astype(float)
    fpr, tpr, _ = roc_points(y, s, positive="normal")
    f2, t2, _ = roc_curve(1 - y, -s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    recall, precision, _ = pr_points(y, s, positive="normal")
    p2, r2, _ = precision_recall_curve(1 - y, -s)
    np.testing.assert_allclose(recall, r2[::-1])
    np.testing.assert_allclose(precision, p2[::-1])
    w = rng.random(80)
    assert aupr(y, s, weights=w, positive="normal") == pytest.approx(
        average_precision_score(1 - y, -s, sample_weight=w), abs=1e-12)


@pytest.mark.parametrize("func", [auroc, aupr, auroc30, partial_auroc, all_metrics, roc_points, pr_points])
@pytest.mark.parametrize("bad", ["foo", "Normal", None, 1])
def test_bad_positive_class_is_named(func, bad):
    with pytest.raises(ValueError, match=f"positive must be one of .*got {bad!r}"):
        func([0, 1], [0.1, 0.9], positive=bad)
