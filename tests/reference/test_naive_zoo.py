"""Self-checks of the naive zoo oracle and of ``values="pm1"`` in the naive enumerator.

No gradstat import: the oracle in ``naive_zoo.py`` is checked against itself, against
``naive_enumerator.py``, against closed forms derived by hand, against numerical
integration over the noise, and (for the estimators without exact moments) against the
exact gradient by Monte Carlo.

Monte Carlo checks compare every coordinate of a seeded sample mean with the exact value
and fail when one lies more than 5 standard errors away.  For a correct oracle the
false-alarm probability is about ``2 * Phi(-5) = 5.7e-7`` per coordinate, so at most
about ``1e-5`` for a test here (at most 17 coordinates, union bound); with fixed seeds
the outcome is in any case reproducible.  A test detects biases of about 5 standard
errors and more.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate

from reference import naive_enumerator as ne
from reference import naive_zoo as nz

LOSSES = ["mse", "bce", "xent", "linear"]
VALUES = ["01", "pm1"]
Z_MAX = 5.0


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _problem(sizes, loss, seed, scale=1.0):
    """Seeded parameters (normal, standard deviation ``scale``), input and target."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, scale, ne.n_params(sizes))
    x = rng.normal(0.0, 1.0, sizes[0])
    n_out = sizes[-1]
    if loss == "xent":
        t = int(rng.integers(0, n_out))
    elif loss == "bce":
        t = rng.uniform(0.0, 1.0, n_out)
    else:
        t = rng.normal(0.0, 1.0, n_out)
    return theta, x, t


