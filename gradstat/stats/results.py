"""Frozen result objects of the statistical tests, in the style of ``scipy.stats``.

Each has ``to_dict()`` (JSON-friendly fields) and ``confidence_interval(...)``, which
returns a :class:`ConfidenceInterval` that unpacks as ``low, high``.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.stats

from gradstat.stats._checks import check_open_unit

ZERO_VARIANCE_SUFFIX = " (p=0: mean differs from target along a zero-variance direction)"
"""Appended to ``method`` when a noiseless direction alone decides the test."""

METHOD_CHI2 = "chi2-known-cov"
METHOD_HOTELLING = "hotelling-t2"
METHOD_HOLM = "holm-t"


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


class _IntervalMixin(_ToDictMixin):
    low: Any
    high: Any

    def confidence_interval(self) -> ConfidenceInterval:
        """``(low, high)``, for symmetry with the other result objects."""
        return ConfidenceInterval(self.low, self.high)


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
        confidence_level = check_open_unit(confidence_level, "confidence_level")
        tail = (1.0 - confidence_level) / (2 * self.n_params)
        if self.method.startswith(METHOD_CHI2):
            q = scipy.stats.norm.isf(tail)
        else:
            q = scipy.stats.t.isf(tail, self.n - 1)
        half = q * self.bias_se
        return ConfidenceInterval(self.bias - half, self.bias + half)


@dataclass(frozen=True)
class ComparisonResult(UnbiasednessResult):
    """Result of :func:`gradstat.comparison.compare_estimators`: a test on ``a - b``.

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
class VarianceInterval(_IntervalMixin):
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


@dataclass(frozen=True)
class ProportionInterval(_IntervalMixin):
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
