"""PSA and Gumbel-Rao against their independent references (``reference/naive_new.py``).

PSA's reference differentiates the authors' detached surrogate objective by central
differences (error about 1e-9); Gumbel-Rao's draws the conditional noise with
``scipy.stats.logistic``. Exact moments of PSA are compared with a sum over the states
of that reference, weighted by the naive enumerator's probabilities.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from reference import naive_enumerator as ne
from reference import naive_new as nn
from reference import naive_zoo as nz

import gradstat as gs

SIZES = [(2, 3, 2), (2, 2, 3, 1), (1, 2, 2, 2, 2)]


def close(got, want, tol):
    scale = 1.0 + max(np.max(np.abs(got)), np.max(np.abs(want)))
    assert np.max(np.abs(np.asarray(got) - np.asarray(want))) <= tol * scale


def _case(sizes, values, loss, seed):
    n_out = max(2, sizes[-1]) if loss == "xent" else sizes[-1]
    net = gs.BinaryNetwork.random((*sizes[:-1], n_out), loss=loss, scale=1.5, seed=seed,
                                  values=values)  # fmt: skip
    rng = np.random.default_rng(seed)
    x = rng.normal(size=sizes[0])
    t = 1 if loss == "xent" else rng.uniform(0.0, 1.0, size=n_out)
    return net, x, t, rng


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("values", ["01", "pm1"])
@pytest.mark.parametrize("loss", ["bce", "xent"])
def test_psa_per_draw_matches_the_authors_objective(sizes, values, loss):
    net, x, t, rng = _case(sizes, values, loss, sum(sizes))
    for _ in range(3):
        u = rng.random(net.n_stochastic)
        got = gs.estimate_from_noise(net, x, t, "psa", u)
        close(got, nn.psa_estimate(net.sizes, net.params, x, t, loss, u, values=values), 1e-7)


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("values", ["01", "pm1"])
def test_linearised_psa_is_st_sigmoid(sizes, values):
    """The paper's linearisation of PSA is backprop with kappa sigmoid'(a): st_sigmoid."""
    net, x, t, rng = _case(sizes, values, "mse", 3 + sum(sizes))
    for _ in range(3):
        u = rng.random(net.n_stochastic)
        lin = nn.psa_estimate(net.sizes, net.params, x, t, "mse", u, values=values,
                              linearize=True)  # fmt: skip
        close(gs.estimate_from_noise(net, x, t, "st_sigmoid", u), lin, 1e-7)


@pytest.mark.parametrize("values", ["01", "pm1"])
def test_psa_exact_moments_match_a_sum_over_states(values):
    net, x, t, _ = _case((2, 2, 2, 1), values, "bce", 11)
    m = gs.estimator_moments(net, x[None], np.atleast_2d(t), "psa")
    assert m.engine == "joint"
    params = ne.unpack(net.sizes, net.params)
    mean = np.zeros(net.n_params)
    second = np.zeros(net.n_params)
    for bits in itertools.product((0.0, 1.0), repeat=net.n_stochastic):
        layers = nn._layers(net.sizes, np.array(bits))
        fwd = nz._bits_pass(params, x, values, layers)
        # u that draws these bits: below p for a 1, above it for a 0.
        u = np.concatenate([np.where(b == 1.0, p / 2, (1 + p) / 2)
                            for b, p in zip(fwd["bits"], fwd["p"], strict=True)])  # fmt: skip
        g = nn.psa_estimate(net.sizes, net.params, x, t, "bce", u, values=values)
        w = np.exp(fwd["log_prob"])
        mean += w * g
        second += w * g * g
    close(m.mean, mean, 1e-7)
    close(m.var, second - mean**2, 1e-7)


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("values", ["01", "pm1"])
@pytest.mark.parametrize("k,tau", [(1, 0.5), (4, 1.3)])
def test_gumbel_rao_per_draw_matches_the_reference(sizes, values, k, tau):
    for loss in ("mse", "xent"):
        net, x, t, rng = _case(sizes, values, loss, 5 + sum(sizes))
        for _ in range(3):
            noise = gs.sample_noise(net, "gumbel_rao", rng, k=k, tau=tau)[0]
            got = gs.estimate_from_noise(net, x, t, "gumbel_rao", noise, k=k, tau=tau)
            want = nn.gumbel_rao_estimate(net.sizes, net.params, x, t, loss, noise, k=k,
                                          tau=tau, values=values)  # fmt: skip
            close(got, want, 1e-9)


def test_gumbel_rao_options_are_checked():
    net = gs.BinaryNetwork.random((2, 2, 1), seed=0)
    x, t = np.ones(2), np.zeros(1)
    with pytest.raises(ValueError, match="k"):
        gs.analyze(net, x, t, "gumbel_rao", k=0)
    with pytest.raises(ValueError, match="tau"):
        gs.analyze(net, x, t, "gumbel_rao", tau=-1.0)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        gs.estimate_from_noise(net, x, t, "gumbel_rao", np.full(4, 0.5), k=2)
