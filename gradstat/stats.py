"""Statistical tests and confidence intervals for Monte Carlo gradient studies.

This module implements SPEC.md section 4. A Monte Carlo check that "the estimator is
unbiased" compares ``n`` independent draws ``g_hat_1, ..., g_hat_n`` (each a vector the
size of ``theta``) with the exact gradient ``g``:

- :func:`unbiasedness_test` picks the strongest valid test: a chi-square test when the
  exact covariance of one draw is known from enumeration, Hotelling's T^2 when
  ``n > n_params``, and otherwise per-coordinate t-tests with Holm's correction. Its
  result says how large a bias the test could have detected (``detectable_bias``).
- :func:`compare_estimators` runs the same machinery on paired differences of two
  estimators, for networks too wide to enumerate.
- :func:`variance_interval` (chi-square or bootstrap), :func:`wilson_interval` (Wilson
  score interval for probabilities) and :func:`required_samples` (sample-size planning)
  give the error bars every Monte Carlo number must carry.

Zero-variance directions
------------------------
Gradient estimators often have deterministic coordinates (for example the output-layer
bias under some estimators) or deterministic linear combinations of coordinates. Along
such a direction the draws carry no noise, so the mean either equals the target (up to
rounding) and the direction is dropped from the test, or it does not and the bias is
certain: the p-value is then exactly 0, the statistic ``inf``, and ``method`` gets the
suffix :data:`ZERO_VARIANCE_SUFFIX`. "Up to rounding" means within ``1e-12 * scale``,
where ``scale`` is the largest absolute value among the draws, the target and the
standard deviations; a direction whose variance is zero only to working precision (an
eigenvalue below the numerical-rank tolerance) additionally allows eight standard
errors of the largest variance that tolerance could hide, so that a real but tiny
variance never produces a false alarm.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.optimize
import scipy.stats

__all__ = [
    "ZERO_VARIANCE_SUFFIX",
    "ComparisonResult",
    "ConfidenceInterval",
    "ProportionInterval",
    "UnbiasednessResult",
    "VarianceInterval",
    "compare_estimators",
    "holm_adjust",
    "required_samples",
    "unbiasedness_test",
    "variance_interval",
    "wilson_interval",
]

ZERO_VARIANCE_SUFFIX = " (p=0: mean differs from target along a zero-variance direction)"
"""Appended to ``method`` when a noiseless direction alone decides the test."""

# A standard deviation or mean difference below _ROUNDING_RTOL * scale is rounding.
_ROUNDING_RTOL = 1e-12
# Eigenvalues below _RANK_RTOL_FACTOR * k * eps * (largest eigenvalue) of a k x k
# correlation matrix are numerically zero (numpy.linalg.matrix_rank uses factor 1).
_RANK_RTOL_FACTOR = 1000.0
# Standard errors of the largest hidden variance allowed along a numerically-null direction.
_HIDDEN_VARIANCE_Z = 8.0
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

METHOD_CHI2 = "chi2-known-cov"
METHOD_HOTELLING = "hotelling-t2"
METHOD_HOLM = "holm-t"


# --------------------------------------------------------------------------- results


class ConfidenceInterval(NamedTuple):
    """Lower and upper bounds, as scipy.stats returns them (unpacks as ``low, high``)."""

    low: Any
    high: Any


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to plain Python floats, ints and lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)):
        return float(value)
    return value


class _ToDictMixin:
    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-friendly Python objects (floats, ints, strings, lists).

        Non-finite floats stay ``inf``/``nan``; ``json.dumps`` writes them as
        ``Infinity``/``NaN`` unless called with ``allow_nan=False``.
        """
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class UnbiasednessResult(_ToDictMixin):
    """Result of :func:`unbiasedness_test`.

    Attributes
    ----------
    statistic : float
        ``chi2-known-cov``: ``n (m - g)^T Sigma^+ (m - g)``; ``hotelling-t2``: Hotelling's
        ``T^2 = n (m - g)^T S^+ (m - g)`` (its F form is
        ``(n - p) / (p (n - 1)) T^2 ~ F(p, n - p)``); ``holm-t``: ``max_j |t_j|``.
        ``inf`` when a zero-variance direction decides the test.
    pvalue : float
        p-value of the null hypothesis ``E[g_hat] = g`` (Holm-adjusted minimum for
        ``holm-t``).
    df : float or tuple of float
        ``rank(Sigma)`` for chi-square, ``(p, n - p)`` for Hotelling (``p`` the rank of
        the sample covariance on the noisy coordinates), ``n - 1`` for the t-tests.
    method : str
        ``"chi2-known-cov"``, ``"hotelling-t2"`` or ``"holm-t"``, followed by
        :data:`ZERO_VARIANCE_SUFFIX` when the p-value is 0 because the mean differs from
        the target along a direction without noise.
    n : int
        Number of draws.
    n_params : int
        Length ``d`` of each draw.
    alpha : float
        Level of the test.
    power : float
        Power at which ``detectable_bias`` is computed.
    bias : ndarray, shape (d,)
        ``m - g``, the sample mean minus the target (what was compared).
    bias_se : ndarray, shape (d,)
        Per-coordinate standard errors of ``bias``: ``sqrt(diag(Sigma) / n)`` with a
        known covariance, ``s_j / sqrt(n)`` (sample standard deviation, ``ddof=1``)
        otherwise.
    detectable_bias : float
        Smallest bias norm ``||delta||_2`` that this test rejects with probability
        ``power`` at level ``alpha`` whatever its direction (i.e. along the worst, the
        noisiest, direction). Biases along zero-variance directions are detected at any
        size, so they do not enter.
    rejected : bool
        ``pvalue < alpha``.
    n_zero_variance : int
        Number of coordinates and further directions without noise that were dropped
        from the test (or, if the mean differs there, decided it).
    coordinate_pvalues : ndarray of shape (d,) or None
        ``holm-t`` only: Holm-adjusted per-coordinate p-values (0 or 1 for
        zero-variance coordinates, as the mean differs from the target there or not).
    """

    statistic: float
    pvalue: float
    df: float | tuple[float, float]
    method: str
    n: int
    n_params: int
    alpha: float
    power: float
    bias: np.ndarray = dataclasses.field(repr=False)
    bias_se: np.ndarray = dataclasses.field(repr=False)
    detectable_bias: float
    rejected: bool
    n_zero_variance: int
    coordinate_pvalues: np.ndarray | None = dataclasses.field(repr=False)

    @property
    def bias_norm(self) -> float:
        """``||m - g||_2``."""
        return float(np.linalg.norm(self.bias))

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """Simultaneous (Bonferroni) per-coordinate confidence intervals for the bias.

        ``bias_j -+ q * bias_se_j`` with ``q`` the ``1 - (1 - confidence_level) / (2 d)``
        quantile of the standard normal (known covariance) or of Student's t with
        ``n - 1`` degrees of freedom (sample covariance), so that all ``d`` intervals
        cover the true bias together with probability at least ``confidence_level``.

        Parameters
        ----------
        confidence_level : float
            Joint coverage, in (0, 1).

        Returns
        -------
        ConfidenceInterval
            ``(low, high)``, two arrays of shape ``(d,)``.
        """
        confidence_level = _check_open_unit(confidence_level, "confidence_level")
        tail = (1.0 - confidence_level) / (2 * self.n_params)
        if self.method.startswith(METHOD_CHI2):
            q = scipy.stats.norm.isf(tail)
        else:
            q = scipy.stats.t.isf(tail, self.n - 1)
        half = q * self.bias_se
        return ConfidenceInterval(self.bias - half, self.bias + half)


