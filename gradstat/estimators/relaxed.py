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

The noise is continuous, so both are measured by Monte Carlo; ``gumbel_st``'s exact mean
and variance are also available by one-dimensional quadrature per unit
(``engine="quadrature"``, :mod:`gradstat.engines.quadrature`).
"""

from __future__ import annotations

from math import exp, log, log1p

import numpy as np
from numba import njit

from gradstat.estimators.codes import CONCRETE, GUMBEL_ST
from gradstat.estimators.options import tau_option
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import (
    backprop_surrogate,
    log_sigmoid,
    loss_and_grad,
    output_layer,
    preactivation,
)
from gradstat.kernels.geometry import Example
from gradstat.kernels.workspace import WORK, state_rows


@njit(cache=True)
def logistic(u: float) -> float:
    """Standard logistic noise ``log u - log1p(-u)`` for ``u`` in ``(0, 1)``."""
    return log(u) - log1p(-u)


@njit(cache=True)
def relaxed_draw(
    concrete: bool, tau: float, ex: Example, noise: np.ndarray, ws: np.ndarray, e: np.ndarray
) -> None:
    """One ``gumbel_st`` (``concrete=False``) or ``concrete`` estimate from uniforms ``noise``."""
    theta, geo, tab1, _, _, _ = ex
    sizes, uoff = geo.sizes, geo.uoff
    _, _, _, h, jac, _, _, _, _ = state_rows(ws, geo)
    low = tab1[6, 0]
    kappa = 1.0 - low
    for l in range(sizes.shape[0] - 2):
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            z = (preactivation(theta, geo, tab1, h, l, i) + logistic(noise[k])) / tau
            ls1 = log_sigmoid(z)
            jac[k] = kappa * exp(ls1 + log_sigmoid(-z)) / tau
            if concrete:
                h[k] = kappa * exp(ls1) + low
            else:
                h[k] = 1.0 if z > 0.0 else low
    backprop_values(ex, ws, e)


@njit(cache=True)
def backprop_values(ex: Example, ws: np.ndarray, e: np.ndarray) -> None:
    """The estimate of units whose values and slopes ``dh/da`` fill rows ``H`` and ``JAC``
    of ``ws``: ``y = W_o h_L + b_o``, its loss's ``dC/dy``, then
    :func:`gradstat.kernels.forward.backprop_surrogate` with those slopes."""
    theta, geo, _, t, loss, _ = ex
    sizes, woff, boff, uoff = geo
    _, _, _, h, jac, y, dy, _, _ = state_rows(ws, geo)
    output_layer(theta, geo, h, y)
    loss_and_grad(loss, y, t, dy)
    backprop_surrogate(theta, sizes, woff, boff, uoff, h, dy, jac, ws[WORK : WORK + 2], e)


_RELAXED = {"unbiased": False, "noise": "continuous", **tau_option()}
"""What both relaxations share: logistic noise and a temperature."""

ENTRIES = (
    Estimator(
        name="gumbel_st",
        code=GUMBEL_ST,
        summary="straight-through Gumbel: h = 1[a + L > 0], surrogate sigmoid'((a+L)/tau)/tau",
        reference="Jang, Gu & Poole (2017), ICLR, arXiv:1611.01144",
        quadrature=True,
        **_RELAXED,
    ),
    Estimator(
        name="concrete",
        code=CONCRETE,
        summary="binary Concrete: relaxed h = sigmoid((a + L)/tau) passed on, backprop",
        reference="Maddison, Mnih & Teh (2017), ICLR, arXiv:1611.00712",
        **_RELAXED,
    ),
)
