"""The user-facing Detector: every method x scoring trains and scores; determinism;
save/load; errors; collapse guards; a quality floor on real MNIST."""
from __future__ import annotations

import numpy as np
import pytest

from ogae_core import Detector
from ogae_core.detector import CollapseError, collapse_flags
from ogae_core.methods import method_rows

from .synthetic_images import blobs as _blobs


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """Synthetic 28x28 images in [0, 1] as a NumPy array (see ``tests/synthetic_images.py``)."""
    return _blobs(n, seed).numpy()


TINY = dict(epochs=1, batch_size=40, progress=False, log=False)
#: per-method settings that make one tiny epoch meaningful (batch 40 -> 20 codes per OCSVM)
EXTRA = {"ogae": {"nu": 0.1, "switch_epoch": 0}, "h-dsvdd": {"pretrain_epochs": 1},
         "s-dsvdd": {"pretrain_epochs": 1, "radius_warmup_epochs": 1}, "dspsvdd": {"pretrain_epochs": 1}}


def _detector(method, scoring, seed=0, **kw):
    return Detector(method, scoring=scoring, seed=seed, **TINY, **EXTRA.get(method, {}), **kw)


@pytest.fixture(scope="module")
def data():
    return blobs(200, seed=0), blobs(40, seed=1)


@pytest.mark.parametrize("method,scoring", method_rows())
def test_every_method_and_scoring_trains_and_scores(method, scoring, data):
    train_x, test_x = data
    det = _detector(method, scoring).fit(train_x)
    assert det.scoring_ == scoring
    hist = det.history_frame()
    assert np.isfinite(hist["train_loss"]).all() and np.isfinite(hist["val_loss"]).all()
    scores = det.anomaly_score(test_x)
    assert scores.shape == (40,) and np.isfinite(scores).all()
    np.testing.assert_array_equal(det.score_samples(test_x), -scores)  # scikit-learn's sign
    np.testing.assert_array_equal(det.decision_function(test_x), -scores - det.offset_)
    assert set(np.unique(det.predict(test_x))) <= {-1, 1}
    assert len(np.unique(scores)) > 30, "scores are (nearly) constant"
    z = det.encode(test_x)
    assert z.shape == (40, 32) and np.isfinite(z).all()
    if scoring == "ocsvm":
        assert det.ocsvm_ is not None and len(det.ocsvm_.support_) >= 1
        zs = (z - det.latent_mean_) / det.latent_std_
        np.testing.assert_allclose(scores, -det.ocsvm_.decision_function(zs))
        np.testing.assert_allclose(det.decision_function(test_x), det.ocsvm_.decision_function(zs))
    else:  # the boundary is the largest training anomaly score: every training image is an inlier
        assert (det.decision_function(train_x) >= 0).all()
        assert det.offset_ == -det.train_anomaly_scores_.max()


def _torch_flags():
    import torch

    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory, torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic)


def test_fit_restores_process_wide_torch_flags_and_random_states(data):
    import torch

    train_x, test_x = data
    before = _torch_flags()
    torch.manual_seed(1234)
    expected_next = torch.rand(3)  # what the caller's generator gives next, had fit not run
    torch.manual_seed(1234)
    det = _detector("ae", "recons").fit(train_x)
    assert _torch_flags() == before
    assert torch.equal(torch.rand(3), expected_next)
    # flags that differ from what fit sets are restored too
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = False
    try:
        det2 = _detector("ae", "recons").fit(train_x)
        assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic = before[4]
    # and the restored environment does not change the result: reruns are bit-identical
    np.testing.assert_array_equal(det.anomaly_score(test_x), det2.anomaly_score(test_x))


def test_default_scoring_per_method():
    assert _detector("ogae", None)._resolve()["scoring"] == "ocsvm"
    assert _detector("ae", None)._resolve()["scoring"] == "recons"
    assert _detector("dvaesvdd", None)._resolve()["scoring"] == "svdd"


