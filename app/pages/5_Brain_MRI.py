"""Brain MRI: a subject's T1 with the ground-truth lesions and each method's anomaly map overlaid."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

import dashboard_lib as lib  # noqa: E402
from ogae_core.evaluation.mri import PAPER_ORDER  # noqa: E402
from ogae_core.viz.mri import PLANES, overlay_figure, quantile_threshold, volume_slice  # noqa: E402

st.set_page_config(page_title="OgAE · Brain MRI", layout="wide")
st.title("Brain MRI")

root = lib.runs_root()
runs = [r for r in lib.load_runs(root) if r.kind == "mri"]
if not runs:
    st.info(f"No brain-MRI runs found in `{root}`. {lib.MRI_RUNS_HINT}")
    st.stop()

experiment = lib.choose_experiment(runs, key="mri_experiment")
runs = [r for r in runs if r.experiment == experiment]
named = lib.display_names(runs)
first_seed = {}
for name, r in sorted(named.items(), key=lambda item: (item[1].seed or 0, item[0])):
    first_seed.setdefault(r.label, name)
rank = {m: i for i, m in enumerate(PAPER_ORDER)}
default = sorted(first_seed, key=lambda label: (rank.get(label, len(rank)), label))[:6]
chosen = st.sidebar.multiselect("Methods (side by side)", list(named), default=[first_seed[m] for m in default],
                                key="mri_methods")
if not chosen:
    st.info("Choose at least one method in the sidebar.")
    st.stop()
selected = {n: named[n] for n in chosen}

scores = lib.load_table(next(iter(selected.values())), "scores.parquet")
subjects = scores["subject_id"].tolist()
role = dict(zip(scores.subject_id, scores.role))
load = dict(zip(scores.subject_id, scores.lesion_cm3))
patients = [s for s in subjects if role[s] == "patient"]
subject = st.sidebar.selectbox(
    "Subject", subjects, index=subjects.index(patients[0]) if patients else 0, key="mri_subject",
    format_func=lambda s: f"{s} ({role[s]}{f', lesions {load[s]:.1f} cm³' if role[s] == 'patient' else ''})")
plane = st.sidebar.radio("Plane", list(PLANES), horizontal=True, key="mri_plane")
opacity = st.sidebar.slider("Overlay opacity", 0.0, 1.0, 0.6, 0.05, key="mri_opacity")
use_threshold = st.sidebar.toggle("Show only the top quantile", value=False, key="mri_use_threshold")
quantile = st.sidebar.number_input("Top quantile (%)", 0.1, 50.0, 2.0, 0.5, key="mri_quantile") / 100
shared = st.sidebar.toggle("Shared colour scale", value=True, key="mri_shared_scale")

maps, affines = {}, {}
for name, r in selected.items():
    row = lib.load_table(r, "scores.parquet").set_index("subject_id")
    if "map" not in row.columns or subject not in row.index:
        st.warning(f"{name}: no score map of {subject} in this run")
        continue
    maps[name], affines[name] = lib.mri_map(r.path / row.loc[subject, "map"])
if not maps:
    st.stop()
some_map = next(iter(maps.values()))
anatomy = lib.mri_subject(next(iter(selected.values())), subject)
if anatomy is None:
    st.warning("The run's cohort is not on this machine, so there is no T1 underlay or lesion contour; build it "
               f"with `ogae data mri --cohort {runs[0].config.get('cohort')}`.")
    t1 = np.zeros(some_map.shape, np.float32)
    lesion, slab = None, None
else:
    t1, lesion = anatomy["t1"], anatomy["lesion"]
    slab = anatomy["slab"]
finite_z = np.flatnonzero(np.isfinite(some_map).any(axis=(0, 1)))
axis = PLANES[plane]
n_slices = some_map.shape[axis]
if plane == "axial":
    default = int(np.argmax(lesion.sum(axis=(0, 1)))) if lesion is not None and lesion.any() else (
        int(finite_z[len(finite_z) // 2]) if finite_z.size else n_slices // 2)
    lo, hi = (int(finite_z[0]), int(finite_z[-1])) if finite_z.size else (0, n_slices - 1)
else:
    other = (1, 2) if axis == 0 else (0, 2)
    default = int(np.argmax(lesion.sum(axis=other))) if lesion is not None and lesion.any() else n_slices // 2
    lo, hi = 0, n_slices - 1
index = st.slider(f"{plane.capitalize()} slice", lo, hi if hi > lo else lo + 1, min(max(default, lo), hi),
                  key=f"mri_slice_{plane}")
index = min(index, n_slices - 1)

slices = {n: volume_slice(m, plane, index) for n, m in maps.items()}
thresholds = {n: quantile_threshold(m, quantile) for n, m in maps.items() if np.isfinite(m).any()} if use_threshold else None
fig = overlay_figure(volume_slice(t1, plane, index), slices,
                     volume_slice(lesion, plane, index) if lesion is not None else None, opacity=opacity,
                     threshold=thresholds, shared_scale=shared, slab=slab, plane=plane)
z_mm = float((next(iter(affines.values())) @ [0, 0, index, 1])[2]) if plane == "axial" else None
left, right = st.columns([4, 1])
with left:
    st.plotly_chart(fig, width="stretch", key="mri_overlay")
    caption = f"{subject}, {plane} slice {index}" + (f" (z = {z_mm:.0f} mm MNI)" if z_mm is not None else "")
    if slab is not None and (slab[0] > 0 or slab[1] < some_map.shape[2] - 1):
        caption += f"; maps exist on axial slices {slab[0]}–{slab[1]} only (the cohort's slab, dashed lines)"
    st.caption(caption + ". Light-blue contour: ground-truth lesions; NaN (outside the brain) is transparent.")

with right:
    st.markdown("**Per-subject metrics**")
    rows = []
    for name, r in selected.items():
        s = lib.load_table(r, "scores.parquet").set_index("subject_id").loc[subject]
        item = {"method": name, "subject score": float(s["score"])}
        if r.has("voxel_metrics.parquet"):
            vox = lib.load_table(r, "voxel_metrics.parquet").set_index("subject_id")
            if subject in vox.index:
                v = vox.loc[subject]
                item.update({"AUROC": v["auroc"], "AUROC30": v["auroc30"], "AUPR": v["aupr"],
                             "chance AUPR": v["prevalence"], "best Dice": v["best_dice"]})
        rows.append(item)
    st.dataframe(pd.DataFrame(rows).set_index("method").T, key="mri_subject_metrics")
    download = st.selectbox("Score map to download", list(maps), key="mri_download_method")
    rel = lib.load_table(selected[download], "scores.parquet").set_index("subject_id").loc[subject, "map"]
    path = selected[download].path / rel
    st.download_button("Download NIfTI", path.read_bytes(), file_name=f"{download}-{subject}.nii.gz",
                       mime="application/gzip", key="mri_download")
