"""Dashboard under a paper-sized store: first render of every page with 1,000 runs vs 4 runs.

A ``paper`` sweep writes ~800 runs per digit pair. The store is generated
(``tests/app/synthetic_store.py``: real run directories written through ``ogae_core.runs``,
copied with distinct configurations); each page is rendered once, from cold caches, with
``streamlit.testing.v1.AppTest``, first on a 4-run store (the reference), then on the
1,000-run store. Goal: every page <= 3 s at 1,000 runs.

Run: ``python -m benchmarks.run_all --only bench_dashboard`` (or ``python -m benchmarks.bench_dashboard``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = {
    "Home": REPO / "app" / "Home.py",
    "Results": REPO / "app" / "pages" / "1_Results.py",
    "Training dynamics": REPO / "app" / "pages" / "2_Training_dynamics.py",
    "Latent space": REPO / "app" / "pages" / "3_Latent_space.py",
    "Runs": REPO / "app" / "pages" / "4_Runs.py",
}
GOAL_SECONDS = 3.0


def first_render_seconds(page: Path, root: Path, timeout: float = 300) -> float:
    """Seconds of one cold first render of ``page`` over the store ``root`` (AppTest)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from ogae_core import runs as store

    os.environ[store.RUNS_ENV] = str(root)
    st.cache_data.clear()
    st.cache_resource.clear()
    t0 = time.perf_counter()
    at = AppTest.from_file(str(page), default_timeout=timeout).run()
    seconds = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"{page.name} raised: {[e.value for e in at.exception]}")
    return seconds


def write_stores(base: Path, n_runs: int) -> tuple[Path, Path]:
    """A 4-run store (the reference) and an ``n_runs`` store under ``base``."""
    sys.path.insert(0, str(REPO))
    from tests.app.synthetic_store import MODELS, write_large_store

    small, large = base / "small", base / "large"
    write_large_store(small, n_runs=len(MODELS))
    write_large_store(large, n_runs=n_runs)
    return small, large


def run(quick: bool = False) -> list[dict]:
    """One row per page: seconds at ``n`` runs (ours) against seconds at 4 runs (reference)."""
    n_runs = 300 if quick else 1000
    rows = []
    old = os.environ.get("OGAE_RUNS")
    with tempfile.TemporaryDirectory(prefix="ogae-bench-dashboard-") as tmp:
        small, large = write_stores(Path(tmp), n_runs)
        try:
            for name, page in PAGES.items():
                first_render_seconds(page, small)  # warm the imports once (not measured)
                reference = first_render_seconds(page, small)
                ours = first_render_seconds(page, large)
                rows.append({
                    "benchmark": "dashboard",
                    "case": f"{name} page, first render, {n_runs} runs vs 4",
                    "ours": ours,
                    "reference": reference,
                    "unit": "s",
                    "ratio": reference / ours,
                    "goal": f"<= {GOAL_SECONDS:.0f} s at 1,000 runs ({'met' if ours <= GOAL_SECONDS else 'NOT met'})",
                })
        finally:
            if old is None:
                os.environ.pop("OGAE_RUNS", None)
            else:
                os.environ["OGAE_RUNS"] = old
    return rows


if __name__ == "__main__":
    from benchmarks.run_all import format_table

    print(format_table(run(quick="--quick" in sys.argv)))
