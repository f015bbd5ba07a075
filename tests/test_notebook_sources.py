"""The committed notebooks agree with their jupytext sources and call only public ogae_core names.

``notebooks/NN_*.py`` (percent format) and ``notebooks/NN_*.ipynb`` are a jupytext pair
(``notebooks/jupytext.toml``): JupyterLab with jupytext writes both on save, and
``jupytext --sync notebooks/*.ipynb`` brings the older one up to date. This test fails when a
pair disagrees on a cell's type or source, or on which cell carries the ``parameters`` tag.
"""
from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from ogae_core.experiments.notebooks import default_notebooks_dir, notebook_paths

NOTEBOOKS = notebook_paths()


def cell_summary(notebook) -> list[tuple[str, str, bool]]:
    """``(cell type, source, tagged parameters)`` of every cell: what the two files must share."""
    return [(c.cell_type, c.source.strip(), "parameters" in c.get("metadata", {}).get("tags", []))
            for c in notebook.cells]


def pair_mismatches(ipynb: Path) -> list[str]:
    """Differences between a notebook and its paired ``.py`` (empty when they agree)."""
    script = ipynb.with_suffix(".py")
    if not script.is_file():
        return [f"{script.name} is missing"]
    nb, py = cell_summary(jupytext.read(ipynb)), cell_summary(jupytext.read(script))
    if len(nb) != len(py):
        return [f"{ipynb.name} has {len(nb)} cells, {script.name} has {len(py)}"]
    return [f"cell {i}: {ipynb.name} {a!r} != {script.name} {b!r}" for i, (a, b) in enumerate(zip(nb, py)) if a != b]


def private_uses(source: str) -> list[str]:
    """``from ogae_core... import _x`` and ``obj._x`` in a code cell's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ogae_core"):
            found += [f"from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
            found += [f"from {node.module} import" for part in node.module.split(".") if part.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if any(p.startswith("_") for p in a.name.split("."))]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            found.append(f".{node.attr}")
    return found


def test_every_notebook_has_a_paired_source_and_vice_versa():
    folder = default_notebooks_dir()
    assert NOTEBOOKS, "no notebooks found"
    scripts = sorted(p.with_suffix(".ipynb").name for p in folder.glob("[0-9][0-9]_*.py"))
    assert scripts == [p.name for p in NOTEBOOKS]
    assert "py:percent" in (folder / "jupytext.toml").read_text()


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_matches_its_source(ipynb):
    assert pair_mismatches(ipynb) == [], f"run `jupytext --sync {ipynb}` and commit both files"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs_and_one_parameters_cell(ipynb):
    nb = nbformat.read(str(ipynb), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert with_outputs == [], f"commit notebooks without outputs (reports/ holds executed copies): " \
                               f"jupyter nbconvert --clear-output --inplace {ipynb}"
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_calls_only_public_ogae_core_names(ipynb):
    nb = nbformat.read(str(ipynb), as_version=4)
    uses = [u for c in nb.cells if c.cell_type == "code" for u in private_uses(c.source)]
    assert uses == []


def test_pair_check_reports_an_edited_cell_and_a_moved_parameters_tag(tmp_path):
    cells = [new_markdown_cell("# Title"), new_code_cell("smoke = False", metadata={"tags": ["parameters"]}),
             new_code_cell("print(smoke)")]
    ipynb = tmp_path / "01_demo.ipynb"
    nbformat.write(new_notebook(cells=cells), str(ipynb))
    jupytext.write(new_notebook(cells=cells), str(ipynb.with_suffix(".py")), fmt="py:percent")
    assert pair_mismatches(ipynb) == []

    edited = [cells[0], cells[1], new_code_cell("print(not smoke)")]
    jupytext.write(new_notebook(cells=edited), str(ipynb.with_suffix(".py")), fmt="py:percent")
    assert [m.split(":")[0] for m in pair_mismatches(ipynb)] == ["cell 2"]

    untagged = [cells[0], new_code_cell("smoke = False"), cells[2]]
    jupytext.write(new_notebook(cells=untagged), str(ipynb.with_suffix(".py")), fmt="py:percent")
    assert [m.split(":")[0] for m in pair_mismatches(ipynb)] == ["cell 1"]

    ipynb.with_suffix(".py").unlink()
    assert pair_mismatches(ipynb) == ["01_demo.py is missing"]


def test_private_use_check_finds_private_attributes_and_imports():
    assert private_uses("display(report._caption())") == ["._caption"]
    assert private_uses("from ogae_core.ocsvm._cpu_layer import forward") == ["from ogae_core.ocsvm._cpu_layer import"]
    assert private_uses("from ogae_core.runs.layout import _check_name") == ["from ogae_core.runs.layout import _check_name"]
    assert private_uses("from ogae_core.viz import training_dynamics\nfig.show()") == []
