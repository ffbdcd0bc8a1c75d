"""User estimators: plain Python callables and jitted per-state functions."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import example, given

import gradstat as gs
from gradstat.strategies import problems


@numba.njit
def score_function_per_state(theta, sizes, x, t, u, a, p, h, y, dy, loss_value, out):
    """REINFORCE without a baseline, written from SPEC in the full layout."""
    off = 0
    start = 0
    prev = x
    L = sizes.shape[0] - 2
    for l in range(L):
        n_prev, n = sizes[l], sizes[l + 1]
        for i in range(n):
            r = loss_value * (h[start + i] - p[start + i])
            for j in range(n_prev):
                out[off + i * n_prev + j] = r * prev[j]
            out[off + n_prev * n + i] = r
        off += n_prev * n + n
        prev = h[start : start + n]
        start += n
    n_prev, n_out = sizes[L], sizes[L + 1]
    for k in range(n_out):
        for j in range(n_prev):
            out[off + k * n_prev + j] = dy[k] * prev[j]
        out[off + n_prev * n_out + k] = dy[k]


@numba.njit
def logistic_noise_per_state(theta, sizes, x, t, u, a, p, h, y, dy, loss_value, out):
    """A continuous-noise toy: writes the logistic noise of unit 0 into the last entry."""
    out[out.shape[0] - 1] = np.log(u[0]) - np.log1p(-u[0])


USER_REINFORCE = gs.per_state_estimator(
    score_function_per_state, name="my_reinforce", unbiased=True
)


# Found by Hypothesis: the layer-2 gradient is zero up to rounding (W_o has a 1e-5 entry
# and exact zeros), so <g_hat, g> there is a sign of rounding noise in either code.
_FRAGILE_DESCENT = (
    gs.BinaryNetwork(
        (1, 2, 1, 1, 1),
        np.array(
            [
                -2.0,
                -0.506211156,
                -1.40054304,
                1 / 3,
                0.754480221,
                0.0,
                -1.58332461,
                0.0,
                1.02,
                -0.471252243,
                1e-05,
            ]
        ),  # fmt: skip
        loss="bce",
    ),
    np.array([[0.7]]),
    np.array([[0.0]]),
)


@example(_FRAGILE_DESCENT)
@given(problems(max_stochastic=5, max_batch=2))
def test_per_state_user_estimator_matches_builtin_exactly(problem):
    net, X, T = problem
    mine = gs.estimator_moments(net, X, T, USER_REINFORCE, full_cov=True)
    ref = gs.estimator_moments(net, X, T, "reinforce", full_cov=True)
    np.testing.assert_allclose(mine.mean, ref.mean, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(mine.var, ref.var, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(mine.cov, ref.cov, rtol=1e-12, atol=1e-13)
    # Descent probabilities compare only where no gradient coordinate is zero up to
    # rounding (there the sign of <g_hat, g> is rounding noise in either code).
    g = ref.example_gradient
    if not np.any((np.abs(g) > 0) & (np.abs(g) < 1e-9)):
        np.testing.assert_allclose(mine.descent_probability, ref.descent_probability, atol=1e-12)
    assert gs.analyze(net, X, T, USER_REINFORCE).method == "exact"


def test_per_state_user_estimator_samples_like_builtin():
    net = gs.BinaryNetwork.random((3, 3, 2, 2), loss="bce", seed=1)
    X = np.random.default_rng(0).normal(size=(2, 3))
    T = np.array([[1.0, 0.0], [0.2, 0.7]])
    mine = gs.sample_gradients(net, X, T, USER_REINFORCE, 500, seed=3)
    ref = gs.sample_gradients(net, X, T, "reinforce", 500, seed=3)
    np.testing.assert_allclose(mine, ref, rtol=1e-13, atol=1e-15)
    u = np.random.default_rng(1).random((2, net.n_stochastic))
    np.testing.assert_allclose(
        gs.estimate_from_noise(net, X, T, USER_REINFORCE, u),
        gs.estimate_from_noise(net, X, T, "reinforce", u),
        rtol=1e-13,
        atol=1e-15,
    )


def test_continuous_per_state_estimator_sees_its_uniforms():
    net = gs.BinaryNetwork.random((1, 2, 1), seed=0)
    est = gs.per_state_estimator(logistic_noise_per_state, noise="continuous")
    u = np.array([0.25, 0.5])
    got = gs.estimate_from_noise(net, [1.0], [0.0], est, u)
    assert got[-1] == pytest.approx(np.log(0.25 / 0.75))
    with pytest.raises(ValueError, match="continuous or undeclared noise"):
        gs.estimator_moments(net, [1.0], [0.0], est)
    assert gs.analyze(net, [1.0], [0.0], est, n_samples=100, seed=0).method == "mc"


def python_st_sigmoid(net, x, t, rng):
    """A plain Python estimator: sigmoid straight-through through the public API."""
    return gs.estimate_from_noise(net, x, t, "st_sigmoid", rng.random(net.n_stochastic))


def test_python_callable_is_monte_carlo_and_agrees_with_exact():
    """Seeded; each scalar within 5 jackknife standard errors (about 6e-7 false alarms
    per scalar under normality)."""
    net = gs.BinaryNetwork.random((2, 2, 2, 1), loss="mse", seed=5)
    x, t = np.array([0.5, -1.0]), np.array([0.3])
    mc = gs.analyze(net, x, t, python_st_sigmoid, n_samples=3000, seed=11)
    exact = gs.analyze(net, x, t, "st_sigmoid")
    assert mc.method == "mc" and mc.estimator == "python_st_sigmoid"
    for metric in ("total_variance", "mse", "cosine", "descent_probability"):
        se = getattr(mc.standard_errors["all"], metric)
        if metric in mc.uncalibrated["all"]:
            # A cosine this close to 1 has no calibrated error bar at 3000 draws: the
            # result says so (NaN) rather than giving a wrong one.
            assert np.isnan(se)
            continue
        assert abs(getattr(mc, metric) - getattr(exact, metric)) <= 5 * se + 1e-12
    draws = gs.sample_gradients(net, x, t, python_st_sigmoid, 50, seed=2)
    assert np.array_equal(draws, gs.sample_gradients(net, x, t, python_st_sigmoid, 50, seed=2))


def test_python_callable_gets_options_and_batches():
    seen = []

    def scaled(net, x, t, rng, factor=1.0):
        seen.append((x.shape, factor))
        return factor * np.ones(net.n_params)

    net = gs.BinaryNetwork.random((2, 2, 3), loss="xent", seed=0)
    X = np.ones((3, 2))
    draws = gs.sample_gradients(net, X, np.array([0, 1, 2]), scaled, 4, seed=0, factor=2.0)
    assert np.all(draws == 2.0) and len(seen) == 12 and seen[0] == ((2,), 2.0)


def test_bad_user_estimators():
    net = gs.BinaryNetwork.random((2, 2, 1), seed=0)
    x, t = np.ones(2), np.zeros(1)
    with pytest.raises(ValueError, match=r"returned shape \(3,\)"):
        gs.sample_gradients(net, x, t, lambda net, x, t, rng: np.zeros(3), 2, seed=0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        gs.sample_gradients(net, x, t, lambda n, x, t, rng: np.full(n.n_params, np.nan), 2, seed=0)
    with pytest.raises(TypeError, match="must be wrapped"):
        gs.analyze(net, x, t, score_function_per_state)
    with pytest.raises(TypeError, match="needs a numba-jitted function"):
        gs.per_state_estimator(python_st_sigmoid)
    with pytest.raises(TypeError, match="takes no options"):
        gs.analyze(net, x, t, USER_REINFORCE, baseline="mean")
    with pytest.raises(ValueError, match="noise must be one of"):
        gs.per_state_estimator(score_function_per_state, noise="gaussian")
    with pytest.raises(TypeError, match="estimator must be a registered name"):
        gs.analyze(net, x, t, 3.5)
    with pytest.raises(TypeError, match="plain Python estimator draws its own noise"):
        gs.estimate_from_noise(net, x, t, python_st_sigmoid, [0.5, 0.5])
