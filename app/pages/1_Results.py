"""Results: the paper-style table with significance, per-corruption breakdown, ROC and PR curves."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

import dashboard_lib as lib  # noqa: E402
from ogae_core.evaluation import POSITIVE_CLASSES, SIGNIFICANCE_LEVEL, convention_note, results_table  # noqa: E402
from ogae_core.viz import per_corruption_bars, pr_figure, roc_figure  # noqa: E402

st.set_page_config(page_title="OgAE · Results", layout="wide")
st.title("Results")

root = lib.runs_root()
runs = [r for r in lib.load_runs(root) if r.has("scores.parquet")]
if not runs:
    lib.empty_state(root, "runs with scores")
    st.stop()

experiment = lib.choose_experiment(runs)
exp_runs = [r for r in runs if r.experiment == experiment]
named = lib.display_names(exp_runs)
default = lib.default_names(named)  # one selection for the whole experiment (not one per run)
chosen = st.sidebar.multiselect(
    "Models (runs)",
    list(named),
    default=default,
    key="results_models",
    help="Default: one run per model, chosen on the validation split",
)
n_boot = st.sidebar.number_input(
    "Bootstrap resamples", min_value=100, max_value=10000, value=1000, step=100, key="n_boot"
)
seed = st.sidebar.number_input("Bootstrap seed", min_value=0, value=0, step=1, key="boot_seed")
positive = st.sidebar.radio(
    "Positive class of the metrics",
    list(POSITIVE_CLASSES),
    key="positive",
    horizontal=True,
    help="anomaly: the usual convention. normal: labels flipped and scores negated. AUROC is the same under "
    "both; AUPR and AUROC30 are not. The paper does not say which it used (README: Metric conventions).",
)
show_paper = st.sidebar.toggle(
    "Show the paper's numbers",
    value=True,
    key="show_paper",
    help="The paper's Table I (3 vs 8) or IV (3 vs 4) beside ours, from data_manifests/paper_tables_mnistc.yaml",
)
if not chosen:
    st.info("Select at least one model in the sidebar.")
    st.stop()

selected = {name: named[name] for name in chosen}
try:
    with st.spinner(f"Paired bootstrap ({n_boot} resamples)…"):
        aligned, overall, per = lib.bootstrap(selected, int(n_boot), int(seed), positive=positive)
except ValueError as err:
    st.error(f"Cannot compare these runs: {err}")
    st.stop()

n_items, n_anom = len(aligned.labels), int(aligned.labels.sum())
st.markdown(
    f"**{experiment}** — test split: {n_items} items, {n_anom} anomalies. **Bold**: best model (highest bootstrap "
    f"mean); <u>underlined</u>: not significantly worse than the best (paired bootstrap, {n_boot} resamples, "
    f"Bonferroni over {len(selected) - 1} comparison(s), α = {SIGNIFICANCE_LEVEL}). {convention_note(positive)}",
    unsafe_allow_html=True,
)
show_ci = st.toggle("Show 95% confidence intervals", value=False, key="show_ci")
table = results_table(overall, show_ci=show_ci)
st.markdown(table.to_html(), unsafe_allow_html=True)
with st.expander("Table as Markdown / LaTeX, and the full statistics"):
    st.download_button("Markdown", table.to_markdown(), file_name=f"{experiment}_results.md")
    st.download_button("LaTeX", table.to_latex(), file_name=f"{experiment}_results.tex")
    st.code(table.to_latex(), language="latex")
    st.dataframe(overall, hide_index=True)

if show_paper:
    side = lib.paper_beside(selected, overall)
    if side is not None:
        st.subheader(f"Beside the paper's Table {side.attrs['table']}")
        st.caption(
            f"Ours: the table above (positive class: {positive}). The paper does not say which class its AUPR and "
            "AUROC30 count as positive."
        )
        st.dataframe(side, key="paper_table")
    else:
        st.caption("The paper has no table for this task.")

seeds_table = lib.experiment_over_seeds(root, experiment, show_paper)
if seeds_table is not None:
    st.subheader("Over seeds, both conventions")
    st.caption(
        "Each model's configuration chosen on the validation split as `ogae report` chooses, over every run of the "
        "experiment in the store (the report also leaves out runs trained under older method defaults), test metrics as mean ± sd over its seeds ((n=k): only k seeds have the value); "
        "AUPR and AUROC30 with anomalies positive, then with normals positive (\"normal +\")"
        + ("; the paper's single-run values beside them." if "paper AUROC" in seeds_table.columns else ".")
    )
    st.dataframe(seeds_table, hide_index=True, key="over_seeds")

if per is not None:
    st.subheader("Per test corruption")
    per_table = results_table(per, show_ci=show_ci)
    st.markdown(per_table.to_html(), unsafe_allow_html=True)
    metric = st.radio(
        "Metric",
        ["auroc", "aupr", "auroc30"],
        horizontal=True,
        key="per_metric",
        format_func=lambda m: {"auroc": "AUROC", "aupr": "AUPR", "auroc30": "AUROC30"}[m],
    )
    st.plotly_chart(per_corruption_bars(per, metric), key="per_bars")

st.subheader("Curves")
left, right = st.columns(2)
with left:
    st.plotly_chart(roc_figure(aligned.scores, aligned.labels, positive=positive), key="roc")
with right:
    st.plotly_chart(pr_figure(aligned.scores, aligned.labels, positive=positive), key="pr")
