"""OgAE dashboard — entry page. Run with ``streamlit run app/Home.py``.

Read-only over the run store (``$OGAE_RUNS`` or ./runs, changeable in the sidebar).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

import dashboard_lib as lib  # noqa: E402
from ogae_core import runs as store  # noqa: E402

st.set_page_config(page_title="OgAE dashboard", layout="wide")
st.title("OgAE research dashboard")
st.caption("OCSVM-guided representation learning for unsupervised anomaly detection — results of the run store.")

root = lib.runs_root()
runs = lib.load_runs(root)
if not runs:
    lib.empty_state(root)
    st.stop()

kinds = store.experiment_kinds(runs)
summary = (
    pd.DataFrame({"experiment": [r.experiment for r in runs], "model": [r.label for r in runs]})
    .groupby("experiment")
    .agg(runs=("model", "size"), models=("model", "nunique"))
    .reset_index()
)
summary.insert(1, "kind", [", ".join(kinds.get(e, [])) for e in summary.experiment])
st.subheader(f"{len(runs)} finished runs in `{root}`")
st.dataframe(summary, hide_index=True)
partial = store.partial_runs(root)
if partial:
    st.warning(
        f"{len(partial)} interrupted write(s) (hidden `.tmp-*` directories) are ignored; rerunning the sweep "
        "redoes them."
    )
st.markdown(
    """
**Pages** (sidebar):
- **Results** — the paper's table (best bold, not significantly different from the best underlined,
  paired bootstrap with Bonferroni at 0.01), per-corruption breakdown, ROC and PR curves.
- **Training dynamics** — loss terms per epoch with expander/compactor phases shaded, latent spread,
  misclassified fraction, support vectors, ρ; several runs overlaid.
- **Latent space** — the stored 2-D UMAP of latent codes colored by corruption, digit or label.
- **Runs** — every run's configuration and metrics; filter and compare.
- **Brain MRI** — experiments of kind `mri` (Experiment 2): a subject's T1 with the ground-truth lesions
  and each method's anomaly map overlaid, side by side, in three planes, with per-subject metrics.
"""
)
