"""The split by source by messages (:mod:`gradstat.engines.message_noise`): REINFORCE and
the straight-through-type estimators.

Checked against the enumerated split of :mod:`gradstat.noise` (itself checked against the
naive enumerator in ``tests/test_noise.py``) where both apply, against the message
engine's total variance on networks too wide to enumerate, and against the 400-digit
enumeration at near-certain units.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from reference import precise_enumerator as pe

import gradstat as gs
from gradstat.strategies import problems

BASELINES = st.one_of(
    st.sampled_from(["none", "mean", "optimal"]),
    st.floats(-3.0, 3.0, allow_nan=False),
)


SURROGATES = ["st", "st_sigmoid", "st_tempered", "reinmax"]


def _split_both_ways(net, X, T, estimator="reinforce", **options):
    joint = gs.noise_decomposition(net, X, T, estimator, engine="joint", **options)
    messages = gs.noise_decomposition(net, X, T, estimator, engine="layerwise", **options)
    return joint, messages


def _assert_same_split(got, want):
    """Every part, mean, trace and share within 1e-10 of the reference, relative to the
    value itself or, for values that cancel to nothing, to the scale of the estimates
    (the rounding of sums over states whose estimates are that large)."""
    assert got.sources == want.sources
    second = max((want.var + want.mean**2).max(), np.finfo(float).tiny)
    floor = 1e-13 * second
    np.testing.assert_allclose(got.parts, want.parts, rtol=1e-10, atol=floor)
    np.testing.assert_allclose(got.var, want.var, rtol=1e-10, atol=floor)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-10, atol=1e-13 * np.sqrt(second))
    for group in want.groups:
        np.testing.assert_allclose(got.traces(group), want.traces(group), rtol=1e-10, atol=floor)


@given(
    problems(min_depth=1, max_depth=3, max_width=3, max_stochastic=7, max_batch=3,
             values=("01", "pm1")),
    BASELINES,
)  # fmt: skip
@example(  # an all-zero network: the joint mean is rounding noise about an exact 0
    problem=(gs.BinaryNetwork((0, 2, 3, 1), np.zeros(15), loss="mse"), np.zeros((1, 0)),
             np.zeros((1, 1))),
    baseline=1.5,
)  # fmt: skip
def test_message_split_equals_the_enumerated_split(problem, baseline):
    net, X, T = problem
    joint, messages = _split_both_ways(net, X, T, baseline=baseline)
    assert (joint.engine, messages.engine) == ("joint", "layerwise")
    assert messages.cov is None
    _assert_same_split(messages, joint)


@given(
    problems(min_depth=1, max_depth=3, max_width=3, max_stochastic=7, max_batch=2,
             values=("01", "pm1")),
    st.sampled_from(SURROGATES),
)  # fmt: skip
def test_surrogate_message_split_equals_the_enumerated_split(problem, estimator):
    net, X, T = problem
    joint, messages = _split_both_ways(net, X, T, estimator)
    assert messages.engine == "layerwise"
    _assert_same_split(messages, joint)


@pytest.mark.parametrize("estimator", SURROGATES)
@pytest.mark.parametrize("sizes", [(3, 4, 3, 2), (2, 3, 4, 2, 3), (2, 5, 1, 4, 2)])
def test_surrogate_message_split_on_wider_networks(sizes, estimator):
    net = gs.BinaryNetwork.random(sizes, loss="mse", scale=1.5, seed=len(sizes))
    X = np.random.default_rng(1).normal(size=(2, sizes[0]))
    T = np.full((2, sizes[-1]), 0.25)
    options = {"tau": 0.5} if estimator == "st_tempered" else {}
    joint, messages = _split_both_ways(net, X, T, estimator, **options)
    _assert_same_split(messages, joint)


@pytest.mark.parametrize(
    ("sizes", "loss", "baseline", "batch"),
    [
        ((3, 4, 3, 2), "mse", "optimal", 1),
        ((2, 3, 4, 2, 3), "xent", "none", 2),
        ((4, 2, 5, 1), "bce", "mean", 3),
        ((0, 3, 3, 3, 1), "linear", 0.25, 1),
        ((2, 5, 1, 4, 2), "mse", "optimal", 2),
    ],
)
def test_message_split_on_networks_wider_than_hypothesis_draws(sizes, loss, baseline, batch):
    net = gs.BinaryNetwork.random(sizes, loss=loss, scale=1.5, seed=len(sizes) + batch)
    rng = np.random.default_rng(batch)
    X = rng.normal(size=(batch, sizes[0]))
    if loss == "xent":
        T = rng.integers(0, sizes[-1], size=batch)
    else:
        T = rng.uniform(0.0, 1.0, size=(batch, sizes[-1]))
    joint, messages = _split_both_ways(net, X, T, baseline=baseline)
    _assert_same_split(messages, joint)


@pytest.mark.parametrize("baseline", ["optimal", -0.5])
def test_wide_network_parts_sum_to_the_message_engines_variance(baseline):
    # 2^32 joint states (refused at the default max_states = 2^24); 2^24 pairs of layers
    # 2 and 3 by messages.
    net = gs.BinaryNetwork.random((2, 8, 12, 12, 2), loss="mse", scale=0.8, seed=4)
    X = np.array([[0.5, -1.0], [1.5, 0.25]])
    T = np.array([[0.3, 0.7], [1.0, 0.0]])
    d = gs.noise_decomposition(net, X, T, "reinforce", baseline=baseline)
    m = gs.estimator_moments(net, X, T, "reinforce", baseline=baseline, engine="layerwise")
    assert d.engine == "layerwise"
    assert d.sources == ("layer1", "layer2", "layer3")
    assert (d.parts >= -1e-13 * d.var.max()).all()
    np.testing.assert_allclose(d.var, m.var, rtol=1e-10, atol=1e-13 * m.var.max())
    np.testing.assert_allclose(d.mean, m.mean, rtol=1e-10, atol=1e-13 * np.abs(m.mean).max())
    np.testing.assert_allclose(d.mean, m.gradient, rtol=1e-10, atol=1e-13 * np.abs(m.mean).max())
    shares = d.shares("all")
    assert shares.sum() == pytest.approx(1.0, rel=1e-12)
    # A layer's sampling adds no noise to the coordinates of the layers above it only
    # through their inputs: the output layer's noise comes from every layer.
    assert (d.traces("output") > 0.0).all()


@pytest.mark.parametrize("estimator", ["st", "reinmax"])
def test_wide_network_surrogate_parts_sum_to_the_message_engines_variance(estimator):
    net = gs.BinaryNetwork.random((2, 6, 12, 12, 1), loss="bce", scale=0.8, seed=5)
    x, t = np.array([0.5, -1.0]), np.array([1.0])
    d = gs.noise_decomposition(net, x, t, estimator)
    m = gs.estimator_moments(net, x, t, estimator, engine="layerwise")
    assert d.engine == "layerwise"
    np.testing.assert_allclose(d.var, m.var, rtol=1e-10, atol=1e-13 * m.var.max())
    np.testing.assert_allclose(d.mean, m.mean, rtol=1e-10, atol=1e-13 * np.abs(m.mean).max())


def test_split_at_near_certain_units_matches_the_400_digit_enumeration():
    # Units at pre-activations 40, -40 and 700: the score's 1 - p is sigmoid(-a) there.
    sizes = (1, 2, 2, 1)
    theta = np.array([0.4, -0.3, 40.0, 700.0, 0.3, -0.2, 0.5, 0.1, -40.0, 0.2, 0.9, -1.1, 0.3])
    net = gs.BinaryNetwork(sizes, theta, loss="mse")
    x, t = np.array([0.7]), np.array([0.4])
    d = gs.noise_decomposition(net, x, t, "reinforce", engine="layerwise", baseline=1.3)
    want = pe.to_float(pe.example_moments(sizes, theta, "mse", x, t, "reinforce", 1.3)["var"])
    np.testing.assert_allclose(d.var, want, rtol=1e-12)


def test_refused_where_neither_enumeration_nor_messages_apply():
    net = gs.BinaryNetwork.random((2, 13, 13, 1), seed=0)
    with pytest.raises(
        ValueError, match=r"67,108,864 noise states .* messages does not apply either: .*"
        r"2\^26 = 67,108,864 pairs of adjacent layer states"
    ):  # fmt: skip
        gs.noise_decomposition(net, [1.0, 0.0], [0.5], "reinforce")


def test_message_refusals_name_the_problem():
    net = gs.BinaryNetwork.random((2, 8, 9, 1), seed=1)
    x, t = [1.0, 0.0], [0.5]
    with pytest.raises(ValueError, match="full_cov needs joint enumeration"):
        gs.noise_decomposition(net, x, t, "reinforce", full_cov=True, max_states=2**16)
    with pytest.raises(ValueError, match=r"131,072 noise states .* 2\^17 = 131,072 pairs"):
        gs.noise_decomposition(net, x, t, "st", max_states=2**16)
    with pytest.raises(ValueError, match="full_cov needs joint enumeration"):
        gs.noise_decomposition(net, x, t, "st_sigmoid", engine="layerwise", full_cov=True)
    with pytest.raises(ValueError, match="by messages is not available: STS"):
        gs.noise_decomposition(net, x, t, "sts", engine="layerwise")
    with pytest.raises(ValueError, match=r"uses engine 'joint', not 'cells'"):
        gs.noise_decomposition(net, x, t, "reinforce", engine="cells")
    with pytest.raises(ValueError, match="engine must be one of"):
        gs.noise_decomposition(net, x, t, "reinforce", engine="messages")
    deep = gs.BinaryNetwork.random((2, 6, 6, 6, 1), seed=1)
    with pytest.raises(ValueError, match=r"engine='auto' or engine='layerwise' to split it"):
        gs.noise_decomposition(deep, x, t, "reinforce", engine="joint", max_states=2**16)
