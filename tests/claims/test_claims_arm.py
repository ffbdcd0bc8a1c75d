"""ARM and DisARM claims: one-unit closed forms."""

from __future__ import annotations

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
