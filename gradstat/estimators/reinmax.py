"""ReinMax for binary units.

ReinMax replaces straight-through's first-order surrogate by a second-order one (Heun's
method). For a two-class softmax with logits ``(a, 0)`` and one-hot sample ``(b, 1 - b)``
its backward pass reduces, per binary unit, to the surrogate

    dh/da := kappa * (2 q (1 - q) - p (1 - p) / 2),   q = (sigmoid(a / tau) + b) / 2,

with ``b`` the unit's sampled bit and ``kappa`` 1 (units in ``{0, 1}``) or 2
(``values="pm1"``), backpropagated layer by layer with downstream derivatives at the
sampled values. At ``tau = 1`` it is ``kappa (b (1 - p) + (1 - b) p) / 2``: the binary
ZGR of Shekhovtsov (2023), also DARN(1/2), whose mean surrogate is ``sigmoid'(a)`` and
whose mean is the trapezoid rule ``sigmoid'(a) (f'(1) + f'(0)) / 2``: exact when the loss
is at most quadratic in each unit of one stochastic layer. The authors' implementation
rejects ``tau < 1`` ("ReinMax prefers to set the temperature larger or equal to 1"), and
so does gradstat.
"""

from __future__ import annotations

from math import exp
from typing import Any

from numba import njit

from gradstat._validation import MAGNITUDE_LIMIT, check_real
from gradstat.estimators.codes import REINMAX
from gradstat.estimators.options import tau_option
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import log_sigmoid, sigmoid_derivative


def check_reinmax_tau(value: Any) -> float:
    """Validate ReinMax's ``tau``: a finite number in ``[1, 1e150]``."""
    value = check_real(value, "reinmax's tau", maximum=MAGNITUDE_LIMIT)
    if not value >= 1.0:
        raise ValueError(
            f"reinmax's tau must be >= 1, got {value!r}: ReinMax's authors reject "
            "temperatures below 1 (its second-order correction assumes tau >= 1); for a "
            "sharper surrogate use 'st_tempered' with that tau"
        )
    return value


@njit(cache=True)
def reinmax_jacobian(a: float, bit: float, tau: float) -> float:
    """``2 q (1 - q) - p (1 - p) / 2`` with ``q = (sigmoid(a / tau) + bit) / 2``."""
    q = 0.5 * (exp(log_sigmoid(a / tau)) + bit)
    return 2.0 * q * (1.0 - q) - 0.5 * sigmoid_derivative(a)


ENTRIES = (
    Estimator(
        name="reinmax",
        code=REINMAX,
        summary="ReinMax: surrogate 2q(1-q) - p(1-p)/2, q = (sigmoid(a/tau) + b)/2, tau >= 1",
        reference="Liu, Dong, Liu, Yu & Gao (2023), NeurIPS, arXiv:2304.08612",
        unbiased=False,
        **tau_option(check_reinmax_tau),
        layerwise=True,
    ),
)
