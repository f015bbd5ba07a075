"""The fidelity ablation of Experiment 1 (issue 12): its experiments and its committed aggregate.

The ablation itself is two presets (:data:`~ogae_core.experiments.presets.PRESETS`
``"ablation"`` and ``"ablation-smoke"``, cells in
:data:`~ogae_core.experiments.presets.ABLATION_CELLS`) run by the usual resumable sweep, one
experiment per digit pair::

    ogae bench mnistc --preset ablation --normal 3 --anomaly 4 --jobs 2
    ogae bench mnistc --preset ablation --normal 3 --anomaly 8 --jobs 2

The run store is not in git, so :func:`write_aggregate` (``ogae ablation aggregate``) writes
what the analysis needs into a few small CSV files (no models, no per-item scores):

``runs.csv``
    One row per run: experiment, pair, label, row, cell, seed, the run's hyperparameters
    (``hp.<name>``), every validation / test metric (``validation.auroc``,
    ``test.per_corruption.stripe.auroc``..., and the normal-positive ones,
    ``test.normal_positive.aupr``..., recomputed from the scores for runs that predate them;
    :func:`split_blocks`), epochs run, early stopping, warnings.
``history.csv``
    One row per epoch of every training (the run that trained the network): phase, losses,
    latent spread, misclassified fraction of the per-batch OCSVM.
``bootstrap.csv``
    The paired bootstrap (:func:`ogae_core.evaluation.paired_bootstrap`, AUROC) of the
    selected runs of every row, per experiment and seed — the only part that needs the
    per-item scores, hence computed here.

:mod:`ogae_core.experiments.ablation_analysis` turns these into tables (pandas only).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from ogae_core.experiments.ablation_analysis import OCSVM_GRIDS, in_grid_without_scale, select_runs  # noqa: F401 - re-exported
from ogae_core.experiments.presets import ABLATION_PAIRS, experiment_name
from ogae_core.runs import flatten_mapping

#: Files of an aggregate (see the module docstring).
AGGREGATE_FILES = {"runs": "runs.csv", "history": "history.csv", "bootstrap": "bootstrap.csv"}
#: Where the committed aggregates live, relative to the source checkout.
DEFAULT_AGGREGATE_DIR = Path("results") / "ablation"
#: History columns kept in ``history.csv``.
HISTORY_KEEP = ("epoch", "phase", "phase_epoch", "train_loss", "val_loss", "loss_reconstruction", "loss_guidance",
                "latent_spread", "misclassified_fraction", "sv_fraction", "rho", "improved")
#: Metric columns of ``runs.csv`` come from ``metrics.json``'s splits; these other fields too.
RUN_FIELDS = ("epochs_run", "train_seconds", "trained_in", "training_key", "warnings")

_LABEL = re.compile(r"^(?P<row>[^\[]+?)(?: \[(?P<cell>[^\]]+)\])?$")


def default_aggregate_dir(smoke: bool = False) -> Path:
    """The committed aggregate of the source checkout: ``results/ablation`` (``smoke``:
    ``results/ablation/smoke``, written from the ``ablation-smoke`` presets).

    Examples
    --------
    >>> default_aggregate_dir(smoke=True).parts[-3:]
    ('results', 'ablation', 'smoke')
    """
    from ogae_core.checkout import source_checkout

    root = source_checkout()
    base = (root if root is not None else Path.cwd()) / DEFAULT_AGGREGATE_DIR
    return base / "smoke" if smoke else base


def ablation_experiments(smoke: bool = False) -> list[str]:
    """Experiment directories of the ablation (one per digit pair).

    Examples
    --------
    >>> ablation_experiments()
    ['mnistc-3v4-ablation', 'mnistc-3v8-ablation']
    >>> ablation_experiments(smoke=True)[0]
    'mnistc-3v4-ablation-smoke'
    """
    preset = "ablation-smoke" if smoke else "ablation"
    return [experiment_name(preset, n, a) for n, a in ABLATION_PAIRS]


def split_label(label: str) -> tuple[str, str]:
    """``("ogae-ocsvm", "authors")`` of ``"ogae-ocsvm [authors]"``; a label without a cell
    gives the cell ``"project"``.

    Examples
    --------
    >>> split_label("ogae-ocsvm [slope-0.3]"), split_label("ae-ocsvm")
    (('ogae-ocsvm', 'slope-0.3'), ('ae-ocsvm', 'project'))
    """
    m = _LABEL.match(label)
    if m is None:
        raise ValueError(f"cannot read a row and a cell from the label {label!r}")
    return m["row"], m["cell"] or "project"


def runs_frame(runs) -> pd.DataFrame:
    """The ``runs.csv`` table of finished runs (see the module docstring).

    Examples
    --------
    >>> runs_frame([]).empty
    True
    """
    rows = []
    for run in runs:
        row, cell = split_label(run.label)
        task = run.config.get("task", {})
        out = {"experiment": run.experiment, "pair": f"{task.get('normal')}v{task.get('anomaly')}",
               "run_id": run.run_id, "label": run.label, "row": row, "cell": cell, "seed": run.seed,
               "method": run.config.get("method"), "scoring": run.config.get("scoring"),
               "epochs": run.config.get("epochs")}
        out.update({f"hp.{k}": _cell_value(v) for k, v in sorted(run.config.get("hyperparameters", {}).items())})
        for split, block in split_blocks(run).items():
            out.update({f"{split}.{k}": v for k, v in flatten_mapping(block, lists="drop").items()})
        for key in RUN_FIELDS:
            value = run.metrics.get(key)
            out[key] = ";".join(value) if isinstance(value, list) else value
        out.update({f"stopped_early.{k}": v for k, v in run.metrics.get("stopped_early", {}).items()})
        out["code_version"] = run.config.get("provenance", {}).get("code_version")
        rows.append(out)
    return pd.DataFrame(rows)


def split_blocks(run) -> dict[str, dict]:
    """The validation and test blocks of a run's ``metrics.json``, each with its normal-positive
    metrics (``normal_positive``, also per corruption): recomputed from ``scores.parquet`` for
    runs written before ``metrics.json`` stored them (the anomaly-positive values are kept as
    stored). A run without scores keeps its blocks as they are.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> s = pd.DataFrame({"split": "test", "score": [0.1, 0.9, 0.2, 0.8], "label": [0, 1, 0, 1], "corruption": "a"})
    >>> run = SimpleNamespace(metrics={"test": {"auroc": 1.0, "per_corruption": {"a": {"auroc": 1.0}}}},
    ...                       scores=lambda: s)
    >>> b = split_blocks(run)["test"]
    >>> b["normal_positive"]["aupr"], b["per_corruption"]["a"]["normal_positive"]["aupr"]
    (1.0, 1.0)
    """
    from ogae_core.evaluation.run_metrics import NORMAL_POSITIVE_KEY, split_metrics

    blocks = {split: dict(run.metrics.get(split) or {}) for split in ("validation", "test")}
    stale = [s for s, b in blocks.items() if b and NORMAL_POSITIVE_KEY not in b]
    if not stale:
        return blocks
    try:
        scores = run.scores()
    except FileNotFoundError:
        return blocks
    for split in stale:
        fresh = split_metrics(scores[scores["split"] == split])
        block = blocks[split]
        block[NORMAL_POSITIVE_KEY] = fresh[NORMAL_POSITIVE_KEY]
        per = {c: dict(v) for c, v in (block.get("per_corruption") or {}).items()}
        for c, v in per.items():
            if c in fresh["per_corruption"]:
                v[NORMAL_POSITIVE_KEY] = fresh["per_corruption"][c][NORMAL_POSITIVE_KEY]
        block["per_corruption"] = per
    return blocks


def _cell_value(v):
    return ";".join(map(str, v)) if isinstance(v, (list, tuple)) else v


def history_frame(runs) -> pd.DataFrame:
    """The ``history.csv`` table: every epoch of every training, once per trained network.

    Examples
    --------
    >>> history_frame([]).empty
    True
    """
    frames = []
    for run in runs:
        if run.metrics.get("trained_in"):
            continue  # this run reused another run's network (same training)
        h = run.history()
        keep = [c for c in HISTORY_KEEP if c in h.columns]
        row, cell = split_label(run.label)
        frames.append(h[keep].assign(experiment=run.experiment, run_id=run.run_id, label=run.label, row=row,
                                     cell=cell, seed=run.seed, training_key=run.metrics.get("training_key")))
    if not frames:
        return pd.DataFrame(columns=["experiment", "run_id", "label", "row", "cell", "seed", "training_key",
                                     *HISTORY_KEEP])
    out = pd.concat(frames, ignore_index=True)
    lead = ["experiment", "run_id", "label", "row", "cell", "seed", "training_key"]
    return out[lead + [c for c in out.columns if c not in lead]]


def bootstrap_frame(runs, runs_table: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Paired bootstrap (AUROC) of the selected run of every label, per experiment and seed.

    The selected run of a label is its final-OCSVM point with the best mean validation AUROC
    over seeds (:func:`~ogae_core.experiments.ablation_analysis.select_runs`), on the grid with
    ``"scale"``; every seed's run of that point enters the bootstrap of its seed.
    """
    from ogae_core.evaluation import align_scores, paired_bootstrap

    if runs_table.empty:
        return pd.DataFrame()
    by_id = {r.run_id: r for r in runs}
    chosen = select_runs(runs_table)
    tables = []
    for (experiment, run_seed), group in chosen.groupby(["experiment", "seed"], sort=True):
        frames = {row.label: by_id[row.run_id].scores() for row in group.itertuples()}
        if len(frames) < 2:
            continue
        aligned = align_scores(frames, split="test")
        t = paired_bootstrap(aligned.scores, aligned.labels, n=n_boot, seed=seed, metrics=("auroc",))
        tables.append(t.assign(experiment=experiment, seed=run_seed))
    if not tables:
        return pd.DataFrame()
    out = pd.concat(tables, ignore_index=True)
    lead = ["experiment", "seed"]
    return out[lead + [c for c in out.columns if c not in lead]]


