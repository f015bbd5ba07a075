# %% [markdown]
# # Experiment 1 fidelity ablation: what explains OgAE-ocsvm's gap to the paper?
#
# OgAE-ocsvm and AE-ocsvm on MNIST-C 3 vs 4 and 3 vs 8 (full task, 20 epochs, seeds 0, 1, 2),
# changing one factor at a time from the project's setting, and all of them together:
#
# * **F2 guidance regime** — `project` (λ = 1e-2, γ = 1e-2, codes standardized with the statistics
#   of z_SVM as constants of the step) vs `authors` (the released TensorFlow code: λ = 0.1,
#   γ = "scale", each half standardized by its own statistics, differentiably); `authors-std-shared`
#   is the authors' regime with the project's standardization;
# * **F3 final-OCSVM grid** without / with γ = "scale" (the same trainings, selected within each grid);
# * **F4 early stopping** per phase (`project`) vs one criterion over all epochs (`one-es`);
# * **F5 LeakyReLU slope** 0.01 (`project`) vs Keras' 0.3 (`slope-0.3`);
# * `all`: the authors' regime, one criterion and slope 0.3.
#
# AE-ocsvm has one phase and no guidance, so only F3 and F5 apply to it. Selection uses the
# validation split only. The runs were made and aggregated with:
#
# ```
# ogae bench mnistc --preset ablation --normal 3 --anomaly 4 --jobs 2
# ogae bench mnistc --preset ablation --normal 3 --anomaly 8 --jobs 2
# ogae ablation aggregate            # -> results/ablation/{runs,history,bootstrap}.csv
# ```
#
# This notebook renders the committed aggregate (no run store needed); `smoke=True` renders the
# tiny aggregate of the `ablation-smoke` presets (`results/ablation/smoke`, 2 epochs, one seed:
# its numbers mean nothing).

# %% tags=["parameters"]
aggregate_dir = ""
metric = "auroc"
ks = [1, 8, 32, 128]
n_subsets = 2000
smoke = False

# %%
import plotly.io as pio
from IPython.display import Markdown, display

pio.renderers.default = "plotly_mimetype+notebook"

from ogae_core.experiments.ablation import default_aggregate_dir, read_aggregate
from ogae_core.experiments.ablation_analysis import (
    beside_paper_cells,
    best_of_k,
    cell_summary,
    epoch_curves,
    factor_effects,
    per_corruption,
)
from ogae_core.viz import ablation_curves_figure, factor_effects_figure

agg = read_aggregate(aggregate_dir or default_aggregate_dir(smoke=smoke))
runs, history, bootstrap = agg["runs"], agg["history"], agg["bootstrap"]
display(Markdown(f"{len(runs)} runs, {runs['training_key'].nunique()} trainings, "
                 f"seeds {sorted(runs['seed'].unique().tolist())}, pairs {sorted(runs['pair'].unique().tolist())}"))

# %% [markdown]
# ## Mean ± sd per cell (final OCSVM chosen on validation, grid with "scale")

# %%
summary = cell_summary(runs, metric=metric)
display(summary.round(3))

# %% [markdown]
# ## Beside the paper (Table IV: 3 vs 4, Table I: 3 vs 8)
#
# Test AUROC, AUROC30 and AUPR of every cell (mean ± sd over seeds, the final OCSVM chosen on
# validation as above), then the paper's OgAE-ocsvm and AE-ocsvm rows for the same pair. The paper
# does not say which class is positive for AUPR and AUROC30 (README, *Metric conventions*), so
# ours are given both ways — anomalies positive, and normals positive ("normal +") — and the
# paper's number stands under both.

# %%
for pair in sorted(runs["pair"].unique()):
    display(Markdown(f"**{pair}**"))
    display(beside_paper_cells(runs, pair, metric=metric))

# %% [markdown]
# ## Factor F3: the same cells chosen on the grid without "scale"

# %%
display(cell_summary(runs, grid="without-scale", metric=metric).round(3))

# %% [markdown]
# ## Effect of each factor (cell − project, paired by seed; t interval; `all` pools the pairs)

# %%
effects = factor_effects(runs, metric=metric)
display(effects.round(3))
factor_effects_figure(effects, title=f"Effect on test {metric} (paired by seed)").show()

# %% [markdown]
# ## Paired bootstrap of the selected models (per pair and seed; each model against the best)

# %%
if bootstrap.empty:
    display(Markdown("no bootstrap table in this aggregate"))
else:
    cols = ["experiment", "seed", "model", "estimate", "ci_low", "ci_high", "is_best", "p_adjusted", "significant"]
    display(bootstrap[cols].round(3))

# %% [markdown]
# ## Test AUROC per corruption (selected runs, mean over seeds)

# %%
display(per_corruption(runs, metric=metric).round(3))

# %% [markdown]
# ## Latent spread and misclassified fraction per epoch
#
# The `latent_explosion` guard fires when the spread exceeds 100× its first-epoch value (see the
# `warnings` column above).

# %%
curves = epoch_curves(history)
for experiment in sorted(curves["experiment"].unique()):
    ablation_curves_figure(curves, experiment).show()

# %% [markdown]
# ## Best-of-K: the test AUROC of the validation-best among K random OgAE-ocsvm configurations
#
# Every OgAE-ocsvm run of a pair (cells × final-OCSVM points × seeds) is a candidate; the paper
# reports one run chosen over a large grid. If the mean climbs with K towards the paper's number,
# selection alone can explain much of it.

# %%
for row in ("ogae-ocsvm", "ae-ocsvm"):
    display(Markdown(f"**{row}**"))
    display(best_of_k(runs, row=row, ks=ks, n_subsets=n_subsets, metric=metric).round(3))
