"""Batched localized OCSVMs (issue 14's speed goal): LocalizedOCSVM vs a scikit-learn loop.

For V voxels of n training codes and m test codes in d = 400 dimensions (float32 codes,
as an encoder gives them), in one run on one machine:

* ours: ``LocalizedOCSVM(nu, gamma="scale", standardize=False).fit_decision_function(train, test)``
  (the fit and the test scores in one pass: the test kernel rows come from the product that
  gives the Gram matrices)
  on the CPU with all torch/numba threads (``torch.get_num_threads()``, named in the row);
  after a warm-up, the median of ``rounds`` runs over all V voxels;
* reference: for every voxel ``sklearn.svm.OneClassSVM(nu, gamma="scale").fit(train[v])``
  then ``.decision_function(test[v])`` (libsvm, single-threaded, default ``tol=1e-3``),
  over all V voxels once (the same problems, no extrapolation), in ``rounds`` blocks
  interleaved with our runs, so that both sides see the same load on a shared machine.

The ratio is on wall time; the row also gives the ratio of process CPU times (less
sensitive to other processes, and without the benefit of our second thread).

Beside the times the row prints the largest per-voxel relative difference of the decision
values (``max |ours - sklearn| / max |sklearn|``) against the timed loop (its ``tol=1e-3``
stops early) and against scikit-learn at ``tol=1e-12`` on a sample of voxels (the exact
optimum our solver reaches; untimed). Goal: ratio >= 10x. The 1-minute load average of the
machine is printed in the row (the ratio is meaningful only when both sides ran under the
same load). Run with ``python -m benchmarks.run_all --only bench_localized`` (``--quick``:
300 voxels).

Measured 2026-12-01 on the shared 2-core CPU (AMD EPYC, AVX2) under load from other helpers,
``OMP_WAIT_POLICY=PASSIVE`` (without it, on a loaded machine the OpenMP threads spin between
the parallel regions and both ratios collapse: compare rows only under the same policy).
After the fused fit + score (compiled blocked dot products of the stacked training and test
codes, per-thread scratch, 8 MiB chunks, whole-dual solve when the working set is every
point), load average 4.2-4.9: quick (3 runs) n = 16 41.5-51.5x (CPU-time ratio 43-59x),
n = 60 10.1-15.6x (CPU 11.2-16.1x); full (V = 2,000) n = 16 56.2x (CPU 54.6x), n = 60 13.3x
(CPU 13.7x). The reference's own time per voxel moved between 1.9 and 4 ms with the load
(n = 60), so ratios from different runs differ by that much; one run before the last solver
change gave n = 60 9.1x (CPU 10.2x) quick and 10.5x (CPU 11.1x) full at load 3.9-4.3.
Before (separate fit and decision_function, float64
``torch.bmm`` Gram matrices), quick under load 4.1-4.7: n = 16 15-17x, n = 60 6.1-7.0x (CPU
6.3x). Per voxel, one thread, interleaved A/B of the two versions at load 3.5 (CPU ms,
median of 9): n = 60 0.243-0.274 -> 0.131-0.136, n = 16 0.065-0.071 -> 0.022-0.024. At n = 60
the remaining time is the fit pass (conversion, dot products, exponents: ~0.07 ms, the dot
products ~0.055 of it, about 30 GFLOP/s), ``exp`` (~0.013) and the exact working-set solve
(~0.045: nu = 0.5 leaves ~80 % of the points support vectors, ~36 of them free, and the
shared engine refactors the free block, a scalar Cholesky of ~8-10 us, at each of its ~3
iterations). The n = 60 ratio clears the goal by a small margin on this loaded machine (a
run at 9.1x was seen); on an idle one our second thread helps (the reference is
single-threaded).
"""
from __future__ import annotations

import os
import statistics
import time
from typing import Callable

import numpy as np
import torch

D = 400
M = 12
NU = 0.5


