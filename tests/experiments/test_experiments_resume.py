"""Resuming never reuses a finished run (or joins a claim) made on other data or resolved settings."""
from __future__ import annotations

import copy

import pytest

from ogae_core.experiments import run_sweep
from ogae_core.experiments.jobs import run_group_job
from ogae_core.experiments.resume import StaleRunError, check_finished_runs, current_fingerprint
from ogae_core.runs import create_run, is_finished, list_runs, release_claim, try_claim
from tests.experiments.toy_kind import KIND, ToyConfig


@pytest.fixture
def counter(tmp_path, monkeypatch):
    path = tmp_path / "counter.txt"
    monkeypatch.setenv("OGAE_TOY_COUNTER", str(path))
    return lambda: path.read_text().splitlines() if path.exists() else []


def test_finished_run_of_other_data_stops_the_sweep_before_any_job(tmp_path, counter, monkeypatch):
    old = [ToyConfig(shift=s) for s in (0.5, 1.0)]
    monkeypatch.setenv("OGAE_TOY_DATA", "cohort-v1")
    assert run_sweep(old, tmp_path, "exp", executor="inline", log=None).ok
    done = len(counter())
    monkeypatch.setenv("OGAE_TOY_DATA", "cohort-v2")  # the data behind the same configs changed
    with pytest.raises(StaleRunError) as err:
        run_sweep([*old, ToyConfig(shift=2.0)], tmp_path, "exp", executor="inline", log=None)
    message = str(err.value)
    stale = tmp_path / "exp" / old[0].run_id()
    assert str(stale) in message and "stored cohort-v1 vs current cohort-v2" in message
    assert "--experiment" in message and "--runs-root" in message and "delete" in message
    assert set(err.value.stale) == {tmp_path / "exp" / c.run_id() for c in old}
    assert len(counter()) == done  # nothing trained or written
    assert not is_finished(tmp_path / "exp" / ToyConfig(shift=2.0).run_id())
    assert len(list_runs(tmp_path, "exp")) == 2


def test_unchanged_data_resumes(tmp_path, counter, monkeypatch):
    monkeypatch.setenv("OGAE_TOY_DATA", "cohort-v1")
    run_sweep([ToyConfig(shift=0.5)], tmp_path, "exp", executor="inline", log=None)
    res = run_sweep([ToyConfig(shift=0.5), ToyConfig(shift=1.0)], tmp_path, "exp", executor="inline", log=None)
    assert res.ok and len(res.skipped) == 1 and len(res.finished) == 1


def test_job_refuses_a_stale_finished_member_of_its_group(tmp_path, counter, monkeypatch):
    """A run another process finished after the driver's check: the job stops before training."""
    a, b = ToyConfig(shift=0.5), ToyConfig(shift=1.0)  # one training (same seed)
    monkeypatch.setenv("OGAE_TOY_DATA", "cohort-v1")
    run_group_job(KIND.run_training_group, [a], str(tmp_path), "exp", time_limit_s=60)
    done = len(counter())
    monkeypatch.setenv("OGAE_TOY_DATA", "cohort-v2")
    with pytest.raises(StaleRunError, match="this job stopped before training"):
        run_group_job(KIND.run_training_group, [a, b], str(tmp_path), "exp", time_limit_s=60)
    assert len(counter()) == done and not is_finished(tmp_path / "exp" / b.run_id())
    assert not (tmp_path / "exp" / ".claims" / f"{a.training_key()}.json").exists()  # claim released


def test_claim_of_a_sweep_on_other_data_stops_the_sweep(tmp_path, counter):
    cfg = ToyConfig(shift=0.5)
    exp = tmp_path / "exp"
    claim = try_claim(exp, cfg.training_key(), 600, fingerprint="0123456789ab")  # held: this pid is alive
    try:
        with pytest.raises(StaleRunError, match="claimed by pid"):
            run_sweep([cfg], tmp_path, "exp", executor="inline", log=None)
    finally:
        release_claim(exp, cfg.training_key(), claim)
    assert counter() == []


def test_mri_run_of_an_older_cohort_is_refused(tmp_path):
    """An MRI run whose stored cohort key differs (e.g. the preset's slices changed) stops the sweep,
    before the cohort is built or anything trains."""
    from ogae_core.experiments.mri import MriConfig, data_hash, resolved_settings

    cfg = MriConfig("sae-loc", cohort="smoke")
    with create_run(tmp_path, "mri", cfg.to_dict(), seed=0, data_hash="smoke-0000000000000000",
                    run_id=cfg.run_id(), resolved_settings=resolved_settings(cfg)) as w:
        w.write_metrics({})
    with pytest.raises(StaleRunError, match=f"stored smoke-0000000000000000 vs current {data_hash(cfg)}"):
        run_sweep([cfg], tmp_path, "mri", executor="inline", log=None)


def test_mri_preset_settings_are_compared(tmp_path, monkeypatch):
    from ogae_core.experiments.mri import MriConfig, data_hash, resolved_settings
    from ogae_core.volumes import get_volume_method

    cfg = MriConfig("sae-loc", cohort="smoke")
    with create_run(tmp_path, "mri", cfg.to_dict(), seed=0, data_hash=data_hash(cfg), run_id=cfg.run_id(),
                    resolved_settings=resolved_settings(cfg)) as w:
        w.write_metrics({})
    check_finished_runs([cfg], tmp_path / "mri")  # unchanged: fine
    cls = get_volume_method("sae-loc")
    changed = copy.deepcopy(cls.PRESET_PARAMS)
    changed["smoke"]["epochs"] += 1
    monkeypatch.setattr(cls, "PRESET_PARAMS", changed)
    with pytest.raises(StaleRunError, match="resolved settings stored"):
        check_finished_runs([cfg], tmp_path / "mri")


