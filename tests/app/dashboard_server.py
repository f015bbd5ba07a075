"""The running dashboard for the headless-Chromium tests: one server, one browser, one skip rule.

:func:`require_browser` skips (or, in CI, fails) a test where Chromium or Playwright is missing,
naming the install command (see ``tests/system_requirements.py``). :func:`serve_dashboard` starts
``streamlit run app/Home.py`` from the repository root (as ``make dashboard`` does, so the
project's ``.streamlit/config.toml`` applies) on a free port, waits until it is healthy, yields its
URL and stops it. :func:`open_browser` launches Debian's Chromium through Playwright.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from ogae_core import runs as store
from tests.system_requirements import require_system

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app" / "Home.py"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def require_browser() -> None:
    """Skip (CI: fail) the calling test unless Chromium and Playwright are available."""
    reason = None if Path(CHROMIUM).exists() else f"{CHROMIUM} not found"
    if reason is None:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the Python package playwright is not installed (pip install -r requirements.txt)"
    require_system("Chromium", reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
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


@contextlib.contextmanager
def serve_dashboard(runs_root: Path, home: Path, env: dict | None = None) -> Iterator[str]:
    """The dashboard on ``runs_root`` (``HOME`` set to ``home``), as a URL, for the ``with`` block."""
    port = free_port()
    full_env = {**os.environ, store.RUNS_ENV: str(runs_root), "HOME": str(home), **(env or {})}
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, env=full_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def open_browser():
    """A headless Chromium page (1400 x 1000) and the list its page errors are collected into."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page, errors
        finally:
            browser.close()
