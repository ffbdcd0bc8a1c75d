"""Exact Gumbel straight-through and Gumbel-Rao moments by states and per-unit quadrature.

Checked three ways: the per-unit integrals against adaptive ``scipy.integrate.quad``
(``reference/naive_new.py``), the whole engine against a brute-force two-dimensional
integration, over both logistic noises, of the estimate written out in numpy for a
two-unit network, and against seeded
Monte Carlo (the existing sampling path) with a stated false-alarm rate.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import naive_new as nn
from scipy.special import expit

import gradstat as gs
from gradstat.engines import choice
from gradstat.estimators.gumbel_rao import surrogate_moments


@pytest.mark.parametrize("a", [-30.0, -5.0, -0.7, 0.0, 1.3, 6.0, 40.0])
@pytest.mark.parametrize("tau", [0.003, 0.1, 1.0, 7.0, 200.0])
def test_unit_integrals_match_adaptive_quadrature(a, tau):
    for bit in (0, 1):
        m1, m2 = surrogate_moments(a, float(bit), tau)
        r1, r2 = nn.surrogate_moments(a, bit, tau)
        # Errors relative to J's largest value 1/(4 tau) (and its square).
        assert abs(m1 - r1) <= 1e-11 / (4 * tau)
        assert abs(m2 - r2) <= 1e-11 / (4 * tau) ** 2


def _nodes(lo: float, hi: float, width: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Composite 8-point Gauss-Legendre nodes and weights on ``[lo, hi]``."""
    x, w = np.polynomial.legendre.leggauss(8)
    n = max(1, int(np.ceil((hi - lo) / width)))
    edges = np.linspace(lo, hi, n + 1)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    return (mid[:, None] + half[:, None] * x).ravel(), (half[:, None] * w).ravel()


def _brute_force(net, x, t, tau, G=None):
    """Mean and variance of gumbel_st on a ``(1, 1, 1, 1)`` mse network, written out in
    numpy and integrated over both logistic noises on a tensor grid (composite
    Gauss-Legendre, panels of 0.25 on ``[-60, 60]``, split at each unit's threshold).
    With the exact gradient ``G``, also ``P(sign g_hat_j = sign G_j)`` and ``P(<g_hat, G> >
    0)`` on the scopes layer1, layer2, output, all, stochastic, integrating the indicators
    on the same grid."""
    (W1, b1), (W2, b2), (Wo, bo) = net.layers()
    w1, c1, w2, c2, wo, co = (float(v[0, 0]) if v.ndim == 2 else float(v[0])
                              for v in (W1, b1, W2, b2, Wo, bo))  # fmt: skip
    kappa, low = (2.0, -1.0) if net.values == "pm1" else (1.0, 0.0)

    def slope(z):
        return kappa * expit(z / tau) * expit(-z / tau) / tau

    a1 = w1 * x[0] + c1
    m1, m2 = np.zeros(6), np.zeros(6)
    sign, descent = np.zeros(6), np.zeros(5)
    scopes = [[0, 1], [2, 3], [4, 5], list(range(6)), [0, 1, 2, 3]]
    for side1 in (0, 1):
        L1, q1 = _nodes(-60.0, -a1) if side1 == 0 else _nodes(-a1, 60.0)
        h1 = 1.0 if side1 else low
        a2 = w2 * h1 + c2
        for side2 in (0, 1):
            L2, q2 = _nodes(-60.0, -a2) if side2 == 0 else _nodes(-a2, 60.0)
            h2 = 1.0 if side2 else low
            dy = wo * h2 + co - t[0]
            d2 = dy * wo * slope(a2 + L2)  # over L2
            d1 = np.outer(slope(a1 + L1), d2 * w2)  # (L1, L2)
            g = [d1 * x[0], d1, np.broadcast_to(d2 * h1, d1.shape), np.broadcast_to(d2, d1.shape),
                 np.full(d1.shape, dy * h2), np.full(d1.shape, dy)]  # fmt: skip
            weight = np.outer(q1 * expit(L1) * expit(-L1), q2 * expit(L2) * expit(-L2))
            for j in range(6):
                m1[j] += np.sum(weight * g[j])
                m2[j] += np.sum(weight * g[j] ** 2)
                if G is not None:
                    sign[j] += np.sum(weight * (np.sign(g[j]) == np.sign(G[j])))
            if G is not None:
                for k, scope in enumerate(scopes):
                    dot = sum(g[j] * G[j] for j in scope)
                    descent[k] += np.sum(weight * (dot > 0))
    if G is not None:
        return m1, m2 - m1**2, sign, descent
    return m1, m2 - m1**2