@dataclass(frozen=True)
class ComparisonResult(UnbiasednessResult):
    """Result of :func:`compare_estimators`: an :class:`UnbiasednessResult` on ``a - b``.

    The inherited fields describe the test of ``E[g_hat_a - g_hat_b] = 0``; in
    particular ``bias`` is the mean difference. Additional attributes:

    Attributes
    ----------
    mean_difference : ndarray, shape (d,)
        ``mean_i (a_i - b_i)`` (the same values as ``bias``, under the name that fits).
    estimators : tuple of str
        Names of the two estimators compared, ``(a, b)``.
    """

    mean_difference: np.ndarray = dataclasses.field(repr=False)
    estimators: tuple[str, str]


@dataclass(frozen=True)
class VarianceInterval(_ToDictMixin):
    """Result of :func:`variance_interval`.

    Attributes
    ----------
    variance : float or ndarray of shape (d,)
        Sample variance ``s^2`` (``ddof=1``) of each coordinate.
    low, high : float or ndarray of shape (d,)
        Confidence bounds for the variance (not simultaneous over coordinates).
    method : str
        ``"chi2"`` or ``"bootstrap-bca"``.
    confidence_level : float
        Coverage of each interval.
    n : int
        Number of draws.
    excess_kurtosis : float or ndarray of shape (d,)
        Bias-corrected sample excess kurtosis (``scipy.stats.kurtosis(bias=False)``),
        the basis of ``method="auto"``; ``nan`` for constant coordinates or ``n < 4``.
    """

    variance: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    method: str
    confidence_level: float
    n: int
    excess_kurtosis: float | np.ndarray

    def confidence_interval(self) -> ConfidenceInterval:
        """``(low, high)``, for symmetry with the other result objects."""
        return ConfidenceInterval(self.low, self.high)


