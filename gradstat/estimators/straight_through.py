"""Straight-through estimators: identity and sigmoid-adjusted.

Both sample ``h ~ Bernoulli(p)`` forward and backpropagate with a surrogate for the
missing derivative ``dh/da`` at every stochastic layer, downstream derivatives taken at
the sampled values (SPEC section 2).

* ``st`` (Bengio, Léonard & Courville 2013, arXiv:1308.3432): surrogate ``dh/da = 1``,
  "back-propagate through the hard threshold as if it had been the identity".
* ``st_sigmoid`` (Hinton, Coursera lecture 9c; "sigmoid-adjusted" straight-through):
  surrogate ``dh/da = sigmoid'(a) = p (1 - p)``: backprop as if the unit were logistic.
"""

from __future__ import annotations

from math import exp

from numba import njit

from gradstat.forward import log_sigmoid

ST = 0
ST_SIGMOID = 1


@njit(cache=True)
def st_jacobian(a: float, bit: float) -> float:
    """Identity straight-through: ``dh/da := 1``."""
    return 1.0


@njit(cache=True)
def st_sigmoid_jacobian(a: float, bit: float) -> float:
    """Sigmoid straight-through: ``dh/da := sigmoid'(a) = p (1 - p)``, in log-sigmoid form."""
    return exp(log_sigmoid(a) + log_sigmoid(-a))
