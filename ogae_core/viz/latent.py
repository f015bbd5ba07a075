"""Latent-space scatter of a stored 2-D embedding (UMAP computed by the pipeline, not here)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

LABEL_NAMES = {0: "normal", 1: "anomaly"}


def latent_scatter(
    latents: pd.DataFrame,
    color: str = "corruption",
    *,
    x: str = "umap_x",
    y: str = "umap_y",
    hover: Sequence[str] = ("digit", "corruption", "label", "split"),
    max_points: int | None = 20000,
    seed: int = 0,
    title: str | None = None,
) -> go.Figure:
    """Scatter of latent codes in 2-D, one trace per category of ``color``.

    Parameters
    ----------
    latents : pandas.DataFrame
        Columns ``x``, ``y`` and the metadata to color by (``corruption``, ``digit``, ``label``).
    color : str
        Column defining the categories (``label`` shows as normal/anomaly).
    max_points : int or None
        Random subsample (fixed ``seed``) drawn when there are more rows; None keeps all.

    Examples
    --------
    >>> df = pd.DataFrame({"umap_x": [0, 1], "umap_y": [1, 0], "corruption": ["fog", "stripe"]})
    >>> [t.name for t in latent_scatter(df).data]
    ['fog', 'stripe']
    """
    missing = [c for c in (x, y, color) if c not in latents.columns]
    if missing:
        raise ValueError(f"latents lack column(s) {missing} (have {list(latents.columns)})")
    df = latents
    if max_points is not None and len(df) > max_points:
        df = df.sample(n=max_points, random_state=seed)
    categories = df[color].map(LABEL_NAMES) if color == "label" else df[color]
    categories = categories.astype(str)
    hover_cols = [c for c in hover if c in df.columns]
    fig = go.Figure()
    palette = qualitative.Plotly + qualitative.D3
    for i, value in enumerate(sorted(categories.unique())):
        part = df[categories == value]
        text = (
            part[hover_cols].astype(str).apply(lambda r: "<br>".join(f"{k}={v}" for k, v in r.items()), axis=1)
            if hover_cols
            else None
        )
        fig.add_trace(
            go.Scattergl(
                x=part[x],
                y=part[y],
                mode="markers",
                name=value,
                text=text,
                marker={"size": 4, "opacity": 0.7, "color": palette[i % len(palette)]},
                hovertemplate="%{text}<extra></extra>" if hover_cols else None,
            )
        )
    fig.update_layout(
        title=title or f"Latent codes (2-D embedding), colored by {color}",
        xaxis_title=x,
        yaxis_title=y,
        legend_title=color,
        height=600,
    )
    return fig