@dataclass(frozen=True)
class ProportionInterval(_ToDictMixin):
    """Result of :func:`wilson_interval`.

    Attributes
    ----------
    estimate : float
        ``successes / n``.
    low, high : float
        Wilson score interval bounds.
    successes, n : int
        Counts.
    confidence_level : float
        Coverage.
    """

    estimate: float
    low: float
    high: float
    successes: int
    n: int
    confidence_level: float

    def confidence_interval(self) -> ConfidenceInterval:
        """``(low, high)``, for symmetry with the other result objects."""
        return ConfidenceInterval(self.low, self.high)


# ------------------------------------------------------------------------ validation


def _check_open_unit(value: Any, name: str) -> float:
    """Return ``value`` as a float strictly inside (0, 1), or raise naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating)):
        raise TypeError(f"{name} must be a real number in (0, 1), got {type(value).__name__}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return value


def _check_int(value: Any, name: str, minimum: int) -> int:
    """Return ``value`` as an int ``>= minimum``, or raise naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}; pass int({name})"
        )
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _check_positive_real(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    ok = value >= 0.0 if allow_zero else value > 0.0
    if not (math.isfinite(value) and ok):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return value


def _as_real_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array; TypeError for non-numeric, ValueError for NaN/inf."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(
            f"{name} contains {bad} NaN or infinite value(s); remove or fix those draws first"
        )
    return array


def _as_draws(samples: Any, name: str = "samples") -> np.ndarray:
    """Validate an ``(n, d)`` array of draws with ``n >= 2`` and ``d >= 1``."""
    draws = _as_real_array(samples, name)
    if draws.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n, d) (one draw per row), got shape {draws.shape}; "
            f"for a single coordinate pass {name}[:, None]"
        )
    n, d = draws.shape
    if n < 2:
        raise ValueError(f"{name} needs at least 2 draws (rows), got {n}")
    if d < 1:
        raise ValueError(f"{name} needs at least one coordinate (column), got shape {draws.shape}")
    return draws


# ------------------------------------------------------------------- test machinery


