"""PSA claims: the registry's verdict, and a two-layer estimate worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

import gradstat as gs
import gradstat.claims as gc


def test_psa_exact_cases_are_proved():
    r = gc.CLAIMS["psa_exact_cases"].check(max_examples=settings.default.max_examples)
    assert r.verdict == "proved"
    assert r.evidence.count("no violation in") == 2


@pytest.mark.parametrize("a", [-1.5, 0.0, 2.0])
def test_one_unit_psa_is_the_local_expectation(a, dsigmoid):
    # C = (h - 0.25)^2: C(1) - C(0) = 0.5, whichever value the unit took.
    net = gs.BinaryNetwork((0, 1, 1), [a, 2**0.5, 0.0], loss="mse")
    t = [2**0.5 * 0.25]
    for u in (0.01, 0.99):
        assert gs.estimate_from_noise(net, [], t, "psa", [u])[0] == pytest.approx(
            dsigmoid(a) * 0.5, rel=1e-13
        )


def test_two_layer_psa_by_hand(sigmoid, dsigmoid):
    # (0, 1, 1, 1), linear loss C = w_o h_2 (+ b_o): a_1 = b_1, a_2 = w_2 h_1 + b_2.
    b1, w2, b2, wo = 0.3, -1.2, 0.4, 0.8
    net = gs.BinaryNetwork((0, 1, 1, 1), [b1, w2, b2, wo, 0.0], loss="linear")
    for h1 in (0.0, 1.0):
        for h2 in (0.0, 1.0):
            a2 = w2 * h1 + b2
            # u that draws (h1, h2): below p for a 1, above it for a 0.
            u = [sigmoid(b1) / 2 if h1 else (1 + sigmoid(b1)) / 2,
                 sigmoid(a2) / 2 if h2 else (1 + sigmoid(a2)) / 2]  # fmt: skip
            s1, s2 = 2 * h1 - 1, 2 * h2 - 1
            G2 = wo * (1 - h2) - wo * h2  # C(h_2 flipped) - C(h)
            flip = a2 + w2 * (1 - 2 * h1)  # a_2 with h_1 flipped
            G1 = G2 * (sigmoid(-s2 * flip) - sigmoid(-s2 * a2))
            want_b2 = -s2 * dsigmoid(a2) * G2
            want_b1 = -s1 * dsigmoid(b1) * G1
            got = gs.estimate_from_noise(net, [], [1.0], "psa", u)
            np.testing.assert_allclose(got, [want_b1, want_b2 * h1, want_b2, h2, 1.0],
                                       rtol=1e-13, atol=1e-15)  # fmt: skip
    # On a chain the one-flip expansion is exact: E[C | h_1] is linear in P(h_2 | h_1).
    m = gs.estimator_moments(net, [], [1.0], "psa")
    np.testing.assert_allclose(m.mean, m.gradient, rtol=1e-13, atol=1e-16)
    # Two units above: flipping h_1 moves both, and the joint flips PSA drops carry bias.
    wide = gs.BinaryNetwork((0, 1, 2, 1), [b1, w2, -w2, b2, 0.1, wo, -wo, 0.0], loss="mse")
    m = gs.estimator_moments(wide, [], [1.0], "psa")
    assert abs(m.mean[0] - m.gradient[0]) > 1e-4 * abs(m.gradient[0])
    np.testing.assert_allclose(m.mean[1:], m.gradient[1:], rtol=1e-12, atol=1e-15)