@pytest.mark.parametrize("method,scoring", [("ogae", "ocsvm"), ("vae", "recons")])
def test_same_seed_same_scores(method, scoring, data):
    train_x, test_x = data
    a = _detector(method, scoring).fit(train_x).score_samples(test_x)
    b = _detector(method, scoring).fit(train_x).score_samples(test_x)
    np.testing.assert_array_equal(a, b)
    c = _detector(method, scoring, seed=1).fit(train_x).score_samples(test_x)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("method,scoring", [("ogae", "ocsvm"), ("s-dsvdd", "svdd"), ("sae", "recons")])
def test_save_load_gives_identical_scores(method, scoring, data, tmp_path):
    train_x, test_x = data
    det = _detector(method, scoring).fit(train_x)
    det.save(tmp_path / "det")
    with pytest.raises(FileExistsError):
        det.save(tmp_path / "det")
    loaded = Detector.load(tmp_path / "det")
    # same process, same memory layout (the detector restores channels-last), same threads
    np.testing.assert_array_equal(loaded.anomaly_score(test_x), det.anomaly_score(test_x))
    np.testing.assert_array_equal(loaded.decision_function(test_x), det.decision_function(test_x))
    assert loaded.get_params() == det.get_params()
    assert loaded.history_frame().drop(columns="seconds").equals(det.history_frame().drop(columns="seconds"))


def test_accepts_uint8_and_channel_dimension(data):
    train_x, _ = data
    det = _detector("ae", "recons").fit((train_x * 255).round().astype(np.uint8)[:, None])
    assert det.score_samples(train_x[:5]).shape == (5,)


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(method="nope"), "unknown method"), (dict(method="ae", scoring="svdd"), "not available"),
     (dict(method="h-dsvdd", scoring="recons"), "not available"), (dict(method="ae", lam=1.0), "unknown hyperparameter 'lam'"),
     (dict(method="ae", scoring="recons", ocsvm_nu=0.1), "only applies"), (dict(method="ogae", nu=2.0), "nu must be"),
     (dict(method="ae", epochs=-1), "epochs")],
)
def test_bad_arguments_raise_in_fit_not_init(kwargs, match, data):
    det = Detector(**kwargs, progress=False, log=False)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        det.fit(data[0])


def test_too_small_holdout_for_ogae_is_a_clear_error():
    with pytest.raises(ValueError, match="hold-out of 16 images gives batches of 16"):
        _detector("ogae", "ocsvm").fit(blobs(160))


