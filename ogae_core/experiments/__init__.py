"""Experiments: what the notebooks and the ``ogae bench`` / ``ogae report`` commands call.

run_mnistc, RunConfig, TaskSpec        one MNIST-C configuration end to end -> one run directory
preset_configs, PRESETS, PAPER_GRIDS   the smoke / quick / paper presets; guidance_configs (notebook 02)
run_sweep, SweepResult                 many configurations through submitit (local, SLURM, inline), resumable
select_configurations, selected_runs   hyperparameter selection on the validation split
benchmark_report, write_report         the paper's table with significance from finished runs
execute_notebooks                      papermill over notebooks/ into reports/ (ipynb + HTML)

Examples
--------
>>> from ogae_core.experiments import preset_configs
>>> len(preset_configs("smoke"))
3
"""
from ogae_core.experiments.mnistc import (RunConfig, TaskSpec, default_label, run_mnistc, run_training_group, split_metrics,
                                         stratified_subsample)
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
from ogae_core.experiments.report import BenchmarkReport, benchmark_report, paper_order, write_report
from ogae_core.experiments.selection import select_configurations, selected_runs, validation_table
from ogae_core.experiments.sweep import EXECUTORS, SweepResult, pending_configs, run_sweep, training_groups

__all__ = [
    "EXECUTORS", "GUIDANCE_STRATEGIES", "PAPER_GRIDS", "PRESETS", "BenchmarkReport", "NotebookParametersError", "Preset",
    "RunConfig", "SweepResult", "TaskSpec", "benchmark_report", "default_label", "execute_notebooks",
    "experiment_name", "get_preset", "guidance_configs", "parameters_cell", "paper_order", "pending_configs",
    "preset_configs", "run_mnistc", "run_sweep", "run_training_group", "training_groups", "select_configurations", "selected_runs", "split_metrics",
    "stratified_subsample", "validation_table", "write_report",
]
