"""Execute the project's notebooks with papermill into a report folder (executed .ipynb + HTML).

Every notebook must have a cell tagged ``parameters`` holding literals only, including
``smoke: bool``; a notebook without it is an error (not a warning). The kernel is always named
explicitly (default ``python3``, which Jupyter resolves to the interpreter running this
function, i.e. the project's ``.venv``).

The notebooks live in the source checkout's ``notebooks/`` (:func:`default_notebooks_dir`; an
installed package has none, pass a folder instead), each ``NN_name.ipynb`` paired by jupytext with
``NN_name.py`` (percent format, ``notebooks/jupytext.toml``). The decisions the notebooks would
otherwise hold themselves are public functions here: :func:`guidance_experiment_name`,
:func:`smoke_strategies`, :func:`run_histories` (notebook 02) and :func:`latent_space_labels`
(notebook 01).
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ogae_core.checkout import source_checkout


class NotebookParametersError(ValueError):
    """A notebook lacks a valid ``parameters`` cell."""


def parameters_cell(path: str | Path) -> dict[str, Any]:
    """The literal parameters of a notebook's ``parameters`` cell.

    Raises
    ------
    NotebookParametersError
        No cell tagged ``parameters``, more than one, a non-literal value, or no ``smoke`` flag.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise NotebookParametersError(f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    values: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if not isinstance(target, ast.Name) or getattr(node, "value", None) is None:
            raise NotebookParametersError(f"{path}: the parameters cell may only assign literals to names (line {node.lineno})")
        try:
            values[target.id] = ast.literal_eval(node.value)
        except ValueError:
            raise NotebookParametersError(f"{path}: parameter {target.id!r} is not a literal (line {node.lineno})") from None
    if not isinstance(values.get("smoke"), bool):
        raise NotebookParametersError(f"{path}: the parameters cell must define `smoke: bool`")
    return values


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the source checkout (the notebooks do not ship with an installed package).

    Raises
    ------
    FileNotFoundError
        The package is not running from a source checkout, or the checkout has no ``notebooks/``;
        the message says where they were expected and how to point at another folder.

    Examples
    --------
    >>> default_notebooks_dir().name
    'notebooks'
    """
    root = source_checkout()
    if root is None:
        raise FileNotFoundError(
            "the notebooks live in the source checkout's notebooks/ folder, and this ogae_core is an installed copy "
            "(no checkout next to it); pass the folder explicitly (`ogae notebooks --notebooks-dir DIR`)")
    folder = root / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder {folder} does not exist (pass `--notebooks-dir DIR`)")
    return folder


def notebook_paths(notebooks_dir: str | Path | None = None) -> list[Path]:
    """The ``NN_*.ipynb`` notebooks of a folder (default :func:`default_notebooks_dir`), sorted.

    Examples
    --------
    >>> [p.name for p in notebook_paths()][:1]
    ['01_mnistc_benchmark.ipynb']
    """
    d = default_notebooks_dir() if notebooks_dir is None else Path(notebooks_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"notebook folder {d} does not exist")
    return sorted(p for p in d.glob("[0-9][0-9]_*.ipynb"))


def to_html(executed: str | Path, html_path: str | Path) -> Path:
    """Render an executed notebook as standalone HTML (nbconvert, plotly figures included)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))
    Path(html_path).write_text(body, encoding="utf-8")
    return Path(html_path)


def execute_notebooks(out_dir: str | Path = "reports", smoke: bool = False, kernel: str = "python3", *,
                      notebooks: Sequence[str | Path] | None = None, parameters: Mapping[str, Any] | None = None,
                      cwd: str | Path | None = None, timeout_s: int | None = None, progress: bool = False) -> list[Path]:
    """Run every notebook with papermill; write ``<out_dir>/<name>.ipynb`` and ``<name>.html``.

    Parameters
    ----------
    out_dir : path
        Report folder (created).
    smoke : bool
        Passed to each notebook's ``smoke`` parameter (tiny data, seconds).
    kernel : str
        Jupyter kernel name, always passed explicitly to papermill.
    notebooks : sequence of path, optional
        Default: ``notebooks/NN_*.ipynb`` of the repository.
    parameters : mapping, optional
        Further parameters given to every notebook (only those its parameters cell defines).
    cwd : path, optional
        Working directory of the kernels (default: the current one, so relative run-store
        paths resolve as on the command line).
    timeout_s : int, optional
        Per-cell execution timeout.

    Returns
    -------
    list of Path
        The executed notebooks (the HTML files sit next to them).

    Examples
    --------
    >>> execute_notebooks("reports", smoke=True)  # doctest: +SKIP
    [PosixPath('reports/01_mnistc_benchmark.ipynb'), PosixPath('reports/02_guidance_dynamics.ipynb')]
    """
    import papermill as pm

    paths = [Path(p) for p in notebooks] if notebooks is not None else notebook_paths()
    if not paths:
        raise FileNotFoundError("no notebooks to execute")
    declared = {p: parameters_cell(p) for p in paths}  # fail before running anything
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for p in paths:
        params = {"smoke": bool(smoke), **{k: v for k, v in dict(parameters or {}).items() if k in declared[p]}}
        target = out / p.name
        pm.execute_notebook(str(p), str(target), parameters=params, kernel_name=kernel,
                            cwd=str(cwd or Path.cwd()), progress_bar=progress, execution_timeout=timeout_s)
        to_html(target, target.with_suffix(".html"))
        written.append(target)
    return written


