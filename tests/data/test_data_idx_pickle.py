"""IDX parsing / writing and the restricted unpickler."""
from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from ogae_core.data.idx import IDXFormatError, encode_idx, parse_idx, read_idx, write_idx
from ogae_core.data.safe_pickle import ForbiddenPickleError, load_arrays
from ogae_core.data.sources import ChecksumError, arrays_from_pickle


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    arr = (rng.random((5, 4, 3)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"x-idx3-ubyte{suffix}", arr)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(back, arr)


def test_idx_header_layout_is_big_endian():
    raw = encode_idx(np.array([[1, 2, 3]], dtype=np.int32))
    assert raw[:4] == bytes([0, 0, 0x0C, 2])
    assert raw[4:12] == bytes([0, 0, 0, 1, 0, 0, 0, 3])
    assert raw[12:16] == bytes([0, 0, 0, 1])


def test_idx_truncated_and_bad_magic():
    raw = encode_idx(np.arange(10, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match="truncated"):
        parse_idx(raw[:-1])
    with pytest.raises(IDXFormatError, match="trailing"):
        parse_idx(raw + b"\0")
    with pytest.raises(IDXFormatError, match="magic"):
        parse_idx(b"\1" + raw[1:])
    with pytest.raises(IDXFormatError, match="type code"):
        parse_idx(raw[:2] + b"\x07" + raw[3:])


def test_idx_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "y-idx1-ubyte.gz", np.arange(1000, dtype=np.int32))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(IDXFormatError):
        read_idx(path)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_rejects_code(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps((np.zeros(3), _Evil(marker)), protocol=2)
    with pytest.raises(ForbiddenPickleError, match="system"):
        load_arrays(blob)
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(1)) == 1  # sanity: plain pickle module untouched


@pytest.mark.parametrize("proto", [2, 4, 5])
def test_restricted_unpickler_reads_arrays(proto):
    data = (np.arange(6, dtype=np.int64).reshape(2, 3), np.linspace(0, 1, 4, dtype=np.float32))
    a, b = load_arrays(pickle.dumps(data, protocol=proto))
    np.testing.assert_array_equal(a, data[0])
    np.testing.assert_array_equal(b, data[1])


def _mnist_like_pickle(x_bytes, labels):
    x = x_bytes.reshape(len(x_bytes), 784).astype(np.float32) / 256
    return pickle.dumps(((x[:3], labels[:3]), (x[3:5], labels[3:5]), (x[5:], labels[5:])), protocol=2)


def test_arrays_from_pickle_exact_bytes():
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(7, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, size=7)
    out = arrays_from_pickle(gzip.decompress(gzip.compress(_mnist_like_pickle(imgs, labels))), 256)
    np.testing.assert_array_equal(out["train_images"], imgs[:5])
    np.testing.assert_array_equal(out["test_images"], imgs[5:])
    np.testing.assert_array_equal(out["train_labels"], labels[:5])
    assert out["train_labels"].dtype == np.int64


def test_arrays_from_pickle_rejects_non_integer_pixels():
    x = np.full((2, 784), 0.3, np.float32)
    y = np.zeros(2, np.int64)
    with pytest.raises(ChecksumError, match="exact integers"):
        arrays_from_pickle(pickle.dumps(((x, y), (x, y), (x, y)), protocol=2), 256)
    with pytest.raises(ChecksumError, match="tuple"):
        arrays_from_pickle(pickle.dumps((np.zeros(3),), protocol=2), 256)
