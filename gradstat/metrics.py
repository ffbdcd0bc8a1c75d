"""The metrics of docs/model.md, section 3, computed from per-example moments.

Every metric is a function of per-example exact gradients ``g_x``, estimator means and
variances, sign-agreement probabilities and descent probabilities. The same function
serves exact moments (enumeration) and Monte Carlo estimates of them, so both paths
report identical definitions.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np

METRICS: tuple[str, ...] = (
    "bias_norm",
    "relative_bias",
    "total_variance",
    "mse",
    "cosine",
    "sign_agreement",
    "descent_probability",
    "median_snr",
)
"""Scalar metric names, as in docs/model.md, section 3 (``median_snr`` summarises ``snr``)."""


@dataclass(frozen=True)
class ScopeMetrics:
    """Scalar metrics of an estimator restricted to one group of parameters.

    Attributes
    ----------
    bias_norm : float
        ``||E[g_hat] - g||_2``.
    relative_bias : float
        ``bias_norm / ||g||_2`` (inf or nan when ``g = 0`` there).
    total_variance : float
        ``sum_j Var[g_hat_j]`` of the batch estimate.
    mse : float
        ``E||g_hat - g||^2 = bias_norm^2 + total_variance``.
    cosine : float
        ``cos(E[g_hat], g)`` (nan when either vector is zero).
    sign_agreement : float
        Mean over examples of the mean over coordinates with ``|g_x,j| > tol`` of
        ``P(sign g_hat_j = sign g_x,j)`` (nan when no coordinate qualifies).
    descent_probability : float
        Mean over examples of ``P(<g_hat_x, g_x> > 0)``.
    median_snr : float
        Median of ``|E g_hat_j| / sqrt(Var g_hat_j)`` over the coordinates whose variance
        exceeds the rounding level of their mean (:func:`median_snr`; inf when every
        coordinate is deterministic and some mean is non-zero, nan when all are zero).
    """

    bias_norm: float
    relative_bias: float
    total_variance: float
    mse: float
    cosine: float
    sign_agreement: float
    descent_probability: float
    median_snr: float

    def to_dict(self) -> dict[str, float]:
        """The metrics as a plain ``{name: float}`` dict."""
        return {k: float(v) for k, v in asdict(self).items()}


SNR_ROUNDING_FACTOR = 1e3
"""A coordinate whose standard deviation is at most ``SNR_ROUNDING_FACTOR * eps * |mean|``
is deterministic up to rounding (see :func:`snr`)."""


def rounding_level(mean: np.ndarray) -> np.ndarray:
    """The variance below which a coordinate of mean ``mean`` is deterministic up to rounding.

    ``(c eps |mean|)^2`` with ``c = SNR_ROUNDING_FACTOR = 1e3`` and ``eps`` the float64
    machine epsilon. A per-state estimate is the result of a forward and a backward pass,
    dot products over layers of up to a few hundred units, so it carries a relative
    rounding error of up to a few hundred ``eps``; its spread about the mean, and hence
    the variance an exact engine sums, is then rounding up to about ``(c eps |mean|)^2``.
    A real relative spread below ``1e3 eps = 2.2e-13`` cannot be told from rounding in
    float64 anyway.
    """
    return (SNR_ROUNDING_FACTOR * np.finfo(np.float64).eps * np.abs(mean)) ** 2


def snr(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Per-coordinate signal-to-noise ratio ``|mean| / sqrt(var)``.

    A coordinate whose variance does not exceed the rounding level of its mean,
    ``var <= (c eps |mean|)^2`` (:func:`rounding_level`, ``c = 1e3``), is deterministic up
    to rounding: its ratio is inf (nan when its mean is 0 too), never a huge finite number
    made of rounding error.
    """
    mean = np.asarray(mean, dtype=np.float64)
    var = np.where(var > rounding_level(mean), var, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(mean) / np.sqrt(var)


def median_snr(mean: np.ndarray, var: np.ndarray) -> float:
    """Median of :func:`snr` over the coordinates with noise.

    The median runs over the coordinates whose variance exceeds the rounding level of
    their mean (``var > (c eps |mean|)^2``, :func:`rounding_level`); coordinates that are
    deterministic up to rounding are left out. When every coordinate is deterministic the
    result is inf if some mean is non-zero, else nan.
    """
    mean = np.asarray(mean, dtype=np.float64)
    noisy = var > rounding_level(mean)
    if np.any(noisy):
        return float(np.median(np.abs(mean[noisy]) / np.sqrt(var[noisy])))
    return float("inf") if np.any(mean != 0) else float("nan")


SAFE_SQUARES = (1e-250, 1e250)
"""Sums of squares outside this range are recomputed from rescaled vectors (see
:func:`norm_and_cosine`): below it squares of float64 numbers underflow (subnormal below
``2.2e-308``), above it they overflow."""


def _rescaled(v: np.ndarray) -> tuple[np.ndarray, float]:
    """``(v / s, s)`` with ``s = max |v|`` (``s = 1`` for a zero or non-finite ``v``)."""
    s = float(np.max(np.abs(v))) if v.size else 0.0
    if s == 0.0 or not math.isfinite(s):
        return v, 1.0
    return v / s, s


def safe_norm(v: np.ndarray) -> float:
    """``||v||_2`` without underflow or overflow: ``sqrt(v.v)`` where the sum of squares
    lies within :data:`SAFE_SQUARES` (bit for bit as before), else ``s ||v / s||`` with
    ``s = max |v|``."""
    with np.errstate(over="ignore", under="ignore"):
        sq = float(v @ v)
    if SAFE_SQUARES[0] <= sq <= SAFE_SQUARES[1] or sq == 0.0 and not np.any(v):
        return math.sqrt(sq)
    u, s = _rescaled(v)
    return s * math.sqrt(float(u @ u))


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    """``cos(u, v) = u.v / (||u|| ||v||)`` at any scale (nan when either is zero).

    Where a sum of squares leaves :data:`SAFE_SQUARES` (vectors of norm below ``1e-125``
    or above ``1e125``, as the exact gradients of confident networks are), each vector is
    divided by its largest magnitude first, so that the dot product neither underflows
    to ``0 / 0`` nor overflows; elsewhere the plain formula, bit for bit.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        uu, vv = float(u @ u), float(v @ v)
    lo, hi = SAFE_SQUARES
    if not (lo <= uu <= hi and lo <= vv <= hi):
        u, v = _rescaled(u)[0], _rescaled(v)[0]
        uu, vv = float(u @ u), float(v @ v)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        return float(np.float64(u @ v) / (np.sqrt(uu) * np.sqrt(vv)))


def _nanmean(v: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(v)) if v.size else float("nan")


def _sign_agreement(gradient: np.ndarray, sign_probability: np.ndarray, tol: float) -> float:
    """The mean over examples of the mean of ``P(sign g_hat_j = sign g_x,j)`` over the
    coordinates with ``|g_x,j| > tol`` (nan when none qualifies)."""
    with np.errstate(invalid="ignore"):
        qualifying = np.abs(gradient) > tol
        counts = qualifying.sum(axis=1)
        per_example = np.where(
            counts > 0,
            np.where(qualifying, sign_probability, 0.0).sum(axis=1) / np.maximum(counts, 1),
            np.nan,
        )
    return _nanmean(per_example)


def scope_metrics(
    example_gradient: np.ndarray,
    example_mean: np.ndarray,
    example_var: np.ndarray,
    sign_probability: np.ndarray,
    descent_probability: np.ndarray,
    *,
    tol: float = 1e-12,
    n_samples: int | None = None,
    skip: frozenset[str] = frozenset(),
) -> ScopeMetrics:
    """Metrics of one parameter group from per-example arrays ``(B, d)`` (descent ``(B,)``).

    With ``n_samples`` (Monte Carlo, ``m`` and ``Var`` the sample mean and the unbiased
    sample variances of ``n`` draws), ``bias_norm^2`` is estimated without the upward bias
    ``tr(Var)/n`` of the plug-in estimate, by the unbiased ``Q = ||m - g||^2 - tr(Var)/n``
    (the mean of ``<d_i, d_k>`` over pairs of distinct draws, ``d = g_hat - g``);
    ``bias_norm = sqrt(max(Q, 0))`` and ``mse = Q + tr(Var)``, unbiased, so that
    ``mse - total_variance`` gives ``Q`` back even where ``bias_norm`` is clipped at 0.

    ``skip`` names metrics among ``sign_agreement``, ``descent_probability`` and
    ``median_snr`` left NaN, uncomputed: the jackknife replicates that need none of them.
    """
    B = example_gradient.shape[0]
    g = example_gradient.mean(axis=0)
    mean = example_mean.mean(axis=0)
    var = example_var.sum(axis=0) / B**2
    bias = mean - g
    bias_sq = float(bias @ bias)
    total_variance = float(var.sum())
    if n_samples is not None:
        bias_sq -= total_variance / n_samples
        bias_norm = float(np.sqrt(max(bias_sq, 0.0)))
    else:
        bias_norm = safe_norm(bias)
    g_norm = safe_norm(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative_bias = float(np.float64(bias_norm) / g_norm)
    cos = cosine(mean, g)
    nan = float("nan")
    agreement = (
        nan
        if "sign_agreement" in skip
        else _sign_agreement(example_gradient, sign_probability, tol)
    )
    return ScopeMetrics(
        bias_norm=bias_norm,
        relative_bias=relative_bias,
        total_variance=total_variance,
        mse=bias_sq + total_variance,
        cosine=cos,
        sign_agreement=agreement,
        descent_probability=nan
        if "descent_probability" in skip
        else float(np.mean(descent_probability)),
        median_snr=nan if "median_snr" in skip else median_snr(mean, var),
    )


BIAS_CALIBRATION_RATIO = 3.0
"""Monte Carlo ``bias_norm`` carries a standard error only when ``Q > 3 sd(Q)``."""

NONLINEARITY_RATIO = 0.25
"""A Monte Carlo ``cosine`` carries a standard error only when its
jackknife bias estimate is at most ``0.25`` of that standard error."""

DEGENERATE_SHARE = 0.1
"""Monte Carlo ``bias_norm`` carries a standard error only when the second-order part of
the variance of ``Q`` is at most ``0.1`` of its jackknife variance."""


class Jackknife(NamedTuple):
    """One set of draws for :func:`jackknife_metrics`."""

    full: ScopeMetrics
    """The metrics of all its draws (:func:`scope_metrics` with ``n_samples``)."""
    replicates: Sequence[ScopeMetrics]
    """The metrics with each of its groups of draws left out in turn."""
    degenerate: float
    """The second-order part of the variance of its ``Q`` (:func:`degenerate_variance`)."""


def jackknife_metrics(
    full: ScopeMetrics,
    replicates: Sequence[ScopeMetrics],
    halves: tuple[Jackknife, Jackknife],
) -> tuple[ScopeMetrics, ScopeMetrics, tuple[str, ...]]:
    """Monte Carlo metrics, their standard errors, and those that cannot be calibrated.

    ``full`` holds the metrics of all ``n`` draws (:func:`scope_metrics` with
    ``n_samples``), ``replicates`` those with each of ``G`` contiguous groups of draws left
    out in turn (delete-a-group jackknife, Quenouille 1956 and Tukey 1958; see Efron &
    Tibshirani 1993, *An Introduction to the Bootstrap*, ch. 11). With ``t`` a metric,
    ``t_(k)`` its replicates and ``t_(.)`` their mean, the standard error is
    ``se = sqrt((G - 1)/G sum_k (t_(k) - t_(.))^2)`` and the bias estimate
    ``b = (G - 1)(t_(.) - t)``. ``halves``, two independent halves of the draws (``analyze``
    passes the first and the second ``G/2`` groups), each with its own jackknife, decides
    and reports ``bias_norm``, ``relative_bias`` and ``cosine`` (below). Per metric:

    - ``total_variance``, ``mse``, ``sign_agreement``, ``descent_probability``: unbiased
      (``mse`` through the unbiased ``Q`` of :func:`scope_metrics`) or linear in the
      draws; ``t`` with its jackknife ``se`` over all draws (``halves`` changes nothing).
    - ``bias_norm = sqrt(max(Q, 0))`` and ``relative_bias = bias_norm / ||g||`` (``g``
      exact): ``se`` by the delta method, ``sqrt(v) / (2 bias_norm)``, from the variance
      of ``Q``. ``Q = 2 b.e + (||e||^2 - tr(Sigma)/n)`` (``b`` the bias, ``e`` the noise
      of the mean, ``Sigma`` the covariance of one draw) has variance
      ``4 b' Sigma b / n + 2 tr(Sigma^2) / n^2``; the jackknife estimates the first part
      but counts the second, ``degenerate`` (:func:`degenerate_variance`, one per half in
      :class:`Jackknife`), twice, so
      ``v = se_J(Q)^2 - degenerate``. The metric is flagged, with ``se`` NaN, unless the
      first part dominates and the square root is linear on the scale of the noise:
      ``degenerate <= 0.1 se_J(Q)^2`` and ``Q > 3 sqrt(v)`` (or ``v = 0``). An unbiased
      estimator (``bias_norm = 0``, estimates that are never negative) is always
      flagged: its bias is bounded by the value and the standard errors of the other
      metrics, not measured.
    - ``cosine``: a non-linear function of the mean (the noise of the estimated mean
      pulls the plug-in cosine towards 0 by ``O(1/n)``): the bias-corrected ``t - b``
      with ``se``, unless ``|b| > 0.25 se``, where the cosine is too curved on the scale
      of its noise for a standard error to mean anything (a cosine of almost exactly
      +-1, as for any unbiased estimator): then the plug-in ``t``, flagged, ``se`` NaN.
    - ``median_snr``: ``t``, always flagged with ``se`` NaN. The median over
      coordinates is the SNR of whichever coordinate is in the middle; as the SNRs of
      coordinates cross it jumps from one to another, is not a smooth function of the
      draws, and the jackknife does not estimate its error (Efron 1982, *The Jackknife,
      the Bootstrap and Other Resampling Plans*, section 3.4); measured, its jackknife
      "standard error" neither covers nor is conservative. Where the middle SNR is well
      apart from its neighbours the median is locally one coordinate's SNR, smooth, but
      whether it is cannot be told from the draws either (the same selection as the
      flags below); a bootstrap over the groups has not been shown to cover. NaN is
      reported rather than an error bar of unknown coverage; ``result.snr`` gives the
      per-coordinate ratios.

    Every standard error is at least the rounding level ``1e3 eps |t|`` of its value.

    **Deciding on one half, reporting from the other.** A flag decided from the same
    draws as the value selects: where the truth sits near the rule's threshold (``Q``
    about 3 standard errors, a cosine whose curvature bias is about a quarter of its
    error) a seed is reported only when its noise pushed it across, and the values
    reported lean away from the truth (measured on the ``(4, 3, 3, 2)`` calibration
    network, ``st_sigmoid``'s ``bias_norm`` over all parameters: reported in 15 of 100
    seeds, mean ``z = +1.2``). With ``halves = (A, B)`` the two rules above (the
    degenerate share and ``Q > 3 sqrt(v)``; ``|b| <= 0.25 se``) read the first half
    ``A`` only, and a metric they pass is reported from the second half ``B``: for
    ``bias_norm`` and ``relative_bias`` ``B``'s values, ``se = c sqrt(v_B) / (2
    bias_norm_B)``; for ``cosine`` ``B``'s bias-corrected ``t_B - b_B``, ``se = c
    se_B``. ``B``'s draws are independent of ``A``'s, so whether a value is reported
    says nothing about its error: the reported values are calibrated metric by metric
    and network by network, not only pooled. The price: half the draws, a standard
    error about ``sqrt(2)`` wider, and a reported ``bias_norm`` that is not
    ``sqrt(mse - total_variance)`` of all draws (``mse`` and ``total_variance`` stay
    those of all draws). ``c`` (:func:`half_widening`, 1.075 for 10 groups of 20)
    makes ``value +- 2 se`` cover as often as the jackknife over all ``G`` groups does:
    the jackknife over ``G_B`` groups has ``G_B - 1`` degrees of freedom and heavier
    tails. Where ``B`` gives no standard error (``Q_B <= 0`` or ``v_B < 0``, which
    happens only when ``B``'s noise is about 3 of its standard errors from a truth that
    passed in ``A``) the metric is flagged too: rare, the only selection left. A flagged
    metric reports the plug-in value of all draws. Halves of fewer than 2 groups flag
    both. No rule that reads the draws it reports on avoids the selection, and a rule
    that reads none cannot tell a bias from noise.

    Returns
    -------
    estimate, standard_error : ScopeMetrics
    uncalibrated : tuple of str
        The metrics whose value is finite but whose standard error is NaN because no
        calibrated one exists at this ``n_samples``.
    """
    names = [f.name for f in fields(ScopeMetrics)]
    theta, se_all, _ = _jackknife(full, replicates)
    estimate = dict(zip(names, theta[:-1].tolist()))
    se = dict(zip(names, se_all[:-1].tolist()))
    # A median over coordinates jumps between coordinates as their SNRs cross: not a
    # smooth function of the draws, so no jackknife standard error covers it.
    se["median_snr"] = float("nan")
    _from_halves(estimate, se, halves, len(replicates))
    flagged = tuple(m for m in names if np.isnan(se[m]) and np.isfinite(estimate[m]))
    return _one_nan(estimate), _one_nan(se), flagged


def _jackknife(
    full: ScopeMetrics, replicates: Sequence[ScopeMetrics]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The metrics ``t`` then ``Q``, their jackknife standard errors (at least the rounding
    level of ``t``) and bias estimates."""
    G = len(replicates)
    names = [f.name for f in fields(ScopeMetrics)]
    theta = np.array([getattr(full, m) for m in names])
    values = np.array([[getattr(r, m) for m in names] for r in replicates])
    # Q = mse - total_variance, the unbiased estimate of bias_norm^2 (see scope_metrics).
    mse, tv = names.index("mse"), names.index("total_variance")
    theta = np.append(theta, full.mse - full.total_variance)
    values = np.column_stack([values, values[:, mse] - values[:, tv]])
    with np.errstate(invalid="ignore"):
        centred = values - values.mean(axis=0)
        se_all = np.sqrt((G - 1) / G * (centred**2).sum(axis=0))
        bias_all = (G - 1) * (values.mean(axis=0) - theta)
    # Rounding: no standard error below the rounding level of the value it describes.
    floor = SNR_ROUNDING_FACTOR * np.finfo(np.float64).eps * np.abs(theta)
    with np.errstate(invalid="ignore"):
        se_all = np.where(np.isfinite(se_all), np.maximum(se_all, floor), se_all)
    return theta, se_all, bias_all


