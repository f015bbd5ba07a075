"""Training dynamics: loss terms per epoch with expander/compactor phases shaded, latent
spread, misclassified fraction, support vectors and rho — several runs overlaid (plotly).

Reads history tables in the run-store layout (:mod:`ogae_core.runs`): ``epoch``,
``loss_<term>``, ``latent_spread``, ``misclassified_fraction``, ``sv_fraction`` (or
``n_support``), ``rho``, and ``phase`` or ``expander_weight`` / ``compactor_weight``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PANELS: dict[str, str] = {
    "loss": "Loss terms",
    "latent_spread": "Latent spread (mean pairwise MSE)",
    "misclassified_fraction": "Fraction of z_L misclassified",
    "sv_fraction": "Support-vector fraction",
    "n_support": "Support vectors",
    "rho": "ρ (OCSVM offset)",
}
PHASE_COLORS = {
    "expander": "rgba(31,119,180,0.12)",
    "compactor": "rgba(255,127,14,0.14)",
    "both": "rgba(44,160,44,0.12)",
    "pretrain": "rgba(148,103,189,0.12)",
    "train": "rgba(127,127,127,0.06)",
    "none": "rgba(127,127,127,0.06)",
}


def phases(history: pd.DataFrame) -> list[tuple[float, float, str]]:
    """Contiguous guidance phases as ``(first_epoch, last_epoch, name)``.

    Uses the ``phase`` column, else derives the name from ``expander_weight`` and
    ``compactor_weight`` (``expander``, ``compactor``, ``both`` or ``none``); returns an empty
    list when the history has neither.

    Examples
    --------
    >>> h = pd.DataFrame({"epoch": [1, 2, 3], "expander_weight": [1, 1, 1], "compactor_weight": [0, 1, 1]})
    >>> phases(h)
    [(1, 1, 'expander'), (2, 3, 'both')]
    """
    if "epoch" not in history.columns:
        raise ValueError("history lacks the 'epoch' column")
    h = history.sort_values("epoch")
    if "phase" in h.columns:
        names = h["phase"].astype(str).tolist()
    elif {"expander_weight", "compactor_weight"} <= set(h.columns):
        e, c = h["expander_weight"].to_numpy() > 0, h["compactor_weight"].to_numpy() > 0
        names = ["both" if a and b else "expander" if a else "compactor" if b else "none" for a, b in zip(e, c)]
    else:
        return []
    epochs = h["epoch"].tolist()
    out: list[tuple[float, float, str]] = []
    for epoch, name in zip(epochs, names):
        if out and out[-1][2] == name:
            out[-1] = (out[-1][0], epoch, name)
        else:
            out.append((epoch, epoch, name))
    return out


def training_dynamics(
    histories: Mapping[str, pd.DataFrame],
    *,
    panels: Sequence[str] = ("loss", "latent_spread", "misclassified_fraction", "sv_fraction", "n_support", "rho"),
    loss_terms: Sequence[str] | None = None,
    phases_of: str | None = None,
    log_losses: bool = False,
    title: str = "Training dynamics",
) -> go.Figure:
    """One panel per quantity, epochs on a shared x axis, one color per run.

    Parameters
    ----------
    histories : mapping of str to pandas.DataFrame
        ``{run label: history}``.
    panels : sequence of str
        Keys of :data:`PANELS`; panels no run has data for are left out.
    loss_terms : sequence of str, optional
        ``loss_*`` columns to draw (default: all found).
    phases_of : str, optional
        Run whose expander/compactor phases are shaded (default: the first run with phases).
    log_losses : bool
        Logarithmic y axis for the loss panel.

    Examples
    --------
    >>> h = pd.DataFrame({"epoch": [1, 2], "loss_recon": [0.2, 0.1], "rho": [0.5, 0.4], "phase": ["expander", "both"]})
    >>> fig = training_dynamics({"run": h})
    >>> [t.name for t in fig.data]
    ['run · recon', 'run · rho']
    """
    if not histories:
        raise ValueError("no histories to plot")
    for name, h in histories.items():
        if "epoch" not in h.columns:
            raise ValueError(f"history of {name!r} lacks the 'epoch' column")
    unknown = [p for p in panels if p not in PANELS]
    if unknown:
        raise ValueError(f"unknown panel(s) {unknown}; choose from {list(PANELS)}")
    # Columns that hold data (the trainer writes NaN where a quantity does not apply).
    all_cols = set().union(*(h.columns[h.notna().any()] for h in histories.values()))
    terms = list(loss_terms) if loss_terms is not None else sorted(c for c in all_cols if c.startswith("loss_"))
    present = [p for p in panels if (p == "loss" and terms) or (p != "loss" and p in all_cols)]
    if not present:
        raise ValueError(f"the histories have none of the columns to plot ({list(panels)})")
    fig = make_subplots(
        rows=len(present), cols=1, shared_xaxes=True, vertical_spacing=0.04, subplot_titles=[PANELS[p] for p in present]
    )
    palette = qualitative.Plotly
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    for i, (run, h) in enumerate(histories.items()):
        h = h.sort_values("epoch")
        color = palette[i % len(palette)]
        for row, panel in enumerate(present, start=1):
            cols = [c for c in terms if c in h.columns] if panel == "loss" else [panel]
            cols = [c for c in cols if c in h.columns and h[c].notna().any()]
            for j, col in enumerate(cols):
                label = col.removeprefix("loss_") if panel == "loss" else col
                fig.add_trace(
                    go.Scatter(
                        x=h["epoch"],
                        y=h[col],
                        mode="lines+markers",
                        name=f"{run} · {label}",
                        legendgroup=run,
                        line={"color": color, "dash": dashes[j % len(dashes)]},
                    ),
                    row=row,
                    col=1,
                )
    source = phases_of if phases_of is not None else next((k for k, h in histories.items() if phases(h)), None)
    if source is not None:
        if source not in histories:
            raise ValueError(f"phases_of={source!r} is not one of the runs {list(histories)}")
        for first, last, name in phases(histories[source]):
            fig.add_vrect(
                x0=first - 0.5,
                x1=last + 0.5,
                fillcolor=PHASE_COLORS.get(name, PHASE_COLORS["none"]),
                line_width=0,
                layer="below",
                annotation_text=name,
                annotation_position="top left",
                row="all",
                col=1,
            )
    if log_losses and "loss" in present:
        fig.update_yaxes(type="log", row=present.index("loss") + 1, col=1)
    fig.update_xaxes(title_text="epoch", row=len(present), col=1)
    subtitle = f" — phases of {source}" if source is not None else ""
    fig.update_layout(title=title + subtitle, height=260 * len(present) + 80, legend_title="run · quantity")
    return fig


#: Columns of :func:`last_epoch_table` (those a history lacks are left out).
LAST_EPOCH_COLUMNS = ("epoch", "phase", "latent_spread", "misclassified_fraction", "sv_fraction", "rho")


def last_epoch_table(histories: Mapping[str, pd.DataFrame], columns: Sequence[str] = LAST_EPOCH_COLUMNS) -> pd.DataFrame:
    """One row per run: the values of its last epoch.

    Parameters
    ----------
    histories : mapping of str to pandas.DataFrame
        ``{run label: history}`` with an ``epoch`` column.
    columns : sequence of str
        History columns to show; a column no history has is left out, a missing value is NaN.

    Examples
    --------
    >>> h = pd.DataFrame({"epoch": [2, 1], "rho": [0.4, 0.5], "phase": ["both", "expander"]})
    >>> last_epoch_table({"a": h}, columns=("epoch", "phase", "rho", "sv_fraction"))
      run  epoch phase  rho
    0   a      2  both  0.4
    """
    rows = []
    for name, h in histories.items():
        if "epoch" not in h.columns:
            raise ValueError(f"history of {name!r} lacks the 'epoch' column")
        last = h.sort_values("epoch").iloc[-1]
        rows.append({"run": name, **{c: last[c] for c in columns if c in h.columns}})
    present = [c for c in columns if any(c in row for row in rows)]
    return pd.DataFrame(rows, columns=["run", *present])
