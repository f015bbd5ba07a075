"""The paper's Tables I and IV as data: shape, ranges, the loader's checks, ours beside them."""
import numpy as np
import pandas as pd
import pytest
import yaml

from ogae_core.data import manifests
from ogae_core.evaluation import beside_paper, convention_check, paper_table, paper_tables_mnistc
from ogae_core.evaluation.paper import COLUMNS, estimates, paper_frame, paper_table_key, table_key_of_configs


def test_twelve_rows_two_tables_three_metrics_in_unit_interval():
    m = paper_tables_mnistc()
    assert sorted(m["tables"]) == ["3v4", "3v8"]
    assert {m["tables"][k]["table"] for k in m["tables"]} == {"I", "IV"}
    f = paper_frame()
    assert f.shape[0] == 24 and f.groupby("table").size().tolist() == [12, 12]
    values = f[list(COLUMNS)].to_numpy()
    assert values.shape == (24, 3) and np.all((values >= 0) & (values <= 1))
    from ogae_core.experiments import paper_order

    assert list(paper_table(3, 8).index) == paper_order() == list(paper_table(3, 4).index)


def test_bold_cells_are_the_column_maxima():
    for key, t in paper_tables_mnistc()["tables"].items():
        frame = paper_table(t["normal"], t["anomaly"])
        for model, cols in t["bold"].items():
            for col in cols:
                assert frame.loc[model, col] == frame[col].max(), (key, model, col)


def _with_manifest(tmp_path, monkeypatch, edit):
    content = yaml.safe_load((manifests.manifest_dir() / "paper_tables_mnistc.yaml").read_text())
    edit(content)
    for path in manifests.manifest_dir().glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "paper_tables_mnistc.yaml").write_text(yaml.safe_dump(content))
    monkeypatch.setenv("OGAE_MANIFEST_DIR", str(tmp_path))


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["tables"]["3v8"]["values"].update({"ae-recons": [0.5, 1.2, 0.5]}), "three values in"),
    (lambda m: m["tables"]["3v4"]["values"].pop("dvaesvdd"), "has 11 rows"),
    (lambda m: m["tables"]["3v4"]["values"].update({"ae-recons": [0.5, 0.6]}), "three values in"),
    (lambda m: m.update({"columns": ["auroc", "auroc30", "aupr"]}), "columns must be"),
    (lambda m: m["tables"]["3v8"]["bold"].update({"nope": ["auroc"]}), "bold entry 'nope'"),
])
def test_loader_refuses_a_broken_manifest(tmp_path, monkeypatch, edit, match):
    _with_manifest(tmp_path, monkeypatch, edit)
    with pytest.raises(ValueError, match=match):
        paper_tables_mnistc()


def test_keys_of_tasks():
    assert paper_table_key(3, 8) == "3v8" and paper_table_key(8, 3) is None
    both = [{"task": {"normal": 3, "anomaly": 8}}, {"task": {"normal": 3, "anomaly": 4}}]
    assert table_key_of_configs(both) is None  # mixed tasks
    assert table_key_of_configs([{"task": {"normal": 3, "anomaly": 8,
                                           "test_corruptions": ["stripe", "canny_edges", "brightness"]}}]) == "3v8"
    assert table_key_of_configs([{}]) is None


def test_beside_paper_and_estimates():
    boot = pd.DataFrame({"model": ["ae-recons", "ae-recons", "x"], "metric": ["auroc", "aupr", "auroc"],
                         "estimate": [0.554, 0.6, 0.7]})
    side = beside_paper(estimates(boot), paper_table(3, 4))
    assert list(side.index[:2]) == ["ae-recons", "x"] and len(side) == 13
    assert side.loc["ae-recons"].tolist() == ["0.55", "0.51", "0.60", "0.64", "–", "0.66"]
    assert side.loc["x", "AUROC paper"] == "–"
    renamed = beside_paper(estimates(boot), paper_table(3, 4), labels={"x": "ogae-ocsvm"})
    assert renamed.loc["x", "AUROC paper"] == "0.74" and "ogae-ocsvm" not in renamed.index


def test_convention_check_over_both_tables_and_bad_key():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = {"ae-recons": rng.normal(size=300) + y, "h-dsvdd": rng.normal(size=300)}
    t = convention_check({"3v8": (scores, y), "3v4": (scores, y)})
    assert (t.n_rows == 4).all() and set(t.metric) == {"aupr", "auroc30"}
    with pytest.raises(ValueError, match="unknown paper table"):
        convention_check({"3v5": (scores, y)})
