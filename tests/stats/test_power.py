"""Tests of gradstat.stats.power: sample-size planning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradstat.stats import required_samples, unbiasedness_test


def test_required_samples_inverts_holm_detectable_bias():
    rng = np.random.default_rng(20)
    x = rng.normal(size=(9, 12))
    res = unbiasedness_test(x, np.zeros(12), alpha=0.05, power=0.9)
    sigma = x.std(axis=0, ddof=1).max()
    n = required_samples(res.detectable_bias, sigma, alpha=0.05, power=0.9, n_params=12)
    assert n in (9, 10)  # ceil of 9 * (1 +- rounding)


def test_required_samples_hand_values():
    # ((1.959964 + 0.841621) * 1 / 0.1)^2 = 784.89 -> 785 (the textbook value)
    assert required_samples(0.1, 1.0, alpha=0.05, power=0.8) == 785
    # ((2.807034 + 0.841621) / 0.1)^2 = 1331.27 -> 1332 (Bonferroni over 10)
    assert required_samples(0.1, 1.0, alpha=0.05, power=0.8, n_params=10) == 1332
    assert required_samples(0.1, 0.0) == 2


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: required_samples(0.0, 1.0), ValueError, "detectable_bias"),
        (lambda: required_samples(0.1, -1.0), ValueError, "sigma"),
        (lambda: required_samples(0.1, math.nan), ValueError, "sigma"),
        (lambda: required_samples(0.1, 1.0, n_params=0), ValueError, "n_params"),
        (lambda: required_samples(0.1, 1.0, alpha=1.0), ValueError, "alpha"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()
