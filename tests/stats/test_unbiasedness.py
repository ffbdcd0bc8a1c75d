"""Tests of gradstat.stats.unbiasedness: the chi-square, Hotelling and Holm tests.

Seeds and false-alarm rates as the module docstring of ``stats_helpers`` says.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from stats_helpers import N_SEEDS, _band, _gaussian_draws, _good, _random_cov

from gradstat.stats import ZERO_VARIANCE_SUFFIX, holm_adjust, unbiasedness_test

# ------------------------------------------------------------------ chi-square test


def test_chi2_known_cov_matches_direct_formula():
    cov = _random_cov(1, 3)
    target = np.array([0.5, -1.0, 2.0])
    x = _gaussian_draws(2, 40, cov, target)
    res = unbiasedness_test(x, target, cov=cov, alpha=0.05)
    m = x.mean(axis=0) - target
    stat = 40 * m @ np.linalg.solve(cov, m)
    assert res.method == "chi2-known-cov"
    assert res.statistic == pytest.approx(stat, rel=1e-10)
    assert res.df == 3.0
    assert res.pvalue == pytest.approx(scipy.stats.chi2.sf(stat, 3), rel=1e-10)
    np.testing.assert_allclose(res.bias, m, rtol=1e-12)
    np.testing.assert_allclose(res.bias_se, np.sqrt(np.diag(cov) / 40), rtol=1e-12)
    assert res.rejected == (res.pvalue < 0.05)
    assert res.n == 40 and res.n_params == 3 and res.n_zero_variance == 0


def _rank_two_draws(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws whose third coordinate is the sum of the first two (cov of rank 2)."""
    base_cov = np.array([[1.0, 0.3], [0.3, 2.0]])
    z = _gaussian_draws(seed, n, base_cov)
    x = np.column_stack([z, z[:, 0] + z[:, 1]])
    lift = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    return x, lift @ base_cov @ lift.T


def test_chi2_singular_cov_uses_pseudo_inverse_on_range():
    x, cov = _rank_two_draws(3, 30)
    target = np.zeros(3)
    res = unbiasedness_test(x, target, cov=cov)
    m = x.mean(axis=0)
    stat = 30 * m @ np.linalg.pinv(cov) @ m
    assert res.method == "chi2-known-cov"
    assert res.df == 2.0
    assert res.n_zero_variance == 1
    assert res.statistic == pytest.approx(stat, rel=1e-8)
    assert res.pvalue == pytest.approx(scipy.stats.chi2.sf(stat, 2), rel=1e-8)


def test_chi2_singular_cov_bias_along_null_direction_gives_pvalue_zero():
    x, cov = _rank_two_draws(3, 30)
    # Shift the target along (1, 1, -1): invisible to the noisy directions.
    target = 0.01 * np.array([1.0, 1.0, -1.0])
    res = unbiasedness_test(x, target, cov=cov)
    assert res.pvalue == 0.0
    assert res.statistic == math.inf
    assert res.method == "chi2-known-cov" + ZERO_VARIANCE_SUFFIX
    assert res.rejected


def test_chi2_singular_cov_rounding_along_null_direction_is_ignored():
    x, cov = _rank_two_draws(3, 30)
    target = 1e-15 * np.array([1.0, 1.0, -1.0])
    res = unbiasedness_test(x, target, cov=cov)
    assert res.method == "chi2-known-cov"
    assert res.pvalue > 0.0


def test_chi2_zero_variance_coordinate():
    cov = np.diag([1.0, 0.0, 4.0])
    x = _gaussian_draws(4, 25, np.diag([1.0, 4.0]))
    x = np.column_stack([x[:, 0], np.full(25, 0.1), x[:, 1]])
    res = unbiasedness_test(x, np.array([0.0, 0.1, 0.0]), cov=cov)
    m = x.mean(axis=0)
    stat = 25 * (m[0] ** 2 / 1.0 + m[2] ** 2 / 4.0)
    assert res.df == 2.0 and res.n_zero_variance == 1
    assert res.statistic == pytest.approx(stat, rel=1e-10)
    assert res.bias[1] == 0.0
    biased = unbiasedness_test(x, np.array([0.0, 0.1 + 1e-6, 0.0]), cov=cov)
    assert biased.pvalue == 0.0 and biased.method.endswith(ZERO_VARIANCE_SUFFIX)


