"""Shared helpers of the dashboard pages: runs root, cached loading, selection, empty states.

Read-only over the run store (:mod:`ogae_core.runs`); never imports torch or training code.
Cached loaders are keyed by (path, modification time), so a new or finished run shows up on
the next rerun and finished runs (immutable) are read once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd
import streamlit as st

from ogae_core import runs as store
from ogae_core.evaluation import align_scores, paired_bootstrap, per_group_bootstrap

MAKE_RUNS_HINT = (
    "Create runs with **`make demo`** (fetches MNIST, runs the quick 3-vs-8 benchmark and the brain-MRI "
    "demo cohort, and opens this dashboard) or **`ogae bench mnistc --preset quick`**, or point the sidebar at "
    "another runs directory."
)


def runs_root() -> Path:
    """The runs root from the sidebar (default ``$OGAE_RUNS`` or ``./runs``)."""
    default = str(store.default_root())
    value = st.sidebar.text_input(
        "Runs directory",
        value=default,
        key="runs_root",
        help=f"Root of the run store; default from ${store.RUNS_ENV} or ./runs",
    )
    return Path(value.strip() or default).expanduser()


def _stamp(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def store_stamp(root: Path) -> tuple:
    """Cache key of the whole store: mtimes of the root and of every experiment directory."""
    if not root.is_dir():
        return (str(root), 0.0)
    return (str(root), _stamp(root), tuple(sorted((d.name, _stamp(d)) for d in root.iterdir() if d.is_dir())))


@st.cache_data(show_spinner=False, max_entries=16)
def _load_runs(root: str, stamp: tuple) -> list[store.Run]:
    return store.list_runs(root)


def load_runs(root: Path) -> list[store.Run]:
    """All finished runs of the store (cached on the store's mtimes)."""
    return _load_runs(str(root), store_stamp(root))


@st.cache_data(show_spinner=False, max_entries=256)
def _load_table(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_parquet(path)


def load_table(run: store.Run, filename: str) -> pd.DataFrame:
    """A parquet file of a run (cached on path and mtime)."""
    path = run.path / filename
    return _load_table(str(path), _stamp(path))


def empty_state(root: Path, what: str = "runs") -> None:
    """Tell the user there is nothing to show and which command makes it."""
    st.info(f"No {what} found in `{root}`. {MAKE_RUNS_HINT}")


def latest_experiment(runs: Sequence[store.Run]) -> str | None:
    """The experiment whose newest run was finished last (None when there are no runs).

    Runs are ranked by the modification time of their ``FINISHED`` marker (written last, when
    the run is committed); an experiment counts by its most recent run.

    Examples
    --------
    >>> latest_experiment([]) is None
    True
    """
    newest: dict[str, float] = {}
    for r in runs:
        stamp = _stamp(r.path / store.FINISHED)
        newest[r.experiment] = max(stamp, newest.get(r.experiment, float("-inf")))
    return max(newest, key=newest.__getitem__) if newest else None


def choose_experiment(runs: Sequence[store.Run], key: str = "experiment") -> str:
    """Sidebar select box of the experiments present in ``runs``, alphabetical, each shown with
    its experiment kind as recorded in the run store, opening on the most recently written one
    (:func:`latest_experiment`); the user's later choice is kept."""
    kinds = store.experiment_kinds(runs)
    experiments = sorted(kinds)
    latest = latest_experiment(runs)
    return st.sidebar.selectbox("Experiment", experiments, index=experiments.index(latest), key=key,
                                format_func=lambda e: f"{e} ({', '.join(kinds[e])})" if kinds[e] else e)


def display_names(runs: Sequence[store.Run]) -> dict[str, store.Run]:
    """Unique display names: the run label, disambiguated by seed then run id when repeated."""
    counts = pd.Series([r.label for r in runs]).value_counts()
    out: dict[str, store.Run] = {}
    for r in runs:
        name = r.label if counts[r.label] == 1 else f"{r.label} (seed {r.seed})"
        if name in out:
            name = f"{r.label} ({r.run_id})"
        out[name] = r
    return out


def default_selection(runs: Sequence[store.Run]) -> list[store.Run]:
    """One run per label, chosen as ``ogae report`` chooses: the configuration with the best
    mean validation AUROC over its seeds (:func:`ogae_core.runs.selection.selected_runs`),
    its lowest seed. Labels whose runs carry no validation AUROC fall back to their first run.
    The test split is never used to choose.

    Examples
    --------
    >>> default_selection([])
    []
    """
    from ogae_core.runs.selection import selected_runs

    scored = validated_runs(runs)
    chosen = selected_runs(scored) if scored else {}
    out = []
    for r in runs:
        if r.label not in chosen:
            chosen[r.label] = r
        if chosen[r.label] is r:
            out.append(r)
    return out


def default_names(named_runs: dict[str, store.Run]) -> list[str]:
    """Display names of :func:`default_selection` over ``named_runs`` (computed once: linear).

    Examples
    --------
    >>> default_names({})
    []
    """
    chosen = {id(r) for r in default_selection(list(named_runs.values()))}
    return [name for name, r in named_runs.items() if id(r) in chosen]


def validated_runs(runs: Sequence[store.Run]) -> list[store.Run]:
    """The runs that carry a validation AUROC (the ones a selection can choose among).

    Examples
    --------
    >>> validated_runs([])
    []
    """
    return [r for r in runs if validation_auroc(r) > float("-inf")]


def validation_auroc(run: store.Run) -> float:
    """The run's validation AUROC from ``metrics.json`` (``-inf`` when it has none).

    Examples
    --------
    >>> from pathlib import Path
    >>> validation_auroc(store.Run(Path("x"), "e", "x", {}, {"validation": {"auroc": 0.75}}))
    0.75
    """
    value = store.config_value(run.metrics, "validation.auroc")
    return float(value) if isinstance(value, (int, float)) else float("-inf")


@st.cache_data(show_spinner=False, max_entries=32)
def _bootstrap(key: tuple, paths: tuple[str, ...], names: tuple[str, ...], n: int, seed: int, by_corruption: bool,
               positive: str):
    frames = {name: pd.read_parquet(Path(p) / store.SCORES_FILE) for name, p in zip(names, paths)}
    aligned = align_scores(frames)
    overall = paired_bootstrap(aligned.scores, aligned.labels, n=n, seed=seed, positive=positive)
    per = None
    if by_corruption and "corruption" in aligned.items.columns and aligned.items["corruption"].nunique() > 1:
        per = per_group_bootstrap(
            aligned.scores, aligned.labels, aligned.items["corruption"].to_numpy(), n=n, seed=seed, positive=positive
        )
    return aligned, overall, per


def bootstrap(named_runs: dict[str, store.Run], n: int, seed: int, by_corruption: bool = True,
              positive: str = "anomaly"):
    """Aligned test scores, the overall bootstrap table and the per-corruption one (cached);
    ``positive``: the metric convention (the class counted as positive)."""
    names = tuple(named_runs)
    paths = tuple(str(r.path) for r in named_runs.values())
    key = tuple(_stamp(Path(p) / store.SCORES_FILE) for p in paths)
    return _bootstrap(key, paths, names, int(n), int(seed), by_corruption, positive)


def paper_for(runs: Sequence[store.Run]) -> pd.DataFrame | None:
    """The paper's Table I / IV for the runs' task (:func:`ogae_core.evaluation.paper_table`),
    ``None`` when the paper has none for it.

    Examples
    --------
    >>> paper_for([]) is None
    True
    """
    from ogae_core.evaluation.paper import paper_table, table_key_of_configs

    if not runs or table_key_of_configs(r.config for r in runs) is None:
        return None
    task = runs[0].config["task"]
    return paper_table(task["normal"], task["anomaly"])


def paper_beside(named_runs: dict[str, store.Run], overall: pd.DataFrame) -> pd.DataFrame | None:
    """Ours (the overall bootstrap estimates) beside the paper's Table I / IV for the runs' task,
    ``None`` when the paper has no table for it. ``attrs["table"]``: the paper's table number.

    Examples
    --------
    >>> paper_beside({}, pd.DataFrame(columns=["model", "metric", "estimate"])) is None
    True
    """
    from ogae_core.evaluation.paper import beside_paper, estimates

    paper = paper_for(list(named_runs.values()))
    if paper is None:
        return None
    side = beside_paper(estimates(overall), paper, labels={name: r.label for name, r in named_runs.items()})
    side.attrs["table"] = paper.attrs["table"]
    return side


def over_seeds(runs: Sequence[store.Run], show_paper: bool = True) -> pd.DataFrame | None:
    """Each row's validation-selected configuration as ``mean ± sd`` over its seeds, test AUPR and
    AUROC30 in both conventions, the paper's values beside them when ``show_paper`` and the paper
    has a table for the task (:func:`ogae_core.evaluation.run_metrics.seeds_beside_paper`); ``None``
    when no run has a validation AUROC.

    Examples
    --------
    >>> over_seeds([]) is None
    True
    """
    from ogae_core.evaluation.run_metrics import seeds_beside_paper
    from ogae_core.runs.selection import select_configurations

    scored = validated_runs(runs)
    if not scored:
        return None
    return seeds_beside_paper(scored, select_configurations(scored), paper_for(scored) if show_paper else None)


@st.cache_data(show_spinner=False, max_entries=16)
def _experiment_over_seeds(root: str, stamp: tuple, experiment: str, show_paper: bool) -> pd.DataFrame | None:
    runs = [r for r in load_runs(Path(root)) if r.experiment == experiment and r.has(store.SCORES_FILE)]
    return over_seeds(runs, show_paper)


def experiment_over_seeds(root: Path, experiment: str, show_paper: bool = True) -> pd.DataFrame | None:
    """:func:`over_seeds` of one experiment of the store (cached on the store's mtimes)."""
    return _experiment_over_seeds(str(root), store_stamp(root), experiment, show_paper)


# ----------------------------------------------------------------------------- brain MRI (page 5)
MRI_RUNS_HINT = ("Create brain-MRI runs with **`make demo`**, **`ogae bench mri --cohort smoke`** (or `--cohort "
                 "demo`, `--cohort default`), or point the sidebar at another runs directory.")


@st.cache_resource(show_spinner=False, max_entries=48)
def _mri_map(path: str, mtime: float):
    import nibabel as nib
    import numpy as np

    img = nib.load(path)
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


def mri_map(path: Path):
    """A NIfTI score map (float32 array, affine), cached on (path, mtime); the arrays are shared, read-only."""
    data, affine = _mri_map(str(path), _stamp(path))
    data.setflags(write=False)
    return data, affine


@st.cache_resource(show_spinner=False, max_entries=16)
def _mri_subject(cohort: str, options: tuple, subject_id: str):
    import numpy as np

    from ogae_core.data.mri import load_cohort

    c = load_cohort(cohort, build=False, **dict(options))
    v = c.subject(subject_id).load(verify=False)
    shape = c.grid.cropped_shape
    z = slice(v.z_start, v.z_start + v.t1.shape[2])
    out = {}
    for name, arr, fill in (("t1", v.t1, 0.0), ("lesion", v.lesion, False), ("brain", v.brain, False)):
        full = np.full(shape, fill, dtype=arr.dtype)
        full[:, :, z] = arr
        full.setflags(write=False)
        out[name] = full
    out["slab"] = (v.z_start, v.z_start + v.t1.shape[2] - 1)
    return out


def mri_subject(run: store.Run, subject_id: str) -> dict | None:
    """T1, lesion and brain of a run's subject on the full grid (cached), or ``None`` when the
    run's cohort is not on this machine (build it with ``ogae data mri --cohort NAME``)."""
    options = tuple(sorted((run.config.get("cohort_options") or {}).items()))
    try:
        return _mri_subject(str(run.config.get("cohort")), options, subject_id)
    except (FileNotFoundError, KeyError, ValueError):
        return None
