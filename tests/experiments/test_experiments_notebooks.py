"""The notebooks, executed by papermill in smoke mode (python3 kernel of this interpreter, named explicitly)."""
from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ogae_core.experiments import NotebookParametersError, execute_notebooks, parameters_cell
from ogae_core.experiments.notebooks import latent_space_labels, notebook_paths, run_histories, smoke_strategies


def test_every_notebook_has_literal_parameters_with_smoke():
    paths = notebook_paths()
    assert [p.name for p in paths] == ["01_mnistc_benchmark.ipynb", "02_guidance_dynamics.ipynb",
                                       "03_fidelity_ablation.ipynb", "04_brain_mri.ipynb"]
    for p in paths:
        params = parameters_cell(p)
        # notebook 03 renders the committed ablation aggregate, not the run store
        assert params["smoke"] is False and ("aggregate_dir" if p.name.startswith("03") else "runs_root") in params


def _ablation_notebook_outputs(tmp_path, smoke: bool) -> list:
    """Outputs of notebook 03 executed by papermill (asserting that no cell failed)."""
    nb03 = [p for p in notebook_paths() if p.name.startswith("03")]
    written = execute_notebooks(tmp_path / "reports", smoke=smoke, kernel="python3", notebooks=nb03,
                                parameters={"n_subsets": 100})
    nb = nbformat.read(str(written[0]), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs


def test_ablation_notebook_renders_the_committed_smoke_aggregate(tmp_path):
    """Notebook 03 in smoke mode: results/ablation/smoke, no training, seconds."""
    outputs = _ablation_notebook_outputs(tmp_path, smoke=True)
    plots = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(plots) == 3  # the effects, and the dynamics of each digit pair
    assert (tmp_path / "reports" / "03_fidelity_ablation.html").is_file()


def test_ablation_notebook_renders_the_committed_full_aggregate(tmp_path):
    """Notebook 03 on results/ablation (the committed 576-run aggregate of both pairs, 3 seeds)."""
    from ogae_core.experiments.ablation import default_aggregate_dir, read_aggregate

    agg = read_aggregate(default_aggregate_dir())
    assert sorted(agg["runs"]["pair"].unique()) == ["3v4", "3v8"] and sorted(agg["runs"]["seed"].unique()) == [0, 1, 2]
    outputs = _ablation_notebook_outputs(tmp_path, smoke=False)
    text = "".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("data", {}).get("text/plain", ""))
                   for o in outputs)
    assert "576 runs" in text and "48 trainings" in text


@pytest.mark.slow
def test_notebooks_run_in_smoke_mode(smoke_store, tmp_path):
    root, _ = smoke_store  # notebook 01 finds the smoke runs there (resume), notebook 02 trains its own
    mnist = [p for p in notebook_paths() if p.name[:2] in ("01", "02")]  # 04 (MRI): tests/experiments/test_experiments_mri.py
    written = execute_notebooks(tmp_path / "reports", smoke=True, kernel="python3", notebooks=mnist,
                                parameters={"runs_root": str(root)})
    assert [p.name for p in written] == ["01_mnistc_benchmark.ipynb", "02_guidance_dynamics.ipynb"]
    for path in written:
        nb = nbformat.read(str(path), as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"]
        plots = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
        assert len(plots) >= 2
        assert nb.metadata["papermill"]["parameters"]["smoke"] is True
        html = path.with_suffix(".html").read_text()
        assert "plotly" in html.lower() and "<table" in html
    nb01 = nbformat.read(str(written[0]), as_version=4)
    assert "0 run(s) to do, 3 already finished" in json.dumps(nb01.cells)
    assert "AUROC paper" in json.dumps(nb01.cells)  # the paper's Table I beside ours (smoke runs are 3 vs 8)
    assert "AUPR (normal +)" in json.dumps(nb01.cells)  # the over-seeds table in both conventions


def _write_nb(path, cells):
    nbformat.write(new_notebook(cells=cells), str(path))
    return path


@pytest.mark.parametrize("cells, match", [
    ([new_code_cell("smoke = False\nprint(smoke)")], "tagged 'parameters'"),
    ([new_code_cell("smoke = False\nn = len('abc')", metadata={"tags": ["parameters"]})], "not a literal"),
    ([new_code_cell("n = 3", metadata={"tags": ["parameters"]})], "smoke: bool"),
])
def test_notebook_without_valid_parameters_cell_is_rejected(tmp_path, cells, match):
    bad = _write_nb(tmp_path / "bad.ipynb", cells)
    with pytest.raises(NotebookParametersError, match=match):
        execute_notebooks(tmp_path / "out", smoke=True, notebooks=[bad])
    assert not (tmp_path / "out" / "bad.ipynb").exists()  # rejected before anything ran


def test_a_bad_notebook_stops_the_batch_before_execution(tmp_path):
    good = _write_nb(tmp_path / "good.ipynb", [new_code_cell("smoke = False", metadata={"tags": ["parameters"]})])
    bad = _write_nb(tmp_path / "bad.ipynb", [new_code_cell("x = 1")])
    with pytest.raises(NotebookParametersError):
        execute_notebooks(tmp_path / "out", notebooks=[good, bad])
    assert not (tmp_path / "out").exists()


class _FakeRun:
    def __init__(self, label, seed, strategy):
        self.label, self.seed, self.config = label, seed, {"hyperparameters": {"strategy": strategy}}

    def history(self):
        return f"history of {self.label} seed {self.seed}"


def test_run_histories_keys_by_label_and_seed_and_filters_on_the_strategy():
    runs = [_FakeRun("ogae [both]", 0, "both"), _FakeRun("ogae [both]", 1, "both"), _FakeRun("x", 0, "compactor")]
    assert list(run_histories(runs)) == ["ogae [both] (seed 0)", "ogae [both] (seed 1)", "x (seed 0)"]
    assert run_histories(runs, strategy="compactor") == {"x (seed 0)": "history of x seed 0"}
    assert run_histories(runs, strategy="expander") == {}
    with pytest.raises(ValueError, match="both 'x \\(seed 0\\)'"):
        run_histories([runs[2], _FakeRun("x", 0, "both")])


def test_smoke_keeps_fig6_and_one_comparison_in_the_given_order():
    assert smoke_strategies(["both", "compactor", "expander-then-compactor"]) == ["both", "expander-then-compactor"]
    assert smoke_strategies(["compactor", "expander"]) == ["compactor", "expander"]


def test_latent_space_labels_prefer_ae_and_ogae_then_fall_back_to_the_first_row():
    assert latent_space_labels({"ogae-ocsvm": 1, "ae-recons": 2, "vae-recons": 3}) == ["ae-recons", "ogae-ocsvm"]
    assert latent_space_labels(["vae-recons", "sae-recons"]) == ["vae-recons"]