# -------------------------------------------------------------------- Hotelling T^2


def test_hotelling_matches_direct_formula():
    cov = _random_cov(5, 4)
    x = _gaussian_draws(6, 30, cov)
    target = np.array([0.1, 0.0, -0.2, 0.3])
    res = unbiasedness_test(x, target)
    m = x.mean(axis=0) - target
    s = np.cov(x, rowvar=False)
    t2 = 30 * m @ np.linalg.solve(s, m)
    f_stat = (30 - 4) / (4 * 29) * t2
    assert res.method == "hotelling-t2"
    assert res.df == (4.0, 26.0)
    assert res.statistic == pytest.approx(t2, rel=1e-9)
    assert res.pvalue == pytest.approx(scipy.stats.f.sf(f_stat, 4, 26), rel=1e-9)
    np.testing.assert_allclose(res.bias_se, x.std(axis=0, ddof=1) / math.sqrt(30), rtol=1e-12)


def test_hotelling_is_invariant_to_coordinate_scales():
    # The rank decision works on correlations, so variances 1e20 apart are fine.
    x = _gaussian_draws(7, 50, _random_cov(8, 3))
    res = unbiasedness_test(x, np.zeros(3))
    scaled = unbiasedness_test(x * np.array([1e-5, 1.0, 1e5]), np.zeros(3))
    assert scaled.df == (3.0, 47.0)
    assert scaled.statistic == pytest.approx(res.statistic, rel=1e-8)
    # A spread below 1e-12 times the largest magnitude counts as rounding (documented).
    tiny = unbiasedness_test(x * np.array([1e-9, 1.0, 1e7]), np.zeros(3))
    assert tiny.df == (2.0, 48.0) and tiny.n_zero_variance == 1


def _near_function_draws(seed: int) -> np.ndarray:
    """``(c h - 1) h`` and ``c h - 1`` for ``h`` a mean of four fair bits and ``c`` = 1.9e-11:
    the second coordinate is a function of the first up to terms of 1e-11, and its noise
    is a few thousand ulps (an output bias's REINFORCE estimate with a tiny output weight,
    found by Hypothesis)."""
    h = (np.random.default_rng(seed).random((600, 4)) < 0.5).mean(axis=1)
    return np.column_stack([(_TINY_WEIGHT * h - 1.0) * h, _TINY_WEIGHT * h - 1.0])


_TINY_WEIGHT = 1.91417429e-11
_NEAR_FUNCTION_MEAN = np.array([_TINY_WEIGHT * 0.3125 - 0.5, _TINY_WEIGHT * 0.5 - 1.0])


def test_hotelling_coordinate_a_function_of_another_up_to_rounding_is_no_false_alarm():
    """Rounding of the target is many standard errors along the direction in which the
    two coordinates differ; it must not count (every seed was rejected before). Seeded;
    at alpha 1e-4 the chance that any of 20 correct seeds is rejected is at most 2e-3."""
    results = [
        unbiasedness_test(_near_function_draws(s), _NEAR_FUNCTION_MEAN, alpha=1e-4)
        for s in range(20)
    ]
    assert not any(r.rejected for r in results)
    assert all(r.method == "hotelling-t2" and r.df == (2.0, 598.0) for r in results)


def test_hotelling_coordinate_a_function_of_another_still_finds_a_bias():
    """A bias of 0.05 (0.23 standard deviations, z = 5.7 over 600 draws) in the first
    coordinate is found: seeded, power about 0.99 per seed at alpha 0.05."""
    target = _NEAR_FUNCTION_MEAN + np.array([0.05, 0.0])
    rejected = [
        unbiasedness_test(_near_function_draws(s), target, alpha=0.05).rejected for s in range(20)
    ]
    assert sum(rejected) >= 18


