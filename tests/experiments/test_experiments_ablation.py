"""The fidelity ablation's aggregate and analysis: on a synthetic runs table with planted
effects (fast), and end to end from a smoke ablation through the CLI (slow)."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from ogae_core.experiments.ablation import (
    AGGREGATE_FILES,
    ablation_experiments,
    read_aggregate,
    split_blocks,
    split_label,
)
from ogae_core.experiments.ablation_analysis import (
    beside_paper_cells,
    best_of_k,
    cell_summary,
    cell_test_metrics,
    epoch_curves,
    factor_effects,
    in_grid_without_scale,
    per_corruption,
    select_runs,
)
from ogae_core.experiments.presets import ABLATION_OCSVM_GRID, expand_grid

CELL_EFFECT = {"project": 0.0, "authors": 0.1, "slope-0.3": -0.05}
SCALE_BONUS = 0.03  # planted: the "scale" points score this much higher on validation and test


def synthetic_runs(seeds=(0, 1, 2), pairs=("3v4", "3v8")) -> pd.DataFrame:
    """A runs table shaped like ``runs.csv`` with planted cell and final-grid effects."""
    rng = np.random.default_rng(0)
    rows = []
    for pair, (cell, effect), seed in itertools.product(pairs, CELL_EFFECT.items(), seeds):
        base = 0.55 + 0.02 * seed
        for point in expand_grid(ABLATION_OCSVM_GRID):
            bonus = SCALE_BONUS if point["ocsvm_gamma"] == "scale" else 0.0
            # one point is best on validation for every seed: nu=0.1, std=True (by a margin)
            tilt = 0.01 * (point["ocsvm_nu"] == 0.1) + 0.01 * bool(point["ocsvm_standardize"])
            noise = rng.normal(0, 1e-4)
            rows.append({"experiment": f"mnistc-{pair}-ablation", "pair": pair, "row": "ogae-ocsvm", "cell": cell,
                         "label": f"ogae-ocsvm [{cell}]", "seed": seed, "run_id": f"{pair}-{cell}-{seed}-{len(rows)}",
                         **{f"hp.{k}": v for k, v in point.items()},
                         "validation.auroc": base + effect + bonus + tilt + noise,
                         # test: the same effects, and a contradicting tilt that selection must not see
                         "test.auroc": base + effect + bonus - tilt,
                         "test.per_corruption.stripe.auroc": 0.4 + effect, "test.per_corruption.brightness.auroc": 0.7,
                         "warnings": "latent_explosion" if cell == "authors" and seed == 1 else np.nan})
    return pd.DataFrame(rows)


def test_split_label_and_experiments():
    assert split_label("ae-ocsvm [slope-0.3]") == ("ae-ocsvm", "slope-0.3")
    assert split_label("h-dsvdd") == ("h-dsvdd", "project")
    assert ablation_experiments() == ["mnistc-3v4-ablation", "mnistc-3v8-ablation"]


def test_grid_without_scale_survives_a_csv_round_trip(tmp_path):
    runs = synthetic_runs(seeds=(0,), pairs=("3v4",))
    runs.to_csv(tmp_path / "r.csv", index=False)
    back = pd.read_csv(tmp_path / "r.csv")
    assert in_grid_without_scale(back).tolist() == in_grid_without_scale(runs).tolist()
    assert in_grid_without_scale(runs).sum() == len(runs) * 2 // 3  # 8 of the 12 points per training


def test_selection_uses_validation_only():
    sel = select_runs(synthetic_runs())
    assert set(sel["hp.ocsvm_gamma"]) == {"scale"} and set(sel["hp.ocsvm_nu"]) == {0.1}
    assert set(sel["hp.ocsvm_standardize"]) == {True}  # the validation tilt, not the test one
    assert len(sel) == 2 * len(CELL_EFFECT) * 3  # one run per label and seed
    without = select_runs(synthetic_runs(), grid="without-scale")
    assert "scale" not in set(without["hp.ocsvm_gamma"])
    with pytest.raises(ValueError, match="grid must be one of"):
        select_runs(synthetic_runs(), grid="both")
    with pytest.raises(ValueError, match="no column"):
        select_runs(synthetic_runs().drop(columns="validation.auroc"))


def test_cell_summary_and_factor_effects_recover_the_planted_effects():
    runs = synthetic_runs()
    summary = cell_summary(runs).set_index(["pair", "cell"])
    assert summary.loc[("3v4", "authors"), "test_mean"] - summary.loc[("3v4", "project"), "test_mean"] == \
        pytest.approx(0.1, abs=1e-9)
    assert summary.loc[("3v4", "project"), "test_sd"] == pytest.approx(0.02, abs=1e-9)  # seeds 0.55 / 0.57 / 0.59
    assert summary.loc[("3v4", "authors"), "warnings"] == "latent_explosion"
    assert summary.loc[("3v4", "project"), "warnings"] == "-"
    eff = factor_effects(runs).set_index(["factor", "pair"])
    for cell, effect in CELL_EFFECT.items():
        if cell != "project":
            assert eff.loc[(cell, "all"), "effect"] == pytest.approx(effect, abs=1e-9)
            assert eff.loc[(cell, "all"), "n"] == 6
            assert eff.loc[(cell, "3v4"), "ci_low"] - 1e-9 <= effect <= eff.loc[(cell, "3v4"), "ci_high"] + 1e-9
    f3 = eff.loc[("final grid +scale [project]", "all")]
    assert f3["effect"] == pytest.approx(SCALE_BONUS, abs=1e-9)
    with pytest.raises(ValueError, match="confidence"):
        factor_effects(runs, confidence=1.0)


def test_cell_summary_reads_an_all_missing_warnings_column_without_a_pandas_warning(tmp_path):
    runs = synthetic_runs(seeds=(0,), pairs=("3v4",)).assign(warnings=np.nan)
    runs.to_csv(tmp_path / "r.csv", index=False)
    back = pd.read_csv(tmp_path / "r.csv")
    assert back["warnings"].dtype == float
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set(cell_summary(back)["warnings"]) == {"-"}


def with_other_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """The synthetic runs with AUPR / AUROC30 under both conventions planted from the AUROC."""
    return runs.assign(**{"test.aupr": runs["test.auroc"] + 0.1, "test.auroc30": runs["test.auroc"] - 0.1,
                          "test.normal_positive.aupr": runs["test.auroc"] + 0.2,
                          "test.normal_positive.auroc30": runs["test.auroc"] - 0.2})


def test_cell_test_metrics_gives_every_metric_of_the_selected_runs():
    runs = with_other_metrics(synthetic_runs())
    t = cell_test_metrics(runs).set_index(["pair", "cell", "metric"])
    assert set(t.index.get_level_values("metric")) == {"auroc", "auroc30", "aupr", "normal_positive.aupr",
                                                       "normal_positive.auroc30"}
    auroc = t.loc[("3v4", "authors", "auroc")]
    assert auroc["n_seeds"] == 3 and auroc["sd"] == pytest.approx(0.02, abs=1e-9)
    # the selected runs' values (the validation-best point), shifted as planted
    assert t.loc[("3v4", "authors", "normal_positive.aupr"), "mean"] == pytest.approx(auroc["mean"] + 0.2)
    assert t.loc[("3v4", "authors", "auroc30"), "mean"] == pytest.approx(auroc["mean"] - 0.1)
    # an aggregate of runs without the normal-positive block: only the metrics it has
    assert set(cell_test_metrics(synthetic_runs())["metric"]) == {"auroc"}


def test_beside_paper_cells_puts_the_papers_rows_under_our_cells():
    from ogae_core.evaluation.paper import paper_table

    runs = with_other_metrics(synthetic_runs())
    t = beside_paper_cells(runs, "3v8")
    paper = paper_table(3, 8)
    labels = sorted(f"ogae-ocsvm [{c}]" for c in CELL_EFFECT)
    assert t.index.tolist() == [*labels, "paper: ogae-ocsvm (Table I)", "paper: ae-ocsvm (Table I)"]
    assert t.columns.tolist() == ["AUROC", "AUROC30", "AUPR", "AUROC30 (normal +)", "AUPR (normal +)", "n_seeds"]
    mean = cell_test_metrics(runs).set_index(["pair", "label", "metric"]).loc[("3v8", labels[1], "aupr"), "mean"]
    assert t.loc[labels[1], "AUPR"] == f"{mean:.2f} ± 0.02" and t.loc[labels[1], "n_seeds"] == "3"
    row = t.loc["paper: ae-ocsvm (Table I)"]
    assert row["AUROC30"] == row["AUROC30 (normal +)"] == f"{paper.at['ae-ocsvm', 'auroc30']:.2f}"
    assert beside_paper_cells(runs, "3v4").index[-1] == "paper: ae-ocsvm (Table IV)"
    with pytest.raises(ValueError, match="not in the runs table"):
        beside_paper_cells(runs, "3v5")
    with pytest.raises(ValueError, match="no MNIST-C table"):
        beside_paper_cells(runs.assign(pair="1v7"), "1v7")


def test_split_blocks_recomputes_the_normal_positive_block_only_when_missing():
    scores = pd.DataFrame({"split": ["test"] * 4 + ["validation"] * 4, "score": [0.1, 0.9, 0.2, 0.8] * 2,
                           "label": [0, 1, 1, 0] * 2, "corruption": "a"})
    stored_np = {"auroc": 0.123, "aupr": 0.456}

    class Run:
        metrics = {"test": {"auroc": 0.5, "per_corruption": {"a": {"auroc": 0.5}}},
                   "validation": {"auroc": 0.5, "normal_positive": stored_np}}

        @staticmethod
        def scores():
            return scores

    blocks = split_blocks(Run())
    assert blocks["validation"]["normal_positive"] == stored_np  # stored: kept
    fresh = blocks["test"]["normal_positive"]
    # anomalies 0.9, 0.2 vs normals 0.1, 0.8: 3 of 4 pairs ordered; the stored value is left alone
    assert fresh["auroc"] == pytest.approx(0.75) and blocks["test"]["auroc"] == 0.5
    assert "normal_positive" in blocks["test"]["per_corruption"]["a"]
    assert "normal_positive" not in Run.metrics["test"]  # the run's metrics are not changed

    class NoScores(Run):
        @staticmethod
        def scores():
            raise FileNotFoundError("scores.parquet")

    assert "normal_positive" not in split_blocks(NoScores())["test"]


def test_factor_effect_interval_widens_with_seed_noise():
    runs = synthetic_runs()
    noisy = runs.copy()
    shift = noisy["seed"].map({0: -0.05, 1: 0.0, 2: 0.05})
    noisy.loc[noisy["cell"] == "authors", "test.auroc"] += shift[noisy["cell"] == "authors"]
    eff = factor_effects(noisy).set_index(["factor", "pair"]).loc[("authors", "3v4")]
    assert eff["effect"] == pytest.approx(0.1, abs=1e-9)
    assert eff["ci_high"] - eff["ci_low"] > 0.2  # t(2) = 4.30 x sd 0.05 / sqrt(3) on each side


def test_per_corruption_and_epoch_curves():
    pc = per_corruption(synthetic_runs()).set_index(["pair", "cell"])
    assert pc.loc[("3v8", "authors"), "stripe"] == pytest.approx(0.5)
    assert pc.loc[("3v8", "authors"), "brightness"] == pytest.approx(0.7)
    h = pd.DataFrame({"experiment": "e", "label": "l", "row": "r", "cell": "c", "seed": [0, 1, 0, 1],
                      "epoch": [1, 1, 2, 2], "phase": "expander", "latent_spread": [1.0, 3.0, 10.0, 30.0],
                      "misclassified_fraction": 0.2})
    curves = epoch_curves(h)
    spread = curves[curves["column"] == "latent_spread"]
    assert spread["mean"].tolist() == [2.0, 20.0] and set(curves["column"]) == {"latent_spread", "misclassified_fraction"}


def test_best_of_k_gains_from_selection_and_is_reproducible():
    runs = synthetic_runs()
    b = best_of_k(runs, ks=(1, 8, 32, 10_000), n_subsets=300)
    for pair, g in b.groupby("pair"):
        assert g["k"].tolist() == [1, 8, 32]  # K above the pool size (108) is left out
        assert g["test_mean"].is_monotonic_increasing
        assert (g["test_mean"] <= g["best_test"] + 1e-12).all()
    pd.testing.assert_frame_equal(b, best_of_k(runs, ks=(1, 8, 32, 10_000), n_subsets=300))
    with pytest.raises(ValueError, match=">= 1"):
        best_of_k(runs, ks=(0,))


def test_read_aggregate_names_the_command_when_files_are_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="ogae ablation aggregate"):
        read_aggregate(tmp_path)


def test_committed_smoke_aggregate_has_every_table():
    from ogae_core.checkout import source_checkout

    folder = source_checkout() / "results" / "ablation" / "smoke"
    agg = read_aggregate(folder)
    assert set(agg) == set(AGGREGATE_FILES)
    runs = agg["runs"]
    assert set(runs["pair"]) == {"3v4", "3v8"} and {"ogae-ocsvm", "ae-ocsvm"} <= set(runs["row"])
    assert {"latent_spread", "misclassified_fraction"} <= set(agg["history"].columns)
    assert not cell_summary(runs).empty and not factor_effects(runs).empty
    assert {"test.normal_positive.aupr", "test.normal_positive.auroc30"} <= set(runs.columns)
    assert "AUPR (normal +)" in beside_paper_cells(runs, "3v4").columns


@pytest.mark.slow
def test_smoke_ablation_end_to_end_through_the_cli(tmp_path, monkeypatch, capsys):
    """bench (two cells of OgAE, one of AE; one pair) -> aggregate -> every analysis."""
    from ogae_core.cli import main

    root = tmp_path / "runs"
    args = ["bench", "mnistc", "--preset", "ablation-smoke", "--anomaly", "4", "--runs-root", str(root),
            "--executor", "inline", "--methods", "ogae-ocsvm [project]", "ogae-ocsvm [authors]", "ae-ocsvm [project]"]
    assert main(args) == 0
    assert main(["ablation", "aggregate", "--smoke", "--runs-root", str(root), "--out", str(tmp_path / "agg"),
                 "--n-boot", "50"]) == 0
    agg = read_aggregate(tmp_path / "agg")
    runs = agg["runs"]
    assert len(runs) == 6 and set(runs["cell"]) == {"project", "authors"}
    assert runs.loc[runs["cell"] == "authors", "hp.standardize"].eq("each").all()
    assert len(agg["history"]) == 3 * 2  # three trainings of two epochs, once each
    assert set(agg["bootstrap"]["model"]) == set(runs["label"])
    assert {"authors", "final grid +scale [project]"} <= set(factor_effects(runs)["factor"])
    # resumable: the same command again trains nothing
    capsys.readouterr()
    assert main(args) == 0
    assert "0 run(s) to do, 6 already finished" in capsys.readouterr().out