# --- what notebook 02 (guidance dynamics) decides, kept here rather than in the notebook -------------

#: Strategies a smoke run of notebook 02 keeps: the paper's Fig. 6 and one comparison.
SMOKE_STRATEGIES = ("expander-then-compactor", "both")


def guidance_experiment_name(normal: int = 3, anomaly: int = 8, smoke: bool = False) -> str:
    """Default experiment of notebook 02: ``mnistc-<normal>v<anomaly>-guidance`` (``-smoke`` appended).

    Examples
    --------
    >>> guidance_experiment_name(3, 8)
    'mnistc-3v8-guidance'
    >>> guidance_experiment_name(1, 7, smoke=True)
    'mnistc-1v7-guidance-smoke'
    """
    return f"mnistc-{normal}v{anomaly}-guidance" + ("-smoke" if smoke else "")


def smoke_strategies(strategies: Sequence[str]) -> list[str]:
    """The strategies a smoke run trains: those of :data:`SMOKE_STRATEGIES` asked for, else the first two.

    Examples
    --------
    >>> smoke_strategies(["expander-then-compactor", "expander-then-both", "both", "compactor"])
    ['expander-then-compactor', 'both']
    >>> smoke_strategies(["compactor", "expander-then-both", "expander"])
    ['compactor', 'expander-then-both']
    """
    kept = [s for s in strategies if s in SMOKE_STRATEGIES]
    return kept or list(strategies)[:2]


def run_histories(runs: Iterable[Any], strategy: str | None = None) -> dict[str, Any]:
    """``{"<label> (seed <s>)": history}`` of runs, optionally only those of one guidance strategy.

    Parameters
    ----------
    runs : iterable of ogae_core.runs.Run
        Finished runs (``label``, ``seed``, ``config`` and ``history()`` are used).
    strategy : str, optional
        Keep the runs whose ``hyperparameters.strategy`` is this one.

    Raises
    ------
    ValueError
        Two runs would get the same key (same label and seed).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> runs = [SimpleNamespace(label=f"ogae [{s}]", seed=0, config={"hyperparameters": {"strategy": s}},
    ...                         history=lambda: "history table") for s in ("both", "compactor")]
    >>> list(run_histories(runs))
    ['ogae [both] (seed 0)', 'ogae [compactor] (seed 0)']
    >>> list(run_histories(runs, strategy="compactor"))
    ['ogae [compactor] (seed 0)']
    """
    out: dict[str, Any] = {}
    for run in runs:
        if strategy is not None and run.config.get("hyperparameters", {}).get("strategy") != strategy:
            continue
        key = f"{run.label} (seed {run.seed})"
        if key in out:
            raise ValueError(f"two runs are both {key!r}; give them distinct labels")
        out[key] = run.history()
    return out


# --- what notebook 01 (MNIST-C benchmark) decides -----------------------------------------------

#: Rows whose latent space notebook 01 shows: a plain autoencoder and OgAE (the paper's contrast).
LATENT_SPACE_ROWS = ("ae-recons", "ogae-ocsvm")


def latent_space_labels(labels: Iterable[str], preferred: Sequence[str] = LATENT_SPACE_ROWS) -> list[str]:
    """Compared rows whose latent codes notebook 01 plots: the preferred ones present, else the first row.

    Examples
    --------
    >>> latent_space_labels(["ae-recons", "vae-recons", "ogae-ocsvm"])
    ['ae-recons', 'ogae-ocsvm']
    >>> latent_space_labels(["sae-recons", "vae-recons"])
    ['sae-recons']
    >>> latent_space_labels([])
    []
    """
    available = list(labels)
    return [label for label in preferred if label in available] or available[:1]
