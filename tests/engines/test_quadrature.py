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


def _brute_force(net, x, t, tau):
    """Mean and variance of gumbel_st on a ``(1, 1, 1, 1)`` mse network, written out in
    numpy and integrated over both logistic noises on a tensor grid (composite
    Gauss-Legendre, panels of 0.25 on ``[-60, 60]``, split at each unit's threshold)."""
    (W1, b1), (W2, b2), (Wo, bo) = net.layers()
    w1, c1, w2, c2, wo, co = (float(v[0, 0]) if v.ndim == 2 else float(v[0])
                              for v in (W1, b1, W2, b2, Wo, bo))  # fmt: skip
    kappa, low = (2.0, -1.0) if net.values == "pm1" else (1.0, 0.0)

    def slope(z):
        return kappa * expit(z / tau) * expit(-z / tau) / tau

    a1 = w1 * x[0] + c1
    m1, m2 = np.zeros(6), np.zeros(6)
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
    return m1, m2 - m1**2


@pytest.mark.parametrize("values", ["01", "pm1"])
def test_engine_matches_brute_force_integration(values):
    net = gs.BinaryNetwork((1, 1, 1, 1), [0.8, -0.3, 1.1, 0.4, -0.9, 0.2], loss="mse",
                           values=values)  # fmt: skip
    x, t = np.array([0.7]), np.array([0.3])
    m = gs.estimator_moments(net, x, t, "gumbel_st", engine="quadrature", tau=1.5)
    assert m.engine == "quadrature"
    assert np.all(np.isnan(m.sign_probability)) and np.all(np.isnan(m.descent_probability))
    mean, var = _brute_force(net, x, t, 1.5)
    np.testing.assert_allclose(m.mean, mean, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(m.var, var, rtol=1e-10, atol=1e-13)


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


def test_quadrature_is_asked_for_and_refused_where_it_does_not_apply():
    net = gs.BinaryNetwork.random((2, 2, 1), seed=1)
    x, t = np.ones(2), np.zeros(1)
    assert gs.analyze(net, x, t, "gumbel_st", n_samples=100, seed=0).method == "mc"
    r = gs.analyze(net, x, t, "gumbel_st", engine="quadrature")
    assert (r.method, r.engine) == ("exact", "quadrature")
    with pytest.raises(ValueError, match="only 'gumbel_st' and 'gumbel_rao'"):
        gs.estimator_moments(net, x, t, "concrete", engine="quadrature")
    with pytest.raises(ValueError, match="full_cov"):
        gs.estimator_moments(net, x, t, "gumbel_st", engine="quadrature", full_cov=True)
