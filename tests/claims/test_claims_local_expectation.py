"""LEG claims: the kept counterexamples where a baseline beats LEG."""

from __future__ import annotations

from math import log

import pytest

import gradstat as gs
import gradstat.claims as gc


def test_every_reported_leg_counterexample_is_beaten_by_a_baseline(results):
    r = results["leg_le_reinforce"]
    assert set(gc.KEPT_LEG_COUNTEREXAMPLES) <= set(r.counterexamples)
    assert len(r.counterexamples) >= len(gc.KEPT_LEG_COUNTEREXAMPLES)
    for cx in r.counterexamples:
        net = cx.network()
        assert net.n_layers >= 2 and cx.estimator == "leg"
        gaps = gc.leg_variance_gaps(net, cx.x, cx.t, gc.LEG_DEEP_BASELINES)
        assert max(gap for gap, *_ in gaps.values()) > 1e-6, cx
        # ... while REINFORCE without a baseline never beats LEG.
        assert gc.leg_variance_gaps(net, cx.x, cx.t, ["none"])["none"][0] <= gc.TOL


def test_leg_evidence_numbers(results):
    assert "Kept counterexamples confirmed exactly (2 of 2)" in results["leg_le_reinforce"].evidence


def test_leg_constant_loss_counterexample(sigmoid, moments):
    # C = log 2 for every state; h1 ~ B(1/2), h2 ~ B(s(h1)). LEG on b_1 is C (w1(h2) - 1/2)
    # with w1(h2) = P(h1 = 1 | h2); REINFORCE with the mean baseline is (C - C)(h1 - 1/2) = 0.
    cx = gc.LEG_CONSTANT_LOSS
    q1 = 0.5 * (sigmoid(1.0) + sigmoid(0.0))  # P(h2 = 1)
    w_on = 0.5 * sigmoid(1.0) / q1
    w_off = 0.5 * sigmoid(-1.0) / (1 - q1)
    var = log(2) ** 2 * (q1 * (w_on - 0.5) ** 2 + (1 - q1) * (w_off - 0.5) ** 2)
    leg = moments(cx, "leg")
    assert leg.var[0] == pytest.approx(var, rel=1e-12)
    assert leg.var[0] == pytest.approx(0.0067743, abs=1e-7)
    assert leg.mean[0] == pytest.approx(0.0, abs=1e-15) and leg.gradient[0] == 0.0
    ref = gs.estimator_moments(cx.network(), cx.x, cx.t, "reinforce", baseline="mean")
    assert ref.var[0] == pytest.approx(0.0, abs=1e-15)


def test_leg_two_layer_mse_counterexample(sigmoid, moments):
    # h1 ~ B(1/2), h2 ~ B(s(h1)), C = 0.5 (h2 / 8 - 1)^2: enumerate the four states.
    cx = gc.LEG_TWO_LAYERS_MSE

    def loss(h2: int) -> float:
        return 0.5 * (h2 / 8 - 1) ** 2

    states = [
        (h1, h2, 0.5 * (sigmoid(h1) if h2 else sigmoid(-h1))) for h1 in (0, 1) for h2 in (0, 1)
    ]
    q1 = sum(w for _, h2, w in states if h2 == 1)
    post = {1: 0.5 * sigmoid(1.0) / q1, 0: 0.5 * sigmoid(-1.0) / (1 - q1)}
    mean_c = sum(w * loss(h2) for _, h2, w in states)

    def variance(values: list[float]) -> float:
        m = sum(w * v for (_, _, w), v in zip(states, values))
        return sum(w * (v - m) ** 2 for (_, _, w), v in zip(states, values))

    leg_var = variance([loss(h2) * (post[h2] - 0.5) for _, h2, _ in states])
    ref_var = variance([(loss(h2) - mean_c) * (h1 - 0.5) for h1, h2, _ in states])
    assert moments(cx, "leg").var[0] == pytest.approx(leg_var, rel=1e-12)
    assert leg_var == pytest.approx(0.0029183, abs=1e-7)
    for baseline in ("mean", "optimal"):  # s^2 = 1/4 constant: optimal = mean on b_1
        ref = gs.estimator_moments(cx.network(), cx.x, cx.t, "reinforce", baseline=baseline)
        assert ref.var[0] == pytest.approx(ref_var, rel=1e-12)
    assert ref_var == pytest.approx(0.0007667, abs=1e-7)
    none = gs.estimator_moments(cx.network(), cx.x, cx.t, "reinforce", baseline="none")
    assert none.var[0] > leg_var
