"""Results tables in the paper's layout: methods × (AUROC, AUPR, AUROC30).

The best model of each column (as chosen by the paired bootstrap: highest mean over the
resamples) is **bold**; models not significantly worse than it (Bonferroni-adjusted p-value
>= alpha) are underlined. Tables render as Markdown (bold ``**x**``, underline
``<ins>x</ins>``, which GitHub, Jupyter and Streamlit display), HTML (``<b>``, ``<u>``) and
LaTeX (``\\textbf``, ``\\underline``). A ``group`` column in the input (see
:func:`~ogae_core.evaluation.stats.per_group_bootstrap`) becomes a column group per
corruption.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ogae_core.evaluation.metrics import check_positive
from ogae_core.evaluation.stats import paired_bootstrap, per_group_bootstrap

METRIC_LABELS: dict[str, str] = {"auroc": "AUROC", "aupr": "AUPR", "auroc30": "AUROC30", "auroc30_raw": "AUROC30 (raw)"}
_REQUIRED = {"metric", "model", "estimate", "is_best", "tied_with_best", "ci_low", "ci_high"}
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


@dataclass(frozen=True)
class Cell:
    """One formatted table cell."""

    text: str
    bold: bool = False
    underline: bool = False


@dataclass(frozen=True)
class ResultsTable:
    """A formatted results table; render with ``to_markdown``, ``to_html`` or ``to_latex``.

    Attributes
    ----------
    models : list of str
        Row labels, in display order.
    columns : list of (group or None, metric)
        Column keys.
    cells : dict
        ``{(model, column): Cell}``.
    source : pandas.DataFrame
        The tidy bootstrap table the cells came from.
    """

    models: list[str]
    columns: list[tuple[object, str]]
    cells: dict[tuple[str, tuple[object, str]], Cell]
    source: pd.DataFrame

    @property
    def grouped(self) -> bool:
        return any(g is not None for g, _ in self.columns)

    @property
    def frame(self) -> pd.DataFrame:
        """Numeric estimates, models × columns (MultiIndex columns when grouped)."""
        data = {col: [self._estimate(m, col) for m in self.models] for col in self.columns}
        df = pd.DataFrame(data, index=pd.Index(self.models, name="model"))
        if not self.grouped:
            df.columns = [METRIC_LABELS.get(m, m) for _, m in self.columns]
        else:
            df.columns = pd.MultiIndex.from_tuples([(g, METRIC_LABELS.get(m, m)) for g, m in self.columns])
        return df

    def _estimate(self, model: str, col: tuple[object, str]) -> float:
        g, metric = col
        sel = (self.source.model == model) & (self.source.metric == metric)
        if g is not None:
            sel &= self.source.group == g
        return float(self.source.loc[sel, "estimate"].iloc[0]) if sel.any() else np.nan

    def _header(self, col: tuple[object, str]) -> str:
        g, metric = col
        label = METRIC_LABELS.get(metric, metric)
        return label if g is None else f"{g} {label}"

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown (underline as ``<ins>``).

        Examples
        --------
        >>> y = np.r_[np.zeros(50), np.ones(50)]
        >>> t = results_table(paired_bootstrap({"a": y, "b": 1 - y}, y, n=50))
        >>> t.to_markdown().splitlines()[0]
        '| Method | AUROC | AUPR | AUROC30 |'
        """

        def fmt(c: Cell) -> str:
            text = c.text
            text = f"**{text}**" if c.bold else text
            return f"<ins>{text}</ins>" if c.underline else text

        header = ["Method"] + [self._header(c) for c in self.columns]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + [":---:"] * len(self.columns)) + "|"]
        for m in self.models:
            name = m.replace("|", "\\|")
            lines.append("| " + " | ".join([name] + [fmt(self.cells[(m, c)]) for c in self.columns]) + " |")
        return "\n".join(lines) + "\n"

    def to_html(self, table_class: str = "ogae-results") -> str:
        """An HTML ``<table>`` (bold as ``<b>``, underline as ``<u>``), grouped header when grouped.

        Examples
        --------
        >>> y = np.r_[np.zeros(50), np.ones(50)]
        >>> "<b>1.00</b>" in results_table(paired_bootstrap({"a": y, "b": 1 - y}, y, n=50)).to_html()
        True
        """

        def fmt(c: Cell) -> str:
            text = html.escape(c.text)
            text = f"<b>{text}</b>" if c.bold else text
            return f"<u>{text}</u>" if c.underline else text

        out = [f'<table class="{html.escape(table_class)}">', "<thead>"]
        if self.grouped:
            out.append('<tr><th rowspan="2">Method</th>')
            for g, span in _runs([g for g, _ in self.columns]):
                out.append(f'<th colspan="{span}">{html.escape(str(g))}</th>')
            out.append("</tr><tr>")
            out.extend(f"<th>{html.escape(METRIC_LABELS.get(m, m))}</th>" for _, m in self.columns)
            out.append("</tr>")
        else:
            out.append(
                "<tr><th>Method</th>"
                + "".join(f"<th>{html.escape(self._header(c))}</th>" for c in self.columns)
                + "</tr>"
            )
        out.append("</thead>")
        out.append("<tbody>")
        for m in self.models:
            cells = "".join(f"<td>{fmt(self.cells[(m, c)])}</td>" for c in self.columns)
            out.append(f"<tr><td>{html.escape(m)}</td>{cells}</tr>")
        out.append("</tbody></table>")
        return "\n".join(out) + "\n"

    def to_latex(self, caption: str | None = None) -> str:
        r"""A LaTeX ``tabular`` in booktabs style (``\textbf`` and ``\underline``).

        Examples
        --------
        >>> y = np.r_[np.zeros(50), np.ones(50)]
        >>> r"\textbf{1.00}" in results_table(paired_bootstrap({"a": y, "b": 1 - y}, y, n=50)).to_latex()
        True
        """

        def fmt(c: Cell) -> str:
            text = _latex_escape(c.text)
            text = rf"\textbf{{{text}}}" if c.bold else text
            return rf"\underline{{{text}}}" if c.underline else text

        out = []
        if caption is not None:
            out += [r"\begin{table}", r"\centering", rf"\caption{{{_latex_escape(caption)}}}"]
        out += [r"\begin{tabular}{l" + "c" * len(self.columns) + "}", r"\toprule"]
        if self.grouped:
            groups = " & ".join(
                rf"\multicolumn{{{span}}}{{c}}{{{_latex_escape(str(g))}}}"
                for g, span in _runs([g for g, _ in self.columns])
            )
            out.append(f" & {groups} \\\\")
            out.append(
                "Method & " + " & ".join(_latex_escape(METRIC_LABELS.get(m, m)) for _, m in self.columns) + r" \\"
            )
        else:
            out.append("Method & " + " & ".join(_latex_escape(self._header(c)) for c in self.columns) + r" \\")
        out.append(r"\midrule")
        for m in self.models:
            out.append(" & ".join([_latex_escape(m)] + [fmt(self.cells[(m, c)]) for c in self.columns]) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}"]
        if caption is not None:
            out.append(r"\end{table}")
        return "\n".join(out) + "\n"


