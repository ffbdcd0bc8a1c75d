"""The layer-by-layer engine against joint enumeration and finite differences."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given

import gradstat as gs
from gradstat.exact import gradient_engine, gradient_pass
from gradstat.forward import layer1_table
from gradstat.layerwise import layerwise_gradient
from gradstat.layout import expand_mean, make_problem
from gradstat.strategies import problems


def _layerwise(net, X, T):
    pr = make_problem(net, X, T)
    tab = layer1_table(pr.A1, pr.mode)
    return layerwise_gradient(pr.theta, pr.sizes, tab, pr.X, pr.T, pr.loss_code, pr.low)


@given(problems(min_depth=1, max_depth=4, max_width=3, max_stochastic=9, max_batch=2))
def test_messages_match_joint_enumeration(problem):
    net, X, T = problem
    losses, grads = _layerwise(net, X, T)
    pr = make_problem(net, X, T)
    joint_losses, joint_c, _, _ = gradient_pass(pr)
    np.testing.assert_allclose(losses, joint_losses, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads, expand_mean(pr, joint_c), rtol=1e-10, atol=1e-12)


def test_deep_network_gradient_matches_finite_differences():
    # 8 layers of 5 units: 2^40 joint states, 8 message passes of 2^10 pairs.
    net = gs.BinaryNetwork.random((3,) + (5,) * 8 + (2,), loss="bce", scale=1.5, seed=8)
    assert gradient_engine(net) == "layerwise"
    x, t = np.array([0.5, -1.0, 0.25]), np.array([1.0, 0.0])
    g = gs.exact_gradient(net, x, t)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for j in rng.choice(net.n_params, size=12, replace=False):
        up, down = net.params.copy(), net.params.copy()
        up[j] += eps
        down[j] -= eps
        fd = (gs.expected_loss(net.with_params(up), x, t)
              - gs.expected_loss(net.with_params(down), x, t)) / (2 * eps)  # fmt: skip
        assert fd == pytest.approx(g[j], rel=1e-6, abs=1e-9)


def test_wide_layers_refused_with_advice():
    net = gs.BinaryNetwork.random((2, 12, 12, 1), seed=0)
    with pytest.raises(ValueError, match=r"2\^24 = 16,777,216 pairs .* Monte Carlo"):
        gs.exact_gradient(net, np.ones(2), np.zeros(1), max_states=2**20)


def test_monte_carlo_analysis_of_a_network_too_deep_to_enumerate():
    # 10 layers of 6 units: 2^60 joint states; the reference gradient comes by messages.
    net = gs.BinaryNetwork.random((4,) + (6,) * 10 + (1,), loss="mse", seed=1)
    x, t = np.ones(4), np.zeros(1)
    r = gs.analyze(net, x, t, "st_sigmoid", n_samples=200, seed=0)
    assert r.method == "mc" and np.all(np.isfinite(r.gradient))
    np.testing.assert_array_equal(r.gradient, gs.exact_gradient(net, x, t))
    assert r.standard_errors["all"].mse > 0


def test_identical_for_any_thread_count():
    net = gs.BinaryNetwork.random((3, 9, 9, 9, 2), loss="xent", seed=2)
    X, T = np.random.default_rng(1).normal(size=(2, 3)), np.array([0, 1])
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = gs.exact_gradient(net, X, T)
        numba.set_num_threads(before)
        many = gs.exact_gradient(net, X, T)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, many)
