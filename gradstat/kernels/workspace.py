"""Named rows of the per-chunk scratch array the per-draw kernels share.

A chunk of enumeration or sampling allocates one ``(WS_ROWS, cols)`` array once and every
draw reuses it, so nothing is allocated per draw. Rows are named here instead of indexed
by bare numbers in each estimator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from gradstat.kernels.geometry import Geometry

A, P, BIT, H, JAC = 0, 1, 2, 3, 4
"""Per unit: pre-activations, probabilities, sampled bits, values, surrogate ``dh/da``."""
Y, DY, Y2, DY2 = 5, 6, 7, 8
"""Per output: ``y`` and ``dC/dy`` of the sampled state and of a second state."""
UNIT2, UNIT3, UNIT4 = 9, 10, 11
"""Per unit, for estimators that carry more: ARM's second branch, MuProp's mean field and
slopes, REBAR's relaxed values and their slopes."""
WORK = 12
"""Two rows of backpropagation scratch (:func:`gradstat.kernels.forward.backprop_surrogate`)."""
PARAMS = 14
"""One row of the compressed parameter layout."""
REBAR_Z, REBAR_G = 15, 18
"""REBAR: three rows of conditional noise, two of control-variate gradients."""
DRAWS = 20
"""One value per independent draw (leave-one-out REINFORCE's ``k`` losses)."""
WS_ROWS = 21


def workspace_columns(n_units: int, n_out: int, n_compressed: int, width: int, k: int) -> int:
    """Columns of the scratch array: enough for any per-unit, output or parameter row."""
    return max(n_units, n_out, n_compressed, width, k, 1)


@njit(cache=True, inline="always")
def state_rows(
    ws: np.ndarray, geo: Geometry
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
    np.ndarray, np.ndarray, np.ndarray, np.ndarray,
]:  # fmt: skip
    """Views ``a, p, bit, h, jac`` (``N`` units) and ``y, dy, y2, dy2`` (``n_out``) of ``ws``."""
    L = geo.sizes.shape[0] - 2
    n_units = geo.uoff[L]
    n_out = geo.sizes[L + 1]
    return (
        ws[A, :n_units], ws[P, :n_units], ws[BIT, :n_units], ws[H, :n_units],
        ws[JAC, :n_units], ws[Y, :n_out], ws[DY, :n_out], ws[Y2, :n_out], ws[DY2, :n_out],
    )  # fmt: skip
