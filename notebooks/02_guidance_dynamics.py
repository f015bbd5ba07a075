# %% [markdown]
# # Guidance dynamics of OgAE (Fig. 6 and the strategy comparison)
#
# The OCSVM guidance has two gradient terms: the **expander** (moves the support vectors) and the
# **compactor** (pulls misclassified codes inside the boundary). Fig. 6 of the paper trains with the
# expander only for `switch_epoch` epochs, then the compactor only, and follows the average pairwise
# MSE of the latent codes (latent spread), the loss terms and the fraction of misclassified codes.
# The strategy comparison trains the same network with expander→both (the paper's choice), both
# throughout, and compactor only.

# %% tags=["parameters"]
normal = 3
anomaly = 8
epochs = 20
switch_epoch = 10
strategies = ["expander-then-compactor", "expander-then-both", "both", "compactor"]
seeds = [0]
max_train = 3000
max_validation = 3000
max_test = 6000
runs_root = "runs"
experiment = ""
executor = "inline"
jobs = 1
n_boot = 1000
smoke = False

# %%
import plotly.io as pio
from IPython.display import HTML, Markdown, display

# plotly.js embedded once per notebook: the HTML report works offline, JupyterLab renders natively
pio.renderers.default = "plotly_mimetype+notebook"

from ogae_core.evaluation import results_caption
from ogae_core.experiments import benchmark_report, guidance_configs, run_sweep
from ogae_core.experiments.notebooks import guidance_experiment_name, run_histories, smoke_strategies
from ogae_core.runs import read_run
from ogae_core.viz import last_epoch_table, training_dynamics

experiment = experiment or guidance_experiment_name(normal, anomaly, smoke=smoke)
if smoke:  # Fig. 6 and one comparison strategy, 2 epochs, tiny data
    strategies, n_boot = smoke_strategies(strategies), 200
configs = guidance_configs(normal, anomaly, strategies=strategies, epochs=epochs, switch_epoch=switch_epoch,
                           seeds=seeds, smoke=smoke,
                           task_overrides={"max_train": max_train, "max_validation": max_validation, "max_test": max_test})
result = run_sweep(configs, runs_root, experiment, executor=executor, jobs=jobs)
assert result.ok, result.failed
runs = [read_run(p) for p in result.finished + result.skipped]
histories = run_histories(runs)

# %% [markdown]
# ## Fig. 6 — expander only, then compactor only

# %%
fig6 = run_histories(runs, strategy="expander-then-compactor")
training_dynamics(fig6, panels=("loss", "latent_spread", "misclassified_fraction", "sv_fraction"),
                  loss_terms=("loss_reconstruction", "loss_guidance", "loss_expander", "loss_compactor"),
                  log_losses=True, title="Expander then compactor").show()

# %% [markdown]
# ## Strategy comparison

# %%
training_dynamics(histories, panels=("latent_spread", "misclassified_fraction", "rho"),
                  title="Guidance strategies").show()
report = benchmark_report(runs_root, experiment, n_boot=n_boot)
display(Markdown(results_caption(report.experiment, report.aligned.labels, report.bootstrap,
                                   report.selection.attrs["metric"])))
display(HTML(report.table.to_html()))

# %% [markdown]
# ### Last epoch of every run

# %%
last_epoch_table(histories)
