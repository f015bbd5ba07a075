"""Every dashboard page under streamlit.testing.v1.AppTest, on a synthetic run store."""

import json
import re
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ogae_core import runs as store
from ogae_core.evaluation import align_scores, auroc

APP = Path(__file__).resolve().parents[2] / "app"
PAGES = {
    "home": APP / "Home.py",
    "results": APP / "pages" / "1_Results.py",
    "dynamics": APP / "pages" / "2_Training_dynamics.py",
    "latent": APP / "pages" / "3_Latent_space.py",
    "runs": APP / "pages" / "4_Runs.py",
}
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()


def _run(page, root, monkeypatch):
    monkeypatch.setenv(store.RUNS_ENV, str(root))
    at = AppTest.from_file(str(PAGES[page]), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _html_tables(at):
    return [m.value for m in at.markdown if m.value.startswith("<table")]


def test_home_lists_experiments(synthetic_store, monkeypatch):
    at = _run("home", synthetic_store, monkeypatch)
    summary = at.dataframe[0].value
    assert sorted(summary.experiment) == ["mnistc-3v4-smoke", "mnistc-3v8-smoke"]
    assert summary.runs.tolist() == [5, 5]


def test_results_page_table_significance_and_charts(synthetic_store, monkeypatch):
    at = _run("results", synthetic_store, monkeypatch)
    at.sidebar.selectbox(key="experiment").set_value("mnistc-3v8-smoke")
    at.sidebar.number_input(key="n_boot").set_value(200)
    at.run()
    assert not at.exception
    tables = _html_tables(at)
    assert len(tables) == 2  # overall + per corruption
    overall = tables[0]
    chosen = at.sidebar.multiselect(key="results_models").value
    assert len(chosen) == 4  # one run per model label
    assert all(name in overall for name in chosen)
    assert overall.count("<b>") == 3  # one best per metric
    assert all(f"<th>{c}</th>" in tables[1] for c in ("AUROC", "AUPR", "AUROC30"))
    assert '<th colspan="3">stripe</th>' in tables[1]
    charts = _charts(at)
    assert len(charts) == 3  # per-corruption bars, ROC, PR
    roc = next(c for c in charts if c["layout"]["title"]["text"].startswith("ROC"))
    # the AUROC in the legend is the one of the stored scores
    runs = {
        r.label if r.label != "ogae-ocsvm" else f"{r.label} (seed {r.seed})": r
        for r in store.list_runs(synthetic_store, "mnistc-3v8-smoke")
    }
    name = chosen[0]
    aligned = align_scores({name: runs[name].scores()})
    expected = auroc(aligned.labels, aligned.scores[name])
    legend = next(d["name"] for d in roc["data"] if d["name"].startswith(name + " ("))
    assert float(re.search(r"AUROC ([0-9.]+)", legend).group(1)) == pytest.approx(expected, abs=1e-3)


def test_results_page_reacts_to_selection(synthetic_store, monkeypatch):
    at = _run("results", synthetic_store, monkeypatch)
    at.sidebar.number_input(key="n_boot").set_value(100)
    at.sidebar.multiselect(key="results_models").set_value(["ae-recons", "h-dsvdd"]).run()
    assert not at.exception
    overall = _html_tables(at)[0]
    assert overall.count("<tr><td>") == 2 and "ae-ocsvm" not in overall
    at.sidebar.multiselect(key="results_models").set_value([]).run()
    assert any("Select at least one model" in i.value for i in at.info)


def test_results_page_switches_the_metric_convention(synthetic_store, monkeypatch):
    from sklearn.metrics import average_precision_score

    at = _run("results", synthetic_store, monkeypatch)
    at.sidebar.selectbox(key="experiment").set_value("mnistc-3v8-smoke")
    at.sidebar.number_input(key="n_boot").set_value(100)
    at.sidebar.multiselect(key="results_models").set_value(["ae-recons"])
    at.sidebar.radio(key="positive").set_value("normal").run()
    assert not at.exception
    runs = {r.label: r for r in store.list_runs(synthetic_store, "mnistc-3v8-smoke")}
    aligned = align_scores({"ae-recons": runs["ae-recons"].scores()})
    expected = average_precision_score(1 - aligned.labels, -aligned.scores["ae-recons"])
    overall = _html_tables(at)[0]
    aupr_cell = re.findall(r"<td>(?:<[bu]>)*([0-9.]+)", overall)[1]  # AUROC, AUPR, AUROC30
    assert float(aupr_cell) == pytest.approx(expected, abs=0.005)
    assert any("Positive class: normal" in m.value for m in at.markdown)
    pr = next(c for c in _charts(at) if c["layout"]["title"]["text"].startswith("Precision"))
    assert "normal = positive" in pr["layout"]["title"]["text"]


def test_results_page_shows_the_papers_table_beside_ours(synthetic_store, monkeypatch):
    from ogae_core.evaluation import paper_table

    at = _run("results", synthetic_store, monkeypatch)
    at.sidebar.selectbox(key="experiment").set_value("mnistc-3v8-smoke")
    at.sidebar.number_input(key="n_boot").set_value(100)
    at.run()
    side = next(d.value for d in at.dataframe if "AUROC paper" in d.value.columns)
    paper = paper_table(3, 8)
    assert side.loc["ae-recons", "AUPR paper"] == f"{paper.loc['ae-recons', 'aupr']:.2f}"
    assert side.loc["dvaesvdd", "AUROC ours"] == "–"  # a paper row we did not run
    assert len(side) == len(paper)  # the four runs shown are rows of the paper; its eight others follow
    ogae = next(name for name in side.index if name.startswith("ogae-ocsvm"))  # display name with its seed
    assert side.loc[ogae, "AUROC paper"] == f"{paper.loc['ogae-ocsvm', 'auroc']:.2f}"
    assert any("Table I" in s.value for s in at.subheader)
    over = next(d.value for d in at.dataframe if "AUPR (normal +)" in d.value.columns).set_index("model")
    assert over.loc["dvaesvdd", "paper AUROC"] == f"{paper.loc['dvaesvdd', 'auroc']:.2f}"
    assert over.loc["ae-recons", "seeds"] == "1" and over.loc["dvaesvdd", "AUROC"] == "–"
    at.sidebar.toggle(key="show_paper").set_value(False).run()
    assert not any("AUROC paper" in d.value.columns or "paper AUROC" in d.value.columns for d in at.dataframe)
    assert any("AUPR (normal +)" in d.value.columns for d in at.dataframe)  # ours stay


def test_training_dynamics_page(synthetic_store, monkeypatch):
    at = _run("dynamics", synthetic_store, monkeypatch)
    chosen = at.sidebar.multiselect(key="dyn_runs").value
    assert chosen and all("ogae" in c for c in chosen)
    (fig,) = _charts(at)
    names = {d["name"] for d in fig["data"]}
    assert {f"{c} · reconstruction" for c in chosen} <= names and any(n.endswith("· latent_spread") for n in names)
    bands = {(s["x0"], s["x1"]) for s in fig["layout"]["shapes"] if s["type"] == "rect"}
    assert bands == {(0.5, 2.5), (2.5, 6.5)}  # expander for 2 epochs, then both
    at.sidebar.multiselect(key="dyn_runs").set_value(chosen + ["ae-recons"]).run()
    assert not at.exception
    (fig,) = _charts(at)
    assert "ae-recons · reconstruction" in {d["name"] for d in fig["data"]}


def test_latent_space_page(synthetic_store, monkeypatch):
    at = _run("latent", synthetic_store, monkeypatch)
    (fig,) = _charts(at)
    assert sorted(d["name"] for d in fig["data"]) == ["brightness", "canny_edges", "stripe"]
    at.sidebar.radio(key="latent_color").set_value("label").run()
    (fig,) = _charts(at)
    assert sorted(d["name"] for d in fig["data"]) == ["anomaly", "normal"]


def test_runs_page_filter_and_compare(synthetic_store, monkeypatch):
    at = _run("runs", synthetic_store, monkeypatch)
    table = at.dataframe[0].value
    assert len(table) == 10 and "config.task.anomaly" in table.columns
    at.sidebar.multiselect(key="runs_labels").set_value(["h-dsvdd"]).run()
    assert len(at.dataframe[0].value) == 2
    at.sidebar.text_input(key="runs_search").set_value("3v4").run()
    view = at.dataframe[0].value
    assert len(view) == 1 and view.experiment.item() == "mnistc-3v4-smoke"


def test_runs_page_compare_shows_differences(synthetic_store, monkeypatch):
    at = _run("runs", synthetic_store, monkeypatch)
    at.sidebar.multiselect(key="runs_labels").set_value(["ogae-ocsvm"]).run()
    ids = at.dataframe[0].value.run.tolist()
    at.multiselect(key="runs_compare").set_value(ids[:2]).run()
    diff = at.dataframe[1].value
    assert "seed" in diff.index and "label" not in diff.index  # only rows that differ


@pytest.mark.parametrize("page", list(PAGES))
def test_empty_store_tells_which_command_makes_runs(page, tmp_path, monkeypatch):
    at = _run(page, tmp_path / "nothing-here", monkeypatch)
    messages = " ".join(i.value for i in at.info)
    assert "make demo" in messages and "ogae bench mnistc --preset quick" in messages
    assert not at.get("plotly_chart")


def test_pages_do_not_import_training_code():
    for path in list(PAGES.values()) + [APP / "dashboard_lib.py"]:
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(torch|ogae_core\.(train|methods|nets|experiments))", text, re.M), (
            path
        )