def test_hotelling_deterministic_coordinate_is_dropped():
    noisy = _gaussian_draws(9, 20, np.array([[1.0, 0.5], [0.5, 2.0]]))
    x = np.column_stack([noisy[:, 0], np.full(20, 0.1), noisy[:, 1]])
    res = unbiasedness_test(x, np.array([0.0, 0.1, 0.0]))
    reduced = unbiasedness_test(noisy, np.zeros(2))
    assert res.method == "hotelling-t2"
    assert res.df == (2.0, 18.0)
    assert res.n_zero_variance == 1
    assert res.statistic == pytest.approx(reduced.statistic, rel=1e-12)
    assert res.pvalue == pytest.approx(reduced.pvalue, rel=1e-12)
    assert res.bias[1] == 0.0 and res.bias_se[1] == 0.0


def test_hotelling_deterministic_coordinate_with_rounding_jitter_is_dropped():
    # Values that differ only in the last bits (as when an estimator computes a
    # deterministic coordinate along different paths) count as zero variance.
    noisy = _gaussian_draws(9, 20, np.eye(2))
    jitter = 0.3 * (1 + 4e-16 * np.random.default_rng(10).integers(-2, 3, size=20))
    x = np.column_stack([noisy, jitter])
    res = unbiasedness_test(x, np.array([0.0, 0.0, 0.3]))
    assert res.df == (2.0, 18.0) and res.n_zero_variance == 1
    assert res.method == "hotelling-t2"


def test_hotelling_deterministic_coordinate_off_target_gives_pvalue_zero():
    noisy = _gaussian_draws(9, 20, np.eye(2))
    x = np.column_stack([noisy, np.full(20, 0.1)])
    res = unbiasedness_test(x, np.array([0.0, 0.0, 0.1 + 1e-9]))
    assert res.pvalue == 0.0 and res.statistic == math.inf and res.rejected
    assert res.method == "hotelling-t2" + ZERO_VARIANCE_SUFFIX


def test_hotelling_linear_dependence_restricts_to_range():
    x, _ = _rank_two_draws(11, 40)
    target = np.array([0.05, -0.05, 0.0])
    res = unbiasedness_test(x, target)
    m = x.mean(axis=0) - target
    t2 = 40 * m @ np.linalg.pinv(np.cov(x, rowvar=False)) @ m
    assert res.df == (2.0, 38.0) and res.n_zero_variance == 1
    assert res.statistic == pytest.approx(t2, rel=1e-7)
    off = unbiasedness_test(x, target + 0.01 * np.array([1.0, 1.0, -1.0]))
    assert off.pvalue == 0.0


def test_all_coordinates_deterministic():
    x = np.tile([1.0, 2.0], (5, 1))
    res = unbiasedness_test(x, np.array([1.0, 2.0]))
    assert res.pvalue == 1.0 and not res.rejected and res.detectable_bias == 0.0
    assert unbiasedness_test(x, np.array([1.0, 2.5])).pvalue == 0.0


# ------------------------------------------------------------------ Holm fallback


