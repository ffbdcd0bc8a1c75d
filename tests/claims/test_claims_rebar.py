"""REBAR claims: the tied bias of the minimal network, recomputed independently."""

from __future__ import annotations

from math import exp, log

import numpy as np
import pytest
from scipy.integrate import dblquad

import gradstat as gs
import gradstat.claims as gc


def _sig(z):
    return 1.0 / (1.0 + exp(-z))


def test_minimal_tied_bias_by_adaptive_quadrature():
    # eta E[c(ztilde_1)(b_2 - p_2)](h_1, 1) for b_1 = 0, W_2 = 2, b_2 = 0, W_o = 2, b_o = 0,
    # bce with t = 1, tau = 0.5: scipy's adaptive dblquad over (v', u_2) per cell.
    cx = gc.REBAR_TIED_MINIMAL
    a1, w2, b2, wo, bo = cx.params
    tau, p1 = 0.5, _sig(a1)
    total = np.zeros(2)
    for h1, lo, hi in ((1.0, 1 - p1, 1.0), (0.0, 0.0, 1 - p1)):
        p2 = _sig(w2 * h1 + b2)

        def c(u2, v):
            ht1 = _sig((a1 + log(v / (1 - v))) / tau)
            ht2 = _sig((w2 * ht1 + b2 + log(u2 / (1 - u2))) / tau)
            y = wo * ht2 + bo
            return log(1 + exp(y)) - y

        for bit2, l2, h2 in ((1.0, 1 - p2, 1.0), (0.0, 0.0, 1 - p2)):
            mass, _ = dblquad(c, lo, hi, l2, h2, epsabs=1e-13, epsrel=1e-12)
            total += mass * (bit2 - p2) * np.array([h1, 1.0])
    assert gc.tied_bias(cx.network(), cx.t[0]) == pytest.approx(total, rel=1e-9, abs=1e-12)
    g = gs.exact_gradient(cx.network(), cx.x, cx.t)[1:3]
    assert np.linalg.norm(total) / np.linalg.norm(g) == pytest.approx(0.66, abs=0.005)


def test_tied_bias_refuses_other_shapes():
    with pytest.raises(ValueError, match=r"\(0, 1, 1, 1\)"):
        gc.tied_bias(gs.BinaryNetwork.random((1, 1, 1, 1), seed=0), 1.0)


def test_rebar_claims_verdicts():
    unbiased = gc.CLAIMS["rebar_unbiased"].check(max_examples=5)
    tied = gc.CLAIMS["rebar_tied_biased"].check(max_examples=5)
    assert unbiased.verdict == "proved" and "largest |z|" in unbiased.evidence
    assert tied.verdict == "proved" and "(biased)" in tied.evidence
