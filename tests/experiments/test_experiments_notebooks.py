"""The notebooks, executed by papermill in smoke mode (python3 kernel of this interpreter, named explicitly)."""
from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ogae_core.experiments import NotebookParametersError, execute_notebooks, parameters_cell
from ogae_core.experiments.notebooks import notebook_paths


def test_every_notebook_has_literal_parameters_with_smoke():
    paths = notebook_paths()
    assert [p.name for p in paths] == ["01_mnistc_benchmark.ipynb", "02_guidance_dynamics.ipynb"]
    for p in paths:
        params = parameters_cell(p)
        assert params["smoke"] is False and "runs_root" in params


def test_notebooks_run_in_smoke_mode(smoke_store, tmp_path):
    root, _ = smoke_store  # notebook 01 finds the smoke runs there (resume), notebook 02 trains its own
    written = execute_notebooks(tmp_path / "reports", smoke=True, kernel="python3", parameters={"runs_root": str(root)})
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
