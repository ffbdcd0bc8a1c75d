"""Is the mean of the draws the target? Chi-square, Hotelling's T^2 or Holm's t-tests.

:func:`unbiasedness_test` compares ``n`` independent draws ``g_hat_1, ..., g_hat_n`` (each
a vector the size of ``theta``) with the exact gradient ``g`` by the strongest valid test:
a chi-square test when the exact covariance of one draw is known from enumeration,
Hotelling's T^2 when ``n > n_params``, and otherwise per-coordinate t-tests with Holm's
correction (:func:`holm_adjust`). Its result says how large a bias the test could have
detected (``detectable_bias``). :func:`mean_test` is the machinery it shares with
:func:`gradstat.comparison.compare_estimators`, which runs it on paired differences of
two estimators.

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
variance never produces a false alarm. On the other directions the statistic is that of
the target closest to the mean within ``1e-12`` of each coordinate's own magnitude (the
largest absolute value among its draws and its target): where the draws vary along a
direction by little more than rounding (a coordinate that is a function of another up to
terms a hundred billion times smaller), rounding of the target alone would otherwise be
many standard errors. This only lowers the statistic, so the false-alarm rate stays at
most ``alpha``; where that rounding is under a millionth of a standard error on every
direction, the plain statistic is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats

from gradstat._validation import check_array
from gradstat.stats._checks import check_draws, check_open_unit
from gradstat.stats.power import noncentrality_for_power
from gradstat.stats.results import (
    METHOD_CHI2,
    METHOD_HOLM,
    METHOD_HOTELLING,
    ZERO_VARIANCE_SUFFIX,
    UnbiasednessResult,
)

__all__ = ["holm_adjust", "mean_test", "unbiasedness_test"]

# A standard deviation or mean difference below _ROUNDING_RTOL * scale is rounding.
_ROUNDING_RTOL = 1e-12
# Eigenvalues below _RANK_RTOL_FACTOR * k * eps * (largest eigenvalue) of a k x k
# correlation matrix are numerically zero (numpy.linalg.matrix_rank uses factor 1).
_RANK_RTOL_FACTOR = 1000.0
# Standard errors of the largest hidden variance allowed along a numerically-null direction.
_HIDDEN_VARIANCE_Z = 8.0
# Rounding below this fraction of a direction's standard error leaves the form as it is.
_ROUNDING_SE_FRACTION = 1e-6


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
    p = check_array(pvalues, "pvalues", finite=False)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("pvalues must be a 1-D array of numbers in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


@dataclass(frozen=True)
class _Quadratic:
    """``n z^T R^+ z`` restricted to the numerical range of a correlation matrix ``R``."""

    value: float
    rank: int
    n_null: int
    null_violation: bool


def _restricted_quadratic(
    corr: np.ndarray, z: np.ndarray, n: int, rounding: np.ndarray, own: np.ndarray
) -> _Quadratic:
    """Quadratic form of standardized mean deviations ``z`` on the range of ``corr``.

    ``corr`` is a correlation matrix (unit diagonal) and ``z_j = (m_j - g_j) / sd_j``.
    Working with correlations makes the rank decision invariant to coordinate scales.
    Eigenvalues ``w <= tol = _RANK_RTOL_FACTOR * k * eps * w_max`` span the null
    directions ``v``; there the draws are constant, so ``|v^T z|`` may only exceed
    ``r_v + 8 sqrt(tol / n)`` (the rounding allowance ``r_v = sum_j |v_j| rounding_j``,
    plus eight standard errors of any variance hidden below ``tol``) if the mean really
    differs from the target. On the other directions the quadratic form is that of the
    target closest to the draws within ``own_j`` of it (:func:`_within_rounding`; ``own``
    the rounding of each coordinate at its own magnitude, standardized), where
    ``sum_j |v_j| own_j`` exceeds a millionth of the standard error ``sqrt(w / n)`` on
    some direction; elsewhere the two differ by under ``2e-6 sum_v |t_v|`` (``t_v`` the
    direction's z-score), and the plain form is kept.
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
    # Rounding under a millionth of a standard error on every direction moves each
    # direction's z-score by under 1e-6: the plain form is kept, exactly as written.
    allowance = np.abs(vectors[:, kept]).T @ own
    if value > 0 and np.any(allowance > _ROUNDING_SE_FRACTION * np.sqrt(w[kept] / n)):
        value = min(value, _within_rounding(z, own, vectors[:, kept], w[kept], n))
    return _Quadratic(value, int(kept.sum()), int(null.sum()), violation)


def _within_rounding(
    z: np.ndarray, rounding: np.ndarray, vectors: np.ndarray, w: np.ndarray, n: int
) -> float:
    """``min n ||W^{-1/2} V^T (z + d)||^2`` over ``|d_j| <= rounding_j``: the quadratic
    form of the target closest to the draws within rounding of the given one (why: the
    module docstring). A bounded least-squares problem (``scipy.optimize.lsq_linear``,
    bounded-variable least squares), solved exactly.
    """
    from scipy.optimize import lsq_linear

    A = vectors.T / np.sqrt(w)[:, None]
    fit = lsq_linear(A, -(A @ z), bounds=(-rounding, rounding), method="bvls")
    residual = A @ (z + fit.x)
    return float(n * (residual @ residual))


def mean_test(
    draws: np.ndarray,
    target: np.ndarray,
    cov: np.ndarray | None,
    alpha: float,
    power: float,
    scale: float,
) -> dict[str, Any]:
    """The fields of an :class:`~gradstat.stats.results.UnbiasednessResult` of ``draws``.

    The machinery shared by :func:`unbiasedness_test` and
    :func:`gradstat.comparison.compare_estimators`: ``draws`` and ``target`` are validated
    already, ``scale`` is the magnitude below whose ``1e-12`` a difference is rounding.

    The draws, the target and ``cov`` are first multiplied by the power of two ``2^-e``
    that brings ``scale`` into [0.5, 1) (exact in float64, short of subnormal numbers),
    and the bias, its standard errors and ``detectable_bias`` multiplied back: the test is
    the same for draws of any magnitude float64 can hold, and no sum of squares overflows
    or underflows.
    """
    e = math.frexp(scale)[1] if scale > 0 and math.isfinite(scale) else 0
    if e != 0:
        fields = mean_test(
            np.ldexp(draws, -e),
            np.ldexp(target, -e),
            None if cov is None else np.ldexp(cov, -2 * e),
            alpha,
            power,
            math.ldexp(scale, -e),
        )
        fields["bias"] = np.ldexp(fields["bias"], e)
        fields["bias_se"] = np.ldexp(fields["bias_se"], e)
        fields["detectable_bias"] = math.ldexp(fields["detectable_bias"], e)
        return fields
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
    # Each coordinate's own rounding, at the magnitude of its draws and target.
    magnitude = np.maximum(np.max(np.abs(draws[:, noisy]), axis=0), np.abs(target[noisy]))
    own = _ROUNDING_RTOL * magnitude / sd_k

    if cov is not None:
        method = METHOD_CHI2
        sub = cov[np.ix_(noisy, noisy)]
        quad = _restricted_quadratic(sub / np.outer(sd_k, sd_k), z, n, rounding, own)
        statistic, df = quad.value, float(quad.rank)
        pvalue = float(scipy.stats.chi2.sf(statistic, quad.rank)) if quad.rank else 1.0
        violation = violation or quad.null_violation
        n_zero += quad.n_null
        if quad.rank:
            crit = scipy.stats.chi2.isf(alpha, quad.rank)
            lam = noncentrality_for_power(
                lambda nc: scipy.stats.ncx2.sf(crit, quad.rank, nc), alpha, power
            )
            largest = float(np.linalg.eigvalsh(sub)[-1])
            detectable = math.sqrt(lam * largest / n)
        else:
            detectable = 0.0
    elif n > k:
        method = METHOD_HOTELLING
        sub = np.cov(draws[:, noisy], rowvar=False, ddof=1).reshape(k, k) if k else np.zeros((0, 0))
        quad = _restricted_quadratic(sub / np.outer(sd_k, sd_k), z, n, rounding, own)
        p = quad.rank
        statistic, df = quad.value, (float(p), float(n - p))
        if p:
            f_stat = (n - p) / (p * (n - 1)) * statistic
            pvalue = float(scipy.stats.f.sf(f_stat, p, n - p))
            crit = scipy.stats.f.isf(alpha, p, n - p)
            lam = noncentrality_for_power(
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
    null hypothesis is ``E[g_hat] = g``. The test is chosen as docs/model.md, section 4 asks:

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
    draws = check_draws(samples, magnitude=None)
    d = draws.shape[1]
    # np.atleast_1d: a scalar target is the target of a one-coordinate test.
    target = np.atleast_1d(check_array(target, "target"))
    if target.shape != (d,):
        raise ValueError(
            f"target must have shape (d,) = ({d},) to match samples of shape {draws.shape}, "
            f"got shape {target.shape}"
        )
    alpha = check_open_unit(alpha, "alpha")
    power = check_open_unit(power, "power")
    scale = max(float(np.max(np.abs(draws))), float(np.max(np.abs(target))))
    if cov is not None:
        cov = _check_cov(cov, d)
        scale = max(scale, math.sqrt(float(np.max(np.diag(cov)))))
    return UnbiasednessResult(**mean_test(draws, target, cov, alpha, power, scale))


def _check_cov(cov: Any, d: int) -> np.ndarray:
    cov = check_array(cov, "cov")
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
