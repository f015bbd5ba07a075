"""Pure plotting functions returning plotly Figures (used by notebooks and the dashboard).

roc_figure, pr_figure            curves of several models (metrics in the legend)
per_corruption_bars              one metric per corruption and model, with bootstrap CIs
training_dynamics, phases        loss terms / latent spread / misclassified / SVs / rho per epoch
last_epoch_table                 the last epoch of every run as a table
latent_scatter                   stored 2-D embedding of latent codes, colored by a column
factor_effects_figure,           the fidelity ablation: effects with intervals, spread and
ablation_curves_figure           misclassified fraction per epoch

No torch, no I/O: inputs are arrays and DataFrames (as read by :mod:`ogae_core.runs`).
"""

from ogae_core.viz.ablation import ablation_curves_figure, factor_effects_figure
from ogae_core.viz.curves import per_corruption_bars, pr_figure, roc_figure
from ogae_core.viz.dynamics import last_epoch_table, phases, training_dynamics
from ogae_core.viz.latent import latent_scatter

__all__ = ["ablation_curves_figure", "factor_effects_figure", "last_epoch_table", "latent_scatter", "per_corruption_bars", "phases", "pr_figure", "roc_figure", "training_dynamics"]
