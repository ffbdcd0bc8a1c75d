"""Noise-form claims: verdicts, the kept counterexamples by hand, the helpers they use."""

from __future__ import annotations

from math import exp

import numpy as np
import pytest

import gradstat as gs
import gradstat.claims as gc


def test_verdicts(results):
    assert results["st_sigmoid_noise_form"].verdict == "proved"
    assert results["surrogate_walsh_covariance"].verdict == "proved"
    assert results["noise_sources_sum"].verdict == "proved"
    r = results["st_sigmoid_mean_is_deterministic"]
    assert r.verdict == "holds only under conditions"
    assert gc.ST_MEAN_BCE in r.counterexamples and gc.ST_MEAN_TWO_LAYERS in r.counterexamples
    assert "depths [1, 2, 3]" in results["noise_sources_sum"].evidence


def test_bce_counterexample_by_hand(sigmoid, dsigmoid, moments):
    # C = softplus(h), a = 0: E[st_sigmoid] = s'(0) E[s(h)], the deterministic network
    # has slope s(p) = s(1/2).
    m = moments(gc.ST_MEAN_BCE)
    assert m.mean[0] == pytest.approx(dsigmoid(0.0) * (sigmoid(0.0) + sigmoid(1.0)) / 2, rel=1e-12)
    assert m.mean[0] == pytest.approx(0.153882, abs=1e-6)
    det = gc.deterministic_gradient(gc.ST_MEAN_BCE.network(), np.empty(0), [0.0])
    assert det[0] == pytest.approx(dsigmoid(0.0) * sigmoid(0.5), rel=1e-12)
    assert det[0] == pytest.approx(0.155615, abs=1e-6)


def test_two_layer_counterexample_by_hand(sigmoid, dsigmoid, moments):
    # a1 = 0, a2 = h1, C = h2^2 / 2: on b_2, E = (s'(0) s(0) + s'(1) s(1)) / 2 and the
    # deterministic network gives s'(1/2) s(1/2).
    m = moments(gc.ST_MEAN_TWO_LAYERS)
    want = (dsigmoid(0.0) * sigmoid(0.0) + dsigmoid(1.0) * sigmoid(1.0)) / 2
    assert m.mean[2] == pytest.approx(want, rel=1e-12)
    assert m.mean[2] == pytest.approx(0.134367, abs=1e-6)
    det = gc.deterministic_gradient(gc.ST_MEAN_TWO_LAYERS.network(), np.empty(0), [0.0])
    assert det[2] == pytest.approx(dsigmoid(0.5) * sigmoid(0.5), rel=1e-12)
    assert det[2] == pytest.approx(0.146280, abs=1e-6)


@pytest.mark.parametrize("loss", ["mse", "bce", "xent"])
def test_deterministic_gradient_matches_finite_differences(loss):
    net = gs.BinaryNetwork.random((3, 3, 2, 2), loss=loss, seed=6)
    x = np.array([0.3, -1.1, 0.8])
    t = 1 if loss == "xent" else np.array([0.2, 0.7])

    def cost(theta):
        layers = gs.BinaryNetwork(net.sizes, theta, loss=loss).layers()
        h = x
        for W, b in layers[:-1]:
            h = 1 / (1 + np.exp(-(W @ h + b)))
        y = layers[-1][0] @ h + layers[-1][1]
        if loss == "mse":
            return 0.5 * np.sum((y - t) ** 2)
        if loss == "bce":
            return np.sum(np.logaddexp(0, y) - t * y)
        return np.logaddexp.reduce(y) - y[t]

    step = 1e-6
    fd = np.array(
        [(cost(net.params + step * e) - cost(net.params - step * e)) / (2 * step)
         for e in np.eye(net.n_params)]
    )  # fmt: skip
    np.testing.assert_allclose(gc.deterministic_gradient(net, x, t), fd, rtol=1e-6, atol=1e-8)


def test_walsh_covariance_of_one_unit(dsigmoid):
    # One unit: c_{1} = f(1) - f(0), so Var = s^2 (f(1) - f(0))^2 p (1 - p).
    a, w, t = 0.4, 1.3, 0.2
    net = gs.BinaryNetwork((0, 1, 1), [a, w, 0.0], loss="bce")
    p = 1 / (1 + exp(-a))
    slope = [w * (1 / (1 + exp(-w * h)) - t) for h in (0.0, 1.0)]
    want = (slope[1] - slope[0]) ** 2 * p * (1 - p)
    got = gc.walsh_covariance(net, np.empty(0), np.array([t]), np.ones(1))
    assert got[0, 0] == pytest.approx(want, rel=1e-12)
    m = gs.estimator_moments(net, [], [t], "st")
    assert m.var[0] == pytest.approx(want, rel=1e-12)


def test_the_seed_network_of_the_derivation():
    # (3, 4, 2), mse: per state g_hat = g_det + D H eps on b_1; Cov of rank 2 (REINFORCE 4).
    net = gs.BinaryNetwork.random((3, 4, 2), loss="mse", seed=3)
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=3), rng.normal(size=2)
    (W1, b1), (W_o, _) = net.layers()
    p = 1 / (1 + np.exp(-(W1 @ x + b1)))
    D, H = np.diag(p * (1 - p)), W_o.T @ W_o
    det = gc.deterministic_gradient(net, x, t)[12:16]
    for s in range(16):
        h = np.array([(s >> k) & 1 for k in range(4)], dtype=float)
        e = gs.estimate_from_noise(net, x, t, "st_sigmoid", np.where(h == 1, 0.0, 1.0))
        np.testing.assert_allclose(e[12:16], det + D @ H @ (h - p), rtol=0, atol=1e-15)
    cov = gs.estimator_moments(net, x, t, "st_sigmoid", full_cov=True).cov
    np.testing.assert_allclose(cov[12:16, 12:16], D @ H @ D @ H @ D, rtol=0, atol=1e-16)
    ranks = []
    for name in ("st_sigmoid", "reinforce"):
        c = gs.estimator_moments(net, x, t, name, full_cov=True).cov[:16, :16]
        ev = np.linalg.eigvalsh(c)
        ranks.append(int(np.sum(ev > 1e-10 * ev.max())))
    assert ranks == [2, 4]
