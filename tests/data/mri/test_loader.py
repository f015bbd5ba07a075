"""The NIfTI loader and CSV cohorts: round trip, grids, and every bad input of the issue."""
from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from ogae_core.data.mri.cohort import read_cohort_csv
from ogae_core.data.mri.nifti import file_sha256, load_volume, nifti_bytes
from ogae_core.data.sources import ChecksumError

SHAPE = (186, 218, 2)
HEADER = "subject_id,role,site,age,sex,t1,lesion_mask,brain_mask,ventricle_mask,t1_sha256\n"


def _t1(seed=0):
    rng = np.random.default_rng(seed)
    t1 = np.zeros(SHAPE, np.float32)
    t1[40:150, 40:180] = 100 + 10 * rng.random((110, 140, 2))
    return t1


def _masks():
    brain = np.zeros(SHAPE, np.uint8)
    brain[40:150, 40:180] = 1
    vent = np.zeros(SHAPE, np.uint8)
    vent[90:100, 100:120] = 1
    les = np.zeros(SHAPE, np.uint8)
    les[60:64, 60:63, 1] = 1
    les[70, 70, 0] = 2
    return brain, vent, les


@pytest.fixture
def cohort_dir(tmp_path, write_nifti):
    """A small real-format cohort: 2 controls and 1 patient on a 2-slice slab of the MNI grid."""
    brain, vent, les = _masks()
    lines = [HEADER]
    for sid, role in (("c1", "train_control"), ("c2", "test_control"), ("p1", "patient")):
        t1 = write_nifti(tmp_path / f"{sid}_T1w.nii.gz", _t1(len(lines)))
        write_nifti(tmp_path / f"{sid}_brain.nii.gz", brain)
        write_nifti(tmp_path / f"{sid}_vent.nii.gz", vent)
        lesion = f"{sid}_les.nii.gz" if role == "patient" else ""
        if lesion:
            write_nifti(tmp_path / lesion, les)
        lines.append(f"{sid},{role},site-x,70,F,{sid}_T1w.nii.gz,{lesion},{sid}_brain.nii.gz,{sid}_vent.nii.gz,"
                     f"{file_sha256(t1)}\n")
    (tmp_path / "cohort.csv").write_text("".join(lines))
    return tmp_path


def test_csv_round_trip(cohort_dir):
    cohort = read_cohort_csv(cohort_dir / "cohort.csv")
    assert [len(cohort.by_role(r)) for r in ("train_control", "test_control", "patient")] == [1, 1, 1]
    v = cohort.subject("p1").load()
    raw = _t1(3)
    expected = (raw - raw.min()) / (raw.max() - raw.min())
    np.testing.assert_allclose(v.t1, expected, atol=1e-6)
    brain, vent, les = _masks()
    assert np.array_equal(v.brain, brain > 0) and np.array_equal(v.ventricles, vent > 0)
    assert v.lesion.sum() == 13 and v.lesion_cm3 == pytest.approx(0.013)
    assert v.prevalence == pytest.approx(13 / brain.sum())
    assert v.z_start == 60 and v.affine[2, 3] == 8.0
    only_wmh = read_cohort_csv(cohort_dir / "cohort.csv", lesion_labels=[1]).subject("p1").load()
    assert only_wmh.lesion.sum() == 12
    summary = cohort.summary()
    assert summary["counts"]["patient"] == 1 and summary["prevalence_pooled"] == pytest.approx(v.prevalence)


def test_bids_pattern_fills_empty_paths(cohort_dir):
    text = (cohort_dir / "cohort.csv").read_text().replace("c1_T1w.nii.gz", "")
    (cohort_dir / "b.csv").write_text(text)
    cohort = read_cohort_csv(cohort_dir / "b.csv", patterns={"t1": "{subject_id}_T1w.nii.gz"})
    assert cohort.subject("c1").files["t1"] == cohort_dir / "c1_T1w.nii.gz"
    cohort.subject("c1").load()


def test_full_grid_is_cropped_and_other_grids_resampled(tmp_path, grid):
    full = np.zeros(grid.shape, np.float32)
    full[100, 120, 90] = 5.0
    path = tmp_path / "full.nii.gz"
    path.write_bytes(nifti_bytes(full, grid.affine))
    v = load_volume(path, subject="s", kind="t1", grid=grid)
    assert v.data.shape == (186, 218, 135) and v.data[94, 112, 70] == 1.0
    # a 2 mm image is refused unless resampling is asked for
    aff2 = grid.affine.copy()
    aff2[:3, :3] *= 2
    path2 = tmp_path / "two_mm.nii.gz"
    path2.write_bytes(nifti_bytes(np.ones((99, 117, 95), np.uint8), aff2))
    with pytest.raises(ValueError, match="subject s: brain_mask file .*two_mm.nii.gz.*not the reference grid"):
        load_volume(path2, subject="s", kind="brain_mask", grid=grid, mask=True)
    r = load_volume(path2, subject="s", kind="brain_mask", grid=grid, mask=True, resample=True)
    assert r.data.shape == (186, 218, 135) and r.data.dtype == np.uint8 and set(np.unique(r.data)) <= {0, 1}


