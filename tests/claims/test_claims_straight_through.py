"""Straight-through claims: the kept counterexamples to the right sign, the mse bias."""

from __future__ import annotations

import numpy as np
import pytest

import gradstat as gs
import gradstat.claims as gc


def test_every_reported_counterexample_has_the_wrong_sign(results, moments):
    # Whatever the searches found (it depends on max_examples), each one must reproduce.
    r = results["st_right_sign"]
    assert len(r.counterexamples) >= len(gc.KEPT_SIGN_COUNTEREXAMPLES)
    for cx in r.counterexamples:
        m = moments(cx)
        layer1 = cx.network().parameter_groups()["layer1"]
        g, mean = m.gradient[layer1], m.mean[layer1]
        assert np.any((np.abs(g) > gc.SIGN_TOL) & (np.sign(g) * mean < -gc.SIGN_TOL)), cx


def test_one_unit_quadratic_counterexample(sigmoid, dsigmoid, moments):
    # C = 0.5 (h - t)^2, t = 0.45, a = -2: g = s'(a)(1/2 - t) > 0, E[st_sigmoid] = s'(a)(p - t).
    cx = gc.ST_SIGN_ONE_UNIT
    a, t = -2.0, 0.45
    p = sigmoid(a)
    sig, ident = moments(cx, "st_sigmoid"), moments(cx, "st")
    assert sig.gradient[0] == pytest.approx(dsigmoid(a) * (0.5 - t), rel=1e-12)
    assert sig.gradient[0] == pytest.approx(0.0052497, abs=1e-7)
    assert sig.mean[0] == pytest.approx(dsigmoid(a) * (p - t), rel=1e-12)
    assert sig.mean[0] == pytest.approx(-0.0347316, abs=1e-7)
    assert ident.mean[0] == pytest.approx(p - t, rel=1e-12)
    assert ident.mean[0] == pytest.approx(-0.3307971, abs=1e-7)
    assert sig.gradient[0] > 0 > sig.mean[0] and ident.mean[0] < 0


def test_one_layer_minimal_counterexample(sigmoid, dsigmoid, moments):
    # C = 0.5 (h2 - h1/2)^2, p1 = 1/2, p2 = s(-2): on b_1[1] the secant (1 - h1)/2 has mean
    # 1/4 but the slope h2 - h1/2 has mean p2 - 1/4 < 0.
    cx = gc.ST_SIGN_ONE_LAYER_MINIMAL
    m = moments(cx)
    p2 = sigmoid(-2.0)
    assert m.gradient[1] == pytest.approx(dsigmoid(-2.0) * 0.25, rel=1e-12)
    assert m.gradient[1] == pytest.approx(0.0262484, abs=1e-7)
    assert m.mean[1] == pytest.approx(dsigmoid(-2.0) * (p2 - 0.25), rel=1e-12)
    assert m.mean[1] == pytest.approx(-0.0137328, abs=1e-7)


def test_two_layer_linear_counterexample(sigmoid, dsigmoid, moments):
    # h1 ~ B(s(a)), a = 0; h2 ~ B(s(8 h1 - 4)), B(s(-h1)); f = h2a + h2b.
    cx = gc.ST_SIGN_TWO_LAYERS
    g_want = dsigmoid(0.0) * ((sigmoid(4) - sigmoid(-4)) + (sigmoid(-1) - sigmoid(0)))
    st_sig_want = dsigmoid(0.0) * (8 * dsigmoid(4) - 0.5 * (dsigmoid(0) + dsigmoid(-1)))
    sig, ident = moments(cx, "st_sigmoid"), moments(cx, "st")
    assert sig.gradient[0] == pytest.approx(g_want, rel=1e-12)
    assert sig.gradient[0] == pytest.approx(0.1832423, abs=1e-7)
    assert sig.mean[0] == pytest.approx(st_sig_want, rel=1e-12)
    assert sig.mean[0] == pytest.approx(-0.0205011, abs=1e-7)
    assert ident.mean[0] == pytest.approx(7.0, rel=1e-12)  # identity ST is right here


def test_two_layer_minimal_counterexamples(sigmoid, dsigmoid, moments):
    # a = -1; h2 ~ B(s(2 h1)), B(s(-2 h1 + 1)); f = h2a + h2b.
    cx = gc.ST_SIGN_TWO_LAYERS_MINIMAL
    p = sigmoid(-1.0)
    g_want = dsigmoid(-1.0) * ((sigmoid(2) - sigmoid(0)) + (sigmoid(-1) - sigmoid(1)))

    def slope(h1: float) -> float:
        return 2 * dsigmoid(2 * h1) - 2 * dsigmoid(-2 * h1 + 1)

    m = moments(cx)
    assert m.gradient[0] == pytest.approx(g_want, rel=1e-12)
    assert m.gradient[0] == pytest.approx(-0.0159885, abs=1e-7)
    assert m.mean[0] == pytest.approx(dsigmoid(-1.0) * (p * slope(1) + (1 - p) * slope(0)))
    assert m.mean[0] == pytest.approx(0.0056584, abs=1e-7)
    # Identity ST: a = 0; h2 ~ B(s(h1)), B(s(3 h1)); f = -2 h2a + h2b. ST sums -2*1 + 1*3.
    cx = gc.ST_SIGN_TWO_LAYERS_IDENTITY
    m = moments(cx)
    g_want = dsigmoid(0.0) * (-2 * (sigmoid(1) - sigmoid(0)) + (sigmoid(3) - sigmoid(0)))
    assert m.gradient[0] == pytest.approx(g_want, rel=1e-12)
    assert m.gradient[0] == pytest.approx(-0.0023858, abs=1e-7)
    assert m.mean[0] == pytest.approx(1.0, rel=1e-12)


def test_st_sigmoid_mse_bias_formula_on_a_fixed_network():
    # One example written out: bias(b_1[i]) = s'(a_i)(p_i - 1/2) sum_k W_o[k, i]^2.
    net = gs.BinaryNetwork.random((2, 3, 2), loss="mse", seed=4)
    x, t = np.array([0.5, -1.5]), np.array([0.3, -0.2])
    (W1, b1), (W_o, _) = net.layers()
    a = W1 @ x + b1
    p = 1 / (1 + np.exp(-a))
    want = p * (1 - p) * (p - 0.5) * (W_o**2).sum(axis=0)
    bias = gs.estimator_moments(net, x, t, "st_sigmoid").bias
    np.testing.assert_allclose(bias[net.layer_slices()[0][1]], want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bias[: W1.size], np.outer(want, x).ravel(), atol=1e-15)
