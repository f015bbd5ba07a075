"""One headless-Chromium smoke test of the running dashboard (``streamlit run``).

Needs /usr/bin/chromium (Debian package ``chromium``, installed by ``make system-deps``). Without
it the test is skipped with that command as the reason; CI (``OGAE_REQUIRE_SYSTEM_TESTS=1``,
set by ``.ci/run``) fails instead. The server starts from the repository root, as ``make
dashboard`` does, so the project's ``.streamlit/config.toml`` applies.
"""

import pytest

from tests.app.dashboard_server import open_browser, require_browser, serve_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(synthetic_store, tmp_path):
    require_browser()
    with serve_dashboard(synthetic_store, tmp_path) as url:
        yield url


def test_results_page_renders_table_and_plotly_chart_in_chromium(server):
    with open_browser() as (page, errors):
        page.goto(server + "/Results", wait_until="domcontentloaded", timeout=60_000)
        table = page.wait_for_selector("table.ogae-results", timeout=90_000)
        header = [h.inner_text() for h in table.query_selector_all("thead th")]
        assert header == ["Method", "AUROC", "AUPR", "AUROC30"]
        assert len(table.query_selector_all("tbody tr")) == 4
        assert len(table.query_selector_all("b")) == 3  # the best model of each metric
        chart = page.wait_for_selector("[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg", timeout=90_000)
        assert chart.is_visible()
        assert page.locator("[data-testid='stException']").count() == 0
        assert not errors, errors
