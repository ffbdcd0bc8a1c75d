"""Estimators built on the logistic relaxation of a binary unit (Monte Carlo only).

With ``u ~ U(0, 1)`` per unit and standard logistic noise ``L = log u - log1p(-u)`` (``u``
strictly inside ``(0, 1)``), ``1[a + L > 0]`` is a ``Bernoulli(sigmoid(a))`` draw. Write
``kappa`` = 1 for units in ``{0, 1}`` and 2 for ``values="pm1"``.

* ``gumbel_st`` (straight-through Gumbel-softmax, Jang, Gu & Poole 2017, ICLR;
  arXiv:1611.01144), option ``tau > 0``: forward the hard value ``h = v(1[a + L > 0])``,
  backward the surrogate ``dh/da = kappa sigmoid'((a + L)/tau) / tau``, downstream
  derivatives at the hard values. Biased; as ``tau -> 0`` its mean tends to the
  trapezoid rule ``sigmoid'(a)(f'(1) + f'(0))/2`` while its variance grows without bound.
* ``concrete`` (binary Concrete / relaxed Bernoulli, Maddison, Mnih & Teh 2017, ICLR;
  arXiv:1611.00712), option ``tau > 0``: every unit passes on the relaxed value
  ``h = sigmoid((a + L)/tau)`` (``2 sigmoid((a + L)/tau) - 1`` for ``"pm1"``) and the
  gradient is ordinary backprop of the loss at the relaxed output. It is unbiased for
  the relaxed objective, biased for the binary one (measured against the binary
  network's exact gradient).

The noise is continuous, so both are measured by Monte Carlo.
"""

from __future__ import annotations

from math import exp, log, log1p

import numpy as np
from numba import njit

from gradstat.kernels.forward import backprop_surrogate, log_sigmoid, loss_and_grad

GUMBEL_ST = 10
CONCRETE = 11


@njit(cache=True)
def logistic(u: float) -> float:
    """Standard logistic noise ``log u - log1p(-u)`` for ``u`` in ``(0, 1)``."""
    return log(u) - log1p(-u)


@njit(cache=True)
def relaxed_draw(
    concrete: bool,
    tau: float,
    theta: np.ndarray,
    sizes: np.ndarray,
    woff: np.ndarray,
    boff: np.ndarray,
    uoff: np.ndarray,
    tab1: np.ndarray,
    t: np.ndarray,
    loss: int,
    noise: np.ndarray,
    h: np.ndarray,
    jac: np.ndarray,
    y: np.ndarray,
    dy: np.ndarray,
    work: np.ndarray,
    e: np.ndarray,
) -> None:
    """One ``gumbel_st`` (``concrete=False``) or ``concrete`` estimate from uniforms ``noise``."""
    L = sizes.shape[0] - 2
    low = tab1[6, 0]
    kappa = 1.0 - low
    for l in range(L):
        n_prev = sizes[l]
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            if l == 0:
                ai = tab1[0, i]
            else:
                ai = theta[boff[l] + i]
                for j in range(n_prev):
                    ai += theta[woff[l] + i * n_prev + j] * h[uoff[l - 1] + j]
            z = (ai + logistic(noise[k])) / tau
            ls1 = log_sigmoid(z)
            jac[k] = kappa * exp(ls1 + log_sigmoid(-z)) / tau
            if concrete:
                h[k] = kappa * exp(ls1) + low
            else:
                h[k] = 1.0 if z > 0.0 else low
    n_last = sizes[L]
    last = uoff[L - 1]
    for o in range(sizes[L + 1]):
        v = theta[boff[L] + o]
        for j in range(n_last):
            v += theta[woff[L] + o * n_last + j] * h[last + j]
        y[o] = v
    loss_and_grad(loss, y, t, dy)
    backprop_surrogate(theta, sizes, woff, boff, uoff, h, dy, jac, work, e)
