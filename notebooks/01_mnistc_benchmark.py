# %% [markdown]
# # Experiment 1 — MNIST-C benchmark (Table I / IV)
#
# Normal digit vs anomaly digit under MNIST-C corruptions (Pinon & Lartizien, supplementary S-D):
# training on the normal digit under the *training* corruptions, hyperparameters chosen on the
# validation split (MNIST test images), results on the test split (MNIST training images) under
# *unseen* corruptions. Runs live in the run store and are skipped when they already exist, so this
# notebook resumes an interrupted sweep and re-renders instantly once the runs are there.
#
# Set `preset` to `quick` (the demo, minutes), `paper` (all twelve rows with grids and seeds; hours
# on a CPU — better launched with `ogae bench mnistc --preset paper --jobs N` or on SLURM) or let
# `smoke=True` run the tiny smoke preset.
#
# `positive` chooses the metric convention: `"anomaly"` (anomalies are the positive class) or
# `"normal"` (labels flipped, scores negated). AUROC is the same under both, AUPR and AUROC30 are
# not; the paper does not say which it used (README, "Metric conventions"). `show_paper` puts the
# paper's Table I / IV (from `data_manifests/paper_tables_mnistc.yaml`) beside ours.

# %% tags=["parameters"]
normal = 3
anomaly = 8
preset = "quick"
methods = None
seeds = None
corruptions = None
runs_root = "runs"
experiment = ""
executor = "inline"
jobs = 1
n_boot = 1000
positive = "anomaly"
show_paper = True
smoke = False

# %%
import plotly.io as pio
from IPython.display import HTML, Markdown, display

# plotly.js embedded once per notebook: the HTML report works offline, JupyterLab renders natively
pio.renderers.default = "plotly_mimetype+notebook"

from ogae_core.evaluation import results_caption
from ogae_core.experiments import benchmark_report, experiment_name, preset_configs, run_sweep
from ogae_core.experiments.notebooks import latent_space_labels
from ogae_core.viz import latent_scatter, per_corruption_bars, pr_figure, roc_figure, training_dynamics

if smoke:
    preset, n_boot = "smoke", 200
experiment = experiment or experiment_name(preset, normal, anomaly)
configs = preset_configs(preset, normal, anomaly, methods=methods, seeds=seeds, test_corruptions=corruptions)
print(f"{len(configs)} configuration(s) of preset {preset!r} -> {runs_root}/{experiment}")

# %% [markdown]
# ## Run (or load) the sweep
# Finished runs are skipped; the same call resumes an interrupted sweep.

# %%
result = run_sweep(configs, runs_root, experiment, executor=executor, jobs=jobs)
assert result.ok, result.failed

# %% [markdown]
# ## Results table with significance
# Selection on the validation split; paired bootstrap on the test split (best in **bold**, models not
# significantly worse than the best <ins>underlined</ins>, Bonferroni, α = 0.01).

# %%
report = benchmark_report(runs_root, experiment, n_boot=n_boot, positive=positive, paper=show_paper)
display(Markdown(results_caption(report.experiment, report.aligned.labels, report.bootstrap,
                                   report.selection.attrs["metric"])))
display(HTML(report.table.to_html()))
display(report.selection[["label", "validation_mean", "n_candidates", "n_seeds", "run_ids"]])

# %% [markdown]
# ## Beside the paper's table
# Our estimates (the table above, in the convention chosen by `positive`) next to the paper's
# numbers for the same rows; shown when the experiment is one of the paper's digit pairs with the
# paper's test corruptions.

# %%
if report.paper is not None:
    display(Markdown(f"Paper: Table {report.paper.attrs['table']}; ours: positive class = {report.positive}."))
    display(report.paper)
else:
    print("The paper has no table for this task (or show_paper=False).")

# %% [markdown]
# ## Over seeds, both conventions
# Test metrics of each selected configuration as mean ± sd over its seeds, AUPR and AUROC30 with
# anomalies and with normals positive (whatever `positive` is), and the paper's values beside them
# when `show_paper` is on and the paper has a table for the task.

# %%
display(report.over_seeds)

# %% [markdown]
# ## ROC and PR curves (test split)

# %%
roc_figure(report.aligned.scores, report.aligned.labels, positive=positive).show()
pr_figure(report.aligned.scores, report.aligned.labels, positive=positive).show()

# %% [markdown]
# ## Per test corruption

# %%
if report.per_corruption is not None:
    display(HTML(report.corruption_table.to_html()))
    per_corruption_bars(report.per_corruption, "auroc").show()

# %% [markdown]
# ## Latent space (UMAP, computed when the run was made)
# Train items (normal digit under the training corruptions) and test items (both digits under the
# test corruptions). The paper observed that corruptions separate in an autoencoder's latent space.

# %%
for label in latent_space_labels(report.runs):
    latents = report.runs[label].latents()
    latent_scatter(latents, color="corruption", title=f"{label}: latent codes by corruption").show()
    latent_scatter(latents, color="label", title=f"{label}: latent codes by class (1 = anomaly)").show()

# %% [markdown]
# ## Latent spread over epochs (mean pairwise MSE of the codes)

# %%
histories = {label: run.history() for label, run in report.runs.items()}
training_dynamics(histories, panels=("loss", "latent_spread"), log_losses=True).show()
