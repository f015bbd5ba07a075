"""Patch sampling: random (seeded, fixed count), dense stride-1 per slice, pairs, budget."""
from __future__ import annotations

import numpy as np
import pytest

from ogae_core.data.mri.patches import check_patch_size, dense_patches, paired_patches, patch_budget, random_patches


@pytest.fixture
def volumes():
    rng = np.random.default_rng(0)
    vols = [rng.random((30, 34, 3)).astype(np.float32) for _ in range(3)]
    brains = []
    for k in range(3):
        b = np.zeros((30, 34, 3), bool)
        b[5 + k:25, 4:30 - k] = True
        brains.append(b)
    return vols, brains


def _naive(vol, x, y, z, size):
    half = size // 2
    pad = np.pad(vol[:, :, z], half)
    return pad[x:x + size, y:y + size]


def test_dense_patches_match_a_naive_loop(volumes):
    vols, brains = volumes
    patches, xy = dense_patches(vols[0], brains[0], z=1, size=15)
    assert len(patches) == brains[0][:, :, 1].sum() and patches.shape[1:] == (15, 15)
    for i in (0, len(xy) // 2, len(xy) - 1):
        np.testing.assert_array_equal(patches[i], _naive(vols[0], *xy[i], 1, 15))
    assert (patches[:, 7, 7] == vols[0][xy[:, 0], xy[:, 1], 1]).all()


def test_random_patches_seeded_fixed_count_in_brain(volumes):
    vols, brains = volumes
    a, ia = random_patches(vols, brains, n=500, rng=np.random.default_rng(3))
    b, ib = random_patches(vols, brains, n=500, rng=np.random.default_rng(3))
    c, _ = random_patches(vols, brains, n=500, rng=np.random.default_rng(4))
    assert a.shape == (500, 15, 15) and np.array_equal(a, b) and np.array_equal(ia, ib) and not np.array_equal(a, c)
    for s, x, y, z in ia[:50]:
        assert brains[s][x, y, z]
        np.testing.assert_array_equal(a[(ia == [s, x, y, z]).all(1)][0], _naive(vols[s], x, y, z, 15))
    assert set(ia[:, 0]) == {0, 1, 2}


def test_paired_patches_same_voxel_two_subjects(volumes):
    vols, brains = volumes
    a, b, idx = paired_patches(vols, brains, n=300, rng=np.random.default_rng(0))
    assert (idx[:, 0] != idx[:, 1]).all()
    for k in range(0, 300, 37):
        i, j, x, y, z = idx[k]
        assert brains[i][x, y, z] and brains[j][x, y, z]
        np.testing.assert_array_equal(a[k], _naive(vols[i], x, y, z, 15))
        np.testing.assert_array_equal(b[k], _naive(vols[j], x, y, z, 15))
    with pytest.raises(ValueError, match="at least two subjects"):
        paired_patches(vols[:1], brains[:1], n=3)


def test_patch_size_must_be_odd(volumes):
    vols, brains = volumes
    with pytest.raises(ValueError, match="must be odd"):
        dense_patches(vols[0], brains[0], z=0, size=14)
    with pytest.raises(ValueError, match="patch size must be an integer >= 1"):
        check_patch_size(0)


def test_budget_scales_with_subjects_and_voxels():
    a = patch_budget(10, 20, 1000, n_slices=2)
    b = patch_budget(20, 20, 2000, n_slices=2)
    assert b["dense_patches_train"] == 4 * a["dense_patches_train"]
    assert b["codes_gb_per_slice_train"] == pytest.approx(4 * a["codes_gb_per_slice_train"])
