"""Latent space: the stored 2-D UMAP of latent codes, colored by corruption, digit or label."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

import dashboard_lib as lib  # noqa: E402
from ogae_core.viz import latent_scatter  # noqa: E402

st.set_page_config(page_title="OgAE · Latent space", layout="wide")
st.title("Latent space")

root = lib.runs_root()
runs = [r for r in lib.load_runs(root) if r.has("latents.parquet")]
if not runs:
    lib.empty_state(root, "runs with a stored latent embedding (latents.parquet)")
    st.stop()

experiment = lib.choose_experiment(runs)
named = lib.display_names([r for r in runs if r.experiment == experiment])
name = st.sidebar.selectbox("Run", list(named), key="latent_run")
latents = lib.load_table(named[name], "latents.parquet")
options = [c for c in ("corruption", "digit", "label", "split") if c in latents.columns]
if not options:
    st.warning("This embedding has no corruption/digit/label column to color by.")
    st.stop()
color = st.sidebar.radio("Color by", options, key="latent_color")
split_options = sorted(latents["split"].astype(str).unique()) if "split" in latents.columns else []
if len(split_options) > 1:
    keep = st.sidebar.multiselect("Splits", split_options, default=split_options, key="latent_splits")
    latents = latents[latents["split"].astype(str).isin(keep)]
st.caption(
    f"{len(latents)} latent codes of **{name}**, embedded in 2-D by UMAP when the run was made "
    "(the page does not compute it)."
)
st.plotly_chart(latent_scatter(latents, color=color), key="latent_scatter")
