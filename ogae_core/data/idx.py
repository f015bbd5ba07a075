"""Read and write IDX files, the binary format MNIST is published in.

An IDX file is a big-endian header followed by the raw array:

- 2 zero bytes, one type byte (``0x08`` = unsigned byte, ``0x09`` = signed byte,
  ``0x0B`` = int16, ``0x0C`` = int32, ``0x0D`` = float32, ``0x0E`` = float64),
  one byte with the number of dimensions ``d``;
- ``d`` big-endian uint32 sizes;
- the data, C order, big-endian.

Gzipped files (``*.gz``) are read and written transparently.
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "parse_idx", "write_idx", "IDXFormatError"]

_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}
_CODES[np.dtype(np.uint8)] = 0x08
_CODES[np.dtype(np.int8)] = 0x09


class IDXFormatError(ValueError):
    """Raised when bytes are not a well-formed IDX file (bad magic, truncated, trailing data)."""


def parse_idx(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file.

    Parameters
    ----------
    data : bytes
        The whole file content.
    name : str
        Used in error messages.

    Returns
    -------
    numpy.ndarray
        Native-endian array with the shape stored in the header.

    Raises
    ------
    IDXFormatError
        If the magic number is wrong, the type code unknown, or the payload is
        shorter or longer than the header announces (a truncated download).

    Examples
    --------
    >>> import numpy as np
    >>> raw = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
    >>> parse_idx(raw).tolist()
    [7, 8, 9]
    """
    if len(data) < 4:
        raise IDXFormatError(f"{name}: {len(data)} bytes is too short for an IDX header")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise IDXFormatError(f"{name}: bad IDX magic number (first two bytes must be zero)")
    if code not in _TYPES:
        raise IDXFormatError(f"{name}: unknown IDX type code 0x{code:02X}")
    if ndim == 0:
        raise IDXFormatError(f"{name}: IDX header declares zero dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXFormatError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = _TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(data) - header_len
    if payload != expected:
        kind = "truncated" if payload < expected else "has trailing bytes"
        raise IDXFormatError(
            f"{name}: IDX file {kind}: header announces shape {shape} ({expected} bytes), "
            f"found {payload} bytes of data"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file from disk (gzip-compressed when the name ends in ``.gz``).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte.gz")
    >>> _ = write_idx(p, np.arange(4, dtype=np.uint8))
    >>> read_idx(p).tolist()
    [0, 1, 2, 3]
    """
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:  # BadGzipFile is an OSError
            raise IDXFormatError(f"{path}: not a valid gzip file ({exc})") from exc
    return parse_idx(raw, name=str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes (the inverse of :func:`parse_idx`)."""
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=") if arr.dtype.itemsize > 1 else arr.dtype
    if key not in _CODES:
        raise ValueError(f"dtype {arr.dtype} cannot be stored in an IDX file")
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {arr.ndim}")
    code = _CODES[key]
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=_TYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip when the name ends in ``.gz``); returns the path.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = write_idx(os.path.join(tempfile.mkdtemp(), "a-idx3-ubyte"), np.zeros((2, 3, 3), np.uint8))
    >>> read_idx(p).shape
    (2, 3, 3)
    """
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