def _q_variance(se_all: np.ndarray, degenerate: float) -> tuple[float, float]:
    """``(se_J(Q)^2, v)``: the jackknife variance of ``Q`` and its first-order part."""
    # The jackknife counts the second-order part of Q twice (see jackknife_metrics).
    with np.errstate(over="ignore", invalid="ignore"):
        # np.float64: estimates too large to square give inf here, refused by analyze.
        jack_q = float(np.float64(se_all[-1]) ** 2)
        return jack_q, jack_q - degenerate


def _bias_calibrated(theta: np.ndarray, se_all: np.ndarray, degenerate: float) -> bool:
    """Whether ``bias_norm``'s rule passes: the degenerate share at most
    :data:`DEGENERATE_SHARE` of ``se_J(Q)^2``, and ``v = 0`` or ``Q > 3 sqrt(v)``."""
    jack_q, var_q = _q_variance(se_all, degenerate)
    # Written so that a NaN anywhere fails the rule (and var_q >= 0 after the first test).
    if not DEGENERATE_SHARE * jack_q >= degenerate:
        return False
    return var_q == 0.0 or float(theta[-1]) > BIAS_CALIBRATION_RATIO * math.sqrt(var_q)


def _delta_error(
    full: ScopeMetrics, theta: np.ndarray, se_all: np.ndarray, degenerate: float
) -> float:
    """The delta-method ``sqrt(v) / (2 bias_norm)`` (0 where ``v = 0``; NaN where it does
    not exist: ``v < 0``, or ``bias_norm = 0`` with ``v > 0``)."""
    var_q = _q_variance(se_all, degenerate)[1]
    if var_q == 0.0:
        return 0.0
    if not (var_q > 0 and full.bias_norm > 0):
        return float("nan")
    return math.sqrt(var_q) / (2 * full.bias_norm)


