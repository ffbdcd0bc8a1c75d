"""``noise_decomposition`` against the naive NumPy enumerator and the exact moments.

The reference split conditions the naive enumerator's per-state estimates on each prefix
of layers with plain dictionaries: no code shared with :mod:`gradstat.noise`.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import naive_enumerator as ne
from scipy.integrate import quad

import gradstat as gs
from gradstat.estimators.user import BatchedEstimator
from gradstat.strategies import problems


def _reference_parts(net, x, t, estimator):
    """Per layer, ``E[(M_l - M_{l-1})^2]`` per coordinate, from the naive enumerator."""
    sizes, theta = net.sizes, net.params
    probs, fwds = ne.noise_states(sizes, theta, x, estimator)
    est = np.array([ne.estimate(sizes, theta, net.loss, x, t, f, estimator) for f in fwds])
    # The naive states come in itertools.product order, layer 1's bits first.
    states = list(itertools.product((0, 1), repeat=net.n_stochastic))
    ends = [0, *np.cumsum(net.hidden_sizes)]
    means = []
    for end in ends:
        mass, total = defaultdict(float), defaultdict(float)
        for s, p, e in zip(states, probs, est):
            mass[s[:end]] += p
            total[s[:end]] = total[s[:end]] + p * e
        means.append({k: total[k] / mass[k] for k in mass if mass[k] > 0})
    parts = []
    for level in range(1, len(ends)):
        acc = np.zeros(net.n_params)
        for s, p in zip(states, probs):
            d = means[level][s[: ends[level]]] - means[level - 1][s[: ends[level - 1]]]
            acc += p * d * d
        parts.append(acc)
    return np.array(parts), est, probs


@given(
    problems(max_batch=1, max_depth=3, max_stochastic=5, max_width=2),
    st.sampled_from(["st", "st_sigmoid", "sts", "reinforce"]),
)
def test_parts_match_the_naive_enumerator(problem, estimator):
    net, X, T = problem
    x, t = X[0], T[0]
    want, est, probs = _reference_parts(net, x, t, estimator)
    d = gs.noise_decomposition(net, x, t, estimator)
    scale = 1.0 + np.abs(est).max() ** 2
    np.testing.assert_allclose(d.parts, want, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(d.mean, probs @ est, rtol=0, atol=1e-12 * (1 + np.abs(est).max()))


@pytest.mark.parametrize(
    ("estimator", "options"),
    [
        ("st_sigmoid", {}),
        ("sts", {}),
        ("reinforce", {"baseline": "optimal"}),
        ("reinforce_loo", {"k": 2}),
        ("leg", {}),
        ("muprop", {}),
        ("reinmax", {"tau": 1.5}),
    ],
)
def test_parts_sum_to_the_exact_covariance_of_a_batch(estimator, options):
    net = gs.BinaryNetwork.random((3, 2, 2, 2), loss="bce", seed=4)
    rng = np.random.default_rng(5)
    X, T = rng.normal(size=(3, 3)), rng.random((3, 2))
    d = gs.noise_decomposition(net, X, T, estimator, full_cov=True, **options)
    m = gs.estimator_moments(net, X, T, estimator, full_cov=True, **options)
    scale = np.abs(m.cov).max()
    np.testing.assert_allclose(d.cov.sum(axis=0), m.cov, rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(d.var, m.var, rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(d.mean, m.mean, rtol=0, atol=1e-13 * np.abs(m.mean).max())
    # A batch's parts are the examples' parts over B^2 (independent noise per example).
    single = [gs.noise_decomposition(net, X[b], T[b], estimator, **options) for b in range(3)]
    np.testing.assert_allclose(d.parts, sum(s.parts for s in single) / 9, rtol=1e-12, atol=0)
    for part in d.cov:
        assert np.linalg.eigvalsh(part).min() >= -1e-13 * scale


def test_one_layer_has_one_source():
    net = gs.BinaryNetwork.random((2, 3, 2), loss="mse", seed=1)
    x, t = np.array([0.5, -1.0]), np.array([0.2, -0.3])
    d = gs.noise_decomposition(net, x, t, "st")
    m = gs.estimator_moments(net, x, t, "st")
    assert d.sources == ("layer1",) and d.engine == "joint"
    np.testing.assert_allclose(d.parts[0], m.var, rtol=1e-13, atol=1e-16)
    assert d.top_share == pytest.approx(1.0)


@pytest.mark.parametrize("estimator", ["arm", "disarm"])
@pytest.mark.parametrize("values", ["01", "pm1"])
def test_arm_state_and_residual_sum_to_the_cells_covariance(estimator, values):
    net = gs.BinaryNetwork.random((3, 3, 2), loss="bce", seed=4, values=values)
    rng = np.random.default_rng(5)
    X, T = rng.normal(size=(3, 3)), rng.random((3, 2))
    d = gs.noise_decomposition(net, X, T, estimator, full_cov=True)
    m = gs.estimator_moments(net, X, T, estimator, full_cov=True)
    assert d.sources == ("layer1", "residual") and d.engine == "cells"
    scale = np.abs(m.cov).max()
    np.testing.assert_allclose(d.cov.sum(axis=0), m.cov, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(d.var, m.var, rtol=1e-12, atol=0)
    np.testing.assert_allclose(d.mean, m.mean, rtol=0, atol=1e-13 * np.abs(m.mean).max())
    np.testing.assert_allclose(d.parts, np.diagonal(d.cov, axis1=1, axis2=2), rtol=1e-12)
    for part in d.cov:
        assert np.linalg.eigvalsh(part).min() >= -1e-13 * scale
    # Both sources are really there, and the top layer's share is layer 1's, not the rest's.
    assert (d.parts > 0).any(axis=1).all()
    assert d.top_share == pytest.approx(d.shares()[0])
    single = [gs.noise_decomposition(net, X[b], T[b], estimator) for b in range(3)]
    np.testing.assert_allclose(d.parts, sum(s.parts for s in single) / 9, rtol=1e-12, atol=0)


@given(problems(max_batch=2, max_depth=1, max_stochastic=4), st.sampled_from(["arm", "disarm"]))
def test_arm_parts_sum_over_drawn_networks(problem, estimator):
    net, X, T = problem
    d = gs.noise_decomposition(net, X, T, estimator)
    m = gs.estimator_moments(net, X, T, estimator)
    scale = 1.0 + np.abs(m.var).max()
    np.testing.assert_allclose(d.var, m.var, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(d.mean, m.mean, rtol=0, atol=1e-12 * (1 + np.abs(m.mean).max()))
    assert d.parts.min() >= -1e-15 * scale


def _one_unit_arm(estimator, w1, b1, wo, bo, x, t):
    """ARM's or DisARM's estimate on a (1, 1, 1) mse network as a function of ``u``,
    written from the estimators' definitions (full layout W_1, b_1, W_o, b_o)."""
    a = w1 * x + b1
    p = 1 / (1 + np.exp(-a))

    def estimate(u):
        h1, h2 = float(u > 1 - p), float(u < p)
        c1 = ne.loss_value("mse", np.array([wo * h1 + bo]), np.array([t]))
        c2 = ne.loss_value("mse", np.array([wo * h2 + bo]), np.array([t]))
        dy1 = ne.loss_grad("mse", np.array([wo * h1 + bo]), np.array([t]))[0]
        dy2 = ne.loss_grad("mse", np.array([wo * h2 + bo]), np.array([t]))[0]
        if estimator == "arm":
            gb = (c1 - c2) * (u - 0.5)
        else:
            sign = -1.0 if h2 == 1.0 else 1.0
            gb = 0.5 * (c1 - c2) * (h1 != h2) * sign / (1 + np.exp(-abs(a)))
        return np.array([gb * x, gb, 0.5 * (dy1 * h1 + dy2 * h2), 0.5 * (dy1 + dy2)])

    return p, estimate