def holm_adjust(pvalues: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values.

    For p-values sorted increasingly, ``p_(1) <= ... <= p_(m)``, the adjusted values
    are ``max_{j <= i} min(1, (m - j + 1) p_(j))``, returned in the input order;
    rejecting every hypothesis whose adjusted p-value is below ``alpha`` controls the
    family-wise error rate at ``alpha`` (Holm 1979, Scand. J. Statist. 6, 65-70).

    Parameters
    ----------
    pvalues : array_like, shape (m,)
        Unadjusted p-values in [0, 1].

    Returns
    -------
    ndarray, shape (m,)
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("pvalues must be a 1-D array of numbers in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def _noncentrality_for_power(power_at: Any, alpha: float, power: float) -> float:
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


@dataclass(frozen=True)
class _Quadratic:
    """``n z^T R^+ z`` restricted to the numerical range of a correlation matrix ``R``."""

    value: float
    rank: int
    n_null: int
    null_violation: bool


def _restricted_quadratic(
    corr: np.ndarray, z: np.ndarray, n: int, rounding: np.ndarray
) -> _Quadratic:
    """Quadratic form of standardized mean deviations ``z`` on the range of ``corr``.

    ``corr`` is a correlation matrix (unit diagonal) and ``z_j = (m_j - g_j) / sd_j``.
    Working with correlations makes the rank decision invariant to coordinate scales.
    Eigenvalues ``w <= tol = _RANK_RTOL_FACTOR * k * eps * w_max`` span the null
    directions ``v``; there the draws are constant, so ``|v^T z|`` may only exceed
    ``sum_j |v_j| rounding_j + 8 sqrt(tol / n)`` (rounding, plus eight standard errors
    of any variance hidden below ``tol``) if the mean really differs from the target.
    """
    k = z.size
    if k == 0:
        return _Quadratic(0.0, 0, 0, False)
    w, vectors = np.linalg.eigh(corr)
    tol = _RANK_RTOL_FACTOR * k * np.finfo(np.float64).eps * max(w[-1], 0.0)
    kept = w > tol
    projection = vectors.T @ z
    null = ~kept
    limit = np.abs(vectors[:, null]).T @ rounding + _HIDDEN_VARIANCE_Z * math.sqrt(tol / n)
    violation = bool(np.any(np.abs(projection[null]) > limit))
    value = float(n * np.sum(projection[kept] ** 2 / w[kept]))
    return _Quadratic(value, int(kept.sum()), int(null.sum()), violation)


def _mean_test(
    draws: np.ndarray,
    target: np.ndarray,
    cov: np.ndarray | None,
    alpha: float,
    power: float,
    scale: float,
) -> dict[str, Any]:
    """Shared machinery of :func:`unbiasedness_test` and :func:`compare_estimators`."""
    n, d = draws.shape
    atol = _ROUNDING_RTOL * scale
    mean = draws.mean(axis=0)
    constant = np.ptp(draws, axis=0) == 0
    # The mean of identical floats can be off by an ulp; use the value itself.
    mean[constant] = draws[0, constant]
    bias = mean - target
    if cov is None:
        variance = draws.var(axis=0, ddof=1)
        variance[constant] = 0.0
    else:
        variance = np.diag(cov).copy()
    bias_se = np.sqrt(variance / n)
    sd = np.sqrt(variance)
    zero = sd <= atol
    noisy = ~zero
    violation = bool(np.any(zero & (np.abs(bias) > atol)))
    n_zero = int(zero.sum())
    k = int(noisy.sum())
    coordinate_pvalues = None
    sd_k = sd[noisy]
    z = bias[noisy] / sd_k
    rounding = atol / sd_k

    if cov is not None:
        method = METHOD_CHI2
        sub = cov[np.ix_(noisy, noisy)]
        quad = _restricted_quadratic(sub / np.outer(sd_k, sd_k), z, n, rounding)
        statistic, df = quad.value, float(quad.rank)
        pvalue = float(scipy.stats.chi2.sf(statistic, quad.rank)) if quad.rank else 1.0
        violation = violation or quad.null_violation
        n_zero += quad.n_null
        if quad.rank:
            crit = scipy.stats.chi2.isf(alpha, quad.rank)
            lam = _noncentrality_for_power(
                lambda nc: scipy.stats.ncx2.sf(crit, quad.rank, nc), alpha, power
            )
            largest = float(np.linalg.eigvalsh(sub)[-1])
            detectable = math.sqrt(lam * largest / n)
        else:
            detectable = 0.0
    elif n > k:
        method = METHOD_HOTELLING
        sub = np.cov(draws[:, noisy], rowvar=False, ddof=1).reshape(k, k) if k else np.zeros((0, 0))
        quad = _restricted_quadratic(sub / np.outer(sd_k, sd_k), z, n, rounding)
        p = quad.rank
        statistic, df = quad.value, (float(p), float(n - p))
        if p:
            f_stat = (n - p) / (p * (n - 1)) * statistic
            pvalue = float(scipy.stats.f.sf(f_stat, p, n - p))
            crit = scipy.stats.f.isf(alpha, p, n - p)
            lam = _noncentrality_for_power(
                lambda nc: scipy.stats.ncf.sf(crit, p, n - p, nc), alpha, power
            )
            largest = float(np.linalg.eigvalsh(sub)[-1])
            detectable = math.sqrt(lam * largest / n)
        else:
            pvalue, detectable = 1.0, 0.0
        violation = violation or quad.null_violation
        n_zero += quad.n_null
    else:
        method = METHOD_HOLM
        df = float(n - 1)
        coordinate_pvalues = np.where(zero & (np.abs(bias) > atol), 0.0, 1.0)
        t_stat, raw = scipy.stats.ttest_1samp(draws[:, noisy], target[noisy], axis=0)
        coordinate_pvalues[noisy] = holm_adjust(raw)
        statistic = float(np.max(np.abs(t_stat)))
        pvalue = float(np.min(coordinate_pvalues[noisy]))
        z_alpha = scipy.stats.norm.isf(alpha / (2 * k))
        z_power = scipy.stats.norm.ppf(power)
        detectable = max(0.0, float((z_alpha + z_power) * np.max(bias_se[noisy])))

    if violation:
        statistic, pvalue, method = math.inf, 0.0, method + ZERO_VARIANCE_SUFFIX
    return {
        "statistic": float(statistic),
        "pvalue": float(pvalue),
        "df": df,
        "method": method,
        "n": n,
        "n_params": d,
        "alpha": alpha,
        "power": power,
        "bias": bias,
        "bias_se": bias_se,
        "detectable_bias": float(detectable),
        "rejected": bool(pvalue < alpha),
        "n_zero_variance": n_zero,
        "coordinate_pvalues": coordinate_pvalues,
    }


# ------------------------------------------------------------------------ public API


def unbiasedness_test(
    samples: Any,
    target: Any,
    *,
    cov: Any = None,
    alpha: float = 0.01,
    power: float = 0.8,
) -> UnbiasednessResult:
    """Test whether ``n`` independent draws of a gradient estimator have mean ``target``.

    With ``m = (1/n) sum_i g_hat_i`` the sample mean and ``g`` the exact gradient, the
    null hypothesis is ``E[g_hat] = g``. The test is chosen as SPEC.md section 4 asks:

    1. ``cov`` given (the exact covariance ``Sigma`` of one draw, from enumeration):
       ``X^2 = n (m - g)^T Sigma^+ (m - g) ~ chi2(rank Sigma)``, the pseudo-inverse taken
       on the range of ``Sigma``. Exact for Gaussian draws, asymptotic (central limit
       theorem) otherwise.
    2. otherwise, if ``n > k`` (``k`` the number of coordinates whose draws are not
       all identical; ``k = d`` unless some are deterministic): Hotelling's
       ``T^2 = n (m - g)^T S^+ (m - g)`` with the sample covariance ``S`` restricted to
       its numerical range of rank ``p``, and
       ``F = (n - p) / (p (n - 1)) T^2 ~ F(p, n - p)`` (Hotelling 1931).
    3. otherwise (``n <= k``): one-sample t-tests per coordinate
       (``scipy.stats.ttest_1samp``), Holm-adjusted; the p-value is the smallest
       adjusted p-value and the statistic ``max_j |t_j|``.

    Coordinates and directions without noise are handled as the module docstring
    describes: dropped when the mean equals the target there, p-value 0 otherwise.

    ``detectable_bias`` is the smallest ``||delta||`` rejected with probability
    ``power`` along the worst direction (the top eigenvector of the covariance of one
    draw): ``sqrt(lam * lambda_max / n)`` where ``lam`` solves
    ``P(ncx2(r, lam) > chi2_{1-alpha}(r)) = power`` (chi-square), or the same with the
    noncentral ``F(p, n - p, lam)`` and ``S`` (Hotelling), or
    ``(z_{1 - alpha/(2k)} + z_power) max_j se_j`` (normal approximation of the
    Bonferroni bound for Holm).

    Parameters
    ----------
    samples : array_like, shape (n, d)
        Independent draws of the estimator, one per row, ``n >= 2``.
    target : array_like, shape (d,)
        The exact gradient ``g``.
    cov : array_like, shape (d, d), optional
        Exact covariance of one draw (symmetric positive semi-definite).
    alpha : float
        Level of the test, in (0, 1).
    power : float
        Power at which ``detectable_bias`` is reported, in (0, 1).

    Returns
    -------
    UnbiasednessResult

    Raises
    ------
    ValueError
        Wrong shapes, NaN/inf values, ``n < 2``, ``alpha`` or ``power`` outside (0, 1),
        a ``cov`` that is not symmetric positive semi-definite.
    TypeError
        Non-numeric arrays or non-real ``alpha``/``power``.
    """
    draws = _as_draws(samples)
    d = draws.shape[1]
    target = _as_real_array(target, "target")
    if target.shape != (d,):
        raise ValueError(
            f"target must have shape (d,) = ({d},) to match samples of shape {draws.shape}, "
            f"got shape {target.shape}"
        )
    alpha = _check_open_unit(alpha, "alpha")
    power = _check_open_unit(power, "power")
    scale = max(float(np.max(np.abs(draws))), float(np.max(np.abs(target))))
    if cov is not None:
        cov = _check_cov(cov, d)
        scale = max(scale, math.sqrt(float(np.max(np.diag(cov)))))
    return UnbiasednessResult(**_mean_test(draws, target, cov, alpha, power, scale))


def _check_cov(cov: Any, d: int) -> np.ndarray:
    cov = _as_real_array(cov, "cov")
    if cov.shape != (d, d):
        raise ValueError(f"cov must have shape (d, d) = ({d}, {d}), got shape {cov.shape}")
    size = float(np.max(np.abs(cov))) if cov.size else 0.0
    if not np.allclose(cov, cov.T, rtol=0.0, atol=1e-10 * size):
        raise ValueError(
            "cov must be symmetric; pass (cov + cov.T) / 2 if the asymmetry is rounding"
        )
    if np.any(np.diag(cov) < 0):
        raise ValueError("cov must be positive semi-definite: its diagonal has negative entries")
    w = np.linalg.eigvalsh(cov)
    if w[0] < -1e-8 * max(w[-1], 0.0) - 1e-300:
        raise ValueError(
            f"cov must be positive semi-definite: its smallest eigenvalue is {w[0]:.3g} "
            f"(largest {w[-1]:.3g})"
        )
    return (cov + cov.T) / 2


def compare_estimators(
    a: Any,
    b: Any,
    net: Any,
    x: Any,
    t: Any,
    *,
    n_samples: int,
    seed: Any,
    alpha: float = 0.01,
    power: float = 0.8,
    options_a: dict[str, Any] | None = None,
    options_b: dict[str, Any] | None = None,
) -> ComparisonResult:
    """Test whether two estimators have the same mean on a batch (no enumeration needed).

    Draws ``n_samples`` batch estimates ``a_i`` and ``b_i`` of each estimator with
    ``gradstat.sampling.sample_gradients(net, x, t, estimator, n_samples, seed=...)``
    and tests ``E[a - b] = 0`` on the differences ``a_i - b_i`` exactly as
    :func:`unbiasedness_test` does without a known covariance (Hotelling's T^2 when
    ``n_samples`` exceeds the number of noisy coordinates, Holm-corrected t-tests
    otherwise). This is how a biased estimator is caught on networks too wide for
    exact enumeration: compare it with an unbiased one (``reinforce``, ``arm``, ...).

    The pairing is by example: both estimators see the same inputs ``x`` and targets
    ``t``, but their noise is independent (the seeds of ``a`` and ``b`` are two
    children of ``numpy.random.SeedSequence(seed)``), so ``Cov(a - b) = Cov(a) +
    Cov(b)``; the test needs no assumption about how the two estimators correlate.

    Parameters
    ----------
    a, b : str or estimator
        The two estimators, as ``sample_gradients`` accepts them.
    net, x, t
        Network, batch of inputs (``(B, n_in)``) and targets, passed through.
    n_samples : int
        Number of batch estimates of each estimator, ``>= 2``.
    seed : int or sequence of int
        Entropy for ``numpy.random.SeedSequence``; the result is reproducible with it.
    alpha, power : float
        Level of the test and power for ``detectable_bias``, in (0, 1).
    options_a, options_b : dict, optional
        Keyword options for each estimator (e.g. ``{"tau": 0.5}``).

    Returns
    -------
    ComparisonResult

    Raises
    ------
    ValueError, TypeError
        Bad ``n_samples``, ``alpha``, ``power``, options, or draws of the wrong shape or
        with NaN/inf.
    """
    from gradstat.sampling import sample_gradients

    n_samples = _check_int(n_samples, "n_samples", 2)
    alpha = _check_open_unit(alpha, "alpha")
    power = _check_open_unit(power, "power")
    for name, options in (("options_a", options_a), ("options_b", options_b)):
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"{name} must be a dict of keyword options or None")
    if seed is None:
        raise ValueError("seed must be given (an int) so that the comparison is reproducible")
    child_a, child_b = np.random.SeedSequence(seed).spawn(2)
    seed_a = int(child_a.generate_state(1, dtype=np.uint64)[0])
    seed_b = int(child_b.generate_state(1, dtype=np.uint64)[0])
    draws_a = _as_draws(
        sample_gradients(net, x, t, a, n_samples, seed=seed_a, **(options_a or {})),
        "draws of estimator a",
    )
    draws_b = _as_draws(
        sample_gradients(net, x, t, b, n_samples, seed=seed_b, **(options_b or {})),
        "draws of estimator b",
    )
    if draws_a.shape != draws_b.shape or draws_a.shape[0] != n_samples:
        raise ValueError(
            f"sample_gradients returned shapes {draws_a.shape} and {draws_b.shape}; "
            f"expected ({n_samples}, n_params) for both"
        )
    scale = max(float(np.max(np.abs(draws_a))), float(np.max(np.abs(draws_b))))
    difference = draws_a - draws_b
    fields = _mean_test(difference, np.zeros(difference.shape[1]), None, alpha, power, scale)
    return ComparisonResult(
        **fields,
        mean_difference=fields["bias"].copy(),
        estimators=(_estimator_name(a), _estimator_name(b)),
    )


def _estimator_name(estimator: Any) -> str:
    if isinstance(estimator, str):
        return estimator
    return str(getattr(estimator, "name", getattr(estimator, "__name__", repr(estimator))))


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
    array = _as_real_array(samples, "samples")
    if array.ndim not in (1, 2):
        raise ValueError(f"samples must have shape (n,) or (n, d), got shape {array.shape}")
    one_d = array.ndim == 1
    draws = _as_draws(array[:, None] if one_d else array)
    n = draws.shape[0]
    confidence_level = _check_open_unit(confidence_level, "confidence_level")
    if method not in ("auto", "chi2", "bootstrap"):
        raise ValueError(f"method must be 'auto', 'chi2' or 'bootstrap', got {method!r}")

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
                **{_BOOTSTRAP_RNG_KEYWORD: np.random.default_rng(seed)},
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
        Number of independent trials, ``>= 1``.
    confidence_level : float
        Coverage, in (0, 1).

    Returns
    -------
    ProportionInterval
    """
    successes = _check_int(successes, "successes", 0)
    n = _check_int(n, "n", 1)
    if successes > n:
        raise ValueError(f"successes must not exceed n, got successes={successes} > n={n}")
    confidence_level = _check_open_unit(confidence_level, "confidence_level")
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
    detectable_bias = _check_positive_real(detectable_bias, "detectable_bias")
    sigma = _check_positive_real(sigma, "sigma", allow_zero=True)
    alpha = _check_open_unit(alpha, "alpha")
    power = _check_open_unit(power, "power")
    n_params = _check_int(n_params, "n_params", 1)
    z = scipy.stats.norm.isf(alpha / (2 * n_params)) + scipy.stats.norm.ppf(power)
    needed = (max(z, 0.0) * sigma / detectable_bias) ** 2
    return max(2, math.ceil(needed))
