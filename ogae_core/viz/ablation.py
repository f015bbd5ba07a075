"""Figures of the fidelity ablation (plotly), from the tables of
:mod:`ogae_core.experiments.ablation_analysis`."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

__all__ = ["ablation_curves_figure", "factor_effects_figure"]


def factor_effects_figure(effects: pd.DataFrame, *, title: str = "Effect on test AUROC (paired by seed)") -> go.Figure:
    """Forest plot of :func:`~ogae_core.experiments.ablation_analysis.factor_effects`: one
    point with its confidence interval per (row, factor), one colour per pair.

    Examples
    --------
    >>> e = pd.DataFrame({"row": "r", "factor": "f", "pair": ["3v4", "all"], "n": 3, "effect": [0.1, 0.05],
    ...                   "ci_low": [0.0, 0.01], "ci_high": [0.2, 0.09]})
    >>> len(factor_effects_figure(e).data)
    2
    """
    fig = go.Figure()
    y = effects["row"] + " | " + effects["factor"]
    for i, (pair, g) in enumerate(effects.groupby("pair", sort=True)):
        yy = y[g.index]
        fig.add_trace(go.Scatter(
            x=g["effect"], y=yy, mode="markers", name=str(pair), marker={"color": qualitative.Plotly[i % 10]},
            error_x={"type": "data", "symmetric": False, "array": g["ci_high"] - g["effect"],
                     "arrayminus": g["effect"] - g["ci_low"]}))
    fig.add_vline(x=0, line_dash="dot")
    fig.update_layout(title=title, xaxis_title="effect (cell - baseline)", height=120 + 28 * y.nunique(),
                      yaxis={"autorange": "reversed"})
    return fig


def ablation_curves_figure(curves: pd.DataFrame, experiment: str, *, log_spread: bool = True) -> go.Figure:
    """Latent spread and misclassified fraction per epoch (mean over seeds) of every label of
    one experiment, from :func:`~ogae_core.experiments.ablation_analysis.epoch_curves`.

    Examples
    --------
    >>> c = pd.DataFrame({"experiment": "e", "label": "l", "column": ["latent_spread", "misclassified_fraction"],
    ...                   "epoch": 1, "phase": "expander", "mean": [1.0, 0.2], "sd": 0.0, "n": 1})
    >>> len(ablation_curves_figure(c, "e").data)
    2
    """
    columns = ["latent_spread", "misclassified_fraction"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=columns)
    sub = curves[curves["experiment"] == experiment]
    for i, (label, g) in enumerate(sub.groupby("label", sort=True)):
        colour = qualitative.Plotly[i % 10]
        for j, col in enumerate(columns):
            gg = g[g["column"] == col].sort_values("epoch")
            if gg["mean"].notna().any():
                fig.add_trace(go.Scatter(x=gg["epoch"], y=gg["mean"], mode="lines+markers", name=label,
                                         legendgroup=label, showlegend=j == 0, line={"color": colour}),
                              row=1, col=j + 1)
    if log_spread:
        fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=f"{experiment}: training dynamics (mean over seeds)", height=420)
    return fig
