"""Monte Carlo draws: per-sample identities, reproducibility, agreement with exact moments."""

from __future__ import annotations

import numpy as np
import pytest

import gradstat as gs
from gradstat import sampling


def _sigmoid(a: float) -> float:
    return 1.0 / (1.0 + np.exp(-a))


# sizes (1, 1, 1, 1): a1 = w1 x + c1, a2 = w2 h1 + c2, y = wo h2 + bo, C = 0.5 (y - t)^2.
W1, C1, W2, C2, WO, BO = 0.7, -0.3, 1.3, 0.4, -0.9, 0.2
X, T = 1.5, 0.25
NET = gs.BinaryNetwork((1, 1, 1, 1), [W1, C1, W2, C2, WO, BO], loss="mse")
A1 = W1 * X + C1
P1 = _sigmoid(A1)


@pytest.mark.parametrize("name", ["st", "st_sigmoid", "reinforce"])
def test_per_sample_identity_binary_estimators(name):
    # u = (0, 1): unit 1 fires (0 < p1), unit 2 stays off (1 < p2 is false).
    h1, h2 = 1.0, 0.0
    a2 = W2 * h1 + C2
    p2 = _sigmoid(a2)
    y = WO * h2 + BO
    dy = y - T
    loss = 0.5 * dy**2
    if name == "reinforce":
        s_b1, s_b2 = h1 - P1, h2 - p2
        want = [loss * s_b1 * X, loss * s_b1, loss * s_b2 * h1, loss * s_b2, dy * h2, dy]
    else:
        j1, j2 = (1.0, 1.0) if name == "st" else (P1 * (1 - P1), p2 * (1 - p2))
        delta2 = WO * dy * j2
        delta1 = W2 * delta2 * j1
        want = [delta1 * X, delta1, delta2 * h1, delta2, dy * h2, dy]
    got = gs.estimate_from_noise(NET, [X], [T], name, [0.0, 1.0])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-16)


def test_per_sample_identity_sts():
    # u = (0, 0): both bits fire; the units pass on h = sqrt(p).
    h1 = np.sqrt(P1)
    a2 = W2 * h1 + C2
    p2 = _sigmoid(a2)
    h2 = np.sqrt(p2)
    dy = WO * h2 + BO - T
    delta2 = WO * dy * h2 * (1 - p2) / 2
    delta1 = W2 * delta2 * h1 * (1 - P1) / 2
    want = [delta1 * X, delta1, delta2 * h1, delta2, dy * h2, dy]
    got = gs.estimate_from_noise(NET, [X], [T], "sts", [0.0, 0.0])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-16)


def test_reinforce_with_baseline_per_sample():
    got = gs.estimate_from_noise(NET, [X], [T], "reinforce", [0.0, 1.0], baseline=0.5)
    p2 = _sigmoid(W2 + C2)
    loss = 0.5 * (BO - T) ** 2
    want_b1 = (loss - 0.5) * (1 - P1)
    want_b2 = (loss - 0.5) * (0 - p2)
    np.testing.assert_allclose(got[[1, 3]], [want_b1, want_b2], rtol=1e-14)


@pytest.mark.parametrize(
    ("name", "options"),
    [("st", {}), ("st_sigmoid", {}), ("sts", {}), ("reinforce", {"baseline": "optimal"})],
)
def test_monte_carlo_mean_within_standard_errors(name, options):
    """Seeded; per coordinate |z| < 5 has false-alarm rate 5.7e-7 (Bonferroni over
    the 35 coordinates: < 2e-5 per case), so a failure means a real discrepancy."""
    net = gs.BinaryNetwork.random((4, 3, 3, 2), loss="mse", seed=0)
    x, t = np.ones(4), np.zeros(2)
    exact = gs.estimator_moments(net, x, t, name, **options)
    n = 20_000
    draws = gs.sample_gradients(net, x, t, name, n, seed=123, **options)
    se = np.sqrt(exact.var / n)
    live = se > 0
    z = (draws.mean(axis=0)[live] - exact.mean[live]) / se[live]
    assert np.max(np.abs(z)) < 5.0
    np.testing.assert_allclose(draws.mean(axis=0)[~live], exact.mean[~live], atol=1e-12)


def test_draws_reproducible_and_block_size_free(monkeypatch):
    net = gs.BinaryNetwork.random((2, 4, 3, 2), loss="xent", seed=2)
    X = np.random.default_rng(1).normal(size=(3, 2))
    T = np.array([0, 1, 1])
    a = gs.sample_gradients(net, X, T, "sts", 500, seed=9)
    b = gs.sample_gradients(net, X, T, "sts", 500, seed=9)
    monkeypatch.setattr(sampling, "BLOCK_VALUES", 37)
    c = gs.sample_gradients(net, X, T, "sts", 500, seed=9)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert not np.array_equal(a, gs.sample_gradients(net, X, T, "sts", 500, seed=10))


def test_batch_estimate_is_mean_of_examples():
    net = gs.BinaryNetwork.random((2, 3, 2), loss="mse", seed=4)
    X = np.array([[1.0, -1.0], [0.5, 2.0]])
    T = np.array([[0.1, 0.2], [0.3, -0.4]])
    u = np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.4]])
    both = gs.estimate_from_noise(net, X, T, "st_sigmoid", u)
    one = [gs.estimate_from_noise(net, X[b], T[b], "st_sigmoid", u[b]) for b in range(2)]
    np.testing.assert_allclose(both, (one[0] + one[1]) / 2, rtol=1e-14)
