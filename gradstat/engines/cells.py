"""Exact moments of ARM and DisARM on one stochastic layer by their ``3^N`` cells of ``u``.

See :mod:`gradstat.estimators.arm` for the cells and the estimates within them.
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat.estimators.arm import layer_estimate
from gradstat.kernels.accumulate import (
    accumulate,
    call_reduce_chunks,
    clip_probabilities,
    new_accumulators,
    sign_of,
)
from gradstat.kernels.forward import log_sigmoid, loss_and_grad, output_gradient
from gradstat.kernels.geometry import Batch, Geometry
from gradstat.kernels.linking import PRANGE_ONLY, outlined


@njit(cache=True)
def _cells(p: float, pm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cell bounds ``lo, hi`` and pair bits ``b1, b2`` of one unit (``pm = 1 - p``)."""
    lo = np.empty(3)
    hi = np.empty(3)
    b1 = np.empty(3)
    b2 = np.empty(3)
    small = min(p, pm)
    large = max(p, pm)
    lo[0], hi[0], b1[0], b2[0] = 0.0, small, 0.0, 1.0
    lo[1], hi[1] = small, large
    if p >= 0.5:
        b1[1], b2[1] = 1.0, 1.0
    else:
        b1[1], b2[1] = 0.0, 0.0
    lo[2], hi[2], b1[2], b2[2] = large, 1.0, 1.0, 0.0
    return lo, hi, b1, b2


@njit(cache=True)
def _cell_estimate(
    disarm: bool, theta: np.ndarray, geo: Geometry, tab: np.ndarray, t: np.ndarray,
    loss: int, digits: np.ndarray, LO: np.ndarray, HI: np.ndarray, B1: np.ndarray,
    B2: np.ndarray, work: np.ndarray, e: np.ndarray, s: np.ndarray,
) -> tuple[float, float]:  # fmt: skip
    """The estimate ``e`` at the middle of the cell whose unit ``i`` lies in cell ``digits[i]``
    (:func:`_cells`); returns the cell's probability ``w`` and ``C(b1) - C(b2)``.

    ``work`` is scratch of shape ``(6, max(n_1, n_out))``; ``s`` is scratch like ``e``.
    """
    sizes, woff, boff, uoff = geo
    n1 = sizes[1]
    n_out = sizes[2]
    n = e.shape[0]
    low = tab[6, 0]
    h1, h2 = work[0, :n1], work[1, :n1]
    y1, y2, dy1, dy2 = work[2, :n_out], work[3, :n_out], work[4, :n_out], work[5, :n_out]
    w = 1.0
    for i in range(n1):
        q = digits[i]
        w *= HI[i, q] - LO[i, q]
        h1[i] = 1.0 if B1[i, q] == 1.0 else low
        h2[i] = 1.0 if B2[i, q] == 1.0 else low
    if w <= 0.0:
        return w, 0.0
    for o in range(n_out):
        v1 = theta[boff[1] + o]
        v2 = v1
        for j in range(n1):
            v1 += theta[woff[1] + o * n1 + j] * h1[j]
            v2 += theta[woff[1] + o * n1 + j] * h2[j]
        y1[o] = v1
        y2[o] = v2
    diff = loss_and_grad(loss, y1, t, dy1) - loss_and_grad(loss, y2, t, dy2)
    for i in range(n1):
        q = digits[i]
        mid = 0.5 * (LO[i, q] + HI[i, q])
        e[i] = layer_estimate(disarm, tab[0, i], mid, B1[i, q], B2[i, q], diff)
    output_gradient(sizes, woff, boff, uoff, h1, dy1, e)
    output_gradient(sizes, woff, boff, uoff, h2, dy2, s)
    for k in range(n1, n):
        e[k] = 0.5 * (e[k] + s[k])
    return w, diff


