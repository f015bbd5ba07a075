"""The MRI experiment kind end to end on the ``smoke`` cohort (built once in the user cache).

Uses the ``wm-prior`` reference and the test-only detectors of :mod:`tests.experiments.mri_fakes`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from ogae_core.experiments import get_kind, run_sweep
from ogae_core.experiments.mri import (
    MAPS_DIR,
    MriConfig,
    MriEvalSpec,
    configs_from_args,
    experiment_name,
    load_mri_cohort,
    mri_configs,
    run_training_group,
)
from ogae_core.experiments.mri_report import mri_frames, mri_report
from ogae_core.runs import list_runs, read_run
from tests.experiments import mri_fakes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_cohort():
    return load_mri_cohort(MriConfig("wm-prior", cohort="smoke"))


@pytest.fixture(scope="module")
def mri_store(tmp_path_factory, smoke_cohort):
    """Runs of wm-prior, fake-dark (2 seeds) and the shared pair in one experiment."""
    root = tmp_path_factory.mktemp("mri-runs")
    mri_fakes.TRAININGS.clear()
    configs = mri_configs("smoke", ["wm-prior", "fake-dark", "fake-shared-a", "fake-shared-b"], seeds=[0, 1],
                          hyperparameters={"fake-shared-b": {"offset": 0.5}})
    result = run_sweep(configs, root, "mri-smoke", executor="inline", log=None)
    assert result.ok, {k: (v.message, v.traceback) for k, v in result.failed.items()}
    return root, result, list(mri_fakes.TRAININGS)


def test_kind_is_builtin_and_parses_its_arguments():
    import argparse

    kind = get_kind("mri")
    parser = argparse.ArgumentParser()
    kind.add_arguments(parser)
    args = parser.parse_args(["--cohort", "smoke", "--methods", "wm-prior", "fake-dark", "--seeds", "0", "1",
                              "--site-balanced", "--param", "fake-dark.noise=0.5"])
    configs, name = configs_from_args(args)
    assert name == "mri-smoke-site_balanced"
    assert [(c.method, c.seed) for c in configs] == [("wm-prior", 0), ("fake-dark", 0), ("fake-dark", 1)]
    assert configs[1].hyperparameters == {"noise": 0.5} and configs[1].cohort_options == {"site_balanced": True}
    with pytest.raises(ValueError, match="METHOD.NAME=VALUE"):
        configs_from_args(parser.parse_args(["--param", "noise=1"]))
    with pytest.raises(ValueError, match="unknown MRI method 'nope'"):
        mri_configs("smoke", ["nope"])


def test_config_round_trip_and_training_keys():
    c = MriConfig("fake-shared-a", cohort="smoke", evaluation={"lesion_labels": [1, 2]})
    assert MriConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    a, b = MriConfig("fake-shared-a", cohort="smoke"), MriConfig("fake-shared-b", cohort="smoke",
                                                                  hyperparameters={"offset": 1.0})
    assert a.training_key() == b.training_key() and a.run_id() != b.run_id()
    assert a.training_key() != MriConfig("fake-shared-a", cohort="smoke", hyperparameters={"noise": 0.2}).training_key()
    assert MriConfig("fake-dark").training_key() != MriConfig("fake-shared-a").training_key()
    with pytest.raises(ValueError, match="unknown cohort option"):
        MriConfig("wm-prior", cohort_options={"sites": 3})
    with pytest.raises(ValueError, match="unknown aggregation"):
        MriEvalSpec(aggregation="max")


@pytest.mark.slow
def test_run_directory_holds_maps_scores_and_metrics(mri_store, smoke_cohort):
    root, result, _ = mri_store
    run = next(r for r in list_runs(root, "mri-smoke") if r.label == "fake-dark" and r.seed == 0)
    test_subjects = smoke_cohort.by_role("test_control") + smoke_cohort.by_role("patient")
    scores = run.scores()
    assert list(scores["subject_id"]) == [s.subject_id for s in test_subjects]
    assert {"score", "label", "site", "age", "lesion_cm3", "n_lesions", "score_q98", "score_mean", "map"} <= set(scores)
    assert scores["label"].tolist() == [int(s.role == "patient") for s in test_subjects]
    assert (scores.loc[scores.label == 1, "lesion_cm3"] > 0).all() and (scores.loc[scores.label == 0, "lesion_cm3"] == 0).all()
    grid = smoke_cohort.grid
    det = mri_fakes.FakeDark.load(run.path / "model")
    for s in test_subjects:
        img = nib.load(run.path / MAPS_DIR / f"{s.subject_id}.nii.gz")
        data = np.asarray(img.dataobj, dtype=np.float32)
        vols = s.load()
        assert data.shape == grid.cropped_shape and img.get_data_dtype() == np.float32
        np.testing.assert_allclose(img.affine, grid.cropped_affine(0))
        z = slice(vols.z_start, vols.z_start + vols.t1.shape[2])
        outside = np.ones(data.shape[2], bool)
        outside[z] = False
        assert np.isnan(data[:, :, outside]).all(), "NaN outside the slab"
        slab = data[:, :, z]
        assert np.isnan(slab[~vols.brain]).all() and np.isfinite(slab[vols.brain]).all()
        np.testing.assert_allclose(slab[vols.brain], det.anomaly_map(vols)[vols.brain], rtol=1e-6)
        # the slab's affine maps its first slice where the full grid's affine maps slice z_start
        np.testing.assert_allclose(img.affine @ [0, 0, vols.z_start, 1], vols.affine @ [0, 0, 0, 1])
    m = run.metrics
    assert set(m["classification"]) >= {"auroc", "auroc30", "aupr", "by_aggregation", "chance_aupr"}
    assert set(m["localization"]) == {"brain", "wm"}
    assert 0 < m["localization"]["brain"]["prevalence"] < 0.05
    assert m["evaluation"]["lesion_labels"] == [1] and "ventricles" in m["evaluation"]["region"]
    vox = pd.read_parquet(run.path / "voxel_metrics.parquet")
    assert len(vox) == len(smoke_cohort.by_role("patient")) and {"auroc", "wm_aupr", "best_dice"} <= set(vox)
    # dark lesions: the fake detector localizes above chance, the WM prior sits near chance in WM
    assert m["localization"]["brain"]["aupr"] > m["localization"]["brain"]["prevalence"]
    assert run.history()["epoch"].tolist() == [0, 1]
    assert run.config["provenance"]["data_hash"] == smoke_cohort.info["key"]
    # what a resumed sweep compares (ogae_core.experiments.resume): equal for the unchanged cohort
    cfg = MriConfig.from_dict(run.config)
    assert get_kind("mri").data_hash(cfg) == smoke_cohort.info["key"]
    assert run.config["provenance"]["resolved_settings"] == get_kind("mri").resolved_settings(cfg)


def test_wm_prior_row_and_one_run_per_reference(mri_store):
    root, _, _ = mri_store
    wm = [r for r in list_runs(root, "mri-smoke") if r.label == "wm-prior"]
    assert len(wm) == 1 and wm[0].seed == 0
    assert wm[0].metrics["localization"]["brain"]["auroc"] > 0.5  # lesions lie in white matter


def test_shared_training_trains_once_and_resume_reuses_the_network(mri_store):
    root, result, trainings = mri_store
    # fake-dark: 2 seeds; shared pair: one training per seed (not two); wm-prior: none counted
    assert trainings.count("fake-dark") == 2
    assert sorted(t for t in trainings if t.startswith("fake-shared")) == ["fake-shared-a", "fake-shared-a"]
    runs = {(r.label, r.seed): r for r in list_runs(root, "mri-smoke")}
    a, b = runs[("fake-shared-a", 0)], runs[("fake-shared-b", 0)]
    assert b.metrics["trained_in"] == a.run_id and a.metrics["trained_in"] is None
    diff = b.scores()["score"].to_numpy() - a.scores()["score"].to_numpy()
    np.testing.assert_allclose(diff, 0.5, atol=1e-5)  # same network, b's offset
    # resume: everything is skipped; a lost member is rebuilt from the finished run's model
    mri_fakes.TRAININGS.clear()
    again = run_sweep([MriConfig.from_dict(r.config) for r in runs.values()], root, "mri-smoke", executor="inline", log=None)
    assert len(again.skipped) == len(runs) and not again.finished and mri_fakes.TRAININGS == []
    import shutil

    shutil.rmtree(b.path)
    cfg_b, cfg_a = MriConfig.from_dict(b.config), MriConfig.from_dict(a.config)
    out = run_training_group([cfg_a, cfg_b], root, "mri-smoke")
    assert out[cfg_b.run_id()].ok and mri_fakes.TRAININGS == []
    assert read_run(out[cfg_b.run_id()].path).metrics["trained_in"] == a.run_id


def test_failed_training_is_a_typed_outcome(tmp_path, smoke_cohort):
    cfg = MriConfig("fake-broken", cohort="smoke")
    out = run_training_group([cfg], tmp_path, "mri-smoke")
    assert not out[cfg.run_id()].ok and "fake-broken cannot train" in out[cfg.run_id()].message
    assert not list_runs(tmp_path, "mri-smoke")


def test_report_has_tables_ii_and_iii_in_paper_order(mri_store):
    root, _, _ = mri_store
    rep = mri_report(root, "mri-smoke", n_boot=100)
    md = rep.render("md")
    assert "Table II" in md and "Table III" in md and "white matter" in md
    header = next(line for line in rep.classification.table.to_markdown().splitlines() if line.startswith("| Method"))
    assert header.index("AUROC |") < header.index("AUROC30") < header.index("AUPR")
    assert rep.classification.table.models[-1] == "chance" and "wm-prior" in rep.localization.table.models
    assert {"kruskal_p", "p_adjusted", "friedman_p", "wilcoxon_p_adjusted"} <= set(rep.localization.stats)
    assert list(rep.aggregations) == ["AUROC", "AUROC30", "AUPR"]
    assert list(rep.aggregations["AUROC"].columns)[0] == "q98" and len(rep.by_load.columns) >= 1
    assert rep.site is None  # the store holds no site-balanced twin of this experiment
    assert "Classification statistics (paired bootstrap" in md and "Table II variants" in md
    assert "<table" in rep.render("html")
    f = mri_frames(root, "mri-smoke")
    assert set(f.subjects["method"]) == {"wm-prior", "fake-dark", "fake-shared-a", "fake-shared-b"}


def _site_balanced_twin(root: Path, experiment: str, twin: str, shift: float) -> None:
    """Copy ``experiment`` as if it had been run with --site-balanced, patients' scores shifted by ``shift``."""
    import shutil

    shutil.copytree(root / experiment, root / twin)
    for run in (root / twin).iterdir():
        if not (run / "config.json").is_file():
            continue
        cfg = json.loads((run / "config.json").read_text())
        cfg["cohort_options"] = {"site_balanced": True}
        (run / "config.json").write_text(json.dumps(cfg))
        scores = pd.read_parquet(run / "scores.parquet")
        scores["score"] = scores["score"] - shift * scores["label"]
        scores.to_parquet(run / "scores.parquet", index=False)


