"""RELAX: against an independent reference, against REBAR with REBAR's control, and
unbiased by a seeded Monte Carlo check."""

from __future__ import annotations

import numpy as np
import pytest
from reference import naive_enumerator as ne
from reference import naive_new as nn
from scipy.special import expit

import gradstat as gs
from gradstat.estimators.relax import linear_control, relax_estimator, relax_from_noise
from gradstat.testing import assert_unbiased


def _wavy(t, z):
    """A nonlinear control: c = sum sin(z) / (t + 1)."""
    return float(np.sum(np.sin(z))) / (t + 1), np.cos(z) / (t + 1)


@pytest.mark.parametrize("sizes", [(2, 3, 2), (2, 2, 3, 1)])
@pytest.mark.parametrize("values", ["01", "pm1"])
@pytest.mark.parametrize("control", [linear_control(0.7, 0.5), _wavy])
def test_relax_per_draw_matches_the_reference(sizes, values, control):
    net = gs.BinaryNetwork.random(sizes, loss="mse", scale=1.5, seed=3, values=values)
    rng = np.random.default_rng(len(sizes))
    x, t = rng.normal(size=sizes[0]), rng.normal(size=sizes[-1])
    for _ in range(3):
        noise = rng.uniform(0.01, 0.99, 2 * net.n_stochastic)
        got = relax_from_noise(net, x, t, noise, control)
        want = nn.relax_estimate(net.sizes, net.params, x, t, "mse", noise, control,
                                 values=values)  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-8)


def _rebar_control(net, x, u, eta, tau):
    """REBAR's control for layer t: eta times the loss of the network relaxed from layer t
    up (upper layers with the draw's own uniforms u), its gradient by central differences."""
    layers = net.layers()
    low = -1.0 if net.values == "pm1" else 0.0
    kappa = 1.0 - low
    sizes = [b.shape[0] for _, b in layers[:-1]]
    starts = np.cumsum([0, *sizes])

    def loss_from(t_layer, z, target):
        h = np.asarray(x, float)
        for k, (W, b) in enumerate(layers[:-1]):
            a = W @ h + b
            if k < t_layer:
                zk = (
                    a
                    + np.log(u[starts[k] : starts[k + 1]])
                    - np.log1p(-u[starts[k] : starts[k + 1]])
                )
                h = np.where(zk > 0, 1.0, low)
                continue
            zk = (
                z
                if k == t_layer
                else a
                + np.log(u[starts[k] : starts[k + 1]])
                - np.log1p(-u[starts[k] : starts[k + 1]])
            )
            h = kappa * expit(zk / tau) + low
        W_o, b_o = layers[-1]
        return ne.loss_value(net.loss, W_o @ h + b_o, target)

    def make(target):
        def control(t_layer, z):
            grad = np.empty_like(z)
            for i in range(z.size):
                e = np.zeros_like(z)
                e[i] = 1e-6
                up, down = loss_from(t_layer, z + e, target), loss_from(t_layer, z - e, target)
                grad[i] = (up - down) / 2e-6
            return eta * loss_from(t_layer, z, target), eta * grad

        return control

    return make


@pytest.mark.parametrize("values", ["01", "pm1"])
def test_relax_with_rebar_control_is_rebar(values):
    net = gs.BinaryNetwork.random((2, 2, 3, 1), loss="bce", scale=1.2, seed=8, values=values)
    x, t = np.array([0.5, -0.7]), np.array([1.0])
    rng = np.random.default_rng(1)
    for _ in range(3):
        noise = rng.uniform(0.02, 0.98, 2 * net.n_stochastic)
        control = _rebar_control(net, x, noise[: net.n_stochastic], 0.8, 0.6)(t)
        got = relax_from_noise(net, x, t, noise, control)
        want = gs.estimate_from_noise(net, x, t, "rebar", noise, eta=0.8, tau=0.6)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("control", [linear_control([np.array([2.0, -1.0]), 0.5], 0.4),
                                     _wavy])  # fmt: skip
def test_relax_is_unbiased_by_the_calibrated_check(control):
    """Seeded Monte Carlo check at its default false-alarm rate alpha = 1e-4."""
    net = gs.BinaryNetwork.random((2, 2, 2, 1), loss="mse", scale=1.5, seed=2)
    x, t = np.array([0.3, -0.6]), np.array([0.4])
    result = assert_unbiased(relax_estimator(control), (net, x, t), method="mc",
                             n_samples=4000, seed=4)  # fmt: skip
    assert result.method == "mc"


def test_relax_refuses_bad_controls_and_noise():
    with pytest.raises(TypeError, match="control must be a callable"):
        relax_estimator(3.0)
    with pytest.raises(ValueError, match="tau"):
        linear_control(1.0, tau=0.0)
    net = gs.BinaryNetwork.random((2, 2, 1), seed=0)
    with pytest.raises(ValueError, match="strictly inside"):
        relax_from_noise(net, np.ones(2), [0.0], np.zeros(4), linear_control())
