"""Every cell's estimate of ARM and DisARM kept, and their noise split into the state's and
the rest.

The cells engine (:mod:`gradstat.engines.cells`) sums ARM's and DisARM's ``3^N`` cells of
``u`` (one stochastic layer) into running moments; splitting their covariance by source
(:mod:`gradstat.noise`) needs each cell's estimate, so :func:`cell_estimates_kernel` keeps
them, calling the cells engine's own per-cell code.

The layer's state is ``h = b2 = 1[u < p]``, the state the network samples from ``u`` (the
main pass of :mod:`gradstat.estimators.arm`). Per unit, each cell of ``u_i`` lies on one
side of ``p_i``, so a cell fixes ``h`` and the law of total covariance over ``h`` gives

    Cov(g_hat) = Cov(E[g_hat | h]) + E[Cov(g_hat | h)],

the first part the noise of the layer's sampling, the second the noise beyond the state
(which cell of ``u`` given ``h``, hence the partner ``b1``, and for ARM the position of
``u`` within its cell). With cells ``c`` of probability ``w_c`` and mean estimate ``e_c``,

    E[g_hat | h] = sum_{c -> h} w_c e_c / P(h),
    E[Cov(g_hat | h)] = sum_c w_c (e_c - E[g_hat | h(c)]) (...)^T + sum_c w_c Cov(g_hat | c),

where ``Cov(g_hat | c)`` is zero for DisARM (constant in a cell) and, for ARM, diagonal
over layer 1's units: ``(C(b1) - C(b2))^2 width_i^2 / 12`` on unit ``i`` (``u_i`` uniform
in a cell of width ``width_i``, the units independent).
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat.engines.cells import _cell_estimate, _cells
from gradstat.kernels.blocks import CHUNKS, n_chunks
from gradstat.kernels.forward import log_sigmoid
from gradstat.kernels.geometry import Batch, Geometry


@njit(parallel=True, cache=True)
def cell_estimates_kernel(
    disarm: bool, batch: Batch, geo: Geometry, b: int, w: np.ndarray, diff: np.ndarray,
    est: np.ndarray, width: np.ndarray, state: np.ndarray,
) -> None:  # fmt: skip
    """Fill, for example ``b`` and every cell ``c`` (unit ``i``'s cell is digit ``i`` of
    ``c`` in base 3), its probability ``w[c]``, ``C(b1) - C(b2)`` in ``diff[c]`` and its mean
    estimate ``est[c]`` (compressed layout); per unit ``i`` and cell ``q``, ``width[i, q]``
    and the state ``state[i, q] = b2`` it gives. Each cell is written by one thread."""
    theta, L1, T, loss = batch.theta, batch.L1, batch.T, batch.loss
    n1, n_out = geo.sizes[1], geo.sizes[2]
    tab = L1[b]
    # Per unit, its three cells' bounds and pair bits (rows lo, hi, b1, b2), as the cells
    # engine lays them out.
    table = np.empty((4, n1, 3))
    for i in range(n1):
        rows = _cells(tab[1, i], exp(log_sigmoid(-tab[0, i])))
        for r in range(4):
            table[r, i] = rows[r]
    width[:, :] = np.maximum(table[1] - table[0], 0.0)
    state[:, :] = table[3]
    S = w.shape[0]
    nc = n_chunks(S, np.int64(CHUNKS))
    powers = 3 ** np.arange(n1)
    for c in prange(nc):
        work = np.empty((6, max(n1, n_out)))
        scratch = np.empty(est.shape[1])
        for cell in range(c * S // nc, (c + 1) * S // nc):
            digits = (cell // powers) % 3
            est[cell] = 0.0
            wc, dc = _cell_estimate(
                disarm, theta, geo, tab, T[b], loss, digits, table[0], table[1], table[2],
                table[3], work, est[cell], scratch,
            )  # fmt: skip
            w[cell] = max(wc, 0.0)
            diff[cell] = dc


def cell_parts(
    w: np.ndarray, diff: np.ndarray, est: np.ndarray, width: np.ndarray, state: np.ndarray,
    arm: bool, full_cov: bool,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray] | None]:  # fmt: skip
    """The state's part and the rest of one example's covariance, from its cells.

    Takes :func:`cell_estimates_kernel`'s outputs (``arm``: ARM's within-cell variance
    is added to the rest). Returns ``E[g_hat]`` (compressed), the diagonals ``(2, n)``
    (``Cov(E[g_hat | h])``, ``E[Cov(g_hat | h)]``) and (``full_cov``) the two matrices.
    """
    N = width.shape[0]
    units = np.arange(N)
    digits = (np.arange(w.shape[0])[:, None] // 3**units) % 3  # (cells, N)
    # Each cell's state h as an index (unit i is bit i, as in joint enumeration); every
    # state has cells (b2 = 1 in cell 0, b2 = 0 in cell 2), so sorting the cells by it
    # gives 2^N runs to sum.
    h = (state[units, digits].astype(np.int64) << units).sum(axis=1)
    order = np.argsort(h, kind="stable")
    starts = np.searchsorted(h[order], np.arange(1 << N))
    P = np.add.reduceat(w[order], starts)
    Q = np.add.reduceat(w[order, None] * est[order], starts, axis=0)
    mean = Q.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        M = np.where(P[:, None] > 0.0, Q / P[:, None], 0.0)
    D = M - mean
    R = est - M[h]
    diag = np.stack([P @ (D * D), w @ (R * R)])
    within = np.zeros(est.shape[1])
    if arm:
        within[:N] = (w * diff * diff) @ width[units, digits] ** 2 / 12.0
        diag[1] += within
    if not full_cov:
        return mean, diag, None
    mats = [(D * P[:, None]).T @ D, (R * w[:, None]).T @ R + np.diag(within)]
    return mean, diag, mats