def test_report_puts_site_confound_on_and_off_side_by_side(mri_store, tmp_path):
    import shutil

    from ogae_core.experiments.mri_report import site_experiment

    src, _, _ = mri_store
    root = tmp_path / "runs"
    shutil.copytree(src / "mri-smoke", root / "mri-smoke")
    assert site_experiment(root, "mri-smoke") is None
    _site_balanced_twin(root, "mri-smoke", "mri-smoke-site_balanced", shift=100.0)
    assert site_experiment(root, "mri-smoke") == "mri-smoke-site_balanced"
    assert site_experiment(root, "mri-smoke-site_balanced") == "mri-smoke"
    on = mri_report(root, "mri-smoke", n_boot=50)
    off = mri_report(root, "mri-smoke-site_balanced", n_boot=50)
    for rep in (on, off):  # confound on = the experiment without site_balanced, whichever is asked
        assert list(rep.site.columns[:2]) == ["II AUROC site on", "II AUROC site off"]
        assert rep.site.loc["fake-dark", "II AUROC site off"].startswith("0.00")  # patients pushed below every control
        assert not rep.site.loc["fake-dark", "II AUROC site on"].startswith("0.00")
        assert "Site confound on (" in rep.render("md")
    assert on.site_experiment == "mri-smoke-site_balanced" and off.site_experiment == "mri-smoke"
    assert mri_report(root, "mri-smoke", n_boot=50, site=None).site is None


