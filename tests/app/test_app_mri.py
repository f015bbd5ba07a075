"""The Brain MRI page under streamlit.testing.v1.AppTest, on a run store of real smoke-cohort runs
(the wm-prior reference and a test-only detector)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ogae_core import runs as store

PAGE = Path(__file__).resolve().parents[2] / "app" / "pages" / "5_Brain_MRI.py"
TIMEOUT = 90


@pytest.fixture(scope="module")
def mri_store(tmp_path_factory):
    from ogae_core.experiments import run_sweep
    from ogae_core.experiments.mri import mri_configs
    from tests.experiments import mri_fakes  # noqa: F401 - registers fake-dark

    root = tmp_path_factory.mktemp("mri-app-runs")
    result = run_sweep(mri_configs("smoke", ["wm-prior", "fake-dark"]), root, "mri-smoke", executor="inline", log=None)
    assert result.ok, result.failed
    return root


@pytest.fixture(autouse=True)
def _clear_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _run(root, monkeypatch):
    monkeypatch.setenv(store.RUNS_ENV, str(root))
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _array(value) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        if isinstance(shape, str):
            shape = [int(v) for v in shape.split(",")]
        return a.reshape(shape).astype(float) if shape else a.astype(float)
    return np.array(value, dtype=float)


def _figure(at):
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_page_without_mri_runs_says_how_to_make_them(synthetic_store, monkeypatch):
    at = _run(synthetic_store, monkeypatch)
    assert any("ogae bench mri" in i.value for i in at.info)


def test_overlay_side_by_side_with_lesion_contour_and_metrics(mri_store, monkeypatch):
    at = _run(mri_store, monkeypatch)
    assert at.sidebar.selectbox(key="mri_subject").value.startswith("pat-")
    fig = _figure(at)
    types = [t["type"] for t in fig["data"]]
    assert types.count("heatmap") == 4 and types.count("contour") == 2  # 2 methods: T1 + map each, lesion contour
    overlays = [t for t in fig["data"] if t["type"] == "heatmap" and t.get("name")]
    assert {t["name"] for t in overlays} == {"wm-prior", "fake-dark"}
    assert overlays[0]["zmin"] == overlays[1]["zmin"]  # shared colour scale by default
    z = _array(overlays[0]["z"])
    assert np.isnan(z).any() and np.isfinite(z).any()  # NaN outside the brain
    metrics = at.dataframe[0].value
    assert set(metrics.columns) == {"wm-prior", "fake-dark"} and "AUPR" in metrics.index
    assert at.get("download_button")


def test_threshold_scale_and_planes(mri_store, monkeypatch):
    at = _run(mri_store, monkeypatch)
    at.sidebar.toggle(key="mri_use_threshold").set_value(True)
    at.sidebar.toggle(key="mri_shared_scale").set_value(False)
    at.run()
    assert not at.exception
    overlays = [t for t in _figure(at)["data"] if t["type"] == "heatmap" and t.get("name")]
    shown = _array(overlays[1]["z"])
    assert np.isfinite(shown).sum() < 0.1 * shown.size  # only the top 2 % of the map survive
    assert overlays[0]["zmax"] != overlays[1]["zmax"]  # one colour range per method
    at.sidebar.radio(key="mri_plane").set_value("coronal")
    at.run()
    assert not at.exception
    fig = _figure(at)
    dashed = [s for s in fig["layout"].get("shapes", []) if s.get("line", {}).get("dash") == "dash"]
    assert len(dashed) == 4  # the slab's first and last slice in each of the two panels
    assert "slab" in at.caption[0].value


def test_missing_cohort_keeps_the_maps_and_warns(mri_store, monkeypatch, tmp_path):
    monkeypatch.setenv("OGAE_CACHE", str(tmp_path))
    at = _run(mri_store, monkeypatch)
    assert any("not on this machine" in w.value for w in at.warning)
    assert at.get("plotly_chart")


@pytest.mark.browser
@pytest.mark.slow
def test_brain_mri_page_renders_in_chromium(mri_store, tmp_path):
    """The running dashboard's Brain MRI page draws the overlay (headless Chromium, as the
    browser smoke test of the other pages; skipped with the install command where Chromium is
    missing, mandatory in CI)."""
    from tests.app.dashboard_server import open_browser, require_browser, serve_dashboard

    require_browser()
    cache = {"OGAE_CACHE": os.environ.get("OGAE_CACHE", str(Path.home() / ".cache" / "ogae"))}
    with serve_dashboard(mri_store, tmp_path, cache) as url, open_browser() as (page, errors):
        page.goto(url + "/Brain_MRI", wait_until="domcontentloaded", timeout=60_000)
        chart = page.wait_for_selector("[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg", timeout=90_000)
        assert chart.is_visible()
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.get_by_text("Download NIfTI").count() >= 1
        assert not errors, errors


def test_home_lists_both_experiment_kinds_and_the_mri_page(synthetic_store, mri_store, monkeypatch, tmp_path):
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(synthetic_store, root)
    shutil.copytree(mri_store / "mri-smoke", root / "mri-smoke")
    monkeypatch.setenv(store.RUNS_ENV, str(root))
    at = AppTest.from_file(str(PAGE.parents[1] / "Home.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    summary = at.dataframe[0].value.set_index("experiment")
    assert summary.loc["mri-smoke", "kind"] == "mri" and "mnistc-3v8-smoke" in summary.index
    assert any("**Brain MRI**" in m.value for m in at.markdown)
