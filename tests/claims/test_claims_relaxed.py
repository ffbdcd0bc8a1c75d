"""Gumbel straight-through claims: the ``tau -> 0`` moments of the one-unit toy."""

from __future__ import annotations

from collections.abc import Callable
from math import log

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import expit

import gradstat.claims as gc


def test_gumbel_evidence_numbers(results):
    r = results["gumbel_st_limit"]
    assert "(holds:" in r.evidence and "last slope 1.00" in r.evidence
    assert "last slope 2.00" in r.evidence  # a = 0: sigmoid''(0) = 0, second order


@pytest.mark.parametrize("a, tau", [(2.0, 0.1), (0.0, 0.03), (-2.0, 0.01)])
def test_gumbel_st_toy_moments_match_the_closed_form_integral(a, tau, sigmoid, dsigmoid):
    # z = a + L, w = z / tau: E[g^k] = int f'(1[w > 0])^k s'(w)^k tau^(1-k) s'(tau w - a) dw,
    # f'(1) = 1.5, f'(0) = -0.5 for C = (h - 0.25)^2.
    def ds(w: float) -> float:
        return float(expit(w) * expit(-w))

    def moment(k: int) -> float:
        def side(slope: float) -> Callable[[float], float]:
            return lambda w: slope**k * ds(w) ** k * tau ** (1 - k) * ds(tau * w - a)

        hi = quad(side(1.5), 0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
        lo = quad(side(-0.5), -np.inf, 0, epsabs=1e-13, epsrel=1e-12)[0]
        return hi + lo

    mean, var, err = gc.gumbel_st_toy_moments(a, tau)
    assert err < 1e-8
    assert mean == pytest.approx(moment(1), abs=1e-9)
    assert var == pytest.approx(moment(2) - moment(1) ** 2, rel=1e-8)
    trap = dsigmoid(a) * (1.5 - 0.5) / 2
    # First order: E - trapezoid = -log(2) tau s''(a)(f'(1) - f'(0)), s'' = s'(1 - 2p).
    if a != 0.0:
        first = -log(2) * tau * dsigmoid(a) * (1 - 2 * sigmoid(a)) * 2.0
        assert mean - trap == pytest.approx(first, rel=0.1)
    # tau Var -> s'(a)(f'(0)^2 + f'(1)^2)/12.
    assert tau * var == pytest.approx(dsigmoid(a) * 2.5 / 12, rel=0.2)
