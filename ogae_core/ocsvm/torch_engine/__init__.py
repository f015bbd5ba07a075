"""The torch engine of the OCSVM (batched tensor code on any device and dtype): forward and backward.

==============  ==================================================================================
``active_set``  forward: the batched active-set iteration on masked full KKT systems, ``polish``
``backward``    ``dL/dK`` by implicit differentiation of the KKT system (``dual_backward``)
``forward``     ``solve_kernels`` (solve + libsvm fallback), ``kkt_residual`` and ``grad_K``
==============  ==================================================================================

The engine's RBF kernel and standardization are the public
:func:`ogae_core.ocsvm.kernels.rbf_kernel` and :func:`ogae_core.ocsvm.kernels.standardize`.
"""
