"""Estimators written in JAX, analysed exactly or on gradstat's uniforms.

``jax_estimator(fn)`` compiles ``jax.jit(jax.vmap(jax.grad(fn)))`` over a block of states
(or draws) at once. Everything runs in float64 inside ``jax.enable_x64(True)``, without
changing the process's global JAX configuration. See :mod:`gradstat.frameworks.common`
for the contract and the checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradstat._validation import check_choice
from gradstat.frameworks.common import (
    Backend,
    FrameworkEstimator,
    layer_views,
    network_from_arrays,
)
from gradstat.network import BinaryNetwork

STYLES = ("flax", "equinox")


class JaxBackend(Backend):
    """Calls of a user's function on float64 JAX arrays."""

    framework = "jax"
    title = "JAX"
    install = "JAX is not installed: pip install 'gradstat[jax]' (CPU wheels, about 600 MB)"

    def value(self, fn: Callable[..., Any], theta: np.ndarray, x: np.ndarray, t: Any,
              u: np.ndarray) -> np.ndarray:  # fmt: skip
        """``fn``'s output for one draw, as an array."""
        with self.module.enable_x64(True):
            return np.asarray(fn(*self._inputs(theta, x, t), self.module.numpy.asarray(u)))

    def _inputs(self, theta: np.ndarray, x: np.ndarray, t: Any) -> tuple[Any, Any, Any]:
        jnp = self.module.numpy
        tt = jnp.asarray(t, dtype=jnp.int64 if isinstance(t, int) else jnp.float64)
        return jnp.asarray(theta, dtype=jnp.float64), jnp.asarray(x, dtype=jnp.float64), tt

    def batched(self, fn: Callable[..., Any], output: str, vectorize: bool) -> Callable[..., Any]:
        """``(theta, x, t, U) -> (m, n_params)``: jitted ``vmap``, or a jitted loop body."""
        jax = self.module
        inner = jax.grad(fn) if output == "surrogate" else fn
        mapped = jax.jit(jax.vmap(inner, in_axes=(None, None, None, 0)))
        single = jax.jit(inner)

        def call(theta: np.ndarray, x: np.ndarray, t: Any, U: np.ndarray) -> np.ndarray:
            with jax.enable_x64(True):
                args = self._inputs(theta, x, t)
                if vectorize:
                    # Rows padded to a power of two: jit compiles once per block shape.
                    m = U.shape[0]
                    rows = 1 << max(4, (m - 1).bit_length())
                    padded = np.full((rows, U.shape[1]), 0.5)
                    padded[:m] = U
                    return np.asarray(mapped(*args, jax.numpy.asarray(padded)))[:m]
                U = jax.numpy.asarray(U, dtype=jax.numpy.float64)
                return np.stack([np.asarray(single(*args, U[i])) for i in range(U.shape[0])])

        return call


def jax_estimator(fn: Callable[..., Any], **settings: Any) -> FrameworkEstimator:
    """An estimator written in JAX, accepted wherever an estimator name is.

    The contract and the settings (``noise``, ``output``, ``name``, ``unbiased``,
    ``block_size``, ``vectorize``) are those of :func:`gradstat.torch_estimator`: ``fn(theta,
    x, t, u)`` on float64 arrays (``t`` an int64 class for ``xent``), unit ``k`` firing
    when ``u[k] < p[k]``, returning a scalar surrogate whose ``jax.grad`` is the estimate
    (or the estimate itself with ``output="estimate"``). ``noise="discrete"`` gives exact
    moments by enumeration (the declaration is checked), ``"continuous"`` Monte Carlo on
    gradstat's Philox uniforms. ``vectorize=None`` tries ``jax.vmap`` and falls back to a
    jitted call per draw where it cannot trace ``fn``.

    Raises
    ------
    ImportError
        Without JAX (the message says how to install it).
    """
    return FrameworkEstimator(fn, JaxBackend(), **settings)


def network_from_jax(
    layers: Sequence[Any], *, loss: str = "mse", values: str = "01"
) -> BinaryNetwork:
    """A :class:`BinaryNetwork` from linear layers in the flax or equinox style, as they are.

    Each layer is a flax ``Dense`` parameter mapping ``{"kernel": (in, out), "bias":
    (out,)}`` or an object with ``weight`` ``(out, in)`` and ``bias`` (equinox's
    ``nn.Linear``; also a mapping with those keys). Every layer but the last is a
    stochastic layer, the last is the linear output layer.
    """
    pairs = []
    for k, layer in enumerate(layers):
        if isinstance(layer, Mapping) and "kernel" in layer:
            W = np.asarray(layer["kernel"], dtype=np.float64).T
            b = layer.get("bias")
        elif isinstance(layer, Mapping) and "weight" in layer:
            W, b = np.asarray(layer["weight"], dtype=np.float64), layer.get("bias")
        elif hasattr(layer, "weight"):
            W, b = np.asarray(layer.weight, dtype=np.float64), getattr(layer, "bias", None)
        else:
            raise TypeError(
                f"layer {k} must be a flax Dense mapping {{'kernel', 'bias'}} or have "
                f"'weight' and 'bias' (equinox.nn.Linear), got {type(layer).__name__}"
            )
        pairs.append((W, np.zeros(W.shape[0]) if b is None else np.asarray(b, np.float64)))
    return network_from_arrays(pairs, loss=loss, values=values)


def jax_layers(net: BinaryNetwork, *, style: str = "flax") -> list[dict[str, Any]]:
    """``net``'s layers as float64 JAX arrays: flax ``{"kernel": (in, out), "bias"}``
    mappings, or ``{"weight": (out, in), "bias"}`` for ``style="equinox"``."""
    jax = JaxBackend().module
    style = check_choice(style, "style", STYLES)
    out = []
    with jax.enable_x64(True):
        for W, b in layer_views(net.params, net):
            weight = {"kernel": W.T} if style == "flax" else {"weight": W}
            out.append({k: jax.numpy.asarray(v) for k, v in {**weight, "bias": b}.items()})
    return out
