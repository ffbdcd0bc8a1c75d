"""Local expectation gradients (LEG).

REINFORCE Rao-Blackwellised one unit at a time: for unit ``i`` of layer ``l``, keep every
other unit at its sampled value and sum the unit's score-function term over both of its
values ``v``, weighted by the unit's conditional given everything else (its Markov
blanket)::

    g_hat(b_l)_i = sum_{v in {0,1}} w_v f_v (v - p_i),   g_hat(W_l)_ij = g_hat(b_l)_i h_{l-1,j}
    w_v  ∝ P(b_i = v | h_{l-1}) prod_{c in layer l+1} P(b_c | h_l with b_i = v)
    f_v  = C(y(h with b_i = v), t)

(no product for ``l = L``; ``f_v`` differs from the sampled loss only for ``l = L``). The
output layer gets the direct path ``dC/dW_o`` at the sampled state. Because
``E[(C - c)(b_i - p_i) | all units but i] = g_hat_i`` with ``c = 0``, LEG is unbiased and
its variance is at most REINFORCE's without a baseline; in one stochastic layer
``w = (1 - p_i, p_i)``, ``g_hat_i = p_i (1 - p_i)(f_1 - f_0)``, and it is the conditional
expectation of REINFORCE with any baseline that ignores ``b_i``.
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit

from gradstat.estimators.codes import LEG
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import log_sigmoid, loss_and_grad, output_gradient, write_unit
from gradstat.kernels.geometry import Example
from gradstat.kernels.workspace import state_rows


@njit(cache=True)
def leg_estimate(ex: Example, C: float, ws: np.ndarray, e: np.ndarray) -> None:
    """Write the LEG estimate of the state in ``ws`` (loss ``C``) into ``e`` (compressed)."""
    theta, geo, tab1, t, loss, _ = ex
    sizes, woff, boff, uoff = geo
    a, p, bit, h, _, y, dy, y2, dy2 = state_rows(ws, geo)
    L = sizes.shape[0] - 2
    low = tab1[6, 0]
    step = 1.0 - low
    for l in range(L):
        n = sizes[l + 1]
        base = uoff[l]
        for i in range(n):
            k = base + i
            # log w_v up to a constant, and f_v, for v = 0 and v = 1.
            lw1 = log_sigmoid(a[k])
            lw0 = log_sigmoid(-a[k])
            f1 = C
            f0 = C
            if l < L - 1:
                nb = uoff[l + 1]
                for c in range(sizes[l + 2]):
                    wci = theta[woff[l + 1] + c * n + i]
                    # Child pre-activation with unit i firing / not firing.
                    a_on = a[nb + c] + wci * (1.0 - h[k])
                    a_off = a[nb + c] + wci * (low - h[k])
                    if bit[nb + c] == 1.0:
                        lw1 += log_sigmoid(a_on)
                        lw0 += log_sigmoid(a_off)
                    else:
                        lw1 += log_sigmoid(-a_on)
                        lw0 += log_sigmoid(-a_off)
            else:
                # Last layer: the loss with unit i flipped.
                sign = -1.0 if bit[k] == 1.0 else 1.0
                for o in range(sizes[L + 1]):
                    y2[o] = y[o] + sign * step * theta[woff[L] + o * n + i]
                other = loss_and_grad(loss, y2, t, dy2)
                if bit[k] == 1.0:
                    f0 = other
                else:
                    f1 = other
            m = lw1 if lw1 > lw0 else lw0
            w1 = exp(lw1 - m)
            w0 = exp(lw0 - m)
            z = w1 + w0
            g = (w1 * f1 * (1.0 - p[k]) - w0 * f0 * p[k]) / z
            write_unit(geo, h, l, i, g, e)
    output_gradient(sizes, woff, boff, uoff, h, dy, e)


ENTRIES = (
    Estimator(
        name="leg",
        code=LEG,
        summary="local expectation: each unit's REINFORCE term summed over its two values",
        reference="Titsias & Lázaro-Gredilla (2015), NeurIPS, arXiv:1503.01494",
        unbiased=True,
    ),
)
