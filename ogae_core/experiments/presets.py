"""Presets of the MNIST-C benchmark: ``smoke``, ``quick`` and ``paper``.

A preset is a list of table rows (method, scoring) with a hyperparameter grid each, a number
of epochs, seeds and how much of the task is used. :func:`preset_configs` expands it into
:class:`~ogae_core.experiments.mnistc.RunConfig` objects (grid x seeds).

``smoke``
    Tests and CI: the first 2,000 MNIST training images (333 test images), 400 training
    items, 120 validation and 180 test items, 1 epoch (1 pretraining epoch for Deep SVDD),
    three rows (AE-recons, OgAE-ocsvm with nu = 0.1 so that the 40-image hold-out can hold
    an OCSVM batch, H-DSVDD). Seconds.
``quick``
    The demo (``make demo``): OgAE-ocsvm, AE-recons, AE-ocsvm and hard-boundary Deep SVDD with
    default hyperparameters, on a stratified subsample of the full task (3,000 training
    items, 3,000 validation and 6,000 test items), 6 epochs (OgAE: expander for the first
    half, then both; Deep SVDD: 3 pretraining epochs). Runtime: see README.md, "Measured runtimes".
``reduced``
    The ``paper`` protocol (all twelve rows, full task, 20 epochs) on a grid that fits a
    2-core CPU in well under an hour per digit pair and seed: every method's training
    hyperparameters at their defaults (OgAE's are the fidelity ablation's validation-selected
    setting, see :mod:`ogae_core.methods.ogae`) and the full final-OCSVM grid (which shares the
    trainings). 8 trainings per pair and seed; seeds 0, 1, 2.
``paper``
    All twelve rows of Table I on the full task, 20 epochs, seeds 0, 1, 2, hyperparameters
    chosen on the validation split from :data:`PAPER_GRIDS`. The supplementary S-C lists
    the swept quantities (KL weight, similarity weight, lambda, DSPSVDD gamma, DVAESVDD alpha,
    OgAE strategy; nu, gamma_RBF and latent scaling of every OCSVM) but not their values, so
    the grids below are ours: mostly three-point logarithmic grids around this project's
    defaults (OgAE's guidance grid spans both regimes of
    :data:`~ogae_core.methods.GUIDANCE_REGIMES`, the authors' released defaults and the
    project's earlier ones) — documented, not the paper's.
``ablation`` / ``ablation-smoke``
    The fidelity ablation of issue 12 (OgAE-ocsvm and AE-ocsvm, factors one at a time and
    together; see :data:`ABLATION_CELLS` and :func:`ablation_preset`) and a seconds-long
    version of it for tests and CI.

A row of a preset is ``(method, scoring)`` or ``(method, scoring, cell)``: the cell names a
variant of the row, shown in its label (``"ogae-ocsvm [authors]"``), so that the report
selects within each variant instead of across them.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ogae_core.experiments.mnistc_config import RunConfig, TaskSpec, default_label
from ogae_core.methods import get_method

Grid = Mapping[str, Sequence[Any]]

#: Grid of the final OCSVM on the latent codes (every -ocsvm row). ``"scale"`` is
#: scikit-learn's rule (``1 / (d Var z)``: 1/32 on standardized codes), the authors' choice.
OCSVM_GRID: dict[str, list] = {"ocsvm_nu": [0.03, 0.1], "ocsvm_gamma": [1e-2, 1e-1, "scale"],
                               "ocsvm_standardize": [True, False]}
#: The final-OCSVM grid before ``"scale"`` was added (factor F3 of the ablation compares the two).
OCSVM_GRID_WITHOUT_SCALE: dict[str, list] = {"ocsvm_nu": [0.03, 0.1], "ocsvm_gamma": [1e-2, 1e-1],
                                             "ocsvm_standardize": [True, False]}

#: The ``paper`` preset's grids, one per row of Table I (see the module docstring).
PAPER_GRIDS: dict[tuple[str, str], dict[str, list]] = {
    ("ae", "recons"): {},
    ("ae", "ocsvm"): dict(OCSVM_GRID),
    ("vae", "recons"): {"kl_weight": [1e-4, 1e-3, 1e-2]},
    ("vae", "ocsvm"): {"kl_weight": [1e-4, 1e-3, 1e-2], **OCSVM_GRID},
    ("sae", "recons"): {"similarity_weight": [0.01, 0.1, 1.0]},
    ("sae", "ocsvm"): {"similarity_weight": [0.01, 0.1, 1.0], **OCSVM_GRID},
    ("ogae", "recons"): {"lam": [1e-3, 1e-2, 1e-1], "strategy": ["expander-then-both", "both"]},
    ("ogae", "ocsvm"): {"lam": [1e-2, 1e-1], "strategy": ["expander-then-both", "both"],
                        "nu": [0.03, 0.1], "gamma": [1e-2, "scale", 1e-1], "standardize": [True, "each"],
                        **OCSVM_GRID},
    ("h-dsvdd", "svdd"): {},
    ("s-dsvdd", "svdd"): {"nu": [0.05, 0.1, 0.2]},
    ("dspsvdd", "svdd"): {"svdd_weight": [1.0, 10.0, 100.0]},
    ("dvaesvdd", "svdd"): {"svdd_weight": [0.03125, 0.3125, 3.125]},
}


#: The ``reduced`` preset's grids: every row of Table I, each method's training
#: hyperparameters at their defaults (OgAE's: the ablation's validation-selected setting); the
#: final-OCSVM grid in full (it shares the training, so it costs no training time).
REDUCED_GRIDS: dict[tuple[str, str], dict[str, list]] = {
    ("ae", "recons"): {},
    ("ae", "ocsvm"): dict(OCSVM_GRID),
    ("vae", "recons"): {},
    ("vae", "ocsvm"): dict(OCSVM_GRID),
    ("sae", "recons"): {},
    ("sae", "ocsvm"): dict(OCSVM_GRID),
    ("ogae", "recons"): {},
    ("ogae", "ocsvm"): dict(OCSVM_GRID),
    ("h-dsvdd", "svdd"): {},
    ("s-dsvdd", "svdd"): {},
    ("dspsvdd", "svdd"): {},
    ("dvaesvdd", "svdd"): {},
}


#: The factors of the fidelity ablation (issue 12), each with its project value first:
#: F2 the guidance regime, F4 the early-stopping criterion, F5 the LeakyReLU slope. F3, the
#: final-OCSVM grid without / with ``"scale"``, costs no training: every cell is scored on
#: the whole :data:`ABLATION_OCSVM_GRID` and the analysis selects within either subset.
ABLATION_FACTORS: dict[str, dict[str, dict]] = {
    "guidance": {
        "project": {"guidance": "project", "lam": 1e-2, "nu": 0.03, "gamma": 1e-2, "standardize": True},
        "authors": {"guidance": "authors", "lam": 0.1, "nu": 0.03, "gamma": "scale", "standardize": "each"},
        # the authors' regime with the project's constant-statistics standardization
        "authors-std-shared": {"guidance": "authors", "lam": 0.1, "nu": 0.03, "gamma": "scale", "standardize": True},
    },
    "early_stopping": {"phase": {"early_stopping": "phase"}, "run": {"early_stopping": "run"}},
    "slope": {"0.01": {"negative_slope": 0.01}, "0.3": {"negative_slope": 0.3}},
}
#: Cells of the ablation: ``{name: {factor: level}}``. ``project`` is the baseline; the others
#: change one factor (or, ``all``, every factor towards the authors' code). Every factor is
#: written out in every cell, so a cell's runs keep their meaning when defaults change.
ABLATION_CELLS: dict[str, dict[str, str]] = {
    "project": {"guidance": "project", "early_stopping": "phase", "slope": "0.01"},
    "authors": {"guidance": "authors", "early_stopping": "phase", "slope": "0.01"},
    "authors-std-shared": {"guidance": "authors-std-shared", "early_stopping": "phase", "slope": "0.01"},
    "one-es": {"guidance": "project", "early_stopping": "run", "slope": "0.01"},
    "slope-0.3": {"guidance": "project", "early_stopping": "phase", "slope": "0.3"},
    "all": {"guidance": "authors", "early_stopping": "run", "slope": "0.3"},
}
#: Cells of each ablated row. AE-ocsvm has one phase (per-phase and one-criterion early
#: stopping train the same network) and no guidance, so only the slope applies to it.
ABLATION_ROWS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ogae", "ocsvm"): tuple(ABLATION_CELLS),
    ("ae", "ocsvm"): ("project", "slope-0.3"),
}
#: OgAE's schedule in every ablation cell (``switch_epoch`` follows ``--epochs``).
ABLATION_SCHEDULE: dict[str, Any] = {"strategy": "expander-then-both", "switch_epoch": 10}
#: The ablation's final-OCSVM grid: :data:`OCSVM_GRID` (it contains
#: :data:`OCSVM_GRID_WITHOUT_SCALE`, factor F3's "without").
ABLATION_OCSVM_GRID: dict[str, list] = dict(OCSVM_GRID)
#: Digit pairs of the ablation (one experiment directory each, ``mnistc-3v4-ablation``...).
ABLATION_PAIRS: tuple[tuple[int, int], ...] = ((3, 4), (3, 8))


def ablation_cell_hyperparameters(method: str, cell: str) -> dict[str, Any]:
    """Fixed hyperparameters of an ablation cell for ``method`` (guidance settings only for
    methods that have them, i.e. whose config knows ``guidance``).

    Examples
    --------
    >>> ablation_cell_hyperparameters("ae", "all")
    {'early_stopping': 'run', 'negative_slope': 0.3}
    >>> ablation_cell_hyperparameters("ogae", "authors")["gamma"]
    'scale'
    """
    from ogae_core.methods import hyperparameter_names

    if cell not in ABLATION_CELLS:
        raise ValueError(f"unknown ablation cell {cell!r}; choose one of {sorted(ABLATION_CELLS)}")
    guided = "guidance" in hyperparameter_names(method)
    # the schedule is pinned too (expander for the first half, then expander + compactor)
    hp: dict[str, Any] = dict(ABLATION_SCHEDULE) if guided else {}
    for factor, level in ABLATION_CELLS[cell].items():
        if factor == "guidance" and not guided:
            continue
        hp.update(ABLATION_FACTORS[factor][level])
    return hp


def ablation_rows(smoke: bool = False) -> dict[tuple[str, str, str], Grid]:
    """The rows ``(method, scoring, cell)`` of the ablation preset with their grids.

    The cell's fixed settings are one-point grid entries (so they enter the run config and
    the run id), the final-OCSVM grid is swept. ``smoke``: nu = 0.1 for OgAE (the smoke
    task's 40-image hold-out must hold one OCSVM batch) and a two-point final-OCSVM grid.

    Examples
    --------
    >>> rows = ablation_rows()
    >>> len(rows), rows[("ae", "ocsvm", "slope-0.3")]["negative_slope"]
    (8, [0.3])
    """
    ocsvm = {"ocsvm_nu": [0.1], "ocsvm_gamma": [0.1, "scale"], "ocsvm_standardize": [True]} if smoke \
        else ABLATION_OCSVM_GRID
    rows: dict[tuple[str, str, str], Grid] = {}
    for (method, scoring), cells in ABLATION_ROWS.items():
        for cell in cells:
            hp = ablation_cell_hyperparameters(method, cell)
            if smoke and "nu" in hp:
                hp.update(nu=0.1, switch_epoch=1)
            rows[(method, scoring, cell)] = {**{k: [v] for k, v in hp.items()}, **ocsvm}
    return rows


@dataclass(frozen=True)
class Preset:
    """A named benchmark setting.

    Attributes
    ----------
    name : str
    rows : dict
        ``{(method, scoring): grid}`` or ``{(method, scoring, cell): grid}`` (a named variant
        of the row, labelled ``"method-scoring [cell]"``); a grid maps hyperparameter names
        to candidate values.
    epochs : int
    seeds : tuple of int
    task : dict
        :class:`TaskSpec` fields other than the digits (subsampling).
    common : dict
        Hyperparameters given to every row (e.g. batch size).
    per_method : dict
        Extra fixed hyperparameters per method (e.g. Deep SVDD pretraining epochs).
    latent_sample : int
        Items embedded by UMAP per run.
    """

    name: str
    rows: Mapping[tuple[str, str], Grid]
    epochs: int
    seeds: tuple[int, ...] = (0,)
    task: Mapping[str, Any] = field(default_factory=dict)
    common: Mapping[str, Any] = field(default_factory=dict)
    per_method: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    latent_sample: int = 2000


_SMOKE_TASK = {"mnist_limit": 2000, "max_train": 400, "max_validation": 120, "max_test": 180}

PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        "smoke",
        rows={("ae", "recons"): {}, ("ogae", "ocsvm"): {}, ("h-dsvdd", "svdd"): {}},
        epochs=1,
        task=dict(_SMOKE_TASK),
        per_method={"h-dsvdd": {"pretrain_epochs": 1}, "ogae": {"switch_epoch": 0, "nu": 0.1}},
        latent_sample=120,
    ),
    "quick": Preset(
        "quick",
        rows={("ogae", "ocsvm"): {}, ("ae", "recons"): {}, ("ae", "ocsvm"): {}, ("h-dsvdd", "svdd"): {}},
        epochs=6,
        task={"max_train": 3000, "max_validation": 3000, "max_test": 6000},
        per_method={"h-dsvdd": {"pretrain_epochs": 3}, "ogae": {"switch_epoch": 3}},
        latent_sample=1500,
    ),
    "paper": Preset("paper", rows=PAPER_GRIDS, epochs=20, seeds=(0, 1, 2)),
    "reduced": Preset("reduced", rows=REDUCED_GRIDS, epochs=20, seeds=(0, 1, 2)),
    # 48 trainings per run of both pairs (see ABLATION_CELLS): per pair, OgAE-ocsvm 6 cells x 3
    # seeds + AE-ocsvm 2 cells x 3 seeds = 24 trainings, each scored on the 12-point final grid
    "ablation": Preset("ablation", rows=ablation_rows(), epochs=20, seeds=(0, 1, 2), latent_sample=1000),
    "ablation-smoke": Preset("ablation-smoke", rows=ablation_rows(smoke=True), epochs=2, seeds=(0,),
                             task=dict(_SMOKE_TASK), latent_sample=120),
}


def expand_grid(grid: Grid) -> list[dict[str, Any]]:
    """Every combination of a grid, in a stable order.

    Examples
    --------
    >>> expand_grid({"a": [1, 2], "b": ["x"]})
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
    >>> expand_grid({})
    [{}]
    """
    keys = list(grid)
    for k in keys:
        if isinstance(grid[k], (str, bytes)) or not isinstance(grid[k], Sequence) or len(grid[k]) == 0:
            raise ValueError(f"grid entry {k!r} must be a non-empty list of values; got {grid[k]!r}")
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (``ValueError`` naming the valid ones)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def preset_configs(preset: str | Preset, normal: int = 3, anomaly: int = 8, *, methods: Sequence[str] | None = None,
                   seeds: Sequence[int] | None = None, epochs: int | None = None,
                   train_corruptions: Sequence[str] | None = None, test_corruptions: Sequence[str] | None = None,
                   task_overrides: Mapping[str, Any] | None = None) -> list[RunConfig]:
    """Expand a preset into run configurations (grid x seeds).

    Parameters
    ----------
    preset : str or Preset
    normal, anomaly : int
    methods : sequence of str, optional
        Keep only these rows, named by label (``"ogae-ocsvm"``, ``"h-dsvdd"``) or method (``"ae"``).
    seeds, epochs : optional
        Override the preset's seeds / epochs.
    train_corruptions, test_corruptions : sequence of str, optional
    task_overrides : mapping, optional
        Other :class:`TaskSpec` fields (e.g. ``{"max_test": 1000}``).

    Examples
    --------
    >>> [c.label for c in preset_configs("quick")]
    ['ogae-ocsvm', 'ae-recons', 'ae-ocsvm', 'h-dsvdd']
    >>> len(preset_configs("paper", methods=["ae-ocsvm"], seeds=[0]))
    12
    >>> len({c.training_key() for c in preset_configs("ablation", 3, 4)})
    24
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    task_kwargs = {**p.task, **dict(task_overrides or {})}
    if train_corruptions is not None:
        task_kwargs["train_corruptions"] = tuple(train_corruptions)
    if test_corruptions is not None:
        task_kwargs["test_corruptions"] = tuple(test_corruptions)
    spec = TaskSpec(normal=normal, anomaly=anomaly, **task_kwargs)
    n_epochs = p.epochs if epochs is None else int(epochs)
    rows = list(p.rows.items())
    if methods is not None:
        wanted = set(methods)
        names = [{row_label(k), default_label(*k[:2]), k[0]} for k, _ in rows]
        unknown = wanted - set().union(*names)
        if unknown:
            raise ValueError(f"preset {p.name!r} has no row(s) {sorted(unknown)}; it has {sorted(set().union(*names))}")
        rows = [row for row, n in zip(rows, names) if n & wanted]
    configs = []
    for key, grid in rows:
        method, scoring = key[:2]
        expand_grid(grid)  # checks every entry
        # the preset's fixed values and the grid's one-point entries (e.g. an ablation cell's settings)
        fixed = {**p.common, **p.per_method.get(method, {}), **{k: v[0] for k, v in grid.items() if len(v) == 1}}
        if epochs is not None:  # epoch-dependent hyperparameters follow (the method says how)
            fixed = get_method(method).scale_with_epochs(fixed, n_epochs)
        for point in expand_grid({k: v for k, v in grid.items() if len(v) > 1}):
            hp = {**fixed, **point}
            for seed in (p.seeds if seeds is None else seeds):
                configs.append(RunConfig(method, scoring, seed=int(seed), epochs=n_epochs, hyperparameters=hp,
                                         task=spec, label=row_label(key), latent_sample=p.latent_sample))
    return configs


def row_label(key: Sequence[str]) -> str:
    """Label of a preset row ``(method, scoring)`` or ``(method, scoring, cell)``.

    Examples
    --------
    >>> row_label(("ogae", "ocsvm")), row_label(("ogae", "ocsvm", "authors"))
    ('ogae-ocsvm', 'ogae-ocsvm [authors]')
    """
    if len(key) not in (2, 3):
        raise ValueError(f"a preset row is (method, scoring) or (method, scoring, cell); got {tuple(key)!r}")
    label = default_label(key[0], key[1])
    return label if len(key) == 2 else f"{label} [{key[2]}]"


def experiment_name(preset: str, normal: int = 3, anomaly: int = 8) -> str:
    """Default experiment directory of a preset: ``mnistc-3v8-quick``.

    Examples
    --------
    >>> experiment_name("quick")
    'mnistc-3v8-quick'
    """
    return f"mnistc-{normal}v{anomaly}-{preset}"


#: OgAE guidance strategies compared in notebook 02 (the paper's Fig. 6 and its strategy study).
GUIDANCE_STRATEGIES = ("expander-then-compactor", "expander-then-both", "both", "compactor")


def guidance_configs(normal: int = 3, anomaly: int = 8, *, strategies: Sequence[str] = GUIDANCE_STRATEGIES,
                     epochs: int = 20, switch_epoch: int = 10, seeds: Sequence[int] = (0,), smoke: bool = False,
                     hyperparameters: Mapping[str, Any] | None = None,
                     task_overrides: Mapping[str, Any] | None = None) -> list[RunConfig]:
    """OgAE-ocsvm runs that differ only in the guidance strategy (notebook 02).

    ``expander-then-compactor`` is the paper's Fig. 6 experiment: expander only for
    ``switch_epoch`` epochs, then compactor only. ``smoke`` uses the smoke preset's task, at most 2
    epochs and nu = 0.1 (``task_overrides`` then do not apply).

    Examples
    --------
    >>> [c.label for c in guidance_configs(strategies=["both", "compactor"])]
    ['ogae-ocsvm [both]', 'ogae-ocsvm [compactor]']
    """
    from ogae_core.methods import STRATEGIES

    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategy {unknown}; choose from {STRATEGIES}")
    task = TaskSpec(normal=normal, anomaly=anomaly, **(PRESETS["smoke"].task if smoke else dict(task_overrides or {})))
    if smoke:
        epochs, switch_epoch = min(epochs, 2), min(switch_epoch, 1)
    hp = dict(hyperparameters or {})
    if smoke:
        hp.setdefault("nu", 0.1)  # the smoke task's 40-image hold-out must hold one OCSVM batch
    return [RunConfig("ogae", "ocsvm", seed=int(seed), epochs=epochs,
                      hyperparameters={**hp, "strategy": s, "switch_epoch": switch_epoch},
                      task=task, label=f"ogae-ocsvm [{s}]", latent_sample=120 if smoke else 1000)
            for s in strategies for seed in seeds]