def test_holm_adjust_hand_example():
    # sorted: 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, 1*0.04 -> cummax
    adjusted = holm_adjust([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(holm_adjust([0.5, 0.9]), [1.0, 1.0])
    np.testing.assert_allclose(holm_adjust([0.9, 0.01]), [0.9, 0.02])


def test_holm_fallback_when_n_not_above_d():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(6, 8)) * np.arange(1, 9)
    target = np.full(8, 0.2)
    res = unbiasedness_test(x, target)
    t_stat, p = scipy.stats.ttest_1samp(x, target)
    assert res.method == "holm-t"
    assert res.df == 5.0
    assert res.statistic == pytest.approx(np.max(np.abs(t_stat)), rel=1e-12)
    assert res.pvalue == pytest.approx(min(1.0, 8 * p.min()), rel=1e-12)
    np.testing.assert_allclose(res.coordinate_pvalues, holm_adjust(p), rtol=1e-12)
    z = scipy.stats.norm.isf(0.01 / 16) + scipy.stats.norm.ppf(0.8)
    se = x.std(axis=0, ddof=1) / math.sqrt(6)
    assert res.detectable_bias == pytest.approx(z * se.max(), rel=1e-12)


def test_holm_fallback_with_deterministic_coordinates():
    rng = np.random.default_rng(13)
    x = np.column_stack([rng.normal(size=(4, 5)), np.full((4, 2), -0.5)])
    res = unbiasedness_test(x, np.r_[np.zeros(5), -0.5, -0.5])
    assert res.method == "holm-t" and res.n_zero_variance == 2
    np.testing.assert_array_equal(res.coordinate_pvalues[5:], [1.0, 1.0])
    off = unbiasedness_test(x, np.r_[np.zeros(5), -0.5, 0.0])
    assert off.pvalue == 0.0 and off.method == "holm-t" + ZERO_VARIANCE_SUFFIX
    assert off.coordinate_pvalues[6] == 0.0


def test_holm_chosen_on_noisy_dimension_not_total():
    # 3 noisy coordinates + 10 deterministic ones, n = 8: Hotelling on the 3 is valid.
    rng = np.random.default_rng(14)
    x = np.column_stack([rng.normal(size=(8, 3)), np.ones((8, 10))])
    res = unbiasedness_test(x, np.r_[np.zeros(3), np.ones(10)])
    assert res.method == "hotelling-t2" and res.df == (3.0, 5.0)


# --------------------------------------------------------------- detectable bias


def test_detectable_bias_chi2_one_dimension_matches_normal_formula():
    # With one degree of freedom the chi-square test is the two-sided z test; the far
    # rejection tail contributes ~1e-9 to the power, hence the tolerance.
    x = _gaussian_draws(15, 100, np.array([[4.0]]))
    res = unbiasedness_test(x, np.zeros(1), cov=np.array([[4.0]]), alpha=0.01, power=0.8)
    z = scipy.stats.norm.isf(0.005) + scipy.stats.norm.ppf(0.8)
    assert res.detectable_bias == pytest.approx(z * 2.0 / 10.0, rel=1e-6)


def test_detectable_bias_chi2_uses_largest_eigenvalue():
    cov = _random_cov(16, 3)
    x = _gaussian_draws(17, 60, cov)
    res = unbiasedness_test(x, np.zeros(3), cov=cov, alpha=0.05, power=0.9)
    lam = 60 * res.detectable_bias**2 / np.linalg.eigvalsh(cov)[-1]
    crit = scipy.stats.chi2.isf(0.05, 3)
    assert scipy.stats.ncx2.sf(crit, 3, lam) == pytest.approx(0.9, abs=1e-9)


def test_detectable_bias_hotelling_solves_noncentral_f():
    x = _gaussian_draws(18, 40, _random_cov(19, 3))
    res = unbiasedness_test(x, np.zeros(3), alpha=0.01, power=0.8)
    lam = 40 * res.detectable_bias**2 / np.linalg.eigvalsh(np.cov(x, rowvar=False))[-1]
    crit = scipy.stats.f.isf(0.01, 3, 37)
    assert scipy.stats.ncf.sf(crit, 3, 37, lam) == pytest.approx(0.8, abs=1e-9)


def test_fixed_seed_decisions():
    cov = _random_cov(21, 3)
    x = _gaussian_draws(22, 200, cov)
    # Correct mean: a false alarm has probability alpha = 0.01 over seeds; seed fixed.
    assert not unbiasedness_test(x, np.zeros(3), alpha=0.01).rejected
    assert not unbiasedness_test(x, np.zeros(3), cov=cov, alpha=0.01).rejected
    # A planted bias of 3x the detectable bias along the worst direction: missed with
    # probability < 1e-12 over seeds; seed fixed.
    res = unbiasedness_test(x, np.zeros(3), cov=cov)
    top = np.linalg.eigh(cov)[1][:, -1]
    planted = x + 3 * res.detectable_bias * top
    assert unbiasedness_test(planted, np.zeros(3), cov=cov).rejected
    assert unbiasedness_test(planted, np.zeros(3)).rejected


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: unbiasedness_test(np.zeros(10), np.zeros(1)), ValueError, "samples"),
        (lambda: unbiasedness_test(np.zeros((1, 2)), np.zeros(2)), ValueError, "samples"),
        (lambda: unbiasedness_test(np.zeros((10, 0)), np.zeros(0)), ValueError, "samples"),
        (lambda: unbiasedness_test([["a", "b"]] * 3, np.zeros(2)), TypeError, "samples"),
        (lambda: unbiasedness_test(np.full((3, 2), np.nan), np.zeros(2)), ValueError, "samples"),
        (lambda: unbiasedness_test(_good(), np.zeros(3)), ValueError, "target"),
        (lambda: unbiasedness_test(_good(), [np.inf, 0.0]), ValueError, "target"),
        (lambda: unbiasedness_test(_good(), np.zeros(2), alpha=0.0), ValueError, "alpha"),
        (lambda: unbiasedness_test(_good(), np.zeros(2), alpha=1.5), ValueError, "alpha"),
        (lambda: unbiasedness_test(_good(), np.zeros(2), alpha="0.1"), TypeError, "alpha"),
        (lambda: unbiasedness_test(_good(), np.zeros(2), power=1.0), ValueError, "power"),
        (lambda: unbiasedness_test(_good(), np.zeros(2), cov=np.eye(3)), ValueError, "cov"),
        (
            lambda: unbiasedness_test(_good(), np.zeros(2), cov=[[1.0, 0.5], [0.0, 1.0]]),
            ValueError,
            "symmetric",
        ),
        (
            lambda: unbiasedness_test(_good(), np.zeros(2), cov=[[1.0, 2.0], [2.0, 1.0]]),
            ValueError,
            "semi-definite",
        ),
    ],
)
def test_bad_inputs_raise_naming_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


