"""``unbiasedness_test`` gives the same answer for draws of any magnitude float64 holds.

The test rescales the draws internally by a power of two, so scaling them by a power of
two changes nothing at all, and by a power of ten only what the rounding of the scaled
draws changes. Every check here is exact or deterministic (seeded draws): no false alarms.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gradstat.stats import unbiasedness_test

KINDS = {
    # n > d: Hotelling's T^2; n <= d: Holm's t-tests; with cov: chi-square.
    "hotelling": (50, 3),
    "holm": (5, 8),
    "chi2": (40, 3),
}


def _draws(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    n, d = KINDS[kind]
    rng = np.random.default_rng(seed)
    draws = rng.normal(size=(n, d)) + 0.3
    target = np.zeros(d)
    # Deterministic coordinate on target, as gradient estimators often have.
    draws[:, -1] = target[-1] = 0.7
    cov = None
    if kind == "chi2":
        cov = np.diag([1.0] * (d - 1) + [0.0])
    return draws, target, cov


@given(
    kind=st.sampled_from(sorted(KINDS)),
    seed=st.integers(0, 2**32 - 1),
    exponent=st.integers(-300, 300),
)
# The cases: p = 0 "along a zero-variance direction" at 1e-200 and 1e-300,
# p = 1.0 on the Holm path at 1e200, LinAlgError at 1e160.
@example(kind="hotelling", seed=0, exponent=-200)
@example(kind="hotelling", seed=0, exponent=-300)
@example(kind="hotelling", seed=0, exponent=160)
@example(kind="holm", seed=0, exponent=200)
@example(kind="holm", seed=0, exponent=-300)
@example(kind="chi2", seed=0, exponent=150)
def test_pvalue_is_invariant_to_powers_of_ten(kind, seed, exponent):
    draws, target, cov = _draws(kind, seed)
    if cov is not None and abs(exponent) > 150:
        exponent //= 2  # cov scales with the square
    scale = 10.0**exponent
    ref = unbiasedness_test(draws, target, cov=cov)
    got = unbiasedness_test(
        draws * scale, target * scale, cov=None if cov is None else cov * scale**2
    )
    assert got.method == ref.method
    # Scaling by 10^k rounds each draw (relative 1.1e-16); the p-value follows smoothly.
    assert got.pvalue == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
    assert got.n_zero_variance == ref.n_zero_variance
    np.testing.assert_allclose(got.bias, ref.bias * scale, rtol=1e-9, atol=1e-12 * scale)
    assert got.detectable_bias == pytest.approx(ref.detectable_bias * scale, rel=1e-6)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("power", [-1000, -500, -1, 1, 500, 1000])
def test_powers_of_two_change_nothing(kind, power):
    draws, target, cov = _draws(kind, 1)
    if cov is not None:
        power = max(min(power, 500), -500)
    ref = unbiasedness_test(draws, target, cov=cov)
    scaled = np.ldexp(draws, power)
    assert np.array_equal(np.ldexp(scaled, -power), draws)  # exact: no subnormal draw
    got = unbiasedness_test(
        scaled, np.ldexp(target, power), cov=None if cov is None else np.ldexp(cov, 2 * power)
    )
    assert (got.statistic, got.pvalue, got.method) == (ref.statistic, ref.pvalue, ref.method)
    assert np.array_equal(np.ldexp(got.bias, -power), ref.bias)


def test_huge_and_tiny_draws_are_accepted():
    draws, target, _ = _draws("hotelling", 2)
    for scale in (1e300, 1e-300):
        res = unbiasedness_test(draws * scale, target * scale)
        assert np.isfinite(res.statistic) and 0.0 <= res.pvalue <= 1.0
