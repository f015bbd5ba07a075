"""One headless-Chromium smoke test of the running dashboard (``streamlit run``).

Needs /usr/bin/chromium (Debian package ``chromium``, installed by ``make system-deps``). Without
it the test is skipped with that command as the reason; CI (``OGAE_REQUIRE_SYSTEM_TESTS=1``,
set by ``.ci/run``) fails instead. The server starts from the repository root, as ``make
dashboard`` does, so the project's ``.streamlit/config.toml`` applies.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ogae_core import runs as store
from tests.system_requirements import require_system

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app" / "Home.py"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not become healthy at {url} within {timeout} s")


def _require_browser() -> None:
    reason = None if Path(CHROMIUM).exists() else f"{CHROMIUM} not found"
    if reason is None:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the Python package playwright is not installed (pip install -r requirements.txt)"
    require_system("Chromium", reason)


@pytest.fixture
def server(synthetic_store, tmp_path):
    _require_browser()
    port = _free_port()
    env = {**os.environ, store.RUNS_ENV: str(synthetic_store), "HOME": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_results_page_renders_table_and_plotly_chart_in_chromium(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
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
        finally:
            browser.close()
