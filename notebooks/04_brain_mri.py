# %% [markdown]
# # Brain MRI: subject classification and lesion localization (Experiment 2, Tables II and III)
#
# Methods trained on young controls score every test subject's T1 with an anomaly map. Two tasks:
# **classification** (test controls vs patients; one score per subject = the 98th percentile of the
# map without the ventricles, i.e. the paper's 2nd percentile of the decision values) and
# **localization** (per patient, voxels of lesions vs the rest of the brain minus the ventricles).
# The cohort is simulated (`ogae data mri`); see the README for what it can and cannot show.
# `wm-prior` is a reference row: the white-matter probability as anomaly map.

# %% tags=["parameters"]
cohort = "default"
methods = ["ae-unet", "vqvae-transformer", "sae-loc", "sae-ps", "ogae-loc", "wm-prior"]
seeds = [0, 1, 2]
cohort_seed = 0
site_balanced = False
runs_root = "runs"
experiment = ""
executor = "inline"
jobs = 1
n_boot = 1000
subject = ""
figure_path = ""
smoke = False

# %%
import pandas as pd
import plotly.express as px
import plotly.io as pio
from IPython.display import HTML, Image, Markdown, display

pio.renderers.default = "plotly_mimetype+notebook"

from ogae_core.data.mri import load_cohort
from ogae_core.experiments import run_sweep
from ogae_core.experiments.mri import experiment_name, mri_configs, registered_methods
from ogae_core.experiments.mri_report import classification_stats, fig3, frame_markdown, mri_report, paper_comparison
from ogae_core.viz.mri import metric_distributions

if smoke:  # the CI cohort, one seed, fewer resamples
    cohort, seeds, n_boot = "smoke", [0], 200
methods, missing = registered_methods(methods)
if missing:
    print(f"not registered in this installation (skipped): {missing}")
options = {"seed": cohort_seed, **({"site_balanced": True} if site_balanced else {})}
experiment = experiment or experiment_name(cohort, options)
data = load_cohort(cohort, **options)  # built on first use (cached)
print({role: len(data.by_role(role)) for role in ("train_control", "test_control", "patient")})
result = run_sweep(mri_configs(cohort, methods, seeds, cohort_options=options), runs_root, experiment,
                   executor=executor, jobs=jobs)
assert result.ok, result.failed
report = mri_report(runs_root, experiment, n_boot=n_boot)

# %% [markdown]
# ## Table II — classification (test controls vs patients)

# %%
display(Markdown(report.classification.caption))
display(HTML(report.classification.table.to_html()))
display(Markdown(frame_markdown(paper_comparison(report, "classification"))))

# %% [markdown]
# ## Table III — localization (per patient, brain minus ventricles; and white matter only)

# %%
display(Markdown(report.localization.caption))
display(HTML(report.localization.table.to_html()))
display(Markdown(frame_markdown(paper_comparison(report, "localization"))))
if report.localization_wm is not None:
    display(Markdown("**White matter only** — " + report.localization_wm.caption))
    display(HTML(report.localization_wm.table.to_html()))

# %% [markdown]
# ## Per-patient localization metrics

# %%
metric_distributions(report.frames.voxels, order=report.localization.table.models[:-1],
                     chance=float(report.frames.voxels["prevalence"].mean())).show()
display(Markdown("Statistics (Kruskal–Wallis + Dunn as the paper; Friedman + Wilcoxon signed-rank, paired):"))
display(HTML(report.localization.stats.round(4).to_html(index=False)))

# %% [markdown]
# ## Table II statistics and variants (aggregation rules, site confound), lesion load and size, peers' metrics

# %%
display(Markdown("**Table II statistics** (paired bootstrap over subjects, Bonferroni)\n\n"
                 + frame_markdown(classification_stats(report.classification.stats).set_index("metric"))))
for metric, table in report.aggregations.items():  # the paper: the rule changes little
    display(Markdown(f"**Table II variant: {metric} by subject-score rule** (spread = max - min)\n\n"
                     + frame_markdown(table)))
if report.site is not None:
    display(Markdown(f"**Site confound on / off** ({report.site_experiment})\n\n" + frame_markdown(report.site)))
for title, table in [("Localization AUPR by lesion-load tercile", report.by_load),
                     ("Lesion-wise detection rate by lesion size (one voxel in the top 2 %)", report.by_lesion_size),
                     ("Pooled voxel AUPRC and best Dice (peers' metrics)", report.secondary)]:
    display(Markdown(f"**{title}**\n\n" + frame_markdown(table)))

# %% [markdown]
# ## A figure like the paper's Fig. 3
# One axial slice of a patient: T1 with the ground truth, each method's map (colour range stretched
# to its 5–95 % quantiles), and below each map thresholded at its 2 % top quantile.

# %%
png = fig3(runs_root, experiment, figure_path or f"{runs_root}/{experiment}/fig3.png", subject or None)
display(Image(filename=str(png)))

# %% [markdown]
# ## OgAE: latent spread per epoch (5 expander + 5 compactor epochs, supplementary Fig. 6)

# %%
histories = {r.run_id: r.history() for r in report.frames.runs if r.label == "ogae-loc"}
spread = {k: h for k, h in histories.items() if "latent_spread" in h.columns}
if spread:
    frame = pd.concat([h.assign(run=k) for k, h in spread.items()], ignore_index=True)
    px.line(frame, x="epoch", y="latent_spread", color="run", markers=True,
            title="ogae-loc: mean pairwise latent MSE per epoch").show()
else:
    display(Markdown("No `ogae-loc` run with a `latent_spread` history in this experiment."))
