"""Straight-through-type draws computed :data:`LANES` at a time, and their streaming sums.

:func:`gradstat.engines.sampling.surrogate_estimate` computes one draw; most of its time
goes to waiting: each dot product is a chain of additions in a fixed order, and each call
passes and reference-counts its arrays. :func:`surrogate_lanes` computes ``LANES`` draws
side by side, their values laid out ``[unit, lane]`` with the lane loop innermost: every
lane performs exactly the floating-point operations of one draw of
``surrogate_estimate``, in the same order, so every lane's estimate is that draw's, bit
for bit, while the lanes' chains overlap and share one vector instruction.
``gradstat.engines.streaming._add_draws`` then adds the lanes' estimates to a span's
streaming sums in draw order, with the same operations as one draw at a time. One
unit's value and surrogate (:func:`surrogate_unit`) is the same code for a lane and for a
draw.
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit

from gradstat.estimators.codes import ST_SIGMOID
from gradstat.estimators.dispatch import surrogate_jacobian
from gradstat.kernels.forward import MSE, loss_and_grad
from gradstat.kernels.geometry import Geometry
from gradstat.kernels.linking import outlined
from gradstat.kernels.philox import fill_noise

LANES = 4
"""Draws computed side by side: four float64 fill one AVX2 register."""

LH, LJ, LY, LDY, LWORK = 0, 1, 2, 3, 4
"""Rows of the lanes' scratch ``(LANE_ROWS, cols, LANES)``: per unit the values ``h`` and
the surrogate ``dh/da``; per output ``y`` and ``dC/dy``; two rows of backpropagation."""
LANE_ROWS = 6


@njit(cache=True, inline="always")
def surrogate_unit(
    ak: float, uk: float, low: float, kappa: float, code: int, opts: np.ndarray
) -> tuple:
    """A hidden unit above layer 1 with pre-activation ``ak`` and uniform ``uk``: its value
    and surrogate ``dh/da`` (``sigmoid_derivative(ak)`` from the same ``z`` for
    ``st_sigmoid``), for one draw (``surrogate_estimate``) and for each lane."""
    z = exp(-abs(ak))
    fire = uk < (1.0 / (1.0 + z) if ak >= 0.0 else z / (1.0 + z))
    if code == ST_SIGMOID:
        d = 1.0 + z
        jac = kappa * (z / (d * d))
    else:
        jac = surrogate_jacobian(code, ak, 1.0 if fire else 0.0, opts, kappa)
    return (1.0 if fire else low), jac


@njit(cache=True, inline="always")
def _lane_dots(
    theta: np.ndarray, bias: int, row: int, n_prev: int, H: np.ndarray, prev: int
) -> tuple[float, float, float, float]:
    """Each lane's ``theta[bias] + sum_j theta[row + j] H[prev + j]``, summed in the order
    ``j = 0, 1, ...`` from the bias, as one draw sums it; four chains side by side."""
    a0 = a1 = a2 = a3 = theta[bias]
    for j in range(n_prev):
        w = theta[row + j]
        a0 += w * H[prev + j, 0]
        a1 += w * H[prev + j, 1]
        a2 += w * H[prev + j, 2]
        a3 += w * H[prev + j, 3]
    return a0, a1, a2, a3


@njit(cache=True, inline="always")
def _lane_back(
    theta: np.ndarray, row: int, s0: int, n_prev: int, D: np.ndarray, i: int, H: np.ndarray,
    prev: int, g: np.ndarray, E: np.ndarray,
) -> None:  # fmt: skip
    """One row ``i`` of a layer's backpropagation in every lane: the weight gradients
    ``E[:, row - s0 + j] = D[i] H[prev + j]`` and ``g[j] += theta[row + j] D[i]``, as
    ``backprop_surrogate`` computes them."""
    for j in range(n_prev):
        w = theta[row + j]
        for q in range(LANES):
            d = D[i, q]
            E[q, row - s0 + j] = d * H[prev + j, q]
            g[j, q] += w * d


@njit(cache=True)
def surrogate_lanes(
    code: int, opts: np.ndarray, theta: np.ndarray, geo: Geometry, L1: np.ndarray,
    jac1: np.ndarray, b: int, t: np.ndarray, loss: int, U: np.ndarray, S: np.ndarray,
    y: np.ndarray, dy: np.ndarray, E: np.ndarray,
) -> None:  # fmt: skip
    """``LANES`` draws of ``surrogate_estimate`` for example ``b``: lane ``l`` reads the
    noise ``U[:, l]`` and writes its compressed estimate to ``E[l]``, bit for bit that
    of ``surrogate_estimate`` with ``u = U[:, l]``.

    ``S`` is scratch ``(LANE_ROWS, cols, LANES)``; ``y`` and ``dy`` one lane's outputs, for
    losses other than mse (computed lane by lane by ``loss_and_grad``).
    """
    # The rows as 2-D views and the offsets out of their tuple, taken once per call (for
    # LANES draws): indexing the 3-D array compiles to slower code.
    sizes, woff, boff, uoff = geo
    H, J, Y, DY = S[LH], S[LJ], S[LY], S[LDY]
    g, g_next = S[LWORK], S[LWORK + 1]
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    low = L1[b, 6, 0]
    kappa = 1.0 - low
    for i in range(sizes[1]):
        p1, h1, j1, j0 = L1[b, 5, i], L1[b, 4, i], jac1[b, 1, i], jac1[b, 0, i]
        for q in range(LANES):
            fire = U[i, q] < p1
            H[i, q] = h1 if fire else low
            J[i, q] = j1 if fire else j0
    for l in range(1, L):
        n_prev, base, prev, w0, b0 = sizes[l], uoff[l], uoff[l - 1], woff[l], boff[l]
        for i in range(sizes[l + 1]):
            a0, a1, a2, a3 = _lane_dots(theta, b0 + i, w0 + i * n_prev, n_prev, H, prev)
            k = base + i
            H[k, 0], J[k, 0] = surrogate_unit(a0, U[k, 0], low, kappa, code, opts)
            H[k, 1], J[k, 1] = surrogate_unit(a1, U[k, 1], low, kappa, code, opts)
            H[k, 2], J[k, 2] = surrogate_unit(a2, U[k, 2], low, kappa, code, opts)
            H[k, 3], J[k, 3] = surrogate_unit(a3, U[k, 3], low, kappa, code, opts)
    n_last, last, wL, bL, n_out = sizes[L], uoff[L - 1], woff[L], boff[L], sizes[L + 1]
    for o in range(n_out):
        v0, v1, v2, v3 = _lane_dots(theta, bL + o, wL + o * n_last, n_last, H, last)
        if loss == MSE:  # loss_and_grad's dC/dy = y - t
            DY[o, 0], DY[o, 1] = v0 - t[o], v1 - t[o]
            DY[o, 2], DY[o, 3] = v2 - t[o], v3 - t[o]
        else:
            Y[o, 0], Y[o, 1], Y[o, 2], Y[o, 3] = v0, v1, v2, v3
    if loss != MSE:
        for q in range(LANES):
            for o in range(n_out):
                y[o] = Y[o, q]
            loss_and_grad(loss, y, t, dy)
            for o in range(n_out):
                DY[o, q] = dy[o]
    # backprop_surrogate, its sums in the same order (each from 0.0, as there).
    for j in range(n_last):
        for q in range(LANES):
            g[j, q] = 0.0
    for o in range(n_out):
        for q in range(LANES):
            E[q, bL - s0 + o] = DY[o, q]
        _lane_back(theta, wL + o * n_last, s0, n_last, DY, o, H, last, g, E)
    for l in range(L - 1, -1, -1):
        n, n_prev, base = sizes[l + 1], sizes[l], uoff[l]
        for i in range(n):
            for q in range(LANES):
                delta = g[i, q] * J[base + i, q]
                g[i, q] = delta
                E[q, boff[l] - s0 + i] = delta
        if l > 0:
            prev, w0 = uoff[l - 1], woff[l]
            for j in range(n_prev):
                for q in range(LANES):
                    g_next[j, q] = 0.0
            for i in range(n):
                _lane_back(theta, w0 + i * n_prev, s0, n_prev, g, i, H, prev, g_next, E)
            g, g_next = g_next, g


@njit(cache=True)
def lane_noise(
    key: np.ndarray, first: int, m: int, b: int, normal: bool, noise: np.ndarray,
    u: np.ndarray, U: np.ndarray,
) -> None:  # fmt: skip
    """The noise of draws ``first .. first + m - 1`` of example ``b`` into the lanes
    ``U[:, :m]``: ``noise[first + q, b]`` where the noise is given (``noise`` not empty),
    else from the draws' streams (:func:`gradstat.kernels.philox.fill_noise`, ``u`` its
    scratch). Lanes past ``m`` repeat the last draw (their estimates are computed and
    ignored)."""
    for q in range(LANES):
        i = first + min(q, m - 1)
        if noise.shape[0] > 0:
            for k in range(U.shape[0]):
                U[k, q] = noise[i, b, k]
        else:
            fill_noise(key, i, b, normal, u)
            for k in range(u.shape[0]):
                U[k, q] = u[k]


call_surrogate_lanes = outlined(f"{__name__}:surrogate_lanes")
""":func:`surrogate_lanes` through its one compiled copy (:mod:`gradstat.kernels.linking`):
linked into each sampling kernel, it was optimised and compiled again in each. Kernels
call this, directly, so that their cached code records the call."""
