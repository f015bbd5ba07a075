"""Paired bootstrap, Bonferroni, Kruskal–Wallis + Dunn."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score
from statsmodels.stats.multitest import multipletests

from ogae_core.evaluation import bonferroni, bootstrap_samples, kruskal_dunn, paired_bootstrap, per_group_bootstrap
from ogae_core.evaluation.stats import resample_indices


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(300, int), np.ones(300, int)]
    good = 2.0 * y + rng.normal(size=600)
    weak = 0.3 * y + rng.normal(size=600)
    return y, good, weak


def test_bootstrap_samples_equal_brute_force_resampling(task):
    y, good, weak = task
    samples = bootstrap_samples({"good": good, "weak": weak}, y, n=30, seed=7)
    idx = np.concatenate(list(resample_indices(y.size, 30, seed=7)))
    assert idx.shape == (30, y.size)
    for k in range(30):
        i = idx[k]
        assert samples["auroc"][0, k] == pytest.approx(roc_auc_score(y[i], good[i]), abs=1e-12)
        assert samples["auroc"][1, k] == pytest.approx(roc_auc_score(y[i], weak[i]), abs=1e-12)
        assert samples["aupr"][1, k] == pytest.approx(average_precision_score(y[i], weak[i]), abs=1e-12)
        assert samples["auroc30"][0, k] == pytest.approx(roc_auc_score(y[i], good[i], max_fpr=0.3), abs=1e-12)


def test_resample_stream_does_not_depend_on_n_or_batch():
    a = np.concatenate(list(resample_indices(50, 60, seed=3, batch=25)))
    b = np.concatenate(list(resample_indices(50, 40, seed=3, batch=100)))
    np.testing.assert_array_equal(a[:40], b)


def test_clearly_better_model_is_significant(task):
    y, good, weak = task
    t = paired_bootstrap({"weak": weak, "good": good}, y, n=300, seed=1)
    for metric in ("auroc", "aupr", "auroc30"):
        rows = t[t.metric == metric].set_index("model")
        assert rows.loc["good", "is_best"] and not rows.loc["weak", "is_best"]
        assert rows.loc["weak", "p_value"] < 0.005
        assert rows.loc["weak", "significant"] and not rows.loc["weak", "tied_with_best"]
        assert np.isnan(rows.loc["good", "p_value"])
        assert rows.loc["weak", "ci_high"] < rows.loc["good", "ci_low"]
        assert rows.loc["good", "estimate"] == pytest.approx(
            {"auroc": roc_auc_score, "aupr": average_precision_score}.get(
                metric, lambda a, b: roc_auc_score(a, b, max_fpr=0.3)
            )(y, good)
        )


def test_identical_models_are_not_different(task):
    y, good, _ = task
    t = paired_bootstrap({"a": good, "b": good.copy()}, y, n=200, seed=2)
    rows = t[t.metric == "auroc"].set_index("model")
    assert rows.loc["a", "is_best"]  # first of the tie
    assert rows.loc["b", "p_value"] == 1.0  # matches the best in every resample
    assert not rows.loc["b", "significant"] and rows.loc["b", "tied_with_best"]


def test_p_value_definition_and_bonferroni_in_table(task):
    y, good, weak = task
    rng = np.random.default_rng(5)
    close = good + rng.normal(0, 0.8, good.size)
    models = {"good": good, "close": close, "weak": weak}
    t = paired_bootstrap(models, y, n=150, seed=4, metrics=("auroc",))
    samples = bootstrap_samples(models, y, n=150, seed=4)["auroc"]
    best = int(np.argmax(samples.mean(axis=1)))
    rows = t.set_index("model")
    for i, name in enumerate(models):
        if i == best:
            continue
        expected = np.mean(samples[i] >= samples[best])
        assert rows.loc[name, "p_value"] == pytest.approx(expected)
        assert rows.loc[name, "p_adjusted"] == pytest.approx(min(1.0, 2 * expected))
    assert set(rows.n_comparisons) == {2}


def test_same_seed_same_table_and_seed_matters(task):
    y, good, weak = task
    a = paired_bootstrap({"g": good, "w": weak}, y, n=50, seed=9)
    b = paired_bootstrap({"g": good, "w": weak}, y, n=50, seed=9)
    c = paired_bootstrap({"g": good, "w": weak}, y, n=50, seed=10)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.boot_mean, c.boot_mean)


def test_bonferroni_matches_statsmodels():
    p = np.array([0.001, 0.004, 0.02, 0.3, 0.9])
    np.testing.assert_allclose(bonferroni(p), multipletests(p, method="bonferroni")[1])
    np.testing.assert_allclose(bonferroni([0.2, np.nan]), [0.2, np.nan])
    np.testing.assert_allclose(bonferroni([0.2], n_comparisons=11), [1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bonferroni([1.5])


def test_per_group_bootstrap_runs_within_groups(task):
    y, good, weak = task
    groups = np.tile(["stripe", "fog"], y.size // 2)
    t = per_group_bootstrap({"g": good, "w": weak}, y, groups, n=40, seed=0, metrics=("auroc",))
    assert t.group.unique().tolist() == ["stripe", "fog"]
    stripe = t[(t.group == "stripe") & (t.model == "g")].estimate.item()
    assert stripe == pytest.approx(roc_auc_score(y[groups == "stripe"], good[groups == "stripe"]))


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="non-empty mapping"):
        paired_bootstrap({}, [0, 1])
    with pytest.raises(ValueError, match="model 'a'.*differ in length"):
        paired_bootstrap({"a": [0.1, 0.2, 0.3]}, [0, 1])
    with pytest.raises(ValueError, match="unknown metric"):
        paired_bootstrap({"a": [0.1, 0.2]}, [0, 1], metrics=("f1",))
    with pytest.raises(ValueError, match="positive integer"):
        paired_bootstrap({"a": [0.1, 0.2]}, [0, 1], n=0)


def _dunn_by_hand(groups: dict) -> dict:
    """Dunn's z with the tie correction, two-sided normal p, Bonferroni over all pairs."""
    values = np.concatenate(list(groups.values()))
    ranks = stats.rankdata(values)
    n = values.size
    _, counts = np.unique(values, return_counts=True)
    tie = np.sum(counts**3 - counts) / (12 * (n - 1))
    out, start = {}, 0
    mean_rank, sizes = {}, {}
    for g, v in groups.items():
        mean_rank[g] = ranks[start : start + len(v)].mean()
        sizes[g] = len(v)
        start += len(v)
    names = list(groups)
    m = len(names) * (len(names) - 1) / 2
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            se = np.sqrt((n * (n + 1) / 12 - tie) * (1 / sizes[a] + 1 / sizes[b]))
            z = abs(mean_rank[a] - mean_rank[b]) / se
            out[(a, b)] = min(1.0, 2 * stats.norm.sf(z) * m)
    return out


