"""The slice baselines (``ae-unet``, ``vqvae-transformer``) on small generated slices and volumes.

Covers: a training step reduces each loss (reconstruction; codebook and commitment; the
Transformer's NLL), the VQ-VAE's codebook usage, healing, score maps on the volume's grid
(NaN outside the brain), save/load, CPU determinism, and the trainer wrapper.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ogae_core.train as trainer
from ogae_core.data.mri.cohort import SubjectVolumes
from ogae_core.data.mri.slices import augment_slices, fit_to_shape, restore_shape
from ogae_core.methods import SLICE_METHODS, build_slice_method, heal_codes
from ogae_core.nets import CodeTransformer, TransformerConfig
from ogae_core.volumes import build_volume_detector, get_volume_method

SHAPE = (32, 40)  # network slice size of the tests (volumes are 28 x 36)
FAST = {"size": "smoke", "shape": SHAPE, "device": "cpu", "epochs": 2, "batch_size": 4}
#: Per method; the tiny VQ-VAE's codes are nearly uniform, so a high threshold makes healing act.
PARAMS = {"ae-unet": FAST, "vqvae-transformer": {**FAST, "threshold": 0.3}}


def _volume(seed: int, lesion: bool = False, n_slices: int = 3) -> SubjectVolumes:
    """A 28 x 36 x n phantom: an elliptic brain with a smooth 'tissue' pattern and noise."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-1, 1, 28), np.linspace(-1, 1, 36), indexing="ij")
    brain2d = x ** 2 / 0.8 + y ** 2 / 0.85 < 1
    t1 = np.zeros((28, 36, n_slices), np.float32)
    for z in range(n_slices):
        phase = rng.uniform(0, 2 * np.pi)
        tissue = 0.6 + 0.25 * np.sin(4 * x + phase) * np.cos(3 * y) + 0.03 * rng.standard_normal(x.shape)
        t1[:, :, z] = np.where(brain2d, np.clip(tissue, 0, 1), 0)
    brain = np.repeat(brain2d[:, :, None], n_slices, 2)
    les = np.zeros_like(brain)
    if lesion:
        les[12:17, 15:21, :] = True
        t1[les] = 0.1
    ventricles = np.zeros_like(brain)
    ventricles[13:15, 5:8, :] = True
    return SubjectVolumes(t1=t1, brain=brain, ventricles=ventricles, lesion=les, labels=les.astype(np.uint8),
                          affine=np.eye(4), z_start=10, wm=None)


class FakeSubject:
    """What the detectors need of :class:`ogae_core.data.mri.Subject`: ``load()``."""

    def __init__(self, seed: int, lesion: bool = False):
        self.seed, self.lesion = seed, lesion

    def load(self):
        return _volume(self.seed, self.lesion)


@pytest.fixture(scope="module")
def subjects():
    return [FakeSubject(i) for i in range(6)], [FakeSubject(100)]


@pytest.fixture(scope="module")
def fitted(subjects):
    train, early = subjects
    return {name: build_volume_detector(name, dict(PARAMS[name])).fit(train, early, seed=0)
            for name in ("ae-unet", "vqvae-transformer")}


