"""Estimators built on the logistic relaxation of a binary unit (Monte Carlo only).

With ``u ~ U(0, 1)`` per unit and standard logistic noise ``L = log u - log1p(-u)`` (``u``
strictly inside ``(0, 1)``), ``1[a + L > 0]`` is a ``Bernoulli(sigmoid(a))`` draw. Write
``kappa`` = 1 for units in ``{0, 1}`` and 2 for ``values="pm1"``.

* ``gumbel_st`` (straight-through Gumbel-softmax), option ``tau > 0``: forward the hard
  value ``h = v(1[a + L > 0])``, backward the surrogate
  ``dh/da = kappa sigmoid'((a + L)/tau) / tau``, downstream
  derivatives at the hard values. Biased; as ``tau -> 0`` its mean tends to the
  trapezoid rule ``sigmoid'(a)(f'(1) + f'(0))/2`` while its variance grows without bound.
* ``concrete`` (binary Concrete / relaxed Bernoulli), option ``tau > 0``: every unit
  passes on the relaxed value ``h = sigmoid((a + L)/tau)`` (``2 sigmoid((a + L)/tau) - 1``
  for ``"pm1"``) and the
  gradient is ordinary backprop of the loss at the relaxed output. It is unbiased for
  the relaxed objective, biased for the binary one (measured against the binary
  network's exact gradient).

The noise is continuous, so both are measured by Monte Carlo.
"""

from __future__ import annotations

from math import exp, log, log1p

import numpy as np
from numba import njit

from gradstat.estimators.codes import CONCRETE, GUMBEL_ST
from gradstat.estimators.options import check_positive, encode_tau
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import (
    backprop_surrogate,
    log_sigmoid,
    loss_and_grad,
    output_layer,
    preactivation,
)


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
        sizes[l]
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            ai = preactivation(theta, sizes, woff, boff, uoff, tab1, h, l, i)
            z = (ai + logistic(noise[k])) / tau
            ls1 = log_sigmoid(z)
            jac[k] = kappa * exp(ls1 + log_sigmoid(-z)) / tau
            if concrete:
                h[k] = kappa * exp(ls1) + low
            else:
                h[k] = 1.0 if z > 0.0 else low
    output_layer(theta, sizes, woff, boff, uoff, h, y)
    loss_and_grad(loss, y, t, dy)
    backprop_surrogate(theta, sizes, woff, boff, uoff, h, dy, jac, work, e)


ENTRIES = (
    Estimator(
        name="gumbel_st",
        code=GUMBEL_ST,
        summary="straight-through Gumbel: h = 1[a + L > 0], surrogate sigmoid'((a+L)/tau)/tau",
        reference="Jang, Gu & Poole (2017), ICLR, arXiv:1611.01144",
        unbiased=False,
        noise="continuous",
        options={"tau": 1.0},
        validators={"tau": check_positive("tau")},
        encode=encode_tau,
    ),
    Estimator(
        name="concrete",
        code=CONCRETE,
        summary="binary Concrete: relaxed h = sigmoid((a + L)/tau) passed on, backprop",
        reference="Maddison, Mnih & Teh (2017), ICLR, arXiv:1611.00712",
        unbiased=False,
        noise="continuous",
        options={"tau": 1.0},
        validators={"tau": check_positive("tau")},
        encode=encode_tau,
    ),
)
