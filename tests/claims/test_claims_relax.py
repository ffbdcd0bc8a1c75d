"""RELAX claim: the verdict, and the quadrature check's power to see a wrong correction."""

from __future__ import annotations

import numpy as np
from hypothesis import settings

import gradstat as gs
import gradstat.claims as gc
from gradstat.claims.relax import RELAX_TOY, relax_toy_mean
from gradstat.estimators.relax import linear_control


def test_relax_unbiased_is_proved():
    r = gc.CLAIMS["relax_unbiased"].check(max_examples=settings.default.max_examples)
    assert r.verdict == "proved" and "(holds)" in r.evidence


def test_the_check_sees_a_control_with_a_wrong_gradient():
    # Half the control's gradient: the correction no longer cancels the control's score term.
    good = linear_control(2.0, 0.5)

    def wrong(t, z):
        value, grad = good(t, z)
        return value, 0.5 * grad

    net = RELAX_TOY.network().with_params([0.7, *RELAX_TOY.params[1:]])
    g = gs.exact_gradient(net, RELAX_TOY.x, RELAX_TOY.t)
    np.testing.assert_allclose(relax_toy_mean(net, good), g, rtol=1e-9, atol=1e-12)
    assert abs(relax_toy_mean(net, wrong)[0] - g[0]) > 1e-3
