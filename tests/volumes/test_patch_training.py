"""Patch sampling and training of the S-H2 network through the one trainer."""
import numpy as np
import pytest
import torch

from ogae_core.batching import PatchBatches
from ogae_core.train import train
from ogae_core.volumes.patch_training import (
    encode_patches,
    patch_bank,
    sample_locations,
    train_patch_method,
)
from ogae_core.nets import PatchBackboneConfig
from tests.volumes.toy_volumes import toy_cohort


def test_pairs_are_the_same_voxel_in_two_different_controls():
    s = PatchBatches(n_locations=7, patches_per_epoch=400, pairs=True)
    batches = s.epoch_batches(torch.arange(4 * 7), 100, torch.Generator().manual_seed(3))
    for b in batches:
        first, second = b[: len(b) // 2], b[len(b) // 2:]
        assert (first % 7 == second % 7).all() and (first // 7 != second // 7).all()
    assert sum(len(b) for b in batches) == 400
    again = s.epoch_batches(torch.arange(4 * 7), 100, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    assert {int(i) // 7 for i in torch.cat(batches)} == {0, 1, 2, 3}


def test_independent_batches_draw_new_patches_every_epoch():
    s = PatchBatches(n_locations=50, patches_per_epoch=60)
    g = torch.Generator().manual_seed(0)
    e1, e2 = (torch.cat(s.epoch_batches(torch.arange(200), 20, g)) for _ in range(2))
    assert len(e1) == 60 and len(set(e1.tolist())) == 60 and set(e1.tolist()) != set(e2.tolist())
    assert s.layouts == ("independent",)
    with pytest.raises(ValueError, match="every location"):
        s.epoch_batches(torch.arange(30), 10, g)


def test_trainer_refuses_a_sampler_without_the_method_layout():
    from ogae_core.methods import build_method

    with pytest.raises(ValueError, match="pairs"):
        train(build_method("sae", backbone={"kind": "patch"}), np.zeros((20, 15, 15), np.float32),
              sampler=PatchBatches(10))


@pytest.mark.slow
def test_one_epoch_reduces_the_reconstruction_loss_on_generated_volumes():
    tr, stop, _, _ = toy_cohort(n_train=4, n_stop=1)
    loc = sample_locations([v.brain for v in tr], 800, seed=0)
    bank = torch.from_numpy(patch_bank([v.t1 for v in tr], loc))[:, None]
    torch.manual_seed(0)
    from ogae_core.methods import build_method

    before = build_method("ae", backbone=PatchBackboneConfig()).eval()
    with torch.no_grad():
        loss0 = float(torch.nn.functional.mse_loss(before.backbone(bank).x_hat, bank))
    for name in ("ae", "sae", "ogae"):
        torch.manual_seed(0)
        model, result = train_patch_method(name, {"nu": 0.1} if name == "ogae" else {}, [v.t1 for v in tr],
                                           [v.t1 for v in stop], loc, backbone=PatchBackboneConfig(), epochs=1,
                                           batch_size=100, patches_per_epoch=5000, device="cpu")
        with torch.no_grad():
            loss1 = float(torch.nn.functional.mse_loss(model.backbone(bank).x_hat, bank))
        assert loss1 < 0.95 * loss0, (name, loss0, loss1)
        assert len(result.history) == 1 and np.isfinite(result.history[0]["val_loss"])
    assert encode_patches(model, bank[:10, 0].numpy()).shape == (10, 400)


@pytest.mark.parametrize("method, given, expected", [("ogae", None, "run"), ("ogae", "phase", "phase"),
                                                     ("sae", None, "phase")])
def test_the_trainer_gets_the_method_early_stopping_default(monkeypatch, method, given, expected):
    import ogae_core.volumes.patch_training as pt

    seen = {}

    def fake_train(model, X, config, **kw):
        seen["config"] = config
        raise RuntimeError("stop here")

    monkeypatch.setattr(pt, "train", fake_train)
    tr, stop, _, _ = toy_cohort(n_train=2, n_stop=1)
    loc = sample_locations([v.brain for v in tr], 50, seed=0)
    with pytest.raises(RuntimeError, match="stop here"):
        train_patch_method(method, {"nu": 0.1} if method == "ogae" else {}, [v.t1 for v in tr], [v.t1 for v in stop],
                           loc, backbone=PatchBackboneConfig(), epochs=1, early_stopping=given, device="cpu")
    assert seen["config"].early_stopping == expected
