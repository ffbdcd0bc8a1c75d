"""Self-checks of the naive reference enumerator (no gradstat import needed).

The reference in ``naive_enumerator.py`` is checked against finite differences, against
the unbiasedness of REINFORCE with every baseline, and against closed forms derived by
hand for tiny networks.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from reference import naive_enumerator as ne

# (sizes, batch size): one and two hidden layers, with and without input
NETWORKS = [
    ((2, 3, 2), 2),
    ((2, 2, 2, 3), 2),
    ((0, 2, 2), 1),
    ((0, 2, 1, 2), 1),
]
LOSSES = ["mse", "bce", "xent", "linear"]


def _sigmoid(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a))


def _problem(sizes, batch, loss, seed=0):
    """Random parameters, inputs and targets of the right kind for ``loss``."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, ne.n_params(sizes))
    X = rng.normal(0.0, 1.0, (batch, sizes[0]))
    n_out = sizes[-1]
    if loss == "xent":
        T = [int(k) for k in rng.integers(0, n_out, batch)]
    elif loss == "bce":
        T = [rng.uniform(0.0, 1.0, n_out) for _ in range(batch)]
    else:
        T = [rng.normal(0.0, 1.0, n_out) for _ in range(batch)]
    return theta, X, T


def test_layout_covers_theta_in_order():
    sizes = (3, 2, 4, 2)
    entries = ne.layout(sizes)
    assert [shape for _, _, shape in entries] == [(2, 3), (4, 2), (2, 4)]
    covered = []
    for w_slice, b_slice, shape in entries:
        assert w_slice.stop - w_slice.start == shape[0] * shape[1]
        assert b_slice.start == w_slice.stop
        assert b_slice.stop - b_slice.start == shape[0]
        covered += list(range(w_slice.start, b_slice.stop))
    assert covered == list(range(ne.n_params(sizes)))
    assert ne.n_params(sizes) == 6 + 2 + 8 + 4 + 8 + 2
    assert ne.n_params((0, 1, 1)) == 3


@pytest.mark.parametrize("estimator", ["st", "sts"])
def test_state_probabilities_sum_to_one_and_first_layer_mean(estimator):
    sizes = (2, 2, 2, 1)
    theta, X, _ = _problem(sizes, 1, "mse", seed=3)
    probs, fwds = ne.noise_states(sizes, theta, X[0], estimator)
    assert probs.shape == (16,)
    assert np.all(probs > 0)
    assert abs(probs.sum() - 1.0) < 1e-14
    # E[h_1] = p_1 for both: Bernoulli(p), and for sts E[b * sqrt(p)] = sqrt(p)^2 = p
    mean_h1 = sum(p * f["h"][0] for p, f in zip(probs, fwds))
    np.testing.assert_allclose(mean_h1, fwds[0]["p"][0], rtol=0, atol=1e-14)