def _set_bias(
    estimate: dict[str, float], se: dict[str, float], source: ScopeMetrics, bias_se: float
) -> None:
    """``bias_norm``'s standard error, and ``relative_bias``'s, ``bias_norm / ||g||`` with
    ``g`` exact: the same relative error (both values from ``source`` where reported)."""
    if not np.isnan(bias_se):
        estimate["bias_norm"] = source.bias_norm
        estimate["relative_bias"] = source.relative_bias
    se["bias_norm"] = bias_se
    ratio = source.relative_bias / source.bias_norm if source.bias_norm > 0 else 0.0
    se["relative_bias"] = bias_se * ratio if np.isfinite(source.relative_bias) else np.nan


def _cosine_kept(bias: float, error: float) -> bool:
    """Whether the cosine's jackknife bias is at most ``0.25`` of its standard error (a NaN
    standard error fails)."""
    return bool(abs(bias) <= NONLINEARITY_RATIO * error and not np.isnan(error))


def _from_halves(
    estimate: dict[str, float],
    se: dict[str, float],
    halves: tuple[Jackknife, Jackknife],
    n_groups: int,
) -> None:
    """``bias_norm``, ``relative_bias`` and ``cosine`` decided on ``halves[0]`` and reported
    from ``halves[1]`` (see :func:`jackknife_metrics`)."""
    decide, report = halves
    k = [f.name for f in fields(ScopeMetrics)].index("cosine")
    if min(len(decide.replicates), len(report.replicates)) < 2:
        _set_bias(estimate, se, report.full, float("nan"))
        se["cosine"] = float("nan")
        return
    theta_a, se_a, bias_a = _jackknife(decide.full, decide.replicates)
    theta_b, se_b, bias_b = _jackknife(report.full, report.replicates)
    widen = half_widening(len(report.replicates), n_groups)
    bias_se = float("nan")
    if _bias_calibrated(theta_a, se_a, decide.degenerate):
        bias_se = widen * _delta_error(report.full, theta_b, se_b, report.degenerate)
    _set_bias(estimate, se, report.full, bias_se)
    if _cosine_kept(bias_a[k], se_a[k]) and not np.isnan(se_b[k]):
        estimate["cosine"] = float(theta_b[k] - bias_b[k])
        se["cosine"] = widen * float(se_b[k])
    else:
        se["cosine"] = float("nan")


