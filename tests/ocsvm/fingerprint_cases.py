"""SHA-256 fingerprints of the OCSVM outputs on ~100 seeded cases (a refactoring guard).

Run ``python -m tests.ocsvm.fingerprint_cases [out.json]`` before and after a change that
must not move any number: every entry (and the ``all`` digest over them) must be
identical on the same machine. Only public names of :mod:`ogae_core.ocsvm` are used, so
the script runs unchanged on both sides of a reorganization of the package.

Covered: ``solve_dual`` (single and batched, float64 and float32, CPU and torch engines,
vertex and interior cases, near-duplicate points; values and gradients), the batched
compiled fit (``B >= 8``, the threaded path) and the libsvm fallback, ``solve_dual_rbf``
(single and batched; values and gradients), ``guidance_loss`` (standardize True / False /
"each", float32 codes, float32 solver, routing weights, mean reduction; loss, diagnostics,
gradients) and :class:`OneClassSVM` (libsvm, native and nu = 1 fits; decision_function).

Examples
--------
>>> h = _digest([torch.zeros(2, dtype=torch.float64)])
>>> len(h)
64
"""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import torch

from ogae_core.ocsvm import OneClassSVM, guidance_loss, rbf_kernel, solve_dual, solve_dual_rbf


def _digest(items) -> str:
    """SHA-256 over the bytes (and dtype) of tensors, arrays and plain numbers."""
    h = hashlib.sha256()
    for x in items:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if isinstance(x, np.ndarray):
            h.update(str(x.dtype).encode() + str(x.shape).encode())
            h.update(np.ascontiguousarray(x).tobytes())
        else:
            h.update(repr(x).encode())
    return h.hexdigest()


