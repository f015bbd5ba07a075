"""Serial and threaded compiled builds of one batched function (numba).

Threads pay off for large batches only (``PARALLEL_MIN_BATCH`` problems or more); a
single problem runs the serial build.

Numba's threads and torch's share one OpenMP runtime: a parallel region started by numba
sets the process's OpenMP thread count to numba's, so torch would then run on every core
of the machine whatever ``torch.set_num_threads`` said (seen: 1 -> 2 threads after one
batched solve). :func:`call_within_torch_threads` runs a parallel build with at most torch's
thread count and puts torch's setting back afterwards. Each problem of a batch is solved by
one thread, so the thread count never changes a result.

The engine's matrix products on small matrices (``z @ z.T`` of 50 points, the guidance's
backward) go to scipy's OpenBLAS, whose own thread pool then competes with torch's threads
for the same cores: an S-H2 training step with two torch threads took 51 ms with OgAE
against 35 ms for the AE (34 ms with OpenBLAS limited to one thread; idle 2-core VM).
:func:`one_blas_thread` runs a call with the BLAS libraries limited to one thread.
"""
from __future__ import annotations

import contextlib
import functools
import types

import numba
import torch
from numba import njit

__all__ = ["PARALLEL_MIN_BATCH", "Builds", "call_within_torch_threads", "fastmath_chain", "one_blas_thread",
           "serial_and_parallel"]

PARALLEL_MIN_BATCH = 8


def _renamed(fn, name: str):
    """A copy of ``fn`` under another qualified name: numba's on-disk cache is keyed by
    the function's name and line, so the serial and the parallel build of one function
    would otherwise overwrite (and load) each other's machine code."""
    clone = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    clone.__qualname__ = name
    return clone


class Builds:
    """The two builds of a batched function; calling picks one by the batch size (``len`` of the first argument)."""

    def __init__(self, fn, name: str) -> None:
        self.parallel = njit(cache=True, parallel=True)(_renamed(fn, f"{name}_parallel"))
        self.serial = njit(cache=True)(_renamed(fn, f"{name}_serial"))

    def __call__(self, *args):
        if args[0].shape[0] >= PARALLEL_MIN_BATCH:
            return call_within_torch_threads(self.parallel, *args)
        return self.serial(*args)


def call_within_torch_threads(fn, *args):
    """Call a numba ``parallel=True`` function on at most ``torch.get_num_threads()`` threads,
    then restore torch's thread count (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from numba import prange
    >>> @njit(parallel=True)
    ... def doubled(x):
    ...     out = np.empty_like(x)
    ...     for i in prange(x.shape[0]):
    ...         out[i] = 2 * x[i]
    ...     return out
    >>> before = torch.get_num_threads()
    >>> call_within_torch_threads(doubled, np.arange(3.0)).tolist()
    [0.0, 2.0, 4.0]
    >>> torch.get_num_threads() == before
    True
    """
    threads = torch.get_num_threads()
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        return fn(*args)
    finally:
        numba.set_num_threads(previous)
        torch.set_num_threads(threads)


def fastmath_chain(dispatcher, flags=frozenset({"reassoc", "contract"}), cache: bool = True, suffix: str = "_fastmath",
                   _memo=None):
    """Another build of a compiled function and of every compiled function it calls (found
    among its global names, recursively), all with ``fastmath=flags``; the originals are
    left as they are (their results, and the engine fingerprints, do not change).

    With the default flags sums may be reassociated (vectorized) and multiply-adds fused:
    results equal the original's to rounding (no assumption on NaN or infinities). With
    ``cache``, each clone is cached on disk under its name plus ``suffix`` (functions defined
    in a file only).

    Examples
    --------
    >>> @njit
    ... def _total(x):
    ...     s = 0.0
    ...     for v in x:
    ...         s += v
    ...     return s
    >>> import numpy as np
    >>> float(fastmath_chain(_total, cache=False)(np.arange(5.0)))
    10.0
    """
    from numba.core.registry import CPUDispatcher

    memo = {} if _memo is None else _memo
    if dispatcher in memo:
        return memo[dispatcher]
    py = dispatcher.py_func
    scope = dict(py.__globals__)
    for name in py.__code__.co_names:
        if isinstance(scope.get(name), CPUDispatcher):
            scope[name] = fastmath_chain(scope[name], flags, cache, suffix, memo)
    clone = types.FunctionType(py.__code__, scope, py.__name__ + suffix, py.__defaults__, py.__closure__)
    clone.__qualname__ = py.__qualname__ + suffix
    clone.__module__ = py.__module__
    memo[dispatcher] = njit(cache=cache, fastmath=set(flags))(clone)
    return memo[dispatcher]


def serial_and_parallel(fn, name: str) -> Builds:
    """Compile ``fn`` (a batched loop over ``prange``) twice, under ``name_serial`` and ``name_parallel``."""
    return Builds(fn, name)


@functools.cache
def _blas_pools():
    """The BLAS libraries' threadpoolctl selection (made once, on first use)."""
    import scipy.linalg.cython_blas  # noqa: F401 - numba's BLAS; loaded before threadpoolctl looks
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


@contextlib.contextmanager
def one_blas_thread():
    """Limit the loaded BLAS libraries (numpy's and scipy's OpenBLAS) to one thread inside
    the block, then restore their thread counts (about 30 us per use). Also a decorator:
    ``@one_blas_thread()`` limits every call of the decorated function.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     product = np.ones((3, 2)) @ np.ones((2, 3))
    >>> product[0, 0]
    np.float64(2.0)
    """
    with _blas_pools().limit(limits=1):
        yield