#: The five MRI methods of the paper and the white-matter reference.
MRI_METHODS = ["ae-unet", "vqvae-transformer", "sae-loc", "sae-ps", "ogae-loc", "wm-prior"]


@pytest.mark.slow
def test_cli_bench_mri_runs_every_method_in_worker_processes(tmp_path):
    """``ogae bench mri --cohort smoke`` end to end in two worker processes: a run directory per
    method with a NIfTI score map per test subject and the classification and localization
    metrics; the same command again skips them all."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ogae_core.cli", "bench", "mri", "--cohort", "smoke", "--methods", *MRI_METHODS,
           "--runs-root", str(tmp_path), "--executor", "local", "--jobs", "2"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(MRI_METHODS)} finished" in done.stdout
    runs = list_runs(tmp_path, experiment_name("smoke"))
    assert sorted(r.label for r in runs) == sorted(MRI_METHODS)
    for run in runs:
        scores = run.scores()
        assert len(scores) > 0 and set(scores["label"]) == {0, 1}
        maps = sorted((run.path / MAPS_DIR).glob("*.nii.gz"))
        assert [m.name for m in maps] == sorted(scores["map"].map(lambda p: Path(p).name)), run.label
        image = nib.load(maps[0])
        assert len(image.shape) == 3 and np.isfinite(image.affine).all()
        blocks = {"classification": run.metrics["classification"], "localization": run.metrics["localization"]["brain"]}
        for task, block in blocks.items():
            assert all(np.isfinite(block[k]) for k in ("auroc", "auroc30", "aupr")), (run.label, task, block)
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"{len(MRI_METHODS)} skipped" in again.stdout


def test_default_cohort_options_do_not_change_the_run_id():
    assert MriConfig("wm-prior", cohort="smoke", cohort_options={"seed": 0, "site_balanced": False}).run_id() == \
        MriConfig("wm-prior", cohort="smoke").run_id()
    assert MriConfig("wm-prior", cohort="smoke", cohort_options={"seed": 1}).run_id() != MriConfig("wm-prior", cohort="smoke").run_id()


@pytest.mark.slow
def test_notebook_04_runs_in_smoke_mode_under_papermill(tmp_path):
    import nbformat

    from ogae_core.experiments import execute_notebooks
    from ogae_core.experiments.notebooks import notebook_paths, parameters_cell

    path = next(p for p in notebook_paths() if p.name == "04_brain_mri.ipynb")
    params = parameters_cell(path)
    assert params["smoke"] is False and "wm-prior" in params["methods"] and params["cohort"] == "default"
    written = execute_notebooks(tmp_path / "reports", smoke=True, kernel="python3", notebooks=[path],
                                parameters={"runs_root": str(tmp_path / "runs")})
    nb = nbformat.read(str(written[0]), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the Fig. 3-like figure
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)
    html = written[0].with_suffix(".html").read_text()
    assert "Table II" in html and "Table III" in html and "<table" in html
    assert list_runs(tmp_path / "runs", "mri-smoke")


def test_batch_decision_maps_are_used_and_negated(tmp_path, mri_store):
    root, _, _ = mri_store
    mri_fakes.BATCHES.clear()
    cfg = MriConfig("fake-batch", cohort="smoke")
    out = run_training_group([cfg], tmp_path, "mri-smoke")
    assert out[cfg.run_id()].ok, out[cfg.run_id()]
    assert mri_fakes.BATCHES == [6]  # the 3 test controls and 3 patients in one batch
    batch = read_run(out[cfg.run_id()].path).scores()
    dark = next(r for r in list_runs(root, "mri-smoke") if r.label == "fake-dark" and r.seed == 0).scores()
    np.testing.assert_allclose(batch["score"], dark["score"], rtol=1e-6)
    mri_fakes.BATCHES.clear()
    from ogae_core.experiments.mri import scored_subjects

    det = mri_fakes.FakeBatch().fit(load_mri_cohort(cfg).by_role("train_control"))
    subjects = load_mri_cohort(cfg).by_role("patient")
    got = list(scored_subjects(det, subjects, batch_voxels=1))
    assert [s.subject_id for s, *_ in got] == [s.subject_id for s in subjects] and mri_fakes.BATCHES == [1, 1, 1]


def test_mri_report_refuses_the_mnistc_report_options(tmp_path):
    from ogae_core.experiments.mri import report

    with pytest.raises(ValueError, match=r"does not take \['positive'\]"):
        report(tmp_path, "mri-anything", n_boot=10, positive="normal")


def test_report_leaves_out_runs_made_under_other_resolved_settings(mri_store, tmp_path):
    import json
    import shutil

    root, _, _ = mri_store
    shutil.copytree(root / "mri-smoke", tmp_path / "mri-smoke")
    (old,) = [p for p in (tmp_path / "mri-smoke").iterdir() if p.name.startswith("fake-dark-s1")]
    config = json.loads((old / "config.json").read_text())
    config["provenance"]["resolved_settings"] = {"epochs": 99}  # e.g. a preset default that changed since
    (old / "config.json").write_text(json.dumps(config))
    rep = mri_report(tmp_path, "mri-smoke", n_boot=20, site=None)
    assert list(rep.frames.left_out) == [old.name] and old.name not in {r.run_id for r in rep.frames.runs}
    assert "### Runs left out" in rep.render("md") and old.name in rep.render("md")
    from ogae_core.experiments.mri_report import current_mri_runs, mri_runs

    kept, left_out = current_mri_runs(tmp_path, "mri-smoke")  # what fig3 draws from
    assert old.name in {r.run_id for r in mri_runs(tmp_path, "mri-smoke")} and list(left_out) == [old.name]
    assert old.name not in {r.run_id for r in kept} and len(kept) == len(mri_runs(tmp_path, "mri-smoke")) - 1
    for path in (tmp_path / "mri-smoke").glob("*/config.json"):  # every run stale: say so, draw nothing
        path.write_text(json.dumps({**json.loads(path.read_text()), "provenance": {"resolved_settings": {"epochs": 99}}}))
    with pytest.raises(ValueError, match="every MRI run of experiment 'mri-smoke' was trained under other method"):
        current_mri_runs(tmp_path, "mri-smoke")