def test_mri_data_hash_covers_the_cohort_content(monkeypatch):
    """Slices, subject counts and site_balanced of a preset all change the MRI data hash."""
    from ogae_core.data.mri import build, manifest
    from ogae_core.experiments.mri import MriConfig

    base = current_fingerprint(MriConfig("wm-prior", cohort="demo")).data_hash
    assert current_fingerprint(MriConfig("wm-prior", cohort="demo", seed=3)).data_hash == base  # training seed
    assert current_fingerprint(MriConfig("wm-prior", cohort="demo",
                                         cohort_options={"site_balanced": True})).data_hash != base
    real = manifest.cohorts_manifest()
    for change in ("slices", "counts"):
        m = copy.deepcopy(real)
        demo = m["presets"]["demo"]
        if change == "slices":
            demo["slab"]["slices"] = demo["slab"]["slices"] + 1
        else:
            role = next(iter(demo["counts"]))
            demo["counts"][role] += 1
        monkeypatch.setattr(manifest, "cohorts_manifest", lambda m=m: m)
        monkeypatch.setattr(build, "cohorts_manifest", lambda m=m: m)
        assert current_fingerprint(MriConfig("wm-prior", cohort="demo")).data_hash != base, change


def test_kinds_without_hooks_are_not_compared(tmp_path, monkeypatch):
    from dataclasses import replace

    from ogae_core.experiments import register_kind

    register_kind(replace(KIND, data_hash=None), replace=True)
    try:
        monkeypatch.setenv("OGAE_TOY_DATA", "x")
        run_group_job(KIND.run_training_group, [ToyConfig()], str(tmp_path), "exp", time_limit_s=60)
        monkeypatch.setenv("OGAE_TOY_DATA", "y")
        check_finished_runs([ToyConfig()], tmp_path / "exp")  # no hook: nothing to compare
    finally:
        register_kind(KIND, replace=True)


def test_mnistc_run_trained_under_other_method_defaults_is_refused(tmp_path, monkeypatch):
    """OgAE's defaults (guidance regime, slope, early stopping) are not in the run id: a run that
    stored other ones -- or none, as runs of earlier versions did -- is not reused."""
    from ogae_core.experiments import preset_configs
    from ogae_core.experiments.mnistc import data_hash, resolved_settings
    from ogae_core.methods.ogae import OgAE

    cfg = preset_configs("smoke", methods=["ogae-ocsvm"])[0]
    assert resolved_settings(cfg) == {"early_stopping": "run", "guidance": "authors", "negative_slope": 0.3}
    digest = data_hash(cfg)
    with create_run(tmp_path, "mnist", cfg.to_dict(), seed=0, data_hash=digest,
                    resolved_settings=resolved_settings(cfg)) as w:
        w.write_metrics({})
    check_finished_runs([cfg], tmp_path / "mnist")  # the same defaults: reused
    monkeypatch.setattr(OgAE, "network_defaults", {"negative_slope": 0.01})
    with pytest.raises(StaleRunError, match="resolved settings stored"):
        check_finished_runs([cfg], tmp_path / "mnist")
    monkeypatch.undo()
    old = preset_configs("smoke", methods=["ogae-ocsvm"], seeds=[1])[0]
    with create_run(tmp_path, "mnist", old.to_dict(), seed=1, data_hash=digest) as w:  # stored no settings
        w.write_metrics({})
    with pytest.raises(StaleRunError, match="resolved settings stored"):
        check_finished_runs([old], tmp_path / "mnist")
    ae = preset_configs("smoke", methods=["ae-recons"])[0]
    with create_run(tmp_path, "mnist", ae.to_dict(), seed=0, data_hash=digest) as w:  # AE has no such defaults
        w.write_metrics({})
    check_finished_runs([ae], tmp_path / "mnist")


def test_mri_ogae_guidance_default_is_compared(tmp_path, monkeypatch):
    from ogae_core.experiments.mri import MriConfig, data_hash, resolved_settings

    cfg = MriConfig("ogae-loc", cohort="smoke")
    assert resolved_settings(cfg)["method_params.guidance"] == "authors"
    assert "method_params.guidance" not in resolved_settings(
        MriConfig("ogae-loc", cohort="smoke", hyperparameters={"method_params": {"guidance": "project"}}))
    with create_run(tmp_path, "mri", cfg.to_dict(), seed=0, data_hash=data_hash(cfg), run_id=cfg.run_id(),
                    resolved_settings=resolved_settings(cfg)) as w:
        w.write_metrics({})
    check_finished_runs([cfg], tmp_path / "mri")
    monkeypatch.setattr("ogae_core.methods.ogae.DEFAULT_GUIDANCE", "project")
    with pytest.raises(StaleRunError, match="resolved settings stored"):
        check_finished_runs([cfg], tmp_path / "mri")


def test_selection_does_not_reuse_a_network_trained_under_other_defaults(tmp_path):
    """``select_on_validation`` borrows the network of a finished run with the same training key;
    one that stored other resolved settings (here: none, as before OgAE's defaults changed) is refused."""
    from ogae_core.experiments import mri
    from ogae_core.experiments.mri import MriConfig, data_hash

    cfg = MriConfig("ogae-loc", cohort="smoke")
    with create_run(tmp_path, "mri", cfg.to_dict(), seed=0, data_hash=data_hash(cfg), run_id=cfg.run_id()) as w:
        w.write_metrics({})
    with pytest.raises(StaleRunError, match="no network was reused"):
        mri._finished_network(cfg, tmp_path / "mri")
    assert mri._finished_network(MriConfig("sae-loc", cohort="smoke"), tmp_path / "mri") is None  # other key
