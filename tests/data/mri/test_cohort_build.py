"""Simulated cohorts on the MNI template: files, determinism, cache safety, the paper's crop, CLI.

These tests use the template anatomy (user cache; see conftest) and write cohorts into a
temporary ``OGAE_CACHE`` with a few subjects of the smoke preset.
"""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from ogae_core.data.mri import build as build_module
from ogae_core.data.mri.build import build_simulated_cohort, load_cohort

SMALL = {"train_control": 2, "test_control": 1, "patient": 2}


def test_template_anatomy_matches_the_paper_grid(template, grid):
    assert grid.cropped_shape == (186, 218, 135)
    supra = template.supratentorial
    assert supra.sum() == grid.crop_volume(supra).sum()            # the crop holds every supratentorial voxel
    z = np.flatnonzero(supra.any((0, 1)))
    assert len(z) == 135 and (z[0], z[-1] + 1) == grid.crop[2]      # exactly the paper's 135 slices
    assert 1.55e6 < supra.sum() < 1.67e6
    assert 17_000 < template.ventricles.sum() < 20_000              # ~18.6 cm³ on the template
    assert not (template.ventricles & ~template.brain).any()


@pytest.mark.slow
def test_build_writes_mni_nifti_deterministically(template, tmp_path, monkeypatch):
    monkeypatch.setenv("OGAE_CACHE", str(tmp_path / "a"))
    a = build_simulated_cohort("smoke", anatomy=template, counts=SMALL)
    monkeypatch.setenv("OGAE_CACHE", str(tmp_path / "b"))
    b = build_simulated_cohort("smoke", anatomy=template, counts=SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*.nii.gz"))
    assert len(files) == 5 * 5
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    img = nib.load(a / "pat-000" / "t1.nii.gz")
    assert img.shape == (186, 218, 2) and nib.aff2axcodes(img.affine) == ("R", "A", "S")
    np.testing.assert_allclose(img.affine[:3, :3], np.eye(3))
    assert img.affine[:3, 3].tolist() == [-92.0, -126.0, 16.0]
    assert int(img.header["sform_code"]) == 4
    params = json.loads((a / "pat-000" / "params.json").read_text())
    assert params["role"] == "patient" and params["lesion_cm3"] > 0
    cohort = load_cohort("smoke", counts=SMALL)
    assert cohort.info["key"] == a.name
    s = cohort.summary()
    assert s["counts"] == SMALL and len(s["lesion_cm3"]) == 2
    assert 0 < s["prevalence_pooled"] < 0.1
    monkeypatch.setenv("OGAE_CACHE", str(tmp_path / "c"))
    c = build_simulated_cohort("smoke", anatomy=template, counts=SMALL, seed=1)
    assert (c / "pat-000" / "t1.nii.gz").read_bytes() != (a / "pat-000" / "t1.nii.gz").read_bytes()


@pytest.mark.slow
def test_interrupted_build_leaves_nothing_half_written(template, tmp_path, monkeypatch):
    monkeypatch.setenv("OGAE_CACHE", str(tmp_path))
    calls = {"n": 0}
    real = build_module.write_subject

    def flaky(folder, subject, affine):
        calls["n"] += 1
        if calls["n"] == 2:
            (folder / "t1.nii.gz").write_bytes(b"partial")
            raise OSError("disk full")
        real(folder, subject, affine)

    monkeypatch.setattr(build_module, "write_subject", flaky)
    with pytest.raises(OSError, match="disk full"):
        build_simulated_cohort("smoke", anatomy=template, counts=SMALL)
    (folder,) = (tmp_path / "mri").glob("smoke-*")
    assert sorted(p.name for p in folder.iterdir()) == ["trn-000"]     # no temp dir, no cohort.json
    with pytest.raises(FileNotFoundError, match="is not built"):
        load_cohort("smoke", counts=SMALL, build=False)
    monkeypatch.setattr(build_module, "write_subject", real)
    build_simulated_cohort("smoke", anatomy=template, counts=SMALL)     # resumes
    assert (folder / "cohort.json").is_file() and len(list(folder.glob("*/params.json"))) == 5


@pytest.mark.slow
def test_cli_smoke(template, tmp_path, monkeypatch, capsys):
    from ogae_core.cli import main

    monkeypatch.setenv("OGAE_CACHE", str(tmp_path))
    monkeypatch.setattr(build_module, "template_anatomy", lambda: template)
    fig = tmp_path / "fig.png"
    assert main(["data", "mri", "--cohort", "smoke", "--figure", str(fig), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "cohort smoke" in out and "prevalence" in out and fig.read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["counts"] == {"train_control": 5, "test_control": 3, "patient": 3}
    young = [r["ventricle_cm3"] for r in summary["subjects"] if r["role"] == "train_control"]
    old = [r["ventricle_cm3"] for r in summary["subjects"] if r["role"] != "train_control"]
    assert np.mean(old) > np.mean(young)


def test_template_ventricles_when_a_subject_has_none(template, tmp_path, write_nifti, grid):
    from ogae_core.data.mri.cohort import read_cohort_csv

    t1 = np.full((186, 218, 2), 2.0, np.float32)
    t1[0, 0, 0] = 0.0
    write_nifti(tmp_path / "t1.nii.gz", t1)
    (tmp_path / "c.csv").write_text("subject_id,role,site,age,sex,t1\nc1,test_control,s,70,F,t1.nii.gz\n")
    v = read_cohort_csv(tmp_path / "c.csv").subject("c1").load()
    expected = grid.crop_volume(template.ventricles)[:, :, 60:62]
    assert expected.any() and np.array_equal(v.ventricles, expected)
    assert v.brain.sum() == v.brain.size - 1 and not v.brain[0, 0, 0]   # no brain mask: T1 > 0
