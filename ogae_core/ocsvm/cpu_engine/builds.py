"""Serial and threaded compiled builds of one batched function (numba).

Threads pay off for large batches only (``PARALLEL_MIN_BATCH`` problems or more); a
single problem runs the serial build.
"""
from __future__ import annotations

import types

from numba import njit

__all__ = ["PARALLEL_MIN_BATCH", "Builds", "serial_and_parallel"]

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
        fn = self.parallel if args[0].shape[0] >= PARALLEL_MIN_BATCH else self.serial
        return fn(*args)


def serial_and_parallel(fn, name: str) -> Builds:
    """Compile ``fn`` (a batched loop over ``prange``) twice, under ``name_serial`` and ``name_parallel``."""
    return Builds(fn, name)
