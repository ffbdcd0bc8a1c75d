"""Accumulators of exact moments: per-chunk sums over noise states, reduced in order.

Every exact-moment kernel (joint states in :mod:`gradstat.exact`, ARM's cells in
:mod:`gradstat.estimators.arm`) adds each noise state's estimate with its probability
through :func:`accumulate` into private per-chunk rows, and :func:`reduce_chunks` sums the
rows in chunk order, so results are bit-identical for any number of threads. Variances are
sums of squares about a shift near the mean (:func:`reduce_chunks`), never
``E[e^2] - E[e]^2``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gradstat.kernels.linking import outlined


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
    c: np.ndarray,
    dw: np.ndarray,
    seg: np.ndarray,
    m: np.ndarray,
    s1: np.ndarray,
    m2: np.ndarray,
    sign: np.ndarray,
    desc: np.ndarray,
    d: np.ndarray,
    dots: np.ndarray,
    cov: np.ndarray,
) -> None:
    """Add the estimate ``e`` of one state with probability ``w`` to the accumulators.

    ``m`` sums ``w (e - g)`` (the bias, relative to the exact gradient ``g``); ``s1`` and ``m2`` sum
    ``w d`` and ``w d^2`` with ``d = e - c`` (kept in ``d``), ``c`` a shift that the estimate takes
    at a likely state (the engines use the greedy state), and ``cov`` (empty unless wanted) ``w d
    d^T``: centred sums, whose difference ``sum w d^2 - (sum w d)^2`` (:func:`reduce_chunks`)
    cancels little. ``sign`` counts ``sign e_j = sign g_j``; ``desc`` counts ``<e, dw> > 0`` per
    segment (layers, output), then over all parameters and over the stochastic layers.
    """
    n = e.shape[0]
    for k in range(n):
        m[k] += w * (e[k] - g[k])
        dk = e[k] - c[k]
        d[k] = dk
        s1[k] += w * dk
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


Accumulators = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Per-example, per-chunk sums ``m, s1, m2, sign, desc`` and per-chunk ``cov`` of
:func:`accumulate`."""


@njit(cache=True)
def new_accumulators(B: int, nc: int, n: int, n_seg: int, want_cov: bool) -> Accumulators:
    n_cov = n if want_cov else 0
    return (
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n_seg + 2)),
        np.zeros((nc, n_cov, n_cov)),
    )


@njit(cache=True)
def sum_chunks(acc: np.ndarray) -> np.ndarray:
    """``out[b] = sum_c acc[b, c]`` for per-example, per-chunk rows ``acc`` ``(B, nc, n)``,
    summed from 0 in chunk order (bit-identical for any thread count)."""
    B, nc, n = acc.shape
    out = np.zeros((B, n))
    for b in range(B):
        for c in range(nc):
            out[b] += acc[b, c]
    return out


@njit(cache=True)
def reduce_chunks(
    acc: Accumulators,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sum the per-chunk accumulators of :func:`new_accumulators` in chunk order
    (bit-identical for any thread count) into ``E[e - g]``, the variance, the sign and
    descent probabilities and (if accumulated) ``sum_x Cov_x``.

    ``Var[e_j] = sum w d_j^2 - (sum w d_j)^2`` with ``d = e - c``: with ``c_j`` a value
    the estimate takes with probability ``P_j`` (see :func:`accumulate`), ``(sum w
    d_j)^2 = (E e_j - c_j)^2 <= Var[e_j] / P_j``, so the difference loses at most a factor
    ``1 + 1 / P_j`` in relative precision, and nothing when ``c_j`` is the value of a
    nearly deterministic estimate (``P_j`` near 1), where ``E[e^2] - E[e]^2``, or sums
    about the exact gradient for a biased estimator, would lose everything.
    """
    acc_m, acc_s1, acc_m2, acc_sign, acc_desc, acc_cov = acc
    s1 = sum_chunks(acc_s1)
    var = np.maximum(sum_chunks(acc_m2) - s1 * s1, 0.0)
    cov = np.zeros((acc_cov.shape[1], acc_cov.shape[2]))
    for c in range(acc_cov.shape[0]):
        cov += acc_cov[c]
    if cov.shape[0] > 0:
        for b in range(s1.shape[0]):
            cov -= np.outer(s1[b], s1[b])
    return sum_chunks(acc_m), var, sum_chunks(acc_sign), sum_chunks(acc_desc), cov


call_reduce_chunks = outlined(f"{__name__}:reduce_chunks")
""":func:`reduce_chunks` through its one compiled copy
(:func:`gradstat.kernels.linking.outlined`): called once per kernel call, it need not be
compiled again into each kernel."""


@njit(cache=True)
def clip_probabilities(a: np.ndarray) -> np.ndarray:
    """``a`` clipped to ``[0, 1]`` (NaN stays NaN): sums of rounded probabilities.

    A function of its own so that the parallel kernels that call it compile the two
    array expressions once, here, outside their parallel passes.
    """
    return np.minimum(np.maximum(a, 0.0), 1.0)
