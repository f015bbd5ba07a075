"""Speed of the Brain MRI dashboard page on the ``default`` cohort (issue 16: a slice change renders
in well under a second; cache the volumes).

A run store with three anomaly maps per test subject (the ``wm-prior`` reference with three tie-
breaking jitters, standing in for three methods side by side) is written to a temporary folder,
then the page runs under ``streamlit.testing.v1.AppTest``:

- *first render*: cold caches (the NIfTI maps and the subject's T1 read from disk) -- the reference;
- *slice change*: the slider moved, volumes cached -- ours. Ratio = first render / slice change.
- *overlay only*: cutting the slices and building the plotly figure (no Streamlit), information.

Run: ``python -m benchmarks.run_all --only bench_mri_dashboard [--quick]``. Builds the ``default``
cohort on first use (about a minute) in the user cache.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "app" / "pages" / "5_Brain_MRI.py"


def _row(case: str, ours: float, reference: float | None, unit: str, goal: str) -> dict:
    ratio = reference / ours if reference and ours else None
    return {"benchmark": "mri dashboard", "case": case, "ours": ours, "reference": reference, "unit": unit,
            "ratio": ratio, "goal": goal}


def _store(root: Path, cohort: str) -> None:
    from ogae_core.experiments import run_sweep
    from ogae_core.experiments.mri import MriConfig

    configs = [MriConfig("wm-prior", cohort=cohort, hyperparameters={"jitter": j}, label=f"wm-prior-j{k}")
               for k, j in enumerate((0.0, 0.01, 0.05))]
    result = run_sweep(configs, root, f"mri-{cohort}", executor="inline", log=None)
    if not result.ok:
        raise RuntimeError(f"benchmark store failed: {result.failed}")


def run(quick: bool = False) -> list[dict]:
    """First render vs slice change of the Brain MRI page (see module docstring); the temporary
    run store is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ogae-bench-mri-") as tmp:
        return _run(Path(tmp), quick)


def _run(root: Path, quick: bool) -> list[dict]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from ogae_core.viz.mri import overlay_figure, volume_slice

    cohort = "smoke" if quick else "default"
    _store(root, cohort)
    old = os.environ.get("OGAE_RUNS")
    os.environ["OGAE_RUNS"] = str(root)
    try:
        st.cache_data.clear()
        st.cache_resource.clear()
        t = time.perf_counter()
        at = AppTest.from_file(str(PAGE), default_timeout=300).run()
        first = time.perf_counter() - t
        if at.exception:
            raise RuntimeError(f"the page failed: {[e.value for e in at.exception]}")
        slider = at.slider(key="mri_slice_axial")
        values = [v for v in range(int(slider.min), int(slider.max) + 1) if v != slider.value][:5]
        times = []
        for v in values:
            slider.set_value(v)
            t = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t)
            slider = at.slider(key="mri_slice_axial")
        change = sorted(times)[len(times) // 2]
    finally:
        if old is None:
            os.environ.pop("OGAE_RUNS", None)
        else:
            os.environ["OGAE_RUNS"] = old
    import nibabel as nib
    import numpy as np

    maps = sorted((root / f"mri-{cohort}").glob("*/maps/pat-000.nii.gz"))
    vols = {p.parts[-3]: np.asarray(nib.load(p).dataobj, np.float32) for p in maps}
    t = time.perf_counter()
    fig = overlay_figure(volume_slice(next(iter(vols.values())), "axial", 70),
                         {k: volume_slice(v, "axial", 70) for k, v in vols.items()})
    fig.to_json()
    overlay = time.perf_counter() - t
    n = len(vols)
    return [
        _row(f"Brain MRI page, {n} methods side by side, slice change (median of {len(times)}; {cohort} cohort)",
             change, first, "s", "well under 1 s; ratio = first (cold) render / slice change"),
        _row(f"overlay figure of {n} maps (slice + plotly JSON, no Streamlit)", overlay, None, "s", "information"),
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
