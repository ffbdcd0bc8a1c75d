"""REBAR's ``tied`` option against a transcription of the published multi-layer code.

``reference.rebar_published`` differentiates the authors' surrogate objective by complex
step, with ``v`` tied to ``u`` as their code ties it; gradstat's ``rebar(tied=True)`` fed
``v`` = the cell fraction of ``u`` must give the same estimate draw for draw.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference.rebar_published import cell_fraction, published_rebar

import gradstat as gs
from gradstat.strategies import problems

RTOL = 1e-10


def _target(net, row):
    return int(np.asarray(row).reshape(-1)[0]) if net.loss == "xent" else row


@given(
    problems(max_batch=1, max_depth=3, max_stochastic=6, values=("01", "pm1")),
    st.integers(0, 2**32 - 1),
    st.floats(0.1, 2.0),
    st.floats(0.2, 2.0),
)
def test_tied_rebar_is_the_published_estimate_draw_by_draw(problem, seed, eta, tau):
    net, X, T = problem
    x, t = X[0], _target(net, T[0])
    rng = np.random.default_rng(seed)
    u = np.clip(rng.random(net.n_stochastic), 1e-6, 1 - 1e-6)
    v = cell_fraction(net.sizes, net.params, x, u, net.values)
    noise = np.concatenate([u, v])
    got = gs.estimate_from_noise(net, x, t, "rebar", noise, eta=eta, tau=tau, tied=True)
    want = published_rebar(
        net.sizes, net.params, x, t, net.loss, u, eta=eta, tau=tau, values=net.values
    )
    assert np.max(np.abs(got - want)) <= RTOL * (1 + np.max(np.abs(want)))


def test_tied_changes_only_the_layers_above_the_first():
    net = gs.BinaryNetwork.random((2, 3, 3, 1), loss="bce", seed=4)
    x, t = [0.3, -0.7], [1.0]
    noise = np.random.default_rng(0).random(12)
    a = gs.estimate_from_noise(net, x, t, "rebar", noise)
    b = gs.estimate_from_noise(net, x, t, "rebar", noise, tied=True)
    first = 2 * 3 + 3
    stochastic = net.parameter_groups()["stochastic"]
    assert np.array_equal(a[:first], b[:first])
    assert np.array_equal(a[stochastic.stop :], b[stochastic.stop :])
    assert np.max(np.abs(a[first : stochastic.stop] - b[first : stochastic.stop])) > 1e-3


def test_untied_default_is_unchanged():
    net = gs.BinaryNetwork.random((2, 3, 2), loss="mse", seed=1)
    a = gs.sample_gradients(net, [0.1, 0.2], [0.5, 0.5], "rebar", 50, seed=3)
    b = gs.sample_gradients(net, [0.1, 0.2], [0.5, 0.5], "rebar", 50, seed=3, tied=False)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("value", [1, "yes", None, 0.0])
def test_tied_must_be_a_bool(value):
    net = gs.BinaryNetwork.random((1, 1, 1), seed=0)
    with pytest.raises(TypeError, match="tied must be True or False"):
        gs.estimate_from_noise(net, [0.0], [0.0], "rebar", [0.5, 0.5], tied=value)