def test_reoriented_input_is_made_canonical(tmp_path, grid, write_nifti):
    t1 = _t1()
    aff = grid.cropped_affine(60)
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = SHAPE[0] - 1
    path = tmp_path / "las.nii.gz"
    path.write_bytes(nifti_bytes(t1[::-1], aff @ flip))                 # the same image stored L-to-R
    v = load_volume(path, subject="s", kind="t1", grid=grid)
    np.testing.assert_allclose(v.data, (t1 - t1.min()) / (t1.max() - t1.min()), atol=1e-6)


def test_nan_becomes_zero(tmp_path, grid, write_nifti):
    t1 = _t1()
    t1[0, 0, 0] = np.nan
    v = load_volume(write_nifti(tmp_path / "n.nii.gz", t1), subject="s", kind="t1", grid=grid)
    assert np.isfinite(v.data).all() and v.data[0, 0, 0] == 0.0


# ---------------------------------------------------------------- bad input
def _edit(cohort_dir, old, new):
    path = cohort_dir / "cohort.csv"
    path.write_text(path.read_text().replace(old, new))
    return read_cohort_csv(path)


def test_missing_file(cohort_dir):
    (cohort_dir / "c2_vent.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="subject c2: ventricle_mask file .*c2_vent.nii.gz does not exist"):
        read_cohort_csv(cohort_dir / "cohort.csv").subject("c2").load()


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_cohort_csv(tmp_path / "nope.csv")


def test_mask_with_other_shape(cohort_dir, write_nifti):
    write_nifti(cohort_dir / "c1_brain.nii.gz", np.ones((186, 218, 3), np.uint8))
    with pytest.raises(ValueError, match="subject c1: brain_mask file .*c1_brain.nii.gz has shape"):
        read_cohort_csv(cohort_dir / "cohort.csv").subject("c1").load()


def test_mask_with_other_affine(cohort_dir, write_nifti, grid):
    write_nifti(cohort_dir / "c1_vent.nii.gz", _masks()[1], grid.cropped_affine(61))
    with pytest.raises(ValueError, match="subject c1: ventricle_mask file .*c1_vent.nii.gz .*same grid"):
        read_cohort_csv(cohort_dir / "cohort.csv").subject("c1").load()


def test_four_d_volume(cohort_dir, grid):
    img = nib.Nifti1Image(np.ones(SHAPE + (2,), np.float32), grid.cropped_affine(60))
    (cohort_dir / "c1_T1w.nii.gz").write_bytes(gzip.compress(img.to_bytes()))
    cohort = _edit(cohort_dir, ",c1_T1w.nii.gz,", ",c1_T1w.nii.gz,")
    with pytest.raises(ValueError, match="subject c1: t1 file .*c1_T1w.nii.gz.*(3-D|sha256)"):
        cohort.subject("c1").load()
    with pytest.raises(ValueError, match="subject c1: t1 file .*c1_T1w.nii.gz: expected a 3-D volume"):
        cohort.subject("c1").load(verify=False)


def test_non_finite_volume(cohort_dir, write_nifti):
    t1 = _t1()
    t1[50, 50, 0] = np.inf
    write_nifti(cohort_dir / "c2_T1w.nii.gz", t1)
    with pytest.raises(ValueError, match="subject c2: t1 file .*c2_T1w.nii.gz: the volume holds infinite values"):
        read_cohort_csv(cohort_dir / "cohort.csv").subject("c2").load(verify=False)


def test_truncated_gzip(cohort_dir):
    path = cohort_dir / "p1_les.nii.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="subject p1: lesion_mask file .*p1_les.nii.gz: not a readable NIfTI"):
        read_cohort_csv(cohort_dir / "cohort.csv").subject("p1").load()


def test_patient_without_lesion(cohort_dir, write_nifti):
    write_nifti(cohort_dir / "p1_les.nii.gz", np.zeros(SHAPE, np.uint8))
    with pytest.raises(ValueError, match="subject p1: a patient needs a non-empty lesion mask"):
        read_cohort_csv(cohort_dir / "cohort.csv").subject("p1").load()
    with pytest.raises(ValueError, match="subject p1: a patient needs a non-empty lesion mask"):
        _edit(cohort_dir, "p1_les.nii.gz", "").subject("p1").load()


def test_control_with_lesion(cohort_dir):
    cohort = _edit(cohort_dir, "c2,test_control,site-x,70,F,c2_T1w.nii.gz,,", "c2,test_control,site-x,70,F,c2_T1w.nii.gz,p1_les.nii.gz,")
    with pytest.raises(ValueError, match="subject c2: a control .*must not have lesion voxels .*p1_les.nii.gz"):
        cohort.subject("c2").load()


def test_checksum_mismatch(cohort_dir, write_nifti):
    write_nifti(cohort_dir / "c1_T1w.nii.gz", _t1(99))
    with pytest.raises(ChecksumError, match="subject c1: t1 file .*c1_T1w.nii.gz: sha256"):
        read_cohort_csv(cohort_dir / "cohort.csv").subject("c1").load()
    assert issubclass(ChecksumError, ValueError)


def test_unknown_role(cohort_dir):
    with pytest.raises(ValueError, match="subject c1: unknown role 'control'"):
        _edit(cohort_dir, "c1,train_control", "c1,control")


def test_bad_rows(cohort_dir):
    with pytest.raises(ValueError, match="subject c2: age 'old' is not a number"):
        _edit(cohort_dir, "c2,test_control,site-x,70", "c2,test_control,site-x,old")
    (cohort_dir / "x.csv").write_text("subject_id,role\nc1,patient\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_cohort_csv(cohort_dir / "x.csv")
