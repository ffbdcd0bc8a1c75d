"""Confidence intervals for a variance and for a probability.

:func:`variance_interval` (chi-square or BCa bootstrap) and :func:`wilson_interval` (Wilson
score interval) give the error bars of Monte Carlo variances, sign agreements and descent
probabilities.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

import numpy as np
import scipy.stats

from gradstat._validation import INT64_MAX, check_array, check_choice, check_int, check_seed
from gradstat.stats._checks import STATS_LIMIT, check_draws, check_open_unit
from gradstat.stats.results import ProportionInterval, VarianceInterval

__all__ = ["variance_interval", "wilson_interval"]

# Bootstrap resamples, and the number of floats one bootstrap batch may hold.
_N_RESAMPLES = 2000
_BOOTSTRAP_BATCH_FLOATS = 2**22
# variance_interval(method="auto"): bootstrap when |excess kurtosis| exceeds this ...
_AUTO_KURTOSIS_LIMIT = 1.0
# ... and there are at least this many draws (below, both the kurtosis estimate and
# the bootstrap are too unreliable to beat the chi-square interval).
_AUTO_BOOTSTRAP_MIN_N = 20
# scipy >= 1.15 takes the generator as `rng`; older releases call it `random_state`.
_BOOTSTRAP_RNG_KEYWORD = (
    "rng" if "rng" in inspect.signature(scipy.stats.bootstrap).parameters else "random_state"
)


def variance_interval(
    samples: Any,
    *,
    confidence_level: float = 0.95,
    method: Literal["auto", "chi2", "bootstrap"] = "auto",
    seed: Any = None,
) -> VarianceInterval:
    """Per-coordinate confidence interval for the variance of the draws.

    ``"chi2"``: with ``s^2`` the sample variance (``ddof=1``),
    ``[(n-1) s^2 / chi2_{1-a/2}(n-1), (n-1) s^2 / chi2_{a/2}(n-1)]``,
    ``a = 1 - confidence_level``; exact for normal draws, but its coverage is wrong
    for heavy- or light-tailed ones (Var(s^2) depends on the kurtosis).

    ``"bootstrap"``: the BCa bootstrap interval of ``s^2``
    (``scipy.stats.bootstrap``, 2000 resamples, Efron 1987), reproducible with ``seed``.
    Needs ``n >= 3``.

    ``"auto"``: ``"bootstrap"`` when ``n >= 20`` and some coordinate has
    ``|excess kurtosis| > 1`` (bias-corrected ``scipy.stats.kurtosis``), else
    ``"chi2"``. Below 20 draws neither the kurtosis estimate nor the bootstrap is
    reliable enough to prefer it. The choice is made once for all coordinates.

    Coordinates whose draws are all identical get the interval ``[0, 0]``.

    Parameters
    ----------
    samples : array_like, shape (n,) or (n, d)
        Independent draws, ``n >= 2``.
    confidence_level : float
        Coverage of each interval, in (0, 1).
    method : {"auto", "chi2", "bootstrap"}
    seed : int, numpy.random.SeedSequence or numpy.random.Generator, optional
        Randomness of the bootstrap.

    Returns
    -------
    VarianceInterval
        Floats for 1-D ``samples``, arrays of shape ``(d,)`` for 2-D.
    """
    array = check_array(samples, "samples", magnitude=STATS_LIMIT)
    if array.ndim not in (1, 2):
        raise ValueError(f"samples must have shape (n,) or (n, d), got shape {array.shape}")
    one_d = array.ndim == 1
    draws = check_draws(array[:, None] if one_d else array)
    n = draws.shape[0]
    confidence_level = check_open_unit(confidence_level, "confidence_level")
    check_choice(method, "method", ("auto", "chi2", "bootstrap"))
    rng = np.random.default_rng(check_seed(seed, generator=True))

    constant = np.ptp(draws, axis=0) == 0
    variance = draws.var(axis=0, ddof=1)
    variance[constant] = 0.0
    kurt = np.full(draws.shape[1], np.nan)
    if n >= 4 and np.any(~constant):
        kurt[~constant] = scipy.stats.kurtosis(draws[:, ~constant], axis=0, bias=False)
    if method == "auto":
        heavy = np.any(np.abs(kurt[~constant]) > _AUTO_KURTOSIS_LIMIT)
        method = "bootstrap" if n >= _AUTO_BOOTSTRAP_MIN_N and heavy else "chi2"

    low = np.zeros_like(variance)
    high = np.zeros_like(variance)
    noisy = ~constant
    if method == "chi2":
        tail = (1.0 - confidence_level) / 2
        low[noisy] = (n - 1) * variance[noisy] / scipy.stats.chi2.isf(tail, n - 1)
        high[noisy] = (n - 1) * variance[noisy] / scipy.stats.chi2.ppf(tail, n - 1)
        label = "chi2"
    else:
        if n < 3:
            raise ValueError(f"method='bootstrap' needs at least 3 draws, got {n}")
        if np.any(noisy):
            columns = draws[:, noisy]
            batch = max(1, _BOOTSTRAP_BATCH_FLOATS // columns.size)
            boot = scipy.stats.bootstrap(
                (columns,),
                _sample_variance,
                n_resamples=_N_RESAMPLES,
                batch=batch,
                vectorized=True,
                axis=0,
                confidence_level=confidence_level,
                method="BCa",
                **{_BOOTSTRAP_RNG_KEYWORD: rng},
            )
            low[noisy] = boot.confidence_interval.low
            high[noisy] = boot.confidence_interval.high
        label = "bootstrap-bca"

    def out(values: np.ndarray) -> float | np.ndarray:
        return float(values[0]) if one_d else values

    return VarianceInterval(
        variance=out(variance),
        low=out(low),
        high=out(high),
        method=label,
        confidence_level=confidence_level,
        n=n,
        excess_kurtosis=out(kurt),
    )


def _sample_variance(x: np.ndarray, axis: int) -> np.ndarray:
    return np.var(x, axis=axis, ddof=1)


def wilson_interval(
    successes: int, n: int, *, confidence_level: float = 0.95
) -> ProportionInterval:
    """Wilson score interval for a probability (Wilson 1927, JASA 22, 209-212).

    With ``p = k / n`` and ``z = z_{1 - (1 - confidence_level) / 2}``, the bounds are
    ``(p + z^2/(2n) -+ z sqrt(p (1-p) / n + z^2 / (4 n^2))) / (1 + z^2 / n)``; computed
    by ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``. Unlike the Wald
    interval it stays inside [0, 1] and keeps its coverage near ``p = 0`` or ``1``.

    Parameters
    ----------
    successes : int
        Number of successes ``k``, ``0 <= k <= n``.
    n : int
        Number of independent trials, ``>= 1`` and at most ``2^63 - 1`` (what scipy's
        binomial routines hold).
    confidence_level : float
        Coverage, in (0, 1).

    Returns
    -------
    ProportionInterval
    """
    successes = check_int(successes, "successes", minimum=0, maximum=INT64_MAX)
    n = check_int(n, "n", minimum=1, maximum=INT64_MAX)
    if successes > n:
        raise ValueError(f"successes must not exceed n, got successes={successes} > n={n}")
    confidence_level = check_open_unit(confidence_level, "confidence_level")
    ci = scipy.stats.binomtest(successes, n).proportion_ci(
        confidence_level=confidence_level, method="wilson"
    )
    return ProportionInterval(
        estimate=successes / n,
        low=float(ci.low),
        high=float(ci.high),
        successes=successes,
        n=n,
        confidence_level=confidence_level,
    )
