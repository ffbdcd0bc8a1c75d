"""Numpy references: estimates rebuilt by hand, to compare with the engine's draw by draw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradstat.claims.search import relative
from gradstat.network import BinaryNetwork
from gradstat.sampling import ForwardPass, estimate_from_noise


def backprop(net: BinaryNetwork, x: Any, fp: ForwardPass, jac: np.ndarray) -> np.ndarray:
    """Backpropagate ``fp.dloss_dy`` with each ``dh/da`` replaced by ``jac`` (per unit).

    Plain numpy, independent of the engine's kernels: ``dC/dW_o = outer(dC/dy, h_L)``,
    ``dC/db_o = dC/dy``; then from layer ``L`` down, ``delta_l = (dC/dh_l) jac_l``,
    ``dW_l = outer(delta_l, h_{l-1})``, ``db_l = delta_l``, ``dC/dh_{l-1} = W_l^T delta_l``,
    every derivative at the sampled values. Returns the estimate in docs/model.md order.
    """
    layers = net.layers()
    ends = np.cumsum((0, *net.hidden_sizes))
    below = [np.asarray(x, dtype=np.float64).reshape(-1)]
    below += [fp.h[ends[l] : ends[l + 1]] for l in range(net.n_layers)]
    parts = [np.outer(fp.dloss_dy, below[-1]).ravel(), fp.dloss_dy]
    dh = layers[-1][0].T @ fp.dloss_dy
    for l in range(net.n_layers - 1, -1, -1):
        delta = dh * jac[ends[l] : ends[l + 1]]
        parts = [np.outer(delta, below[l]).ravel(), delta, *parts]
        dh = layers[l][0].T @ delta
    return np.concatenate(parts)


def unit_scale(net: BinaryNetwork) -> float:
    """``kappa = dh/db``: 1 for units in ``{0, 1}``, 2 for ``{-1, +1}``."""
    return 2.0 if net.values == "pm1" else 1.0


def uniforms(seed: int, size: int) -> np.ndarray:
    """Uniforms strictly inside ``(0, 1)`` from a Hypothesis-drawn seed."""
    return np.clip(np.random.default_rng(seed).random(size), 1e-12, 1.0 - 1e-12)


def draw_by_draw(
    problem: tuple[BinaryNetwork, np.ndarray, np.ndarray],
    seed: int,
    estimator: str,
    reference: Callable[[BinaryNetwork, Any, Any, np.ndarray], np.ndarray],
    draws: int = 3,
    **options: Any,
) -> float:
    """Largest :func:`relative` deviation of the engine's estimate from ``reference(net, x,
    t, u)`` over ``draws`` noise vectors (seeds ``seed, seed + 1, ...``), first example."""
    net, X, T = problem
    worst = 0.0
    for k in range(draws):
        u = uniforms(seed + k, net.n_stochastic)
        got = estimate_from_noise(net, X[0], T[0], estimator, u, **options)
        worst = max(worst, relative(got, reference(net, X[0], T[0], u)))
    return worst
