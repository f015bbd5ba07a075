"""`make lab` starts JupyterLab headless (also as root) and answers on /lab."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
URL = re.compile(r"(http://127\.0\.0\.1:\d+/lab\?token=[0-9a-f]+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, proc: subprocess.Popen, deadline: float) -> tuple[int, str]:
    """GET ``url``, retrying while the server is still binding its port."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.URLError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.slow
def test_make_lab_serves_lab_with_a_token_url(tmp_path):
    venv = Path(sys.prefix)  # the environment running the tests; STAMP= skips the venv bootstrap
    port = _free_port()
    env = {**os.environ, "HOME": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    cmd = ["make", "--no-print-directory", "lab", f"VENV={venv}", "STAMP=", f"LAB_PORT={port}"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    try:
        deadline, url = time.monotonic() + 120, None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            match = URL.search(line)
            url = match.group(1) if match else None
        assert url, "no URL with token printed:\n" + "".join(lines)
        assert f":{port}/" in url
        status, body = _get(url, proc, deadline)
        assert status == 200, "".join(lines)
        assert "JupyterLab" in body
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
