"""Estimators written in PyTorch or JAX, analysed by every gradstat entry point.

:func:`torch_estimator` and :func:`jax_estimator` wrap a user's ``fn(theta, x, t, u)``;
:func:`layer_views` reads ``theta`` as per-layer ``(W, b)``; ``network_from_torch`` /
``torch_layers`` and ``network_from_jax`` / ``jax_layers`` move parameters between a
:class:`gradstat.BinaryNetwork` and a stack of linear layers. Importing this package
imports neither framework: each adapter imports its own when called.
"""

from gradstat.frameworks.common import FrameworkEstimator, layer_views, network_from_arrays
from gradstat.frameworks.jax import jax_estimator, jax_layers, network_from_jax
from gradstat.frameworks.torch import (
    flat_parameters,
    network_from_torch,
    torch_estimator,
    torch_layers,
)

__all__ = [
    "FrameworkEstimator",
    "flat_parameters",
    "jax_estimator",
    "jax_layers",
    "layer_views",
    "network_from_arrays",
    "network_from_jax",
    "network_from_torch",
    "torch_estimator",
    "torch_layers",
]
