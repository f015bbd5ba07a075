"""Brain-MRI figures: a T1 slice with anomaly-map overlays and lesion contours (the paper's
Figs. 3, 4, 8, 9), per-patient metric distributions, and a Fig. 3-like PNG.

Volumes are arrays in RAS voxel order (x = left→right, y = posterior→anterior, z = inferior→
superior); :func:`volume_slice` cuts one plane and orients it for display (rows = the vertical
screen axis, origin at the bottom). Overlays are NaN outside the brain (transparent).

No I/O besides :func:`fig3_png` (matplotlib, written atomically); the rest returns plotly Figures.

Examples
--------
>>> vol = np.arange(24, dtype=float).reshape(2, 3, 4)
>>> volume_slice(vol, "axial", 1).shape, volume_slice(vol, "coronal", 0).shape, volume_slice(vol, "sagittal", 0).shape
((3, 2), (4, 2), (4, 3))
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["PLANES", "fig3_png", "metric_distributions", "overlay_figure", "quantile_threshold", "slab_extent",
           "volume_slice"]

#: Plane -> axis of the volume that is cut.
PLANES: dict[str, int] = {"axial": 2, "coronal": 1, "sagittal": 0}
LESION_COLOUR = "#7fd3ff"  # light blue, as the paper's ground truth


def volume_slice(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """One plane of a 3-D volume, transposed so that rows are the display's vertical axis."""
    if plane not in PLANES:
        raise ValueError(f"unknown plane {plane!r}; choose one of {list(PLANES)}")
    axis = PLANES[plane]
    if not 0 <= index < volume.shape[axis]:
        raise ValueError(f"{plane} slice {index} outside 0..{volume.shape[axis] - 1}")
    return np.take(volume, index, axis=axis).T