@pytest.mark.parametrize("estimator", ["arm", "disarm"])
@pytest.mark.parametrize("b1", [-0.9, 0.6])
def test_one_unit_arm_split_by_integrating_over_u(estimator, b1):
    # E[g_hat | h] and E[Cov(g_hat | h)] by quadrature over u in [0, p) (h = 1) and
    # [p, 1] (h = 0), breaking at the cells' edges where the estimate jumps.
    w1, wo, bo, x, t = 0.8, 1.5, -0.2, 0.7, 0.45
    net = gs.BinaryNetwork((1, 1, 1), [w1, b1, wo, bo], loss="mse")
    d = gs.noise_decomposition(net, [x], [t], estimator, full_cov=True)
    p, estimate = _one_unit_arm(estimator, w1, b1, wo, bo, x, t)
    edges = sorted([0.0, min(p, 1 - p), max(p, 1 - p), 1.0])

    def integral(j, centre, power, lo, hi):
        """The integral of ``(g_hat_j(u) - centre)^power`` over ``[lo, hi]``."""
        cuts = [lo, *[e for e in edges if lo < e < hi], hi]
        return sum(
            quad(lambda u: (estimate(u)[j] - centre) ** power, a, b, epsabs=1e-15,
                 epsrel=1e-13)[0]
            for a, b in zip(cuts, cuts[1:])
        )  # fmt: skip

    layer1, residual, mean = np.zeros(4), np.zeros(4), np.zeros(4)
    for j in range(4):
        m1 = integral(j, 0.0, 1, 0.0, p) / p
        m0 = integral(j, 0.0, 1, p, 1.0) / (1 - p)
        mean[j] = p * m1 + (1 - p) * m0
        layer1[j] = p * (1 - p) * (m1 - m0) ** 2
        residual[j] = integral(j, m1, 2, 0.0, p) + integral(j, m0, 2, p, 1.0)
    np.testing.assert_allclose(d.mean, mean, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(d.parts, [layer1, residual], rtol=1e-10, atol=1e-14)
    assert residual.min() > 0
    if estimator == "arm":
        # Closed form on b_1: E[g | h=1] = Delta (1-p)/2, E[g | h=0] = Delta p/2.
        c = [ne.loss_value("mse", np.array([wo * h + bo]), np.array([t])) for h in (0, 1)]
        delta = c[1] - c[0]
        assert d.parts[0, 1] == pytest.approx(p * (1 - p) * delta**2 * (1 - 2 * p) ** 2 / 4)


def test_one_unit_two_layers_closed_form():
    # Chain h1 -> h2, linear loss C = w h2: st_sigmoid's estimate on b_2 is
    # s'(a2(h1)) w, a function of h1 only, so all of its noise comes from layer 1.
    net = gs.BinaryNetwork((0, 1, 1, 1), [0.3, 1.7, -0.4, 2.0, 0.0], loss="linear")
    d = gs.noise_decomposition(net, [], [1.0], "st_sigmoid")
    b2 = 2
    assert d.parts[1, b2] == pytest.approx(0.0, abs=1e-18)
    p1 = 1 / (1 + np.exp(-0.3))
    s = [np.exp(-a) / (1 + np.exp(-a)) ** 2 for a in (-0.4, 1.3)]
    assert d.parts[0, b2] == pytest.approx(p1 * (1 - p1) * (2.0 * (s[1] - s[0])) ** 2, rel=1e-12)


def test_traces_shares_and_to_dict():
    net = gs.BinaryNetwork.random((2, 3, 2, 1), loss="mse", seed=2)
    d = gs.noise_decomposition(net, [1.0, -1.0], [0.5], "st")
    for group, sl in d.groups.items():
        np.testing.assert_allclose(d.traces(group), d.parts[:, sl].sum(axis=1))
        assert d.shares(group).sum() == pytest.approx(1.0)
    assert set(d.groups) == {"all", "layer1", "layer2", "output", "stochastic"}
    out = json.loads(json.dumps(d.to_dict()))
    assert out["sources"] == ["layer1", "layer2"] and len(out["parts"]) == 2
    assert "layer2" in repr(d)
    with pytest.raises(ValueError, match="group must be one of"):
        d.shares("nope")


def test_refusals_name_the_problem():
    net = gs.BinaryNetwork.random((2, 3, 2, 1), loss="mse", seed=2)
    x, t = [1.0, -1.0], [0.5]
    with pytest.raises(ValueError, match="cannot be split by source exactly"):
        gs.noise_decomposition(net, x, t, "gumbel_st")
    with pytest.raises(ValueError, match=r"enumerates 32 noise states .* max_states = 16"):
        gs.noise_decomposition(net, x, t, "st", max_states=16)
    with pytest.raises(ValueError, match="ARM cells are enumerated for one stochastic layer"):
        gs.noise_decomposition(net, x, t, "arm")
    with pytest.raises(TypeError, match="full_cov"):
        gs.noise_decomposition(net, x, t, "st", full_cov="yes")
    with pytest.raises(TypeError, match="unknown option"):
        gs.noise_decomposition(net, x, t, "st", baseline="mean")
    with pytest.raises(ValueError, match="max_states"):
        gs.noise_decomposition(net, x, t, "st", max_states=0)
    with pytest.raises(ValueError, match="x"):
        gs.noise_decomposition(net, [1.0, 2.0, 3.0], t, "st")
    with pytest.raises(ValueError, match=r"2\^"):
        gs.noise_decomposition(net, x, t, "reinforce_loo", k=40)

    def user(net, x, t, rng):
        return np.zeros(net.n_params)

    with pytest.raises(ValueError, match="user estimator"):
        gs.noise_decomposition(net, x, t, user)


@pytest.mark.parametrize("estimator", ["st_sigmoid", "reinmax", "leg"])
def test_pm1_units(estimator):
    net = gs.BinaryNetwork.random((2, 2, 3, 1), loss="mse", seed=5, values="pm1")
    x, t = np.array([0.3, -1.0]), np.array([0.4])
    d = gs.noise_decomposition(net, x, t, estimator, full_cov=True)
    m = gs.estimator_moments(net, x, t, estimator, full_cov=True)
    np.testing.assert_allclose(d.cov.sum(axis=0), m.cov, rtol=0, atol=1e-13 * np.abs(m.cov).max())


@numba.njit
def _user_reinforce(theta, sizes, x, t, u, a, p, h, y, dy, loss_value, out):
    """REINFORCE without a baseline for 0/1 units, written from the model's definition: per
    layer, the signal ``r`` (``C (h - p)``, or ``dC/dy`` for the output) times ``[h_prev; 1]``."""
    L = sizes.shape[0] - 2
    off, start, prev = 0, 0, x
    for l in range(L + 1):
        n, m = sizes[l + 1], sizes[l]
        r = loss_value * (h[start : start + n] - p[start : start + n]) if l < L else dy
        out[off : off + n * m] = np.outer(r, prev).ravel()
        out[off + n * m : off + n * m + n] = r
        off += n * (m + 1)
        if l < L:
            prev = h[start : start + n]
            start += n


@numba.njit
def _user_continuous(theta, sizes, x, t, u, a, p, h, y, dy, loss_value, out):
    out[0] = u[0]


class _NumpyST(BatchedEstimator):
    """Straight-through from the naive enumerator, one block of forcing uniforms at a time."""

    name = "numpy_st"
    unbiased = False
    noise = "discrete"
    values = ("01",)

    def estimate_block(self, problem, example, U):
        net = problem.net
        x, t = problem.X[example], problem.T[example]
        out = np.empty((U.shape[0], net.n_params))
        for row, u in enumerate(U):
            bits = np.zeros(net.n_stochastic, dtype=int)
            for end in np.cumsum(net.hidden_sizes):  # p of a layer depends on those below
                p = np.concatenate(ne.forward(net.sizes, net.params, x, bits)["p"])
                bits[:end] = u[:end] < p[:end]
            fwd = ne.forward(net.sizes, net.params, x, bits)
            out[row] = ne.estimate(net.sizes, net.params, net.loss, x, t, fwd, "st")
        return out


@pytest.mark.parametrize(("user", "builtin"), [
    (gs.per_state_estimator(_user_reinforce, name="my_reinforce"), "reinforce"),
    (_NumpyST(), "st"),
])  # fmt: skip
def test_user_estimators_split_as_the_builtin_they_reproduce(user, builtin):
    net = gs.BinaryNetwork.random((2, 2, 3, 2), loss="bce", seed=6)
    rng = np.random.default_rng(7)
    X, T = rng.normal(size=(2, 2)), rng.random((2, 2))
    mine = gs.noise_decomposition(net, X, T, user, full_cov=True)
    want = gs.noise_decomposition(net, X, T, builtin, full_cov=True)
    assert mine.sources == want.sources == ("layer1", "layer2")
    assert mine.estimator == user.name and mine.engine == "joint"
    scale = np.abs(want.cov).max()
    np.testing.assert_allclose(mine.cov, want.cov, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(mine.parts, want.parts, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(mine.mean, want.mean, rtol=0, atol=1e-12 * np.abs(want.mean).max())
    assert (want.parts > 0).any(axis=1).all()


def test_user_refusals_say_what_to_use():
    net = gs.BinaryNetwork.random((2, 3, 2, 1), loss="mse", seed=2)
    x, t = [1.0, -1.0], [0.5]
    continuous = gs.per_state_estimator(_user_continuous, noise="continuous")
    with pytest.raises(ValueError, match="cannot be split by source exactly"):
        gs.noise_decomposition(net, x, t, continuous)
    with pytest.raises(ValueError, match="per_state_estimator"):
        gs.noise_decomposition(net, x, t, lambda net, x, t, rng: np.zeros(net.n_params))


def test_networks_too_large_to_enumerate_are_split_by_messages_or_refused_with_the_count():
    net = gs.BinaryNetwork.random((2, 6, 6, 6, 1), loss="mse", seed=3)
    d = gs.noise_decomposition(net, [1.0, 0.0], [0.5], "st", max_states=2**16)
    assert d.engine == "layerwise"
    with pytest.raises(ValueError, match=r"262,144 noise states .* engine='layerwise'"):
        gs.noise_decomposition(net, [1.0, 0.0], [0.5], "st", max_states=2**16, engine="joint")
    with pytest.raises(ValueError, match=r"262,144 noise states") as err:
        gs.noise_decomposition(net, [1.0, 0.0], [0.5], "muprop", max_states=2**16)
    assert "layerwise" not in str(err.value)
