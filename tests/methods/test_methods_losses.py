"""Each method's loss and score checked on hand-built cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ogae_core.methods import (
    AE,
    METHODS,
    SAE,
    OgAE,
    OgAEConfig,
    Phase,
    build_method,
    get_method,
    hyperparameter_names,
    init_center,
    kl_divergence,
    method_names,
    method_rows,
    similarity_term,
    soft_radius,
    squared_distance,
)


def _x(n=8, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- registry
def test_registry_has_the_twelve_rows_of_table_one():
    rows = method_rows()
    assert len(rows) == 12
    assert {m for m, _ in rows} == {"ae", "vae", "sae", "ogae", "h-dsvdd", "s-dsvdd", "dspsvdd", "dvaesvdd"}
    for m in ("ae", "vae", "sae", "ogae"):
        assert (m, "recons") in rows and (m, "ocsvm") in rows


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope")
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        build_method("vae", {"kl": 1.0})
    with pytest.raises(ValueError, match="kl_weight"):
        build_method("vae", {"kl_weight": -1.0})
    with pytest.raises(ValueError, match="strategy"):
        build_method("ogae", {"strategy": "sideways"})
    with pytest.raises(ValueError, match="nu"):
        build_method("s-dsvdd", {"nu": 0.0})
    with pytest.raises(ValueError, match="standardize must be"):
        build_method("ogae", {"standardize": "yes"})
    assert "lam" in hyperparameter_names("ogae")


def test_methods_force_the_backbone_they_need():
    assert not build_method("h-dsvdd").backbone_config.bias
    assert build_method("dvaesvdd").backbone_config.variational
    assert build_method("ae").backbone_config.bias
    assert build_method("ae", backbone={"latent_dim": 7}).backbone_config.latent_dim == 7


# ---------------------------------------------------------------- autoencoders
def test_ae_loss_is_pixel_mean_mse():
    torch.manual_seed(0)
    m = build_method("ae")
    x = _x()
    out = m.loss(x, "train", 0)
    m.eval()
    torch.testing.assert_close(m.score(x, "recons"), ((m.backbone(x).x_hat - x) ** 2).mean((1, 2, 3)))
    m.train()
    torch.manual_seed(0)
    m2 = build_method("ae")
    ref = F.mse_loss(m2.backbone(x).x_hat, x)
    torch.testing.assert_close(out.total, ref)
    assert set(out.terms) == {"reconstruction"}


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(5, 4), torch.randn(5, 4)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(4), torch.ones(4))
    torch.testing.assert_close(kl_divergence(mu, logvar), torch.distributions.kl_divergence(q, p).sum(1))


def test_vae_total_is_mse_plus_weighted_kl_and_scores_are_deterministic():
    m = build_method("vae", {"kl_weight": 0.5})
    out = m.loss(_x(), "train", 0)
    torch.testing.assert_close(out.total, out.terms["reconstruction"] + 0.5 * out.terms["kl"])
    m.eval()
    assert torch.equal(m.score(_x(), "recons"), m.score(_x(), "recons"))


def test_similarity_term_cases():
    z = torch.randn(6, 5)
    assert float(similarity_term(z, z, "cosine")) == pytest.approx(0.0, abs=1e-6)
    assert float(similarity_term(z, 3 * z, "cosine")) == pytest.approx(0.0, abs=1e-6)
    assert float(similarity_term(z, -z, "cosine")) == pytest.approx(2.0, abs=1e-6)
    assert float(similarity_term(z, z + 1, "mse")) == pytest.approx(1.0)


def test_sae_pairs_first_and_second_half():
    torch.manual_seed(0)
    m = build_method("sae", {"similarity_weight": 2.0, "similarity": "mse"})
    x = _x(8)
    out = m.loss(x, "train", 0)
    torch.manual_seed(0)
    ref = build_method("sae", {"similarity_weight": 2.0, "similarity": "mse"}).backbone(x)
    mse = 0.5 * (F.mse_loss(ref.x_hat[:4], x[:4]) + F.mse_loss(ref.x_hat[4:], x[4:]))
    sim = ((ref.z[:4] - ref.z[4:]) ** 2).mean()
    torch.testing.assert_close(out.total, mse + 2.0 * sim)
    with pytest.raises(ValueError, match="at least 2"):
        m.loss(x[:1], "train", 0)


# ---------------------------------------------------------------- OgAE
def _cluster(n, d=4, seed=0, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, d, generator=g, dtype=torch.float64)


def _ogae(**kw):
    cfg = dict(nu=0.2, gamma=0.5, standardize=False, strategy="both")
    cfg.update(kw)
    return OgAE(OgAEConfig(**cfg))


def test_guidance_zero_inside_boundary_and_positive_outside():
    m = _ogae()
    z_svm = _cluster(20)
    inside = torch.cat([z_svm, torch.zeros(20, 4, dtype=torch.float64)])  # z_L at the cluster center
    g, n_svm, _, _ = m.guidance(inside, "both")
    assert n_svm == 20 and float(g.loss) == 0.0 and g.misclassified_fraction == 0.0
    outside = torch.cat([z_svm, 5.0 + _cluster(20, seed=1)])
    g2, _, _, _ = m.guidance(outside, "both")
    assert float(g2.loss) > 0 and g2.misclassified_fraction == 1.0


def test_guidance_is_the_authors_libsvm_scaled_penalty():
    """n_svm * sum max(0, -f_paper) == sum max(0, -f_libsvm) / nu (authors' code)."""
    from sklearn.svm import OneClassSVM

    nu, gamma = 0.2, 0.5
    z = torch.cat([_cluster(30), 0.6 + _cluster(30, seed=2)])
    m = _ogae(nu=nu, gamma=gamma)
    g, n_svm, _, _ = m.guidance(z, "both")
    sk = OneClassSVM(nu=nu, gamma=gamma, tol=1e-10).fit(z[:30].numpy())
    f_libsvm = sk.decision_function(z[30:].numpy())
    expected = np.maximum(0, -f_libsvm).sum() / nu
    assert n_svm * float(g.loss) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("phase,svm_grad,loss_grad", [("expander", True, False), ("compactor", False, True), ("both", True, True)])
def test_expander_and_compactor_route_gradients(phase, svm_grad, loss_grad):
    m = _ogae(strategy="expander-then-both" if phase != "compactor" else "compactor")
    z = torch.cat([_cluster(20), 0.8 + _cluster(20, seed=3)]).requires_grad_()
    g, _, _, _ = m.guidance(z, phase)
    assert float(g.loss.detach()) > 0
    g.loss.backward()
    assert bool(z.grad[:20].abs().sum() > 0) == svm_grad
    assert bool(z.grad[20:].abs().sum() > 0) == loss_grad


def test_ogae_total_and_terms():
    torch.manual_seed(0)
    m = OgAE(OgAEConfig(nu=0.25, lam=0.5, strategy="expander-then-both"))
    out = m.loss(_x(16), "expander", 0)
    torch.testing.assert_close(out.total, out.terms["reconstruction"] + 0.5 * out.terms["guidance"])
    assert float(out.terms["compactor"]) == 0.0 and float(out.terms["expander"]) == float(out.terms["guidance"])
    assert 0 <= out.diagnostics["sv_fraction"] <= 1 and out.diagnostics["n_support"] >= 2
    with pytest.raises(ValueError, match="nu \\* n must be >= 1 for OgAE"):
        OgAE(OgAEConfig(nu=0.03)).loss(_x(16), "both", 0)


def test_ogae_with_each_half_standardized_trains_both_halves():
    m = _ogae(standardize="each")
    z = torch.cat([_cluster(20), 0.8 + 3 * _cluster(20, seed=3)]).requires_grad_()
    g, _, _, _ = m.guidance(z, "both")
    g.loss.backward()
    assert g.loss.item() > 0 and z.grad[:20].abs().sum() > 0 and z.grad[20:].abs().sum() > 0
    torch.manual_seed(0)
    out = OgAE(OgAEConfig(nu=0.25, standardize="each", strategy="both")).loss(_x(16), "both", 0)
    assert torch.isfinite(out.total)


def test_ogae_strategy_plans():
    plan = lambda **kw: [(p.name, p.epochs) for p in OgAE(OgAEConfig(**kw)).phases(20)]  # noqa: E731
    assert plan() == [("expander", 10), ("both", 10)]
    assert plan(strategy="expander-then-compactor", switch_epoch=5) == [("expander", 5), ("compactor", 15)]
    assert plan(strategy="compactor") == [("compactor", 20)]
    assert plan(switch_epoch=0) == [("both", 20)]
    assert plan(switch_epoch=30) == [("expander", 20)]


# ---------------------------------------------------------------- Deep SVDD family
def test_init_center_pushes_small_coordinates_to_eps():
    c = init_center(torch.tensor([0.0, 0.05, -0.05, 0.3, -2.0]), eps=0.1)
    assert c.tolist() == pytest.approx([0.1, 0.1, -0.1, 0.3, -2.0])


def test_soft_radius_minimizes_the_soft_objective():
    d = torch.rand(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4
    nu = 0.1
    obj = lambda r2: r2 + torch.relu(d - r2).mean() / nu  # noqa: E731
    r = soft_radius(d, nu)
    grid = torch.linspace(0, 4, 4001, dtype=torch.float64)
    best = min(float(obj(r2)) for r2 in grid)
    assert float(obj(torch.tensor(r ** 2))) <= best + 1e-9
    assert float((d > r ** 2).double().mean()) == pytest.approx(nu, abs=0.01)


def _batches(x, k=4):
    return lambda: iter(x.split(k))


def test_hard_dsvdd_center_loss_and_score():
    torch.manual_seed(0)
    m = build_method("h-dsvdd", {"pretrain_epochs": 1})
    assert [(p.name, p.new_optimizer) for p in m.phases(3)] == [("pretrain", False), ("train", True)]
    x = _x(12)
    assert set(m.loss(x, "pretrain", 0).terms) == {"reconstruction"}
    with pytest.raises(RuntimeError, match="center is not initialized"):
        m.loss(x, "train", 0)
    m.start_phase("train", _batches(x))
    m.eval()
    expected = init_center(m.encode(x).mean(0), 0.1)
    torch.testing.assert_close(m.center, expected)
    m.train()
    out = m.loss(x, "train", 0)
    z = m.backbone.encode(x).z.detach()
    torch.testing.assert_close(out.total.detach(), ((z - m.center) ** 2).sum(1).mean(), rtol=1e-5, atol=1e-6)
    m.eval()
    torch.testing.assert_close(m.score(x, "svdd"), squared_distance(m.encode(x), m.center))
    with pytest.raises(ValueError, match="'svdd' only"):
        m.score(x, "recons")


def test_soft_dsvdd_radius_update_after_warmup():
    torch.manual_seed(0)
    m = build_method("s-dsvdd", {"pretrain_epochs": 0, "nu": 0.25, "radius_warmup_epochs": 2})
    x = _x(16)
    m.start_phase("train", _batches(x))
    m.train()
    m.loss(x, "train", 0)
    assert m.end_epoch("train", 0) == {"radius": 0.0}  # still warming up
    out = m.loss(x, "train", 1)
    dist = squared_distance(out.z, m.center)
    torch.testing.assert_close(out.total.detach(), F.relu(dist).mean() / 0.25)  # R = 0
    info = m.end_epoch("train", 1)
    assert info["radius"] == pytest.approx(soft_radius(dist, 0.25), rel=1e-6)
    r2 = m.radius ** 2
    out2 = m.loss(x, "train", 2)
    d2 = squared_distance(out2.z, m.center)
    torch.testing.assert_close(out2.total.detach(), r2 + F.relu(d2 - r2).mean() / 0.25)
    m.eval()
    torch.testing.assert_close(m.score(x, "svdd"), squared_distance(m.encode(x), m.center) - r2)


def test_dspsvdd_loss_is_reconstruction_plus_weighted_svdd():
    torch.manual_seed(0)
    m = build_method("dspsvdd", {"svdd_weight": 3.0, "pretrain_epochs": 1})
    x = _x(8)
    m.start_phase("train", _batches(x))
    out = m.loss(x, "train", 0)
    torch.testing.assert_close(out.total, out.terms["reconstruction"] + 3.0 * out.terms["svdd"])


def test_dvaesvdd_center_is_batch_mean_then_epoch_mean():
    torch.manual_seed(0)
    m = build_method("dvaesvdd", {"svdd_weight": 1.0, "kl_weight": 0.0})
    assert [p.name for p in m.phases(4)] == ["train"]
    m.train()
    centers = []
    for seed in (1, 2):
        out = m.loss(_x(8, seed), "train", 0)
        c = out.z.mean(0)
        centers.append(c)
        torch.testing.assert_close(out.terms["svdd"], ((out.z - c) ** 2).sum(1).mean())
    m.end_epoch("train", 0)
    torch.testing.assert_close(m.center, torch.stack(centers).mean(0))
    m.eval()
    x = _x(5, 9)
    torch.testing.assert_close(m.score(x, "svdd"), squared_distance(m.backbone.encode(x).mu, m.center))


def test_every_registered_method_has_a_working_default_loss():
    for name, cls in METHODS.items():
        torch.manual_seed(0)
        m = build_method(name, {"nu": 0.25} if name == "ogae" else {})
        phases = m.phases(2)
        assert all(isinstance(p, Phase) for p in phases)
        last = phases[-1].name
        m.start_phase(last, _batches(_x(16)))
        out = m.loss(_x(16), last, 0)
        assert torch.isfinite(out.total) and out.total.requires_grad
        assert cls.default_scoring in cls.scorings


# ---------------------------------------------------------------------- declarations
@pytest.mark.parametrize("name", method_names())
def test_every_method_declares_what_the_trainer_and_detector_ask(name):
    from ogae_core.methods import BATCH_LAYOUTS
    from ogae_core.train import HISTORY_COLUMNS

    cls = METHODS[name]
    m = build_method(name)
    assert cls.default_scoring in cls.scorings
    assert cls.batch_layout in BATCH_LAYOUTS
    assert set(cls.history_columns) <= set(HISTORY_COLUMNS), set(cls.history_columns) - set(HISTORY_COLUMNS)
    for phase in m.phases(4):
        weights = m.phase_weights(phase.name)
        assert set(weights) <= {"expander_weight", "compactor_weight"}
        assert bool(weights) == ("expander_weight" in cls.history_columns)
    assert cls.scale_with_epochs({}, 8) == {}
    assert m.min_batch_size() >= 1 and isinstance(m.min_batch_reason(), str)


def test_ogae_declarations_follow_its_strategy():
    m = OgAE(OgAEConfig(strategy="expander-then-compactor", switch_epoch=2))
    assert [p.name for p in m.phases(5)] == ["expander", "compactor"]
    assert m.phase_weights("compactor") == {"expander_weight": 0.0, "compactor_weight": 1.0}
    assert OgAE.scale_with_epochs({"switch_epoch": 3, "lam": 0.1}, 7) == {"switch_epoch": 3, "lam": 0.1}
    assert OgAE.scale_with_epochs({"switch_epoch": 3}, 12) == {"switch_epoch": 6}
    assert OgAE.default_scoring == "ocsvm" and OgAE(OgAEConfig(nu=0.1)).min_batch_size() == 20
    assert SAE.batch_layout == "pairs" and AE.batch_layout == "independent"
