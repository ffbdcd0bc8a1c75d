"""ARM (Yin & Zhou 2019, ICLR; arXiv:1807.11143) and DisARM (Dong, Mnih & Tucker 2020,
NeurIPS; arXiv:2006.10680): antithetic pairs of states from one uniform per unit.

One stochastic layer, ``u ~ U(0, 1)^N``: ``b1 = 1[u > 1 - p]`` and ``b2 = 1[u < p]`` are
both ``Bernoulli(p)`` states, coupled; ``f1 = C(y(b1))``, ``f2 = C(y(b2))``::

    arm:    g_hat(b_1)_i = (f1 - f2) (u_i - 1/2)
    disarm: g_hat(b_1)_i = 1/2 (f1 - f2) 1[b1_i != b2_i] (-1)^{b2_i} sigmoid(|a_i|)

``g_hat(W_1)_ij = g_hat(b_1)_i x_j``; the output layer gets the mean of the direct paths of
the two states, ``1/2 (dC/dW_o(b1) + dC/dW_o(b2))``. DisARM is ARM averaged over ``u``
given the pair ``(b1, b2)``, so it is unbiased with per-coordinate variance at most ARM's.

**Exact moments (one stochastic layer).** Per unit, ``u_i`` falls in one of three cells:
for ``p >= 1/2``, ``[0, 1-p)``, ``[1-p, p)``, ``[p, 1]`` with pairs ``(0,1), (1,1), (1,0)``;
for ``p < 1/2``, ``[0, p)``, ``[p, 1-p)``, ``[1-p, 1]`` with ``(0,1), (0,0), (1,0)``. Units are
independent, so the ``3^N`` combinations of cells, weighted by the product of their
widths, give exact means and variances: DisARM is constant within a combination, ARM is
linear in ``u_i`` with ``E[u_i - 1/2 | cell]`` and ``Var[u_i | cell] = width^2 / 12``.
``P(sign g_hat_j = sign g_j)`` is exact too (``P(u_i > 1/2 | cell)``); ARM's descent
probability (a weighted sum of uniforms crossing zero) is not computed exactly and is
reported as NaN; use Monte Carlo for it.

**Deeper networks (Monte Carlo).** One draw takes the uniforms ``u`` (one per unit, layer
1 first) and, for each layer ``t < L``, fresh uniforms ``v^(t)`` for the units of layers
``t+1..L``. The main pass samples every layer from ``u`` (``b = 1[u < p]``). For layer
``t``, both branches share the main pass below ``t``; branch 2 is the main pass itself
(``b2_t = 1[u_t < p_t]``), branch 1 sets ``b1_t = 1[u_t > 1 - p_t]`` and samples layers
``t+1..L`` afresh from ``v^(t)``, independently of branch 2's. Layer ``t``'s estimate is
the one-layer formula with these two losses and ``h_{t-1}`` of the main pass (the
scheme of the DisARM authors' multi-layer code, with independent downstream noise);
the output layer averages the direct paths of the main pass and of layer ``L``'s
branch 1.
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat.kernels.accumulate import accumulate, new_accumulators, reduce_chunks, sign_of
from gradstat.kernels.forward import (
    forward_state,
    log_sigmoid,
    loss_and_grad,
    offsets,
    output_gradient,
)

ARM = 8
DISARM = 9


def arm_noise_size(hidden: tuple[int, ...]) -> int:
    """Uniforms per draw: ``N`` plus, for each layer ``t < L``, the units above it."""
    n = sum(hidden)
    return n + sum(sum(hidden[t + 1 :]) for t in range(len(hidden) - 1))


@njit(cache=True)
def _layer_estimate(disarm: bool, a: float, u: float, b1: float, b2: float, diff: float) -> float:
    if not disarm:
        return diff * (u - 0.5)
    if b1 == b2:
        return 0.0
    sign = -1.0 if b2 == 1.0 else 1.0
    return 0.5 * diff * sign * exp(log_sigmoid(abs(a)))


@njit(cache=True)
def _forward_above(
    theta: np.ndarray,
    sizes: np.ndarray,
    woff: np.ndarray,
    boff: np.ndarray,
    uoff: np.ndarray,
    start: int,
    v: np.ndarray,
    low: float,
    h: np.ndarray,
    y: np.ndarray,
) -> None:
    """Sample layers ``start..L-1`` (0-based) from uniforms ``v`` given ``h`` below; set ``y``."""
    L = sizes.shape[0] - 2
    for l in range(start, L):
        n_prev = sizes[l]
        prev = uoff[l - 1]
        for i in range(sizes[l + 1]):
            ai = theta[boff[l] + i]
            for j in range(n_prev):
                ai += theta[woff[l] + i * n_prev + j] * h[prev + j]
            fire = v[uoff[l] - uoff[start] + i] < exp(log_sigmoid(ai))
            h[uoff[l] + i] = 1.0 if fire else low
    n_last = sizes[L]
    last = uoff[L - 1]
    for o in range(sizes[L + 1]):
        val = theta[boff[L] + o]
        for j in range(n_last):
            val += theta[woff[L] + o * n_last + j] * h[last + j]
        y[o] = val


@njit(cache=True)
def arm_draw(
    disarm: bool,
    theta: np.ndarray,
    sizes: np.ndarray,
    woff: np.ndarray,
    boff: np.ndarray,
    uoff: np.ndarray,
    tab1: np.ndarray,
    t: np.ndarray,
    loss: int,
    mode: int,
    noise: np.ndarray,
    a: np.ndarray,
    p: np.ndarray,
    bit: np.ndarray,
    h: np.ndarray,
    y: np.ndarray,
    dy: np.ndarray,
    h2: np.ndarray,
    y2: np.ndarray,
    dy2: np.ndarray,
    s: np.ndarray,
    e: np.ndarray,
) -> float:
    """One ARM or DisARM draw from ``noise`` (see the module docstring); returns ``log P``."""
    L = sizes.shape[0] - 2
    N = uoff[L]
    s0 = sizes[0] * sizes[1]
    low = tab1[6, 0]
    logp = forward_state(theta, sizes, woff, boff, uoff, tab1, 0, noise[:N], mode, a, p, bit, h, y)
    C2 = loss_and_grad(loss, y, t, dy)
    off = N
    for l in range(L):
        base = uoff[l]
        n = sizes[l + 1]
        for k in range(base):
            h2[k] = h[k]
        for i in range(n):
            k = base + i
            b1 = noise[k] > exp(log_sigmoid(-a[k]))
            h2[k] = 1.0 if b1 else low
        if l < L - 1:
            _forward_above(theta, sizes, woff, boff, uoff, l + 1, noise[off:], low, h2, y2)
            off += N - uoff[l + 1]
        else:
            n_last = sizes[L]
            for o in range(sizes[L + 1]):
                val = theta[boff[L] + o]
                for j in range(n_last):
                    val += theta[woff[L] + o * n_last + j] * h2[base + j]
                y2[o] = val
        C1 = loss_and_grad(loss, y2, t, dy2)
        n_prev = sizes[l]
        for i in range(n):
            k = base + i
            b1 = 1.0 if h2[k] == 1.0 else 0.0
            g = _layer_estimate(disarm, a[k], noise[k], b1, bit[k], C1 - C2)
            e[boff[l] - s0 + i] = g
            if l > 0:
                row = woff[l] - s0 + i * n_prev
                for j in range(n_prev):
                    e[row + j] = g * h[uoff[l - 1] + j]
    output_gradient(sizes, woff, boff, uoff, h, dy, e)
    output_gradient(sizes, woff, boff, uoff, h2, dy2, s)
    for k in range(boff[L - 1] + sizes[L] - s0, e.shape[0]):
        e[k] = 0.5 * (e[k] + s[k])
    return logp


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


@njit(parallel=True, cache=True)
def cells_kernel(
    disarm: bool,
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    G: np.ndarray,
    DW: np.ndarray,
    seg: np.ndarray,
    want_cov: bool,
    chunks: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact moments of ARM / DisARM for one stochastic layer over the ``3^N`` cells.

    Same outputs as :func:`gradstat.exact._moments_kernel` (compressed layout): ``E[d]``,
    ``E[d^2]`` with ``d = g_hat - g``, sign probabilities, descent probabilities (NaN for
    ARM) and (``want_cov``) ``sum_x E[d d^T]``.
    """
    woff, boff, uoff = offsets(sizes)
    n1 = sizes[1]
    n_out = sizes[2]
    B, n = G.shape
    n_seg = seg.shape[0] - 1
    S = np.int64(1)
    for _ in range(n1):
        S *= 3
    nc = S if S < chunks else chunks
    acc_m, acc_m2, acc_sign, acc_desc, acc_cov = new_accumulators(B, nc, n, n_seg, want_cov)
    for b in range(B):
        tab = L1[b]
        low = tab[6, 0]
        LO = np.empty((n1, 3))
        HI = np.empty((n1, 3))
        B1 = np.empty((n1, 3))
        B2 = np.empty((n1, 3))
        for i in range(n1):
            pm = exp(log_sigmoid(-tab[0, i]))
            lo, hi, c1, c2 = _cells(tab[1, i], pm)
            LO[i] = lo
            HI[i] = hi
            B1[i] = c1
            B2[i] = c2
        for c in prange(nc):
            h1 = np.empty(n1)
            h2 = np.empty(n1)
            y1 = np.empty(n_out)
            y2 = np.empty(n_out)
            dy1 = np.empty(n_out)
            dy2 = np.empty(n_out)
            e = np.empty(n)
            s = np.empty(n)
            d = np.empty(n)
            dots = np.empty(n_seg)
            digits = np.empty(n1, dtype=np.int64)
            for cell in range(c * S // nc, (c + 1) * S // nc):
                w = 1.0
                rest = cell
                for i in range(n1):
                    q = rest % 3
                    rest //= 3
                    digits[i] = q
                    w *= HI[i, q] - LO[i, q]
                    h1[i] = 1.0 if B1[i, q] == 1.0 else low
                    h2[i] = 1.0 if B2[i, q] == 1.0 else low
                if w <= 0.0:
                    continue
                for o in range(n_out):
                    v1 = theta[boff[1] + o]
                    v2 = v1
                    for j in range(n1):
                        v1 += theta[woff[1] + o * n1 + j] * h1[j]
                        v2 += theta[woff[1] + o * n1 + j] * h2[j]
                    y1[o] = v1
                    y2[o] = v2
                C1 = loss_and_grad(loss, y1, T[b], dy1)
                C2 = loss_and_grad(loss, y2, T[b], dy2)
                diff = C1 - C2
                for i in range(n1):
                    q = digits[i]
                    mid = 0.5 * (LO[i, q] + HI[i, q])
                    e[i] = _layer_estimate(disarm, tab[0, i], mid, B1[i, q], B2[i, q], diff)
                output_gradient(sizes, woff, boff, uoff, h1, dy1, e)
                output_gradient(sizes, woff, boff, uoff, h2, dy2, s)
                for k in range(n1, n):
                    e[k] = 0.5 * (e[k] + s[k])
                accumulate(
                    w, e, G[b], DW[b], seg, acc_m[b, c], acc_m2[b, c], acc_sign[b, c],
                    acc_desc[b, c], d, dots, acc_cov[c],
                )  # fmt: skip
                if not disarm:
                    for i in range(n1):
                        q = digits[i]
                        width = HI[i, q] - LO[i, q]
                        extra = w * diff * diff * width * width / 12.0
                        acc_m2[b, c, i] += extra
                        if want_cov:
                            acc_cov[c, i, i] += extra
                        # Replace the sign count of the cell mean by P(sign agrees | cell).
                        gi = G[b, i]
                        if sign_of(e[i]) == sign_of(gi):
                            acc_sign[b, c, i] -= w
                        if diff != 0.0 and gi != 0.0:
                            up = (HI[i, q] - max(LO[i, q], 0.5)) / width
                            up = min(max(up, 0.0), 1.0)
                            agree = up if (diff > 0.0) == (gi > 0.0) else 1.0 - up
                            acc_sign[b, c, i] += w * agree
                        elif diff == 0.0 and gi == 0.0:
                            acc_sign[b, c, i] += w
    m, m2, sign, desc, cov = reduce_chunks(acc_m, acc_m2, acc_sign, acc_desc, acc_cov)
    # Cell widths are differences of rounded probabilities: clip sums of them to [0, 1].
    sign = np.minimum(np.maximum(sign, 0.0), 1.0)
    desc = np.minimum(np.maximum(desc, 0.0), 1.0)
    if not disarm:
        desc[:, :] = np.nan
    return m, m2, sign, desc, cov
