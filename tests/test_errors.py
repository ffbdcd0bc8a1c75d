"""Bad input gets a clear ValueError or TypeError naming the argument, never a numba error."""

from __future__ import annotations

import numpy as np
import pytest

import gradstat as gs

NET = gs.BinaryNetwork.random((2, 3, 2), loss="mse", seed=0)
X, T = np.ones(2), np.zeros(2)


@pytest.mark.parametrize(
    ("sizes", "error", "match"),
    [
        ((2, 3), ValueError, "at least one stochastic layer"),
        ((2, 0, 1), ValueError, r"sizes\[1\] is a stochastic layer of width 0"),
        ((2, 3, 0), ValueError, "n_out"),
        ((-1, 3, 1), ValueError, "n_in"),
        ((2, 2.5, 1), TypeError, "integers"),
        (5, TypeError, "sequence of integers"),
    ],
)
def test_bad_sizes(sizes, error, match):
    with pytest.raises(error, match=match):
        gs.BinaryNetwork(sizes)


def test_bad_params_and_loss():
    with pytest.raises(ValueError, match=r"params must have shape \(17,\)"):
        gs.BinaryNetwork((2, 3, 2), np.zeros(5))
    with pytest.raises(ValueError, match="params contains NaN"):
        gs.BinaryNetwork((2, 3, 2), np.full(17, np.nan))
    with pytest.raises(ValueError, match="params contains NaN or infinite"):
        NET.with_params(np.r_[np.inf, np.zeros(16)])
    with pytest.raises(ValueError, match="loss must be one of"):
        gs.BinaryNetwork((2, 3, 2), loss="hinge")
    with pytest.raises(ValueError, match="n_out >= 2"):
        gs.BinaryNetwork((2, 3, 1), loss="xent")
    with pytest.raises(ValueError, match="scale"):
        gs.BinaryNetwork.random((2, 3, 2), scale=-1.0)


def test_params_are_read_only():
    with pytest.raises(ValueError, match="read-only"):
        NET.params[0] = 1.0


@pytest.mark.parametrize(
    ("x", "t", "error", "match"),
    [
        (np.ones(3), T, ValueError, r"x must have shape \(2,\) or \(B, 2\)"),
        (np.ones((2, 3)), np.zeros((2, 2)), ValueError, "x must have shape"),
        (np.array([1.0, np.nan]), T, ValueError, "x contains NaN"),
        (np.ones(2), np.zeros(3), ValueError, r"t of shape \(2,\)"),
        (np.ones((3, 2)), np.zeros(2), ValueError, r"t of shape \(3, 2\)"),
        (np.ones(2), np.array([np.inf, 0.0]), ValueError, "t contains NaN"),
        (np.ones((0, 2)), np.zeros((0, 2)), ValueError, "no examples"),
        ("abc", T, TypeError, "x must be an array"),
    ],
)
def test_bad_inputs_and_targets(x, t, error, match):
    with pytest.raises(error, match=match):
        gs.exact_gradient(NET, x, t)


def test_targets_per_loss():
    bce = gs.BinaryNetwork.random((2, 2, 2), loss="bce", seed=0)
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        gs.expected_loss(bce, X, np.array([0.5, 1.5]))
    xent = gs.BinaryNetwork.random((2, 2, 3), loss="xent", seed=0)
    with pytest.raises(TypeError, match="integer class index"):
        gs.expected_loss(xent, X, 1.5)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        gs.expected_loss(xent, X, 3)
    with pytest.raises(ValueError, match="integer array of shape"):
        gs.expected_loss(xent, np.ones((2, 2)), 1)
    with pytest.raises(TypeError, match="integer class"):
        gs.expected_loss(xent, X, "a")
    assert np.isfinite(gs.expected_loss(xent, np.ones((2, 2)), np.array([0, 2])))


def test_unknown_estimator_and_options():
    with pytest.raises(ValueError, match="unknown estimator 'rienforce'.*reinforce"):
        gs.analyze(NET, X, T, "rienforce")
    with pytest.raises(TypeError, match="unknown option.*'tau'.*baseline"):
        gs.estimator_moments(NET, X, T, "reinforce", tau=0.5)
    with pytest.raises(TypeError, match="options are: none"):
        gs.sample_gradients(NET, X, T, "st", 10, seed=0, baseline="mean")
    with pytest.raises(ValueError, match="baseline must be one of"):
        gs.analyze(NET, X, T, "reinforce", baseline="median")
    with pytest.raises(TypeError, match="baseline must be"):
        gs.analyze(NET, X, T, "reinforce", baseline=[1.0])
    with pytest.raises(ValueError, match="baseline must be a finite number"):
        gs.analyze(NET, X, T, "reinforce", baseline=float("nan"))
    with pytest.raises(TypeError, match="registered name"):
        gs.analyze(NET, X, T, 3)


def test_bad_sampling_arguments():
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        gs.sample_gradients(NET, X, T, "st", 0, seed=0)
    with pytest.raises(TypeError, match="n_samples must be an int"):
        gs.sample_gradients(NET, X, T, "st", 10.0, seed=0)
    with pytest.raises(TypeError, match="seed must be"):
        gs.sample_gradients(NET, X, T, "st", 10, seed="x")
    with pytest.raises(ValueError, match="method must be one of"):
        gs.analyze(NET, X, T, "st", method="quadrature")
    with pytest.raises(ValueError, match="only used with method='mc'"):
        gs.analyze(NET, X, T, "st", method="exact", n_samples=10)
    with pytest.raises(ValueError, match="n_samples must be >= 2"):
        gs.analyze(NET, X, T, "st", method="mc", n_samples=1)
    with pytest.raises(ValueError, match=r"u must have shape \(3,\)"):
        gs.estimate_from_noise(NET, X, T, "st", [0.5])
    with pytest.raises(ValueError, match=r"uniforms in \[0, 1\]"):
        gs.estimate_from_noise(NET, X, T, "st", [0.5, 2.0, 0.1])


def test_network_passed_in_wrong_place():
    with pytest.raises(TypeError, match="net must be a gradstat.BinaryNetwork"):
        gs.exact_gradient(X, NET, T)
    with pytest.raises(TypeError, match="pass the network first"):
        gs.analyze(NET, NET, T, "st")


def test_oracle_baseline_needs_enumeration():
    wide = gs.BinaryNetwork.random((2, 12, 1), seed=0)
    with pytest.raises(ValueError, match="'optimal' baseline.*2\\^12"):
        gs.sample_gradients(wide, X, np.zeros(1), "reinforce", 10, seed=0, baseline="optimal",
                            max_states=100)  # fmt: skip
    # Without an oracle baseline, sampling a network past the cap works.
    draws = gs.sample_gradients(wide, X, np.zeros(1), "reinforce", 10, seed=0, max_states=100)
    assert draws.shape == (10, wide.n_params)
