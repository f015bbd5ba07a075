"""Figures carry the right data: curve points, bar heights, phases, categories."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from ogae_core.evaluation import paired_bootstrap, per_group_bootstrap
from ogae_core.viz import last_epoch_table, latent_scatter, per_corruption_bars, phases, pr_figure, roc_figure, training_dynamics


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    return y, {"good": y + rng.normal(size=200), "noise": rng.normal(size=200)}


def test_roc_figure_points_and_legend(task):
    y, scores = task
    fig = roc_figure(scores, y)
    assert isinstance(fig, go.Figure)
    trace = fig.data[0]
    fpr, tpr, _ = roc_curve(y, scores["good"], drop_intermediate=False)
    np.testing.assert_allclose(trace.x, fpr)
    np.testing.assert_allclose(trace.y, tpr)
    assert trace.name == f"good (AUROC {roc_auc_score(y, scores['good']):.3f})"
    assert fig.data[-1].name == "chance"


def test_curves_are_thinned_keeping_ends(task):
    y, scores = task
    fig = roc_figure(scores, y, max_points=50)
    assert len(fig.data[0].x) <= 50 and fig.data[0].x[0] == 0 and fig.data[0].x[-1] == 1


def test_pr_figure_is_stepwise(task):
    y, scores = task
    fig = pr_figure(scores, y)
    assert fig.data[1].line.shape == "vh"
    assert fig.data[1].name == f"noise (AUPR {average_precision_score(y, scores['noise']):.3f})"
    # the step-wise area under the drawn points is the average precision
    r, p = np.asarray(fig.data[0].x), np.asarray(fig.data[0].y)
    assert np.sum(np.diff(r) * p[1:]) == pytest.approx(average_precision_score(y, scores["good"]))


def test_curves_under_the_normal_positive_convention(task):
    y, scores = task
    roc = roc_figure(scores, y, positive="normal")
    fpr, tpr, _ = roc_curve(1 - y, -scores["good"], drop_intermediate=False)
    np.testing.assert_allclose(roc.data[0].x, fpr)
    np.testing.assert_allclose(roc.data[0].y, tpr)
    assert "normal = positive" in roc.layout.title.text
    pr = pr_figure(scores, y, positive="normal")
    assert pr.data[0].name == f"good (AUPR {average_precision_score(1 - y, -scores['good']):.3f})"
    with pytest.raises(ValueError, match="'foo'"):
        pr_figure(scores, y, positive="foo")


def test_per_corruption_bars(task):
    y, scores = task
    groups = np.repeat(["stripe", "fog"], 100)
    table = per_group_bootstrap(scores, y, groups, n=30, metrics=("auroc",))
    fig = per_corruption_bars(table)
    assert [t.name for t in fig.data] == ["good", "noise"]
    assert list(fig.data[0].x) == ["stripe", "fog"]
    expected = roc_auc_score(y[groups == "fog"], scores["good"][groups == "fog"])
    assert fig.data[0].y[1] == pytest.approx(expected)
    good = table[(table.model == "good") & (table.metric == "auroc")]
    np.testing.assert_allclose(fig.data[0].error_y.array, good.ci_high - good.estimate)  # the bootstrap CI
    np.testing.assert_allclose(fig.data[0].error_y.arrayminus, good.estimate - good.ci_low)
    with pytest.raises(ValueError, match="not in the table"):
        per_corruption_bars(table, "aupr")
    with pytest.raises(ValueError, match="lacks column"):
        per_corruption_bars(paired_bootstrap(scores, y, n=10))


def _history(schedule):
    e = np.arange(1, len(schedule) + 1)
    return pd.DataFrame(
        {
            "epoch": e,
            "loss_reconstruction": 1 / e,
            "loss_expander": 0.5 / e,
            "latent_spread": e * 0.1,
            "rho": 0.2 + 0 * e,
            "misclassified_fraction": 0.5 / e,
            "expander_weight": [1.0 if s in ("expander", "both") else 0.0 for s in schedule],
            "compactor_weight": [1.0 if s in ("compactor", "both") else 0.0 for s in schedule],
        }
    )


def test_phases_from_weights_and_column():
    h = _history(["expander"] * 3 + ["both"] * 2)
    assert phases(h) == [(1, 3, "expander"), (4, 5, "both")]
    h2 = pd.DataFrame({"epoch": [1, 2, 3], "phase": ["compactor", "compactor", "expander"]})
    assert phases(h2) == [(1, 2, "compactor"), (3, 3, "expander")]
    assert phases(pd.DataFrame({"epoch": [1]})) == []


def test_training_dynamics_panels_runs_and_shading():
    runs = {
        "OgAE e→both": _history(["expander"] * 3 + ["both"] * 3),
        "AE": _history(["none"] * 6).drop(
            columns=["expander_weight", "compactor_weight", "loss_expander", "misclassified_fraction", "rho"]
        ),
    }
    fig = training_dynamics(runs)
    titles = [
        a.text
        for a in fig.layout.annotations
        if a.text
        in ("Loss terms", "Latent spread (mean pairwise MSE)", "Fraction of z_L misclassified", "ρ (OCSVM offset)")
    ]
    assert len(titles) == 4  # sv_fraction / n_support absent from both runs: panels left out
    names = [t.name for t in fig.data]
    assert (
        "OgAE e→both · reconstruction" in names and "OgAE e→both · expander" in names and "AE · reconstruction" in names
    )
    assert "AE · rho" not in names
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert {(r.x0, r.x1) for r in rects} == {(0.5, 3.5), (3.5, 6.5)}
    assert "phases of OgAE e→both" in fig.layout.title.text
    ys = [t for t in fig.data if t.name == "OgAE e→both · latent_spread"][0].y
    np.testing.assert_allclose(ys, np.arange(1, 7) * 0.1)
    with pytest.raises(ValueError, match="phases_of"):
        training_dynamics(runs, phases_of="nope")
    with pytest.raises(ValueError, match="unknown panel"):
        training_dynamics(runs, panels=["bogus"])
    with pytest.raises(ValueError, match="epoch"):
        training_dynamics({"x": pd.DataFrame({"loss_reconstruction": [1.0]})})


def test_latent_scatter_categories_and_sampling():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "umap_x": rng.normal(size=300),
            "umap_y": rng.normal(size=300),
            "corruption": np.repeat(["stripe", "fog", "brightness"], 100),
            "label": np.tile([0, 1], 150),
        }
    )
    fig = latent_scatter(df, color="corruption")
    assert sorted(t.name for t in fig.data) == ["brightness", "fog", "stripe"]
    assert sum(len(t.x) for t in fig.data) == 300
    fig = latent_scatter(df, color="label", max_points=100)
    assert sorted(t.name for t in fig.data) == ["anomaly", "normal"]
    assert sum(len(t.x) for t in fig.data) == 100
    with pytest.raises(ValueError, match="digit"):
        latent_scatter(df, color="digit")


def test_all_nan_columns_are_not_drawn():
    h = _history(["both"] * 3)
    h["rho"] = np.nan  # the trainer writes NaN where a quantity does not apply
    fig = training_dynamics({"AE": h})
    assert not any(t.name.endswith("rho") for t in fig.data)
    assert "ρ (OCSVM offset)" not in [a.text for a in fig.layout.annotations]


def test_last_epoch_table_takes_the_highest_epoch_of_each_run():
    a = pd.DataFrame({"epoch": [3, 1, 2], "rho": [0.3, 0.1, 0.2], "phase": ["both", "expander", "expander"]})
    b = pd.DataFrame({"epoch": [1, 2], "latent_spread": [5.0, 4.0]})
    table = last_epoch_table({"a": a, "b": b})
    assert list(table.columns) == ["run", "epoch", "phase", "latent_spread", "rho"]
    assert table.set_index("run").loc["a", "rho"] == 0.3 and table.set_index("run").loc["a", "phase"] == "both"
    assert table.set_index("run").loc["b", "epoch"] == 2 and np.isnan(table.set_index("run").loc["b", "rho"])
    with pytest.raises(ValueError, match="'c' lacks the 'epoch' column"):
        last_epoch_table({"c": pd.DataFrame({"rho": [1.0]})})
