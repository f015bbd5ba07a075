"""Thread settings of the compiled engine (:mod:`ogae_core.ocsvm.cpu_engine.builds`)."""
import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from ogae_core.ocsvm.cpu_engine.builds import one_blas_thread


def _blas_threads() -> list[int]:
    import scipy.linalg.cython_blas  # noqa: F401 - numba's BLAS is scipy's

    return [lib["num_threads"] for lib in ThreadpoolController().select(user_api="blas").info()]


def test_one_blas_thread_limits_inside_and_restores_after():
    before = _blas_threads()
    with one_blas_thread():
        inside = _blas_threads()
        product = np.arange(6.0).reshape(2, 3) @ np.ones((3, 2))
    assert inside and all(t == 1 for t in inside)
    assert _blas_threads() == before
    assert product.tolist() == [[3.0, 3.0], [12.0, 12.0]]


def test_one_blas_thread_restores_after_an_error():
    before = _blas_threads()
    try:
        with one_blas_thread():
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    assert _blas_threads() == before


def test_guidance_step_leaves_thread_settings_unchanged():
    from ogae_core.ocsvm import guidance_loss

    torch_threads = torch.get_num_threads()
    before = _blas_threads()
    z = torch.randn(40, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)
    out = guidance_loss(z[:20], z[20:], nu=0.1, gamma=0.5)
    (out.loss + z.square().sum()).backward()
    assert torch.isfinite(z.grad).all()
    assert _blas_threads() == before and torch.get_num_threads() == torch_threads


def test_fastmath_chain_rebuilds_the_callees_and_leaves_the_originals():
    from numba.core.registry import CPUDispatcher

    from ogae_core.ocsvm.cpu_engine import active_set, localized_kernels
    from ogae_core.ocsvm.cpu_engine.builds import fastmath_chain

    fast = localized_kernels._gram_working_set_one_fast
    scope = fast.py_func.__globals__
    assert fast.targetoptions["fastmath"] and not localized_kernels._gram_working_set_one.targetoptions.get("fastmath")
    # the callees seen by the clone are clones too; the module's own names still point at the originals
    assert scope["_round_one"] is not localized_kernels._round_one
    assert scope["_round_one"].py_func.__globals__["solve_one"] is not active_set.solve_one
    assert isinstance(scope["_round_one"], CPUDispatcher) and scope["_round_one"].targetoptions["fastmath"]
    assert localized_kernels.solve_one is active_set.solve_one
    assert fastmath_chain(active_set.solve_one) is not active_set.solve_one