def _runs(values: list) -> list[tuple[object, int]]:
    runs: list[tuple[object, int]] = []
    for v in values:
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


def results_table(
    bootstrap: pd.DataFrame,
    *,
    metrics: Sequence[str] | None = None,
    order: Sequence[str] | None = None,
    digits: int = 2,
    show_ci: bool = False,
) -> ResultsTable:
    """Format a tidy bootstrap table in the paper's layout.

    Parameters
    ----------
    bootstrap : pandas.DataFrame
        Output of :func:`~ogae_core.evaluation.stats.paired_bootstrap` or
        :func:`~ogae_core.evaluation.stats.per_group_bootstrap`.
    metrics : sequence of str, optional
        Columns to show, default every metric in the table (paper order).
    order : sequence of str, optional
        Row order; default the order of the table.
    digits : int
        Decimals shown.
    show_ci : bool
        Append the bootstrap confidence interval, ``0.59 [0.58, 0.60]``.

    Returns
    -------
    ResultsTable

    Examples
    --------
    >>> y = np.r_[np.zeros(50), np.ones(50)]
    >>> t = results_table(paired_bootstrap({"perfect": y, "inverse": 1 - y}, y, n=50))
    >>> t.cells[("perfect", (None, "auroc"))]
    Cell(text='1.00', bold=True, underline=False)
    """
    if not isinstance(bootstrap, pd.DataFrame):
        raise ValueError("results_table expects the DataFrame returned by paired_bootstrap")
    missing = _REQUIRED - set(bootstrap.columns)
    if missing:
        raise ValueError(f"bootstrap table lacks column(s) {sorted(missing)}; pass the output of paired_bootstrap")
    present = list(pd.unique(bootstrap.metric))
    metrics = list(metrics) if metrics is not None else present
    absent = [m for m in metrics if m not in present]
    if absent:
        raise ValueError(f"metric(s) {absent} not in the bootstrap table (has {present})")
    models = list(pd.unique(bootstrap.model))
    if order is not None:
        unknown = [m for m in order if m not in models]
        if unknown:
            raise ValueError(f"order names unknown model(s) {unknown}")
        models = list(order) + [m for m in models if m not in order]
    grouped = "group" in bootstrap.columns
    groups = list(pd.unique(bootstrap.group)) if grouped else [None]
    columns = [(g, m) for g in groups for m in metrics]
    cells = {}
    for row in bootstrap.itertuples(index=False):
        col = (row.group if grouped else None, row.metric)
        if row.metric not in metrics:
            continue
        text = f"{row.estimate:.{digits}f}"
        if show_ci:
            text += f" [{row.ci_low:.{digits}f}, {row.ci_high:.{digits}f}]"
        cells[(row.model, col)] = Cell(text, bool(row.is_best), bool(row.tied_with_best))
    for m in models:
        for c in columns:
            cells.setdefault((m, c), Cell("–"))
    return ResultsTable(models, columns, cells, bootstrap)


