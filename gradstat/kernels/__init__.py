"""Jitted primitives that know no estimator.

``forward``: the forward pass of one joint state, losses, backpropagation of a surrogate;
``philox``: counter-based random streams; ``accumulate``: chunked accumulators of moments;
``mean_field``: the mean-field network above a layer and its gradient (MuProp's expansion).
Kernels take plain arrays and scalars, or named tuples of them (``geometry``: the
network's layout, a batch, an example); nothing here imports an estimator, an engine or
the public API.
"""
