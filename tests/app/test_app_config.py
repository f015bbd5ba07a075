"""Project configuration of the dashboard: Streamlit's usage statistics are off."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_usage_statistics_are_off_when_started_from_the_repository_root(tmp_path):
    # HOME elsewhere, so that no user-level ~/.streamlit/config.toml takes part
    out = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=REPO, capture_output=True,
                         text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=True)
    lines = out.stdout.splitlines()
    at = lines.index("gatherUsageStats = false")
    assert str(REPO / ".streamlit" / "config.toml") in lines[at - 1]  # set by the project's file
