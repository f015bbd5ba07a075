"""OneClassSVM.save / OneClassSVM.load: safetensors + JSON, no pickle, loud failures."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from ogae_core.ocsvm import persistence
from ogae_core.ocsvm.estimator import OneClassSVM


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(150, 5)), rng.normal(size=(60, 5)) * 1.5


@pytest.fixture(scope="module")
def fitted(data) -> OneClassSVM:
    return OneClassSVM(nu=0.2, gamma="scale", batch_size=64, device="cpu").fit(data[0])


def test_roundtrip_is_exact(tmp_path, fitted, data):
    out = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in out.iterdir()) == sorted([persistence.PARAMS_FILE, persistence.ARRAYS_FILE])
    meta = json.loads((out / persistence.PARAMS_FILE).read_text())  # plain JSON, readable without our code
    assert meta["params"]["nu"] == 0.2 and meta["fitted"]["gamma_"] == fitted.gamma_
    loaded = OneClassSVM.load(out)
    assert loaded.get_params() == fitted.get_params()
    for name in ("support_vectors_", "support_", "dual_coef_", "offset_", "intercept_", "alpha_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fitted, name))
    assert (loaded.rho_, loaded.gamma_, loaded.n_features_in_, loaded.n_iter_) == (
        fitted.rho_, fitted.gamma_, fitted.n_features_in_, fitted.n_iter_
    )
    np.testing.assert_array_equal(loaded.decision_function(data[1]), fitted.decision_function(data[1]))
    np.testing.assert_array_equal(loaded.predict(data[1]), fitted.predict(data[1]))


def test_feature_names_and_device_survive(tmp_path, data):
    frame = pd.DataFrame(data[0], columns=[f"z{i}" for i in range(5)])
    model = OneClassSVM(nu=0.3, device="cpu").fit(frame)
    loaded = OneClassSVM.load(model.save(tmp_path / "m"))
    assert list(loaded.feature_names_in_) == list(frame.columns)
    assert loaded.device == "cpu"
    with pytest.raises(ValueError, match="feature names"):
        loaded.decision_function(pd.DataFrame(data[1], columns=[f"w{i}" for i in range(5)]))


def test_refuses_to_overwrite_unless_asked(tmp_path, fitted, data):
    target = tmp_path / "model"
    fitted.save(target)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fitted.save(target)
    other = OneClassSVM(nu=0.5, device="cpu").fit(data[0])
    other.save(target, overwrite=True)
    assert OneClassSVM.load(target).nu == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temp or backup dirs left behind


def test_never_replaces_a_foreign_directory(tmp_path, fitted):
    target = tmp_path / "results"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="does not hold a saved OneClassSVM"):
        fitted.save(target, overwrite=True)
    assert (target / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        fitted.save(tmp_path / "file")


def test_save_into_existing_empty_directory(tmp_path, fitted):
    (tmp_path / "empty").mkdir()
    fitted.save(tmp_path / "empty")
    assert OneClassSVM.load(tmp_path / "empty").n_samples_fit_ == fitted.n_samples_fit_


def test_save_unfitted_raises(tmp_path):
    with pytest.raises(NotFittedError):
        OneClassSVM().save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_missing_files(tmp_path, fitted):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        OneClassSVM.load(tmp_path / "nothing")
    out = fitted.save(tmp_path / "a")
    (out / persistence.ARRAYS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=persistence.ARRAYS_FILE):
        OneClassSVM.load(out)
    out = fitted.save(tmp_path / "b")
    (out / persistence.PARAMS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=persistence.PARAMS_FILE):
        OneClassSVM.load(out)


def _edit_meta(path, fn):
    file = path / persistence.PARAMS_FILE
    meta = json.loads(file.read_text())
    fn(meta)
    file.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "corrupt,match",
    [
        (lambda p: (p / persistence.PARAMS_FILE).write_text("{not json"), "not valid JSON"),
        (lambda p: (p / persistence.ARRAYS_FILE).write_bytes(b"\x00garbage"), "not a readable safetensors"),
        (lambda p: _edit_meta(p, lambda m: m.update(format="other")), "not a saved OneClassSVM"),
        (lambda p: _edit_meta(p, lambda m: m.update(version=99)), "version"),
        (lambda p: _edit_meta(p, lambda m: m["params"].update(kernel="linear")), "unknown parameters"),
        (lambda p: _edit_meta(p, lambda m: m["fitted"].update(n_features_in_=4)), "inconsistent arrays"),
        (lambda p: _edit_meta(p, lambda m: m["fitted"].pop("gamma_")), "fitted attribute"),
    ],
)
def test_corrupt_files_raise(tmp_path, fitted, corrupt, match):
    out = fitted.save(tmp_path / "m")
    corrupt(out)
    with pytest.raises(ValueError, match=match):
        OneClassSVM.load(out)


def test_truncated_arrays_raise(tmp_path, fitted):
    from safetensors.numpy import load_file, save_file

    out = fitted.save(tmp_path / "m")
    arrays = load_file(str(out / persistence.ARRAYS_FILE))
    arrays["dual_coef_"] = arrays["dual_coef_"][:, :-1]
    save_file(arrays, str(out / persistence.ARRAYS_FILE))
    with pytest.raises(ValueError, match="inconsistent arrays"):
        OneClassSVM.load(out)
    del arrays["offset_"]
    save_file(arrays, str(out / persistence.ARRAYS_FILE))
    with pytest.raises(ValueError, match="lacks arrays"):
        OneClassSVM.load(out)
