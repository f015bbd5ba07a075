"""The compiled CPU engine of the OCSVM (numba, float64): forward, backward, layer on points, guidance.

Modules (numba compiles on first use; importing this package does not load numba):

========================  ==================================================================
``linalg``                pivoted LU, Cholesky and the transposed reduced solve (backward)
``rbf``                   the engine's one RBF kernel (``rbf_entry``; self, batch, cross)
``active_set``            forward: the active-set solver per problem and batched (``solve_batch``)
``backward``              ``dL/dK`` by implicit differentiation (``backward_batch``)
``forward``               ``solve_kernels`` (solve + libsvm fallback) and ``grad_K`` on kernels
``layer``                 the layer on points ``z -> (alpha, rho)``: compiled forward/backward
                          and the autograd node ``DualFromPoints``
``guidance``              the guidance penalty: standardization, decision values, backward,
                          and the autograd node ``GuidanceCpu``
``localized_kernels``     the batched localized OCSVMs' passes: standardization, Gram dot
                          products, exponents, the working-set solve of each voxel's dual
``builds``                serial and threaded builds of one batched function
========================  ==================================================================
"""
