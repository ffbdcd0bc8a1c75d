"""Accumulators of exact moments: per-chunk sums over noise states, reduced in order.

Every exact-moment kernel (joint states in :mod:`gradstat.exact`, ARM's cells in
:mod:`gradstat.estimators.arm`) adds each noise state's estimate with its probability
through :func:`accumulate` into private per-chunk rows, and :func:`reduce_chunks` sums the
rows in chunk order, so results are bit-identical for any number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sign_of(v: float) -> int:
    if v > 0.0:
        return 1
    if v < 0.0:
        return -1
    return 0


@njit(cache=True)
def accumulate(
    w: float,
    e: np.ndarray,
    g: np.ndarray,
    dw: np.ndarray,
    seg: np.ndarray,
    m: np.ndarray,
    m2: np.ndarray,
    sign: np.ndarray,
    desc: np.ndarray,
    d: np.ndarray,
    dots: np.ndarray,
    cov: np.ndarray,
) -> None:
    """Add the estimate ``e`` of one state with probability ``w`` to the accumulators.

    ``d = e - g`` (shifting by the exact gradient keeps the variance free of
    cancellation); ``sign`` counts ``sign e_j = sign g_j``; ``desc`` counts
    ``<e, dw> > 0`` per segment (layers, output), then over all parameters and over the
    stochastic layers; ``cov`` (empty unless wanted) accumulates ``d d^T``.
    """
    n = e.shape[0]
    for k in range(n):
        dk = e[k] - g[k]
        d[k] = dk
        m[k] += w * dk
        m2[k] += w * dk * dk
        if sign_of(e[k]) == sign_of(g[k]):
            sign[k] += w
    n_seg = seg.shape[0] - 1
    stochastic = 0.0
    for q in range(n_seg):
        v = 0.0
        for k in range(seg[q], seg[q + 1]):
            v += e[k] * dw[k]
        dots[q] = v
        if q < n_seg - 1:
            stochastic += v
        if v > 0.0:
            desc[q] += w
    # The stochastic layers' sum is kept apart: recovering it as the total minus the
    # output's dot product would lose it to rounding when the output's term dominates.
    if stochastic + dots[n_seg - 1] > 0.0:
        desc[n_seg] += w
    if stochastic > 0.0:
        desc[n_seg + 1] += w
    for i in range(cov.shape[0]):
        wd = w * d[i]
        for j in range(n):
            cov[i, j] += wd * d[j]


@njit(cache=True)
def new_accumulators(
    B: int, nc: int, n: int, n_seg: int, want_cov: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_cov = n if want_cov else 0
    return (
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n_seg + 2)),
        np.zeros((nc, n_cov, n_cov)),
    )


@njit(cache=True)
def reduce_chunks(
    acc_m: np.ndarray,
    acc_m2: np.ndarray,
    acc_sign: np.ndarray,
    acc_desc: np.ndarray,
    acc_cov: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sum the per-chunk accumulators in chunk order (bit-identical for any thread count)."""
    B, nc, n = acc_m.shape
    m = np.zeros((B, n))
    m2 = np.zeros((B, n))
    sign = np.zeros((B, n))
    desc = np.zeros((B, acc_desc.shape[2]))
    cov = np.zeros((acc_cov.shape[1], acc_cov.shape[2]))
    for b in range(B):
        for c in range(nc):
            m[b] += acc_m[b, c]
            m2[b] += acc_m2[b, c]
            sign[b] += acc_sign[b, c]
            desc[b] += acc_desc[b, c]
    for c in range(nc):
        cov += acc_cov[c]
    return m, m2, sign, desc, cov
