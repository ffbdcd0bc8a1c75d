"""ARM's exact descent probability in analyze's exact result (engines.arm_descent).

Checked against the one-unit closed form and against seeded Monte Carlo with a stated
false-alarm rate; beyond the bound on N it stays NaN.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import gradstat as gs
from gradstat.engines.arm_descent import ARM_DESCENT_MAX_UNITS, uniform_sum_above


@pytest.mark.parametrize("a", [-1.3, 0.4, 2.0])
def test_one_unit_descends_on_the_two_outer_cells(a):
    # C = 1.5 h: ARM is -1.5 (u - 1/2) on the low cell, +1.5 (u - 1/2) on the high one and
    # 0 in the middle; the output layer (h at the pair's mean) has no parameter but b_o = 0.
    net = gs.BinaryNetwork((0, 1, 1), [a, 1.5, 0.0], loss="linear")
    r = gs.analyze(net, [], [1.0], "arm")
    p = 1.0 / (1.0 + np.exp(-a))
    assert r.engine == "cells"
    assert r.stochastic.descent_probability == pytest.approx(2 * min(p, 1 - p), rel=1e-12)
    assert r.layers["layer1"].descent_probability == r.stochastic.descent_probability


def test_irwin_hall_tail_of_three_equal_uniforms():
    # P(U1 + U2 + U3 > 2) = 1/6 (the Irwin-Hall density's upper corner).
    assert uniform_sum_above([Fraction(1)] * 3, Fraction(2)) == Fraction(1, 6)


@pytest.mark.parametrize("values", ["01", "pm1"])
def test_descent_matches_seeded_monte_carlo(values):
    """Per example and scope (2 x 4 probabilities), the frequency of <g_hat, g> > 0 over
    200,000 seeded draws lies within 5 binomial standard errors of the exact value; the
    false-alarm rate is below 5e-6 under the normal approximation."""
    net = gs.BinaryNetwork.random((2, 3, 2), loss="bce", values=values, scale=1.5, seed=7)
    X = np.array([[0.4, -1.1], [1.2, 0.3]])
    T = np.array([[1.0, 0.0], [0.0, 1.0]])
    r = gs.analyze(net, X, T, "arm")
    assert (r.method, r.engine) == ("exact", "cells")
    groups = net.parameter_groups()
    n = 200_000
    for b in range(2):
        g = gs.exact_gradient(net, X[b], T[b])
        draws = gs.sample_gradients(net, X[b], T[b], "arm", n, seed=11 + b)
        one = gs.analyze(net, X[b], T[b], "arm")
        for scope in ("layer1", "output", "all", "stochastic"):
            part = slice(None) if scope == "all" else groups[scope]
            metrics = one.overall if scope == "all" else (
                one.stochastic if scope == "stochastic" else one.layers[scope]
            )  # fmt: skip
            p = metrics.descent_probability
            freq = float(np.mean(draws[:, part] @ g[part] > 0))
            assert abs(freq - p) <= 5 * np.sqrt(max(p * (1 - p), 1e-12) / n), (b, scope)
    # The batch result averages the per-example probabilities.
    first = gs.analyze(net, X[0], T[0], "arm").overall.descent_probability
    second = gs.analyze(net, X[1], T[1], "arm").overall.descent_probability
    assert r.overall.descent_probability == pytest.approx((first + second) / 2, rel=1e-14)


def test_beyond_the_bound_descent_stays_nan():
    net = gs.BinaryNetwork.random((1, ARM_DESCENT_MAX_UNITS + 1, 1), seed=2)
    r = gs.analyze(net, [0.5], [0.2], "arm")
    assert r.engine == "cells" and np.isnan(r.overall.descent_probability)
    assert np.isfinite(r.overall.sign_agreement)