def _problems(V: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 training (V, n, D) and test (V, M, D) codes; every voxel has its own
    feature scales and offsets, test codes are wider (some fall outside)."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.5, 2.0, size=(V, 1, D))
    shift = rng.normal(size=(V, 1, D))
    train = rng.normal(size=(V, n, D)) * scale + shift
    test = rng.normal(size=(V, M, D)) * scale * 1.3 + shift
    return train.astype(np.float32), test.astype(np.float32)


def _sklearn_decisions(train: np.ndarray, test: np.ndarray, nu: float, tol: float) -> np.ndarray:
    from sklearn.svm import OneClassSVM as SkOneClassSVM

    out = np.empty(test.shape[:2])
    for v in range(train.shape[0]):
        out[v] = SkOneClassSVM(nu=nu, gamma="scale", tol=tol).fit(train[v]).decision_function(test[v])
    return out


def _max_rel(ours: np.ndarray, ref: np.ndarray) -> float:
    return float((np.abs(ours - ref).max(1) / np.abs(ref).max(1)).max())


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_fit_score(V: int, n: int, rounds: int, n_exact: int, threads: int, nu: float = NU) -> dict:
    """One row: batched fit + score of V voxels vs the scikit-learn loop over them."""
    from ogae_core.ocsvm import LocalizedOCSVM

    train, test = _problems(V, n, seed=n)
    model = LocalizedOCSVM(nu=nu, gamma="scale", standardize=False, device="cpu")
    holder: dict = {}

    def ours() -> None:
        holder["f"] = model.fit_decision_function(train, test)

    ours()  # warm-up (compiled solver, first allocations)
    _sklearn_decisions(train[:5], test[:5], nu, 1e-3)
    f_ref = np.empty(test.shape[:2])
    ours_wall, ours_cpu, ref_wall, ref_cpu = [], [], 0.0, 0.0
    for block in np.array_split(np.arange(V), rounds):
        wall, cpu = _timed(ours)
        ours_wall.append(wall)
        ours_cpu.append(cpu)
        sl = slice(int(block[0]), int(block[-1]) + 1)

        def reference(sl=sl) -> None:
            f_ref[sl] = _sklearn_decisions(train[sl], test[sl], nu, 1e-3)

        wall, cpu = _timed(reference)
        ref_wall += wall
        ref_cpu += cpu
    f = holder["f"]
    rel_timed = _max_rel(f, f_ref)
    rel_exact = _max_rel(f[:n_exact], _sklearn_decisions(train[:n_exact], test[:n_exact], nu, 1e-12))
    t_ours, c_ours = statistics.median(ours_wall), statistics.median(ours_cpu)
    load = os.getloadavg()[0]
    return {
        "benchmark": "localized",
        "case": (
            f"LocalizedOCSVM fit+score V={V} n={n} d={D} m={M} nu={nu} gamma=scale float32 codes, {threads} threads, "
            f"vs sklearn OneClassSVM loop (fit+decision_function per voxel); max rel diff {rel_timed:.1e} vs that "
            f"loop (tol=1e-3), {rel_exact:.1e} vs sklearn tol=1e-12 on {n_exact} voxels; CPU-time ratio "
            f"{ref_cpu / c_ours:.1f}x; load avg {load:.1f}"
        ),
        "ours": t_ours,
        "reference": ref_wall,
        "unit": "s",
        "ratio": ref_wall / t_ours,
        "goal": ">= 10x",
    }


def run(quick: bool = False) -> list[dict]:
    """The issue-14 rows (n = 16 and n = 60); rows as described in ``benchmarks/run_all.py``."""
    V, rounds, n_exact = (300, 2, 50) if quick else (2000, 5, 200)
    threads = torch.get_num_threads()
    return [bench_fit_score(V, n, rounds, n_exact, threads) for n in (16, 60)]


if __name__ == "__main__":
    from benchmarks.run_all import format_table

    print(format_table(run()))