def _slices(n=8, seed=0):
    vols = [_volume(seed + i) for i in range(n // 2)]
    x = np.concatenate([fit_to_shape(np.moveaxis(v.t1, 2, 0), SHAPE)[:2, None] for v in vols])
    return torch.from_numpy(x)


def _steps(method, x, phase, n=15, lr=3e-3):
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=lr)
    method.train()
    for _ in range(n):
        out = method.loss(x, phase, 0)
        opt.zero_grad()
        out.total.backward()
        opt.step()


# ---------------------------------------------------------------------- training objectives
def test_ae_unet_training_steps_reduce_the_reconstruction_loss():
    torch.manual_seed(0)
    m = build_slice_method("ae-unet", {"translation": 0.0, "brightness": 0.0}, {"widths": [4, 8, 8, 4]})
    x = _slices()
    m.eval()
    before = float(m.loss(x, "train", 0).total.detach())
    _steps(m, x, "train")
    m.eval()
    assert float(m.loss(x, "train", 0).total.detach()) < 0.8 * before


def _vq_method(codebook="loss", K=16):
    nets = {"vqvae": {"channels": 8, "n_down": 3, "n_residual": 0, "num_embeddings": K, "embedding_dim": 4,
                      "codebook": codebook, "decay": 0.9},
            "transformer": {"vocab_size": K, "seq_len": 20, "d_model": 16, "n_layers": 1, "n_heads": 2}}
    return build_slice_method("vqvae-transformer", {"translation": 0.0, "brightness": 0.0}, nets)


@torch.no_grad()
def _vq_terms(m, x):
    m.eval()
    q = m.vqvae.quantizer
    out = q(m.vqvae.encode(x))
    rec = torch.nn.functional.mse_loss(m.vqvae.decoder(out.z_q), x)
    return float(rec), float(out.codebook_loss), float(out.commitment_loss)


def test_vqvae_training_steps_reduce_reconstruction_codebook_and_commitment_losses():
    torch.manual_seed(0)
    m = _vq_method("loss")
    x = _slices()
    m.vqvae.quantizer.initialized.fill_(True)  # keep the random codebook: from data, both terms start near 0
    rec0, cb0, com0 = _vq_terms(m, x)
    _steps(m, x, "vqvae", n=25)
    rec1, cb1, com1 = _vq_terms(m, x)
    assert rec1 < rec0 and cb1 < cb0 and com1 < com0


def test_transformer_training_steps_reduce_the_nll_and_leave_the_vqvae_alone():
    torch.manual_seed(0)
    m = _vq_method("ema")
    x = _slices()
    _steps(m, x, "vqvae", n=5)
    vq_state = {k: v.clone() for k, v in m.vqvae.state_dict().items()}
    m.eval()
    before = float(m.loss(x, "transformer", 0).total.detach())
    _steps(m, x, "transformer", n=20)
    m.eval()
    assert float(m.loss(x, "transformer", 0).total.detach()) < before
    assert all(torch.equal(v, m.vqvae.state_dict()[k]) for k, v in vq_state.items())


#: Stated fraction of the codebook that the perplexity must reach on generated slices.
MIN_PERPLEXITY_FRACTION = 0.25


def test_codebook_perplexity_reported_and_above_a_fraction_of_the_codebook(fitted):
    det = fitted["vqvae-transformer"]
    rows = [r for r in det.history_ if r["phase"] == "vqvae"]
    assert rows and all(math.isfinite(r["perplexity"]) and 0 < r["codebook_usage"] <= 1 for r in rows)
    K = det.method_.vqvae.quantizer.num_embeddings
    assert rows[-1]["perplexity"] >= MIN_PERPLEXITY_FRACTION * K
    assert det.method_.codebook_perplexity(_slices()) >= MIN_PERPLEXITY_FRACTION * K
    assert any(math.isfinite(r.get("loss_nll", float("nan"))) for r in det.history_ if r["phase"] == "transformer")


# ---------------------------------------------------------------------- healing
def _fixed_transformer(probs):
    """A Transformer whose next-token distribution is ``probs`` at every position."""
    t = CodeTransformer(TransformerConfig(vocab_size=len(probs), seq_len=12, d_model=8, n_layers=1, n_heads=2))
    with torch.no_grad():
        t.head.weight.zero_()
        t.head.bias.copy_(torch.log(torch.tensor(probs)))
    return t.eval()


@pytest.mark.parametrize("mode", ["release", "sequential"])
def test_healing_keeps_likely_tokens_and_replaces_unlikely_ones(mode):
    t = _fixed_transformer([0.6, 0.37, 0.02, 0.01])
    codes = torch.tensor([[0, 1, 2, 0, 3, 1, 1, 2, 0, 0, 3, 1]])
    healed, mask = heal_codes(t, codes, threshold=0.05, mode=mode, generator=torch.Generator().manual_seed(0))
    unlikely = codes >= 2
    assert torch.equal(mask, unlikely)
    assert torch.equal(healed[~unlikely], codes[~unlikely])
    assert bool((healed[unlikely] < 2).all())  # replaced by likely tokens
    again, _ = heal_codes(t, codes, threshold=0.05, mode=mode, generator=torch.Generator().manual_seed(0))
    assert torch.equal(healed, again)  # seeded


def test_healing_rejects_bad_arguments():
    t = _fixed_transformer([0.5, 0.5])
    with pytest.raises(ValueError, match="healing mode"):
        heal_codes(t, torch.zeros(1, 3, dtype=torch.long), 0.1, mode="greedy")
    with pytest.raises(ValueError, match="threshold"):
        heal_codes(t, torch.zeros(1, 3, dtype=torch.long), 1.5)


# ---------------------------------------------------------------------- detectors
def test_registered_under_the_papers_names():
    assert get_volume_method("ae-unet").name == "ae-unet"
    assert get_volume_method("vqvae-transformer").name == "vqvae-transformer"
    assert set(SLICE_METHODS) == {"ae-unet", "vqvae-transformer"}
    with pytest.raises(ValueError, match="unknown parameter"):
        build_volume_detector("ae-unet", {"width": 3})
    with pytest.raises(ValueError, match="unknown size"):
        build_volume_detector("ae-unet", {"size": "huge"}).fit([FakeSubject(0)])


@pytest.mark.parametrize("name", ["ae-unet", "vqvae-transformer"])
def test_score_maps_on_the_volume_grid_nan_outside_the_brain(fitted, name):
    v = _volume(7, lesion=True)
    m = fitted[name].anomaly_map(v)
    assert m.shape == v.t1.shape and m.dtype == np.float32
    assert np.isnan(m[~v.brain]).all() and np.isfinite(m[v.brain]).all() and (m[v.brain] >= 0).all()


def test_ae_unet_map_is_the_residual(fitted):
    det = fitted["ae-unet"]
    v = _volume(8)
    x = torch.from_numpy(fit_to_shape(np.moveaxis(v.t1, 2, 0), SHAPE)[:, None])
    expected = restore_shape((x - det.method_.reconstruct(x)).abs()[:, 0].numpy(), v.t1.shape[:2])
    m = det.anomaly_map(v)
    assert np.allclose(m[v.brain], np.moveaxis(expected, 0, 2)[v.brain], atol=1e-6)


def test_vqvae_map_is_zero_where_nothing_is_resampled(fitted, subjects):
    det = fitted["vqvae-transformer"]
    det0 = build_volume_detector("vqvae-transformer", {**FAST, "threshold": 0.0})
    det0.method_ = det.method_
    m = det0.anomaly_map(_volume(9, lesion=True))
    assert np.nanmax(m) == 0.0
    det1 = build_volume_detector("vqvae-transformer", {**FAST, "threshold": 1.0})
    det1.method_ = det.method_
    assert np.nanmax(det1.anomaly_map(_volume(9, lesion=True))) > 0.0


def test_median_filter_option_changes_the_map(fitted):
    det = fitted["ae-unet"]
    smooth = build_volume_detector("ae-unet", {**FAST, "median_size": 3})
    smooth.method_ = det.method_
    v = _volume(7, lesion=True)
    a, b = det.anomaly_map(v), smooth.anomaly_map(v)
    assert np.isnan(b[~v.brain]).all() and not np.allclose(a[v.brain], b[v.brain])


@pytest.mark.parametrize("name", ["ae-unet", "vqvae-transformer"])
def test_save_load_reproduces_the_maps(fitted, name, tmp_path):
    det = fitted[name]
    det.save(tmp_path / "m")
    back = get_volume_method(name).load(tmp_path / "m")
    v = _volume(7, lesion=True)
    assert np.array_equal(det.anomaly_map(v), back.anomaly_map(v), equal_nan=True)
    assert back.get_params() == {**det.get_params(), "shape": tuple(det.get_params()["shape"])}
    assert len(back.history_) == len(det.history_)
    with pytest.raises(FileExistsError):
        det.save(tmp_path / "m")
    with pytest.raises(FileNotFoundError):
        get_volume_method(name).load(tmp_path / "nothing")


@pytest.mark.parametrize("name", ["ae-unet", "vqvae-transformer"])
def test_cpu_determinism(fitted, subjects, name):
    train, early = subjects
    again = build_volume_detector(name, dict(PARAMS[name])).fit(train, early, seed=0)
    other = build_volume_detector(name, dict(PARAMS[name])).fit(train, early, seed=1)
    v = _volume(7, lesion=True)
    ref = fitted[name].anomaly_map(v)
    assert np.array_equal(ref, again.anomaly_map(v), equal_nan=True)
    assert not np.array_equal(ref, other.anomaly_map(v), equal_nan=True)


def test_history_has_the_two_phases_and_the_vq_columns(fitted):
    rows = fitted["vqvae-transformer"].history_
    assert [r["phase"] for r in rows] == ["vqvae", "vqvae", "transformer", "transformer"]
    assert all("loss_commitment" in r and "perplexity" in r for r in rows[:2])


def test_unfitted_detector_refuses_to_score():
    with pytest.raises(RuntimeError, match="not fitted"):
        build_volume_detector("ae-unet", {}).anomaly_map(_volume(0))


# ---------------------------------------------------------------------- pipeline pieces
def test_slice_method_declares_its_input_shape_to_the_trainer():
    m = build_slice_method("ae-unet", {}, {"widths": [4, 8, 8, 4]})
    m.slice_shape = (32, 48)
    assert m.input_shape == (1, 32, 48)
    with pytest.raises(ValueError, match=r"\(N, 32, 48\)"):
        trainer.train(m, np.zeros((4, 1, 16, 16), np.float32), trainer.TrainConfig(epochs=1, batch_size=2, progress=False,
                                                                                  log=False))


def test_augmentation_only_in_training_mode():
    m = build_slice_method("ae-unet", {}, {"widths": [4, 8, 8, 4]})
    x = _slices(4)
    m.eval()
    assert m.augment(x) is x
    m.train()
    torch.manual_seed(0)
    y = m.augment(x)
    assert y.shape == x.shape and not torch.equal(y, x) and float(y.min()) >= 0 and float(y.max()) <= 1
    shifted = augment_slices(x, translation=0.1, brightness=0.0, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(shifted, x)


# ---------------------------------------------------------------------- command line
class _NamedSubject(FakeSubject):
    def __init__(self, seed, role):
        super().__init__(seed, lesion=role == "patient")
        self.subject_id, self.role = f"{role}-{seed}", role


class _FakeCohort:
    def split_training(self, seed=0):
        return [_NamedSubject(i, "train_control") for i in range(4)], [_NamedSubject(50, "train_control")]

    def by_role(self, role):
        return [_NamedSubject(60 + i, role) for i in range(2)]


def test_command_writes_models_maps_and_summary(tmp_path, monkeypatch):
    import json

    import nibabel as nib

    import ogae_core.data.mri as mri
    from ogae_core.volumes.slice_models import main

    monkeypatch.setattr(mri, "load_cohort", lambda name: _FakeCohort())
    assert main(["--cohort", "fake", "--out", str(tmp_path / "out"), "--size", "smoke", "--methods", "ae-unet"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    s = summary["methods"]["ae-unet"]
    assert 0 <= s["voxel_auroc_mean"] <= 1 and s["prevalence_mean"] > 0 and s["epochs"] == 2
    maps = sorted((tmp_path / "out" / "ae-unet" / "maps").glob("*.nii.gz"))
    assert len(maps) == 4
    data = np.asarray(nib.load(str(maps[0])).dataobj)
    brain = _volume(0).brain
    assert data.shape == brain.shape and np.isnan(data[~brain]).all()
    assert (tmp_path / "out" / "ae-unet" / "model" / "detector.json").is_file()
    with pytest.raises(SystemExit):
        main(["--cohort", "fake", "--out", str(tmp_path / "out")])  # refuses a non-empty directory
