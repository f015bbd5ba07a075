"""Random OCSVM problems and a libsvm reference in the paper's scaling."""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.svm import OneClassSVM as SkOneClassSVM


def random_problem(rng: np.random.Generator, kind: str = "plain"):
    """Return (K float64 tensor, X, nu, gamma) for one random OCSVM problem.

    kinds: "plain", "duplicates" (a third of the points identical), "tight"
    (nu * n just above 1), "lowdim" (d = 2, near-singular K).
    """
    n = int(rng.integers(5, 201))
    d = 2 if kind == "lowdim" else int(rng.integers(2, 65))
    nu = float(rng.uniform(0.01, 0.95))
    if kind == "tight":
        nu = min(1.0, (1.0 + rng.uniform(0.0, 0.05)) / n)
    elif nu * n < 1:
        nu = min(1.0, (1.0 + rng.uniform(0.0, 2.0)) / n)
    X = rng.normal(size=(n, d))
    if kind == "duplicates":
        X[: max(2, n // 3)] = X[0]
    gamma = 1.0 / (d * X.var())
    sq = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    K = np.exp(-gamma * sq)
    return torch.from_numpy(0.5 * (K + K.T)), X, nu, gamma


def libsvm_reference(K: torch.Tensor, nu: float, tol: float = 1e-10):
    """alpha (paper scaling), rho (paper scaling) and the fitted sklearn model."""
    Kn = K.numpy()
    n = Kn.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SkOneClassSVM(kernel="precomputed", nu=nu, tol=tol).fit(Kn)
    alpha = np.zeros(n)
    alpha[model.support_] = model.dual_coef_.ravel() / (nu * n)
    rho = float(model.offset_[0]) / (nu * n)
    return alpha, rho, model
