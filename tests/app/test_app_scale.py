"""The dashboard on a paper-sized store (paging, linear default selection) and on several experiments
(it opens on the most recently written one). Speed itself is measured in benchmarks/bench_dashboard.py."""

import os
import sys
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ogae_core import runs as store
from tests.app.synthetic_store import MODELS, write_large_store, write_synthetic_store

APP = Path(__file__).resolve().parents[2] / "app"
TIMEOUT = 120


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture(scope="module")
def large_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("large")
    write_large_store(root, n_runs=250)
    return root


def _page(name: str, root: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv(store.RUNS_ENV, str(root))
    at = AppTest.from_file(str(APP / name), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_large_store_has_distinct_runs(large_store):
    runs = store.list_runs(large_store)
    assert len(runs) == 250 and len({r.run_id for r in runs}) == 250
    assert {r.label for r in runs} == {"ogae-ocsvm", "ae-recons", "ae-ocsvm", "h-dsvdd"}


def test_runs_page_pages_and_filters(large_store, monkeypatch):
    at = _page("pages/4_Runs.py", large_store, monkeypatch)
    assert len(at.dataframe[0].value) == 100
    assert "250 of 250 runs — page 1 of 3" in at.caption[0].value
    at.sidebar.number_input(key="runs_page").set_value(3).run()
    assert len(at.dataframe[0].value) == 50 and "rows 201–250" in at.caption[0].value
    at.sidebar.multiselect(key="runs_labels").set_value(["h-dsvdd"]).run()  # 50 runs: one page
    assert not at.exception
    view = at.dataframe[0].value
    assert len(view) == 50 and set(view.label) == {"h-dsvdd"}
    assert at.sidebar.number_input(key="runs_page").value == 1


def test_results_page_defaults_to_one_selected_run_per_model(large_store, monkeypatch):
    sys.path.insert(0, str(APP))
    import dashboard_lib

    at = _page("pages/1_Results.py", large_store, monkeypatch)
    chosen = at.sidebar.multiselect(key="results_models").value
    runs = store.list_runs(large_store)
    expected = dashboard_lib.default_names(dashboard_lib.display_names(runs))
    assert chosen == expected and len(chosen) == len(MODELS)  # one run per model label


def test_pages_open_on_the_most_recently_written_experiment(tmp_path, monkeypatch):
    newer = write_synthetic_store(tmp_path, experiment="mnistc-3v8-smoke", n_per_class=10)
    older = write_synthetic_store(tmp_path, experiment="mnistc-3v4-smoke", n_per_class=10)  # alphabetically first
    for age, paths in ((1_000_000, older), (0, newer)):
        for p in paths:
            stamp = (p / store.FINISHED).stat().st_mtime - age
            os.utime(p / store.FINISHED, (stamp, stamp))
    for page in ("pages/1_Results.py", "pages/2_Training_dynamics.py", "pages/3_Latent_space.py"):
        at = _page(page, tmp_path, monkeypatch)
        box = at.sidebar.selectbox(key="experiment")
        assert box.options == ["mnistc-3v4-smoke", "mnistc-3v8-smoke"]
        assert box.value == "mnistc-3v8-smoke", page
