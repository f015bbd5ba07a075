"""Experiments: what the notebooks and the ``ogae bench`` / ``ogae report`` commands call.

ExperimentKind, register_kind, get_kind  the plug-in interface: one kind per experiment (MNIST-C first)
RunFinished, RunFailed                 typed outcome of one configuration of a sweep
run_mnistc, RunConfig, TaskSpec        one MNIST-C configuration end to end -> one run directory
preset_configs, PRESETS, PAPER_GRIDS   the smoke / quick / paper presets; guidance_configs (notebook 02)
run_sweep, SweepResult                 many configurations of any kind through submitit (local, SLURM, inline), resumable
StaleRunError                          a resumed sweep found runs made on other data or resolved settings (resume.py)
select_configurations, selected_runs   hyperparameter selection on the validation split
benchmark_report, write_report         the paper's table with significance from finished runs (+ the paper's numbers)
convention_check_runs                  which AUPR / AUROC30 definition reproduces the paper, from finished runs
experiment_report                      the report of any experiment, by its kind
execute_notebooks                      papermill over notebooks/ into reports/ (ipynb + HTML)
ablation, ablation_analysis (modules)  the fidelity ablation's aggregate (ogae ablation aggregate) and its tables

Examples
--------
>>> from ogae_core.experiments import preset_configs
>>> len(preset_configs("smoke"))
3
"""
from ogae_core.experiments.kinds import (
    ExperimentKind,
    RunFailed,
    RunFinished,
    RunOutcome,
    experiment_kind,
    experiment_report,
    get_kind,
    kind_names,
    kind_of,
    register_kind,
    unregister_kind,
)
from ogae_core.experiments.mnistc import run_mnistc, run_training_group
from ogae_core.experiments.mnistc_config import RunConfig, TaskSpec, default_label
from ogae_core.evaluation.run_metrics import seeds_beside_paper, split_metrics
from ogae_core.experiments.items import stratified_subsample
from ogae_core.experiments.notebooks import NotebookParametersError, execute_notebooks, parameters_cell
from ogae_core.experiments.presets import (
    GUIDANCE_STRATEGIES,
    PAPER_GRIDS,
    PRESETS,
    Preset,
    experiment_name,
    get_preset,
    guidance_configs,
    preset_configs,
)
from ogae_core.experiments.report import (
    BenchmarkReport,
    benchmark_report,
    convention_check_runs,
    paper_order,
    write_report,
)
from ogae_core.experiments.resume import StaleRunError
from ogae_core.experiments.sweep import EXECUTORS, SweepResult, pending_configs, run_sweep, training_groups
from ogae_core.runs.selection import SELECTION_METRICS, select_configurations, selected_runs, validation_table

__all__ = [
    "EXECUTORS", "GUIDANCE_STRATEGIES", "PAPER_GRIDS", "PRESETS", "SELECTION_METRICS", "BenchmarkReport",
    "ExperimentKind", "NotebookParametersError", "Preset", "RunConfig", "RunFailed", "RunFinished", "RunOutcome",
    "StaleRunError", "SweepResult", "TaskSpec", "benchmark_report", "convention_check_runs", "default_label", "execute_notebooks", "experiment_kind",
    "experiment_name", "experiment_report", "get_kind", "get_preset", "guidance_configs", "kind_names", "kind_of",
    "paper_order", "parameters_cell", "pending_configs", "preset_configs", "register_kind", "run_mnistc", "run_sweep",
    "run_training_group", "seeds_beside_paper", "select_configurations", "selected_runs", "split_metrics", "stratified_subsample",
    "training_groups", "unregister_kind", "validation_table", "write_report",
]