@njit(cache=True)
def _cells_chunk(
    disarm: bool, batch: Batch, geo: Geometry, b: int, lo: int, stop: int, LO: np.ndarray,
    HI: np.ndarray, B1: np.ndarray, B2: np.ndarray, G: np.ndarray, shift: np.ndarray,
    DW: np.ndarray, seg: np.ndarray, want_cov: bool, m: np.ndarray, s1: np.ndarray,
    m2: np.ndarray, sign: np.ndarray, desc: np.ndarray, cov: np.ndarray,
) -> None:  # fmt: skip
    """Cells ``lo`` to ``stop`` of example ``b`` for :func:`cells_kernel`, added to the
    chunk's accumulators ``m, s1, m2, sign, desc, cov``. A serial function called through
    its one compiled copy (:func:`gradstat.kernels.linking.outlined`), so that numba's
    parallel passes see only the kernel's short loop over chunks.
    """
    theta, T, loss = batch.theta, batch.T, batch.loss
    tab = batch.L1[b]
    sizes = geo.sizes
    n1 = sizes[1]
    n_out = sizes[2]
    n = G.shape[1]
    n_seg = seg.shape[0] - 1
    work = np.empty((6, max(n1, n_out)))
    e = np.empty(n)
    s = np.empty(n)
    d = np.empty(n)
    dots = np.empty(n_seg)
    digits = np.empty(n1, dtype=np.int64)
    for cell in range(lo, stop):
        rest = cell
        for i in range(n1):
            digits[i] = rest % 3
            rest //= 3
        w, diff = _cell_estimate(
            disarm, theta, geo, tab, T[b], loss, digits, LO, HI, B1, B2, work, e, s
        )
        if w <= 0.0:
            continue
        accumulate(
            w, e, G[b], shift, DW[b], seg, m, s1, m2,
            sign, desc, d, dots, cov,
        )  # fmt: skip
        if not disarm:
            for i in range(n1):
                q = digits[i]
                width = HI[i, q] - LO[i, q]
                extra = w * diff * diff * width * width / 12.0
                m2[i] += extra
                if want_cov:
                    cov[i, i] += extra
                # Replace the sign count of the cell mean by P(sign agrees | cell).
                gi = G[b, i]
                if sign_of(e[i]) == sign_of(gi):
                    sign[i] -= w
                if diff != 0.0 and gi != 0.0:
                    up = (HI[i, q] - max(LO[i, q], 0.5)) / width
                    up = min(max(up, 0.0), 1.0)
                    agree = up if (diff > 0.0) == (gi > 0.0) else 1.0 - up
                    sign[i] += w * agree
                elif diff == 0.0 and gi == 0.0:
                    sign[i] += w


_call_chunk = outlined(f"{__name__}:_cells_chunk")


@njit(cache=True)
def _cell_tables(
    disarm: bool, batch: Batch, geo: Geometry, b: int, LO: np.ndarray, HI: np.ndarray,
    B1: np.ndarray, B2: np.ndarray, shift: np.ndarray,
) -> None:  # fmt: skip
    """Example ``b``'s cells for :func:`cells_kernel`: each unit's cell bounds ``LO``,
    ``HI`` and pair bits ``B1``, ``B2`` (:func:`_cells`), and in ``shift`` the estimate in
    the likeliest cell (the shift of the variance sums)."""
    sizes = geo.sizes
    n1 = sizes[1]
    n_out = sizes[2]
    n = shift.shape[0]
    tab = batch.L1[b]
    for i in range(n1):
        pm = exp(log_sigmoid(-tab[0, i]))
        lo, hi, c1, c2 = _cells(tab[1, i], pm)
        LO[i] = lo
        HI[i] = hi
        B1[i] = c1
        B2[i] = c2
    greedy = np.empty(n1, dtype=np.int64)
    for i in range(n1):
        widths = HI[i] - LO[i]
        greedy[i] = np.argmax(widths)
    _cell_estimate(
        disarm, batch.theta, geo, tab, batch.T[b], batch.loss, greedy, LO, HI, B1, B2,
        np.empty((6, max(n1, n_out))), shift, np.empty(n),
    )  # fmt: skip


_call_cell_tables = outlined(f"{__name__}:_cell_tables")


@njit(parallel=PRANGE_ONLY, cache=True)
def cells_kernel(
    disarm: bool, batch: Batch, geo: Geometry, G: np.ndarray, DW: np.ndarray,
    seg: np.ndarray, want_cov: bool, chunks: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Exact moments of ARM / DisARM for one stochastic layer over the ``3^N`` cells.

    Same outputs as :func:`gradstat.engines.joint.moments_kernel` (compressed layout):
    ``E[g_hat - g]``, ``Var[g_hat]`` (summed about the estimate in the likeliest cell), sign
    probabilities, descent probabilities (NaN for ARM) and (``want_cov``) ``sum_x Cov_x``.
    """
    n1 = geo.sizes[1]
    B, n = G.shape
    n_seg = seg.shape[0] - 1
    S = np.int64(1)
    for _ in range(n1):
        S *= 3
    nc = S if S < chunks else chunks
    acc = new_accumulators(B, nc, n, n_seg, want_cov)
    acc_m, acc_s1, acc_m2, acc_sign, acc_desc, acc_cov = acc
    shift = np.empty(n)
    for b in range(B):
        LO = np.empty((n1, 3))
        HI = np.empty((n1, 3))
        B1 = np.empty((n1, 3))
        B2 = np.empty((n1, 3))
        _call_cell_tables(disarm, batch, geo, b, LO, HI, B1, B2, shift)
        for c in prange(nc):
            _call_chunk(
                disarm, batch, geo, b, c * S // nc, (c + 1) * S // nc, LO, HI, B1, B2, G, shift,
                DW, seg, want_cov, acc_m[b, c], acc_s1[b, c], acc_m2[b, c], acc_sign[b, c],
                acc_desc[b, c], acc_cov[c],
            )  # fmt: skip
    m, var, sign, desc, cov = call_reduce_chunks(acc)
    # Cell widths are differences of rounded probabilities: clip sums of them to [0, 1].
    sign = clip_probabilities(sign)
    desc = clip_probabilities(desc)
    if not disarm:
        desc[:, :] = np.nan
    return m, var, sign, desc, cov