@functools.lru_cache(maxsize=32)
def half_widening(groups: int, all_groups: int) -> float:
    """``c = t_{groups-1}^{-1}(1 - q/2) / 2`` with ``q = P(|t_{all_groups-1}| > 2)``.

    A jackknife over ``groups`` groups gives ``z = error / se`` about Student's t with
    ``groups - 1`` degrees of freedom. Multiplied by ``c`` its standard error makes
    ``P(|z| > 2)`` that of the jackknife over ``all_groups`` groups (1.075 for 10 of 20:
    then ``sd(z) = 1.134 / 1.075 = 1.055``, as ``t_19``'s 1.057).
    """
    # scipy.special only here: the metrics are imported with gradstat, this runs later.
    from scipy.special import stdtr, stdtrit

    q = 2 * stdtr(all_groups - 1, -2.0)
    return float(stdtrit(groups - 1, 1 - q / 2) / 2)


def _one_nan(values: dict[str, float]) -> ScopeMetrics:
    """``ScopeMetrics`` with every NaN the one object ``math.nan``, so that results (and
    their ``to_dict()``) of two identical runs compare equal: containers compare items by
    identity first, and NaN is never equal to another NaN object."""
    return ScopeMetrics(**{k: math.nan if math.isnan(v) else float(v) for k, v in values.items()})


