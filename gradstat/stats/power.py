"""Sample-size planning and the power of the tests.

:func:`required_samples` says how many draws a test needs to detect a given bias;
:func:`noncentrality_for_power` inverts a power function, for the ``detectable_bias`` of
:func:`gradstat.stats.unbiasedness.unbiasedness_test`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import scipy.optimize
import scipy.stats

from gradstat._validation import check_int, check_real
from gradstat.stats._checks import check_open_unit

__all__ = ["noncentrality_for_power", "required_samples"]


def noncentrality_for_power(
    power_at: Callable[[float], float], alpha: float, power: float
) -> float:
    """Smallest noncentrality ``lam`` with ``power_at(lam) = power`` (0 if power <= alpha)."""
    if power <= alpha:
        return 0.0
    hi = 1.0
    while power_at(hi) < power:
        hi *= 2.0
        if hi > 1e15:
            return math.inf
    return float(
        scipy.optimize.brentq(lambda lam: power_at(lam) - power, 0.0, hi, xtol=1e-12, rtol=1e-12)
    )


def required_samples(
    detectable_bias: float,
    sigma: float,
    *,
    alpha: float = 0.01,
    power: float = 0.8,
    n_params: int = 1,
) -> int:
    """Number of independent draws needed to detect a given bias on one coordinate.

    For a two-sided z-test at level ``alpha``, Bonferroni-corrected over ``n_params``
    coordinates, to reject a bias ``delta`` on a coordinate with per-draw standard
    deviation ``sigma`` with probability ``power``:

        n = ceil(((z_{1 - alpha / (2 n_params)} + z_power) sigma / delta)^2),

    neglecting the far rejection tail; at least 2 (the minimum every test here needs).
    This inverts ``UnbiasednessResult.detectable_bias`` of the Holm method.

    Parameters
    ----------
    detectable_bias : float
        Bias ``delta`` to detect, ``> 0``.
    sigma : float
        Standard deviation of one draw of that coordinate, ``>= 0``.
    alpha, power : float
        In (0, 1).
    n_params : int
        Number of coordinates tested together, ``>= 1``.

    Returns
    -------
    int
    """
    detectable_bias = check_real(detectable_bias, "detectable_bias", minimum=0.0, open_min=True)
    sigma = check_real(sigma, "sigma", minimum=0.0)
    alpha = check_open_unit(alpha, "alpha")
    power = check_open_unit(power, "power")
    n_params = check_int(n_params, "n_params", minimum=1)
    z = scipy.stats.norm.isf(alpha / (2 * n_params)) + scipy.stats.norm.ppf(power)
    if z > 0.0 and sigma > 0.0:
        digits = 2 * (math.log10(z) + math.log10(sigma) - math.log10(detectable_bias))
        if digits > 300:
            raise ValueError(
                f"detectable_bias = {detectable_bias:g} is too small against sigma = "
                f"{sigma:g}: detecting it would need about 10^{digits:.0f} draws, more than "
                "float64 counts (1e300); ask for a larger detectable_bias"
            )
    needed = (max(z, 0.0) * sigma / detectable_bias) ** 2
    return max(2, math.ceil(needed))
