"""MNIST-C corruptions: properties that can fail, determinism, batch independence."""
from __future__ import annotations

import colorsys

import numpy as np
import pytest
from scipy import ndimage

from ogae_core.data import CORRUPTIONS, corrupt, corruption_params
from ogae_core.data.corruption_geometry import motion_blur, motion_kernel, warp_affine
from ogae_core.data.manifests import mnistc_manifest

RANDOM = {"shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "rotate", "translate",
          "fog", "spatter", "dotted_line", "zigzag"}


@pytest.fixture(scope="module")
def digits(real_mnist):
    return np.array(real_mnist.train_images[:24])


def test_all_fifteen_plus_identity():
    assert CORRUPTIONS[0] == "identity" and len(CORRUPTIONS) == 16
    assert set(CORRUPTIONS) == set(mnistc_manifest()["corruptions"])


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_kind_range_and_determinism(digits, name):
    x = digits[:6]
    y = corrupt(x, name, seed=3)
    assert y.dtype == np.uint8 and y.shape == x.shape
    np.testing.assert_array_equal(y, corrupt(x, name, seed=3))
    xf = x.astype(np.float32) / 255
    yf = corrupt(xf, name, seed=3)
    assert yf.dtype == np.float32 and 0.0 <= yf.min() and yf.max() <= 1.0
    assert np.abs(np.rint(yf.astype(np.float64) * 255) - y).max() <= 1  # same corruption either kind
    if name in RANDOM:
        assert not np.array_equal(y, corrupt(x, name, seed=4))


@pytest.mark.parametrize("name", sorted(RANDOM - {"fog"}) + ["fog"])
def test_independent_of_batch(digits, name):
    x = digits[:8]
    whole = corrupt(x, name, seed=1)
    parts = np.concatenate([corrupt(x[i:i + 3], name, seed=1, indices=np.arange(i, min(i + 3, 8)))
                            for i in range(0, 8, 3)])
    np.testing.assert_array_equal(whole, parts)
    single = corrupt(x[5:6], name, seed=1, indices=[5])
    np.testing.assert_array_equal(single[0], whole[5])


def test_identity_exact(digits):
    np.testing.assert_array_equal(corrupt(digits, "identity"), digits)
    f = digits.astype(np.float64) / 255
    np.testing.assert_array_equal(corrupt(f, "identity"), f)


def test_stripe_inverts_outer_columns(digits):
    y = corrupt(digits, "stripe").astype(int)
    x = digits.astype(int)
    np.testing.assert_array_equal(y[:, :, :7], 255 - x[:, :, :7])
    np.testing.assert_array_equal(y[:, :, 21:], 255 - x[:, :, 21:])
    np.testing.assert_array_equal(y[:, :, 7:21], x[:, :, 7:21])


def test_canny_is_binary_and_traces_a_square():
    img = np.zeros((1, 28, 28))
    img[0, 8:20, 8:20] = 1.0
    e = corrupt(img, "canny_edges")
    assert set(np.unique(e)) <= {0.0, 1.0}
    assert e[0, 10:18, 10:18].sum() == 0 and e[0, 0].sum() == 0 and e[0, :, 0].sum() == 0
    rows, cols = np.nonzero(e[0])
    assert rows.min() >= 6 and rows.max() <= 21 and cols.min() >= 6 and cols.max() <= 21
    assert len(rows) >= 40  # a closed ring around the square


def test_canny_on_digits_binary(digits):
    y = corrupt(digits, "canny_edges")
    assert set(np.unique(y)) <= {0, 255} and (y > 0).any()


