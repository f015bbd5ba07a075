"""The refactoring guard of ``fingerprint_cases.py`` itself: reruns are bit-identical in one process.

Comparing against fingerprints recorded before a change is done by hand
(``python -m tests.ocsvm.fingerprint_cases before.json`` on both sides, same machine):
hashes depend on the machine's BLAS and CPU, so they are never stored in the repository.
"""
from __future__ import annotations

import torch

from .fingerprint_cases import _digest, cases


def test_every_32nd_case_and_an_estimator_rerun_bit_for_bit():
    every = list(cases())
    picked = every[::32] + every[-1:]
    kinds = {name.split("/")[0] for name, _ in picked}
    assert kinds == {"solve_dual", "solve_dual_rbf", "guidance", "estimator"}, kinds
    first = [_digest(thunk()) for _, thunk in picked]
    second = [_digest(thunk()) for _, thunk in picked]
    assert first == second


def test_digest_sees_one_ulp_and_the_dtype():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert _digest([x]) != _digest([torch.nextafter(x, torch.full_like(x, 3.0))])
    assert _digest([x]) != _digest([x.float()])
