"""ARM and DisARM claims: one-unit closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import gradstat as gs


def test_disarm_and_arm_one_unit_closed_forms(sigmoid):
    # One unit, C = w h, a = -1 (p < 1/2): Delta = w; ARM's squared estimate integrates
    # (u - 1/2)^2 over the two outer cells of width p; DisARM is +-w (1 - p)/2 there.
    w, a = 1.5, -1.0
    p = sigmoid(a)
    net = gs.BinaryNetwork((0, 1, 1), [a, w, 0.0], loss="linear")
    g = p * (1 - p) * w
    arm, dis = (
        gs.estimator_moments(net, [], [1.0], "arm"),
        gs.estimator_moments(net, [], [1.0], "disarm"),
    )
    assert arm.mean[0] == pytest.approx(g, rel=1e-12) and dis.mean[0] == pytest.approx(g, rel=1e-12)
    arm_var = w**2 * 2 * (0.125 - (0.5 - p) ** 3) / 3 - g**2
    dis_var = p * (1 - p) ** 2 * w**2 * (0.5 - p)
    assert arm.var[0] == pytest.approx(arm_var, rel=1e-10)
    assert dis.var[0] == pytest.approx(dis_var, rel=1e-10)
    assert dis.var[0] < arm.var[0]


def test_disarm_evidence_numbers(results):
    assert "DisARM / ARM: median" in results["disarm_le_arm"].evidence


def test_disarm_is_arm_at_cell_midpoints_two_layers_by_hand():
    # (0, 1, 1, 1), linear loss: noise (u1, u2, v) with v the upper uniform of layer 1's
    # branch 1. Layer 2's ARM term is (f1 - f2)(u2 - 1/2); at the midpoint of an outer cell
    # of width m it is -+(1 - m)/2 (f1 - f2), DisARM's value.
    from gradstat.claims.arm import cell_midpoints

    net = gs.BinaryNetwork((0, 1, 1, 1), [0.7, -1.2, 0.4, 2.0, 0.0], loss="linear")
    noise = np.array([0.2, 0.95, 0.6])
    mid = cell_midpoints(net, [], [1.0], noise)
    p1 = 1 / (1 + np.exp(-0.7))
    assert mid[0] == pytest.approx((1 - p1) / 2)  # u1 = 0.2 < 1 - p1 = 0.33: low cell
    h1 = 1.0  # u1 < p1 fires
    p2 = 1 / (1 + np.exp(-(-1.2 * h1 + 0.4)))
    assert mid[1] == pytest.approx(1 - p2 / 2) and mid[2] == 0.6
    dis = gs.estimate_from_noise(net, [], [1.0], "disarm", noise)
    arm = gs.estimate_from_noise(net, [], [1.0], "arm", mid)
    assert np.allclose(dis, arm, rtol=1e-13, atol=1e-15)
    assert not np.allclose(dis, gs.estimate_from_noise(net, [], [1.0], "arm", noise))


@pytest.mark.parametrize("a", [-1.3, 0.4, 2.0])
def test_arm_descent_probability_one_unit(a, sigmoid):
    # C = 1.5 h: ARM is -1.5 (u - 1/2) on the low cell, +1.5 (u - 1/2) on the high one and
    # 0 in the middle, so it descends exactly on the two outer cells: P = 2 min(p, 1 - p).
    from gradstat.claims.arm import arm_descent_probability

    net = gs.BinaryNetwork((0, 1, 1), [a, 1.5, 0.0], loss="linear")
    p = sigmoid(a)
    assert arm_descent_probability(net, [], [1.0]) == pytest.approx(2 * min(p, 1 - p), rel=1e-12)


def test_uniform_sum_tail_closed_forms():
    from fractions import Fraction as F

    from gradstat.claims.arm import _uniform_sum_above

    assert _uniform_sum_above([F(1), F(1)], F(3, 2)) == F(1, 8)  # triangle density
    assert _uniform_sum_above([F(1), F(-1)], F(0)) == F(1, 2)  # symmetric
    assert _uniform_sum_above([F(2), F(1), F(1)], F(4)) == 0
    assert _uniform_sum_above([], F(-1)) == 1


def test_arm_descent_probability_against_monte_carlo():
    # 200,000 seeded draws: |z| <= 5 has a false-alarm rate below 6e-7.
    from gradstat.claims.arm import arm_descent_probability

    net = gs.BinaryNetwork.random((2, 3, 1), loss="bce", seed=1)
    x, t = np.array([0.4, -1.1]), np.array([0.3])
    exact = arm_descent_probability(net, x, t)
    draws = gs.sample_gradients(net, x, t, "arm", 200_000, seed=5)
    stoch = net.parameter_groups()["stochastic"]
    g = gs.exact_gradient(net, x, t)[stoch]
    freq = float(np.mean(draws[:, stoch] @ g > 0))
    assert abs(freq - exact) <= 5 * np.sqrt(exact * (1 - exact) / len(draws))
    assert 0.05 < exact < 0.95
