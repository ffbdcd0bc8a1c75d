"""MuProp: REINFORCE with a mean-field Taylor control variate.

REINFORCE with a control variate: the first-order Taylor expansion of the *mean-field*
network around an expansion point, plus that expansion's analytic gradient, one term per
stochastic layer. For layer ``l``, given the sampled values ``h_{l-1}`` (``x`` for
``l = 1``): ``mu_l = E[h_l | h_{l-1}]`` (``p_l``, or ``2 p_l - 1`` for ``values="pm1"``);
the expansion point ``hbar_l`` is ``mu_l`` (``expansion="mean_field"``, the paper's
choice) or a constant ``c`` in every unit (``expansion=c``). The mean-field network
passes ``m_l = hbar_l`` up deterministically, ``m_k = E[h_k | a = W_k m_{k-1} + b_k]``
(``k > l``), to ``ybar = W_o m_L + b_o``, ``fbar_l = C(ybar, t)``, with gradient
``d_l = d fbar_l / d h_l`` at ``hbar_l``. Then::

    r_l         = C(y(h), t) - fbar_l - d_l . (h_l - hbar_l)
    g_hat(b_l)_i = r_l (b_i - p_i) + d_{l,i} kappa p_i (1 - p_i)
    g_hat(W_l)_ij = g_hat(b_l)_i h_{l-1,j}

(``kappa = dE[h]/dp``: 1, or 2 for ``"pm1"``), and the direct path ``dC/dW_o`` at the
sampled state for the output layer. The control variate is affine in ``h_l`` with
coefficients that do not depend on ``h_l``, so its expectation's gradient is exactly the
added term: MuProp is unbiased for any expansion point. Its deterministic part is
sigmoid straight-through evaluated at the mean-field point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit

from gradstat.estimators.codes import MUPROP
from gradstat.estimators.options import check_keyword_or_real, expansion_units
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import log_sigmoid, output_gradient, write_unit
from gradstat.kernels.geometry import Example
from gradstat.kernels.mean_field import mean_field_above
from gradstat.kernels.workspace import UNIT3, UNIT4, WORK, state_rows

check_expansion = check_keyword_or_real("expansion", ("mean_field",))


@njit(cache=True)
def muprop_estimate(expansion: float, ex: Example, C: float, ws: np.ndarray, e: np.ndarray) -> None:
    """Write the MuProp estimate of the state in ``ws`` (loss ``C``) into ``e`` (compressed).

    ``expansion`` is NaN for the mean-field point, else the constant expansion value.
    Rows ``UNIT3`` and ``UNIT4`` of ``ws`` receive the mean-field values ``m`` and their
    slopes ``jm = kappa sigmoid'(abar)``; ``Y2``/``DY2`` the mean-field output and its
    ``dC/dy`` (:func:`gradstat.kernels.mean_field.mean_field_above`).
    """
    _, geo, tab1, _, _, _ = ex
    sizes, woff, boff, uoff = geo
    a, p, bit, h, _, _, dy, ybar, dybar = state_rows(ws, geo)
    L = sizes.shape[0] - 2
    m = ws[UNIT3, : uoff[L]]
    jm = ws[UNIT4, : uoff[L]]
    work = ws[WORK : WORK + 2]
    low = tab1[6, 0]
    kappa = 1.0 - low
    for l in range(L):
        base = uoff[l]
        n = sizes[l + 1]
        # Expansion point of layer l, then the mean-field pass above it.
        for i in range(n):
            if np.isnan(expansion):
                m[base + i] = kappa * p[base + i] + low
            else:
                m[base + i] = expansion
        fbar, cur = mean_field_above(ex, l, m, jm, ybar, dybar, work)
        r = C - fbar
        for i in range(n):
            r -= work[cur, i] * (h[base + i] - m[base + i])
        for i in range(n):
            pi = p[base + i]
            ai = a[base + i]
            slope = kappa * np.exp(log_sigmoid(ai) + log_sigmoid(-ai))
            g = r * (bit[base + i] - pi) + work[cur, i] * slope
            write_unit(geo, h, l, i, g, e)
    output_gradient(sizes, woff, boff, uoff, h, dy, e)


def _expansion(options: Mapping[str, Any]) -> np.ndarray:
    point = options["expansion"]
    return np.array([np.nan if point == "mean_field" else point])


ENTRIES = (
    Estimator(
        name="muprop",
        code=MUPROP,
        summary="MuProp: REINFORCE with a first-order Taylor control variate, per layer",
        reference="Gu, Levine, Sutskever & Mnih (2016), ICLR, arXiv:1511.05176",
        unbiased=True,
        # The one option: its default, its check, its encoding and the units it bounds.
        options={"expansion": "mean_field"}, validators={"expansion": check_expansion},
        encode=_expansion, unit_bound=expansion_units("expansion"),
    ),
)  # fmt: skip
