"""OCSVM benchmarks: the differentiable layer, batched solve throughput, final fit + scoring.

Three measurements, ours against the reference, in one run on one machine:

a. layer step (forward + backward), n = 50 points of d = 32: ``z -> rbf_kernel ->
   solve_dual -> sum(w * alpha) + rho -> backward``; native solver vs the paper's
   cvxpylayers formulation (:func:`ogae_core.ocsvm.cvxpy_backend.solve_dual_cvxpylayers`).
b. throughput, B = 10,000 problems of n = 60 points (d = 32): one batched native
   ``solve_dual`` (kernels included) vs a loop of ``sklearn.svm.OneClassSVM.fit``;
   the sklearn loop is timed on a subset and extrapolated per problem.
c. final fit on N = 16,500 latents (d = 32) and scoring of 36,000 points:
   :class:`ogae_core.ocsvm.OneClassSVM` vs ``sklearn.svm.OneClassSVM``.

All timings: warm-up, then the median of several repeats, with ``torch.set_num_threads``
fixed per comparison and named in each row (libsvm is single-threaded). Run with
``python -m benchmarks.run_all --only bench_ocsvm`` (``--quick`` for smaller sizes).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np
import torch

NU = 0.1
D = 32


def _median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _row(case: str, ours: float, reference: float, unit: str, higher_is_better: bool, goal: str) -> dict:
    ratio = ours / reference if higher_is_better else reference / ours
    return {"benchmark": "ocsvm", "case": case, "ours": ours, "reference": reference, "unit": unit, "ratio": ratio, "goal": goal}


def bench_layer(repeats_native: int, repeats_cvx: int, threads: int) -> list[dict]:
    """(a) forward + backward of the OCSVM layer, n = 50, d = 32, float64.

    The reference runs twice: at the project's default SCS tolerance (``eps = 1e-9``,
    accuracy comparable to the exact native solver) and at SCS's own default
    (``eps = 1e-4``, the cheapest setting a user of the paper's code would get).
    """
    from ogae_core.ocsvm.cvxpy_backend import solve_dual_cvxpylayers
    from ogae_core.ocsvm.kernels import rbf_kernel, resolve_gamma
    from ogae_core.ocsvm.layer_on_points import solve_dual_rbf
    from ogae_core.ocsvm.solver import solve_dual

    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(50, D, dtype=torch.float64, generator=gen)
    w = torch.randn(50, dtype=torch.float64, generator=gen)
    gamma = float(resolve_gamma(z0, "scale"))

    def step(solver: str, solver_args: dict | None = None) -> Callable[[], None]:
        def run() -> None:
            z = z0.clone().requires_grad_(True)
            if solver == "fused":  # what guidance_loss uses: one node z -> (alpha, rho)
                sol = solve_dual_rbf(z, NU, gamma)
                alpha, rho = sol.alpha, sol.rho
            else:
                K = rbf_kernel(z, gamma=gamma)
                if solver == "native":
                    sol = solve_dual(K, NU)
                    alpha, rho = sol.alpha, sol.rho
                else:
                    alpha, rho = solve_dual_cvxpylayers(K, NU, solver_args=solver_args)
            ((w * alpha).sum() + rho).backward()
        return run

    timings = {name: _median_seconds(step(name), repeats_native, warmup=3) for name in ("fused", "native")}
    rows = []
    for eps in (1e-9, 1e-4):
        cvx = _median_seconds(step("cvxpylayers", {"eps": eps}), repeats_cvx, warmup=2)
        for name, label in (("fused", "solve_dual_rbf(z)"), ("native", "solve_dual(rbf_kernel(z))")):
            rows.append(_row(
                f"layer fwd+bwd n=50 d={D} nu={NU} float64: {label} vs cvxpylayers (SCS eps={eps:g}), {threads} torch threads",
                timings[name] * 1e3, cvx * 1e3, "ms/step", False, ">= 30x",
            ))
    return rows


def bench_throughput(n_problems: int, n_sklearn: int, repeats: int, threads: int, nu: float = NU,
                     fused: bool = True) -> dict:
    """(b) problems per second: batched native solve vs a loop over sklearn.

    ``fused``: ``solve_dual_rbf(Z, nu, gamma)`` (kernels computed in compiled parallel
    code, the per-voxel use case); else ``solve_dual(rbf_kernel(Z, gamma), nu)``.
    """
    from sklearn.svm import OneClassSVM as SkOneClassSVM

    from ogae_core.ocsvm.kernels import rbf_kernel, resolve_gamma
    from ogae_core.ocsvm.layer_on_points import solve_dual_rbf
    from ogae_core.ocsvm.solver import solve_dual

    gen = torch.Generator().manual_seed(1)
    Z = torch.randn(n_problems, 60, D, dtype=torch.float64, generator=gen)

    def native() -> None:
        with torch.no_grad():
            gamma = resolve_gamma(Z, "scale")
            if fused:
                solve_dual_rbf(Z, nu, gamma)
            else:
                solve_dual(rbf_kernel(Z, gamma=gamma), nu)

    subset = Z[:n_sklearn].numpy()

    def sklearn_loop() -> None:
        for b in range(n_sklearn):
            SkOneClassSVM(nu=nu, gamma="scale").fit(subset[b])

    t_native = _median_seconds(native, repeats, warmup=1)
    t_sklearn = _median_seconds(sklearn_loop, repeats, warmup=1)
    how = "solve_dual_rbf(Z)" if fused else "solve_dual(rbf_kernel(Z))"
    return _row(
        f"batched {how}, B={n_problems} n=60 d={D} nu={nu} (kernels included), {threads} threads; "
        f"sklearn loop timed on {n_sklearn} problems and extrapolated per problem",
        n_problems / t_native, n_sklearn / t_sklearn, "problems/s", True, ">= 10x",
    )


def bench_final_fit(n_train: int, n_score: int, repeats: int, threads: int) -> list[dict]:
    """(c) OneClassSVM fit on n_train latents and scoring of n_score points."""
    from sklearn.svm import OneClassSVM as SkOneClassSVM

    from ogae_core.ocsvm.estimator import OneClassSVM

    rng = np.random.default_rng(2)
    X = rng.normal(size=(n_train, D))
    T = np.vstack([rng.normal(size=(n_score - n_score // 10, D)), rng.normal(size=(n_score // 10, D)) * 2.0])
    ours = OneClassSVM(nu=NU, device="cpu")
    ref = SkOneClassSVM(nu=NU)
    t_fit_ours = _median_seconds(lambda: ours.fit(X), repeats, warmup=0)
    t_fit_ref = _median_seconds(lambda: ref.fit(X), repeats, warmup=0)
    t_score_ours = _median_seconds(lambda: ours.decision_function(T), repeats, warmup=1)
    t_score_ref = _median_seconds(lambda: ref.decision_function(T), repeats, warmup=1)
    d_ours, d_ref = ours.decision_function(T), ref.decision_function(T)
    rel = float(np.max(np.abs(d_ours - d_ref)) / np.max(np.abs(d_ref)))
    n_sv = len(ours.support_)
    return [
        _row(f"final fit N={n_train} d={D} nu={NU} (both libsvm; {n_sv} SVs)", t_fit_ours, t_fit_ref, "s", False, "parity (same libsvm)"),
        _row(
            f"scoring {n_score} points vs {n_sv} SVs, torch float64 cpu, {threads} threads; "
            f"max abs diff / max abs f = {rel:.1e}",
            t_score_ours, t_score_ref, "s", False, "faster than sklearn",
        ),
    ]


def run(quick: bool = False) -> list[dict]:
    """Run the three OCSVM benchmarks; rows as described in ``benchmarks/run_all.py``.

    Every comparison is first made with one torch thread (libsvm is single-threaded,
    and on a busy machine small torch ops suffer from thread contention); the batched
    solve and the scoring are repeated with all cores (``torch.get_num_threads()`` at
    start). The thread count is restored at the end.
    """
    all_threads = torch.get_num_threads()
    sizes = dict(layer=(10, 5), throughput=(1000, 100, 1), final=(3000, 6000, 1)) if quick else dict(
        layer=(50, 20), throughput=(10_000, 500, 3), final=(16_500, 36_000, 3)
    )
    rows: list[dict] = []
    try:
        torch.set_num_threads(1)
        rows += bench_layer(*sizes["layer"], threads=1)
        rows += bench_final_fit(*sizes["final"], threads=1)
        torch.set_num_threads(all_threads)  # the batched solve uses every core (numba threads too)
        for nu in (NU, 0.5):
            rows.append(bench_throughput(*sizes["throughput"], threads=all_threads, nu=nu))
        rows.append(bench_throughput(*sizes["throughput"], threads=all_threads, fused=False))
        if all_threads > 1:
            rows += bench_final_fit(*sizes["final"], threads=all_threads)[1:]
    finally:
        torch.set_num_threads(all_threads)
    return rows


if __name__ == "__main__":
    from benchmarks.run_all import format_table

    print(format_table(run()))
