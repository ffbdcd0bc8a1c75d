"""REINFORCE claims: unbiased for every baseline, the optimal baseline for one unit."""

from __future__ import annotations

import numpy as np

import gradstat as gs
import gradstat.claims as gc


def test_optimal_baseline_evidence_numbers(results):
    assert "cut by a median" in results["optimal_baseline"].evidence


def test_reinforce_unbiased_for_every_baseline_on_a_fixed_network():
    net = gs.BinaryNetwork.random((2, 3, 2, 2), loss="bce", seed=2)
    x, t = np.array([[0.5, -1.0], [1.2, 0.3]]), np.array([[0.3, 0.8], [0.9, 0.1]])
    for baseline in (*gc.BASELINE_CASES, 2.5, -4.0):
        m = gs.estimator_moments(net, x, t, "reinforce", baseline=baseline)
        np.testing.assert_allclose(m.example_mean, m.example_gradient, rtol=1e-10, atol=1e-13)


def test_optimal_baseline_one_unit_closed_form():
    # One unit: with c* = (1 - p) C(1) + p C(0) the estimate is p (1 - p)(C(1) - C(0)) x_j
    # for both values of h, so its variance is zero.
    net = gs.BinaryNetwork.random((2, 1, 2), loss="mse", seed=5)
    x, t = np.array([0.7, -0.4]), np.array([0.2, -0.1])
    (W1, b1), (W_o, b_o) = net.layers()
    p = 1 / (1 + np.exp(-(W1 @ x + b1)[0]))

    def loss(h: float) -> float:
        return 0.5 * float(np.sum((W_o[:, 0] * h + b_o - t) ** 2))

    m = gs.estimator_moments(net, x, t, "reinforce", baseline="optimal")
    stoch = net.parameter_groups()["stochastic"]
    want = p * (1 - p) * (loss(1.0) - loss(0.0)) * np.array([*x, 1.0])
    np.testing.assert_allclose(m.mean[stoch], want, rtol=1e-12)
    np.testing.assert_allclose(m.var[stoch], 0.0, atol=1e-15)
