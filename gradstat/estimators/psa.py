"""PSA: the path sample-analytic estimator for stochastic binary networks.

A state ``h`` is sampled as usual (unit ``k`` fires when ``u[k] < p[k]``). Along this
path PSA sums analytically over flipping one unit at a time. Write ``s_j = 2 b_j - 1``
for a unit's sampled bit, ``phi_j(a) = sigmoid(-s_j a)`` for the probability that unit
``j`` takes the other value given its pre-activation ``a``, ``h^(i)`` for the state with
unit ``i`` flipped and ``a_j^(i) = a_j + W_ji (h_i^(i) - h_i)`` for the pre-activation of
a unit of the next layer when unit ``i`` of the layer below is flipped. With the top
stochastic layer ``L`` and ``C(h)`` the loss at the sampled state::

    G_L,i     = C(h^(i)) - C(h)                                   i in layer L
    G_{l-1},i = sum_j G_l,j [phi_j(a_j^(i)) - phi_j(a_j)]         j in layer l
    g_hat(b_l)_j    = G_l,j dphi_j/da_j = -s_j sigmoid'(a_j) G_l,j
    g_hat(W_l)_ji   = g_hat(b_l)_j h_{l-1,i}

and the direct path ``dC/dW_o``, ``dC/db_o`` at the sampled state for the output layer.
``G_l,j`` is the derivative of the path's expected loss by the flip probability of unit
``j`` of layer ``l``, each layer's flips treated as rare and independent (first order in
the flip probabilities). For one stochastic layer this is ``sigmoid'(a_j) (C(h with
b_j = 1) - C(h with b_j = 0))``, the local expectation gradient, and PSA is unbiased; with
more layers it is biased.

The authors' code (``shekhovt/PSA-Neurips2020``, ``gradeval/model.py``, method ``SAH``,
used for the paper's gradient-accuracy figures) computes exactly these hidden-layer
terms. Its output layer additionally weights the flipped losses by the detached
``(1 - P(sampled value))/n_L`` to improve the *value* of the expected loss; that term
also moves the output-layer gradient away from ``dC/dtheta_o`` at the sample. gradstat
follows the paper's estimator (the sample's own output gradient, unbiased for the output
layer given the path) and so differs from that code on ``W_o``, ``b_o`` only.

Linearising the differences (``phi_j(a_j^(i)) - phi_j(a_j) ~ -s_j sigmoid'(a_j) W_ji
(h_i^(i) - h_i)`` and ``C(h^(i)) - C(h) ~ dC/dh_i (h_i^(i) - h_i)``) turns PSA into
backpropagation with the surrogate ``kappa sigmoid'(a)`` (``kappa`` 1, or 2 for
``values="pm1"``): the paper's "deep straight-through" variant is gradstat's
``st_sigmoid``, so it is not registered twice.

The estimate depends on the sampled state only, so its moments are exact by joint
enumeration of the ``2^N`` states.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gradstat.estimators.codes import PSA
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import (
    forward_loss,
    log_sigmoid,
    loss_and_grad,
    output_gradient,
    sigmoid_derivative,
    write_unit,
)
from gradstat.kernels.geometry import Example
from gradstat.kernels.workspace import WORK, state_rows


@njit(cache=True)
def psa_draw(ex: Example, state: int, noise: np.ndarray, ws: np.ndarray, e: np.ndarray) -> float:
    """One PSA estimate of the state given by ``state`` (enumeration) or uniforms ``noise``;
    returns the state's log-probability."""
    theta, geo, tab1, t, loss, _ = ex
    sizes, woff, boff, uoff = geo
    L = sizes.shape[0] - 2
    a, p, bit, h, _, y, dy, y2, dy2 = state_rows(ws, geo)
    logp, C = forward_loss(ex, state, noise[: a.shape[0]], a, p, bit, h, y, dy)
    low = tab1[6, 0]
    G = ws[WORK : WORK + 2]
    # Top layer: the loss with each unit flipped, y changing by W_o[:, i] times the jump.
    n_top = sizes[L]
    top = uoff[L - 1]
    for i in range(n_top):
        k = top + i
        jump = (low - 1.0) if bit[k] == 1.0 else (1.0 - low)
        for o in range(sizes[L + 1]):
            y2[o] = y[o] + theta[woff[L] + o * n_top + i] * jump
        G[0, i] = loss_and_grad(loss, y2, t, dy2) - C
    cur = 0
    for l in range(L - 1, -1, -1):
        n = sizes[l + 1]
        base = uoff[l]
        for j in range(n):
            sign = 1.0 if bit[base + j] == 1.0 else -1.0
            write_unit(geo, h, l, j, -sign * sigmoid_derivative(a[base + j]) * G[cur, j], e)
        if l == 0:
            break
        # G of layer l-1: the change of each flip probability of layer l when one unit of
        # layer l-1 flips, weighted by that unit's G.
        n_prev = sizes[l]
        prev = uoff[l - 1]
        nxt = 1 - cur
        for i in range(n_prev):
            jump = (low - 1.0) if bit[prev + i] == 1.0 else (1.0 - low)
            total = 0.0
            for j in range(n):
                sign = 1.0 if bit[base + j] == 1.0 else -1.0
                aj = a[base + j]
                flipped = aj + theta[woff[l] + j * n_prev + i] * jump
                total += G[cur, j] * (
                    np.exp(log_sigmoid(-sign * flipped)) - np.exp(log_sigmoid(-sign * aj))
                )
            G[nxt, i] = total
        cur = nxt
    output_gradient(sizes, woff, boff, uoff, h, dy, e)
    return logp


ENTRIES = (
    Estimator(
        name="psa",
        code=PSA,
        summary="path sample-analytic: one-unit flips summed analytically along the path",
        reference="Shekhovtsov, Yanush & Flach (2020), NeurIPS, arXiv:2006.03143",
        unbiased=False,
    ),
)
