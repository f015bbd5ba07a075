"""Batched localized one-class SVMs: V independent RBF OCSVMs, one per voxel location.

:class:`LocalizedOCSVM` fits ``V`` problems of ``n`` training codes in ``d`` dimensions
at once (codes of shape ``(V, n, d)``) with the exact solver
:func:`ogae_core.ocsvm.solve_dual`, and scores each voxel's test codes ``(V, m, d)``
with its own model. Every voxel's decision function equals what
:class:`sklearn.svm.OneClassSVM` (RBF kernel, same ``nu``, the voxel's ``gamma``)
fitted on that voxel's codes would give, with scikit-learn's sign and scale::

    decision_function(x)[v] = sum_j dual_coef_[v, j] k_v(sv_[v, j], x) - offset_[v]

(libsvm scaling: ``0 <= dual_coef <= 1``, ``sum = nu n``; higher = more normal).
The solver is exact (KKT residual <= 1e-8), so the agreement with scikit-learn is
limited by libsvm's own stopping tolerance (about 1e-7 relative at ``tol=1e-10``).

Computation
-----------
Voxels are processed in chunks (at most ``max_memory`` bytes of working memory per
chunk); see :mod:`ogae_core.ocsvm.localized_fit`. On the CPU one compiled pass, a thread per
block of voxels, converts each voxel's codes to float64 in a reused scratch, standardizes
them per voxel and feature, gives the squared norms and ``gamma``, and computes the lower
triangle of the Gram matrix by blocked dot products (4 x 2 sums in registers, half the flops
of a general product; the squared distances from the norms); ``exp`` is one torch pass; each
voxel's dual is solved exactly on a growing working set (``algorithm="working_set"``, the
CPU default) or whole by :func:`ogae_core.ocsvm.solve_dual` (``"full_gram"``, the CUDA path,
with the torch engine). There is no Python loop over voxels.
:meth:`LocalizedOCSVM.decision_function` uses only the support vectors (standardized, one
``bmm`` with the test codes);
:meth:`LocalizedOCSVM.fit_decision_function` stacks the test codes below the training codes
in the fit's pass, so their kernel rows come with the Gram matrix and scoring is one
product with the coefficients.

Speed (``benchmarks/bench_localized.py``: ratios to a scikit-learn loop in the same run; d =
400, nu = 0.5, m = 12, float32 codes): ``fit_decision_function`` at n = 60 takes about 0.14 ms
CPU per voxel on one thread (fit pass 0.07, exp 0.013, exact solve ~0.04), 10-16x less CPU
than scikit-learn, at n = 16 0.02-0.03 ms (about 45-55x); measured on a loaded 2-core CPU
(load average 3.5-4.9). At n = 144, nu = 0.1, standardized, m = 24 (the MRI setting, random
codes) it takes 1.39 ms (1.45 ms for ``fit`` then ``decision_function``; 1.58 ms before the
fused pass, same conditions): there the solve dominates. Working memory per voxel during a
CPU fit is about ``8 (n + m)^2`` bytes (the kernels), elsewhere ``8 (n d + 4 n^2)``.

Storage
-------
A fitted model is a padded layout: ``support_vectors_`` ``(V, k, d)`` and ``dual_coef_``
``(V, k)``, where rows with a zero coefficient are padding. After :meth:`LocalizedOCSVM.fit`,
``support_vectors_`` *is* the training codes (``k = n``, a reference, not a copy, unless
``copy=True``: copying V n d codes costs more than fitting them on a 2-core CPU) and
the coefficients of non-support vectors are 0. :meth:`LocalizedOCSVM.save` writes only
the support vectors (ragged: concatenated, with ``n_support_`` per voxel) and
:meth:`LocalizedOCSVM.load` pads them to ``k = max n_SV``. Support vectors keep the dtype
of the training codes (float32 codes stay float32, exact); everything else (coefficients,
offsets, gamma, standardization statistics) is float64, and all arithmetic is float64.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ogae_core.batching import resolve_device
from ogae_core.ocsvm.localized_fit import ALGORITHMS, chunk_buffers, decision_chunk, fit_bytes_per_voxel, fit_chunk
from ogae_core.validation import check_integer, check_nu_times_n, check_real

__all__ = ["LocalizedOCSVM"]

_GAMMA_RULES = ("scale", "auto")
#: Default working memory of one chunk of voxels on the CPU (bytes).
CPU_CHUNK_MEMORY = 8 * 2**20
#: Default working memory of one chunk of voxels on a CUDA device (bytes).
CUDA_CHUNK_MEMORY = 2**30


class LocalizedOCSVM(BaseEstimator):
    """V independent RBF one-class SVMs fitted and scored in batch (one per voxel).

    Parameters
    ----------
    nu : float, default=0.5
        In ``(0, 1]``; ``nu * n >= 1`` is required for ``n`` training codes per voxel
        (scikit-learn's default 0.5; sweep it on validation data).
    gamma : {"scale", "auto"} or float, default="scale"
        RBF width. ``"scale"`` is ``1 / (d * Var(X_v))`` and ``"auto"`` ``1 / d``, resolved
        *per voxel* on that voxel's (standardized, if ``standardize``) training codes
        ``X_v``, exactly as scikit-learn resolves it for that voxel's problem. On
        standardized codes ``"scale"`` equals ``"auto"`` unless some features are constant.
    standardize : bool, default=True
        Standardize each voxel's codes per feature with the mean and the (population)
        standard deviation of its training codes before the kernel, as
        ``sklearn.preprocessing.StandardScaler`` fitted per voxel (constant features get
        scale 1); test codes get the same transform. The decision values then equal
        ``make_pipeline(StandardScaler(), OneClassSVM(...))`` fitted per voxel.
    device : str or torch.device, optional
        Where the kernels and the solver run; default ``"cuda"`` when available, else
        ``"cpu"``. The fitted arrays live there too.
    max_memory : int, optional
        Working memory (bytes) of one chunk of voxels, fit and scoring; it bounds the
        chunk size (at least one voxel per chunk), not the fitted model nor the inputs.
        Default :data:`CPU_CHUNK_MEMORY` (8 MiB: about 170 voxels at n + m = 72, the
        fastest of 2-32 MiB measured; smaller chunks pay the per-chunk overhead) on the
        CPU, :data:`CUDA_CHUNK_MEMORY` (1 GiB: fewer, larger batches) on CUDA.
    copy : bool, default=False
        Copy the training codes at fit. By default the model keeps a reference to them
        (as scikit-learn's neighbors estimators do): do not modify them in place while
        the model is in use.
    algorithm : {"auto", "working_set", "full_gram"}, default="auto"
        How the duals are solved, both exactly (see :mod:`ogae_core.ocsvm.localized_fit`):
        ``"working_set"`` (CPU only) solves each voxel's dual on a growing working set of
        points until no other point violates the KKT conditions (few support vectors: much
        smaller systems); ``"full_gram"`` runs :func:`~ogae_core.ocsvm.solve_dual` on the
        whole kernels. ``"auto"``: ``"working_set"`` on the CPU, ``"full_gram"`` elsewhere.

    Attributes
    ----------
    support_vectors_ : torch.Tensor of shape (V, k, d)
        Support vectors per voxel in the padded layout of the module docstring (after
        fit: the training codes, on their own device), in the training codes' dtype
        (float32 or float64; other dtypes become a float64 copy).
    dual_coef_ : torch.Tensor of shape (V, k), float64
        libsvm scaling, 0 on padding (and on training codes that are not support vectors).
    n_support_ : torch.Tensor of shape (V,), int64
    offset_ : torch.Tensor of shape (V,), float64
        libsvm's rho per voxel.
    gamma_ : torch.Tensor of shape (V,), float64
    mean_, scale_ : torch.Tensor of shape (V, d), float64, or None
        Standardization statistics (None without ``standardize``).
    support_sq_norms_ : torch.Tensor of shape (V, k), float64
        Squared norms of the (standardized) support vectors, kept for scoring.
    n_voxels_, n_samples_fit_, n_features_in_ : int
        V, n and d of the training codes.
    n_iter_ : int
        Most active-set iterations over all voxels.
    n_fallback_ : int
        Voxels whose dual needed the solver's libsvm fallback.

    Examples
    --------
    >>> import torch
    >>> codes = torch.randn(3, 20, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> model = LocalizedOCSVM(nu=0.2, device="cpu").fit(codes)
    >>> test = torch.zeros(3, 2, 5, dtype=torch.float64)
    >>> test[:, 1] = 8.0  # far from every voxel's training codes
    >>> model.decision_function(test).shape
    torch.Size([3, 2])
    >>> (model.anomaly_score(test)[:, 1] > model.anomaly_score(test)[:, 0]).tolist()
    [True, True, True]
    """

    def __init__(
        self,
        nu: float = 0.5,
        gamma: float | str = "scale",
        standardize: bool = True,
        device: str | torch.device | None = None,
        max_memory: int | None = None,
        copy: bool = False,
        algorithm: str = "auto",
    ) -> None:
        self.nu = nu
        self.gamma = gamma
        self.standardize = standardize
        self.device = device
        self.max_memory = max_memory
        self.copy = copy
        self.algorithm = algorithm

    # ------------------------------------------------------------------ checks
    def _checked_params(self) -> tuple[float, torch.device]:
        nu = check_real("nu", self.nu, 0.0, 1.0, strict_minimum=True)
        if isinstance(self.gamma, str):
            if self.gamma not in _GAMMA_RULES:
                raise ValueError(f"gamma must be 'scale', 'auto' or a real number > 0; got {self.gamma!r}")
        else:
            check_real("gamma", self.gamma, 0.0, strict_minimum=True)
        for name in ("standardize", "copy"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        check_integer("max_memory", self.max_memory, minimum=1, allow_none=True)
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}; got {self.algorithm!r}")
        return nu, resolve_device("auto" if self.device is None else self.device)

    def _algorithm(self, nu: float, device: torch.device) -> str:
        if self.algorithm != "auto":
            return self.algorithm
        return "working_set" if device.type == "cpu" else "full_gram"

    def _chunk_memory(self, device: torch.device) -> int:
        if self.max_memory is not None:
            return int(self.max_memory)
        return CUDA_CHUNK_MEMORY if device.type == "cuda" else CPU_CHUNK_MEMORY

    def _check_fitted(self) -> None:
        if not hasattr(self, "offset_"):
            raise ValueError("this LocalizedOCSVM is not fitted yet; call fit(codes) first")

    # --------------------------------------------------------------------- fit
    def fit(self, codes, y=None) -> "LocalizedOCSVM":
        """Fit one OCSVM per voxel on ``codes`` of shape ``(V, n, d)``; ``y`` is ignored.

        ``codes`` is a NumPy array or a torch tensor (any device); float32 codes are
        read chunk by chunk and never copied whole to float64.

        Returns
        -------
        LocalizedOCSVM
            ``self``.

        Raises
        ------
        ValueError
            Bad parameters, codes that are not 3-D with ``V, n, d >= 1``, ``nu * n < 1``,
            or NaN/infinite codes (the first bad voxel is named).
        """
        self._fit(codes, None)
        return self

    def fit_decision_function(self, codes, test):
        """``fit(codes)`` then ``decision_function(test)`` in one pass over the voxels.

        Same fitted model and the same decision values as the two calls (to rounding), but
        on the CPU each voxel's test kernel rows come out of the product that gives its
        Gram matrix (the dot products of the stacked training and test codes), so the test
        codes are transformed once and nothing is computed twice.

        Parameters
        ----------
        codes : array or tensor of shape (V, n, d)
            Training codes, as in :meth:`fit`.
        test : array or tensor of shape (V, m, d)
            Test codes, as in :meth:`decision_function`.

        Returns
        -------
        numpy.ndarray or torch.Tensor of shape (V, m), float64
            As :meth:`decision_function` (NumPy for NumPy ``test``).

        Raises
        ------
        ValueError
            As :meth:`fit` and :meth:`decision_function`.

        Examples
        --------
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> codes = torch.randn(3, 20, 5, dtype=torch.float64, generator=g)
        >>> test = torch.randn(3, 4, 5, dtype=torch.float64, generator=g)
        >>> model = LocalizedOCSVM(nu=0.2, device="cpu")
        >>> f = model.fit_decision_function(codes, test)
        >>> bool(torch.allclose(f, model.decision_function(test), rtol=0, atol=1e-12))
        True
        """
        numpy_in = not isinstance(test, torch.Tensor)
        out = self._fit(codes, test)
        return out.cpu().numpy() if numpy_in else out

    def _fit(self, codes, test) -> torch.Tensor | None:
        """Fit (and score ``test`` if given, returning its decision values on the device)."""
        nu, device = self._checked_params()
        codes = _as_tensor("codes", codes)
        V, n, d = codes.shape
        m = 0
        if test is not None:
            test = _as_tensor("test codes", test)
            if test.shape[0] != V or test.shape[2] != d:
                raise ValueError(f"test codes have shape {tuple(test.shape)} but the training codes have V={V} "
                                 f"voxels of d={d} features")
            m = test.shape[1]
        check_nu_times_n(nu, n, f"each voxel's OCSVM of n={n} training codes")
        if codes.dtype not in (torch.float32, torch.float64):
            codes = codes.to(torch.float64)
        elif self.copy:
            codes = codes.clone()
        if test is not None and test.dtype not in (torch.float32, torch.float64):
            test = test.to(torch.float64)
        r = n + m
        rows = min(V, _chunk_voxels(self._chunk_memory(device), per_voxel=fit_bytes_per_voxel(n, m, d, device)))
        w_buf, k_buf = chunk_buffers(rows, n, m, d, device)
        algorithm = self._algorithm(nu, device)
        parts = []
        for start in range(0, V, rows):
            chunk = codes[start:start + rows]
            t = None if test is None else test[start:start + rows].to(device)
            parts.append(fit_chunk(chunk, w_buf, k_buf, nu, self.gamma, bool(self.standardize), start, algorithm,
                                   test=t))
        self._set_state(codes, parts)
        return None if test is None else torch.cat([p["decision"] for p in parts]).to(device)

    def _set_state(self, codes: torch.Tensor, parts: list[dict]) -> None:
        self.support_vectors_ = codes
        self.dual_coef_ = torch.cat([p["coef"] for p in parts])
        self.n_support_ = (self.dual_coef_ > 0).sum(1)
        self.offset_ = torch.cat([p["offset"] for p in parts])
        self.gamma_ = torch.cat([p["gamma"] for p in parts])
        self.support_sq_norms_ = torch.cat([p["sq_norm"] for p in parts])
        if self.standardize:
            self.mean_ = torch.cat([p["mean"] for p in parts])
            self.scale_ = torch.cat([p["scale"] for p in parts])
        else:
            self.mean_ = self.scale_ = None
        self.n_voxels_, self.n_samples_fit_, self.n_features_in_ = codes.shape
        self.n_iter_ = max(p["n_iter"] for p in parts)
        self.n_fallback_ = sum(p["n_fallback"] for p in parts)

    # ----------------------------------------------------------------- scoring
    def decision_function(self, codes):
        """Per-voxel decision values of test codes ``(V, m, d)`` -> ``(V, m)``.

        scikit-learn's sign and scale: positive inside the voxel's boundary (inliers),
        higher = more normal. Returns a float64 NumPy array for NumPy input, a float64
        tensor on the model's device for tensor input.

        Raises
        ------
        ValueError
            Unfitted model, codes that are not 3-D, V or d other than at fit, NaN codes.
        """
        self._check_fitted()
        _, device = self._checked_params()
        numpy_in = not isinstance(codes, torch.Tensor)
        codes = _as_tensor("test codes", codes)
        V, m, d = codes.shape[0], codes.shape[1], codes.shape[2]
        if V != self.n_voxels_ or d != self.n_features_in_:
            raise ValueError(
                f"test codes have shape {tuple(codes.shape)} (V={V}, d={d}) but the model was fitted on "
                f"V={self.n_voxels_} voxels of d={self.n_features_in_} features"
            )
        k = int(self.n_support_.max()) if self.n_voxels_ else 1
        rows = min(V, _chunk_voxels(self._chunk_memory(device), per_voxel=8 * (m * d + k * d + 2 * m * k + 4 * d)))
        state = dict(coef=self.dual_coef_, offset=self.offset_, gamma=self.gamma_, mean=self.mean_, scale=self.scale_)
        out = torch.empty(V, m, dtype=torch.float64, device=device)
        for start in range(0, V, rows):
            b = min(rows, V - start)
            chunk = {key: (None if v is None else v[start:start + b].to(device)) for key, v in state.items()}
            out[start:start + b] = decision_chunk(codes[start:start + b].to(device),
                                                  self.support_vectors_[start:start + b].to(device), chunk, start)
        return out.cpu().numpy() if numpy_in else out

    def score_samples(self, codes):
        """``decision_function(codes) + offset_`` per voxel (higher = more normal), as scikit-learn."""
        f = self.decision_function(codes)
        offset = self.offset_.to(f.device) if isinstance(f, torch.Tensor) else self.offset_.cpu().numpy()
        return f + offset[:, None]

    def anomaly_score(self, codes):
        """``-decision_function(codes)``: higher = more anomalous (the project's convention)."""
        return -self.decision_function(codes)

    def predict(self, codes):
        """+1 for inliers (``decision_function >= 0``), -1 for outliers, per voxel."""
        f = self.decision_function(codes)
        if isinstance(f, torch.Tensor):
            return torch.where(f >= 0, 1, -1)
        return np.where(f >= 0, 1, -1)

    # ------------------------------------------------------------- persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fitted model to directory ``path`` (safetensors + JSON, no pickle).

        See :mod:`ogae_core.ocsvm.localized_io` for the layout (support vectors stored
        ragged: only the support vectors, no padding on disk). Raises ``FileExistsError`` if ``path`` is not empty
        and ``overwrite`` is false.
        """
        from ogae_core.ocsvm.localized_io import save_localized

        self._check_fitted()
        return save_localized(self, Path(path), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, *, device: str | torch.device | None = None) -> "LocalizedOCSVM":
        """Read a model written by :meth:`save`; ``device`` overrides the saved one.

        Raises ``FileNotFoundError`` or ``ValueError`` on missing, corrupt or inconsistent files.
        """
        from ogae_core.ocsvm.localized_io import load_localized

        params, fitted, state = load_localized(Path(path))
        if device is not None:
            params["device"] = str(device)
        try:
            model = cls(**params)
        except TypeError as err:
            raise ValueError(f"{path}: unknown parameters in the saved model ({err})") from err
        _, dev = model._checked_params()
        model.support_vectors_ = state["support_vectors"].to(dev)
        model.dual_coef_ = state["dual_coef"].to(dev)
        model.n_support_ = state["n_support"].to(dev)
        model.offset_, model.gamma_ = state["offset"].to(dev), state["gamma"].to(dev)
        model.mean_ = state["mean"].to(dev) if "mean" in state else None
        model.scale_ = state["scale"].to(dev) if "scale" in state else None
        model.support_sq_norms_ = _standardized_sq_norms(model.support_vectors_, model.mean_, model.scale_,
                                                         model._chunk_memory(dev))
        model.n_voxels_ = fitted["n_voxels_"]
        model.n_samples_fit_ = fitted["n_samples_fit_"]
        model.n_features_in_ = fitted["n_features_in_"]
        model.n_iter_, model.n_fallback_ = fitted["n_iter_"], fitted["n_fallback_"]
        return model


# ---------------------------------------------------------------------- helpers
def _as_tensor(name: str, codes) -> torch.Tensor:
    """``codes`` as a 3-D floating tensor (no copy for NumPy float arrays and tensors)."""
    if isinstance(codes, torch.Tensor):
        t = codes.detach()
    else:
        try:
            arr = np.asarray(codes)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be an array of shape (V, n, d); got {type(codes).__name__}") from err
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float64)
        elif any(step < 0 for step in arr.strides):  # torch.from_numpy refuses negative strides
            arr = arr.copy()
        t = torch.from_numpy(arr)
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers; got dtype {t.dtype}")
    if t.dim() != 3:
        raise ValueError(f"{name} must have shape (V, n, d) (3 dimensions); got shape {tuple(t.shape)}")
    if min(t.shape) < 1:
        raise ValueError(f"{name} must have V, n, d >= 1; got shape {tuple(t.shape)}")
    return t


def _chunk_voxels(max_memory: int, per_voxel: int) -> int:
    return max(1, int(max_memory) // max(1, per_voxel))


def _standardized_sq_norms(sv: torch.Tensor, mean, scale, max_memory: int) -> torch.Tensor:
    """Squared norms ``(V, k)`` of the (standardized) support vectors, chunk by chunk."""
    V, k, d = sv.shape
    out = torch.empty(V, k, dtype=torch.float64, device=sv.device)
    rows = _chunk_voxels(max_memory, per_voxel=8 * k * d)
    for start in range(0, V, rows):
        z = sv[start:start + rows].to(torch.float64)
        if mean is not None:
            z = (z - mean[start:start + rows].unsqueeze(1)).div_(scale[start:start + rows].unsqueeze(1))
        out[start:start + rows] = torch.linalg.vector_norm(z, dim=2).square_()
    return out
