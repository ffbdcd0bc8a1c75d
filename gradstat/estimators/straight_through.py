"""Straight-through estimators: identity, sigmoid-adjusted and tempered.

All sample ``h ~ Bernoulli(p)`` forward and backpropagate with a surrogate for the
missing derivative ``dh/da`` at every stochastic layer, downstream derivatives taken at
the sampled values (SPEC sections 2 and 2b). ``kappa`` is 1 for units in ``{0, 1}`` and 2
for ``values="pm1"`` (``E[h | a] = 2 sigmoid(a) - 1``): sigmoid-type surrogates double,
the identity stays 1.

* ``st`` (Bengio, Léonard & Courville 2013, arXiv:1308.3432): surrogate ``dh/da = 1``,
  "back-propagate through the hard threshold as if it had been the identity".
* ``st_sigmoid`` (Hinton, Coursera lecture 9c; "sigmoid-adjusted" straight-through):
  surrogate ``dh/da = kappa sigmoid'(a) = kappa p (1 - p)``: backprop as if the unit were
  logistic.
* ``st_tempered`` (option ``tau > 0``; the temperature straight-through of, e.g., the
  ReinMax code base of Liu et al. 2023, arXiv:2304.08612): surrogate
  ``dh/da = kappa sigmoid'(a / tau) / tau``, the derivative of ``sigmoid(a / tau)``;
  ``tau = 1`` is ``st_sigmoid``.
"""

from __future__ import annotations

from numba import njit

from gradstat.kernels.forward import sigmoid_derivative

ST = 0
ST_SIGMOID = 1
ST_TEMPERED = 4


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
