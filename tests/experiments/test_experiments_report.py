"""The paper's table from the smoke store, and the CLI."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ogae_core.cli import main
from ogae_core.experiments import PAPER_GRIDS, benchmark_report, paper_order, preset_configs
from ogae_core.experiments.presets import OCSVM_GRID, expand_grid
from tests.experiments.conftest import SMOKE_EXPERIMENT


@pytest.mark.slow
def test_report_on_smoke_store(smoke_store):
    root, _ = smoke_store
    rep = benchmark_report(root, SMOKE_EXPERIMENT, n_boot=100)
    assert rep.table.models == ["ae-recons", "ogae-ocsvm", "h-dsvdd"]  # the paper's row order
    assert [m for m in paper_order() if m in rep.table.models] == rep.table.models
    boot = rep.bootstrap.query("metric == 'auroc'").set_index("model")
    for label, run in rep.runs.items():
        test = run.scores().query("split == 'test'").sort_values("item")
        assert boot.loc[label, "estimate"] == pytest.approx(roc_auc_score(test["label"], test["score"]))
    assert boot["is_best"].sum() == 1
    assert set(rep.per_corruption["group"]) == {"stripe", "canny_edges", "brightness"}
    assert len(rep.aligned.labels) == preset_configs("smoke")[0].task.max_test
    md, html, tex = rep.render("md"), rep.render("html"), rep.render("latex")
    assert "| ogae-ocsvm |" in md and "<table" in html and r"\begin{tabular}" in tex
    assert md.count("**") >= 6  # the best of each of the three columns is bold
    with pytest.raises(ValueError, match="unknown format"):
        rep.render("docx")


def test_report_without_runs_names_the_command(tmp_path):
    with pytest.raises(ValueError, match="ogae bench mnistc"):
        benchmark_report(tmp_path, "nothing")


@pytest.mark.slow
def test_cli_report_and_resumed_bench(smoke_store, tmp_path, capsys):
    root, _ = smoke_store
    assert main(["report", "--runs-root", str(root), "--n-boot", "50", "--out", str(tmp_path), "--format", "html"]) == 0
    assert (tmp_path / f"{SMOKE_EXPERIMENT}.html").read_text().count("<tr>") >= 4
    assert main(["bench", "mnistc", "--preset", "smoke", "--runs-root", str(root), "--executor", "inline"]) == 0
    out = capsys.readouterr().out
    assert "0 run(s) to do, 3 already finished" in out
    assert main(["report", "--runs-root", str(tmp_path / "empty")]) == 1


def test_cli_bench_list_expands_the_paper_grid(capsys):
    assert main(["bench", "mnistc", "--preset", "paper", "--methods", "ogae-ocsvm", "--seeds", "0", "--list"]) == 0
    *lines, summary = capsys.readouterr().out.strip().splitlines()
    grid = PAPER_GRIDS[("ogae", "ocsvm")]
    assert len(lines) == int(np.prod([len(v) for v in grid.values()]))
    assert len({line.split()[0] for line in lines}) == len(lines)  # distinct run ids
    # the final-OCSVM options share trainings: one per point of the training grid
    n_trainings = int(np.prod([len(v) for k, v in grid.items() if not k.startswith("ocsvm_")]))
    assert len({line.split()[2] for line in lines}) == n_trainings
    assert summary == f"{len(lines)} configuration(s), {n_trainings} training(s)"


def test_presets():
    quick = preset_configs("quick")
    assert [c.label for c in quick] == ["ogae-ocsvm", "ae-recons", "ae-ocsvm", "h-dsvdd"]
    ogae = quick[0]
    assert ogae.hyperparameters["switch_epoch"] == ogae.epochs // 2  # expander for the first half
    paper = preset_configs("paper", seeds=[0])
    assert len({c.label for c in paper}) == 12 and all(c.epochs == 20 for c in paper)
    assert preset_configs("quick", epochs=10)[0].hyperparameters["switch_epoch"] == 5
    # the reduced preset: every row, full task, three seeds; every training at its method's defaults
    reduced = preset_configs("reduced")
    assert {c.label for c in reduced} == {c.label for c in paper} and {c.seed for c in reduced} == {0, 1, 2}
    assert all(c.task == paper[0].task and c.epochs == 20 for c in reduced)
    trainings = {c.training_key() for c in reduced if c.seed == 0}
    assert len(trainings) == 8  # one per method: OgAE's recons and ocsvm rows share theirs
    ogae_runs = [c for c in reduced if c.method == "ogae" and c.seed == 0]
    assert len({c.training_key() for c in ogae_runs}) == 1
    assert all(not {"lam", "guidance", "strategy"} & set(c.hyperparameters) for c in ogae_runs)  # the defaults
    assert len([c for c in reduced if c.label == "ae-ocsvm" and c.seed == 0]) == len(expand_grid(OCSVM_GRID))  # the whole final-OCSVM grid
    with pytest.raises(ValueError, match="no row"):
        preset_configs("quick", methods=["vae-recons"])
    with pytest.raises(ValueError, match="unknown preset"):
        preset_configs("huge")


# ----------------------------------------------------------------------------- both metric conventions
def _strip_normal_positive(value):
    if isinstance(value, dict):
        return {k: _strip_normal_positive(v) for k, v in value.items() if k != "normal_positive"}
    return value


@pytest.mark.slow
def test_metrics_json_stores_both_conventions(smoke_store):
    from sklearn.metrics import average_precision_score

    from ogae_core.runs import list_runs

    root, _ = smoke_store
    run = list_runs(root, SMOKE_EXPERIMENT)[0]
    test = run.scores().query("split == 'test'")
    y, s = test["label"].to_numpy(), test["score"].to_numpy()
    block = run.metrics["test"]
    assert block["aupr"] == pytest.approx(average_precision_score(y, s))  # existing key: anomaly-positive
    assert block["normal_positive"]["aupr"] == pytest.approx(average_precision_score(1 - y, -s))
    assert block["normal_positive"]["auroc30"] == pytest.approx(roc_auc_score(1 - y, -s, max_fpr=0.3))
    stripe = test[test.corruption == "stripe"]
    assert block["per_corruption"]["stripe"]["normal_positive"]["aupr"] == pytest.approx(
        average_precision_score(1 - stripe["label"], -stripe["score"]))


@pytest.mark.slow
def test_report_normal_positive_and_paper_beside(smoke_store):
    from sklearn.metrics import average_precision_score

    root, _ = smoke_store
    rep = benchmark_report(root, SMOKE_EXPERIMENT, n_boot=50, positive="normal", conventions=True)
    boot = rep.bootstrap.query("metric == 'aupr'").set_index("model")
    for label, run in rep.runs.items():
        test = run.scores().query("split == 'test'").sort_values("item")
        assert boot.loc[label, "estimate"] == pytest.approx(average_precision_score(1 - test["label"], -test["score"]))
        stored = run.metrics["test"]["normal_positive"]["aupr"]
        assert rep.seeds.set_index("model").loc[label, "test_aupr_mean"] == pytest.approx(stored)
    assert rep.paper is not None and rep.paper.attrs["table"] == "I" and len(rep.paper) == 12
    assert rep.paper.loc["ae-recons", "AUROC paper"] == "0.56"
    assert rep.paper.loc["ae-recons", "AUPR ours"] == f"{boot.loc['ae-recons', 'estimate']:.2f}"
    md = rep.render("md")
    assert "Beside the paper's Table I" in md and "Positive class: normal" in md
    assert "Metric conventions against the paper" in md and set(rep.conventions.positive) == {"anomaly", "normal"}
    assert "Beside the paper" in rep.render("html") and "paper" in rep.render("latex")
    over = rep.over_seeds.set_index("model")  # both conventions whatever `positive` is
    for label, run in rep.runs.items():
        assert over.loc[label, "AUPR (normal +)"] == f"{run.metrics['test']['normal_positive']['aupr']:.2f}"
        assert over.loc[label, "AUPR"] == f"{run.metrics['test']['aupr']:.2f}"
    assert over.loc["dvaesvdd", "paper AUROC"] == "0.59" and "Over seeds, both conventions, beside the paper's Table I" in md
    per = rep.corruption_seeds.set_index("model")
    for label, run in rep.runs.items():  # one seed in the smoke preset: the stored value
        assert per.loc[label, "stripe"] == f"{run.metrics['test']['per_corruption']['stripe']['auroc']:.2f}"
    assert "Test AUROC per corruption, over seeds" in md
    assert list(rep.corruption_seeds["model"]) == rep.table.models == [
        m for m in rep.over_seeds["model"] if m in rep.runs]  # the table's row order (the paper's)
    bare = benchmark_report(root, SMOKE_EXPERIMENT, n_boot=20, paper=False)
    assert list(bare.over_seeds["model"]) == list(bare.corruption_seeds["model"])
    assert "paper AUROC" not in bare.over_seeds.columns and "single-run values" not in bare.render("md")
    assert "Over seeds, both conventions" in bare.render("latex")
    assert benchmark_report(root, SMOKE_EXPERIMENT, n_boot=20, paper=False).paper is None
    with pytest.raises(ValueError, match="'foo'"):
        benchmark_report(root, SMOKE_EXPERIMENT, n_boot=20, positive="foo")


def test_seeds_beside_paper_gives_mean_sd_in_both_conventions_and_the_papers_rows():
    from types import SimpleNamespace

    import pandas as pd

    from ogae_core.evaluation.paper import paper_table
    from ogae_core.evaluation.run_metrics import corruptions_over_seeds, seeds_beside_paper

    def run(rid, auroc, aupr, aupr_normal):
        test = {"auroc": auroc, "aupr": aupr, "auroc30": 0.5,
                "normal_positive": {"auroc": auroc, "aupr": aupr_normal, "auroc30": 0.6}}
        return SimpleNamespace(run_id=rid, metrics={"test": test})

    runs = [run("a0", 0.50, 0.40, 0.70), run("a1", 0.70, 0.60, 0.50), run("b0", 0.55, 0.45, 0.65)]
    selection = pd.DataFrame({"label": ["ogae-ocsvm", "my-new-row"], "run_ids": [["a0", "a1"], ["b0"]]})
    t = seeds_beside_paper(runs, selection, paper_table(3, 4)).set_index("model")
    assert t.loc["ogae-ocsvm", "AUROC"] == "0.60 ± 0.14" and t.loc["ogae-ocsvm", "seeds"] == "2"
    assert t.loc["ogae-ocsvm", "AUPR"] == "0.50 ± 0.14" and t.loc["ogae-ocsvm", "AUPR (normal +)"] == "0.60 ± 0.14"
    assert t.loc["ogae-ocsvm", "AUROC30 (normal +)"] == "0.60 ± 0.00" and t.loc["my-new-row", "AUROC"] == "0.55"
    assert t.loc["ogae-ocsvm", "paper AUROC"] == "0.74" and t.loc["ae-recons", "AUROC"] == "–"
    assert t.loc["my-new-row", "paper AUPR"] == "–" and len(t) == 13  # the paper's twelve rows, then ours
    assert list(seeds_beside_paper(runs, selection)["model"]) == ["ogae-ocsvm", "my-new-row"]
    # a seed without a value is shown, not hidden; a null test block reads as missing
    runs.append(SimpleNamespace(run_id="a2", metrics={"test": {"auroc": 0.6, "aupr": float("nan"), "auroc30": 0.5,
                                                                "normal_positive": {"auroc": 0.6, "aupr": 0.5,
                                                                                    "auroc30": 0.6}}}))
    three = pd.DataFrame({"label": ["ogae-ocsvm"], "run_ids": [["a0", "a1", "a2"]]})
    t = seeds_beside_paper(runs, three).set_index("model")
    assert t.loc["ogae-ocsvm", "AUPR"] == "0.50 ± 0.14 (n=2)" and t.loc["ogae-ocsvm", "AUROC"] == "0.60 ± 0.10"
    per = {"stripe": {"auroc": 0.5, "aupr": 0.5, "auroc30": 0.5}}
    partial = [SimpleNamespace(run_id="c0", metrics={"test": {"per_corruption": {**per, "canny": per["stripe"]}}}),
               SimpleNamespace(run_id="c1", metrics={"test": {"per_corruption": per}})]
    row = corruptions_over_seeds(partial, pd.DataFrame({"label": ["m"], "run_ids": [["c0", "c1"]]})).iloc[0]
    assert row["stripe"] == "0.50 ± 0.00" and row["canny"] == "0.50 (n=1)"


@pytest.mark.slow
def test_report_on_runs_without_the_new_keys_recomputes(smoke_store, tmp_path):
    import json
    import shutil

    from ogae_core.runs import METRICS_FILE

    root, _ = smoke_store
    old = tmp_path / "old"
    shutil.copytree(root, old)
    for path in (old / SMOKE_EXPERIMENT).glob(f"*/{METRICS_FILE}"):
        path.write_text(json.dumps(_strip_normal_positive(json.loads(path.read_text()))))
    fresh_rep = benchmark_report(root, SMOKE_EXPERIMENT, n_boot=20, positive="normal")
    legacy_rep = benchmark_report(old, SMOKE_EXPERIMENT, n_boot=20, positive="normal")
    fresh, legacy = fresh_rep.seeds, legacy_rep.seeds
    cols = ["test_aupr_mean", "test_auroc30_mean"]
    np.testing.assert_allclose(legacy[cols].to_numpy(), fresh[cols].to_numpy())
    assert legacy_rep.over_seeds.equals(fresh_rep.over_seeds) and legacy_rep.corruption_seeds.equals(fresh_rep.corruption_seeds)


@pytest.mark.slow
def test_cli_report_positive_and_conventions(smoke_store, capsys):
    root, _ = smoke_store
    assert main(["report", "--runs-root", str(root), "--experiment", SMOKE_EXPERIMENT, "--n-boot", "20",
                 "--positive", "normal", "--conventions"]) == 0
    out = capsys.readouterr().out
    assert "Positive class: normal" in out and "Beside the paper's Table I" in out and "gap_error" in out
    assert main(["report", "--runs-root", str(root), "--experiment", SMOKE_EXPERIMENT, "--n-boot", "20",
                 "--no-paper"]) == 0
    assert "Beside the paper" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["report", "--positive", "foo"])
    assert "invalid choice: 'foo'" in capsys.readouterr().err


def test_report_leaves_out_runs_trained_under_other_defaults(smoke_store, tmp_path):
    """A finished OgAE run that stored other method defaults than its config resolves to now
    (as runs of earlier versions did) is not selected; the report names it."""
    import json
    import shutil

    root, _ = smoke_store
    copy = tmp_path / "runs"
    shutil.copytree(root / SMOKE_EXPERIMENT, copy / SMOKE_EXPERIMENT)
    (old,) = [p for p in (copy / SMOKE_EXPERIMENT).iterdir() if p.name.startswith("ogae-ocsvm")]
    config = json.loads((old / "config.json").read_text())
    config["provenance"]["resolved_settings"] = {}  # trained before OgAE's defaults changed
    (old / "config.json").write_text(json.dumps(config))
    rep = benchmark_report(copy, SMOKE_EXPERIMENT, n_boot=20, by_corruption=False)
    assert set(rep.left_out) == {old.name} and "ogae-ocsvm" not in rep.runs
    assert f"Left out: 1 finished run(s)" in rep.render("md") and old.name in rep.render("html")
