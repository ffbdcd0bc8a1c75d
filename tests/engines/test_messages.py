"""The layer-by-layer engine against joint enumeration and finite differences."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from reference import precise_enumerator as pe
from shared import cases

import gradstat as gs
from gradstat.engines.gradient import gradient_engine, gradient_pass
from gradstat.engines.message_moments import layerwise_gradient
from gradstat.kernels.forward import layer1_table
from gradstat.problem import expand_mean, make_problem
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
    eps = 1e-4  # central differences: truncation ~1e-12 here, round-off ~1e-11
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
    # STS is not Markov in the layer states, so "auto" falls back to Monte Carlo.
    net = gs.BinaryNetwork.random((4,) + (6,) * 10 + (1,), loss="mse", seed=1)
    x, t = np.ones(4), np.zeros(1)
    r = gs.analyze(net, x, t, "sts", n_samples=200, seed=0)
    assert r.method == "mc" and r.engine == "monte-carlo" and np.all(np.isfinite(r.gradient))
    np.testing.assert_array_equal(r.gradient, gs.exact_gradient(net, x, t))
    assert r.standard_errors["all"].mse > 0


def _one_thread_and_all(compute):
    """``compute()`` on one numba thread, then on all of them (restored however it ends)."""
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = compute()
        numba.set_num_threads(before)
        return one, compute()
    finally:
        numba.set_num_threads(before)


def test_identical_for_any_thread_count():
    net = gs.BinaryNetwork.random((3, 9, 9, 9, 2), loss="xent", seed=2)
    X, T = np.random.default_rng(1).normal(size=(2, 3)), np.array([0, 1])
    one, many = _one_thread_and_all(lambda: gs.exact_gradient(net, X, T))
    assert np.array_equal(one, many)


# --- Exact moments by messages ------------------------------------------------------

LAYERWISE = cases(
    "st st_sigmoid st_tempered:tau=0.4 reinmax:tau=1.0 reinmax:tau=2.5 reinforce "
    "reinforce:baseline=0.75 reinforce:baseline=mean reinforce:baseline=optimal"
)


def _close(a, b, rtol=1e-10, floor=0.0):
    """Agreement to ``rtol`` relative to each array's largest entry (and per entry), or
    within ``floor``."""
    scale = max(np.abs(b).max(), 1e-300)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=max(rtol * scale, floor))


def _close_var(msgs, joint, rtol=1e-9):
    """Variances agree to ``rtol`` relative to ``E[g_hat_j^2] = var_j + mean_j^2`` per
    coordinate (and to the largest such value): the precision float64 allows a variance
    that is tiny beside its mean."""
    for var, ref, mean in (
        (msgs.example_var, joint.example_var, joint.example_mean),
        (msgs.var, joint.var, joint.mean),
    ):
        second = ref + mean**2
        bound = rtol * (second + 1e-6 * second.max()) + 1e-300
        excess = np.abs(var - ref) - bound
        assert np.all(excess <= 0), (np.max(excess), np.argmax(excess))


@given(
    problems(
        min_depth=1,
        max_depth=4,
        max_width=3,
        max_stochastic=9,
        max_batch=2,
        values=("01", "pm1"),
    ),  # fmt: skip
    st.sampled_from(LAYERWISE),
)
@example(  # an all-zero network: the joint mean is rounding noise about an exact 0
    problem=(gs.BinaryNetwork((0, 2, 1, 1, 1, 1), np.zeros(11), loss="mse"), np.zeros((1, 0)),
             np.zeros((1, 1))),
    estimator=("reinforce", {"baseline": 0.75}),
)  # fmt: skip
def test_layerwise_moments_match_joint_enumeration(problem, estimator):
    net, X, T = problem
    name, options = estimator
    joint = gs.estimator_moments(net, X, T, name, engine="joint", **options)
    msgs = gs.estimator_moments(net, X, T, name, engine="layerwise", **options)
    assert joint.engine == "joint" and msgs.engine == "layerwise"
    _close(msgs.example_gradient, joint.example_gradient)
    # A mean that cancels to nothing is compared at the rounding of sums over states
    # whose estimates are as large as sqrt(E[g_hat^2]).
    second = max((joint.example_var + joint.example_mean**2).max(), np.finfo(float).tiny)
    _close(msgs.example_mean, joint.example_mean, floor=1e-13 * np.sqrt(second))
    _close_var(msgs, joint)
    assert np.isnan(msgs.sign_probability).all() and np.isnan(msgs.descent_probability).all()


@pytest.mark.parametrize("name, options", LAYERWISE)
def test_layerwise_moments_deep_and_extreme(name, options):
    # Pre-activations of several hundred: every probability saturates; all stays finite
    # and equal to joint enumeration (2^12 joint states).
    net = gs.BinaryNetwork.random((2, 3, 3, 3, 3, 2), loss="bce", scale=300.0, seed=4)
    X, T = np.array([[0.5, -1.0], [1.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    joint = gs.estimator_moments(net, X, T, name, engine="joint", **options)
    msgs = gs.estimator_moments(net, X, T, name, engine="layerwise", **options)
    assert np.all(np.isfinite(msgs.mean)) and np.all(np.isfinite(msgs.var))
    _close(msgs.mean, joint.mean)
    _close_var(msgs, joint)


def test_auto_engine_chooses_by_cost():
    x, t = np.ones(2), np.zeros(1)
    small = gs.BinaryNetwork.random((2, 4, 4, 1), seed=0)
    deep = gs.BinaryNetwork.random((2,) + (6,) * 10 + (1,), seed=0)
    assert gs.analyze(small, x, t, "st_sigmoid").engine == "joint"
    r = gs.analyze(deep, x, t, "st_sigmoid")
    assert (r.method, r.engine) == ("exact", "layerwise")
    assert np.isnan(r.sign_agreement) and np.isnan(r.descent_probability)
    assert np.isfinite(r.mse) and r.total_variance > 0
    assert gs.analyze(deep, x, t, "reinforce", baseline="optimal").engine == "layerwise"
    # Not Markov, or no exact moments at all: Monte Carlo.
    assert gs.analyze(deep, x, t, "leg", n_samples=50, seed=0).engine == "monte-carlo"
    # A cap below the widest pair of layers: not even the exact reference gradient fits.
    with pytest.raises(ValueError, match="too wide to compute exactly"):
        gs.analyze(deep, x, t, "st_sigmoid", max_states=2**11, n_samples=50, seed=0)


def test_deep_moments_agree_with_monte_carlo():
    # 8 layers of 5 units (2^40 joint states): messages against 20,000 draws. Per
    # coordinate, |mean_mc - mean| < 6 sqrt(var / n) (about 120 z-tests at 2e-9 each under
    # the normal approximation); the total variance, as the mean of ||g_hat - mean_mc||^2,
    # within 6 of its standard errors.
    net = gs.BinaryNetwork.random((3,) + (5,) * 8 + (2,), loss="mse", scale=1.5, seed=5)
    x, t = np.array([0.5, -1.0, 1.5]), np.array([0.3, -0.2])
    n = 20_000
    for name, options in [("st_sigmoid", {}), ("reinforce", {"baseline": "optimal"})]:
        exact = gs.estimator_moments(net, x, t, name, **options)
        assert exact.engine == "layerwise"
        draws = gs.sample_gradients(net, x, t, name, n_samples=n, seed=11, **options)
        mean = draws.mean(axis=0)
        live = exact.var > 0
        z = (mean[live] - exact.mean[live]) / np.sqrt(exact.var[live] / n)
        assert np.all(np.abs(z) < 6), (name, np.abs(z).max())
        np.testing.assert_array_equal(mean[~live], exact.mean[~live])
        q = ((draws - mean) ** 2).sum(axis=1) * n / (n - 1)
        se = q.std() / np.sqrt(n)
        assert abs(q.mean() - exact.var.sum()) < 6 * se, (name, q.mean(), exact.var.sum())


def test_layerwise_moments_identical_for_any_thread_count():
    net = gs.BinaryNetwork.random((3, 7, 7, 7, 2), loss="xent", seed=2)
    X, T = np.random.default_rng(1).normal(size=(2, 3)), np.array([0, 1])
    one, many = _one_thread_and_all(
        lambda: gs.estimator_moments(net, X, T, "reinmax", engine="layerwise")
    )
    assert np.array_equal(one.mean, many.mean) and np.array_equal(one.var, many.var)


def test_layerwise_refusals_name_the_reason():
    net = gs.BinaryNetwork.random((2, 3, 3, 1), seed=0)
    x, t = np.ones(2), np.zeros(1)
    with pytest.raises(ValueError, match="not Markov"):
        gs.estimator_moments(net, x, t, "sts", engine="layerwise")
    with pytest.raises(ValueError, match="adjacent layers' states"):
        gs.estimator_moments(net, x, t, "leg", engine="layerwise")
    with pytest.raises(ValueError, match="full_cov needs joint enumeration"):
        gs.estimator_moments(net, x, t, "st", engine="layerwise", full_cov=True)
    with pytest.raises(ValueError, match="max_states"):
        gs.estimator_moments(net, x, t, "st", engine="layerwise", max_states=16)
    with pytest.raises(ValueError, match="engine must be one of"):
        gs.analyze(net, x, t, "st", engine="messages")
    with pytest.raises(ValueError, match="use engine 'joint', not 'cells'"):
        gs.estimator_moments(net, x, t, "st", engine="cells")
    # full_cov under "auto" keeps joint enumeration.
    assert gs.estimator_moments(net, x, t, "st", full_cov=True).engine == "joint"


@pytest.mark.parametrize("a", [40.0, -40.0, 700.0, -700.0, 3.0])
@pytest.mark.parametrize("baseline", [0.0, 1.3, "optimal"])
def test_reinforce_messages_at_near_certain_units(a, baseline):
    # A unit of each layer at pre-activation a: the score's 1 - p is sigmoid(-a) (the
    # expanded 1 - p loses all relative precision by a = 37). The 400-digit enumeration
    # takes a constant baseline; the optimal one is checked through its sums' identity
    # E[g_hat] = g (unbiased whatever the baseline).
    sizes = (1, 2, 2, 1)
    theta = np.array([0.4, -0.3, a, 0.1, 0.3, -0.2, 0.5, 0.1, a, 0.2, 0.9, -1.1, 0.3])
    net = gs.BinaryNetwork(sizes, theta, loss="mse")
    x, t = np.array([0.7]), np.array([0.4])
    m = gs.estimator_moments(net, x, t, "reinforce", baseline=baseline, engine="layerwise")
    c = 0.0 if baseline == "optimal" else baseline
    ref = pe.example_moments(sizes, theta, "mse", x, t, "reinforce", c)
    np.testing.assert_allclose(m.mean, pe.to_float(ref["mean"]), rtol=1e-12)
    np.testing.assert_allclose(m.gradient, pe.to_float(ref["gradient"]), rtol=1e-12)
    if baseline != "optimal":
        np.testing.assert_allclose(m.var, pe.to_float(ref["var"]), rtol=1e-12)