def per_corruption_table(
    scores_by_model: Mapping[str, Sequence],
    labels: Sequence,
    corruptions: Sequence,
    n: int = 1000,
    seed: int = 0,
    *,
    metrics: Sequence[str] = ("auroc", "aupr", "auroc30"),
    positive: str = "anomaly",
    **format_kwargs,
) -> ResultsTable:
    """Per-corruption breakdown: the paired bootstrap within each corruption, one column group each.

    ``positive``: the metric convention (see :func:`~ogae_core.evaluation.metrics.orient`).

    Examples
    --------
    >>> y = np.array([0, 1] * 20)
    >>> t = per_corruption_table({"a": y, "b": 1 - y}, y, np.repeat(["stripe", "fog"], 20), n=20)
    >>> t.to_markdown().splitlines()[0]
    '| Method | stripe AUROC | stripe AUPR | stripe AUROC30 | fog AUROC | fog AUPR | fog AUROC30 |'
    """
    boot = per_group_bootstrap(scores_by_model, labels, corruptions, n=n, seed=seed, metrics=metrics, positive=positive)
    return results_table(boot, **format_kwargs)


def overall_table(
    scores_by_model: Mapping[str, Sequence],
    labels: Sequence,
    n: int = 1000,
    seed: int = 0,
    *,
    metrics: Sequence[str] = ("auroc", "aupr", "auroc30"),
    positive: str = "anomaly",
    **format_kwargs,
) -> ResultsTable:
    """Shortcut: :func:`paired_bootstrap` (metric convention ``positive``) then :func:`results_table`.

    Examples
    --------
    >>> y = np.r_[np.zeros(30), np.ones(30)]
    >>> overall_table({"a": y}, y, n=10).models
    ['a']
    """
    return results_table(paired_bootstrap(scores_by_model, labels, n=n, seed=seed, metrics=metrics, positive=positive), **format_kwargs)


def results_caption(experiment: str, labels: Sequence, bootstrap: pd.DataFrame, selection_metric: str = "auroc") -> str:
    """The caption of a results table: test items, what bold and underline mean, the selection metric.

    Parameters
    ----------
    experiment : str
        Experiment name shown first.
    labels : sequence of {0, 1}
        Test labels of the compared items (1 = anomaly).
    bootstrap : pandas.DataFrame
        Output of :func:`~ogae_core.evaluation.stats.paired_bootstrap` (its ``attrs`` give the
        number of resamples ``n`` and ``alpha``).
    selection_metric : str
        Validation metric the hyperparameters were chosen on.

    Returns
    -------
    str

    Examples
    --------
    >>> y = np.array([0, 1] * 20)
    >>> boot = paired_bootstrap({"a": y, "b": 1 - y}, y, n=20)
    >>> results_caption("mnistc-3v8-quick", y, boot).split(". ")[0]
    'mnistc-3v8-quick: test split, 40 items (20 anomalies)'
    >>> "20 resamples" in results_caption("x", y, boot)
    True
    """
    y = np.asarray(labels)
    a = bootstrap.attrs
    return (f"{experiment}: test split, {len(y)} items ({int(y.sum())} anomalies). Bold: best (highest bootstrap mean); "
            f"underlined: not significantly worse than the best (paired bootstrap, {a.get('n')} resamples, "
            f"Bonferroni, alpha = {a.get('alpha')}). Hyperparameters chosen on the validation split "
            f"(metric: {selection_metric}). {convention_note(a.get('positive', 'anomaly'))}")


def convention_note(positive: str = "anomaly") -> str:
    """One sentence saying which class the metrics count as positive, and what AUROC30 is.

    Examples
    --------
    >>> convention_note("normal").split(";")[0]
    'Positive class: normal (labels flipped, scores negated)'
    """
    check_positive(positive)
    which = "anomaly" if positive == "anomaly" else "normal (labels flipped, scores negated)"
    return (f"Positive class: {which}; AUROC30: McClish-standardized partial AUC, FPR <= 0.3 "
            f"(AUROC is the same under both conventions, AUPR and AUROC30 are not).")


def mean_sd(values: Sequence[float], digits: int = 2) -> str:
    """``"0.62 ± 0.03"`` (``"0.62"`` for one value; NaN left out).

    Examples
    --------
    >>> mean_sd([0.6, 0.64]), mean_sd([0.5]), mean_sd([0.0071], 3)
    ('0.62 ± 0.03', '0.50', '0.007')
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "–"
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"