def test_loss_grad_matches_finite_differences():
    rng = np.random.default_rng(1)
    y = rng.normal(0.0, 2.0, 3)
    targets = {"mse": rng.normal(size=3), "bce": rng.uniform(size=3), "xent": 2}
    targets["linear"] = rng.normal(size=3)
    eps = 1e-6
    for loss, t in targets.items():
        fd = np.array(
            [
                (ne.loss_value(loss, y + eps * e, t) - ne.loss_value(loss, y - eps * e, t))
                / (2 * eps)
                for e in np.eye(3)
            ]
        )
        np.testing.assert_allclose(ne.loss_grad(loss, y, t), fd, rtol=1e-7, atol=1e-8)
    # stability at extreme outputs
    big = np.array([800.0, -800.0, 0.0])
    assert np.isfinite(ne.loss_value("bce", big, np.array([1.0, 0.0, 0.5])))
    assert np.isfinite(ne.loss_value("xent", big, 1))
    assert np.all(np.isfinite(ne.loss_grad("xent", big, 1)))


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sizes,batch", NETWORKS)
def test_exact_gradient_matches_finite_differences(sizes, batch, loss):
    theta, X, T = _problem(sizes, batch, loss, seed=len(sizes) + batch)
    exact = ne.exact_gradient(sizes, theta, loss, X, T)
    fd = ne.finite_difference_gradient(sizes, theta, loss, X, T)
    np.testing.assert_allclose(exact, fd, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("baseline", ["none", 0.7, "mean", "optimal"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sizes", [(2, 3, 2), (2, 2, 2, 3), (0, 2, 1, 2)])
def test_reinforce_is_unbiased_for_every_baseline(sizes, loss, baseline):
    theta, X, T = _problem(sizes, 1, loss, seed=7)
    m = ne.example_moments(sizes, theta, loss, X[0], T[0], "reinforce", baseline)
    np.testing.assert_allclose(m["mean"], m["gradient"], rtol=1e-12, atol=1e-12)
    assert np.all(m["var"] >= -1e-15)


@pytest.mark.parametrize("sizes", [(2, 3, 2), (0, 2, 1, 2)])
def test_optimal_baseline_minimises_each_coordinate_variance(sizes):
    theta, X, T = _problem(sizes, 1, "mse", seed=11)
    var = {
        b: ne.example_moments(sizes, theta, "mse", X[0], T[0], "reinforce", b)["var"]
        for b in ["none", 0.7, "mean", "optimal"]
    }
    for b in ["none", 0.7, "mean"]:
        assert np.all(var["optimal"] <= var[b] + 1e-12)


def _one_unit(a, w, c):
    """sizes (0, 1, 1): theta = [b_1, W_o, b_o] = [a, w, c]."""
    return (0, 1, 1), np.array([a, w, c]), np.zeros((1, 0))


def test_one_unit_network_closed_form():
    a, w, c, t = 0.3, -1.7, 0.4, 1.1
    sizes, theta, X = _one_unit(a, w, c)
    T = [np.array([t])]
    p = _sigmoid(a)
    c1 = 0.5 * (w + c - t) ** 2  # C(h = 1)
    c0 = 0.5 * (c - t) ** 2  # C(h = 0)
    assert abs(ne.expected_loss(sizes, theta, "mse", X, T) - (p * c1 + (1 - p) * c0)) < 1e-14
    g = ne.exact_gradient(sizes, theta, "mse", X, T)
    expected = [
        p * (1 - p) * (c1 - c0),  # d/da
        p * (w + c - t),  # d/dw
        p * (w + c - t) + (1 - p) * (c - t),  # d/dc
    ]
    np.testing.assert_allclose(g, expected, rtol=1e-13, atol=1e-15)


def test_one_unit_optimal_baseline_has_zero_variance_for_the_bias():
    a, w, c, t = -0.8, 2.3, -0.5, 0.2
    sizes, theta, X = _one_unit(a, w, c)
    p = _sigmoid(a)
    c1, c0 = 0.5 * (w + c - t) ** 2, 0.5 * (c - t) ** 2
    # by hand: c* = E[s^2 C]/E[s^2] = (1 - p) C(1) + p C(0)
    cvec = ne.reinforce_baseline(sizes, theta, "mse", X[0], np.array([t]), "optimal")
    np.testing.assert_allclose(cvec, [(1 - p) * c1 + p * c0, 0.0, 0.0], rtol=1e-13, atol=0)
    m = ne.example_moments(sizes, theta, "mse", X[0], np.array([t]), "reinforce", "optimal")
    assert m["var"][0] < 1e-28
    np.testing.assert_allclose(m["estimates"][:, 0], p * (1 - p) * (c1 - c0), rtol=1e-13)
    m_none = ne.example_moments(sizes, theta, "mse", X[0], np.array([t]), "reinforce")
    assert m_none["var"][0] > 1e-3


def test_one_unit_sign_and_descent_probabilities_by_hand():
    # linear loss, t = 1: C(h) = w h + c.  REINFORCE without baseline:
    #   h = 1: g_hat = [(w + c)(1 - p), 1, 1];  h = 0: g_hat = [-c p, 0, 1]
    # exact g = [w p (1 - p), p, 1]
    a, w, c = 0.6, 2.0, 1.0
    sizes, theta, X = _one_unit(a, w, c)
    p = _sigmoid(a)
    m = ne.example_moments(sizes, theta, "linear", X[0], np.array([1.0]), "reinforce")
    np.testing.assert_allclose(m["gradient"], [w * p * (1 - p), p, 1.0], rtol=1e-14)
    np.testing.assert_allclose(m["probs"], [1 - p, p], rtol=1e-14)  # states (0,), (1,)
    np.testing.assert_allclose(m["estimates"], [[-c * p, 0, 1], [(w + c) * (1 - p), 1, 1]])
    # b_1: agrees only when h = 1; W_o: the estimate 0 at h = 0 never agrees; b_o: always
    np.testing.assert_allclose(m["sign_probability"], [p, p, 1.0], rtol=1e-14)
    # <g_hat, g> at h = 0 is -c w p^2 (1 - p) + 1 > 0 here, and positive at h = 1
    assert m["descent_probability"] == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(
        m["var"],
        [p * (1 - p) * ((w + c) * (1 - p) + c * p) ** 2, p * (1 - p), 0.0],
        rtol=1e-12,
        atol=1e-15,
    )


def test_surrogate_estimators_single_layer_linear_loss_by_hand():
    # one stochastic layer and a linear loss: J = t^T (W_o p + b_o), so
    # d J / d a = W_o^T t * p (1 - p).  st_sigmoid is exact in mean, st gives W_o^T t,
    # sts gives E[b] sqrt(p)(1 - p)/2 = p (1 - p)/2 per unit (half), and every output
    # parameter is unbiased for all three (E[h] = p, also under sts).
    sizes = (2, 3, 2)
    theta, X, T = _problem(sizes, 1, "linear", seed=5)
    x, t = X[0], T[0]
    (W1, b1), (Wo, _bo) = ne.unpack(sizes, theta)
    p = 1.0 / (1.0 + np.exp(-(W1 @ x + b1)))
    back = Wo.T @ t
    (w1s, b1s, _), (wos, bos, _) = ne.layout(sizes)
    hidden_delta = {"st_sigmoid": back * p * (1 - p), "st": back, "sts": back * p * (1 - p) / 2}
    for est, delta in hidden_delta.items():
        m = ne.example_moments(sizes, theta, "linear", x, t, est)
        np.testing.assert_allclose(m["mean"][b1s], delta, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(m["mean"][w1s], np.outer(delta, x).ravel(), rtol=1e-13)
        np.testing.assert_allclose(m["mean"][wos], m["gradient"][wos], rtol=1e-13)
        np.testing.assert_allclose(m["mean"][bos], m["gradient"][bos], rtol=1e-13)
    m = ne.example_moments(sizes, theta, "linear", x, t, "st_sigmoid")
    np.testing.assert_allclose(m["mean"], m["gradient"], rtol=1e-12, atol=1e-15)


def test_two_layer_st_estimate_by_hand():
    # sizes (1, 1, 1, 1), mse: one state, backprop written out by hand
    sizes = (1, 1, 1, 1)
    w1, b1, w2, b2, wo, bo = 0.5, -0.2, 1.3, 0.1, -0.7, 0.4
    theta = np.array([w1, b1, w2, b2, wo, bo])
    x, t = np.array([0.9]), np.array([0.3])
    for est in ["st", "st_sigmoid", "sts"]:
        f = ne.forward(sizes, theta, x, (1, 1), est)
        p1, p2 = _sigmoid(w1 * 0.9 + b1), _sigmoid(w2 * f["h"][0][0] + b2)
        if est == "sts":
            h1, h2 = math.sqrt(p1), math.sqrt(p2)
            s1, s2 = math.sqrt(p1) * (1 - p1) / 2, math.sqrt(p2) * (1 - p2) / 2
            logp = 0.5 * math.log(p1) + 0.5 * math.log(p2)
        else:
            h1, h2 = 1.0, 1.0
            s1, s2 = (1.0, 1.0) if est == "st" else (p1 * (1 - p1), p2 * (1 - p2))
            logp = math.log(p1) + math.log(p2)
        assert f["log_prob"] == pytest.approx(logp, rel=1e-14)
        dy = wo * h2 + bo - 0.3
        d2 = dy * wo * s2
        d1 = d2 * w2 * s1
        expected = [d1 * 0.9, d1, d2 * h1, d2, dy * h2, dy]
        g = ne.estimate(sizes, theta, "mse", x, t, f, est)
        np.testing.assert_allclose(g, expected, rtol=1e-13)


@pytest.mark.parametrize("estimator", ["st", "sts", "reinforce"])
def test_batch_moments_match_joint_enumeration(estimator):
    # the batch estimate (1/B) sum_x g_hat_x over the joint noise of both examples
    sizes = (2, 2, 1, 2)
    theta, X, T = _problem(sizes, 2, "bce", seed=9)
    baseline = "optimal" if estimator == "reinforce" else "none"
    bm = ne.batch_moments(sizes, theta, "bce", X, T, estimator, baseline)
    e0, e1 = bm["examples"]
    mean = np.zeros(ne.n_params(sizes))
    second = np.zeros((mean.size, mean.size))
    for i, j in itertools.product(range(e0["probs"].size), range(e1["probs"].size)):
        prob = e0["probs"][i] * e1["probs"][j]
        g_hat = 0.5 * (e0["estimates"][i] + e1["estimates"][j])
        mean += prob * g_hat
        second += prob * np.outer(g_hat, g_hat)
    cov = second - np.outer(mean, mean)
    np.testing.assert_allclose(bm["mean"], mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bm["cov"], cov, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(bm["var"], np.diag(cov), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(bm["var"], np.diag(bm["cov"]), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        bm["gradient"], ne.exact_gradient(sizes, theta, "bce", X, T), rtol=1e-13, atol=1e-15
    )


def test_extreme_preactivations_stay_finite():
    sizes = (1, 2, 1)
    theta = np.array([1.0, -1.0, 900.0, -900.0, 1.0, 1.0, 0.0])
    probs, fwds = ne.noise_states(sizes, theta, np.array([1.0]), "sts")
    assert abs(probs.sum() - 1.0) < 1e-14
    assert all(np.isfinite(f["log_prob"]) or f["prob"] == 0.0 for f in fwds)
    g = ne.exact_gradient(sizes, theta, "mse", np.array([[1.0]]), [np.array([0.5])])
    assert np.all(np.isfinite(g))
