"""Gumbel-Rao claims: the registry's verdicts and the zero-temperature slopes by hand."""

from __future__ import annotations

from math import log

import numpy as np
import pytest
from hypothesis import settings

import gradstat as gs
import gradstat.claims as gc
from gradstat.claims.gumbel_rao import zgr_slope_gaps
from gradstat.estimators.gumbel_rao import surrogate_moments


@pytest.mark.parametrize("key", ["gumbel_rao_rao_blackwell", "gumbel_rao_zero_temperature"])
def test_gumbel_rao_claims_are_proved(key):
    r = gc.CLAIMS[key].check(max_examples=settings.default.max_examples)
    assert r.verdict == "proved", r.evidence


def test_zero_temperature_slopes_fall_linearly():
    gaps = np.array([max(zgr_slope_gaps(tau)) for tau in (0.1, 0.01, 0.001)])
    assert np.all(np.diff(gaps) < 0)
    assert gaps[2] / gaps[1] == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("a", [-2.0, 1.0])
def test_first_order_slope_error(a, sigmoid, dsigmoid):
    # E[J | b = 1] - (1 - p)/2 ~ tau log 2 s''(-a) / p, s'' = s'(1 - 2 s).
    tau = 1e-4
    p = sigmoid(a)
    second = dsigmoid(-a) * (1 - 2 * sigmoid(-a))
    gap = surrogate_moments(a, 1.0, tau)[0] - (1 - p) / 2
    assert gap == pytest.approx(tau * log(2) * second / p, rel=1e-3)


def test_gumbel_rao_variance_falls_with_k_on_a_fixed_network():
    net = gs.BinaryNetwork.random((2, 2, 2, 1), loss="bce", seed=5)
    x, t = np.array([0.3, -0.8]), np.array([1.0])
    ref = gs.estimator_moments(net, x, t, "gumbel_st", engine="quadrature", tau=0.5)
    totals = []
    for k in (1, 3, 30):
        m = gs.estimator_moments(net, x, t, "gumbel_rao", engine="quadrature", k=k, tau=0.5)
        np.testing.assert_allclose(m.mean, ref.mean, rtol=1e-13, atol=1e-16)
        totals.append(m.var.sum())
    assert totals[0] == pytest.approx(ref.var.sum(), rel=1e-12)
    assert totals[0] > totals[1] > totals[2]
