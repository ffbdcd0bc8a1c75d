"""Straight-through estimators: identity, sigmoid-adjusted and tempered.

All sample ``h ~ Bernoulli(p)`` forward and backpropagate with a surrogate for the
missing derivative ``dh/da`` at every stochastic layer, downstream derivatives taken at
the sampled values (docs/model.md, section 2). ``kappa`` is 1 for units in ``{0, 1}`` and 2
for ``values="pm1"`` (``E[h | a] = 2 sigmoid(a) - 1``): sigmoid-type surrogates double,
the identity stays 1.

* ``st``: surrogate ``dh/da = 1``,
  "back-propagate through the hard threshold as if it had been the identity".
* ``st_sigmoid`` ("sigmoid-adjusted" straight-through): surrogate
  ``dh/da = kappa sigmoid'(a) = kappa p (1 - p)``: backprop as if the unit were logistic.
* ``st_tempered`` (option ``tau > 0``, a temperature straight-through): surrogate
  ``dh/da = kappa sigmoid'(a / tau) / tau``, the derivative of ``sigmoid(a / tau)``;
  ``tau = 1`` is ``st_sigmoid``.
"""

from __future__ import annotations

from numba import njit

from gradstat.estimators.codes import ST, ST_SIGMOID, ST_TEMPERED
from gradstat.estimators.options import tau_option
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import sigmoid_derivative


@njit(cache=True)
def st_jacobian(a: float, bit: float) -> float:
    """Identity straight-through: ``dh/da := 1``."""
    return 1.0


@njit(cache=True)
def st_sigmoid_jacobian(a: float, bit: float) -> float:
    """Sigmoid straight-through: ``dh/da := sigmoid'(a) = p (1 - p)``."""
    return sigmoid_derivative(a)


@njit(cache=True)
def st_tempered_jacobian(a: float, tau: float) -> float:
    """Tempered straight-through: ``dh/da := sigmoid'(a / tau) / tau``."""
    return sigmoid_derivative(a / tau) / tau


_STRAIGHT_THROUGH = {"unbiased": False, "layerwise": True}
"""What every straight-through estimator shares: biased, with exact moments by messages
over adjacent layers too."""

ENTRIES = (
    Estimator(
        name="st",
        code=ST,
        summary="straight-through: h ~ Bernoulli(p), surrogate dh/da = 1",
        reference="Bengio, Léonard & Courville (2013), arXiv:1308.3432",
        **_STRAIGHT_THROUGH,
    ),
    Estimator(
        name="st_sigmoid",
        code=ST_SIGMOID,
        summary="sigmoid straight-through: h ~ Bernoulli(p), surrogate dh/da = p(1-p)",
        reference="Hinton, Neural Networks for Machine Learning, lecture 9c (2012)",
        **_STRAIGHT_THROUGH,
    ),
    Estimator(
        name="st_tempered",
        code=ST_TEMPERED,
        summary="tempered straight-through: h ~ Bernoulli(p), surrogate sigmoid'(a/tau)/tau",
        reference="Liu, Dong, Liu, Yu & Gao (2023), arXiv:2304.08612 (temperature ST)",
        **_STRAIGHT_THROUGH,
        **tau_option(),
    ),
)