def degenerate_variance(group_bias: np.ndarray) -> float:
    """The second-order part ``2 tr(Sigma^2) / n^2`` of the variance of ``Q``.

    ``group_bias`` ``(G, d)`` holds the mean of ``g_hat - g`` in each of ``G`` groups of
    about ``n / G`` draws: ``G`` nearly normal vectors (central limit theorem) with
    covariance ``S = (G/n) Sigma``, ``Sigma`` the covariance of one draw. With ``S_hat``
    their sample covariance, ``(G-1)^2 / ((G-2)(G+1)) (tr(S_hat^2) - tr(S_hat)^2/(G-1))``
    is unbiased for ``tr(S^2)`` under normality (Bai & Saranadasa 1996, Statistica Sinica
    6, 311-329), and needs no cross-covariance of coordinates beyond the groups'. NaN with
    fewer than 4 groups.
    """
    G = group_bias.shape[0]
    if G < 4:
        return float("nan")
    with np.errstate(over="ignore", invalid="ignore"):
        Z = group_bias - group_bias.mean(axis=0)
        gram = Z @ Z.T / (G - 1)
        tr_s2 = np.sum(gram**2)
        tr_s = np.trace(gram)
        s2 = float((G - 1) ** 2 / ((G - 2) * (G + 1)) * (tr_s2 - tr_s**2 / (G - 1)))
    # tr(Sigma^2) = (n/G)^2 tr(S^2), and the second-order variance is 2 tr(Sigma^2) / n^2.
    return max(2.0 * s2 / G**2, 0.0)