def quantile_threshold(anomaly_map: np.ndarray, quantile: float = 0.02) -> float:
    """The value above which the top ``quantile`` of the finite map lies (the paper's 2 %).

    Examples
    --------
    >>> quantile_threshold(np.r_[np.arange(100.0), np.nan], 0.02)
    97.02
    """
    values = np.asarray(anomaly_map, float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("the map has no finite value")
    return round(float(np.quantile(values, 1 - quantile)), 10)


def slab_extent(anomaly_map: np.ndarray) -> tuple[int, int] | None:
    """First and last axial slice holding a finite value (``None`` when the map is empty)."""
    finite = np.isfinite(anomaly_map).any(axis=(0, 1))
    if not finite.any():
        return None
    idx = np.flatnonzero(finite)
    return int(idx[0]), int(idx[-1])


def overlay_figure(t1: np.ndarray, maps: Mapping[str, np.ndarray], lesion: np.ndarray | None = None, *,
                   opacity: float = 0.6, threshold: Mapping[str, float] | None = None,
                   shared_scale: bool = True, colorscale: str = "Reds", slab: tuple[int, int] | None = None,
                   plane: str = "axial", titles: Mapping[str, str] | None = None, height: int = 380):
    """Side-by-side panels: the T1 slice in grey, one anomaly map each overlaid, lesion contour.

    Parameters
    ----------
    t1 : 2-D array
        The T1 slice (from :func:`volume_slice`).
    maps : mapping name -> 2-D array
        Anomaly-map slices (NaN = transparent).
    lesion : 2-D bool array, optional
        Ground truth, drawn as a light-blue contour.
    threshold : mapping name -> float, optional
        Show only values >= the threshold of each map (e.g. :func:`quantile_threshold` at 2 %).
    shared_scale : bool
        One colour range for all maps (else one per map).
    slab : (first, last), optional
        On coronal/sagittal planes, dashed lines at the slab's first and last axial slice.

    Examples
    --------
    >>> t1 = np.random.default_rng(0).random((20, 30))
    >>> fig = overlay_figure(t1, {"a": t1, "b": 2 * t1}, t1 > 0.9, shared_scale=False)
    >>> len(fig.data), fig.data[1].zmax < fig.data[4].zmax
    (6, True)
    """
    import plotly.graph_objects as go

    names = list(maps)
    if not names:
        raise ValueError("overlay_figure needs at least one map")
    shown = {}
    for n in names:
        m = np.asarray(maps[n], np.float32)
        if m.shape != t1.shape:
            raise ValueError(f"map {n!r} has shape {m.shape}, the T1 slice {t1.shape}")
        if threshold is not None and n in threshold:
            m = np.where(m >= threshold[n], m, np.float32(np.nan))
        shown[n] = m
    finite = [m[np.isfinite(m)] for m in shown.values()]
    pooled = np.concatenate(finite) if any(f.size for f in finite) else np.zeros(1)
    # one figure with hand-made axes (make_subplots costs more than the traces at this size)
    k, gap = len(names), 0.02
    width = (1 - gap * (k - 1)) / k
    traces, layout = [], {}
    lesion_z = np.asarray(lesion, np.float32) if lesion is not None and np.asarray(lesion).any() else None
    t1 = np.asarray(t1, np.float32)
    for i, n in enumerate(names, start=1):
        ax = "" if i == 1 else str(i)
        xy = {"xaxis": f"x{ax}", "yaxis": f"y{ax}"}
        vals = pooled if shared_scale else finite[i - 1]
        lo, hi = (float(np.min(vals)), float(np.max(vals))) if vals.size else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1e-6
        x0 = (i - 1) * (width + gap)
        traces.append(go.Heatmap(z=t1, colorscale="gray", showscale=False, hoverinfo="skip", zmin=0, zmax=1, **xy))
        bar = {"len": 0.8, "thickness": 8, "x": x0 + width} if not shared_scale else {"len": 0.8}
        traces.append(go.Heatmap(z=shown[n], colorscale=colorscale, zmin=lo, zmax=hi, opacity=opacity, name=n,
                                 showscale=(i == k) or not shared_scale, colorbar=bar, **xy))
        if lesion_z is not None:
            traces.append(go.Contour(z=lesion_z, showscale=False, hoverinfo="skip", name="lesion",
                                     contours={"start": 0.5, "end": 0.5, "coloring": "lines"},
                                     line={"color": LESION_COLOUR, "width": 1.5}, **xy))
        else:
            traces.append(go.Scatter(x=[], y=[], showlegend=False, **xy))
        layout[f"xaxis{ax}"] = {"domain": [x0, x0 + width], "visible": False, "anchor": f"y{ax}"}
        layout[f"yaxis{ax}"] = {"visible": False, "scaleanchor": f"x{ax}", "anchor": f"x{ax}"}
    shapes = []
    if slab is not None and plane != "axial":
        for i in range(1, k + 1):
            ax = "" if i == 1 else str(i)
            shapes += [{"type": "line", "xref": f"x{ax} domain", "yref": f"y{ax}", "x0": 0, "x1": 1, "y0": z, "y1": z,
                        "line": {"color": "#ffb000", "dash": "dash", "width": 1}} for z in slab]
    annotations = [{"text": (titles or {}).get(n, n), "x": (i * (width + gap)) + width / 2, "y": 1.0, "xref": "paper",
                    "yref": "paper", "yanchor": "bottom", "showarrow": False} for i, n in enumerate(names)]
    fig = go.Figure(data=traces)
    fig.update_layout(height=height, margin={"l": 5, "r": 5, "t": 30, "b": 5}, showlegend=False,
                      plot_bgcolor="black", shapes=shapes, annotations=annotations, **layout)
    return fig


def metric_distributions(voxels: pd.DataFrame, metrics: Sequence[str] = ("auroc", "auroc30", "aupr"),
                         order: Sequence[str] | None = None, chance: float | None = None):
    """Per-patient localization metrics: one box (with points) per method and metric.

    Examples
    --------
    >>> v = pd.DataFrame({"method": ["a", "a", "b", "b"], "auroc": [.6, .7, .5, .4], "auroc30": [.6, .6, .5, .5],
    ...                   "aupr": [.01, .02, .005, .004]})
    >>> len(metric_distributions(v).data)
    6
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    order = list(order) if order else list(pd.unique(voxels["method"]))
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[m.upper() for m in metrics])
    for j, metric in enumerate(metrics, start=1):
        for m in order:
            sub = voxels[voxels.method == m]
            fig.add_trace(go.Box(y=sub[metric], name=m, boxpoints="all", jitter=0.3, showlegend=False), 1, j)
        if metric == "aupr" and chance is not None:
            fig.add_hline(y=chance, line={"dash": "dot"}, annotation_text="chance", row=1, col=j)
        elif metric != "aupr":
            fig.add_hline(y=0.5, line={"dash": "dot"}, row=1, col=j)
    fig.update_layout(height=380, margin={"t": 40, "b": 5})
    return fig


def fig3_png(path: str | Path, t1: np.ndarray, lesion: np.ndarray, maps: Mapping[str, np.ndarray], *,
             quantile: float = 0.02, title: str = "", dpi: int = 110) -> Path:
    """A Fig. 3-like PNG (atomically): top row T1 + ground truth and each method's map; bottom row
    the maps thresholded at their top ``quantile`` (2 %). Inputs are display slices
    (:func:`volume_slice`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ogae_core.atomic import atomic_write_file

    names = list(maps)
    cols = len(names) + 1
    fig, axes = plt.subplots(2, cols, figsize=(2.4 * cols, 5.4), facecolor="black")
    axes = np.asarray(axes).reshape(2, cols)
    for ax in axes.ravel():
        ax.axis("off")
    for r in range(2):
        axes[r, 0].imshow(t1, cmap="gray", origin="lower", vmin=0, vmax=1)
    if np.asarray(lesion).any():
        axes[0, 0].contourf(np.asarray(lesion, float), levels=[0.5, 1.5], colors=[LESION_COLOUR], alpha=0.8)
    axes[0, 0].set_title("T1 + ground truth", color="white", fontsize=8)
    axes[1, 0].set_title(f"top {quantile:.0%} shown", color="white", fontsize=8)
    for j, n in enumerate(names, start=1):
        m = np.asarray(maps[n], float)
        fin = m[np.isfinite(m)]
        lo, hi = (np.percentile(fin, [5, 95]) if fin.size else (0, 1))
        for r in range(2):
            axes[r, j].imshow(t1, cmap="gray", origin="lower", vmin=0, vmax=1)
        axes[0, j].imshow(np.ma.masked_invalid(m), cmap="jet", origin="lower", vmin=lo, vmax=hi, alpha=0.6)
        if fin.size:
            thr = quantile_threshold(m, quantile)
            axes[1, j].imshow(np.ma.masked_where(~(m >= thr), m), cmap="autumn", origin="lower", alpha=0.9)
        axes[0, j].set_title(n, color="white", fontsize=8)
    if title:
        fig.suptitle(title, color="white", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    atomic_write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, facecolor="black", bbox_inches="tight"))
    plt.close(fig)
    return path
