"""ReinMax claims: ZGR sample by sample, the kept bce counterexample, the power loss."""

from __future__ import annotations

from math import exp, log, sqrt

import numpy as np
import pytest

import gradstat as gs
import gradstat.claims as gc


def test_every_reported_reinmax_counterexample_is_biased(results, moments):
    r = results["reinmax_zgr"]
    assert gc.REINMAX_BCE_MINIMAL in r.counterexamples
    for cx in r.counterexamples:
        assert cx.loss == "bce" and cx.network().n_layers == 1
        m = moments(cx)
        assert np.max(np.abs(m.bias)) > gc.REINMAX_BIAS_TOL


def test_reinmax_evidence_numbers(results):
    assert "biased at every a" in results["reinmax_zgr"].evidence
    assert "bias -0.01323" in results["reinmax_zgr"].evidence  # a = 0


def test_reinmax_is_zgr_on_fixed_networks(sigmoid):
    # One unit: the surrogate is (1 - p)/2 when the unit fires, p/2 otherwise (doubled for pm1).
    a = 0.7
    p = sigmoid(a)
    for values, kappa in (("01", 1.0), ("pm1", 2.0)):
        net = gs.BinaryNetwork((0, 1, 1), [a, 1.0, 0.0], loss="linear", values=values)
        on = gs.estimate_from_noise(net, [], [1.0], "reinmax", [p / 2], tau=1.0)
        off = gs.estimate_from_noise(net, [], [1.0], "reinmax", [(1 + p) / 2], tau=1.0)
        assert on[0] == pytest.approx(kappa * (1 - p) / 2, rel=1e-13)
        assert off[0] == pytest.approx(kappa * p / 2, rel=1e-13)
        assert gc.zgr_estimate(net, [], [1.0], [p / 2])[0] == pytest.approx(on[0], rel=1e-13)
    net = gs.BinaryNetwork.random((2, 3, 2, 2), loss="bce", seed=7, values="pm1")
    x, t = np.array([0.4, -1.2]), np.array([0.3, 0.9])
    for u in np.random.default_rng(0).random((5, net.n_stochastic)):
        got = gs.estimate_from_noise(net, x, t, "reinmax", u, tau=1.0)
        np.testing.assert_allclose(got, gc.zgr_estimate(net, x, t, u), rtol=1e-12, atol=1e-14)


def test_reinmax_bce_minimal_counterexample(sigmoid, moments):
    # C = softplus(h), a = 0: g = s'(0)(softplus(1) - log 2), E = s'(0)(s(1) + s(0))/2.
    m = moments(gc.REINMAX_BCE_MINIMAL)
    assert m.gradient[0] == pytest.approx(0.25 * (log(1 + exp(1.0)) - log(2)), rel=1e-12)
    assert m.mean[0] == pytest.approx(0.25 * (sigmoid(1.0) + 0.5) / 2, rel=1e-12)
    assert m.gradient[0] == pytest.approx(0.155029, abs=1e-6)
    assert m.mean[0] == pytest.approx(0.153882, abs=1e-6)


@pytest.mark.parametrize("a", [-2.0, 0.0, 2.0])
def test_reinmax_power_loss_bias(a, dsigmoid):
    # f(h) = |h - 0.45|^1.5: E = s'(a) 0.75 (sqrt(0.55) - sqrt(0.45)), g = s'(a)(f(1) - f(0)).
    mean, g = gc.reinmax_power_bias(a)
    assert mean == pytest.approx(dsigmoid(a) * 0.75 * (sqrt(0.55) - sqrt(0.45)), rel=1e-12)
    assert g == pytest.approx(dsigmoid(a) * (0.55**1.5 - 0.45**1.5), rel=1e-12)
    assert mean / g == pytest.approx(0.5009, abs=1e-4)
    assert mean - g == pytest.approx(-0.0132305 if a == 0 else -0.0055565, abs=1e-6)
