"""Hyperparameter selection on the validation split; lives in :mod:`ogae_core.runs.selection`
(it only reads run directories, so the dashboard uses it too) and is re-exported here."""
from ogae_core.runs.selection import SELECTION_METRICS, select_configurations, selected_runs, validation_table

__all__ = ["SELECTION_METRICS", "select_configurations", "selected_runs", "validation_table"]
