"""The stochastic times smooth (STS) unit.

Forward: ``q = sqrt(p)``, ``b ~ Bernoulli(q)``, ``h = b * q``, so ``E[h] = p``; the next
layer and the output receive the real value ``h``. Backward: ``b`` is treated as a
constant and the gradient flows through the smooth factor only,
``dh/da = b * dq/da = b * sqrt(p) (1 - p) / 2``. The probability of a noise state is that
of the bits ``b``; bias is measured against the exact gradient of the binary network.
"""

from __future__ import annotations

from math import exp

from numba import njit

from gradstat.estimators.codes import STS
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import log_sigmoid


@njit(cache=True)
def sts_jacobian(a: float, bit: float) -> float:
    """``dh/da = b * sqrt(p) * (1 - p) / 2`` in log-sigmoid form."""
    if bit == 0.0:
        return 0.0
    return 0.5 * exp(0.5 * log_sigmoid(a) + log_sigmoid(-a))


ENTRIES = (
    Estimator(
        name="sts",
        code=STS,
        summary="stochastic times smooth: h = b sqrt(p), b ~ Bernoulli(sqrt(p)), "
        "surrogate b sqrt(p)(1-p)/2",
        reference="Bengio, Léonard & Courville (2013), arXiv:1308.3432",
        unbiased=False,
        smooth=True,
        values=("01",),
    ),
)
