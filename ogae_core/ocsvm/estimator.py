"""scikit-learn compatible one-class SVM: libsvm or native fit, batched torch scoring.

:class:`OneClassSVM` has the semantics and scaling of :class:`sklearn.svm.OneClassSVM`
(RBF kernel): ``decision_function(x) = sum_i dual_coef_i k(sv_i, x) - offset_``,
positive for inliers; ``score_samples = decision_function + offset_`` (higher = more
normal); ``predict`` gives +1 (inlier) / -1 (outlier). ``anomaly_score`` is
``-decision_function`` (higher = more anomalous), the convention of the rest of the
project. The paper's scaling is exposed as ``alpha_`` (``sum = 1``, ``<= 1/(nu n)``)
and ``rho_``: ``alpha = dual_coef / (nu n)``, ``rho = offset / (nu n)``, so
``decision_function / (nu n) = sum_i alpha_i k(x_i, x) - rho``.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ogae_core.ocsvm.kernels import rbf_kernel, resolve_gamma
from ogae_core.ocsvm.persistence import load_estimator, save_estimator
from ogae_core.ocsvm.solver import solve_dual
from ogae_core.validation import check_integer, check_nu, check_nu_times_n, check_real

#: Largest training set accepted by ``solver="native"`` (dense n x n kernel and KKT system).
NATIVE_MAX_N = 5000
#: Most kernel entries held at once while scoring (rows per block = this / n_SV, capped by batch_size).
MAX_BLOCK_ENTRIES = 1 << 24
_DTYPES = {"float64": torch.float64, "float32": torch.float32}
_SOLVERS = ("libsvm", "native")


class OneClassSVM(OutlierMixin, BaseEstimator):
    """One-class SVM with an RBF kernel, equal to :class:`sklearn.svm.OneClassSVM`.

    Parameters
    ----------
    nu : float, default=0.5
        Upper bound on the fraction of training errors and lower bound on the
        fraction of support vectors, in ``(0, 1]``.
    gamma : {"scale", "auto"} or float, default="scale"
        RBF width; ``"scale"`` is ``1 / (n_features * X.var())``, ``"auto"`` is
        ``1 / n_features`` (as scikit-learn).
    tol : float, default=1e-3
        Stopping tolerance of libsvm (``solver="libsvm"``). The native solver
        is exact (KKT residual <= 1e-8) and does not use it.
    solver : {"libsvm", "native"}, default="libsvm"
        ``"libsvm"`` fits with scikit-learn's libsvm (any size); ``"native"`` with
        :func:`ogae_core.ocsvm.solve_dual` on the dense kernel, for at most
        :data:`NATIVE_MAX_N` samples.
    device : str or torch.device, optional
        Device of the torch computations (native fit, scoring); default
        ``"cuda"`` when available, else ``"cpu"``.
    batch_size : int, default=8192
        Most rows scored per block (further capped so that a block holds at
        most :data:`MAX_BLOCK_ENTRIES` kernel entries).
    dtype : {"float64", "float32"}, default="float64"
        Precision of scoring (and of the native fit). Agreement with
        scikit-learn to 1e-6 is guaranteed in float64.
    shrinking : bool, default=True
        libsvm's shrinking heuristic.
    cache_size : float, default=200
        libsvm's kernel cache in MB.
    max_iter : int, default=-1
        libsvm's iteration limit (-1: none).

    Attributes
    ----------
    support_ : ndarray of shape (n_SV,)
        Indices of the support vectors in the training set.
    support_vectors_ : ndarray of shape (n_SV, n_features)
    dual_coef_ : ndarray of shape (1, n_SV)
        libsvm scaling: ``0 < dual_coef <= 1``, ``sum = nu * n``.
    intercept_ : ndarray of shape (1,)
        ``-offset_``.
    offset_ : ndarray of shape (1,)
        libsvm's rho.
    alpha_ : ndarray of shape (n_samples,)
        Paper scaling of the dual solution over all training points
        (``dual_coef / (nu n)``; zero off the support).
    rho_ : float
        Paper scaling of the offset (``offset / (nu n)``).
    gamma_ : float
        The RBF width used.
    n_features_in_ : int
    n_samples_fit_ : int
    n_iter_ : int
        libsvm iterations or native active-set iterations.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> model = OneClassSVM(nu=0.1, device="cpu").fit(X)
    >>> model.predict([[0.0, 0.0], [6.0, 6.0]]).tolist()
    [1, -1]
    >>> round(float(model.alpha_.sum()), 6)
    1.0
    """

    def __init__(
        self,
        nu: float = 0.5,
        gamma: float | str = "scale",
        tol: float = 1e-3,
        solver: str = "libsvm",
        device: str | torch.device | None = None,
        batch_size: int = 8192,
        dtype: str = "float64",
        shrinking: bool = True,
        cache_size: float = 200.0,
        max_iter: int = -1,
    ) -> None:
        self.nu = nu
        self.gamma = gamma
        self.tol = tol
        self.solver = solver
        self.device = device
        self.batch_size = batch_size
        self.dtype = dtype
        self.shrinking = shrinking
        self.cache_size = cache_size
        self.max_iter = max_iter

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> tuple[torch.device, torch.dtype]:
        check_nu(self.nu)
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}; got {self.solver!r}")
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (str, numbers.Real)):
            raise ValueError(f"gamma must be 'scale', 'auto' or a positive float; got {self.gamma!r}")
        check_integer("batch_size", self.batch_size, minimum=1)
        check_real("tol", self.tol, 0.0, strict_minimum=True)
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {tuple(_DTYPES)}; got {self.dtype!r}")
        return self._device(), _DTYPES[self.dtype]

    def _device(self) -> torch.device:
        if self.device is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            return torch.device(self.device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device must be a torch device name such as 'cpu' or 'cuda:0'; got {self.device!r}") from err

    # --------------------------------------------------------------------- fit
    def fit(self, X, y=None) -> "OneClassSVM":
        """Fit on ``X`` of shape ``(n_samples, n_features)``; ``y`` is ignored.

        Returns
        -------
        OneClassSVM
            ``self``.
        """
        device, dtype = self._check_params()
        X = validate_data(self, X, dtype=np.float64, reset=True)
        n = X.shape[0]
        nu = float(self.nu)
        check_nu_times_n(nu, n, what=f"n_samples={n}")
        self.gamma_ = float(resolve_gamma(torch.tensor(X), self.gamma))
        if self.solver == "native":
            support, coef, offset, n_iter = self._fit_native(X, device, dtype)
        elif nu == 1.0:
            support, coef, offset, n_iter = self._fit_nu_one(X, device, dtype)
        else:
            support, coef, offset, n_iter = self._fit_libsvm(X)
        self.support_ = support.astype(np.int64)
        self.support_vectors_ = X[self.support_]
        self.dual_coef_ = coef.reshape(1, -1).astype(np.float64)
        self.offset_ = np.array([offset], dtype=np.float64)
        self.intercept_ = -self.offset_
        self.n_samples_fit_ = n
        self.n_iter_ = int(n_iter)
        self._set_paper_scaling()
        return self

    def _set_paper_scaling(self) -> None:
        scale = float(self.nu) * self.n_samples_fit_
        alpha = np.zeros(self.n_samples_fit_)
        alpha[self.support_] = self.dual_coef_[0] / scale
        self.alpha_ = alpha
        self.rho_ = float(self.offset_[0]) / scale

    def _fit_libsvm(self, X: np.ndarray):
        from sklearn.svm import OneClassSVM as _SkOneClassSVM

        model = _SkOneClassSVM(
            kernel="rbf", gamma=self.gamma_, nu=float(self.nu), tol=float(self.tol),
            shrinking=bool(self.shrinking), cache_size=float(self.cache_size), max_iter=int(self.max_iter),
        ).fit(X)
        n_iter = int(np.max(model.n_iter_)) if np.size(model.n_iter_) else 0
        return model.support_, model.dual_coef_[0], float(model.offset_[0]), n_iter

    def _fit_nu_one(self, X: np.ndarray, device: torch.device, dtype: torch.dtype):
        """nu = 1: every alpha_i = 1/n; libsvm leaves rho undefined (infinite), we use
        the finite end of the KKT interval, ``max_i (K 1)_i`` (as the native solver)."""
        n = X.shape[0]
        ones = np.ones(n)
        g = _kernel_expansion(X, X, ones, self.gamma_, device, dtype, int(self.batch_size))
        return np.arange(n), ones, float(g.max()), 0

    def _fit_native(self, X: np.ndarray, device: torch.device, dtype: torch.dtype):
        n = X.shape[0]
        if n > NATIVE_MAX_N:
            raise ValueError(
                f"solver='native' builds the dense {n}x{n} kernel and is limited to n_samples <= "
                f"{NATIVE_MAX_N}; use solver='libsvm' for larger training sets"
            )
        nu = float(self.nu)
        with torch.no_grad():
            z = torch.tensor(X, dtype=dtype, device=device)
            sol = solve_dual(rbf_kernel(z, gamma=self.gamma_), nu)
        alpha = sol.alpha.to("cpu", torch.float64).numpy()
        support = np.flatnonzero(alpha > 0)
        return support, alpha[support] * nu * n, float(sol.rho) * nu * n, sol.n_iter

    # ----------------------------------------------------------------- scoring
    def decision_function(self, X) -> np.ndarray:
        """Signed distance to the boundary: positive inside (inliers), as scikit-learn.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        device, dtype = self._check_params()
        X = validate_data(self, X, dtype=np.float64, reset=False)
        g = _kernel_expansion(X, self.support_vectors_, self.dual_coef_[0], self.gamma_, device, dtype, int(self.batch_size))
        return g - self.offset_[0]

    def score_samples(self, X) -> np.ndarray:
        """``decision_function(X) + offset_`` (higher = more normal), as scikit-learn."""
        return self.decision_function(X) + self.offset_[0]

    def anomaly_score(self, X) -> np.ndarray:
        """``-decision_function(X)``: higher = more anomalous (the project's convention)."""
        return -self.decision_function(X)

    def predict(self, X) -> np.ndarray:
        """+1 for inliers (``decision_function >= 0``), -1 for outliers."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    # ------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fitted model to directory ``path`` (safetensors + JSON, no pickle).

        Raises ``FileExistsError`` if ``path`` is a non-empty directory and
        ``overwrite`` is false; see :func:`ogae_core.ocsvm.persistence.save_estimator`.
        """
        check_is_fitted(self)
        return save_estimator(self, Path(path), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> "OneClassSVM":
        """Read a model written by :meth:`save`; raises on missing or corrupt files."""
        est = load_estimator(cls, Path(path))
        est._set_paper_scaling()
        return est


def _kernel_expansion(
    X: np.ndarray, sv: np.ndarray, coef: np.ndarray, gamma: float,
    device: torch.device, dtype: torch.dtype, batch_size: int,
) -> np.ndarray:
    """``sum_j coef_j exp(-gamma ||x_i - sv_j||^2)`` for every row of ``X``, in blocks.

    Same formula as :func:`~ogae_core.ocsvm.kernels.rbf_kernel` (expanded squared
    distance, clamped at zero), fused in place: one ``addmm`` and three in-place
    passes over each block instead of several temporaries.
    """
    out = np.empty(X.shape[0], dtype=np.float64)
    if X.shape[0] == 0:
        return out
    rows = max(1, min(batch_size, MAX_BLOCK_ENTRIES // max(1, sv.shape[0])))
    with torch.no_grad():
        s = torch.tensor(sv, dtype=dtype, device=device)
        c = torch.tensor(coef, dtype=dtype, device=device)
        s_term = (s * s).sum(1).mul_(-gamma).unsqueeze(0)  # -gamma ||s_j||^2
        st = s.T.contiguous()
        for start in range(0, X.shape[0], rows):
            x = torch.tensor(X[start:start + rows], dtype=dtype, device=device)
            arg = torch.addmm(s_term, x, st, alpha=2.0 * gamma)  # + 2 gamma x.s
            arg.sub_((x * x).sum(1, keepdim=True).mul_(gamma))  # - gamma ||x||^2
            out[start:start + rows] = (arg.clamp_max_(0.0).exp_() @ c).to("cpu", torch.float64).numpy()
    return out