def _shift(a, dy, dx):
    out = np.zeros_like(a)
    h, w = a.shape
    src = a[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = src
    return out


def test_translate_moves_mass_by_severity(digits):
    for sev in (1, 3, 5):
        k = corruption_params("translate", sev)["pixels"]
        y = corrupt(digits, "translate", seed=7, severity=sev)
        moved = 0
        for a, b in zip(digits, y, strict=True):
            hits = [(dy, dx) for dy in (-k, k) for dx in (-k, k) if np.array_equal(_shift(a, dy, dx), b)]
            assert len(hits) == 1  # exactly a shift by k pixels along both axes, zero fill
            if a.sum() == b.sum():  # nothing left the frame: the centre of mass moved by (+-k, +-k)
                d = np.subtract(ndimage.center_of_mass(b.astype(float)), ndimage.center_of_mass(a.astype(float)))
                np.testing.assert_allclose(d, hits[0], atol=1e-9)
                moved += 1
        assert moved >= (len(digits) // 2 if k <= 3 else 1)


def test_brightness_raises_hsv_value(digits):
    shift = corruption_params("brightness")["value_shift"]
    x = digits[:3].astype(np.float64) / 255
    y = corrupt(x, "brightness")
    for v, out in zip(x.ravel()[::37], y.ravel()[::37], strict=True):
        h, s, val = colorsys.rgb_to_hsv(v, v, v)
        r, g, b = colorsys.hsv_to_rgb(h, s, min(val + shift, 1.0))
        assert out == pytest.approx(0.2125 * r + 0.7154 * g + 0.0721 * b, abs=1e-12)
    assert y.min() == pytest.approx(shift)


def test_affine_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.random((2, 28, 28))
    a = np.array([[0.9, -0.3], [0.2, 1.1]])
    t = (1.7, -2.2)
    ours = warp_affine(x, a, t)
    # scipy works in (row, col): input = M @ (row, col) + offset
    m = np.array([[a[1, 1], a[1, 0]], [a[0, 1], a[0, 0]]])
    ref = np.stack([ndimage.affine_transform(im, m, offset=(t[1], t[0]), order=1, mode="grid-constant")
                    for im in x])
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_rotate_and_shear_keep_centre_and_preserve_blank(digits):
    blank = np.zeros((2, 28, 28), np.uint8)
    for name in ("rotate", "shear", "scale"):
        assert corrupt(blank, name).sum() == 0
    dot = np.zeros((1, 28, 28))
    dot[0, 13:15, 13:15] = 1.0
    for name in ("rotate", "shear", "scale"):
        y = corrupt(dot, name, seed=2)
        assert np.allclose(ndimage.center_of_mass(y[0]), (13.5, 13.5), atol=1e-9)


class _Fixed:
    def __init__(self, angle):
        self.angle = angle

    def uniform(self, lo, hi):
        return self.angle


def test_motion_blur_is_one_sided_gaussian_line():
    p = corruption_params("motion_blur")
    k = motion_kernel(p["radius"], p["sigma"])
    assert len(k) == 2 * p["radius"] + 1 and k.sum() == pytest.approx(1.0)
    assert np.all(np.diff(k) < 0)
    img = np.zeros((1, 28, 28))
    img[0, 10, 22] = 1.0
    y = motion_blur(img, [_Fixed(0.0)], p)[0]
    # angle 0: output(r, c) = sum_i k_i x(r, c + i): the streak lies to the left, row unchanged
    assert np.all(y[[r for r in range(28) if r != 10]] == 0)
    assert np.all(y[10, 23:] == 0)
    np.testing.assert_allclose(y[10, 22::-1][:len(k)], np.rint(k * 255) / 255)
    y90 = motion_blur(img, [_Fixed(45.0)], p)[0]
    assert y90[10, 22] > 0 and y90[9, 21] > 0 and y90[11, 23] == 0


def test_impulse_noise_rate(real_mnist):
    x = np.array(real_mnist.train_images[:300])
    y = corrupt(x, "impulse_noise")
    amount = corruption_params("impulse_noise")["amount"]
    changed_to_extreme = ((y == 0) | (y == 255)) & (y != x)
    rate = changed_to_extreme.mean()
    # flips that land on an equal value are invisible: expected visible rate is below `amount`
    assert 0.5 * amount < rate < amount


def test_shot_noise_is_unbiased(real_mnist):
    x = np.array(real_mnist.train_images[:100]).astype(np.float64) / 255
    y = corrupt(x, "shot_noise")
    c = corruption_params("shot_noise")["photons"]
    from scipy.stats import poisson

    k = np.arange(60)
    expected = (poisson.pmf(k[None, :], c * x.ravel()[:, None]) * np.minimum(k / c, 1.0)).sum(1).mean()
    assert abs(y.mean() - expected) < 0.003  # E[min(Poisson(c x) / c, 1)]
    assert set(np.unique(np.rint(y * corruption_params("shot_noise")["photons"]))) <= set(range(4))


def test_bad_input_errors(digits):
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(digits, "snow")
    with pytest.raises(ValueError, match="severity"):
        corrupt(digits, "translate", severity=6)
    with pytest.raises(ValueError, match="no severity"):
        corrupt(digits, "stripe", severity=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(digits.astype(np.float32), "identity")
    with pytest.raises(ValueError, match="shape"):
        corrupt(digits[0], "identity")
    with pytest.raises(ValueError, match="dtype"):
        corrupt(digits.astype(np.int32), "identity")
    with pytest.raises(ValueError, match="seed"):
        corrupt(digits, "translate", seed=-1)


@pytest.mark.parametrize("size, decay", [(256, 1.4), (256, 2.0), (32, 1.7), (8, 1.5)])
def test_fog_fast_path_equals_full_plasma_map(size, decay):
    from ogae_core.data.fog import counter_uniform, fog_haze, plasma_fractal

    keys = (np.arange(1, 41, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(12345)
    noise = counter_uniform(keys[:, None], np.arange(size * size - 1, dtype=np.uint64)[None, :])
    full = plasma_fractal(noise, size, decay, 100.0)  # whole map, normalised by its own min / max
    h = min(size, 28)
    haze = fog_haze(keys, (h, h), size, decay, 100.0)
    np.testing.assert_allclose(haze, full[:, :h, :h], atol=1e-6)
    assert haze.min() >= 0.0 and haze.max() <= 1.0


def test_fog_haze_strength(digits):
    p = corruption_params("fog")
    x = digits[:4].astype(np.float64) / 255
    y = corrupt(x, "fog")
    top = x.max(axis=(1, 2), keepdims=True)
    # y = (x + s * haze) * top / (top + s) with haze in [0, 1]: bounds that can fail
    assert np.all(y >= x * top / (top + p["strength"]) - 1e-12)
    assert np.all(y <= (x + p["strength"]) * top / (top + p["strength"]) + 1e-12)
    assert (y[x == 0] > 0).mean() > 0.9  # the haze covers the background


def test_brightness_table_path_equals_formula(digits):
    from ogae_core.data.corruption_overlay import _brightness

    x = digits.astype(np.float64) / 255  # > 4096 byte-valued pixels: the table path
    p = corruption_params("brightness")
    np.testing.assert_array_equal(corrupt(x, "brightness"), _brightness(x, p))
