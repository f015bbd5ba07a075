"""The run store: one directory per trained configuration, written atomically.

Layout::

    <root>/<experiment>/<run-id>/
        config.json        full resolved config + provenance (code version, seed, library
                           versions, data hash, creation time)
        model.safetensors  weights (optional; written by the caller through ``RunWriter.path``
                           or ``RunWriter.write_model``)
        history.parquet    one row per epoch (column ``epoch`` required)
        scores.parquet     one row per scored item (``score``, ``label`` required)
        metrics.json       summary metrics (free-form JSON object)
        latents.parquet    optional 2-D embedding of latent codes (``umap_x``, ``umap_y`` + metadata)
        FINISHED           marker written last (creation time), before the atomic rename

A run is *finished* when its directory sits at its final name and holds ``FINISHED``. Runs are
assembled in a hidden temporary directory ``<root>/<experiment>/.tmp-<run-id>-<random>`` and
renamed into place with one ``os.rename`` (atomic on POSIX within one file system). A crash
mid-write leaves only the hidden directory, which no listing returns; :func:`partial_runs`
finds such leftovers and :func:`remove_partial_run` deletes one on request. A finished run is
never overwritten (``FileExistsError``).

This module is pure I/O (json, pandas/pyarrow, safetensors.numpy); it never imports torch or
the training code, so the dashboard can use it.

Column conventions
------------------
scores.parquet
    ``score`` (float, higher = more anomalous), ``label`` (1 = anomaly), optional ``split``
    (``"test"`` / ``"validation"``; rows without it count as test), ``item`` (position in the
    split), ``digit``, ``corruption``, ``source_index``.
history.parquet
    The rows of ``ogae_core.train`` (``epoch`` required): ``phase``, ``phase_epoch``,
    ``train_loss``, ``val_loss``, ``loss_<term>`` (``reconstruction``, ``kl``, ``similarity``,
    ``svdd``, ``guidance``, ``expander``, ``compactor``), ``latent_spread``,
    ``misclassified_fraction``, ``n_support``, ``sv_fraction``, ``rho``,
    ``solver_iterations``, ``expander_weight``, ``compactor_weight``, ``seconds``; NaN where a
    quantity does not apply to the method.
latents.parquet
    ``umap_x``, ``umap_y`` and metadata (``label``, ``digit``, ``corruption``, ``split``).
"""

from ogae_core.runs.claims import Claim, claim_path, holder, live_claims, release_claim, try_claim
from ogae_core.runs.compare import StoreComparison, compare_stores, strip_wall_clock
from ogae_core.runs.layout import (
    CONFIG_FILE,
    FINISHED,
    HISTORY_FILE,
    LATENTS_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUNS_ENV,
    SCORES_COLUMNS,
    SCORES_FILE,
    TMP_PREFIX,
    default_root,
)
from ogae_core.runs.provenance import code_version, config_hash, library_versions, provenance, run_id
from ogae_core.runs.reader import (
    Run,
    config_value,
    experiment_kinds,
    filter_runs,
    flatten_mapping,
    is_finished,
    list_experiments,
    list_runs,
    partial_runs,
    read_run,
    remove_partial_run,
    run_exists,
    runs_table,
)
from ogae_core.runs.writer import RunWriter, create_run

__all__ = [
    "CONFIG_FILE",
    "FINISHED",
    "HISTORY_FILE",
    "LATENTS_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "RUNS_ENV",
    "SCORES_COLUMNS",
    "SCORES_FILE",
    "TMP_PREFIX",
    "Claim",
    "Run",
    "RunWriter",
    "StoreComparison",
    "claim_path",
    "code_version",
    "compare_stores",
    "config_hash",
    "config_value",
    "create_run",
    "default_root",
    "experiment_kinds",
    "filter_runs",
    "flatten_mapping",
    "holder",
    "is_finished",
    "library_versions",
    "list_experiments",
    "list_runs",
    "live_claims",
    "partial_runs",
    "provenance",
    "read_run",
    "release_claim",
    "remove_partial_run",
    "run_exists",
    "run_id",
    "runs_table",
    "strip_wall_clock",
    "try_claim",
]
