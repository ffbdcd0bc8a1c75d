"""The mse decomposition claim on a fixed network."""

from __future__ import annotations

import numpy as np
import pytest

import gradstat as gs
import gradstat.claims as gc


def test_mse_decomposition_on_a_fixed_network():
    net = gs.BinaryNetwork.random((2, 3, 2, 2), loss="mse", seed=1)
    x, t = np.array([0.5, -1.0]), np.array([0.3, -0.2])
    for name, options in gc.MSE_CASES:
        r = gs.analyze(net, x, t, name, method="exact", **options)
        m = gs.estimator_moments(net, x, t, name, full_cov=True, **options)
        want = float(m.bias @ m.bias + np.trace(m.cov))
        assert r.overall.mse == pytest.approx(want, rel=1e-10, abs=1e-14)
