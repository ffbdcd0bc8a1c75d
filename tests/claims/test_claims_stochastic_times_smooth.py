"""STS claims: the approximation sequence of ``E_sts C``."""

from __future__ import annotations

from math import sqrt

import numpy as np
import pytest

import gradstat as gs
import gradstat.claims as gc


def test_sts_ratio_sequence(sigmoid):
    # One unit, C = 0.5 (1.5 h - 0.45)^2: |E_sts C - C(p)| / p = 0.5 * 1.5^2 (sqrt(p) - p).
    cx = gc.STS_RATIO_EXAMPLE
    ratios = []
    for a in gc.STS_LOGITS:
        net = cx.network().with_params([a, 1.5, 0.0])
        p, q = sigmoid(a), sqrt(sigmoid(a))

        def loss(h: float) -> float:
            return 0.5 * (1.5 * h - 0.45) ** 2

        e_sts = gc.sts_expected_loss(net, [], [0.45])
        assert e_sts == pytest.approx(q * loss(q) + (1 - q) * loss(0.0), rel=1e-13)
        ratios.append(abs(e_sts - loss(p)) / p)
        assert ratios[-1] == pytest.approx(0.5 * 2.25 * (q - p), rel=1e-6)
    assert np.all(np.diff(ratios) < 0)
    assert ratios[0] == pytest.approx(0.2543, abs=1e-4)
    assert ratios[-1] < 3e-3


def test_sts_expected_loss_needs_mse():
    with pytest.raises(ValueError, match="mse"):
        gc.sts_expected_loss(gs.BinaryNetwork((0, 1, 1), loss="linear"), [], [1.0])
