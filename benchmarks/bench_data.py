"""Speed of the data layer against the goals of the data issue.

- every MNIST-C corruption: seconds to corrupt 60,000 real digits (goal < 60 s on 2 cores);
  with ``quick`` 2,000 digits are timed and the time is scaled to 60,000 (marked in ``case``);
- ``mnistc_task(3, 8)``: first build (information) and second load from the cache (goal < 2 s).

Run: ``python -m benchmarks.run_all --only bench_data [--quick]``.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

GOAL_CORRUPT_S = 60.0
GOAL_RELOAD_S = 2.0
N_FULL = 60_000


def _row(case: str, ours: float, reference: float | None, goal: str) -> dict:
    return {
        "benchmark": "data",
        "case": case,
        "ours": ours,
        "reference": reference,
        "unit": "s",
        "ratio": (reference / ours) if reference and ours > 0 else None,
        "goal": goal,
    }


def bench_corruptions(images: np.ndarray, quick: bool) -> list[dict]:
    """Seconds per 60,000 digits for every corruption."""
    from ogae_core.data import CORRUPTIONS, corrupt

    n = 2_000 if quick else N_FULL
    x = images[:n]
    rows = []
    for name in CORRUPTIONS:
        t = time.perf_counter()
        corrupt(x, name, seed=0)
        dt = (time.perf_counter() - t) * (N_FULL / n)
        case = f"corrupt 60k digits: {name}" + ("" if n == N_FULL else f" (timed on {n}, scaled)")
        rows.append(_row(case, dt, GOAL_CORRUPT_S, "< 60 s per 60,000 digits (2 cores)"))
    return rows


def bench_task(quick: bool) -> list[dict]:
    """First build and cached reload of the paper's 3-vs-8 task in a throw-away cache."""
    from ogae_core.data import load_mnist, mnistc_task

    data = load_mnist()
    old = os.environ.get("OGAE_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["OGAE_CACHE"] = tmp
        try:
            t = time.perf_counter()
            mnistc_task(3, 8, mnist=data)
            build = time.perf_counter() - t
            t = time.perf_counter()
            task = mnistc_task(3, 8)
            _ = task.test.images  # include the float conversion users pay for
            reload = time.perf_counter() - t
        finally:
            if old is None:
                os.environ.pop("OGAE_CACHE", None)
            else:
                os.environ["OGAE_CACHE"] = old
    return [
        _row("mnistc_task(3, 8): first build (all corruptions)", build, None, "information"),
        _row("mnistc_task(3, 8): second load from cache", reload, GOAL_RELOAD_S, "< 2 s"),
    ]


def run(quick: bool = False) -> list[dict]:
    """All data benchmarks (see module docstring)."""
    from ogae_core.data import load_mnist

    t = time.perf_counter()
    data = load_mnist()
    rows = [_row(f"load_mnist() ({data.source.split(' ')[0]})", time.perf_counter() - t, None, "information")]
    rows += bench_corruptions(np.asarray(data.train_images), quick)
    rows += bench_task(quick)
    return rows
