"""ARM and DisARM: antithetic pairs of states from one uniform per unit.

One stochastic layer, ``u ~ U(0, 1)^N``: ``b1 = 1[u > 1 - p]`` and ``b2 = 1[u < p]`` are
both ``Bernoulli(p)`` states, coupled; ``f1 = C(y(b1))``, ``f2 = C(y(b2))``::

    arm:    g_hat(b_1)_i = (f1 - f2) (u_i - 1/2)
    disarm: g_hat(b_1)_i = 1/2 (f1 - f2) 1[b1_i != b2_i] (-1)^{b2_i} sigmoid(|a_i|)

``g_hat(W_1)_ij = g_hat(b_1)_i x_j``; the output layer gets the mean of the direct paths of
the two states, ``1/2 (dC/dW_o(b1) + dC/dW_o(b2))``. DisARM is ARM averaged over ``u``
given the pair ``(b1, b2)``, so it is unbiased with per-coordinate variance at most ARM's.

**Exact moments (one stochastic layer).** Per unit, ``u_i`` falls in one of three cells:
for ``p >= 1/2``, ``[0, 1-p)``, ``[1-p, p)``, ``[p, 1]`` with pairs ``(0,1), (1,1), (1,0)``;
for ``p < 1/2``, ``[0, p)``, ``[p, 1-p)``, ``[1-p, 1]`` with ``(0,1), (0,0), (1,0)``. Units are
independent, so the ``3^N`` combinations of cells, weighted by the product of their
widths, give exact means and variances: DisARM is constant within a combination, ARM is
linear in ``u_i`` with ``E[u_i - 1/2 | cell]`` and ``Var[u_i | cell] = width^2 / 12``.
``P(sign g_hat_j = sign g_j)`` is exact too (``P(u_i > 1/2 | cell)``); ARM's descent
probability (a weighted sum of uniforms crossing zero) is not computed exactly and is
reported as NaN; use Monte Carlo for it.

**Deeper networks (Monte Carlo).** One draw takes the uniforms ``u`` (one per unit, layer
1 first) and, for each layer ``t < L``, fresh uniforms ``v^(t)`` for the units of layers
``t+1..L``. The main pass samples every layer from ``u`` (``b = 1[u < p]``). For layer
``t``, both branches share the main pass below ``t``; branch 2 is the main pass itself
(``b2_t = 1[u_t < p_t]``), branch 1 sets ``b1_t = 1[u_t > 1 - p_t]`` and samples layers
``t+1..L`` afresh from ``v^(t)``, independently of branch 2's. Layer ``t``'s estimate is
the one-layer formula with these two losses and ``h_{t-1}`` of the main pass (the
scheme of the DisARM authors' multi-layer code, with independent downstream noise);
the output layer averages the direct paths of the main pass and of layer ``L``'s
branch 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import exp
from typing import Any

import numpy as np
from numba import njit

from gradstat.estimators.codes import ARM, DISARM
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import (
    forward_loss,
    log_sigmoid,
    loss_and_grad,
    output_gradient,
    output_layer,
    preactivation,
    write_unit,
)
from gradstat.kernels.geometry import Example
from gradstat.kernels.workspace import PARAMS, UNIT2, state_rows


def arm_noise_size(hidden: tuple[int, ...]) -> int:
    """Uniforms per draw: ``N`` plus, for each layer ``t < L``, the units above it."""
    n = sum(hidden)
    return n + sum(sum(hidden[t + 1 :]) for t in range(len(hidden) - 1))


@njit(cache=True)
def layer_estimate(disarm: bool, a: float, u: float, b1: float, b2: float, diff: float) -> float:
    if not disarm:
        return diff * (u - 0.5)
    if b1 == b2:
        return 0.0
    sign = -1.0 if b2 == 1.0 else 1.0
    return 0.5 * diff * sign * exp(log_sigmoid(abs(a)))


@njit(cache=True)
def _forward_above(
    ex: Example, start: int, v: np.ndarray, low: float, h: np.ndarray, y: np.ndarray
) -> None:
    """Sample layers ``start..L-1`` (0-based, ``start > 0``) from uniforms ``v`` given ``h``
    below; set ``y``."""
    theta, geo, tab1, _, _, _ = ex
    sizes, uoff = geo.sizes, geo.uoff
    for l in range(start, sizes.shape[0] - 2):
        for i in range(sizes[l + 1]):
            ai = preactivation(theta, geo, tab1, h, l, i)
            fire = v[uoff[l] - uoff[start] + i] < exp(log_sigmoid(ai))
            h[uoff[l] + i] = 1.0 if fire else low
    output_layer(theta, geo, h, y)


@njit(cache=True)
def arm_draw(disarm: bool, ex: Example, noise: np.ndarray, ws: np.ndarray, e: np.ndarray) -> float:
    """One ARM or DisARM draw from ``noise`` (see the module docstring); returns ``log P``.

    Row ``UNIT2`` of ``ws`` holds branch 1's values, ``Y2``/``DY2`` its output and ``dC/dy``,
    ``PARAMS`` its direct path.
    """
    theta, geo, tab1, t, loss, _ = ex
    sizes, woff, boff, uoff = geo
    L = sizes.shape[0] - 2
    N = uoff[L]
    a, p, bit, h, _, y, dy, y2, dy2 = state_rows(ws, geo)
    h2 = ws[UNIT2, :N]
    s = ws[PARAMS, : e.shape[0]]
    low = tab1[6, 0]
    logp, C2 = forward_loss(ex, np.int64(0), noise[:N], a, p, bit, h, y, dy)
    off = N
    for l in range(L):
        base = uoff[l]
        n = sizes[l + 1]
        for k in range(base):
            h2[k] = h[k]
        for i in range(n):
            k = base + i
            b1 = noise[k] > exp(log_sigmoid(-a[k]))
            h2[k] = 1.0 if b1 else low
        # Branch 1 samples the layers above afresh (or, from the top layer, only its output).
        _forward_above(ex, l + 1, noise[off:], low, h2, y2)
        off += N - uoff[l + 1]
        C1 = loss_and_grad(loss, y2, t, dy2)
        for i in range(n):
            k = base + i
            b1 = 1.0 if h2[k] == 1.0 else 0.0
            g = layer_estimate(disarm, a[k], noise[k], b1, bit[k], C1 - C2)
            write_unit(geo, h, l, i, g, e)
    output_gradient(sizes, woff, boff, uoff, h, dy, e)
    output_gradient(sizes, woff, boff, uoff, h2, dy2, s)
    s0 = sizes[0] * sizes[1]
    for k in range(boff[L - 1] + sizes[L] - s0, e.shape[0]):
        e[k] = 0.5 * (e[k] + s[k])
    return logp


def _arm_noise(hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
    return arm_noise_size(hidden)


_PAIR = {"unbiased": True, "noise": "continuous", "noise_size": _arm_noise, "cells": True}
"""What ARM and DisARM share: the same noise and cells, two estimates from them."""

ENTRIES = (
    Estimator(
        name="arm",
        code=ARM,
        summary="ARM: (C(b1) - C(b2)) (u - 1/2), b1 = 1[u > 1-p], b2 = 1[u < p]",
        reference="Yin & Zhou (2019), ICLR, arXiv:1807.11143",
        affine_in_cells=True,
        **_PAIR,
    ),
    Estimator(
        name="disarm",
        code=DISARM,
        summary="DisARM: 1/2 (C(b1) - C(b2)) 1[b1 != b2] (-1)^b2 sigmoid(|a|)",
        reference="Dong, Mnih & Tucker (2020), NeurIPS, arXiv:2006.10680",
        **_PAIR,
    ),
)
