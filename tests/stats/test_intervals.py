"""Tests of gradstat.stats.intervals: variance and Wilson intervals.

Seeds and false-alarm rates as the module docstring of ``stats_helpers`` says.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from stats_helpers import N_SEEDS, _band, _gaussian_draws, _good

from gradstat.stats import variance_interval, wilson_interval


def test_variance_interval_chi2_formula():
    x = _gaussian_draws(26, 50, np.diag([1.0, 9.0]))
    res = variance_interval(x, method="chi2", confidence_level=0.9)
    s2 = x.var(axis=0, ddof=1)
    np.testing.assert_allclose(res.variance, s2, rtol=1e-12)
    np.testing.assert_allclose(res.low, 49 * s2 / scipy.stats.chi2.ppf(0.95, 49), rtol=1e-12)
    np.testing.assert_allclose(res.high, 49 * s2 / scipy.stats.chi2.ppf(0.05, 49), rtol=1e-12)
    one = variance_interval(x[:, 1], method="chi2", confidence_level=0.9)
    assert isinstance(one.low, float) and one.low == pytest.approx(res.low[1], rel=1e-12)


def test_variance_interval_auto_rule_and_bootstrap_reproducibility():
    rng = np.random.default_rng(27)
    normal = rng.normal(size=(200, 2))
    heavy = rng.exponential(size=(200, 2))  # excess kurtosis 6
    # Deterministic on this seed; over seeds, a normal sample of 200 has
    # |excess kurtosis| > 1 with probability ~1e-4 (sd of the estimate ~0.34).
    assert variance_interval(normal).method == "chi2"
    auto = variance_interval(heavy, seed=3)
    assert auto.method == "bootstrap-bca"
    assert np.all(np.abs(auto.excess_kurtosis) > 1)
    again = variance_interval(heavy, method="bootstrap", seed=3)
    np.testing.assert_array_equal(auto.low, again.low)
    np.testing.assert_array_equal(auto.high, again.high)
    assert np.all(auto.low < auto.variance) and np.all(auto.variance < auto.high)
    assert variance_interval(heavy[:10]).method == "chi2"  # too few draws to bootstrap


def test_variance_interval_constant_coordinate():
    x = np.column_stack([np.random.default_rng(28).normal(size=30), np.full(30, 0.7)])
    for method in ("chi2", "bootstrap"):
        res = variance_interval(x, method=method, seed=0)
        assert res.variance[1] == 0.0 and res.low[1] == 0.0 and res.high[1] == 0.0
        assert res.low[0] > 0.0


def test_wilson_interval_hand_value():
    # k = 7, n = 20, z = 1.959964: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
    res = wilson_interval(7, 20)
    assert res.estimate == 0.35
    assert res.low == pytest.approx(0.1811918241, abs=1e-9)
    assert res.high == pytest.approx(0.5671457233, abs=1e-9)
    edge = wilson_interval(0, 50, confidence_level=0.99)
    assert edge.low == 0.0 and 0.0 < edge.high < 0.15


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: variance_interval(np.zeros((2, 2, 2))), ValueError, "samples"),
        (lambda: variance_interval(np.zeros(1)), ValueError, "samples"),
        (lambda: variance_interval(_good(), method="jackknife"), ValueError, "method"),
        (lambda: variance_interval(_good(), confidence_level=95), ValueError, "confidence"),
        (lambda: variance_interval(_good()[:2], method="bootstrap"), ValueError, "3 draws"),
        (lambda: wilson_interval(11, 10), ValueError, "successes"),
        (lambda: wilson_interval(-1, 10), ValueError, "successes"),
        (lambda: wilson_interval(3.0, 10), TypeError, "successes"),
        (lambda: wilson_interval(3, 0), ValueError, "n"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


# --------------------------------------------------------- calibration (slow)


@pytest.mark.slow
def test_calibration_chi2_variance_interval_coverage():
    covered = 0
    for seed in range(N_SEEDS):
        x = np.random.default_rng(4000 + seed).normal(scale=3.0, size=25)
        res = variance_interval(x, method="chi2")
        covered += res.low <= 9.0 <= res.high
    lo, hi = _band(0.95)
    assert lo <= covered <= hi, covered


@pytest.mark.slow
def test_calibration_wilson_interval_coverage():
    rng = np.random.default_rng(5)
    covered = 0
    for k in rng.binomial(200, 0.3, size=N_SEEDS):
        res = wilson_interval(int(k), 200)
        covered += res.low <= 0.3 <= res.high
    # Wilson coverage at n=200, p=0.3 is within 0.94..0.96; use the wider band.
    assert _band(0.94)[0] <= covered <= _band(0.96)[1], covered
