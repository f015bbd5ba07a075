"""Hyperparameter selection reads the validation split only; the report tests on the selected runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ogae_core.experiments import benchmark_report, select_configurations, selected_runs
from ogae_core.runs import Run, create_run


def _run(i, lam, seed, val, test=None):
    metrics = {"validation": {"auroc": val, "aupr": val, "auroc30": val}}
    if test is not None:
        metrics["test"] = {"auroc": test}
    config = {"method": "ogae", "scoring": "ocsvm", "seed": seed, "label": "ogae-ocsvm", "hyperparameters": {"lam": lam}}
    return Run(Path("/nonexistent") / f"r{i}", "e", f"r{i}", config, metrics)


def test_selection_never_reads_test():
    # no test metrics and no score files at all: selection must still work
    runs = [_run(0, 0.1, 0, 0.60), _run(1, 0.1, 1, 0.70), _run(2, 0.01, 0, 0.64), _run(3, 0.01, 1, 0.64)]
    sel = select_configurations(runs)
    row = sel.iloc[0]
    assert row["run_ids"] == ["r0", "r1"] and row["validation_mean"] == pytest.approx(0.65)
    assert row["n_candidates"] == 2 and row["seeds"] == [0, 1]
    assert row["validation_std"] == pytest.approx(np.std([0.6, 0.7], ddof=1))


def test_selection_ignores_contradicting_test_metrics():
    runs = [_run(0, 0.1, 0, 0.55, test=0.99), _run(1, 0.01, 0, 0.80, test=0.10)]
    assert selected_runs(runs)["ogae-ocsvm"].run_id == "r1"
    assert selected_runs(runs, metric="aupr")["ogae-ocsvm"].run_id == "r1"


def test_ties_go_to_the_first_group_and_bad_input_raises():
    assert selected_runs([_run(0, 0.1, 0, 0.7), _run(1, 0.01, 0, 0.7)])["ogae-ocsvm"].run_id == "r0"
    bad = Run(Path("x"), "e", "x", {"method": "ae", "scoring": "recons", "seed": 0}, {"test": {"auroc": 0.9}})
    with pytest.raises(ValueError, match="no validation"):
        select_configurations([bad])
    with pytest.raises(ValueError, match="selection metric"):
        select_configurations([_run(0, 0.1, 0, 0.7)], metric="accuracy")


def _write(root, lam, val_sep, test_sep, rng):
    """A finished run whose validation and test separations are set independently."""
    rows = []
    for split, sep, n in (("validation", val_sep, 200), ("test", test_sep, 400)):
        label = np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]
        rows.append(pd.DataFrame({"split": split, "item": np.arange(n), "label": label,
                                  "corruption": np.tile(["stripe", "fog"], n // 2),
                                  "score": sep * label + rng.normal(size=n)}))
    scores = pd.concat(rows, ignore_index=True)
    from ogae_core.experiments import split_metrics

    metrics = {s: split_metrics(scores[scores.split == s]) for s in ("validation", "test")}
    cfg = {"method": "ogae", "scoring": "ocsvm", "seed": 0, "label": "ogae-ocsvm", "hyperparameters": {"lam": lam}}
    with create_run(root, "sel", cfg, seed=0) as w:
        w.write_scores(scores)
        w.write_metrics(metrics)
    return w.final_path


def test_report_uses_the_validation_choice_on_test(tmp_path):
    rng = np.random.default_rng(0)
    good_on_test = _write(tmp_path, 0.1, val_sep=0.2, test_sep=3.0, rng=rng)
    good_on_val = _write(tmp_path, 0.01, val_sep=3.0, test_sep=0.2, rng=rng)
    rep = benchmark_report(tmp_path, "sel", n_boot=50)
    assert rep.runs["ogae-ocsvm"].path == good_on_val
    test = rep.runs["ogae-ocsvm"].scores().query("split == 'test'")
    from sklearn.metrics import roc_auc_score

    est = rep.bootstrap.query("metric == 'auroc'").set_index("model").loc["ogae-ocsvm", "estimate"]
    assert est == pytest.approx(roc_auc_score(test["label"], test["score"]))
    assert est < 0.7  # the better-on-test run was not chosen
    assert good_on_test.exists()
    summary = rep.seeds.set_index("model").loc["ogae-ocsvm"]
    assert summary["test_tied_max"] == rep.runs["ogae-ocsvm"].metrics["test"]["tied_fraction"] == 1 / 400
    assert summary["warnings"] == "-"


def test_split_metrics_and_report_show_tied_scores(tmp_path):
    from ogae_core.experiments import split_metrics

    n = 100
    label = np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]
    score = np.where(np.arange(n) % 4 == 0, np.arange(n) / 10.0, -2.0)  # 75 % tied
    frame = pd.DataFrame({"split": "test", "item": np.arange(n), "label": label, "corruption": "stripe", "score": score})
    assert split_metrics(frame)["tied_fraction"] == 0.75
    val = frame.assign(split="validation", score=np.arange(n) + 5.0 * label)
    metrics = {"validation": split_metrics(val), "test": split_metrics(frame), "warnings": ["tied_scores:test"]}
    cfg = {"method": "ogae", "scoring": "ocsvm", "seed": 0, "label": "ogae-ocsvm", "hyperparameters": {"lam": 0.1}}
    with create_run(tmp_path, "ties", cfg, seed=0) as w:
        w.write_scores(pd.concat([val, frame], ignore_index=True))
        w.write_metrics(metrics)
    rep = benchmark_report(tmp_path, "ties", n_boot=20, by_corruption=False)
    row = rep.seeds.set_index("model").loc["ogae-ocsvm"]
    assert row["test_tied_max"] == 0.75 and row["warnings"] == "tied_scores:test"
    assert "tied_scores:test" in rep.render("md")