@pytest.mark.parametrize("values", ["01", "pm1"])
def test_engine_matches_brute_force_integration(values):
    net = gs.BinaryNetwork((1, 1, 1, 1), [0.8, -0.3, 1.1, 0.4, -0.9, 0.2], loss="mse",
                           values=values)  # fmt: skip
    x, t = np.array([0.7]), np.array([0.3])
    m = gs.estimator_moments(net, x, t, "gumbel_st", engine="quadrature", tau=1.5)
    assert m.engine == "quadrature"
    mean, var, sign, descent = _brute_force(net, x, t, 1.5, gs.exact_gradient(net, x, t))
    np.testing.assert_allclose(m.mean, mean, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(m.var, var, rtol=1e-10, atol=1e-13)
    # One unit per layer: every estimate is one slope product, its sign fixed by the bits;
    # only "all" adds the output's constant to the stochastic layers' polynomial, whose
    # coefficients may then have both signs (NaN).
    np.testing.assert_allclose(m.sign_probability[0], sign, rtol=0, atol=1e-10)
    assert np.any((m.sign_probability > 0.05) & (m.sign_probability < 0.95))
    order = [m.descent_labels.index(k) for k in ("layer1", "layer2", "output", "all",
                                                  "stochastic")]  # fmt: skip
    got = m.descent_probability[0, order]
    assert not np.any(np.isnan(got[[0, 1, 2, 4]]))
    known = ~np.isnan(got)
    np.testing.assert_allclose(got[known], descent[known], rtol=0, atol=1e-10)


@pytest.mark.parametrize("name,options", [("gumbel_st", {"tau": 0.7}),
                                          ("gumbel_rao", {"tau": 0.4, "k": 3})])  # fmt: skip
def test_engine_agrees_with_seeded_monte_carlo(name, options):
    """Per coordinate, |MC mean - exact| <= 5.5 standard errors and the same for the
    variance (standard error from the draws' fourth moment). With 2 x 23 coordinates the
    chance of a false alarm is below 2e-6 under the normal approximation; the seed is
    fixed, so the outcome is reproducible."""
    net = gs.BinaryNetwork.random((2, 2, 3, 1), loss="bce", scale=1.2, seed=4)
    x, t = np.array([0.4, -1.1]), np.array([1.0])
    exact = gs.estimator_moments(net, x, t, name, engine="quadrature", **options)
    n = 100_000
    draws = gs.sample_gradients(net, x, t, name, n_samples=n, seed=2024, **options)
    mean = draws.mean(axis=0)
    dev = draws - mean
    var = (dev**2).sum(axis=0) / (n - 1)
    se_mean = np.sqrt(exact.var / n)
    se_var = np.sqrt(np.maximum((dev**4).mean(axis=0) - var**2, 0.0) / n)
    live = exact.var > 1e-14
    assert np.all(np.abs(mean - exact.mean)[live] <= 5.5 * se_mean[live])
    assert np.all(np.abs(var - exact.var)[live] <= 5.5 * se_var[live] + 1e-15)
    # Sign agreement and descent where the bits fix them (the top stochastic layer and
    # the output layer always): binomial frequencies within 5.5 standard errors, for at
    # most 23 + 6 probabilities (false alarm below 2e-6 under the normal approximation).
    G = exact.gradient
    top = net.parameter_groups()["layer2"]
    assert not np.any(np.isnan(exact.sign_probability[0, top.start :]))
    known = ~np.isnan(exact.sign_probability[0])
    freq = np.mean(np.sign(draws) == np.sign(G), axis=0)
    p = exact.sign_probability[0]
    se = np.sqrt(np.maximum(p * (1 - p), 1e-12) / n)
    assert np.all(np.abs(freq - p)[known] <= 5.5 * se[known])
    groups = net.parameter_groups()
    for k, label in enumerate(exact.descent_labels):
        part = slice(None) if label == "all" else groups[label]
        p = exact.descent_probability[0, k]
        if label == "output":
            assert not np.isnan(p)
        if not np.isnan(p):
            f = np.mean(draws[:, part] @ G[part] > 0)
            assert abs(f - p) <= 5.5 * np.sqrt(max(p * (1 - p), 1e-12) / n), label


def test_signs_the_bits_do_not_fix_are_nan():
    """Layer-1 unit 0 reaches the output through two paths of opposite signs (W_2[:, 0] =
    (1, 1), W_o = (1, -1)): its estimate's sign depends on the two slopes, so its sign
    agreement is NaN. Unit 1's paths agree (W_2[:, 1] = (0.7, -0.3): products 0.7 and
    0.3), so its sign is fixed, as on layer 2 and the output layer."""
    theta = [0.5, -0.4, 0.1, 0.2, 1.0, 0.7, 1.0, -0.3, 0.3, -0.2, 1.0, -1.0, 0.1]
    net = gs.BinaryNetwork((1, 2, 2, 1), theta, loss="mse")
    x, t = np.array([0.8]), np.array([0.9])
    m = gs.estimator_moments(net, x, t, "gumbel_st", engine="quadrature", tau=0.5)
    nan = np.isnan(m.sign_probability[0])
    # W_1 = (w_00, w_10), b_1 = (b_0, b_1): unit 0 is parameters 0 and 2.
    assert nan.tolist() == [True, False, True] + [False] * 10
    labels = m.descent_labels
    assert np.isnan(m.descent_probability[0, labels.index("layer1")])
    assert not np.isnan(m.descent_probability[0, labels.index("output")])
    r = gs.analyze(net, x, t, "gumbel_st", tau=0.5)
    assert (r.engine, np.isnan(r.layers["layer1"].sign_agreement)) == ("quadrature", True)
    assert np.isfinite(r.layers["layer2"].sign_agreement)


def test_quadrature_is_asked_for_and_refused_where_it_does_not_apply():
    net = gs.BinaryNetwork.random((2, 2, 1), seed=1)
    x, t = np.ones(2), np.zeros(1)
    r = gs.analyze(net, x, t, "gumbel_st", engine="quadrature")
    assert (r.method, r.engine) == ("exact", "quadrature")
    # engine="auto" takes quadrature when 2^N fits max_states and the work is affordable
    # (gradstat.engines.choice.quadrature_work <= JOINT_PREFERRED_WORK), else Monte Carlo.
    auto = gs.analyze(net, x, t, "gumbel_st", n_samples=100, seed=0)
    assert (auto.method, auto.engine) == ("exact", "quadrature")
    np.testing.assert_array_equal(auto.mean, r.mean)
    rao = gs.analyze(net, x, t, "gumbel_rao", k=2)
    assert (rao.method, rao.engine) == ("exact", "quadrature")
    wide = gs.BinaryNetwork.random((2, 14, 1), seed=1)
    assert choice.quadrature_work(wide) > choice.JOINT_PREFERRED_WORK
    assert gs.analyze(wide, x, t, "gumbel_st", n_samples=100, seed=0).method == "mc"
    assert choice.quadrature_work(gs.BinaryNetwork.random((2, 12, 1), seed=1)) <= (
        choice.JOINT_PREFERRED_WORK
    )
    with pytest.raises(ValueError, match="cannot be enumerated"):
        gs.estimator_moments(net, x, t, "gumbel_st", full_cov=True)
    with pytest.raises(ValueError, match="only 'gumbel_st' and 'gumbel_rao'"):
        gs.estimator_moments(net, x, t, "concrete", engine="quadrature")
    with pytest.raises(ValueError, match="full_cov"):
        gs.estimator_moments(net, x, t, "gumbel_st", engine="quadrature", full_cov=True)
