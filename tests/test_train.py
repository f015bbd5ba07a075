"""The training loop: splits, batches, history, early stopping, determinism, checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from ogae_core.methods import build_method
from ogae_core.nets import BackboneConfig, MnistBackbone
from ogae_core.train import (
    HISTORY_COLUMNS,
    TrainConfig,
    TrainingInterrupted,
    batch_slices,
    holdout_split,
    images_to_tensor,
    latent_spread,
    load_model,
    save_model,
    set_determinism,
    train,
)

from .synthetic_images import blobs




QUIET = dict(progress=False, log=False)


def same_history(h1, h2) -> bool:
    """Histories equal in every column but the wall-clock time (NaN == NaN)."""
    return pd.DataFrame(h1).drop(columns="seconds").equals(pd.DataFrame(h2).drop(columns="seconds"))


def test_batch_slices_cover_everything_once():
    for n, bs in [(1, 100), (99, 100), (149, 100), (14899, 100), (250, 100)]:
        sl = batch_slices(n, bs)
        assert sl[0][0] == 0 and sl[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(sl, sl[1:]))
        sizes = [b - a for a, b in sl]
        assert max(sizes) - min(sizes) <= 1
    assert len(batch_slices(14899, 100)) == 149


def test_holdout_split_is_seeded_disjoint_and_complete():
    tr, va = holdout_split(1000, 0.1, seed=3)
    assert len(va) == 100 and len(tr) == 900 and not set(tr) & set(va)
    tr2, va2 = holdout_split(1000, 0.1, seed=3)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, holdout_split(1000, 0.1, seed=4)[1])
    assert len(holdout_split(10, 0.0, 0)[1]) == 0


def test_latent_spread_matches_brute_force():
    z = torch.randn(37, 5, generator=torch.Generator().manual_seed(0))
    d2 = torch.cdist(z.double(), z.double()) ** 2
    brute = d2.sum() / (37 * 36) / 5
    assert latent_spread(z) == pytest.approx(float(brute), rel=1e-10)
    assert latent_spread(torch.ones(10, 3)) == 0.0


@pytest.mark.parametrize(
    "x,match",
    [(np.zeros((2, 27, 28)), "shape"), (np.full((2, 28, 28), 2.0), r"\[0, 1\]"),
     (np.full((2, 28, 28), np.nan), "NaN"), (np.zeros((0, 28, 28)), "N = 0"), (np.zeros((2, 28, 28), dtype=np.int64), "dtype")],
)
def test_images_to_tensor_rejects_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        images_to_tensor(x)


def test_train_config_validation():
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="tpu")
    with pytest.raises(ValueError, match="early_stopping must be one of"):
        TrainConfig(early_stopping="epoch")


def _fit(name, hp=None, seed=0, **cfg):
    set_determinism(seed)
    m = build_method(name, hp or {})
    res = train(m, blobs(120), TrainConfig(**{"epochs": 2, "batch_size": 20, "seed": seed, **QUIET, **cfg}))
    return m, res


def test_history_rows_are_flat_and_complete():
    m, res = _fit("ogae", {"nu": 0.25, "switch_epoch": 1})
    df = pd.DataFrame(res.history)
    assert list(df.columns) == list(HISTORY_COLUMNS)
    assert df["phase"].tolist() == ["expander", "both"]
    assert df[["expander_weight", "compactor_weight"]].values.tolist() == [[1.0, 0.0], [1.0, 1.0]]
    for col in ("train_loss", "val_loss", "loss_reconstruction", "loss_guidance", "latent_spread",
                "misclassified_fraction", "n_support", "sv_fraction", "rho", "solver_iterations", "seconds"):
        assert np.isfinite(df[col]).all(), col
    assert df["loss_kl"].isna().all() and df["radius"].isna().all()
    assert (df["n_train"] + df["n_val"] == 120).all() and (df["n_val"] == 12).all()
    json.dumps(res.history)  # JSON-serializable as is


@pytest.mark.parametrize("name,hp", [("vae", None), ("ogae", {"nu": 0.25, "switch_epoch": 1})])
def test_same_seed_gives_bit_identical_runs_and_other_seed_differs(name, hp):
    m1, r1 = _fit(name, hp)
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.utils.deterministic.fill_uninitialized_memory  # a debugging aid that changes no result
    m2, r2 = _fit(name, hp)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k
    assert same_history(r1.history, r2.history)
    m3, _ = _fit(name, hp, seed=1)
    assert not torch.equal(m1.state_dict()["backbone.fc_mu.weight"], m3.state_dict()["backbone.fc_mu.weight"])


def test_early_stopping_ends_the_phase_and_restores_best_weights():
    set_determinism(0)
    m = build_method("ae")
    best = {}

    def remember(row):
        if row["improved"]:
            best["state"] = {k: v.clone() for k, v in m.state_dict().items()}

    res = train(m, blobs(120), TrainConfig(epochs=10, batch_size=20, patience=2, min_delta=1e9, **QUIET), callbacks=[remember])
    assert len(res.history) == 3  # epoch 1 improves, epochs 2-3 do not -> stop
    assert res.stopped_early == {"train": True}
    assert [r["improved"] for r in res.history] == [True, False, False]
    for k, v in m.state_dict().items():
        assert torch.equal(v, best["state"][k]), k


def _two_phase_ogae():
    set_determinism(0)
    return build_method("ogae", {"nu": 0.25, "strategy": "expander-then-both", "switch_epoch": 2})


def _snapshots(m):
    states = {}

    def remember(row):
        states[row["epoch"]] = {k: v.clone() for k, v in m.state_dict().items()}
    return states, remember


@pytest.mark.parametrize("mode, rows, improved, stopped", [
    ("phase", 4, [True, False, True, False], {"expander": False, "both": False}),  # best and patience reset per phase
    ("run", 3, [True, False, False], {"expander": False, "both": True}),  # one criterion: stops in phase 2
])
def test_early_stopping_per_phase_or_over_the_run(mode, rows, improved, stopped):
    m = _two_phase_ogae()
    states, remember = _snapshots(m)
    cfg = TrainConfig(epochs=4, batch_size=20, patience=2, min_delta=1e9, early_stopping=mode, **QUIET)
    res = train(m, blobs(100), cfg, callbacks=[remember])
    assert len(res.history) == rows
    assert [r["improved"] for r in res.history] == improved
    assert res.stopped_early == stopped
    # restored: the best epoch of the last phase (per phase) or of the whole run (run)
    best_epoch = 3 if mode == "phase" else 1
    for k, v in m.state_dict().items():
        assert torch.equal(v, states[best_epoch][k]), k


def test_one_criterion_without_patience_runs_every_epoch_and_restores_the_runs_best():
    m = _two_phase_ogae()
    states, remember = _snapshots(m)
    cfg = TrainConfig(epochs=4, batch_size=20, patience=0, min_delta=1e9, early_stopping="run", **QUIET)
    res = train(m, blobs(100), cfg, callbacks=[remember])
    assert [r["phase"] for r in res.history] == ["expander", "expander", "both", "both"]
    assert [r["improved"] for r in res.history] == [True, False, False, False]
    for k, v in m.state_dict().items():
        assert torch.equal(v, states[1][k]), k  # the expander's first epoch, across the phase switch


def test_resume_with_one_criterion_keeps_the_best_weights_across_phases(tmp_path):
    cfg = TrainConfig(epochs=4, batch_size=20, patience=0, min_delta=1e9, early_stopping="run", **QUIET)
    ref = _two_phase_ogae()
    train(ref, blobs(100), cfg)

    def stop(row):
        if row["epoch"] == 3:
            raise TrainingInterrupted("simulated kill")

    m = _two_phase_ogae()
    with pytest.raises(TrainingInterrupted):
        train(m, blobs(100), cfg, checkpoint_dir=tmp_path, callbacks=[stop])
    fresh = _two_phase_ogae()
    train(fresh, blobs(100), cfg, checkpoint_dir=tmp_path, resume=True)
    for (k, a), b in zip(ref.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k


def test_deep_svdd_phases_pretrain_then_train():
    m, res = _fit("s-dsvdd", {"pretrain_epochs": 1, "radius_warmup_epochs": 1}, epochs=2)
    assert [r["phase"] for r in res.history] == ["pretrain", "train", "train"]
    assert np.isfinite(res.history[0]["loss_reconstruction"]) and np.isnan(res.history[0]["loss_svdd"])
    assert res.history[-1]["radius"] > 0 and bool(m.center_ready)


def test_non_finite_loss_raises():
    set_determinism(0)
    m = build_method("ae")
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        train(m, blobs(40), TrainConfig(epochs=2, batch_size=20, lr=1e30, **QUIET))


def test_resume_after_interruption_is_identical_to_an_uninterrupted_run(tmp_path):
    hp = {"pretrain_epochs": 1}
    cfg = TrainConfig(epochs=2, batch_size=20, **QUIET)
    set_determinism(0)
    ref = build_method("dspsvdd", hp)
    ref_res = train(ref, blobs(100), cfg)

    def stop_after_first(row):
        if row["epoch"] == 2:
            raise TrainingInterrupted("simulated kill")

    set_determinism(0)
    m = build_method("dspsvdd", hp)
    with pytest.raises(TrainingInterrupted):
        train(m, blobs(100), cfg, checkpoint_dir=tmp_path, callbacks=[stop_after_first])
    assert (tmp_path / "latest" / "trainer_state.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]  # no temporary leftovers
    # killed between the two renames of the checkpoint swap: only the previous one, set aside
    (tmp_path / "latest").rename(tmp_path / ".latest.old-0123abcd")
    set_determinism(123)  # a different global RNG state must not matter: it is restored
    fresh = build_method("dspsvdd", hp)
    res = train(fresh, blobs(100), cfg, checkpoint_dir=tmp_path, resume=True)
    assert [r["epoch"] for r in res.history] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]  # the set-aside copy is cleaned up
    for (k, a), b in zip(ref.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    assert same_history(res.history, ref_res.history)


def test_resume_refuses_a_different_configuration(tmp_path):
    set_determinism(0)
    train(build_method("ae"), blobs(40), TrainConfig(epochs=1, batch_size=20, **QUIET), checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="different training config"):
        train(build_method("ae"), blobs(40), TrainConfig(epochs=1, batch_size=10, **QUIET), checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="different training images"):
        train(build_method("ae"), blobs(40, seed=7), TrainConfig(epochs=1, batch_size=20, **QUIET), checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="different method"):
        train(build_method("vae"), blobs(40), TrainConfig(epochs=1, batch_size=20, **QUIET), checkpoint_dir=tmp_path, resume=True)


def test_save_and_load_model_round_trip_without_training_code(tmp_path):
    m, _ = _fit("s-dsvdd", {"pretrain_epochs": 1, "radius_warmup_epochs": 1}, epochs=1)
    save_model(tmp_path, m)
    with pytest.raises(FileExistsError):
        save_model(tmp_path, m)
    x = blobs(10, seed=5)
    loaded = load_model(tmp_path)
    m.eval()
    # m was trained channels-last, loaded is contiguous: another memory layout takes other
    # convolution kernels, so the scores agree to float32 rounding, not bit for bit (bit
    # identity holds only for the same layout, threads and CPU)
    torch.testing.assert_close(loaded.score(x[:, None], "svdd"), m.score(x[:, None].contiguous(), "svdd"),
                               rtol=1e-5, atol=1e-6)
    loaded_again = load_model(tmp_path)
    assert torch.equal(loaded_again.score(x[:, None], "svdd"), loaded.score(x[:, None], "svdd"))  # same layout
    # the JSON alone rebuilds the bare network
    cfg = json.loads((tmp_path / "model.json").read_text())
    net = MnistBackbone(BackboneConfig.from_dict(cfg["backbone"]))
    state = load_file(str(tmp_path / "model.safetensors"))
    prefix = cfg["state_dict_prefix_backbone"]
    net.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    net.eval()
    with torch.no_grad():
        assert torch.equal(net.encode(x[:, None]).z, loaded.encode(x[:, None]))


def test_explicit_holdout_is_used_for_early_stopping():
    set_determinism(0)
    m = build_method("ae")
    res = train(m, blobs(60), TrainConfig(epochs=1, batch_size=20, **QUIET), X_val=blobs(15, seed=9))
    assert res.history[0]["n_train"] == 60 and res.history[0]["n_val"] == 15


class _IndependentOnly:
    """A sampler that cannot lay batches out as pairs."""

    layouts = ("independent",)

    def __init__(self):
        from ogae_core.train import ShuffledBatches

        self._inner = ShuffledBatches()

    def epoch_batches(self, idx, batch_size, generator):
        return self._inner.epoch_batches(idx, batch_size, generator)

    def ordered_batches(self, idx, batch_size):
        return self._inner.ordered_batches(idx, batch_size)


def test_the_sampler_must_provide_the_methods_batch_layout():
    cfg = TrainConfig(epochs=1, batch_size=20, **QUIET)
    with pytest.raises(ValueError, match="laid out as 'pairs'"):
        train(build_method("sae"), blobs(40), cfg, sampler=_IndependentOnly())
    set_determinism(0)
    a = build_method("ae")
    ra = train(a, blobs(40), cfg, sampler=_IndependentOnly())
    set_determinism(0)
    b = build_method("ae")
    rb = train(b, blobs(40), cfg)  # the default sampler draws the same batches
    assert same_history(ra.history, rb.history)


def test_guidance_weights_in_the_history_come_from_the_method():
    set_determinism(0)
    m = build_method("ogae", {"nu": 0.1, "strategy": "expander-then-compactor", "switch_epoch": 1})
    res = train(m, blobs(80), TrainConfig(epochs=2, batch_size=40, val_fraction=0.0, **QUIET))
    rows = [(r["phase"], r["expander_weight"], r["compactor_weight"]) for r in res.history]
    assert rows == [("expander", 1.0, 0.0), ("compactor", 0.0, 1.0)]
    set_determinism(0)
    ae = train(build_method("ae"), blobs(40), TrainConfig(epochs=1, batch_size=20, **QUIET))
    assert np.isnan(ae.history[0]["expander_weight"])