def _points(seed: int, n: int, d: int, kind: str = "plain", dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    if kind == "dup":  # near-duplicates: a third of the points within 1e-9 of the first
        k = max(2, n // 3)
        z[:k] = z[0] + 1e-9 * torch.randn(k, d, generator=g, dtype=torch.float64)
    elif kind == "exactdup":
        z[: max(2, n // 3)] = z[0]
    elif kind == "lowdim":
        z = z[:, :2].contiguous()
    return z.to(dtype)


def _gamma(z: torch.Tensor) -> float:
    return float(1.0 / (z.shape[-1] * z.detach().double().var(unbiased=False)))


def _solve_dual_case(seed, n, d, nu, kind, dtype, engine, batch):
    zs = [_points(seed * 31 + b, n, d, kind, torch.float64) for b in range(batch or 1)]
    K = torch.stack([rbf_kernel(z, gamma=_gamma(z)) for z in zs]).to(dtype)
    if not batch:
        K = K[0]
    K = K.clone().requires_grad_(True)
    sol = solve_dual(K, nu, engine=engine)
    w = torch.linspace(-1.0, 1.0, n, dtype=dtype)
    (sol.alpha * w).sum().add(sol.rho.sum() * 0.7).backward()
    return [sol.alpha, sol.rho, sol.n_iter, sol.kkt_residual, sol.n_fallback, K.grad]


def _solve_dual_rbf_case(seed, n, d, nu, kind, dtype, batch):
    if batch:
        z = torch.stack([_points(seed * 17 + b, n, d, kind, dtype) for b in range(batch)])
        gam = torch.tensor([_gamma(z[b]) for b in range(batch)])
        sol = solve_dual_rbf(z, nu, gam)
        out = [sol.alpha, sol.rho, sol.n_iter, sol.kkt_residual, sol.n_fallback]
        zg = z.clone().requires_grad_(True)  # with gradient: the composition path
        sol2 = solve_dual_rbf(zg, nu, gam)
        (sol2.alpha.square().sum() + sol2.rho.sum()).backward()
        return out + [sol2.alpha, sol2.rho, zg.grad]
    z = _points(seed, n, d, kind, dtype).requires_grad_(True)
    sol = solve_dual_rbf(z, nu, _gamma(z))
    w = torch.linspace(0.5, -1.5, n, dtype=dtype)
    ((sol.alpha * w).sum() - 0.3 * sol.rho).backward()
    return [sol.alpha, sol.rho, sol.n_iter, sol.kkt_residual, sol.n_fallback, z.grad]


def _guidance_case(seed, n, d, nu, gamma, standardize, dtype, weights, reduction, solver_dtype, kind):
    z = _points(seed, 2 * n, d, kind, dtype)
    z = (z * 0.7 + 0.1).requires_grad_(True)
    out = guidance_loss(z[:n], z[n:], nu=nu, gamma=gamma, expander_weight=weights[0],
                        compactor_weight=weights[1], standardize=standardize, reduction=reduction,
                        solver_dtype=solver_dtype)
    if out.loss.requires_grad:
        out.loss.backward()
    grad = z.grad if z.grad is not None else torch.zeros(0)
    return [out.loss, out.misclassified_fraction, out.n_support, out.rho, out.n_iter, out.gamma, grad]


def _estimator_case(seed, n, d, nu, gamma, solver, dtype):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    T = np.vstack([rng.normal(size=(40, d)), 4.0 + rng.normal(size=(5, d))])
    m = OneClassSVM(nu=nu, gamma=gamma, solver=solver, device="cpu", dtype=dtype).fit(X)
    return [m.support_, m.dual_coef_, m.offset_, m.alpha_, m.rho_, m.gamma_, m.n_iter_,
            m.decision_function(T), m.score_samples(T), m.predict(T)]


def cases():
    """Yield ``(name, thunk)`` for every case."""
    shapes = [(20, 3), (50, 32), (37, 8), (60, 2)]
    for i, (nu, kind) in enumerate([(0.03, "plain"), (0.1, "plain"), (0.5, "plain"), (0.2, "dup"),
                                     (0.5, "exactdup"), (0.05, "lowdim"), (1.0, "plain"), (0.9, "plain")]):
        for j, (n, d) in enumerate(shapes[:3]):
            nu_ok = max(nu, 1.0 / n)
            for dtype in (torch.float64, torch.float32):
                for engine in ("cpu", "torch"):
                    yield (f"solve_dual/{kind}/nu{nu}/n{n}/{dtype}/{engine}/single",
                           lambda a=(i * 10 + j, n, d, nu_ok, kind, dtype, engine, 0): _solve_dual_case(*a))
            yield (f"solve_dual/{kind}/nu{nu}/n{n}/batch3/cpu",
                   lambda a=(i * 10 + j, n, d, nu_ok, kind, torch.float64, "cpu", 3): _solve_dual_case(*a))
    for engine in ("cpu", "torch"):  # the threaded compiled path (B >= 8) and the torch batch
        for dtype in (torch.float64, torch.float32):
            yield (f"solve_dual/batch12/{engine}/{dtype}",
                   lambda a=(7, 50, 32, 0.03, "plain", dtype, engine, 12): _solve_dual_case(*a))
    # vertex problems: nu n integer, no free index
    for seed in range(3):
        yield (f"solve_dual/vertex/{seed}", lambda s=seed: _solve_dual_case(100 + s, 20, 4, 0.25, "plain",
                                                                             torch.float64, "cpu", 0))
        yield (f"solve_dual/vertex-torch/{seed}", lambda s=seed: _solve_dual_case(100 + s, 20, 4, 0.25, "plain",
                                                                                   torch.float64, "torch", 0))
    # libsvm fallback (max_iter too small to settle)
    def fallback(engine):
        z = _points(5, 40, 2, "lowdim")
        K = rbf_kernel(z, gamma=_gamma(z)).unsqueeze(0).repeat(2, 1, 1).requires_grad_(True)
        sol = solve_dual(K, 0.1, max_iter=1, engine=engine)
        (sol.alpha.sum(-1) * 0 + sol.alpha[:, 3] + sol.rho).sum().backward()
        return [sol.alpha, sol.rho, sol.n_iter, sol.kkt_residual, sol.n_fallback, K.grad]
    yield "solve_dual/fallback/cpu", lambda: fallback("cpu")
    yield "solve_dual/fallback/torch", lambda: fallback("torch")
    for i, (nu, kind) in enumerate([(0.03, "plain"), (0.2, "dup"), (0.5, "plain"), (0.25, "plain")]):
        for n, d in shapes:
            for dtype in (torch.float64, torch.float32):
                yield (f"solve_dual_rbf/{kind}/nu{nu}/n{n}/{dtype}",
                       lambda a=(i, n, d, max(nu, 1 / n), kind, dtype, 0): _solve_dual_rbf_case(*a))
        yield (f"solve_dual_rbf/{kind}/nu{nu}/batch10",
               lambda a=(i, 30, 4, max(nu, 1 / 30), kind, torch.float64, 10): _solve_dual_rbf_case(*a))
    k = 0
    for standardize in (False, True, "each"):
        for dtype in (torch.float64, torch.float32):
            for weights in ((1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.5, 2.0)):
                for kind in ("plain", "dup"):
                    k += 1
                    yield (f"guidance/{standardize}/{dtype}/{weights}/{kind}",
                           lambda a=(200 + k, 50, 32 if k % 2 else 8, 0.03 if k % 3 else 0.5,
                                     "scale" if k % 4 else 1e-2, standardize, dtype, weights,
                                     "sum" if k % 5 else "mean", torch.float64, kind): _guidance_case(*a))
    for standardize in (False, True, "each"):
        yield (f"guidance/solver32/{standardize}",
               lambda s=standardize: _guidance_case(300, 50, 16, 0.1, "scale", s, torch.float32, (1.0, 1.0),
                                                     "sum", torch.float32, "plain"))
    for seed, (n, d, nu, gamma, solver, dtype) in enumerate([
        (200, 2, 0.1, "scale", "libsvm", "float64"), (150, 5, 0.3, "auto", "native", "float64"),
        (80, 3, 0.5, 0.7, "native", "float32"), (60, 4, 1.0, "scale", "libsvm", "float64"),
        (120, 8, 0.05, "scale", "libsvm", "float32"),
    ]):
        yield (f"estimator/{solver}/{dtype}/nu{nu}",
               lambda a=(seed, n, d, nu, gamma, solver, dtype): _estimator_case(*a))


def fingerprints() -> dict[str, str]:
    """``{case name: sha256}`` plus ``"all"``, the digest of every entry in order."""
    torch.manual_seed(0)
    out = {name: _digest(thunk()) for name, thunk in cases()}
    out["all"] = _digest(list(out.items()))
    return out


def main(argv: list[str]) -> None:
    prints = fingerprints()
    print(f"{len(prints) - 1} cases; all = {prints['all']}")
    if argv:
        with open(argv[0], "w") as fh:
            json.dump(prints, fh, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
