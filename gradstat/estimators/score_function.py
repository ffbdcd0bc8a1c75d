"""The score-function (REINFORCE) estimator with baselines.

For stochastic binary neurons, with the unbiased estimator's optimal baseline::

    g_hat = (C(h) - c) * grad_theta log P(h | x; theta) + grad_theta C(y(h), t)

The second term is the direct path (non-zero only for ``W_o, b_o``). With
``s_j = d log P / d theta_j``: ``d/db_l = h_l - p_l`` and ``d/dW_l = outer(h_l - p_l,
h_{l-1})``. The baseline ``c`` is

* ``"none"``: 0;
* a float: that constant;
* ``"mean"``: the exact ``E[C | x]`` of each example (an oracle);
* ``"optimal"``: the per-parameter variance-minimising constant
  ``c_j = E[s_j^2 C] / E[s_j^2]`` of each example, exact (0 where ``E[s_j^2] = 0``; an
  oracle that moving-average baselines approximate).

Any baseline that does not depend on ``h`` leaves the estimator unbiased.

``reinforce_loo`` (option ``k >= 2``) draws ``k`` independent states and gives each the mean
loss of the other ``k - 1`` as its baseline::

    g_hat = (1/k) sum_j [ (C_j - (1/(k-1)) sum_{m != j} C_m) grad log P(h^(j)) + grad C(h^(j)) ]

Unbiased (each baseline is independent of its own draw); its exact moments sum over the
``2^(N k)`` tuples of states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit

from gradstat.estimators.codes import REINFORCE, REINFORCE_LOO
from gradstat.estimators.options import check_count, check_keyword_or_real
from gradstat.estimators.registry import Estimator
from gradstat.kernels.forward import output_gradient, score_vector
from gradstat.kernels.geometry import Geometry
from gradstat.kernels.workspace import state_rows

BASELINES = ("none", "mean", "optimal")

check_baseline = check_keyword_or_real("baseline", BASELINES)


@njit(cache=True)
def reinforce_estimate(
    geo: Geometry, C: float, baseline: np.ndarray, ws: np.ndarray, e: np.ndarray
) -> None:
    """One REINFORCE estimate of the state in ``ws`` (loss ``C``), compressed layout:
    ``(C - c_j) s_j`` plus the direct path."""
    sizes, woff, boff, uoff = geo
    a, p, bit, h, _, _, dy, _, _ = state_rows(ws, geo)
    score_vector(sizes, woff, boff, uoff, bit, p, h, e, a)
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    for k in range(woff[L] - s0):
        e[k] *= C - baseline[k]
    output_gradient(sizes, woff, boff, uoff, h, dy, e)


def _loo_draws(hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
    return int(sum(hidden)) * options["k"]


ENTRIES = (
    Estimator(
        name="reinforce",
        code=REINFORCE,
        summary="score function: (C - c) grad log P(h) + direct path",
        reference="Williams (1992); Bengio, Léonard & Courville (2013)",
        unbiased=True,
        options={"baseline": "none"},
        validators={"baseline": check_baseline},
        layerwise=True,
    ),
    Estimator(
        name="reinforce_loo",
        code=REINFORCE_LOO,
        summary="REINFORCE over k draws, each with the others' mean loss as baseline",
        reference="Kool, van Hoof & Welling (2019), ICLR workshop",
        unbiased=True,
        options={"k": 2},
        validators={"k": check_count("k", 2)},
        encode=lambda options: np.array([float(options["k"])]),
        noise_size=_loo_draws,
    ),
)
