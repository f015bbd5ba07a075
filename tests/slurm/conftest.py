"""Fixtures of the SLURM tests: one real single-node cluster on localhost for the session.

The cluster (munged, slurmctld, slurmd; :mod:`tests.slurm.local_cluster`) is started by the
first test that needs it and stopped at the end of the session. Where SLURM or munge is not
installed the tests are skipped with the command that installs them (in CI, with
``OGAE_REQUIRE_SYSTEM_TESTS=1``, they fail instead).
"""

from __future__ import annotations

import pytest

from tests.slurm.local_cluster import LocalSlurmCluster, why_unavailable
from tests.system_requirements import require_system


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A started :class:`LocalSlurmCluster` (node idle); its ``env()`` points clients at it."""
    require_system("SLURM", why_unavailable())
    cluster = LocalSlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slurm_env(slurm_cluster, monkeypatch):
    """The cluster's environment for subprocesses; also set in this process (for submitit)."""
    env = slurm_cluster.env()
    monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])
    slurm_cluster.wait_idle(timeout=300)  # every test starts on an empty queue
    return env
