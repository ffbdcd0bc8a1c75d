"""MuProp claims: unbiased on a fixed network for several expansion points."""

from __future__ import annotations

import numpy as np

import gradstat as gs


def test_muprop_unbiased_on_a_fixed_pm1_network():
    net = gs.BinaryNetwork.random((2, 2, 3, 2), loss="xent", seed=11, values="pm1")
    x = np.array([[0.3, -1.0], [1.5, 0.2]])
    for expansion in ("mean_field", 1.5, -2.0):
        m = gs.estimator_moments(net, x, [1, 0], "muprop", expansion=expansion)
        np.testing.assert_allclose(m.example_mean, m.example_gradient, rtol=1e-10, atol=1e-13)
