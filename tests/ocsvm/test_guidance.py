"""The guidance loss: values on constructed cases, gradient routing, diagnostics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ogae_core.ocsvm import guidance_loss, rbf_kernel, resolve_gamma, solve_dual

from .helpers import libsvm_reference


def _codes(seed: int = 0, n: int = 100, d: int = 8, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, dtype=dtype, generator=g)


def _grads(z: torch.Tensor, beta1: float, beta2: float, **kw):
    z = z.clone().requires_grad_(True)
    out = guidance_loss(z[:50], z[50:], nu=0.3, expander_weight=beta1, compactor_weight=beta2, **kw)
    out.loss.backward()
    return out, z.grad


def test_loss_is_zero_when_every_z_loss_is_inside():
    z_svm = _codes(1, n=60)
    sol = solve_dual(rbf_kernel(z_svm, gamma=resolve_gamma(z_svm, "scale")), 0.3)
    inside = z_svm[sol.alpha == 0]  # lower-bound points satisfy f(x) >= 0
    out = guidance_loss(z_svm, inside, nu=0.3)
    # `inside` was chosen with the torch kernel, the loss uses the compiled engine's kernel:
    # a point on the boundary (f = 0 in exact arithmetic) may come out at f ~ -1e-16 there
    assert out.loss.item() <= 1e-12 and out.misclassified_fraction <= 1.0 / len(inside)


def test_far_away_points_cost_exactly_rho_each():
    z_svm = _codes(2, n=60)
    far = torch.full((7, 8), 1e3, dtype=torch.float64)
    out = guidance_loss(z_svm, far, nu=0.3)
    assert out.misclassified_fraction == 1.0
    assert out.loss.item() == pytest.approx(7 * out.rho, rel=1e-12)
    mean = guidance_loss(z_svm, far, nu=0.3, reduction="mean")
    assert mean.loss.item() == pytest.approx(out.rho, rel=1e-12)


def test_expander_only_sends_nothing_to_z_loss_and_compactor_only_nothing_to_z_svm():
    z = _codes(3) * 1.5
    out, g_exp = _grads(z, 1.0, 0.0)
    assert out.loss.item() > 0
    assert torch.count_nonzero(g_exp[50:]) == 0 and torch.count_nonzero(g_exp[:50]) > 0
    _, g_comp = _grads(z, 0.0, 1.0)
    assert torch.count_nonzero(g_comp[:50]) == 0 and torch.count_nonzero(g_comp[50:]) > 0


def test_weights_combine_linearly_and_full_gradient_matches_finite_differences():
    z = _codes(4) * 1.5
    _, g10 = _grads(z, 1.0, 0.0)
    _, g01 = _grads(z, 0.0, 1.0)
    _, g11 = _grads(z, 1.0, 1.0)
    _, g23 = _grads(z, 2.0, 3.0)
    torch.testing.assert_close(g11, g10 + g01)
    torch.testing.assert_close(g23, 2 * g10 + 3 * g01)
    # (1, 1) is the full gradient of eq. (6): central differences, gamma fixed
    gamma = resolve_gamma(z[:50], "scale")

    def value(zz):
        return guidance_loss(zz[:50], zz[50:], nu=0.3, gamma=gamma).loss.item()

    _, g_fixed = _grads(z, 1.0, 1.0, gamma=gamma)
    rng = np.random.default_rng(0)
    for idx in rng.choice(z.numel(), size=12, replace=False):
        i, j = divmod(int(idx), z.shape[1])
        e = torch.zeros_like(z)
        e[i, j] = 1e-6
        fd = (value(z + e) - value(z - e)) / 2e-6
        assert fd == pytest.approx(float(g_fixed[i, j]), rel=1e-4, abs=1e-7)


def test_loss_value_does_not_depend_on_the_weights():
    z = _codes(5) * 1.5
    values = {guidance_loss(z[:50], z[50:], nu=0.3, expander_weight=a, compactor_weight=b).loss.item()
              for a, b in [(1, 0), (0, 1), (1, 1), (2, 5)]}
    assert len(values) == 1


def test_diagnostics_match_libsvm():
    z = _codes(6)
    gamma = resolve_gamma(z[:50], "scale")
    out = guidance_loss(z[:50], z[50:], nu=0.3)
    K = rbf_kernel(z[:50], gamma=gamma)
    a_ref, rho_ref, model = libsvm_reference(K, 0.3)
    assert out.gamma == pytest.approx(1.0 / (8 * z[:50].var(unbiased=False).item()))
    assert out.n_support == len(model.support_)
    assert out.rho == pytest.approx(rho_ref, abs=1e-7)
    f_ref = rbf_kernel(z[50:], z[:50], gamma=gamma).numpy() @ a_ref - rho_ref
    assert out.misclassified_fraction == pytest.approx(float((f_ref < 0).mean()))
    assert out.n_iter >= 1


def test_standardization_uses_z_svm_statistics_and_keeps_routing():
    z = _codes(7) * torch.linspace(0.1, 10, 8, dtype=torch.float64) + 3.0
    out, g = _grads(z, 1.0, 0.0, standardize=True)
    assert torch.count_nonzero(g[50:]) == 0
    mean, std = z[:50].mean(0), z[:50].std(0, unbiased=False)
    ref = guidance_loss((z[:50] - mean) / std, (z[50:] - mean) / std, nu=0.3)
    assert out.loss.item() == pytest.approx(ref.loss.item(), rel=1e-12)


def test_float32_codes_get_float32_loss_and_float64_solve():
    z = _codes(8, dtype=torch.float32).requires_grad_(True)
    out = guidance_loss(z[:50], z[50:], nu=0.5)
    assert out.loss.dtype == torch.float32
    out.loss.backward()
    assert z.grad.dtype == torch.float32 and torch.isfinite(z.grad).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(expander_weight=-1.0), "must be >= 0"),
        (dict(reduction="max"), "reduction"),
        (dict(nu=0.01), "nu \\* n must be >= 1"),
        (dict(gamma="median"), "gamma must be"),
        (dict(gamma=-2.0), "gamma must be positive"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    z = _codes(9)
    with pytest.raises(ValueError, match=message):
        guidance_loss(z[:50], z[50:], **kwargs)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same d"):
        guidance_loss(torch.zeros(10, 3), torch.zeros(10, 4))


def _both_paths(z0, w_exp, w_comp, n_svm=50, **kw):
    """Loss, diagnostics and gradient of the fused CPU node and of the torch composition."""
    from ogae_core.ocsvm.guidance import guidance_loss_composite

    results = []
    for fn in (guidance_loss, guidance_loss_composite):
        z = z0.clone().requires_grad_(True)
        args = dict(nu=0.3, gamma="scale", standardize=False, reduction="sum")
        args.update(kw)
        out = fn(z[:n_svm], z[n_svm:], args["nu"], args["gamma"], w_exp, w_comp, args["standardize"], args["reduction"])
        out.loss.backward()
        results.append((out, z.grad))
    return results


@pytest.mark.parametrize("standardize", [False, True, "each"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("weights", [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 2.0)])
def test_fused_cpu_node_matches_the_torch_composition(standardize, reduction, weights):
    z0 = _codes(11) * torch.linspace(0.5, 3, 8, dtype=torch.float64) + 0.7
    (fused, g_fused), (comp, g_comp) = _both_paths(z0, *weights, standardize=standardize, reduction=reduction,
                                                   gamma=0.05 if standardize else "scale")
    assert fused.loss.item() > 0 and fused.misclassified_fraction > 0
    assert fused.loss.item() == pytest.approx(comp.loss.item(), rel=1e-10)
    # the same active-set iteration on the same points: same support and iterations; the two
    # paths round the decision values differently, so at most one code may change side
    assert (fused.n_support, fused.n_iter) == (comp.n_support, comp.n_iter)
    assert fused.misclassified_fraction == pytest.approx(comp.misclassified_fraction, abs=1.0 / 50 + 1e-12)
    assert fused.rho == pytest.approx(comp.rho, rel=1e-10) and fused.gamma == pytest.approx(comp.gamma, rel=1e-12)
    torch.testing.assert_close(g_fused, g_comp, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("case", ["vertex", "near-duplicates", "float32", "float32-each"])
def test_fused_cpu_node_matches_the_composition_in_edge_cases(case):
    g = torch.Generator().manual_seed(12)
    if case == "vertex":  # nu = 1: every alpha at its bound, rho by libsvm's midpoint rule
        z0, kw = torch.randn(24, 3, dtype=torch.float64, generator=g), dict(nu=1.0, gamma=0.5)
    elif case == "near-duplicates":  # Cholesky refused, bordered LU used
        z0, kw = torch.randn(24, 3, dtype=torch.float64, generator=g), dict(nu=0.2, gamma=0.5)
        z0[1], z0[2] = z0[0] + 1e-9, z0[0]
    elif case == "float32":
        z0, kw = torch.randn(40, 6, generator=g), dict(nu=0.25, standardize=True, gamma=0.1)
    else:  # the authors' regime on float32 codes: standardized in float64 on both paths
        z0, kw = 5 * torch.randn(40, 6, generator=g) + 3, dict(nu=0.25, standardize="each", gamma="scale")
    (fused, g_fused), (comp, g_comp) = _both_paths(z0, 1.0, 1.0, n_svm=12 if not case.startswith("float32") else 20,
                                                   **kw)
    assert fused.loss.dtype == z0.dtype and g_fused.dtype == z0.dtype
    assert fused.loss.item() == pytest.approx(comp.loss.item(), rel=1e-6)
    assert g_fused.abs().sum() > 0
    tol = dict(rtol=1e-4, atol=1e-6) if case.startswith("float32") else dict(rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(g_fused, g_comp, **tol)


def test_fused_cpu_node_rejects_non_finite_codes():
    z = _codes(13)
    z[60, 0] = float("nan")
    with pytest.raises(ValueError, match="z_loss contains non-finite"):
        guidance_loss(z[:50], z[50:], nu=0.3)
    with pytest.raises(ValueError, match="non-finite"):
        guidance_loss(z[50:], z[:50].flip(0), nu=0.3)


def test_each_half_standardization_matches_libsvm_on_separately_standardized_halves():
    z = _codes(14) * torch.linspace(0.2, 5, 8, dtype=torch.float64) - 1.0
    out = guidance_loss(z[:50], z[50:], nu=0.3, gamma=0.2, standardize="each")
    zs_np, zl_np = z[:50].numpy(), z[50:].numpy()
    # the authors' TensorFlow code: population std, no epsilon
    zs_n = (zs_np - zs_np.mean(0)) / zs_np.std(0)
    zl_n = (zl_np - zl_np.mean(0)) / zl_np.std(0)
    a_ref, rho_ref, _ = libsvm_reference(rbf_kernel(torch.from_numpy(zs_n), gamma=0.2), 0.3)
    f_ref = rbf_kernel(torch.from_numpy(zl_n), torch.from_numpy(zs_n), gamma=0.2).numpy() @ a_ref - rho_ref
    assert out.loss.item() == pytest.approx(np.maximum(-f_ref, 0).sum(), rel=1e-6)
    assert out.rho == pytest.approx(rho_ref, abs=1e-7)


def test_each_half_standardization_is_blind_to_the_scale_of_the_codes_but_shared_statistics_are_not():
    """The cause of the latent-scale explosion: with ``standardize=True`` the statistics are
    constants of the step, so the expander's gradient has a component along the raw scale;
    with ``"each"`` the loss is invariant to scaling the codes, so that component is zero."""
    z = (_codes(18) * 2.0).requires_grad_(True)
    radial = {}
    for mode in ("each", True):
        z.grad = None
        guidance_loss(z[:50], z[50:], nu=0.3, gamma=0.2, standardize=mode, expander_weight=1.0,
                      compactor_weight=0.0).loss.backward()
        radial[mode] = float((z.grad * z.detach()).sum())  # d loss / d log(scale) of the codes
    value = lambda zz: guidance_loss(zz[:50], zz[50:], nu=0.3, gamma=0.2, standardize="each").loss.item()  # noqa: E731
    assert value(z.detach() * 10.0) == pytest.approx(value(z.detach()), rel=1e-9)
    assert abs(radial["each"]) < 1e-8
    assert abs(radial[True]) > 1e-3


def test_each_half_standardization_differentiates_through_the_statistics():
    z = (_codes(15) * 1.5).requires_grad_(True)
    guidance_loss(z[:50], z[50:], nu=0.3, gamma=0.2, standardize="each").loss.backward()
    # each half is invariant to shifting it: the gradient of every half sums to zero per dimension
    torch.testing.assert_close(z.grad[:50].sum(0), torch.zeros(8, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(z.grad[50:].sum(0), torch.zeros(8, dtype=torch.float64), atol=1e-9, rtol=0)
    assert z.grad[50:].abs().sum() > 0

    def value(zz):
        return guidance_loss(zz[:50], zz[50:], nu=0.3, gamma=0.2, standardize="each").loss.item()

    rng = np.random.default_rng(1)
    for idx in rng.choice(z.numel(), size=8, replace=False):
        i, j = divmod(int(idx), 8)
        e = torch.zeros_like(z)
        e[i, j] = 1e-6
        fd = (value(z.detach() + e) - value(z.detach() - e)) / 2e-6
        assert fd == pytest.approx(float(z.grad[i, j]), rel=1e-4, abs=1e-7)
    with pytest.raises(ValueError, match="standardize must be"):
        guidance_loss(z[:50], z[50:], standardize="both")


def test_each_half_gets_a_gradient_of_its_own_dtype():
    z_svm = _codes(16, n=30).requires_grad_(True)
    z_loss = _codes(17, n=30, dtype=torch.float32).mul(2).requires_grad_(True)
    out = guidance_loss(z_svm, z_loss, nu=0.2)
    out.loss.backward()
    assert out.loss.dtype == torch.float64 and z_svm.grad.dtype == torch.float64 and z_loss.grad.dtype == torch.float32


@pytest.mark.parametrize("standardize", [False, True, "each"])
def test_cpu_float64_codes_take_the_fused_node(standardize):
    z = _codes(21).requires_grad_(True)
    out = guidance_loss(z[:50], z[50:], nu=0.3, gamma="scale", standardize=standardize)
    assert "GuidanceCpu" in type(out.loss.grad_fn).__name__