def test_bad_images_and_unfitted_use():
    det = _detector("ae", "recons")
    with pytest.raises(RuntimeError, match="not fitted"):
        det.score_samples(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="shape"):
        det.fit(np.zeros((4, 32, 32)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        det.fit(np.full((4, 28, 28), 3.0))


def test_get_set_params_round_trip():
    det = Detector("ogae", lam=0.1, epochs=3)
    assert det.get_params()["lam"] == 0.1
    det.set_params(lam=0.2, seed=5)
    assert det.get_params()["lam"] == 0.2 and det.seed == 5
    assert "lam=0.2" in repr(det)


def test_collapse_guards():
    assert collapse_flags([{"latent_spread": 1e-12}]) == ["latent_collapse"]
    assert collapse_flags([], np.array([1.0, 1.0, 2.0] * 10)) == ["constant_scores"]
    assert collapse_flags([], np.arange(50.0)) == []
    assert collapse_flags([], None, sv_fraction=1.0) == ["sv_fraction_extreme"]
    assert collapse_flags([{"latent_spread": 1.0, "sv_fraction": 0.004}]) == ["sv_fraction_extreme"]
    assert collapse_flags([], np.array([np.nan, 1.0])) == ["non_finite_scores"]
    tied = np.r_[np.arange(40.0), np.full(60, -3.5)]  # 60 % share one value (e.g. -rho far from every SV)
    assert collapse_flags([], tied) == ["tied_scores"]
    assert collapse_flags([], tied, max_tied=0.6) == []


def _inflating_history(factor_per_epoch: float, epochs: int = 4):
    """History of a real AE training whose encoder output is multiplied by ``factor_per_epoch``
    after every epoch (the latent scale inflates as under OgAE's explosion)."""
    import torch

    from ogae_core.methods import build_method
    from ogae_core.train import TrainConfig, set_determinism, train

    set_determinism(0)
    m = build_method("ae")

    def inflate(row):
        with torch.no_grad():
            m.backbone.fc_mu.weight.mul_(factor_per_epoch)
            m.backbone.fc_mu.bias.mul_(factor_per_epoch)

    cfg = TrainConfig(epochs=epochs, batch_size=40, patience=0, restore_best=False, progress=False, log=False)
    return train(m, blobs(160), cfg, callbacks=[inflate]).history


def test_latent_explosion_guard_fires_on_an_inflated_latent_scale_only(data):
    inflated = _inflating_history(10.0)  # spread x100 per epoch
    assert "latent_explosion" in collapse_flags(inflated)
    assert "latent_explosion" not in collapse_flags(_inflating_history(1.0))
    assert collapse_flags([{"latent_spread": 1.0}, {"latent_spread": 50.0}]) == []
    assert collapse_flags([{"latent_spread": 1.0}, {"latent_spread": 50.0}], explosion_factor=10) == ["latent_explosion"]
    # a normal run: no flag; the detector reports the guard like the collapse guards
    det = Detector("ogae", scoring="ocsvm", **{**TINY, "epochs": 3}, **EXTRA["ogae"]).fit(data[0])
    assert len(det.history_) == 3
    assert "latent_explosion" not in det.warnings_
    det.history_ = inflated
    assert "latent_explosion" in det.with_scoring(data[0]).warnings_
    with pytest.raises(CollapseError, match="latent_explosion"):
        det.set_params(strict=True).with_scoring(data[0])
    with pytest.raises(ValueError, match="explosion factor"):
        collapse_flags(inflated, explosion_factor=1.0)


def test_strict_detector_raises_on_constant_scores():
    flat = np.full((80, 28, 28), 0.5, dtype=np.float32)  # every image identical -> identical scores
    with pytest.raises(CollapseError, match="constant_scores"):
        _detector("ae", "recons", strict=True).fit(flat)
    det = _detector("ae", "recons").fit(flat)
    assert "constant_scores" in det.warnings_


@pytest.mark.slow
def test_quality_floor_on_real_mnist_3_vs_7():
    """Train on 4000 uncorrupted 3s for 4 epochs; test 3 vs 7.

    OgAE uses the expander + compactor gradient from the start ("both"): with only four
    epochs, an expander-only first stage (the paper's 20-epoch schedule) has no time to be
    compensated (measured: AUROC 0.63 with 2 + 2 epochs vs 0.93 with "both").

    Floors from measurements on this split (seed 0): AE-recons 0.88; OgAE-ocsvm in the earlier
    ``"project"`` guidance regime 0.91; OgAE-ocsvm at its defaults (the ``"authors"`` regime,
    slope 0.3, one early-stopping criterion: the MNIST-C ablation's validation choice) 0.80,
    0.90 with seed 1 -- on clean 3 vs 7 the new defaults are not better, and vary more with the
    seed, hence the lower floor. A guidance that breaks the codes scores near 0.5.
    """
    from sklearn.metrics import roc_auc_score

    data_mod = pytest.importorskip("ogae_core.data", reason="ogae_core.data (MNIST loader) not available")
    mnist = data_mod.load_mnist()
    rng = np.random.default_rng(0)
    threes = np.flatnonzero(mnist.train_labels == 3)
    train_x = mnist.train_images[rng.choice(threes, 4000, replace=False)]
    test_idx = np.flatnonzero(np.isin(mnist.test_labels, (3, 7)))
    test_idx = rng.choice(test_idx, 1000, replace=False)
    test_x, y = mnist.test_images[test_idx], (mnist.test_labels[test_idx] == 7).astype(int)
    common = dict(epochs=4, progress=False, log=False)
    ae = Detector("ae", scoring="recons", **common).fit(train_x)
    ogae = Detector("ogae", scoring="ocsvm", strategy="both", **common).fit(train_x)
    project = Detector("ogae", scoring="ocsvm", strategy="both", guidance="project", **common).fit(train_x)
    auc_ae = roc_auc_score(y, ae.anomaly_score(test_x))
    auc_ogae = roc_auc_score(y, ogae.anomaly_score(test_x))
    auc_project = roc_auc_score(y, project.anomaly_score(test_x))
    print(f"AUROC 3 vs 7: AE-recons {auc_ae:.3f}, OgAE-ocsvm {auc_ogae:.3f} (project regime {auc_project:.3f})")
    assert auc_ae >= 0.85
    assert auc_project >= 0.85
    assert auc_ogae >= 0.75


@pytest.mark.parametrize("method,start,target,ocsvm", [
    ("vae", "recons", "ocsvm", {"ocsvm_nu": 0.2}),
    ("ogae", "ocsvm", "recons", {}),
    ("ae", "ocsvm", "ocsvm", {"ocsvm_gamma": 0.5, "ocsvm_standardize": False}),
])
def test_with_scoring_equals_training_that_scoring(method, start, target, ocsvm, data):
    train_x, test_x = data
    shared = _detector(method, start).fit(train_x).with_scoring(train_x, target, **ocsvm)
    alone = _detector(method, target, **ocsvm).fit(train_x)
    assert shared.scoring_ == target and shared.get_params() == alone.get_params()
    np.testing.assert_array_equal(shared.anomaly_score(test_x), alone.anomaly_score(test_x))
    np.testing.assert_array_equal(shared.train_anomaly_scores_, alone.train_anomaly_scores_)


def test_with_scoring_changes_only_the_scorer(data):
    train_x, _ = data
    det = _detector("ae", "recons").fit(train_x)
    with pytest.raises(ValueError, match="only changes the scorer"):
        det.with_scoring(train_x, "ocsvm", lr=1e-2)
    with pytest.raises(ValueError, match="not available"):
        det.with_scoring(train_x, "svdd")
    with pytest.raises(RuntimeError, match="not fitted"):
        _detector("ae", "recons").with_scoring(train_x, "ocsvm")


def test_method_level_network_and_trainer_defaults():
    """OgAE trains with the ablation's validation-selected defaults unless a run sets them; the
    other methods keep the network's and the trainer's own."""
    r = Detector("ogae")._resolve()
    assert (r["backbone"].negative_slope, r["train"].early_stopping) == (0.3, "run")
    assert (r["config"].guidance, r["config"].gamma, r["config"].standardize) == ("authors", "scale", "each")
    r = Detector("ogae", negative_slope=0.01, early_stopping="phase", guidance="project")._resolve()
    assert (r["backbone"].negative_slope, r["train"].early_stopping, r["config"].gamma) == (0.01, "phase", 0.01)
    r = Detector("ae")._resolve()
    assert (r["backbone"].negative_slope, r["train"].early_stopping) == (0.01, "phase")
    from ogae_core.methods import OgAE, build_method

    # every way of building the MNIST network takes the same defaults (Method.mnist_backbone)
    assert build_method("ogae", backbone={"kind": "mnist", "latent_dim": 8}).backbone_config == \
        OgAE.mnist_backbone({"latent_dim": 8}) == build_method("ogae", backbone={"latent_dim": 8}).backbone_config
    assert OgAE().backbone_config.negative_slope == 0.3 and build_method("ae").backbone_config.negative_slope == 0.01
    with pytest.raises(ValueError, match="unknown backbone config keys"):
        OgAE.mnist_backbone({"slope": 0.3})


def test_a_saved_detector_keeps_the_defaults_it_was_trained_with(data, tmp_path, monkeypatch):
    """Loading rebuilds the network and the trainer options from the files, not from today's
    method defaults (here: a detector saved while OgAE's defaults were slope 0.01 and per-phase
    early stopping)."""
    from ogae_core.methods import OgAE

    train_x, test_x = data
    monkeypatch.setattr(OgAE, "network_defaults", {"negative_slope": 0.01})
    monkeypatch.setattr(OgAE, "training_defaults", {})
    det = _detector("ogae", "ocsvm").fit(train_x)
    det.save(tmp_path / "old")
    monkeypatch.undo()
    loaded = Detector.load(tmp_path / "old")
    assert loaded.model_.backbone_config.negative_slope == 0.01
    assert loaded.train_config_.early_stopping == "phase"
    np.testing.assert_array_equal(loaded.anomaly_score(test_x), det.anomaly_score(test_x))
    fresh = _detector("ogae", "ocsvm")._resolve()
    assert (fresh["backbone"].negative_slope, fresh["train"].early_stopping) == (0.3, "run")
