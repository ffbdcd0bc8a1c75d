"""Jitted primitives that know no estimator.

``forward``: the forward pass of one joint state, losses, backpropagation of a surrogate;
``philox``: counter-based random streams; ``accumulate``: chunked accumulators of moments.
Kernels take plain arrays and scalars; nothing here imports an estimator, an engine or the
public API.
"""
