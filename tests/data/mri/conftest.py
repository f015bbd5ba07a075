"""Fixtures of the MRI data tests.

Most tests use the small phantom of :func:`toy_anatomy` (no download). ``template`` is the one
fixture that uses the user cache (``$OGAE_CACHE/mri`` and ``downloads``): on a fresh machine it
downloads two atlas wheels (4.3 MB) and builds the template anatomy once (about 30 s).
"""
from __future__ import annotations

import numpy as np
import pytest

from ogae_core.data.mri.anatomy import toy_anatomy
from ogae_core.data.mri.grid import reference_grid
from ogae_core.data.mri.nifti import nifti_bytes


@pytest.fixture(scope="session")
def toy():
    """A 64x72x32 phantom anatomy."""
    return toy_anatomy((64, 72, 32))


@pytest.fixture(scope="session")
def template():
    """The MNI template anatomy (user cache)."""
    from ogae_core.data.mri.anatomy import template_anatomy

    return template_anatomy()


@pytest.fixture
def grid():
    return reference_grid()


@pytest.fixture
def write_nifti(grid):
    """``write_nifti(path, array, affine=None)``: a .nii.gz on a 2-slice slab of the reference grid."""
    def write(path, array, affine=None):
        affine = grid.cropped_affine(z_start=60) if affine is None else affine
        path.write_bytes(nifti_bytes(np.asarray(array), affine))
        return path

    return write
