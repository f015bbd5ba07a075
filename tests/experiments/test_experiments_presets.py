"""Presets: the fidelity ablation's cells, counts and labels; rows with a cell name."""
from __future__ import annotations

from collections import Counter

import pytest

from ogae_core.experiments import preset_configs
from ogae_core.experiments.presets import (
    ABLATION_CELLS,
    ABLATION_FACTORS,
    ABLATION_OCSVM_GRID,
    ABLATION_ROWS,
    OCSVM_GRID_WITHOUT_SCALE,
    Preset,
    ablation_cell_hyperparameters,
    expand_grid,
    row_label,
)
from ogae_core.methods import OgAEConfig, hyperparameter_names


def _by_training(configs):
    out: dict[str, list] = {}
    for c in configs:
        out.setdefault(c.training_key(), []).append(c)
    return out


def test_ablation_counts_cells_and_shared_scorings():
    configs = preset_configs("ablation", 3, 4)
    trainings = _by_training(configs)
    n_cells = sum(len(cells) for cells in ABLATION_ROWS.values())
    assert len(trainings) == n_cells * 3 == 24  # 48 over the two digit pairs
    n_grid = len(expand_grid(ABLATION_OCSVM_GRID))
    assert all(len(group) == n_grid for group in trainings.values())  # the final-OCSVM grid shares its training
    assert {c.epochs for c in configs} == {20} and {c.seed for c in configs} == {0, 1, 2}
    assert all(c.task.max_train is None and c.task.max_test is None for c in configs)  # the full task
    assert Counter(c.label for c in configs) == {f"{m}-{s} [{cell}]": 3 * n_grid
                                                for (m, s), cells in ABLATION_ROWS.items() for cell in cells}
    # factor F3: the grid without "scale" is a subset of the scored grid
    without = {tuple(sorted(p.items())) for p in expand_grid(OCSVM_GRID_WITHOUT_SCALE)}
    assert without < {tuple(sorted(p.items())) for p in expand_grid(ABLATION_OCSVM_GRID)}


def test_ablation_cells_differ_from_the_baseline_in_their_factors_only():
    base = ablation_cell_hyperparameters("ogae", "project")
    for cell, levels in ABLATION_CELLS.items():
        hp = ablation_cell_hyperparameters("ogae", cell)
        changed = {f for f, level in levels.items() if level != ABLATION_CELLS["project"][f]}
        keys = set().union(*(ABLATION_FACTORS[f][levels[f]] for f in changed)) if changed else set()
        assert {k for k in hp if hp[k] != base[k]} <= keys, cell
        OgAEConfig.from_dict({k: v for k, v in hp.items() if k in hyperparameter_names("ogae")})  # valid
    assert ablation_cell_hyperparameters("ogae", "authors")["standardize"] == "each"
    assert ablation_cell_hyperparameters("ogae", "authors-std-shared")["standardize"] is True
    assert "lam" not in ablation_cell_hyperparameters("ae", "all")  # no guidance for the AE
    with pytest.raises(ValueError, match="unknown ablation cell"):
        ablation_cell_hyperparameters("ogae", "nope")


def test_the_authors_cell_is_the_named_authors_regime():
    named = OgAEConfig(guidance="authors")
    hp = ablation_cell_hyperparameters("ogae", "authors")
    assert all(getattr(named, k) == hp[k] for k in ("lam", "nu", "gamma", "standardize"))
    project = OgAEConfig(guidance="project")
    hp = ablation_cell_hyperparameters("ogae", "project")
    assert all(getattr(project, k) == hp[k] for k in ("lam", "nu", "gamma", "standardize"))


def test_ablation_smoke_is_small_and_trains_both_ogae_phases():
    configs = preset_configs("ablation-smoke")
    assert len(_by_training(configs)) == sum(len(cells) for cells in ABLATION_ROWS.values())
    ogae = [c for c in configs if c.method == "ogae"]
    assert all(c.epochs == 2 and c.hyperparameters["switch_epoch"] == 1 and c.hyperparameters["nu"] == 0.1
               for c in ogae)
    # --epochs moves the pinned switch epoch with it
    assert {c.hyperparameters["switch_epoch"] for c in preset_configs("ablation", epochs=6)
            if c.method == "ogae"} == {3}


def test_methods_filter_accepts_cell_labels_and_row_labels():
    only = preset_configs("ablation", methods=["ogae-ocsvm [authors]"], seeds=[0])
    assert {c.label for c in only} == {"ogae-ocsvm [authors]"}
    assert {c.method for c in preset_configs("ablation", methods=["ae-ocsvm"], seeds=[0])} == {"ae"}
    with pytest.raises(ValueError, match="no row"):
        preset_configs("ablation", methods=["ogae-ocsvm [nope]"])


def test_row_label_and_bad_row_keys():
    assert row_label(("ae", "ocsvm", "x")) == "ae-ocsvm [x]"
    with pytest.raises(ValueError, match="a preset row is"):
        row_label(("ae",))
    bad = Preset("bad", rows={("ae", "ocsvm", "c", "d"): {}}, epochs=1)
    with pytest.raises(ValueError, match="a preset row is"):
        preset_configs(bad)


def test_paper_grid_sweeps_the_guidance_regime():
    from ogae_core.experiments import PAPER_GRIDS

    grid = PAPER_GRIDS[("ogae", "ocsvm")]
    assert "scale" in grid["gamma"] and "each" in grid["standardize"] and 0.1 in grid["lam"]
    assert "scale" in grid["ocsvm_gamma"]