def _mc_z(sizes, theta, x, t, loss, estimator, n_draws, seed, exact, *, values="01", **options):
    """Largest |z| of the per-coordinate sample means against ``exact``."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(size=(n_draws, nz.noise_size(sizes, estimator, **options)))
    draws = np.array(
        [
            nz.estimate(sizes, theta, x, t, loss, estimator, u, values=values, **options)
            for u in noise
        ]
    )
    mean = draws.mean(axis=0)
    se = draws.std(axis=0, ddof=1) / math.sqrt(n_draws)
    moving = se > 0.0
    # a coordinate that never moves must equal the exact value (e.g. an absent input)
    np.testing.assert_allclose(mean[~moving], exact[~moving], rtol=1e-12, atol=1e-12)
    return float(np.max(np.abs(mean[moving] - exact[moving]) / se[moving]))


# ---------------------------------------------------------------------------
# naive_enumerator with values="pm1"
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sizes", [(2, 3, 2), (1, 2, 2, 2)])
def test_pm1_exact_gradient_matches_finite_differences(sizes, loss):
    theta, x, t = _problem(sizes, loss, seed=21)
    X, T = x[None, :], [t]
    exact = ne.exact_gradient(sizes, theta, loss, X, T, values="pm1")
    fd = ne.finite_difference_gradient(sizes, theta, loss, X, T, values="pm1")
    np.testing.assert_allclose(exact, fd, rtol=1e-7, atol=1e-7)
    # pm1 is a different model: the gradients differ from the 01 ones
    assert np.max(np.abs(exact - ne.exact_gradient(sizes, theta, loss, X, T))) > 1e-3


def test_pm1_forward_values_and_probabilities():
    sizes = (2, 2, 1, 1)
    theta, x, _ = _problem(sizes, "mse", seed=2)
    f01 = ne.forward(sizes, theta, x, (1, 0, 1))
    fpm = ne.forward(sizes, theta, x, (1, 0, 1), values="pm1")
    np.testing.assert_array_equal(fpm["h"][0], [1.0, -1.0])
    np.testing.assert_array_equal(fpm["bits"][0], [1.0, 0.0])
    np.testing.assert_allclose(fpm["p"][0], f01["p"][0], rtol=0, atol=0)  # same layer 1
    (W1, b1), (W2, b2), _ = ne.unpack(sizes, theta)
    np.testing.assert_allclose(fpm["a"][1], W2 @ np.array([1.0, -1.0]) + b2, rtol=1e-15)
    p2 = _sigmoid(fpm["a"][1][0])
    p1 = _sigmoid(W1 @ x + b1)
    assert fpm["prob"] == pytest.approx(p1[0] * (1 - p1[1]) * p2, rel=1e-13)


@pytest.mark.parametrize("baseline", ["none", 0.7, "mean", "optimal"])
@pytest.mark.parametrize("loss", LOSSES)
def test_pm1_reinforce_is_unbiased(loss, baseline):
    sizes = (1, 2, 2, 2)
    theta, x, t = _problem(sizes, loss, seed=4)
    m = ne.example_moments(sizes, theta, loss, x, t, "reinforce", baseline, values="pm1")
    np.testing.assert_allclose(m["mean"], m["gradient"], rtol=1e-12, atol=1e-12)


def test_pm1_surrogates_and_default_unchanged():
    sizes = (2, 3, 2)
    theta, x, t = _problem(sizes, "linear", seed=5)
    (W1, b1), (Wo, _) = ne.unpack(sizes, theta)
    p = _sigmoid(W1 @ x + b1)
    (_, b1s, _), _ = ne.layout(sizes)
    back = Wo.T @ t  # dC/dh for the linear loss, whatever the state
    m_st = ne.example_moments(sizes, theta, "linear", x, t, "st", values="pm1")
    np.testing.assert_allclose(m_st["mean"][b1s], back, rtol=1e-13)  # identity stays 1
    m_sig = ne.example_moments(sizes, theta, "linear", x, t, "st_sigmoid", values="pm1")
    np.testing.assert_allclose(m_sig["mean"][b1s], 2 * back * p * (1 - p), rtol=1e-13)
    # E[h] = 2p - 1 is linear in sigmoid(a): the doubled surrogate is exact here
    np.testing.assert_allclose(m_sig["mean"], m_sig["gradient"], rtol=1e-12, atol=1e-14)
    # default equals explicit "01"
    X, T = x[None, :], [t]
    for est in ["st", "st_sigmoid", "sts", "reinforce"]:
        d = ne.example_moments(sizes, theta, "bce", x, t, est)
        e = ne.example_moments(sizes, theta, "bce", x, t, est, values="01")
        np.testing.assert_array_equal(d["mean"], e["mean"])
        np.testing.assert_array_equal(d["var"], e["var"])
    np.testing.assert_array_equal(
        ne.exact_gradient(sizes, theta, "bce", X, T),
        ne.exact_gradient(sizes, theta, "bce", X, T, values="01"),
    )
    bm = ne.batch_moments(sizes, theta, "bce", X, T, "st", values="pm1")
    assert bm["examples"][0]["mean"].shape == (ne.n_params(sizes),)


def test_pm1_rejections():
    sizes = (1, 1, 1)
    theta = np.zeros(ne.n_params(sizes))
    with pytest.raises(ValueError, match="sts"):
        ne.forward(sizes, theta, [0.0], (1,), "sts", values="pm1")
    with pytest.raises(ValueError, match="sts"):
        ne.example_moments(sizes, theta, "mse", [0.0], [0.0], "sts", values="pm1")
    with pytest.raises(ValueError, match="values"):
        ne.expected_loss(sizes, theta, "mse", np.zeros((1, 1)), [[0.0]], values="+-1")
    fwd = ne.forward(sizes, theta, [0.0], (1,), values="pm1")
    with pytest.raises(ValueError, match="values"):
        ne.estimate(sizes, theta, "mse", [0.0], [0.0], fwd, "st", values="01")


# ---------------------------------------------------------------------------
# Unbiased discrete estimators: exact mean == exact gradient
# ---------------------------------------------------------------------------

# one to three stochastic layers, N <= 4 (reinforce_loo with k = 3 only where N <= 3)
NETWORKS = [(2, 3, 2), (1, 2, 1, 2), (1, 2, 2, 2), (0, 1, 1, 1, 2)]
UNBIASED = [
    ("leg", {}),
    ("muprop", {}),
    ("muprop", {"expansion": 0.3}),
    ("muprop", {"expansion": -1.2}),
    ("reinforce_loo", {"k": 2}),
    ("reinforce_loo", {"k": 3}),
]


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sizes", NETWORKS)
def test_unbiased_discrete_estimators_have_the_exact_mean(sizes, loss, values):
    theta, x, t = _problem(sizes, loss, seed=sum(sizes) + len(loss), scale=1.5)
    g = ne.example_gradient(sizes, theta, loss, x, t, values=values)
    for estimator, options in UNBIASED:
        if options.get("k") == 3 and sum(sizes[1:-1]) > 3:
            continue
        mean, var = nz.example_moments(
            sizes, theta, x, t, loss, estimator, values=values, **options
        )
        np.testing.assert_allclose(mean, g, rtol=0, atol=1e-10, err_msg=f"{estimator} {options}")
        assert np.all(var >= -1e-14)


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sizes", [(2, 3, 2), (0, 2, 3), (3, 1, 2)])
def test_one_layer_arm_and_disarm_have_the_exact_mean(sizes, loss, values):
    theta, x, t = _problem(sizes, loss, seed=3 * sum(sizes), scale=1.5)
    g = ne.example_gradient(sizes, theta, loss, x, t, values=values)
    for estimator in ["arm", "disarm"]:
        mean, var = nz.example_moments(sizes, theta, x, t, loss, estimator, values=values)
        np.testing.assert_allclose(mean, g, rtol=0, atol=1e-10, err_msg=estimator)
        assert np.all(var >= -1e-14)


def test_leg_one_layer_is_deterministic_given_the_other_units():
    # one layer: (b_1)_i = p_i (1 - p_i) (f(b with b_i = 1) - f(b with b_i = 0))
    sizes = (2, 2, 1)
    theta, x, t = _problem(sizes, "bce", seed=8)
    (W1, b1), (Wo, bo) = ne.unpack(sizes, theta)
    p = _sigmoid(W1 @ x + b1)
    u = np.array([0.3, 0.9])  # bits (1 if u < p)
    bits = (u < p).astype(float)
    g = nz.estimate(sizes, theta, x, t, "bce", "leg", u)
    for i in range(2):
        on, off = bits.copy(), bits.copy()
        on[i], off[i] = 1.0, 0.0
        diff = ne.loss_value("bce", Wo @ on + bo, t) - ne.loss_value("bce", Wo @ off + bo, t)
        assert g[4 + i] == pytest.approx(p[i] * (1 - p[i]) * diff, rel=1e-13)


# ---------------------------------------------------------------------------
# Noise conventions: estimate(u) against the enumerated states
# ---------------------------------------------------------------------------


def _uniforms_for_bits(sizes, theta, x, bits, values):
    """A ``u`` that gives these bits under the rule ``1[u < p]``: ``p/2`` or ``(1+p)/2``."""
    f = ne.forward(sizes, theta, x, bits, values=values)
    p = np.concatenate(f["p"])
    return np.where(np.asarray(bits) == 1, p / 2.0, (1.0 + p) / 2.0), f["prob"]


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize(
    "estimator,options",
    [("st_tempered", {"tau": 0.7}), ("reinmax", {"tau": 1.3}), ("leg", {}), ("muprop", {})],
)
def test_estimate_from_uniforms_matches_exact_moments(estimator, options, values):
    sizes = (1, 2, 2, 1)
    theta, x, t = _problem(sizes, "bce", seed=13, scale=1.5)
    mean = np.zeros(ne.n_params(sizes))
    second = np.zeros_like(mean)
    for bits in itertools.product((0, 1), repeat=4):
        u, prob = _uniforms_for_bits(sizes, theta, x, bits, values)
        g = nz.estimate(sizes, theta, x, t, "bce", estimator, u, values=values, **options)
        mean += prob * g
        second += prob * g * g
    m, v = nz.example_moments(sizes, theta, x, t, "bce", estimator, values=values, **options)
    np.testing.assert_allclose(mean, m, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(second - mean**2, v, rtol=1e-9, atol=1e-13)


def test_reinforce_loo_draws_use_consecutive_blocks_of_noise():
    sizes = (1, 2, 1)
    theta, x, t = _problem(sizes, "mse", seed=17)
    mean = np.zeros(ne.n_params(sizes))
    for b1, b2 in itertools.product(itertools.product((0, 1), repeat=2), repeat=2):
        u1, p1 = _uniforms_for_bits(sizes, theta, x, b1, "01")
        u2, p2 = _uniforms_for_bits(sizes, theta, x, b2, "01")
        mean += p1 * p2 * nz.estimate(sizes, theta, x, t, "mse", "reinforce_loo", [*u1, *u2])
    m, _ = nz.example_moments(sizes, theta, x, t, "mse", "reinforce_loo")
    np.testing.assert_allclose(mean, m, rtol=1e-12, atol=1e-14)
    # two identical draws: every advantage is 0, only the direct path is left
    g = nz.estimate(sizes, theta, x, t, "mse", "reinforce_loo", [0.2, 0.6, 0.2, 0.6])
    assert np.all(g[:4] == 0.0)


def test_st_tempered_at_tau_one_is_st_sigmoid():
    sizes = (2, 2, 2, 2)
    for values in VALUES:
        theta, x, t = _problem(sizes, "xent", seed=23)
        m = ne.example_moments(sizes, theta, "xent", x, t, "st_sigmoid", values=values)
        mean, var = nz.example_moments(sizes, theta, x, t, "xent", "st_tempered", values=values)
        np.testing.assert_allclose(mean, m["mean"], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(var, m["var"], rtol=1e-10, atol=1e-15)


def test_argument_validation():
    sizes = (1, 2, 1)
    theta, x, t = _problem(sizes, "mse", seed=1)
    with pytest.raises(ValueError, match="needs 4"):
        nz.estimate(sizes, theta, x, t, "mse", "rebar", [0.5, 0.5])
    with pytest.raises(ValueError, match="open interval"):
        nz.estimate(sizes, theta, x, t, "mse", "gumbel_st", [0.0, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nz.estimate(sizes, theta, x, t, "mse", "leg", [1.5, 0.5])
    with pytest.raises(ValueError, match="tau >= 1"):
        nz.estimate(sizes, theta, x, t, "mse", "reinmax", [0.5, 0.5], tau=0.5)
    with pytest.raises(ValueError, match="tau >= 1"):
        nz.toy_moments("reinmax", 0.0, 0.3, tau=0.9)
    with pytest.raises(TypeError, match="tau"):
        nz.estimate(sizes, theta, x, t, "mse", "leg", [0.5, 0.5], tau=2.0)
    with pytest.raises(ValueError, match="k must be"):
        nz.estimate(sizes, theta, x, t, "mse", "reinforce_loo", [0.5] * 2, k=1)
    with pytest.raises(ValueError, match="values='01' only"):
        nz.estimate(sizes, theta, x, t, "mse", "noisy_rectifier", [0.1, 0.2], values="pm1")
    for est in ["gumbel_st", "concrete", "rebar", "noisy_rectifier", "st", "reinforce"]:
        with pytest.raises(ValueError, match="no exact moments"):
            nz.example_moments(sizes, theta, x, t, "mse", est)
    with pytest.raises(ValueError, match="one stochastic layer"):
        nz.example_moments((1, 1, 1, 1), np.zeros(6), x, t, "mse", "arm")
    assert nz.noise_size((2, 3, 2, 4, 1), "arm") == 9 + (2 + 4) + 4
    assert nz.noise_size((2, 3, 2, 4, 1), "reinforce_loo", k=3) == 27


# ---------------------------------------------------------------------------
# One-unit closed forms
# ---------------------------------------------------------------------------

TOY_CASES = [
    ("st", {}),
    ("st_sigmoid", {}),
    ("sts", {}),
    ("reinforce", {}),
    ("st_tempered", {}),
    ("st_tempered", {"tau": 0.4}),
    ("st_tempered", {"tau": 3.0}),
    ("reinmax", {}),
    ("reinmax", {"tau": 1.8}),
    ("reinforce_loo", {"k": 2}),
    ("reinforce_loo", {"k": 3}),
    ("leg", {}),
    ("muprop", {}),
    ("muprop", {"expansion": 0.3}),
    ("arm", {}),
    ("disarm", {}),
]


@pytest.mark.parametrize("t", [0.45, 0.499])
@pytest.mark.parametrize("a", [-2.0, 0.0, 2.0])
def test_toy_closed_forms_match_enumeration(a, t):
    sizes, theta, x, target = nz.toy_problem(a, t)
    g = ne.example_gradient(sizes, theta, "mse", x, target)
    assert g[0] == pytest.approx(nz.toy_gradient(a, t), rel=1e-12, abs=1e-15)
    for estimator, options in TOY_CASES:
        mean, var = nz.toy_moments(estimator, a, t, **options)
        if estimator in ne.ESTIMATORS:
            m = ne.example_moments(sizes, theta, "mse", x, target, estimator)
            exact_mean, exact_var = m["mean"][0], m["var"][0]
        else:
            em, ev = nz.example_moments(sizes, theta, x, target, "mse", estimator, **options)
            exact_mean, exact_var = em[0], ev[0]
        msg = f"{estimator} {options}"
        for closed, exact in [(mean, exact_mean), (var, exact_var)]:
            # absolute 1e-12, and relative 1e-9 for the tiny values at t = 0.499
            assert abs(closed - exact) <= min(1e-12, 1e-9 * abs(exact) + 1e-18), msg


def test_toy_closed_forms_literature_values():
    # LITERATURE.md 3.4 / 3.5: at t = 0.45, a = -2, Var DisARM 3.522e-4 < Var ARM 3.550e-4;
    # at a = 0 ARM's variance is Delta^2 / 48 and DisARM's is zero
    assert nz.toy_moments("arm", -2.0, 0.45)[1] == pytest.approx(3.550e-4, abs=1e-7)
    assert nz.toy_moments("disarm", -2.0, 0.45)[1] == pytest.approx(3.522e-4, abs=1e-7)
    assert nz.toy_moments("arm", 0.0, 0.45)[1] == pytest.approx(0.1**2 / 48, rel=1e-12)
    assert nz.toy_moments("disarm", 0.0, 0.45)[1] == 0.0
    for est in ["reinforce", "reinforce_loo", "leg", "muprop", "arm", "disarm"]:
        assert nz.toy_moments(est, 1.3, 0.2)[0] == pytest.approx(nz.toy_gradient(1.3, 0.2))


# ---------------------------------------------------------------------------
# ReinMax
# ---------------------------------------------------------------------------


def _zgr(sizes, theta, x, t, loss, u, values):
    """Binary ZGR written out: backprop with J = kappa (b (1 - p) + (1 - b) p) / 2."""
    params = ne.unpack(sizes, theta)
    h, bits_all = x, []
    for (W, b), n in zip(params[:-1], sizes[1:-1]):
        p = _sigmoid(W @ h + b)
        bits = (u[len(bits_all) : len(bits_all) + n] < p).astype(int)
        bits_all += list(bits)
        h = bits if values == "01" else 2 * bits - 1
    f = ne.forward(sizes, theta, x, bits_all, values=values)
    kappa = 2.0 if values == "pm1" else 1.0
    dy = ne.loss_grad(loss, f["y"], t)
    grads = [(np.outer(dy, f["h"][-1]), dy)]
    back = params[-1][0].T @ dy
    inputs = [f["x"]] + f["h"][:-1]
    for layer in reversed(range(len(sizes) - 2)):
        b, p = f["bits"][layer], f["p"][layer]
        delta = back * kappa * (b * (1 - p) + (1 - b) * p) / 2
        grads.append((np.outer(delta, inputs[layer]), delta))
        back = params[layer][0].T @ delta
    return np.concatenate([np.concatenate([dw.ravel(), db]) for dw, db in grads[::-1]])


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("sizes", [(2, 3, 2), (1, 2, 2, 2)])
def test_reinmax_at_tau_one_is_zgr_sample_by_sample(sizes, values):
    rng = np.random.default_rng(31)
    for loss in LOSSES:
        theta, x, t = _problem(sizes, loss, seed=5)
        for u in rng.uniform(size=(10, sum(sizes[1:-1]))):
            g = nz.estimate(sizes, theta, x, t, loss, "reinmax", u, values=values)
            np.testing.assert_allclose(g, _zgr(sizes, theta, x, t, loss, u, values), rtol=1e-13)


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("loss", ["mse", "linear"])
@pytest.mark.parametrize("sizes", [(2, 3, 2), (0, 3, 3), (3, 2, 1)])
def test_reinmax_tau_one_unbiased_when_loss_is_quadratic_in_each_unit(sizes, loss, values):
    theta, x, t = _problem(sizes, loss, seed=41, scale=2.0)
    g = ne.example_gradient(sizes, theta, loss, x, t, values=values)
    mean, _ = nz.example_moments(sizes, theta, x, t, loss, "reinmax", values=values)
    np.testing.assert_allclose(mean, g, rtol=0, atol=1e-12)


def test_reinmax_biased_beyond_quadratic_or_tau_one():
    sizes = (2, 3, 2)
    theta, x, t = _problem(sizes, "bce", seed=41, scale=2.0)
    for values in VALUES:
        g = ne.example_gradient(sizes, theta, "bce", x, t, values=values)
        mean, _ = nz.example_moments(sizes, theta, x, t, "bce", "reinmax", values=values)
        assert np.max(np.abs(mean - g)) > 1e-3
    theta, x, t = _problem(sizes, "mse", seed=41, scale=2.0)
    g = ne.example_gradient(sizes, theta, "mse", x, t)
    mean, _ = nz.example_moments(sizes, theta, x, t, "mse", "reinmax", tau=2.0)
    assert np.max(np.abs(mean - g)) > 1e-3


# ---------------------------------------------------------------------------
# ARM and DisARM
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("sizes", [(2, 3, 2), (0, 2, 3)])
def test_disarm_variance_never_exceeds_arm(sizes, loss, values):
    theta, x, t = _problem(sizes, loss, seed=57, scale=1.5)
    _, var_arm = nz.example_moments(sizes, theta, x, t, loss, "arm", values=values)
    _, var_dis = nz.example_moments(sizes, theta, x, t, loss, "disarm", values=values)
    assert np.all(var_dis <= var_arm + 1e-13)
    (w1s, b1s, _), _ = ne.layout(sizes)
    assert np.all(var_dis[b1s] < var_arm[b1s])  # strictly, for these generic networks


def _integrate_over_u(func, breaks, dim):
    """Integral over [0, 1]^dim (dim 1 or 2) of a vector function, split at ``breaks``."""
    opts = {"epsabs": 1e-13, "epsrel": 1e-12}
    if dim == 1:
        return integrate.quad_vec(
            lambda u: func(np.array([u])), 0.0, 1.0, points=breaks[0], **opts
        )[0]

    def inner(u0):
        return integrate.quad_vec(
            lambda u1: func(np.array([u0, u1])), 0.0, 1.0, points=breaks[1], **opts
        )[0]

    return integrate.quad_vec(inner, 0.0, 1.0, points=breaks[0], **opts)[0]


@pytest.mark.parametrize("estimator", ["arm", "disarm"])
@pytest.mark.parametrize("sizes,loss", [((1, 1, 2), "bce"), ((2, 2, 2), "xent")])
def test_arm_cells_match_integration_over_u(sizes, loss, estimator):
    theta, x, t = _problem(sizes, loss, seed=61, scale=1.5)
    (W1, b1), _ = ne.unpack(sizes, theta)
    p = _sigmoid(W1 @ x + b1)
    breaks = [sorted({pi, 1 - pi}) for pi in p]
    n = sizes[1]

    def g_and_square(u):
        g = nz.estimate(sizes, theta, x, t, loss, estimator, u)
        return np.concatenate([g, g * g])

    mean, second = np.split(_integrate_over_u(g_and_square, breaks, n), 2)
    m, v = nz.example_moments(sizes, theta, x, t, loss, estimator)
    np.testing.assert_allclose(m, mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(v, second - mean**2, rtol=0, atol=1e-10)


@pytest.mark.parametrize("estimator,values", [("arm", "01"), ("disarm", "pm1")])
def test_multilayer_arm_disarm_monte_carlo_mean(estimator, values):
    sizes = (1, 2, 2, 1)
    theta, x, t = _problem(sizes, "bce", seed=3)
    g = ne.example_gradient(sizes, theta, "bce", x, t, values=values)
    z = _mc_z(sizes, theta, x, t, "bce", estimator, 8000, 71, g, values=values)
    assert z < Z_MAX


def test_multilayer_arm_branches_by_hand():
    # sizes (0, 1, 1, 1): u = (u1, u2), then v^(1) = (v,) for the branch of layer 1
    sizes = (0, 1, 1, 1)
    theta = np.array([0.4, 1.5, -0.3, 2.0, 0.1])  # b_1, W_2, b_2, W_o, b_o
    t = np.array([0.7])
    p1 = _sigmoid(0.4)
    u1, u2, v = 0.5, 0.2, 0.9  # main: h1 = 1[u1 < p1] = 1; branch 1: 1[u1 > 1 - p1] = 1
    p2_main = _sigmoid(1.5 * 1 - 0.3)
    h2_main = float(u2 < p2_main)
    f2 = 0.5 * (2.0 * h2_main + 0.1 - 0.7) ** 2
    # layer-1 branch: h1 = 1 again, its layer 2 sampled with v
    h2_br1 = float(v < p2_main)
    f1_l1 = 0.5 * (2.0 * h2_br1 + 0.1 - 0.7) ** 2
    # layer-2 branch: h2 = 1[u2 > 1 - p2]
    h2_br2 = float(u2 > 1 - p2_main)
    f1_l2 = 0.5 * (2.0 * h2_br2 + 0.1 - 0.7) ** 2
    g = nz.estimate(sizes, theta, np.zeros(0), t, "mse", "arm", [u1, u2, v])
    dy_main, dy_br = 2.0 * h2_main + 0.1 - 0.7, 2.0 * h2_br2 + 0.1 - 0.7
    expected = [
        (f1_l1 - f2) * (u1 - 0.5),
        (f1_l2 - f2) * (u2 - 0.5) * 1.0,  # W_2 times h1 = 1
        (f1_l2 - f2) * (u2 - 0.5),
        0.5 * (dy_main * h2_main + dy_br * h2_br2),
        0.5 * (dy_main + dy_br),
    ]
    np.testing.assert_allclose(g, expected, rtol=1e-14, atol=1e-15)
    assert p1 > 0.5


# ---------------------------------------------------------------------------
# REBAR, Gumbel straight-through, concrete
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes,loss,values,options",
    [
        ((2, 3, 2), "bce", "01", {}),
        ((1, 2, 2, 1), "mse", "pm1", {"eta": 0.6, "tau": 1.5}),
    ],
)
def test_rebar_monte_carlo_mean(sizes, loss, values, options):
    theta, x, t = _problem(sizes, loss, seed=3)
    g = ne.example_gradient(sizes, theta, loss, x, t, values=values)
    z = _mc_z(sizes, theta, x, t, loss, "rebar", 5000, 83, g, values=values, **options)
    assert z < Z_MAX


@pytest.mark.parametrize("values", VALUES)
def test_rebar_one_unit_mean_by_integration(values):
    # N = 1: the mean is a 2-D integral over (u, v), split where the bit flips
    sizes = (1, 1, 2)
    theta, x, t = _problem(sizes, "bce", seed=89, scale=1.5)
    p = float(_sigmoid(theta[0] * x[0] + theta[1]))
    opts = {"epsabs": 1e-12, "epsrel": 1e-10}

    def over_v(u):
        return integrate.quad_vec(
            lambda v: nz.estimate(sizes, theta, x, t, "bce", "rebar", [u, v], values=values),
            0.0,
            1.0,
            **opts,
        )[0]

    mean = integrate.quad_vec(over_v, 0.0, 1.0, points=[1 - p], **opts)[0]
    g = ne.example_gradient(sizes, theta, "bce", x, t, values=values)
    np.testing.assert_allclose(mean, g, rtol=0, atol=1e-10)


def _gumbel_st_mean(sizes, theta, x, t, loss, tau):
    p = float(_sigmoid(theta[0]))
    opts = {"epsabs": 1e-13, "epsrel": 1e-12, "limit": 400}

    def f(u):
        return nz.estimate(sizes, theta, x, t, loss, "gumbel_st", [u], tau=tau)[0]

    return integrate.quad(f, 0.0, 1.0 - p, **opts)[0] + integrate.quad(f, 1.0 - p, 1.0, **opts)[0]


def test_gumbel_st_tends_to_the_trapezoid_rule():
    # toy f(b) = (b - t)^2: E[g] -> 1/2 sigmoid'(a) (f'(1) + f'(0)) as tau -> 0, error O(tau);
    # for this quadratic f the trapezoid value is the exact gradient
    a, t = -2.0, 0.45
    sizes, theta, x, target = nz.toy_problem(a, t)
    p = _sigmoid(a)
    trapezoid = 0.5 * p * (1 - p) * (2 * (1 - t) + 2 * (0 - t))
    assert trapezoid == pytest.approx(nz.toy_gradient(a, t), rel=1e-12)
    means = {tau: _gumbel_st_mean(sizes, theta, x, target, "mse", tau) for tau in [1, 1e-2, 1e-3]}
    # LITERATURE.md 3.7: -0.0570 at tau = 1 and 0.00939 at tau = 0.01
    assert means[1] == pytest.approx(-0.0570, abs=5e-5)
    assert means[1e-2] == pytest.approx(0.00939, abs=5e-6)
    errors = {tau: abs(m - trapezoid) for tau, m in means.items()}
    assert errors[1e-3] < 0.2 * errors[1e-2] < 0.2 * 0.2 * errors[1]
    assert errors[1e-3] < 2e-4
    # a loss that is not quadratic in h: the limit is the trapezoid value, not the gradient
    theta = np.array([0.8, 2.5, -1.0])
    t = np.array([0.9])
    p = _sigmoid(0.8)
    dC = [2.5 * (_sigmoid(2.5 * h - 1.0) - 0.9) for h in (1.0, 0.0)]  # dC/dh at h = 1, 0
    trapezoid = 0.5 * p * (1 - p) * (dC[0] + dC[1])
    g = ne.example_gradient(sizes, theta, "bce", x, t)[0]
    assert abs(trapezoid - g) > 1e-3
    assert _gumbel_st_mean(sizes, theta, x, t, "bce", 1e-3) == pytest.approx(trapezoid, abs=2e-4)


def _relaxed_loss(sizes, theta, x, t, loss, u, tau, values):
    """Concrete objective at fixed noise: relaxed values passed on, loss at the output."""
    params = ne.unpack(sizes, theta)
    h, start = x, 0
    for W, b in params[:-1]:
        z = W @ h + b + np.log(u[start : start + b.size]) - np.log1p(-u[start : start + b.size])
        start += b.size
        h = _sigmoid(z / tau) if values == "01" else 2 * _sigmoid(z / tau) - 1
    return ne.loss_value(loss, params[-1][0] @ h + params[-1][1], t)


@pytest.mark.parametrize("values", VALUES)
def test_concrete_is_the_pathwise_gradient_of_the_relaxed_loss(values):
    sizes = (2, 2, 2, 2)
    rng = np.random.default_rng(97)
    for loss in LOSSES:
        theta, x, t = _problem(sizes, loss, seed=7)
        u = rng.uniform(size=4)
        g = nz.estimate(sizes, theta, x, t, loss, "concrete", u, values=values, tau=0.7)
        eps = 1e-6
        fd = np.array(
            [
                (
                    _relaxed_loss(sizes, theta + eps * e, x, t, loss, u, 0.7, values)
                    - _relaxed_loss(sizes, theta - eps * e, x, t, loss, u, 0.7, values)
                )
                / (2 * eps)
                for e in np.eye(theta.size)
            ]
        )
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_gumbel_st_uses_the_logistic_threshold():
    # b = 1[a + logit(u) > 0], i.e. the unit fires when u > 1 - p (not when u < p)
    sizes, theta, x, target = nz.toy_problem(1.0, 0.3)
    p = _sigmoid(1.0)
    for u, b in [(1 - p + 1e-6, 1.0), (1 - p - 1e-6, 0.0)]:
        g = nz.estimate(sizes, theta, x, target, "mse", "gumbel_st", [u])
        assert g[2] == pytest.approx(2 * (b - 0.3) / math.sqrt(2), rel=1e-12)  # dC/db_o


# ---------------------------------------------------------------------------
# Noisy rectifier
# ---------------------------------------------------------------------------


def test_noisy_rectifier_one_unit_against_quadrature():
    # h = max(0, a + sigma z), C = 1/2 (w h + c - t)^2; E[C] by quadrature over z
    a, w, c, t, sigma = 0.3, -1.4, 0.5, 0.8, 0.7
    sizes = (0, 1, 1)

    def expected_cost(theta):
        a_, w_, c_ = theta
        kink = -a_ / sigma

        def integrand(z):
            h = max(0.0, a_ + sigma * z)
            return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * 0.5 * (w_ * h + c_ - t) ** 2

        opts = {"epsabs": 1e-14, "epsrel": 1e-13, "limit": 200}
        return (
            integrate.quad(integrand, -np.inf, kink, **opts)[0]
            + integrate.quad(integrand, kink, np.inf, **opts)[0]
        )

    theta = np.array([a, w, c])
    eps = 1e-5
    exact = np.array(
        [
            (expected_cost(theta + eps * e) - expected_cost(theta - eps * e)) / (2 * eps)
            for e in np.eye(3)
        ]
    )
    rng = np.random.default_rng(101)
    n = 20000
    draws = np.array(
        [
            nz.estimate(sizes, theta, np.zeros(0), [t], "mse", "noisy_rectifier", [z], sigma=sigma)
            for z in rng.standard_normal(n)
        ]
    )
    se = draws.std(axis=0, ddof=1) / math.sqrt(n)
    assert np.max(np.abs(draws.mean(axis=0) - exact) / se) < Z_MAX