# --------------------------------------------------------- calibration (slow)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["chi2", "hotelling", "holm"])
def test_calibration_rejection_rate_of_correct_data(kind):
    cov = _random_cov(100, 3)
    target = np.array([1.0, -2.0, 0.5])
    n, method = {"chi2": (30, "chi2-known-cov"), "hotelling": (30, "hotelling-t2")}.get(
        kind, (3, "holm-t")
    )
    rejections = 0
    for seed in range(N_SEEDS):
        x = _gaussian_draws(1000 + seed, n, cov, target)
        res = unbiasedness_test(x, target, cov=cov if kind == "chi2" else None, alpha=0.05)
        assert res.method == method
        rejections += res.rejected
    lo, hi = _band(0.05)
    if kind == "holm":
        assert rejections <= hi  # Holm is conservative: only an upper bound holds
    else:
        assert lo <= rejections <= hi, rejections


@pytest.mark.slow
def test_calibration_power_at_detectable_bias_chi2():
    cov = _random_cov(101, 3)
    n = 40
    pilot = unbiasedness_test(_gaussian_draws(0, n, cov), np.zeros(3), cov=cov, alpha=0.05)
    delta = pilot.detectable_bias * np.linalg.eigh(cov)[1][:, -1]
    hits = sum(
        unbiasedness_test(
            _gaussian_draws(2000 + s, n, cov, delta), np.zeros(3), cov=cov, alpha=0.05
        ).rejected
        for s in range(N_SEEDS)
    )
    lo, hi = _band(0.8)
    assert lo <= hits <= hi, hits


@pytest.mark.slow
def test_calibration_power_at_detectable_bias_hotelling():
    cov = _random_cov(102, 3)
    n = 60
    pilot = unbiasedness_test(_gaussian_draws(0, n, cov), np.zeros(3), alpha=0.05)
    w, v = np.linalg.eigh(cov)
    delta = pilot.detectable_bias * v[:, -1]
    # The pilot's detectable bias uses its sample covariance; the power it really has
    # against the true covariance is exact (noncentral F) and close to the stated 0.8.
    true_power = scipy.stats.ncf.sf(
        scipy.stats.f.isf(0.05, 3, n - 3), 3, n - 3, n * pilot.detectable_bias**2 / w[-1]
    )
    assert abs(true_power - 0.8) < 0.1
    hits = sum(
        unbiasedness_test(
            _gaussian_draws(3000 + s, n, cov, delta), np.zeros(3), alpha=0.05
        ).rejected
        for s in range(N_SEEDS)
    )
    lo, hi = _band(true_power)
    assert lo <= hits <= hi, (hits, true_power)