def write_aggregate(runs_root: str | Path | None = None, out_dir: str | Path = DEFAULT_AGGREGATE_DIR, *,
                    experiments: Sequence[str] | None = None, smoke: bool = False, n_boot: int = 1000,
                    seed: int = 0) -> dict[str, Path]:
    """Write the ablation's aggregate (``runs.csv``, ``history.csv``, ``bootstrap.csv``).

    Parameters
    ----------
    runs_root : path, optional
        Run store (default ``$OGAE_RUNS`` or ``./runs``).
    out_dir : path
        Folder of the CSV files (created; files replaced atomically).
    experiments : sequence of str, optional
        Default :func:`ablation_experiments` (``smoke`` picks the smoke ones); experiments
        without finished runs are skipped, none at all is a ``FileNotFoundError``.
    n_boot, seed : int
        Resamples and seed of the paired bootstrap.

    Returns
    -------
    dict
        ``{"runs": path, "history": path, "bootstrap": path}``.
    """
    from ogae_core.atomic import atomic_write_file
    from ogae_core.runs import default_root, list_runs

    root = Path(runs_root) if runs_root is not None else default_root()
    wanted = list(experiments) if experiments else ablation_experiments(smoke)
    runs = [r for exp in wanted for r in list_runs(root, exp)]
    if not runs:
        raise FileNotFoundError(f"no finished runs of {wanted} in {root}; run the ablation first "
                                f"(ogae bench mnistc --preset {'ablation-smoke' if smoke else 'ablation'} ...)")
    table = runs_frame(runs).sort_values(["experiment", "label", "seed", "run_id"], ignore_index=True)
    frames = {"runs": table, "history": history_frame(runs), "bootstrap": bootstrap_frame(runs, table, n_boot=n_boot,
                                                                                           seed=seed)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in frames.items():
        path = out / AGGREGATE_FILES[name]
        text = frame.to_csv(index=False, float_format="%.6g")
        atomic_write_file(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
        paths[name] = path
    return paths


def read_aggregate(folder: str | Path = DEFAULT_AGGREGATE_DIR) -> dict[str, pd.DataFrame]:
    """The three tables of an aggregate written by :func:`write_aggregate`.

    ``FileNotFoundError`` names the command that writes them.
    """
    folder = Path(folder)
    missing = [f for f in AGGREGATE_FILES.values() if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} has no {missing}; write it with `ogae ablation aggregate --out {folder}`")
    out = {}
    for name, f in AGGREGATE_FILES.items():
        try:
            out[name] = pd.read_csv(folder / f)
        except pd.errors.EmptyDataError:
            out[name] = pd.DataFrame()
    return out
