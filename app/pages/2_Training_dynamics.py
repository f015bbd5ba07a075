"""Training dynamics: loss terms per epoch (expander/compactor phases shaded), latent spread,
misclassified fraction, support vectors, rho — several runs overlaid."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

import dashboard_lib as lib  # noqa: E402
from ogae_core.viz import training_dynamics  # noqa: E402
from ogae_core.viz.dynamics import PANELS  # noqa: E402

st.set_page_config(page_title="OgAE · Training dynamics", layout="wide")
st.title("Training dynamics")

root = lib.runs_root()
runs = [r for r in lib.load_runs(root) if r.has("history.parquet")]
if not runs:
    lib.empty_state(root, "runs with a training history")
    st.stop()

experiment = lib.choose_experiment(runs)
named = lib.display_names([r for r in runs if r.experiment == experiment])
guided = [n for n, r in named.items() if "ogae" in r.label.lower()]
default = (guided or list(named))[:3]
chosen = st.sidebar.multiselect("Runs", list(named), default=default, key="dyn_runs")
if not chosen:
    st.info("Select at least one run in the sidebar.")
    st.stop()

histories = {name: lib.load_table(named[name], "history.parquet") for name in chosen}
panels = st.sidebar.multiselect(
    "Panels", list(PANELS), default=list(PANELS), key="dyn_panels", format_func=lambda p: PANELS[p]
)
log_losses = st.sidebar.toggle("Log scale for losses", value=False, key="dyn_log")
phases_of = st.sidebar.selectbox("Shade the phases of", chosen, key="dyn_phases")
try:
    fig = training_dynamics(histories, panels=panels or list(PANELS), phases_of=phases_of, log_losses=log_losses)
except ValueError as err:
    st.warning(f"Nothing to draw: {err}")
    st.stop()
st.caption(
    "Shaded bands: guidance phases (expander / compactor / both) of the chosen run. Latent spread is the "
    "average pairwise MSE between latent codes (the paper's Fig. 6)."
)
st.plotly_chart(fig, key="dynamics")
with st.expander("History tables"):
    for name, h in histories.items():
        st.markdown(f"**{name}**")
        st.dataframe(h, hide_index=True)
