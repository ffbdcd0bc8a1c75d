"""The estimator zoo and units in {-1, +1}, against the independent oracles.

``naive_zoo`` and ``naive_enumerator`` are plain-NumPy implementations written from the
definitions alone; here the library's exact moments, per-sample estimates and one-unit
closed forms must agree with them, and the unbiasedness harness must pass or fail each
estimator as its paper says.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import naive_enumerator as ne
from reference import naive_zoo as nz
from shared import cases

import gradstat as gs
from gradstat.strategies import problems
from gradstat.testing import assert_biased, assert_unbiased, check_unbiased

RTOL = 1e-10

# (name, options) with exact moments on any depth, and ARM/DisARM (one layer only).
EXACT_CASES = cases(
    "st_tempered:tau=0.5 st_tempered:tau=2.0 reinmax:tau=1.0 reinmax:tau=1.7 leg "
    "muprop:expansion=mean_field muprop:expansion=0.3 reinforce_loo:k=2"
)
CELL_CASES = cases("arm disarm")


def target(net, row):
    """A batch row of targets in the form the naive oracles take."""
    flat = np.asarray(row, dtype=float).reshape(-1)
    return int(flat[0]) if net.loss == "xent" else flat


def one_layer(net, seed):
    """A network of ``net``'s first stochastic layer, input, output, loss and unit values,
    with random parameters (ARM's and DisARM's cells are exact on one layer only)."""
    sizes = (net.sizes[0], net.sizes[1], net.sizes[-1])
    params = gs.BinaryNetwork.random(sizes, seed=seed).params
    return gs.BinaryNetwork(sizes, params, loss=net.loss, values=net.values)


def close(got, want, rtol=RTOL):
    scale = 1.0 + max(np.max(np.abs(got), initial=0.0), np.max(np.abs(want), initial=0.0))
    assert np.max(np.abs(np.asarray(got) - np.asarray(want)), initial=0.0) <= rtol * scale


def paired(cases, **sizes):
    """Problems with units of either value, each with one of ``cases`` or ARM/DisARM."""
    return st.tuples(problems(values=("01", "pm1"), **sizes), st.sampled_from(cases + CELL_CASES))


@settings(max_examples=15)
@given(paired(EXACT_CASES, max_stochastic=4, max_batch=1))
def test_exact_moments_match_the_naive_oracle(drawn):
    (net, X, T), (name, options) = drawn
    if name in ("arm", "disarm") and net.n_layers > 1:
        net = one_layer(net, seed=net.n_params)
    if name == "reinforce_loo" and net.n_stochastic > 3:
        return
    m = gs.estimator_moments(net, X, T, name, **options)
    mean, var = nz.example_moments(
        net.sizes, net.params, X[0], target(net, T[0]), net.loss, name, values=net.values,
        **options,
    )  # fmt: skip
    close(m.example_mean[0], mean)
    close(m.example_var[0], var)


@settings(max_examples=15)
@given(problems(max_stochastic=5, max_batch=1, values=("pm1",)))
def test_units_in_pm1_match_the_naive_enumerator(problem):
    net, X, T = problem
    t = target(net, T[0])
    close(gs.exact_gradient(net, X, T), ne.exact_gradient(net.sizes, net.params, net.loss, X,
                                                          [t], values="pm1"))  # fmt: skip
    close(gs.expected_loss(net, X, T), ne.expected_loss(net.sizes, net.params, net.loss, X,
                                                        [t], values="pm1"))  # fmt: skip
    for name, baseline in (("st", "none"), ("st_sigmoid", "none"), ("reinforce", "optimal")):
        opts = {"baseline": baseline} if name == "reinforce" else {}
        m = gs.estimator_moments(net, X, T, name, **opts)
        want = ne.example_moments(
            net.sizes, net.params, net.loss, X[0], t, name, baseline, values="pm1"
        )
        close(m.example_mean[0], want["mean"])
        close(m.example_var[0], want["var"])


def test_pm1_one_layer_gray_code_and_layerwise_engines():
    """Both tuned gradient engines (one-layer blocks, messages) handle the value -1."""
    for sizes in [(3, 9, 2), (2, 3, 4, 3, 1)]:
        net = gs.BinaryNetwork.random(sizes, loss="bce", scale=1.5, seed=3, values="pm1")
        X = np.random.default_rng(0).normal(size=(2, sizes[0]))
        T = np.full((2, sizes[-1]), 0.3)
        want = ne.exact_gradient(sizes, net.params, "bce", X, list(T), values="pm1")
        close(gs.exact_gradient(net, X, T), want)


NOISE_CASES = [
    ("st_tempered", {"tau": 0.7}),
    ("reinmax", {"tau": 1.3}),
    ("leg", {}),
    ("muprop", {}),
    ("muprop", {"expansion": -0.4}),
    ("reinforce_loo", {"k": 3}),
    ("arm", {}),
    ("disarm", {}),
    ("gumbel_st", {"tau": 0.6}),
    ("concrete", {"tau": 0.8}),
    ("rebar", {"eta": 0.7, "tau": 0.4}),
    ("noisy_rectifier", {"sigma": 0.9}),
]


@pytest.mark.parametrize("sizes", [(2, 3, 2), (2, 2, 3, 1), (1, 2, 2, 2, 3)])
@pytest.mark.parametrize("values", ["01", "pm1"])
@pytest.mark.parametrize("name,options", NOISE_CASES)
def test_per_sample_estimates_match_the_naive_oracle(sizes, values, name, options):
    """The same noise gives the same estimate (hand-written NumPy): every estimator, depth."""
    if values == "pm1" and name == "noisy_rectifier":
        return
    rng = np.random.default_rng(sum(sizes) + len(name))
    for loss in ("mse", "xent"):
        n_out = max(2, sizes[-1]) if loss == "xent" else sizes[-1]
        shape = (*sizes[:-1], n_out)
        net = gs.BinaryNetwork.random(shape, loss=loss, scale=1.5, seed=7, values=values)
        x = rng.normal(size=sizes[0])
        t = 1 if loss == "xent" else rng.normal(size=n_out)
        for _ in range(3):
            u = gs.sample_noise(net, name, rng, **options)
            got = gs.estimate_from_noise(net, x, t, name, u, **options)
            want = nz.estimate(net.sizes, net.params, x, t, loss, name, u[0], values=values,
                               **options)  # fmt: skip
            close(got, want, 1e-9)


TOY_CASES = cases(
    "st st_sigmoid sts reinforce st_tempered:tau=0.5 reinmax:tau=1.0 reinmax:tau=2.0 leg muprop "
    "reinforce_loo:k=2 reinforce_loo:k=3 arm disarm"
)


@pytest.mark.parametrize("name,options", TOY_CASES)
@pytest.mark.parametrize("a", [-2.0, 0.0, 2.0])
@pytest.mark.parametrize("t", [0.45, 0.499])
def test_one_unit_closed_forms(name, options, a, t):
    """``f(b) = (b - t)^2`` with one unit: the exact mean and variance on the logit equal
    the closed forms derived by hand in ``naive_zoo.toy_moments``."""
    sizes, theta, x, target_ = nz.toy_problem(a, t)
    net = gs.BinaryNetwork(sizes, theta, loss="mse")
    m = gs.estimator_moments(net, x, target_, name, **options)
    mean, var = nz.toy_moments(name, a, t, **options)
    assert m.mean[0] == pytest.approx(mean, rel=1e-10, abs=1e-14)
    assert m.var[0] == pytest.approx(var, rel=1e-9, abs=1e-14)
    assert m.gradient[0] == pytest.approx(nz.toy_gradient(a, t), rel=1e-12)


UNBIASED_EXACT = cases("leg muprop muprop:expansion=1.5 reinforce_loo:k=2")


@settings(max_examples=10)
@given(paired(UNBIASED_EXACT, max_stochastic=3, max_batch=2))
def test_unbiased_estimators_pass_the_exact_harness(drawn):
    (net, X, T), (name, options) = drawn
    if name in ("arm", "disarm"):
        net = one_layer(net, seed=1)
    result = assert_unbiased(name, (net, X, T), **options)
    assert result.method == "exact"


BIASED_PROBLEM = (gs.BinaryNetwork.random((2, 3, 2, 1), loss="bce", scale=2.0, seed=5),
                  np.array([1.0, -0.5]), np.array([0.8]))  # fmt: skip


@pytest.mark.parametrize(
    "name,options",
    [("st_tempered", {"tau": 0.5}), ("reinmax", {"tau": 1.0}), ("reinmax", {"tau": 3.0})],
)
def test_biased_estimators_are_shown_biased_exactly(name, options):
    result = assert_biased(name, BIASED_PROBLEM, **options)
    assert result.method == "exact" and result.bias_norm > 1e-3


@pytest.mark.parametrize("name,options", [("gumbel_st", {"tau": 1.0}), ("concrete", {})])
def test_relaxations_are_shown_biased_by_monte_carlo(name, options):
    """Seeded Monte Carlo at alpha = 1e-4: the bias is many standard errors wide."""
    result = assert_biased(name, BIASED_PROBLEM, method="mc", n_samples=20_000, seed=1, **options)
    assert result.method == "mc" and result.test.pvalue < 1e-4


@pytest.mark.parametrize(
    "name,options,sizes",
    [
        ("rebar", {}, (2, 3, 2)),
        ("rebar", {"eta": 0.5, "tau": 1.0}, (2, 2, 2, 1)),
        ("arm", {}, (2, 2, 2, 1)),
        ("disarm", {}, (1, 2, 2, 2, 1)),
        ("noisy_rectifier", {"sigma": 0.8}, (2, 3, 2)),
    ],
)
def test_monte_carlo_unbiased_estimators_pass_the_calibrated_check(name, options, sizes):
    """Seeded Monte Carlo check at its default false-alarm rate alpha = 1e-4 (a fixed seed,
    so the verdict is reproducible); the noisy rectifier is checked against the closed-form
    gradient of its own model."""
    net = gs.BinaryNetwork.random(sizes, loss="mse", scale=1.5, seed=2)
    x, t = np.linspace(-1.0, 1.0, sizes[0]), np.full(sizes[-1], 0.4)
    result = assert_unbiased(name, (net, x, t), method="mc", n_samples=20_000, seed=4, **options)
    assert result.method == "mc"


def test_noisy_rectifier_reference_is_its_own_model():
    net = gs.BinaryNetwork.random((2, 3, 2), loss="linear", seed=1)
    x, t = np.array([0.5, -1.0]), np.array([1.0, -2.0])
    r = gs.analyze(net, x, t, "noisy_rectifier", n_samples=2000, seed=0, sigma=0.5)
    assert r.reference == "rectifier-exact" and r.method == "mc"
    assert not np.allclose(r.gradient, gs.exact_gradient(net, x, t))
    deep = gs.BinaryNetwork.random((2, 3, 2, 2), loss="bce", seed=1)
    r = gs.analyze(deep, x, np.array([0.2, 0.9]), "noisy_rectifier", n_samples=400, seed=0)
    assert r.reference == "own-mean" and r.bias_norm == 0.0
    with pytest.raises(ValueError, match="its own model"):
        check_unbiased("noisy_rectifier", (deep, x, np.array([0.2, 0.9])), method="mc")


def test_one_layer_rectifier_closed_form_matches_finite_differences():
    from gradstat.estimators.noisy_rectifier import rectifier_gradient

    for loss in ("mse", "linear"):
        net = gs.BinaryNetwork.random((2, 3, 2), loss=loss, seed=4)
        X, T = np.array([[0.3, -1.2]]), np.array([[0.5, -0.7]])
        _, g = rectifier_gradient(net.sizes, net.params, X, T, loss, 0.7)
        fd = np.empty(net.n_params)
        for j in range(net.n_params):
            e = np.zeros(net.n_params)
            e[j] = 1e-6
            up = rectifier_gradient(net.sizes, net.params + e, X, T, loss, 0.7)[0][0]
            down = rectifier_gradient(net.sizes, net.params - e, X, T, loss, 0.7)[0][0]
            fd[j] = (up - down) / 2e-6
        np.testing.assert_allclose(g[0], fd, rtol=1e-6, atol=1e-8)


def test_arm_engines_and_descent_probability():
    net = gs.BinaryNetwork.random((2, 4, 2), loss="mse", seed=3)
    x, t = np.array([1.0, -1.0]), np.zeros(2)
    arm = gs.analyze(net, x, t, "arm")
    disarm = gs.analyze(net, x, t, "disarm")
    assert arm.engine == "cells" and disarm.engine == "cells"
    # ARM's descent probability is exact on one layer of at most ARM_DESCENT_MAX_UNITS
    # units (gradstat.engines.arm_descent, checked in tests/engines/test_arm_descent.py).
    assert 0.0 <= arm.descent_probability <= 1.0 and 0.0 <= disarm.descent_probability <= 1.0
    assert np.all(disarm.var <= arm.var + 1e-12)
    # ARM's exact sign agreement and descent probability match a large Monte Carlo run
    # (5 jackknife se each).
    mc = gs.analyze(net, x, t, "arm", method="mc", n_samples=40_000, seed=1)
    se = mc.standard_errors["all"].sign_agreement
    assert abs(mc.sign_agreement - arm.sign_agreement) < 5 * se + 1e-12
    se = mc.standard_errors["all"].descent_probability
    assert abs(mc.descent_probability - arm.descent_probability) < 5 * se + 1e-12
    deep = gs.BinaryNetwork.random((2, 2, 2, 1), seed=1)
    assert gs.analyze(deep, x, np.zeros(1), "arm", n_samples=100, seed=0).method == "mc"
    with pytest.raises(ValueError, match="one stochastic layer only"):
        gs.estimator_moments(deep, x, np.zeros(1), "arm")


def test_bad_options_and_unit_values_are_refused():
    net = gs.BinaryNetwork.random((2, 2, 1), seed=0)
    pm1 = gs.BinaryNetwork.random((2, 2, 1), seed=0, values="pm1")
    x, t = np.ones(2), np.zeros(1)
    with pytest.raises(ValueError, match="tau must be >= 1.*st_tempered"):
        gs.analyze(net, x, t, "reinmax", tau=0.5)
    with pytest.raises(ValueError, match="k must be an int >= 2"):
        gs.analyze(net, x, t, "reinforce_loo", k=1)
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        gs.analyze(net, x, t, "gumbel_st", tau=0.0)
    with pytest.raises(ValueError, match="expansion must be"):
        gs.analyze(net, x, t, "muprop", expansion="zero")
    for name in ("sts", "noisy_rectifier"):
        with pytest.raises(ValueError, match="not defined for units with values='pm1'"):
            gs.analyze(pm1, x, t, name, n_samples=10, seed=0)
    with pytest.raises(ValueError, match="values must be one of"):
        gs.BinaryNetwork((2, 2, 1), values="binary")
    with pytest.raises(ValueError, match="strictly inside"):
        gs.estimate_from_noise(net, x, t, "gumbel_st", [0.0, 0.5])
    with pytest.raises(ValueError, match="shape"):
        gs.estimate_from_noise(net, x, t, "rebar", [0.5, 0.5])
    with pytest.raises(ValueError, match="noise states per example"):
        gs.estimator_moments(net, x, t, "reinforce_loo", k=3, max_states=32)


def test_pm1_networks_save_and_load(tmp_path):
    net = gs.BinaryNetwork.random((2, 3, 1), seed=1, values="pm1")
    back = gs.BinaryNetwork.load(net.save(tmp_path / "n.npz"))
    assert back.values == "pm1" and np.array_equal(back.params, net.params)
    assert "values='pm1'" in repr(back)
    assert net.with_params(net.params).values == "pm1"


def test_zoo_draws_are_finite_at_extreme_logits():
    """Logits of magnitude 50 in both layers: logistic noise and flips stay finite."""
    for values in ("01", "pm1"):
        net = gs.BinaryNetwork((1, 2, 2, 1), [50, -50, 0, 0, 50, -50, -50, 50, 0, 0, 1, 1, 0],
                               values=values)  # fmt: skip
        for name in gs.available_estimators():
            if values not in gs.get_estimator(name).values:
                continue
            draws = gs.sample_gradients(net, np.ones(1), np.zeros(1), name, 50, seed=0)
            assert np.all(np.isfinite(draws)), name