def test_dashboard_helpers_do_not_pull_torch():
    import subprocess
    import sys

    code = f"import sys; sys.path.insert(0, {str(APP)!r}); import dashboard_lib; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")


def test_default_selection_uses_validation_not_test(synthetic_store):
    import sys

    sys.path.insert(0, str(APP))
    import dashboard_lib

    runs = store.list_runs(synthetic_store, "mnistc-3v8-smoke")
    chosen = dashboard_lib.default_selection(runs)
    ogae = sorted((r for r in runs if r.label == "ogae-ocsvm"), key=lambda r: r.seed)
    assert len(ogae) == 2  # one configuration, two seeds: the report's run is the lowest seed
    assert [r for r in chosen if r.label == "ogae-ocsvm"] == [ogae[0]]
    # one run per model label, every label once, each the lowest seed of its configuration
    assert sorted(r.label for r in chosen) == sorted({r.label for r in runs}) and len(chosen) == 4
    assert all(r.seed == min(o.seed for o in runs if o.label == r.label) for r in chosen)


def test_default_selection_is_the_reports_mean_over_seeds():
    """Configuration A has the single best validation run (0.9) but the lower mean over its
    seeds (0.7 < 0.8): like `ogae report`, the dashboard shows configuration B."""
    import sys

    sys.path.insert(0, str(APP))
    import dashboard_lib

    def run(i, lam, seed, auroc):
        cfg = {"method": "ogae", "scoring": "ocsvm", "seed": seed, "hyperparameters": {"lam": lam}}
        return store.Run(Path(f"r{i}"), "e", f"r{i}", cfg, {"validation": {"auroc": auroc}, "test": {"auroc": 1.0 - auroc}})

    runs = [run(0, 0.1, 0, 0.9), run(1, 0.1, 1, 0.5), run(2, 0.01, 0, 0.8), run(3, 0.01, 1, 0.8)]
    assert [r.run_id for r in dashboard_lib.default_selection(runs)] == ["r2"]
    no_validation = store.Run(Path("x"), "e", "x", {"method": "ae", "scoring": "recons", "seed": 0}, {})
    assert dashboard_lib.default_selection([no_validation]) == [no_validation]