"""Runs: every finished run's configuration, provenance and metrics; filter and compare."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

import dashboard_lib as lib  # noqa: E402
from ogae_core import runs as store  # noqa: E402

PAGE_SIZES = (100, 250, 1000)

st.set_page_config(page_title="OgAE · Runs", layout="wide")
st.title("Runs")

root = lib.runs_root()
runs = lib.load_runs(root)
if not runs:
    lib.empty_state(root)
    st.stop()

table = store.runs_table(runs)
table.insert(0, "run", table.experiment + "/" + table.run_id)  # run ids repeat across experiments
experiments = st.sidebar.multiselect("Experiments", sorted(table.experiment.unique()), key="runs_experiments")
labels = st.sidebar.multiselect("Models", sorted(table.label.unique()), key="runs_labels")
text = st.sidebar.text_input("Search (run id or config value)", key="runs_search")
view = table
if experiments:
    view = view[view.experiment.isin(experiments)]
if labels:
    view = view[view.label.isin(labels)]
if text:
    hit = view.astype(str).apply(lambda col: col.str.contains(text, case=False, regex=False)).any(axis=1)
    view = view[hit]
page_size = st.sidebar.selectbox("Rows per page", PAGE_SIZES, index=0, key="runs_page_size")
n_pages = max(1, -(-len(view) // page_size))
if st.session_state.get("runs_page", 1) > n_pages:  # the filter shrank the view: back to its last page
    st.session_state["runs_page"] = n_pages
page = int(st.sidebar.number_input("Page", min_value=1, max_value=n_pages, step=1, key="runs_page"))
start = (page - 1) * page_size
st.caption(
    f"{len(view)} of {len(table)} runs"
    + (f" — page {page} of {n_pages} (rows {start + 1}–{min(start + page_size, len(view))})" if n_pages > 1 else "")
)
st.dataframe(view.iloc[start : start + page_size], hide_index=True, key="runs_table")

st.subheader("Compare")
ids = view.run.tolist()
compare = st.multiselect("Runs to compare", ids, default=ids[:2], key="runs_compare")
if len(compare) >= 2:
    sub = view.set_index("run").loc[compare].T
    sub = sub.astype(str)
    differs = sub.nunique(axis=1) > 1
    only_diff = st.toggle("Only rows that differ", value=True, key="runs_only_diff")
    st.dataframe(sub[differs] if only_diff else sub, key="runs_diff")
    by_id = {f"{r.experiment}/{r.run_id}": r for r in runs}
    with st.expander("Full config.json of each run"):
        for rid in compare:
            st.markdown(f"**{rid}** — `{by_id[rid].path}`")
            st.json(by_id[rid].config, expanded=False)
else:
    st.info("Select two or more runs to compare their configurations and metrics.")

partial = store.partial_runs(root)
if partial:
    with st.expander(f"{len(partial)} interrupted write(s) (ignored)"):
        st.dataframe(pd.DataFrame({"path": [str(p) for p in partial]}), hide_index=True)