def test_kruskal_dunn_against_scipy_and_hand_computation():
    groups = {  # per-subject AUROCs of three methods, with ties
        "ogae": [0.81, 0.84, 0.79, 0.88, 0.86, 0.83, 0.84],
        "ae": [0.72, 0.75, 0.70, 0.74, 0.79, 0.71],
        "vae": [0.70, 0.74, 0.69, 0.72, 0.75, 0.68, 0.73, 0.70],
    }
    r = kruskal_dunn(groups)
    h, p = stats.kruskal(*groups.values())
    assert r.statistic == pytest.approx(h) and r.pvalue == pytest.approx(p)
    expected = _dunn_by_hand(groups)
    for (a, b), pv in expected.items():
        assert r.dunn.loc[a, b] == pytest.approx(pv, rel=1e-9)
        row = r.pairs[(r.pairs.group_a == a) & (r.pairs.group_b == b)].iloc[0]
        assert row.p_adjusted == pytest.approx(pv, rel=1e-9)
        assert row.significant == (pv < 0.01)
    assert r.pairs.set_index(["group_a", "group_b"]).loc[("ogae", "vae"), "significant"]
    # the long-table form gives the same answer
    long = pd.DataFrame([(v, g) for g, vals in groups.items() for v in vals], columns=["auroc", "method"])
    r2 = kruskal_dunn(long, val_col="auroc", group_col="method")
    assert r2.statistic == pytest.approx(r.statistic)
    pd.testing.assert_frame_equal(r2.dunn, r.dunn, check_names=False)


def test_kruskal_dunn_bad_input():
    with pytest.raises(ValueError, match="two non-empty groups"):
        kruskal_dunn({"a": [1, 2, 3]})
    with pytest.raises(ValueError, match="identical"):
        kruskal_dunn({"a": [1, 1], "b": [1, 1]})
    with pytest.raises(ValueError, match="lacks column"):
        kruskal_dunn(pd.DataFrame({"x": [1]}))


def test_paired_bootstrap_normal_positive_matches_sklearn_on_each_resample(task):
    y, good, weak = task
    t = paired_bootstrap({"good": good, "weak": weak}, y, n=30, seed=3, positive="normal")
    est = t.set_index(["metric", "model"])["estimate"]
    assert est["aupr", "weak"] == pytest.approx(average_precision_score(1 - y, -weak), abs=1e-12)
    assert est["auroc30", "weak"] == pytest.approx(roc_auc_score(1 - y, -weak, max_fpr=0.3), abs=1e-12)
    assert t.attrs["positive"] == "normal"
    samples = bootstrap_samples({"weak": weak}, y, n=4, seed=3, positive="normal")
    idx = next(resample_indices(y.size, 4, 3))
    for k in range(4):
        i = idx[k]
        assert samples["aupr"][0, k] == pytest.approx(average_precision_score(1 - y[i], -weak[i]), abs=1e-12)
    # same resamples under both conventions: AUROC identical resample by resample
    anomaly = bootstrap_samples({"weak": weak}, y, n=4, seed=3)
    np.testing.assert_allclose(anomaly["auroc"], samples["auroc"], atol=1e-12)


def test_bootstrap_bad_positive_is_named(task):
    y, good, _ = task
    with pytest.raises(ValueError, match="positive must be one of .*'foo'"):
        paired_bootstrap({"good": good}, y, n=5, positive="foo")
    with pytest.raises(ValueError, match="positive must be one of .*'foo'"):
        per_group_bootstrap({"good": good}, y, np.repeat(["a", "b"], 300), n=5, positive="foo")
