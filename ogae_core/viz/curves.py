"""ROC and precision-recall curves, and per-corruption metric bars (plotly)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ogae_core.evaluation.metrics import all_metrics, check_positive, pr_points, roc_points
from ogae_core.evaluation.tables import METRIC_LABELS

_MAX_POINTS = 2000


def _thin(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` points (always the first and last), evenly spaced by index."""
    if x.size <= max_points:
        return x, y
    keep = np.unique(np.linspace(0, x.size - 1, max_points).round().astype(int))
    return x[keep], y[keep]


def _check(scores_by_model: Mapping[str, Sequence], labels: Sequence) -> None:
    if not isinstance(scores_by_model, Mapping) or not scores_by_model:
        raise ValueError("scores_by_model must be a non-empty mapping {model: scores}")


def roc_figure(
    scores_by_model: Mapping[str, Sequence],
    labels: Sequence,
    *,
    max_points: int = _MAX_POINTS,
    title: str | None = None,
    positive: str = "anomaly",
) -> go.Figure:
    """ROC curve of every model, AUROC in the legend, FPR = 0.3 marked.

    Parameters
    ----------
    scores_by_model : mapping of str to array-like
        Scores (higher = more anomalous) per model, on the items of ``labels``.
    labels : array-like of {0, 1}
    max_points : int
        Points drawn per curve (thinned evenly; the metrics use all points).
    title : str, optional
        Default: "ROC curves (<positive> = positive)".
    positive : {"anomaly", "normal"}
        The class counted as positive (see :func:`ogae_core.evaluation.orient`).

    Returns
    -------
    plotly.graph_objects.Figure

    Examples
    --------
    >>> fig = roc_figure({"a": [0.1, 0.8, 0.3, 0.9]}, [0, 1, 0, 1])
    >>> fig.data[0].name
    'a (AUROC 1.000)'
    """
    _check(scores_by_model, labels)
    check_positive(positive)
    fig = go.Figure()
    for name, scores in scores_by_model.items():
        fpr, tpr, _ = roc_points(labels, scores, positive=positive)
        value = all_metrics(labels, scores, positive=positive)["auroc"]
        x, y = _thin(fpr, tpr, max_points)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{name} (AUROC {value:.3f})"))
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="chance", hoverinfo="skip"
        )
    )
    fig.add_vline(x=0.3, line_dash="dash", line_color="grey", annotation_text="FPR 0.3 (AUROC30)")
    fig.update_layout(
        title=title or f"ROC curves ({positive} = positive)",
        xaxis_title="False positive rate",
        yaxis_title="True positive rate",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1.02],
        legend_title="model",
    )
    return fig


def pr_figure(
    scores_by_model: Mapping[str, Sequence],
    labels: Sequence,
    *,
    max_points: int = _MAX_POINTS,
    title: str | None = None,
    positive: str = "anomaly",
) -> go.Figure:
    """Step-wise precision-recall curve of every model, average precision in the legend.

    ``positive``: the class counted as positive (its prevalence is the chance line).

    Examples
    --------
    >>> fig = pr_figure({"a": [0.1, 0.8, 0.3, 0.9]}, [0, 1, 0, 1])
    >>> fig.data[0].name
    'a (AUPR 1.000)'
    """
    _check(scores_by_model, labels)
    check_positive(positive)
    y_arr = np.asarray(labels)
    fig = go.Figure()
    for name, scores in scores_by_model.items():
        recall, precision, _ = pr_points(labels, scores, positive=positive)
        value = all_metrics(labels, scores, positive=positive)["aupr"]
        x, y = _thin(recall, precision, max_points)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line_shape="vh", name=f"{name} (AUPR {value:.3f})"))
    prevalence = float(np.mean(y_arr == (1 if positive == "anomaly" else 0)))
    fig.add_hline(y=prevalence, line_dash="dot", line_color="grey", annotation_text=f"prevalence {prevalence:.2f}")
    fig.update_layout(
        title=title or f"Precision-recall curves ({positive} = positive)",
        xaxis_title="Recall",
        yaxis_title="Precision",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1.02],
        legend_title="model",
    )
    return fig


def per_corruption_bars(
    table: pd.DataFrame,
    metric: str = "auroc",
    *,
    title: str | None = None,
) -> go.Figure:
    """Grouped bars of one metric per corruption and model, with bootstrap CIs when present.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy table with columns ``group`` (corruption), ``model``, ``metric``, ``estimate`` and
        optionally ``ci_low``/``ci_high`` — the output of
        :func:`~ogae_core.evaluation.per_group_bootstrap`.
    metric : str
        Which metric to draw.

    Examples
    --------
    >>> t = pd.DataFrame({"group": ["stripe", "fog"], "model": ["a", "a"],
    ...                   "metric": ["auroc", "auroc"], "estimate": [0.7, 0.6]})
    >>> list(per_corruption_bars(t).data[0].x)
    ['stripe', 'fog']
    """
    missing = {"group", "model", "metric", "estimate"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks column(s) {sorted(missing)}")
    sub = table[table.metric == metric]
    if sub.empty:
        raise ValueError(f"metric {metric!r} not in the table (has {sorted(table.metric.unique())})")
    has_ci = {"ci_low", "ci_high"} <= set(sub.columns)
    fig = go.Figure()
    for model, part in sub.groupby("model", sort=False):
        error = None
        if has_ci:
            error = {
                "type": "data",
                "symmetric": False,
                "array": (part.ci_high - part.estimate).to_numpy(),
                "arrayminus": (part.estimate - part.ci_low).to_numpy(),
            }
        fig.add_trace(
            go.Bar(x=part.group.astype(str).to_numpy(), y=part.estimate.to_numpy(), name=str(model), error_y=error)
        )
    label = METRIC_LABELS.get(metric, metric)
    fig.update_layout(
        barmode="group",
        title=title or f"{label} per test corruption",
        xaxis_title="corruption",
        yaxis_title=label,
        legend_title="model",
    )
    return fig
