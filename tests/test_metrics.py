"""The metrics layer: the SNR's rounding rule and the pieces of Monte Carlo error bars."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradstat as gs
from gradstat.metrics import (
    Jackknife,
    ScopeMetrics,
    cosine,
    degenerate_variance,
    half_widening,
    jackknife_metrics,
    median_snr,
    rounding_level,
    safe_norm,
    snr,
)

EPS = np.finfo(np.float64).eps


def test_snr_treats_rounding_level_variance_as_deterministic():
    mean = np.array([1.0, 1.0, 2.0, 0.0, -3.0])
    # (1e3 eps |mean|)^2 is the rounding level: at it, inf; above it, a finite ratio.
    var = np.array([(1e3 * EPS) ** 2, (2e3 * EPS) ** 2, 4.0, 0.0, 1e-40])
    ratios = snr(mean, var)
    assert ratios[0] == math.inf
    assert ratios[1] == 1.0 / (2e3 * EPS)
    assert ratios[2] == 1.0 and np.isnan(ratios[3]) and ratios[4] == math.inf
    assert np.array_equal(rounding_level(mean), (1e3 * EPS * np.abs(mean)) ** 2)
    # The median runs over the noisy coordinates only: 1/(2e3 eps) and 1.
    assert median_snr(mean, var) == (1.0 / (2e3 * EPS) + 1.0) / 2
    assert median_snr(np.array([1.0, 0.0]), np.zeros(2)) == math.inf
    assert math.isnan(median_snr(np.zeros(2), np.zeros(2)))


def test_default_report_linear_networks_show_no_rounding_snr():
    """The report's 4-6-1 linear networks: st_sigmoid's and LEG's stochastic gradients
    are deterministic, so their SNR is inf, not 1e23 made of rounding."""
    for seed in (0, 1):
        net = gs.BinaryNetwork.random((4, 6, 1), loss="linear", seed=seed)
        for name in ("st_sigmoid", "leg"):
            r = gs.analyze(net, np.ones(4), np.ones(1), name)
            finite = r.snr[np.isfinite(r.snr)]
            assert finite.size and np.all(finite < 1e3), (seed, name, finite)
            assert r.median_snr < 1e3 and r.stochastic.median_snr == math.inf


def test_degenerate_variance_is_unbiased_for_normal_group_means():
    """E[estimate] = 2 tr(Sigma^2) / n^2 for G normal group means of covariance
    (G/n) Sigma; 4000 seeded replications, relative standard error about 1%."""
    rng = np.random.default_rng(5)
    G, n, d = 20, 10_000, 4
    A = rng.normal(size=(d, d))
    sigma = A @ A.T
    want = 2 * np.trace(sigma @ sigma) / n**2
    chol = np.linalg.cholesky(sigma * G / n)
    got = [degenerate_variance(rng.normal(size=(G, d)) @ chol.T + 0.3) for _ in range(4000)]
    assert abs(np.mean(got) / want - 1) < 0.05
    assert math.isnan(degenerate_variance(np.zeros((3, d))))


def _metrics(**values: float) -> ScopeMetrics:
    base = dict.fromkeys(ScopeMetrics.__dataclass_fields__, 1.0)
    return ScopeMetrics(**{**base, **values})


def _same_halves(full: ScopeMetrics, reps: list[ScopeMetrics]) -> tuple[Jackknife, Jackknife]:
    """Both halves the given draws, so the halves widen nothing (``half_widening(20, 20)``
    is 1): the rules read as on one set of draws."""
    assert half_widening(len(reps), len(reps)) == pytest.approx(1.0, rel=1e-14)
    return (Jackknife(full, reps, 0.0),) * 2


def test_jackknife_flags_a_bias_indistinguishable_from_zero():
    """Q = mse - total_variance near 0 (an unbiased estimator): bias_norm and
    relative_bias get NaN standard errors and are named; median_snr always is."""
    rng = np.random.default_rng(0)
    full = _metrics(bias_norm=0.0, relative_bias=0.0, mse=1.0, total_variance=1.0)
    reps = [_metrics(bias_norm=0.0, relative_bias=0.0, mse=1.0 + e, total_variance=1.0)
            for e in rng.normal(scale=1e-3, size=20)]  # fmt: skip
    _, se, flagged = jackknife_metrics(full, reps, _same_halves(full, reps))
    assert {"bias_norm", "relative_bias", "median_snr"} <= set(flagged)
    assert math.isnan(se.bias_norm) and math.isnan(se.median_snr)
    # A bias far above its noise: delta-method standard error sd(Q) / (2 bias_norm).
    full = _metrics(bias_norm=1.0, relative_bias=0.5, mse=2.0, total_variance=1.0)
    reps = [_metrics(bias_norm=1.0, relative_bias=0.5, mse=2.0 + e, total_variance=1.0)
            for e in rng.normal(scale=1e-3, size=20)]  # fmt: skip
    _, se, flagged = jackknife_metrics(full, reps, _same_halves(full, reps))
    q = np.array([r.mse - r.total_variance for r in reps])
    sd_q = math.sqrt(19 / 20 * np.sum((q - q.mean()) ** 2))
    assert "bias_norm" not in flagged
    assert se.bias_norm == pytest.approx(sd_q / 2, rel=1e-14)
    assert se.relative_bias == pytest.approx(sd_q / 4, rel=1e-14)


def test_cosine_and_norm_at_every_scale():
    """Scaled by any power of ten float64 holds, the cosine stays that of the unscaled
    vectors and the norm scales with them; in the ordinary range both are the plain
    formulas bit for bit."""
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=7), rng.normal(size=7)
    plain = float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
    assert cosine(u, v) == plain
    assert safe_norm(u) == float(np.linalg.norm(u))
    for k in range(-300, 301, 25):
        for j in (-300, 0, 300):
            assert cosine(u * 10.0**k, v * 10.0**j) == pytest.approx(plain, rel=1e-14), (k, j)
        assert safe_norm(u * 10.0**k) == pytest.approx(np.linalg.norm(u) * 10.0**k, rel=1e-14)
    assert math.isnan(cosine(np.zeros(3), u[:3]))
    assert safe_norm(np.zeros(3)) == 0.0
    tiny = np.array([5e-324, 0.0])  # the smallest subnormal
    assert safe_norm(tiny) == 5e-324 and cosine(tiny, np.array([1.0, 0.0])) == 1.0
