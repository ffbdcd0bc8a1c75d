"""The metrics of docs/model.md, section 3, computed from per-example moments.

Every metric is a function of per-example exact gradients ``g_x``, estimator means and
variances, sign-agreement probabilities and descent probabilities. The same function
serves exact moments (enumeration) and Monte Carlo estimates of them, so both paths
report identical definitions.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

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
        Median over coordinates of ``|E g_hat_j| / sqrt(Var g_hat_j)`` (inf for a
        deterministic non-zero coordinate; coordinates with zero mean and variance skipped).
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


def snr(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Per-coordinate ``|mean| / sqrt(var)``: inf where ``var = 0 < |mean|``, nan if both 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(mean) / np.sqrt(var)


def _nanmean(v: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(v)) if v.size else float("nan")


def scope_metrics(
    example_gradient: np.ndarray,
    example_mean: np.ndarray,
    example_var: np.ndarray,
    sign_probability: np.ndarray,
    descent_probability: np.ndarray,
    *,
    tol: float = 1e-12,
    n_samples: int | None = None,
) -> ScopeMetrics:
    """Metrics of one parameter group from per-example arrays ``(B, d)`` (descent ``(B,)``).

    With ``n_samples`` (Monte Carlo), ``bias_norm^2`` is estimated without the upward bias
    of the plug-in estimate: ``||m - g||^2 - tr(Var)/n``, clipped at 0.
    """
    B = example_gradient.shape[0]
    g = example_gradient.mean(axis=0)
    mean = example_mean.mean(axis=0)
    var = example_var.sum(axis=0) / B**2
    bias = mean - g
    bias_sq = float(bias @ bias)
    total_variance = float(var.sum())
    if n_samples is not None:
        bias_sq = max(0.0, bias_sq - total_variance / n_samples)
    bias_norm = float(np.sqrt(bias_sq))
    g_norm = float(np.linalg.norm(g))
    m_norm = float(np.linalg.norm(mean))
    with np.errstate(divide="ignore", invalid="ignore"):
        relative_bias = float(np.float64(bias_norm) / g_norm)
        cosine = float(np.float64(mean @ g) / (m_norm * g_norm))
    with np.errstate(invalid="ignore"):
        qualifying = np.abs(example_gradient) > tol
        counts = qualifying.sum(axis=1)
        per_example = np.where(
            counts > 0,
            np.where(qualifying, sign_probability, 0.0).sum(axis=1) / np.maximum(counts, 1),
            np.nan,
        )
    ratios = snr(mean, var)
    ratios = ratios[~np.isnan(ratios)]
    return ScopeMetrics(
        bias_norm=bias_norm,
        relative_bias=relative_bias,
        total_variance=total_variance,
        mse=bias_sq + total_variance,
        cosine=cosine,
        sign_agreement=_nanmean(per_example),
        descent_probability=float(np.mean(descent_probability)),
        median_snr=float(np.median(ratios)) if ratios.size else float("nan"),
    )
