"""The enumeration engine against independent computations.

* ``naive_enumerator`` (plain NumPy + itertools, written from SPEC with no shared code)
  for the expected loss, the exact gradient and every estimator's mean, variance,
  covariance, sign-agreement and descent probabilities;
* central finite differences of the exact expected loss;
* closed forms for one-unit networks.
"""

from __future__ import annotations

import naive_enumerator as ne
import numba
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import gradstat as gs
from gradstat.strategies import problems

ESTIMATOR_CASES = [
    ("st", {}),
    ("st_sigmoid", {}),
    ("sts", {}),
    ("reinforce", {}),
    ("reinforce", {"baseline": 0.7}),
    ("reinforce", {"baseline": "mean"}),
    ("reinforce", {"baseline": "optimal"}),
]


def _naive(net, X, T, name="st", baseline="none"):
    return ne.batch_moments(net.sizes, net.params, net.loss, X, list(T), name, baseline)


@given(problems(max_stochastic=7))
def test_expected_loss_and_gradient_match_naive(problem):
    net, X, T = problem
    want_loss = ne.expected_loss(net.sizes, net.params, net.loss, X, list(T))
    want_grad = ne.exact_gradient(net.sizes, net.params, net.loss, X, list(T))
    assert gs.expected_loss(net, X, T) == pytest.approx(want_loss, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(gs.exact_gradient(net, X, T), want_grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("name", "options"), ESTIMATOR_CASES)
@given(problem=problems(max_stochastic=6, max_batch=2))
def test_estimator_moments_match_naive(name, options, problem):
    net, X, T = problem
    got = gs.estimator_moments(net, X, T, name, full_cov=True, **options)
    want = _naive(net, X, T, name, options.get("baseline", "none"))
    np.testing.assert_allclose(got.gradient, want["gradient"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.mean, want["mean"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.var, want["var"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.cov, want["cov"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.diag(got.cov), got.var, rtol=1e-10, atol=1e-12)
    for b, ex in enumerate(want["examples"]):
        np.testing.assert_allclose(got.example_mean[b], ex["mean"], rtol=1e-10, atol=1e-10)
        # The per-coordinate probability is compared where the gradient is clearly non-zero:
        # where g_j is 0 up to rounding, sign(g_j) is itself a rounding artefact.
        clear = np.abs(ex["gradient"]) > 1e-9
        np.testing.assert_allclose(
            got.sign_probability[b][clear], ex["sign_probability"][clear], atol=1e-10
        )
        assert got.descent_probability[b, -2] == pytest.approx(ex["descent_probability"], abs=1e-10)


@pytest.mark.parametrize("loss", ["mse", "bce", "xent", "linear"])
def test_gradient_matches_finite_differences(loss):
    net = gs.BinaryNetwork.random((3, 3, 2, 3), loss=loss, scale=1.5, seed=11)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2, 3))
    T = np.array([0, 2]) if loss == "xent" else rng.uniform(size=(2, 3))
    g = gs.exact_gradient(net, X, T)
    eps = 1e-6
    fd = np.empty(net.n_params)
    for j in range(net.n_params):
        up, down = net.params.copy(), net.params.copy()
        up[j] += eps
        down[j] -= eps
        fd[j] = (
            gs.expected_loss(net.with_params(up), X, T)
            - gs.expected_loss(net.with_params(down), X, T)
        ) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def _one_unit(a: float, t: float) -> gs.BinaryNetwork:
    """``n_in = 0``, one unit with logit ``a``, ``y = h``: loss ``0.5 (h - t)^2``."""
    return gs.BinaryNetwork((0, 1, 1), [a, 1.0, 0.0], loss="mse")


@pytest.mark.parametrize("a", [-2.0, 0.0, 2.0])
@pytest.mark.parametrize("t", [0.45, 0.499])
def test_one_unit_closed_forms(a, t):
    net = _one_unit(a, t)
    x, target = np.zeros(0), np.array([t])
    p = 1 / (1 + np.exp(-a))
    dp = p * (1 - p)
    c1, c0 = 0.5 * (1 - t) ** 2, 0.5 * t**2
    # Parameters: b_1, W_o, b_o.
    want_grad = [dp * (c1 - c0), p * (1 - t), p * (1 - t) + (1 - p) * (-t)]
    assert gs.expected_loss(net, x, target) == pytest.approx(p * c1 + (1 - p) * c0, rel=1e-14)
    np.testing.assert_allclose(gs.exact_gradient(net, x, target), want_grad, rtol=1e-13)

    # dC/dh = h - t; st_sigmoid: dp (h - t); st: (h - t); sts: h = b sqrt(p),
    # surrogate b sqrt(p)(1-p)/2.
    m = gs.estimator_moments(net, x, target, "st_sigmoid")
    assert m.mean[0] == pytest.approx(dp * (p - t), rel=1e-13)
    assert m.var[0] == pytest.approx(dp**2 * p * (1 - p), rel=1e-12)
    m = gs.estimator_moments(net, x, target, "st")
    assert m.mean[0] == pytest.approx(p - t, rel=1e-13)
    assert m.var[0] == pytest.approx(p * (1 - p), rel=1e-12)
    q = np.sqrt(p)
    m = gs.estimator_moments(net, x, target, "sts")
    jac = q * (1 - p) / 2
    assert m.mean[0] == pytest.approx(q * jac * (q - t), rel=1e-12)
    assert m.var[0] == pytest.approx(q * (jac * (q - t)) ** 2 - (q * jac * (q - t)) ** 2, rel=1e-10)
    # REINFORCE: (C(h) - c)(h - p); the optimal constant is (1-p) C(1) + p C(0) and then
    # the estimate is dp (C(1) - C(0)) for both values of h: zero variance.
    m = gs.estimator_moments(net, x, target, "reinforce", baseline="optimal")
    assert m.mean[0] == pytest.approx(want_grad[0], rel=1e-12)
    assert m.var[0] == pytest.approx(0.0, abs=1e-15)
    m = gs.estimator_moments(net, x, target, "reinforce")
    assert m.var[0] == pytest.approx(
        p * ((c1 - 0) * (1 - p)) ** 2 + (1 - p) * (c0 * p) ** 2 - want_grad[0] ** 2, rel=1e-10
    )


@given(
    problems(max_stochastic=6, max_batch=2),
    st.floats(-5, 5, allow_nan=False),
)
def test_reinforce_unbiased_and_optimal_baseline_minimal(problem, constant):
    net, X, T = problem
    g = gs.exact_gradient(net, X, T)
    optimal = gs.estimator_moments(net, X, T, "reinforce", baseline="optimal")
    for baseline in ("none", "mean", "optimal", constant):
        m = gs.estimator_moments(net, X, T, "reinforce", baseline=baseline)
        np.testing.assert_allclose(m.mean, g, rtol=1e-10, atol=1e-10)
        assert np.all(optimal.var <= m.var + 1e-12 * (1 + m.var))


def test_max_states_guard_says_what_to_do():
    net = gs.BinaryNetwork.random((2, 12, 1), seed=0)
    with pytest.raises(ValueError, match=r"2\^12 = 4,096 .*method='mc'"):
        gs.exact_gradient(net, np.ones(2), np.zeros(1), max_states=1000)
    with pytest.raises(ValueError, match="max_states"):
        gs.estimator_moments(net, np.ones(2), np.zeros(1), "st", max_states=1000)


def test_continuous_noise_rejected_for_exact_moments():
    spec = gs.Estimator(
        name="test_continuous", code=0, summary="", reference="", unbiased=False,
        noise="continuous",
    )  # fmt: skip
    problem = gs.layout.make_problem(_one_unit(0.0, 0.5), np.zeros(0), np.array([0.5]))
    with pytest.raises(ValueError, match="continuous or undeclared noise"):
        gs.exact.moments_pass(problem, spec, {}, full_cov=False, max_states=2**10)


def test_results_identical_for_any_thread_count():
    net = gs.BinaryNetwork.random((3, 6, 5, 2), loss="bce", seed=3)
    X = np.random.default_rng(0).normal(size=(2, 3))
    T = np.full((2, 2), 0.3)
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in (1, before):
            numba.set_num_threads(threads)
            m = gs.estimator_moments(net, X, T, "reinforce", baseline="optimal")
            draws = gs.sample_gradients(net, X, T, "st_sigmoid", 3000, seed=4)
            runs.append((gs.exact_gradient(net, X, T), m.mean, m.var, draws))
    finally:
        numba.set_num_threads(before)
    for one, many in zip(runs[0], runs[1]):
        assert np.array_equal(one, many)


@example(scale=50.0)
@given(st.floats(10.0, 60.0))
def test_extreme_logits_stay_finite(scale):
    net = gs.BinaryNetwork(
        (1, 2, 2, 2),
        np.r_[
            [scale, -scale],
            [0.0, 0.0],
            [scale, -scale, -scale, scale],
            [0.0, 0.0],
            np.ones(4),
            np.zeros(2),
        ],
        loss="xent",
    )
    x, t = np.ones(1), 1
    assert np.isfinite(gs.expected_loss(net, x, t))
    assert np.all(np.isfinite(gs.exact_gradient(net, x, t)))
    for name in gs.available_estimators():
        if gs.get_estimator(name).exact_engine(net.n_layers) is not None:
            m = gs.estimator_moments(net, x, t, name)
            assert np.all(np.isfinite(m.mean)) and np.all(np.isfinite(m.var))
        assert np.all(np.isfinite(gs.sample_gradients(net, x, t, name, 4, seed=0)))


def test_gray_code_one_layer_kernel_matches_forward_passes():
    """N = 19: chunks of 8192 states, so the Gray-code walk resynchronises mid-chunk."""
    from gradstat.exact import _gradient_kernel, _one_layer_kernel
    from gradstat.forward import BITS, layer1_table
    from gradstat.layout import make_problem

    net = gs.BinaryNetwork.random((2, 19, 2), loss="bce", scale=2.0, seed=6)
    pr = make_problem(net, np.array([[0.5, -1.0], [1.5, 0.2]]), np.array([[1.0, 0.0], [0.3, 0.6]]))
    tab = layer1_table(pr.A1, BITS)
    gray = _one_layer_kernel(pr.theta, pr.sizes, tab, pr.T, pr.loss_code, BITS, True)
    plain = _gradient_kernel(pr.theta, pr.sizes, tab, pr.T, pr.loss_code, BITS, True)
    n1 = 19
    np.testing.assert_allclose(gray[0], plain[0], rtol=1e-12)
    np.testing.assert_allclose(gray[1], plain[1], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gray[2], plain[2][:, :n1], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gray[3], plain[3][:, :n1], rtol=1e-10, atol=1e-13)
    numba.set_num_threads(1)
    try:
        one = _one_layer_kernel(pr.theta, pr.sizes, tab, pr.T, pr.loss_code, BITS, True)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for x, y in zip(one, gray):
        assert np.array_equal(x, y)
