"""Tests that need system software (Chromium, SLURM): skip with the install command, or fail in CI.

``make test`` never installs system packages nor starts system daemons. A test that needs one
calls :func:`require_system`: where the software is missing the test is *skipped* with a reason
naming the one command that installs it (``make system-deps``, as root). CI (``.ci/run``)
installs the packages and sets ``OGAE_REQUIRE_SYSTEM_TESTS=1``, which turns those skips into
failures, so CI never skips them silently.

Examples
--------
>>> system_tests_required({"OGAE_REQUIRE_SYSTEM_TESTS": "1"})
True
>>> system_tests_required({})
False
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ENV = "OGAE_REQUIRE_SYSTEM_TESTS"
INSTALL_COMMAND = "make system-deps (as root: apt-get install chromium slurm-wlm slurmdbd mariadb-server munge)"


def system_tests_required(environ=None) -> bool:
    """Whether missing system software is a failure (``OGAE_REQUIRE_SYSTEM_TESTS=1``, set by CI)."""
    environ = os.environ if environ is None else environ
    return environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def require_system(what: str, reason: str | None) -> None:
    """Skip (or, in CI, fail) the calling test when ``reason`` says ``what`` is unavailable.

    Parameters
    ----------
    what : str
        The software, e.g. ``"Chromium"``.
    reason : str or None
        Why it is unavailable here; None when it is available (then nothing happens).
    """
    if reason is None:
        return
    message = f"{what} unavailable: {reason}. Install it with: {INSTALL_COMMAND}"
    if system_tests_required():
        pytest.fail(f"{message} ({REQUIRE_ENV}=1 makes this test mandatory)", pytrace=False)
    pytest.skip(message)
