"""Exact quantities by joint enumeration of the ``2^N`` hidden states.

For one example the expected loss is ``E[C] = sum_h P(h | x) C(y(h), t)``, and every
estimator whose noise is discrete has exact moments ``E[g_hat] = sum_h P(h) g_hat(h)``,
``Var[g_hat_j] = sum_h P(h) (g_hat_j(h) - E g_hat_j)^2``. States are never materialised:
state ``s`` sets unit ``k`` to bit ``k`` of ``s``, and the ``2^N`` states are split into a
fixed number of chunks (independent of the thread count), each with private
accumulators reduced in a fixed order, so results are bit-identical on any number of
threads.

The gradient and the moments of REINFORCE and the straight-through-type estimators visit
the states in blocks that fix every unit below the top layer, the top layer's units
running through a Gray code (:func:`_enter_block`): the lower layers' forward pass is
computed once per block, and because every estimate of a weight ``W_l[i, j]`` is a
per-unit quantity times ``h_{l-1,j}`` (fixed within the block), the per-state work is per
unit and is spread over the coordinates once per block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from math import exp, log, log1p
from typing import Any

import numpy as np
from numba import njit, prange

from gradstat.estimators import Estimator
from gradstat.estimators.arm import cells_kernel
from gradstat.estimators.per_state import (
    WS_ROWS,
    draw_estimate,
    surrogate_jacobian,
    workspace_columns,
)
from gradstat.estimators.reinmax import REINMAX
from gradstat.estimators.score_function import REINFORCE
from gradstat.estimators.stochastic_times_smooth import STS
from gradstat.estimators.straight_through import ST, ST_SIGMOID, ST_TEMPERED
from gradstat.estimators.user import AnyEstimator, PythonEstimator, resolve_estimator
from gradstat.kernels.accumulate import accumulate, new_accumulators, reduce_chunks, sign_of
from gradstat.kernels.forward import (
    BCE,
    MSE,
    PM1,
    SMOOTH,
    XENT,
    forward_state,
    layer1_table,
    log1mexp,
    log_sigmoid,
    loss_and_grad,
    offsets,
    state_buffers,
)
from gradstat.layerwise import (
    SCORE,
    SURROGATE,
    layerwise_cost,
    layerwise_gradient,
    layerwise_moments,
    layerwise_moments_cost,
)
from gradstat.network import BinaryNetwork
from gradstat.problem import (
    DEFAULT_MAX_STATES,
    Problem,
    check_states,
    expand_mean,
    expand_sign,
    expand_square,
    expansion_matrix,
    make_problem,
    threads_for,
)

CHUNKS = 64
"""Number of state chunks (fixed: results do not depend on the number of threads)."""


MIN_CHUNK_STATES = 1024
"""Smallest chunk of the block-walking kernels: each chunk re-enters its first block with
a full forward pass, so tiny chunks would cost more than they parallelise."""


@njit(cache=True)
def _block_chunks(n_states: int) -> int:
    """Chunks of at least :data:`MIN_CHUNK_STATES` states, at most :data:`CHUNKS` (a
    function of the state count only, so results do not depend on the thread count)."""
    nc = n_states // MIN_CHUNK_STATES
    return 1 if nc < 1 else (CHUNKS if nc > CHUNKS else nc)


@njit(cache=True)
def _n_chunks(n_states: int, cap: int) -> int:
    return n_states if n_states < cap else cap


RESYNC = 4096
"""Gray-code steps between exact recomputations of ``log P`` and ``y`` (bounds drift)."""


@njit(cache=True)
def _joint_state(g: int, n_top: int, top: int) -> int:
    """The joint state at position ``g`` of the block order (see :func:`_enter_block`).

    ``g = outer 2^{n_L} + i``: the units below the top layer take the bits of ``outer``, the
    top layer's units the bits of the Gray code ``i ^ (i >> 1)``.
    """
    i = g & ((np.int64(1) << n_top) - 1)
    return (g >> n_top) | ((i ^ (i >> 1)) << top)


@njit(cache=True)
def _gray_unit(i: int) -> int:
    """The bit in which the Gray codes of ``i`` and ``i + 1`` differ: ``i + 1``'s trailing 0s."""
    k = 0
    m = i + 1
    while (m & 1) == 0:
        m >>= 1
        k += 1
    return k


@njit(cache=True)
def _two_sum(a: float, b: float) -> tuple[float, float]:
    """``s = fl(a + b)`` and its rounding error ``a + b - s``, exactly (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True)
def _enter_block(
    theta: np.ndarray, sizes: np.ndarray, woff: np.ndarray, boff: np.ndarray,
    uoff: np.ndarray, tab1: np.ndarray, mode: int, g: int, no_u: np.ndarray, a: np.ndarray,
    p: np.ndarray, bit: np.ndarray, h: np.ndarray, y: np.ndarray, top_units: np.ndarray,
) -> tuple[float, int]:  # fmt: skip
    """Run the state at position ``g`` forward and tabulate the top layer for Gray steps.

    Joint states are visited in blocks of ``2^{n_L}``: within a block the units below the
    top layer ``L`` are fixed (their forward pass, ``log P`` and everything derived from
    them are computed once per block) and the top layer's units run through a Gray code
    (:func:`_joint_state`), so consecutive states differ in one top unit ``k``
    (:func:`_gray_unit`). Flipping it changes ``log P`` by ``+-(log P(b_k = 1) -
    log P(b_k = 0))`` and ``y`` by ``(h_k' - h_k) W_o[:, k]``: ``O(n_out)`` per state
    instead of a forward pass. Fills ``top_units`` (rows: the value a top unit passes on
    when it fires, when it does not, and its log-odds of firing) and returns ``log P`` of
    the state and the period of exact recomputation: :data:`RESYNC` (bounds the drift of
    the updates), or 1 (every state run forward) when a log-odds is infinite.
    """
    L = sizes.shape[0] - 2
    top = uoff[L - 1]
    n_top = sizes[L]
    state = _joint_state(g, n_top, top)
    logp = forward_state(theta, sizes, woff, boff, uoff, tab1, state, no_u, mode, a, p, bit, h, y)
    low = -1.0 if mode == PM1 else 0.0
    period = RESYNC
    for i in range(n_top):
        if L == 1:
            on, off, odds = tab1[4, i], tab1[6, i], tab1[2, i] - tab1[3, i]
        elif mode == SMOOTH:
            l1 = 0.5 * log_sigmoid(a[top + i])
            on, off = exp(l1), 0.0
            odds = l1 - log1mexp(l1) if l1 < 0.0 else np.inf
        else:
            on, off, odds = 1.0, low, a[top + i]
        top_units[0, i] = on
        top_units[1, i] = off
        top_units[2, i] = odds
        if not abs(odds) < np.inf:
            period = 1
    return logp, period


@njit(parallel=True, cache=True)
def _gradient_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    mode: int,
    want_stats: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per example: ``E[C]``, the exact gradient, and (``want_stats``) ``E[s^2 C]``, ``E[s^2]``.

    The gradient is the score-function identity ``E[(C - r) s + grad C]`` with the
    reference ``r`` the loss of the greedy state (every unit at its likelier value):
    exact for any ``r`` because ``E[s] = 0``, and ``r`` removes a loss offset that would
    otherwise cost precision.

    States are visited in blocks (:func:`_enter_block`). The score of ``W_l[i, j]`` is
    ``s = (b_i - p_i) h_{l-1, j}`` with ``h_{l-1}`` fixed within a block, so each unit
    ``i`` sums ``w (C - r) (b_i - p_i)``, ``w (b_i - p_i)^2 C`` and ``w (b_i - p_i)^2`` over
    the block (``w = P(h)``), and these are multiplied by ``h_{l-1, j}`` (or its square)
    once per block. Below the top layer ``b_i - p_i`` is fixed as well, so those units
    only need the block's ``sum w (C - r)``, ``sum w C`` and ``sum w``. Per state the cost
    is ``O(n_L n_out)`` instead of ``O(n_params)``.
    """
    woff, boff, uoff = offsets(sizes)
    L = sizes.shape[0] - 2
    n_units = uoff[L]
    top = uoff[L - 1]
    n_top = sizes[L]
    B = L1.shape[0]
    n_out = sizes[L + 1]
    s0 = sizes[0] * sizes[1]
    Pc = theta.shape[0] - s0
    S = np.int64(1) << n_units
    nc = _block_chunks(S)
    mask = (np.int64(1) << n_top) - 1
    n_stat = Pc if want_stats else 0
    acc_loss = np.zeros((B, nc))
    acc_g = np.zeros((B, nc, Pc))
    acc_s2c = np.zeros((B, nc, n_stat))
    acc_s2 = np.zeros((B, nc, n_stat))
    no_u = np.empty(0)
    half = np.full(n_units, 0.5)
    for b in range(B):
        ga, gp, gbit, gh, gy, gdy = state_buffers(n_units, n_out)
        forward_state(theta, sizes, woff, boff, uoff, L1[b], 0, half, mode, ga, gp, gbit, gh, gy)
        ref = loss_and_grad(loss, gy, T[b], gdy)
        for c in prange(nc):
            a, p, bit, h, y, dy = state_buffers(n_units, n_out)
            y_low = np.empty(n_out)
            y_sum = np.empty(n_out)
            top_units = np.empty((3, n_top))
            unit = np.empty((3, n_top))
            ag = acc_g[b, c]
            s2c = acc_s2c[b, c]
            s2 = acc_s2[b, c]
            lo = c * S // nc
            stop = (c + 1) * S // nc
            while lo < stop:
                hi = min(stop, ((lo >> n_top) + 1) << n_top)
                logp, period = _enter_block(
                    theta, sizes, woff, boff, uoff, L1[b], mode, lo, no_u, a, p, bit, h, y,
                    top_units,
                )  # fmt: skip
                unit[:] = 0.0
                sum_r = 0.0
                sum_c = 0.0
                sum_w = 0.0
                logp_low = 0.0
                y_low[:] = 0.0
                countdown = period
                for g in range(lo, hi):
                    if countdown == 0:
                        countdown = period
                        logp = forward_state(
                            theta, sizes, woff, boff, uoff, L1[b], _joint_state(g, n_top, top),
                            no_u, mode, a, p, bit, h, y,
                        )  # fmt: skip
                        logp_low = 0.0
                        y_low[:] = 0.0
                    countdown -= 1
                    w = exp(logp + logp_low)
                    for o in range(n_out):
                        y_sum[o] = y[o] + y_low[o]
                    C = loss_and_grad(loss, y_sum, T[b], dy)
                    r = w * (C - ref)
                    sum_r += r
                    sum_c += w * C
                    sum_w += w
                    for i in range(n_top):
                        si = bit[top + i] - p[top + i]
                        unit[0, i] += r * si
                        if want_stats:
                            ws = w * si * si
                            unit[1, i] += ws * C
                            unit[2, i] += ws
                    for o in range(n_out):
                        wd = w * dy[o]
                        ag[boff[L] - s0 + o] += wd
                        row = woff[L] - s0 + o * n_top
                        for j in range(n_top):
                            ag[row + j] += wd * h[top + j]
                    if g + 1 < hi:
                        k = _gray_unit(g & mask)
                        u = top + k
                        fire = bit[u] == 0.0
                        bit[u] = 1.0 if fire else 0.0
                        logp, err = _two_sum(logp, top_units[2, k] if fire else -top_units[2, k])
                        logp_low += err
                        new = top_units[0, k] if fire else top_units[1, k]
                        step = new - h[u]
                        h[u] = new
                        for o in range(n_out):
                            y[o], err = _two_sum(y[o], step * theta[woff[L] + o * n_top + k])
                            y_low[o] += err
                acc_loss[b, c] += sum_c
                for l in range(L):
                    n_prev = sizes[l]
                    for i in range(sizes[l + 1]):
                        k = uoff[l] + i
                        if k < top:
                            si = bit[k] - p[k]
                            gu, cu, wu = sum_r * si, sum_c * si * si, sum_w * si * si
                        else:
                            gu, cu, wu = unit[0, k - top], unit[1, k - top], unit[2, k - top]
                        q = boff[l] - s0 + i
                        ag[q] += gu
                        if want_stats:
                            s2c[q] += cu
                            s2[q] += wu
                        if l > 0:
                            row = woff[l] - s0 + i * n_prev
                            prev = uoff[l - 1]
                            for j in range(n_prev):
                                f = h[prev + j]
                                ag[row + j] += f * gu
                                if want_stats:
                                    s2c[row + j] += f * f * cu
                                    s2[row + j] += f * f * wu
                lo = hi
    losses = np.zeros(B)
    grads = np.zeros((B, Pc))
    out_s2c = np.zeros((B, n_stat))
    out_s2 = np.zeros((B, n_stat))
    for b in range(B):
        for cc in range(nc):
            losses[b] += acc_loss[b, cc]
            grads[b] += acc_g[b, cc]
            out_s2c[b] += acc_s2c[b, cc]
            out_s2[b] += acc_s2[b, cc]
    return losses, grads, out_s2c, out_s2


LO_BITS = 10
"""Units in the low half of a one-layer state: a block is the ``2^LO_BITS`` consecutive
states that share their high bits (fewer when ``n_1`` is smaller)."""

MIN_BLOCKS = 16
"""Blocks per chunk of the one-layer kernel when there are enough: each chunk rebuilds
the low-half tables, so a chunk should hold several blocks."""

LANES = 8
"""Partial sums left when :func:`_fold_marginals` folds a half table pairwise (the rest is
summed in order)."""


@njit(cache=True)
def _one_layer_tables(
    theta: np.ndarray, tab: np.ndarray, n_lo: int, n_out: int, woff: int, n1: int,
    p_lo: np.ndarray, y_lo: np.ndarray,
) -> float:  # fmt: skip
    """Low-half tables of a one-layer network for one example; returns ``sum_s P_lo(s)``.

    For the ``2^n_lo`` settings ``s`` of units ``0..n_lo-1`` (bit ``i`` of ``s`` is unit
    ``i``): ``P_lo(s) = prod_i P(h_i(s))`` and ``y_lo[o, s] = sum_i W_o[o, i] h_i(s)``,
    built by doubling: setting bit ``i`` multiplies by ``p_i`` and adds
    ``W_o[o, i] (value_i - off_i)``, leaving it unset multiplies by ``1 - p_i``
    (``exp(log P(not fire))``, accurate when ``p_i`` is near 1).
    """
    p_lo[0] = 1.0
    for o in range(n_out):
        v = 0.0
        for i in range(n_lo):
            v += theta[woff + o * n1 + i] * tab[6, i]
        y_lo[o, 0] = v
    size = 1
    for i in range(n_lo):
        p_on = tab[5, i]
        p_off = exp(tab[3, i])
        for s in range(size):
            p_lo[size + s] = p_lo[s] * p_on
            p_lo[s] *= p_off
        for o in range(n_out):
            d = theta[woff + o * n1 + i] * (tab[4, i] - tab[6, i])
            row = y_lo[o]
            for s in range(size):
                row[size + s] = row[s] + d
        size *= 2
    total = 0.0
    for s in range(size):
        total += p_lo[s]
    return total


@njit(cache=True, fastmath={"reassoc"})
def _add_state(
    j: int, term: float, grad: float, first: bool, last: bool, ph: float, ref: float,
    p_lo: np.ndarray, cost: np.ndarray, acc: np.ndarray, sum_r: np.ndarray, tot: float,
    tot_r: float,
) -> tuple[float, float]:  # fmt: skip
    """Low state ``j``'s share of one output in :func:`_block_sums`; returns the running
    block totals ``tot`` (of ``v_d[o]``) and ``tot_r`` (of ``v_r``).

    ``term`` is the output's part of the loss and ``grad`` its ``dC/dy_o``; ``cost[j]``
    carries the loss summed over the earlier outputs (none when ``first``), and the
    ``last`` output completes it and adds ``v_r``.
    """
    c = term if first else cost[j] + term
    pj = p_lo[j]
    v = pj * grad
    acc[j] += ph * v
    tot += v
    if last:
        v = pj * (c - ref)
        sum_r[j] += ph * v
        tot_r += v
    else:
        cost[j] = c
    return tot, tot_r


@njit(cache=True, fastmath={"reassoc"})
def _block_sums(
    loss: int, ph: float, p_lo: np.ndarray, y_lo: np.ndarray, yh: np.ndarray,
    t: np.ndarray, ref: float, work: np.ndarray, sum_r: np.ndarray, sum_d: np.ndarray,
    totals: np.ndarray,
) -> None:  # fmt: skip
    """Add one block of ``K`` states sharing their high bits to the low-bit tables.

    With ``P(s) = ph P_lo(s)`` and ``y(s) = y_lo[:, s] + yh`` (``yh`` holds the high
    units' part and ``b_o``), the per-state terms are ``v_r(s) = P_lo(s) (C(y(s), t) -
    ref)`` and ``v_d[o](s) = P_lo(s) dC/dy_o(s)``, with the losses of SPEC section 1 as in
    :func:`gradstat.kernels.forward.loss_and_grad`: ``mse`` ``sum_o (y_o - t_o)^2 / 2``; ``bce``
    ``sum_o softplus(y_o) - t_o y_o`` with ``softplus(y) = max(y, 0) + log1p(e)`` and
    ``sigmoid(y)`` from one ``e = exp(-|y|)``; ``xent`` ``lse(y) - y_t`` with
    ``dC/dy_o = softmax(y)_o - [o = t]``; ``linear`` ``sum_o t_o y_o``.

    Adds ``ph v_r`` to ``sum_r`` and ``ph v_d`` to ``sum_d`` (per low state) and writes
    the block totals ``sum_s v_r(s)`` and ``sum_s v_d[o](s)`` to ``totals[0]`` and
    ``totals[1 + o]``. One loop per loss and output, the states innermost, so that each
    vectorises (:func:`_add_state` does the common part). The totals are reassociated
    so that they vectorise too: their order is fixed by the compiled code, not by the
    threads. ``work`` is scratch of shape ``(2 + n_out, K)``.
    """
    K = p_lo.shape[0]
    n_out = yh.shape[0]
    cost = work[0]
    tot = 0.0
    tot_r = 0.0
    if loss == XENT:
        # The loss needs every output first; the first output's pass then adds v_r.
        # Row 1 of work holds max_o y_o, then 1 / sum_o exp(y_o - max); row 2 + o holds
        # exp(y_o - max), so that dC/dy_o = exp(y_o - max) / sum costs no exponential.
        top = work[1]
        for j in range(K):
            top[j] = y_lo[0, j] + yh[0]
        for o in range(1, n_out):
            yo = yh[o]
            row = y_lo[o]
            for j in range(K):
                top[j] = max(top[j], row[j] + yo)
        for o in range(n_out):
            first = o == 0
            yo = yh[o]
            row = y_lo[o]
            ex = work[2 + o]
            for j in range(K):
                ex[j] = exp(row[j] + yo - top[j])
                cost[j] = ex[j] if first else cost[j] + ex[j]
        cls = int(t[0])
        ycls = yh[cls]
        row = y_lo[cls]
        for j in range(K):
            total = cost[j]
            cost[j] = top[j] + log(total) - (row[j] + ycls)
            top[j] = 1.0 / total
        for o in range(n_out):
            last = o == 0
            ex = work[2 + o]
            acc = sum_d[o]
            hit = 1.0 if o == cls else 0.0
            tot = 0.0
            for j in range(K):
                tot, tot_r = _add_state(
                    j, 0.0, ex[j] * top[j] - hit, False, last, ph, ref, p_lo, cost, acc, sum_r,
                    tot, tot_r,
                )  # fmt: skip
            totals[1 + o] = tot
    elif loss == MSE:
        for o in range(n_out):
            first = o == 0
            last = o == n_out - 1
            c = yh[o] - t[o]
            row = y_lo[o]
            acc = sum_d[o]
            tot = 0.0
            for j in range(K):
                r = row[j] + c
                tot, tot_r = _add_state(
                    j, 0.5 * r * r, r, first, last, ph, ref, p_lo, cost, acc, sum_r, tot, tot_r
                )
            totals[1 + o] = tot
    elif loss == BCE:
        for o in range(n_out):
            first = o == 0
            last = o == n_out - 1
            yo = yh[o]
            to = t[o]
            row = y_lo[o]
            acc = sum_d[o]
            tot = 0.0
            for j in range(K):
                y = row[j] + yo
                e = exp(-abs(y))
                term = max(y, 0.0) + log1p(e) - to * y
                grad = (1.0 / (1.0 + e) if y >= 0.0 else e / (1.0 + e)) - to
                tot, tot_r = _add_state(
                    j, term, grad, first, last, ph, ref, p_lo, cost, acc, sum_r, tot, tot_r
                )
            totals[1 + o] = tot
    else:
        for o in range(n_out):
            first = o == 0
            last = o == n_out - 1
            yo = yh[o]
            to = t[o]
            row = y_lo[o]
            acc = sum_d[o]
            tot = 0.0
            for j in range(K):
                term = to * (row[j] + yo)
                tot, tot_r = _add_state(
                    j, term, to, first, last, ph, ref, p_lo, cost, acc, sum_r, tot, tot_r
                )
            totals[1 + o] = tot
    totals[0] = tot_r


@njit(cache=True)
def _pairwise_total(v: np.ndarray) -> float:
    """``sum(v)`` for ``v`` of length a power of two: pairwise halving down to :data:`LANES`
    partial sums, then in order (vectorised, in an order fixed by the length); destroys
    ``v``."""
    m = v.shape[0]
    while m > LANES:
        m >>= 1
        head = v[:m]
        tail = v[m : 2 * m]
        for j in range(m):
            head[j] += tail[j]
    s = 0.0
    for j in range(m):
        s += v[j]
    return s


@njit(cache=True)
def _fold_marginals(
    v: np.ndarray, n_bits: int, on: np.ndarray, off: np.ndarray, at: int, scratch: np.ndarray
) -> None:
    """Add the bit marginals of ``v`` (length ``2^n_bits``) to ``on`` and ``off``.

    ``on[at + i] += sum_s v[s] [bit i of s = 1]`` and ``off[at + i] += sum_s v[s] [bit i
    of s = 0]``, each summed directly (neither is the total minus the other, which would
    lose the small one). Top bit first: its two marginals are the totals of the upper and
    lower halves, and adding the upper half onto the lower one leaves the table of the
    remaining bits, half as long: about four vectorised additions per entry in all.
    Destroys ``v``; ``scratch`` has at least ``2^(n_bits - 1)`` entries.
    """
    for bit in range(n_bits - 1, -1, -1):
        h = 1 << bit
        lower = v[:h]
        upper = v[h : 2 * h]
        copy = scratch[:h]
        for j in range(h):
            copy[j] = lower[j]
            lower[j] += upper[j]
        on[at + bit] += _pairwise_total(upper)
        off[at + bit] += _pairwise_total(copy)


@njit(cache=True)
def _greedy_reference(
    theta: np.ndarray, tab: np.ndarray, n1: int, n_out: int, woff: int, boff: int,
    t: np.ndarray, loss: int,
) -> float:  # fmt: skip
    """Loss of the greedy state (every unit at its likelier value) of a one-layer network."""
    y = np.empty(n_out)
    for o in range(n_out):
        v = theta[boff + o]
        for i in range(n1):
            v += theta[woff + o * n1 + i] * (tab[4, i] if tab[1, i] > 0.5 else tab[6, i])
        y[o] = v
    return loss_and_grad(loss, y, t, np.empty(n_out))


@njit(cache=True)
def _one_layer_layout(n1: int) -> tuple[int, int]:
    """Low-half bits ``n_lo`` and chunks per example of the one-layer kernel (from ``n_1``)."""
    n_lo = n1 if n1 < LO_BITS else LO_BITS
    blocks = np.int64(1) << (n1 - n_lo)
    nc = blocks // MIN_BLOCKS
    if nc > CHUNKS:
        nc = CHUNKS
    if nc < 1:
        nc = 1
    return n_lo, nc


@njit(parallel=True, cache=True)
def _one_layer_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    mode: int,
    want_stats: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_gradient_kernel` for one stochastic layer of units with values ``01`` or
    ``pm1`` (``mode`` ``BITS`` or ``PM1``; the values and probabilities are read from
    ``L1``, :func:`gradstat.kernels.forward.layer1_table`).

    The state ``s`` splits into its low ``n_lo`` bits and its high bits, ``s = s_hi 2^n_lo
    + s_lo``. Given ``x`` the units are independent and ``y`` is linear in ``h``, so
    ``P(s) = P_lo(s_lo) P_hi(s_hi)`` and ``y(s) = y_lo(s_lo) + y_hi(s_hi) + b_o``: the low
    halves are tabulated once per chunk (:func:`_one_layer_tables`), the high half once
    per block of the ``2^n_lo`` states that share it, and a state costs one product for
    its probability and ``n_out`` additions for ``y`` before its loss
    (:func:`_block_sums`): no exponential of ``log P`` and no rounding carried from state
    to state.

    Only bit marginals of per-state terms are needed. With ``v_r = P (C - ref)`` (``ref``
    the loss of the greedy state, removing an offset that would cost precision) and
    ``v_d[o] = P dC/dy_o``, let ``A^r_i = sum_s v_r(s) [b_i(s) = 1]`` and ``Z^r_i`` the
    same over ``b_i(s) = 0`` (likewise ``A^d_oi``, ``Z^d_oi``), ``R = sum_s v_r``,
    ``D_o = sum_s v_d[o]``, ``W = sum_s P(s)`` (1 up to rounding) and ``q_i = 1 - p_i``
    (as ``exp(log P(not fire))``)::

        E[C]           = ref W + R
        dJ/db_1i       = sum_s v_r (b_i - p_i)      = q_i A^r_i - p_i Z^r_i
        dJ/dW_o[o, i]  = sum_s v_d[o] h_i           = A^d_oi + low Z^d_oi
        dJ/db_o[o]     = D_o

    (``low`` the value of a unit that does not fire; ``W_1``'s gradient is ``outer(dJ/db_1,
    x)``, outside the kernel). A block adds its per-low-state sums to per-chunk tables
    and its totals to the marginals of its high bits; each chunk ends by folding its
    tables into the low bits' marginals (:func:`_fold_marginals`). With ``want_stats``,
    the REINFORCE optimal-baseline sums are ``E[s_i^2] = sum_s P (b_i - p_i)^2 = p_i q_i
    W`` and ``E[s_i^2 C] = q_i^2 A^C_i + p_i^2 Z^C_i = q_i^2 A^r_i + p_i^2 Z^r_i + ref
    E[s_i^2]`` (``A^C``, ``Z^C`` the marginals of ``P C``), accurate even when ``p_i``
    rounds to 1.

    Chunks (a fixed number per example, set by ``n_1`` only) are ranges of ``s_hi`` with
    private accumulators, reduced in a fixed order: bit-identical on any thread count.
    """
    n1, n_out = sizes[1], sizes[2]
    B = L1.shape[0]
    n_lo, nc = _one_layer_layout(n1)
    n_hi = n1 - n_lo
    K = np.int64(1) << n_lo
    blocks = np.int64(1) << n_hi
    Pc = n1 + n_out * n1 + n_out
    woff = sizes[0] * n1 + n1
    boff = woff + n_out * n1
    dcol = n1 + n_out * n1
    n_stat = n1 if want_stats else 0
    refs = np.empty(B)
    for e in range(B):
        refs[e] = _greedy_reference(theta, L1[e], n1, n_out, woff, boff, T[e], loss)
    # Per task, row 0 holds the marginals over b_i = 1 (compressed layout), R and W;
    # row 1 those over b_i = 0.
    acc = np.zeros((B * nc, 2, Pc + 2))
    for task in prange(B * nc):
        b = task // nc
        c = task % nc
        tab = L1[b]
        ref = refs[b]
        on = acc[task, 0]
        off = acc[task, 1]
        p_lo = np.empty(K)
        y_lo = np.empty((n_out, K))
        work = np.empty((2 + n_out, K))
        totals = np.empty(1 + n_out)
        sum_r = np.zeros(K)
        sum_d = np.zeros((n_out, K))
        yh = np.empty(n_out)
        p_off = np.empty(n_hi)
        for k in range(n_hi):
            p_off[k] = exp(tab[3, n_lo + k])
        mass_lo = _one_layer_tables(theta, tab, n_lo, n_out, woff, n1, p_lo, y_lo)
        for blk in range(c * blocks // nc, (c + 1) * blocks // nc):
            ph = 1.0
            for o in range(n_out):
                yh[o] = theta[boff + o]
            for k in range(n_hi):
                i = n_lo + k
                fire = (blk >> k) & 1
                ph *= tab[5, i] if fire else p_off[k]
                value = tab[4, i] if fire else tab[6, i]
                for o in range(n_out):
                    yh[o] += theta[woff + o * n1 + i] * value
            _block_sums(loss, ph, p_lo, y_lo, yh, T[b], ref, work, sum_r, sum_d, totals)
            on[Pc + 1] += ph * mass_lo
            for q in range(n_out + 1):
                total = ph * totals[q]
                on[Pc if q == 0 else dcol + q - 1] += total
                first_hi = n1 * q + n_lo
                for k in range(n_hi):
                    if (blk >> k) & 1:
                        on[first_hi + k] += total
                    else:
                        off[first_hi + k] += total
        _fold_marginals(sum_r, n_lo, on, off, 0, work[0])
        for o in range(n_out):
            _fold_marginals(sum_d[o], n_lo, on, off, n1 + o * n1, work[0])
    losses = np.zeros(B)
    grads = np.zeros((B, Pc))
    s2c = np.zeros((B, n_stat))
    s2 = np.zeros((B, n_stat))
    on_sum = np.empty(Pc + 2)
    off_sum = np.empty(Pc + 2)
    for ex in range(B):
        on_sum[:] = 0.0
        off_sum[:] = 0.0
        for cc in range(nc):
            for col in range(Pc + 2):
                on_sum[col] += acc[ex * nc + cc, 0, col]
                off_sum[col] += acc[ex * nc + cc, 1, col]
        ref_ex = refs[ex]
        R = on_sum[Pc]
        W = on_sum[Pc + 1]
        losses[ex] = ref_ex * W + R
        for col in range(dcol, Pc):
            grads[ex, col] = on_sum[col]
        for i in range(n1):
            p1 = L1[ex, 5, i]
            q1 = exp(L1[ex, 3, i])
            grads[ex, i] = q1 * on_sum[i] - p1 * off_sum[i]
            for o in range(n_out):
                col = n1 + o * n1 + i
                grads[ex, col] = L1[ex, 4, i] * on_sum[col] + L1[ex, 6, i] * off_sum[col]
            if want_stats:
                s2[ex, i] = p1 * q1 * W
                s2c[ex, i] = q1 * q1 * on_sum[i] + p1 * p1 * off_sum[i] + ref_ex * s2[ex, i]
    return losses, grads, s2c, s2


SURROGATES = (ST, ST_SIGMOID, STS, ST_TEMPERED, REINMAX)
"""Codes of the straight-through-type estimators (:func:`_factored_moments_kernel`)."""


@njit(cache=True)
def _add_coordinate(
    w: float, e: float, q: int, g: np.ndarray, m: np.ndarray, m2: np.ndarray, sign: np.ndarray
) -> None:
    """Add coordinate ``q``'s estimate ``e`` of one state with probability ``w``."""
    d = e - g[q]
    m[q] += w * d
    m2[q] += w * d * d
    sign[q] += w if sign_of(e) == sign_of(g[q]) else 0.0


@njit(cache=True)
def _add_descent(w: float, dots: np.ndarray, out: float, desc: np.ndarray) -> None:
    """Add ``w`` where ``<e, dw> > 0``: per layer (``dots``), output, all, stochastic layers."""
    L = dots.shape[0]
    stochastic = 0.0
    for l in range(L):
        stochastic += dots[l]
        desc[l] += w if dots[l] > 0.0 else 0.0
    desc[L] += w if out > 0.0 else 0.0
    desc[L + 1] += w if stochastic + out > 0.0 else 0.0
    desc[L + 2] += w if stochastic > 0.0 else 0.0


@njit(cache=True)
def _west(group: np.ndarray, x: float, w: float) -> None:
    """West's weighted update of ``(sum w, mean of x, sum w (x - mean)^2)`` in ``group``."""
    W = group[0] + w
    dev = x - group[1]
    step = dev * (w / W)
    group[1] += step
    group[2] += group[0] * dev * step
    group[0] = W


@njit(cache=True)
def _descent_weights(
    sizes: np.ndarray, woff: np.ndarray, boff: np.ndarray, uoff: np.ndarray, h: np.ndarray,
    dw: np.ndarray, c: np.ndarray, shift: float, z: np.ndarray, zc: np.ndarray,
) -> None:  # fmt: skip
    """Per unit: ``z_{l,i} = dw_{b_l,i} + sum_j h_{l-1,j} dw_{W_l,ij}``, and ``zc`` the same
    with each term times its coordinate's ``c - shift`` (``c`` empty: ``zc`` untouched).

    An estimate ``delta_{l,i} h_{l-1,j}`` of ``W_l[i, j]`` (and ``delta_{l,i}`` of
    ``b_l[i]``) has descent dot product ``sum_i delta_{l,i} z_{l,i}`` with layer ``l``.
    """
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    baseline = c.shape[0] > 0
    for l in range(L):
        n_prev = sizes[l]
        for i in range(sizes[l + 1]):
            q = boff[l] - s0 + i
            v = dw[q]
            vc = dw[q] * (c[q] - shift) if baseline else 0.0
            if l > 0:
                row = woff[l] - s0 + i * n_prev
                for j in range(n_prev):
                    t = h[uoff[l - 1] + j] * dw[row + j]
                    v += t
                    if baseline:
                        vc += t * (c[row + j] - shift)
            z[uoff[l] + i] = v
            if baseline:
                zc[uoff[l] + i] = vc


@njit(cache=True)
def _backprop_layer(
    theta: np.ndarray, w0: int, n_prev: int, n: int, above: int, below: int, jac: np.ndarray,
    delta: np.ndarray,
) -> None:  # fmt: skip
    """``delta[below + j] = jac[below + j] sum_i W[i, j] delta[above + i]``.

    ``W`` is the ``(n, n_prev)`` block of ``theta`` at ``w0``. The sums run over ``i`` in
    increasing order from 0, as in :func:`gradstat.kernels.forward.backprop_surrogate` (the same
    values, bit for bit), four columns at a time so that four independent sums are in
    flight.
    """
    j = 0
    while j < n_prev:
        width = 4 if j + 4 <= n_prev else 1
        v0 = 0.0
        v1 = 0.0
        v2 = 0.0
        v3 = 0.0
        for i in range(n):
            d = delta[above + i]
            r = w0 + i * n_prev + j
            v0 += theta[r] * d
            if width == 4:
                v1 += theta[r + 1] * d
                v2 += theta[r + 2] * d
                v3 += theta[r + 3] * d
        delta[below + j] = v0 * jac[below + j]
        if width == 4:
            delta[below + j + 1] = v1 * jac[below + j + 1]
            delta[below + j + 2] = v2 * jac[below + j + 2]
            delta[below + j + 3] = v3 * jac[below + j + 3]
        j += width


@njit(cache=True)
def _surrogate_jacobians(
    code: int, opts: np.ndarray, kappa: float, uoff: np.ndarray, a: np.ndarray,
    bit: np.ndarray, jac: np.ndarray,
) -> None:  # fmt: skip
    """The surrogate ``dh/da`` of each unit with bit 0 (row 0) and 1 (row 1) for a block.

    Below the top layer both rows hold the unit's value in the block.
    """
    top = uoff[uoff.shape[0] - 2]
    for k in range(uoff[uoff.shape[0] - 1]):
        if k < top:
            jac[0, k] = surrogate_jacobian(code, a[k], bit[k], opts, kappa)
            jac[1, k] = jac[0, k]
        else:
            jac[0, k] = surrogate_jacobian(code, a[k], 0.0, opts, kappa)
            jac[1, k] = surrogate_jacobian(code, a[k], 1.0, opts, kappa)


@njit(cache=True)
def _add_unit_block(
    f: float, k: int, stats: np.ndarray, total: float, q: int, g: np.ndarray, m: np.ndarray,
    m2: np.ndarray, sign: np.ndarray,
) -> None:  # fmt: skip
    """Add a block's states to coordinate ``q``, whose estimate is ``e = f delta_k`` per state.

    ``stats[:, k]`` holds unit ``k``'s weighted mean of ``delta`` over the block,
    ``sum w (delta - mean)^2``, and the weights of its states with ``delta > 0``, ``< 0``,
    ``= 0``; ``total = sum w``. Then ``sum w (e - g) = total (f mean - g)``,
    ``sum w (e - g)^2 = f^2 sum w (delta - mean)^2 + total (f mean - g)^2`` (no
    cancellation), and ``sign e = sign f sign delta``.
    """
    mu = f * stats[0, k] - g[q]
    m[q] += total * mu
    m2[q] += f * f * stats[1, k] + total * mu * mu
    sf = sign_of(f)
    sg = sign_of(g[q])
    if sf == 0:
        sign[q] += total if sg == 0 else 0.0
    else:
        want = sf * sg
        sign[q] += stats[2, k] if want > 0 else (stats[3, k] if want < 0 else stats[4, k])


@njit(cache=True)
def _add_group(
    fr: float, group: np.ndarray, counts: np.ndarray, K: int, c: float, rank: int, q: int,
    g: np.ndarray, m: np.ndarray, m2: np.ndarray, sign: np.ndarray,
) -> None:  # fmt: skip
    """Add a group of states to coordinate ``q``, whose estimate is ``e = fr (C - c)`` there.

    ``group`` holds the group's ``W = sum w``, the weighted mean of ``C`` and
    ``sum w (C - mean)^2`` (:func:`_west`; ``C`` and ``c`` shifted alike); ``counts[i]`` the
    weight of its states whose loss falls in a bin below ``i`` among the sorted baselines
    (:func:`_factored_moments_kernel`), ``rank`` the rank of ``c`` there. Then
    ``sum w (e - g) = W (fr (mean - c) - g)``, ``sum w (e - g)^2 = fr^2 sum w (C - mean)^2 +
    W (fr (mean - c) - g)^2``, and ``sign e = sign fr sign (C - c)``.
    """
    W = group[0]
    mu = fr * (group[1] - c) - g[q]
    m[q] += W * mu
    m2[q] += fr * fr * group[2] + W * mu * mu
    sf = sign_of(fr)
    sg = sign_of(g[q])
    if sf == 0:
        sign[q] += W if sg == 0 else 0.0
    else:
        want = sf * sg
        below = counts[2 * rank + 1]
        equal = counts[2 * rank + 2] - below
        above = counts[2 * K + 1] - counts[2 * rank + 2]
        sign[q] += above if want > 0 else (below if want < 0 else equal)


@njit(cache=True)
def _add_block(
    score: bool, sizes: np.ndarray, woff: np.ndarray, boff: np.ndarray, uoff: np.ndarray,
    p: np.ndarray, h: np.ndarray, coef: np.ndarray, stats: np.ndarray, total: float,
    groups: np.ndarray, counts: np.ndarray, c: np.ndarray, shift: float, ranks: np.ndarray,
    g: np.ndarray, m: np.ndarray, m2: np.ndarray, sign: np.ndarray,
) -> None:  # fmt: skip
    """Add a block's states to every coordinate of the stochastic layers.

    Coordinate ``W_l[i, j]`` has factor ``f = h_{l-1,j}`` and ``b_l[i]`` factor 1, both
    fixed within the block. Surrogates: :func:`_add_unit_block` with unit ``(l, i)``'s
    statistics. ``reinforce``: :func:`_add_group` with ``fr = f r`` per group of states,
    ``r = b - p``: the block (below the top layer), or the states where top unit ``i`` has
    bit 0 (``r = -p``) and bit 1 (``r = 1 - p``). Cumulates ``counts`` in place.
    """
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    top = uoff[L - 1]
    if score:
        for gi in range(counts.shape[0]):
            for cell in range(1, counts.shape[1]):
                counts[gi, cell] += counts[gi, cell - 1]
    K = (counts.shape[1] - 2) // 2
    for l in range(L):
        n_prev = sizes[l]
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            q = boff[l] - s0 + i
            row = woff[l] - s0 + i * n_prev
            if not score:
                _add_unit_block(1.0, k, stats, total, q, g, m, m2, sign)
                if l > 0:
                    for j in range(n_prev):
                        f = h[uoff[l - 1] + j]
                        _add_unit_block(f, k, stats, total, row + j, g, m, m2, sign)
                continue
            first = 0 if k < top else 1 + 2 * (k - top)
            for gi in range(first, first + (1 if k < top else 2)):
                r = coef[k] if k < top else float(gi - first) - p[k]
                group, cum = groups[gi], counts[gi]
                _add_group(r, group, cum, K, c[q] - shift, ranks[q], q, g, m, m2, sign)
                if l > 0:
                    for j in range(n_prev):
                        fr = r * h[uoff[l - 1] + j]
                        cq = c[row + j] - shift
                        _add_group(fr, group, cum, K, cq, ranks[row + j], row + j, g, m, m2, sign)


@njit(parallel=True, cache=True)
def _factored_moments_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    code: int,
    mode: int,
    opts: np.ndarray,
    baselines: np.ndarray,
    G: np.ndarray,
    DW: np.ndarray,
    seg: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_moments_kernel` for the estimators whose estimate factorises per unit.

    The estimate of ``W_l[i, j]`` is ``delta_{l,i} h_{l-1,j}`` and that of ``b_l[i]`` is
    ``delta_{l,i}``; the output layer's is ``dC/dy`` and ``outer(dC/dy, h_L)``.

    * Surrogates (``code`` in :data:`SURROGATES`): ``delta_L = (W_o^T dC/dy) * J_L`` and
      ``delta_{l-1} = (W_l^T delta_l) * J_{l-1}``, ``J`` the surrogate ``dh/da``.
    * ``reinforce`` with baselines ``c_q``: ``e_q = (C - c_q) r_{l,i} f_q`` with
      ``r = b - p`` and ``f_q = h_{l-1,j}`` (1 for ``b_l[i]``).

    States are visited in blocks with the units below the top layer fixed
    (:func:`_enter_block`), so ``h_{l-1}`` is constant within a block for every ``l <= L``
    and per-state work is per unit; once per block it is spread over the coordinates
    (:func:`_add_block`).

    * Surrogates: per state ``delta`` is backpropagated as in
      :func:`gradstat.kernels.forward.backprop_surrogate` (same values, bit for bit) and each unit
      adds it to running weighted moments (West's update of the mean and of
      ``sum w (delta - mean)^2``) and to the weight of its sign.
    * ``reinforce``: ``r f`` is fixed within a block below the top layer and takes one
      value per bit of a top unit, so per state the loss is added (West) to ``1 + 2 n_L``
      groups of states (the block; top unit ``i`` at bit 0; at bit 1) and to a histogram
      of where it falls among the example's sorted distinct baselines ``t_1 < ... < t_K``
      (bins ``C < t_1``, ``C = t_1``, ``t_1 < C < t_2``, ...) for the sign probabilities.

    Layer ``l``'s descent dot product is ``sum_i delta_{l,i} z_{l,i}``, for ``reinforce``
    ``sum_i r_{l,i} (C z_{l,i} - zc_{l,i})`` (:func:`_descent_weights`). Per state this
    costs ``O(n_L n_out + sum_{l<L} n_l n_{l+1})`` (surrogates, the backpropagation) or
    ``O(n_L n_out + log K)`` (``reinforce``) instead of ``O(n_params)``.
    """
    woff, boff, uoff = offsets(sizes)
    L = sizes.shape[0] - 2
    n_units = uoff[L]
    top = uoff[L - 1]
    n_top = sizes[L]
    n_out = sizes[L + 1]
    s0 = sizes[0] * sizes[1]
    n_hidden = woff[L] - s0
    B, n = G.shape
    S = np.int64(1) << n_units
    nc = _block_chunks(S)
    mask = (np.int64(1) << n_top) - 1
    score = code == REINFORCE
    n_groups = 1 + 2 * n_top if score else 0
    acc_m, acc_m2, acc_sign, acc_desc, acc_cov = new_accumulators(B, nc, n, seg.shape[0] - 1, False)
    no_u = np.empty(0)
    for b in range(B):
        tab = L1[b]
        kappa = 1.0 - tab[6, 0]
        c_b = baselines[b] if score else no_u
        levels = np.unique(c_b[:n_hidden])
        ranks = np.searchsorted(levels, c_b[:n_hidden])
        K = levels.shape[0]
        shift = levels[0] if score else 0.0
        for c in prange(nc):
            a, p, bit, h, y, dy = state_buffers(n_units, n_out)
            y_low = np.empty(n_out)
            y_sum = np.empty(n_out)
            top_units = np.empty((3, n_top))
            z = np.empty(n_units)
            zc = np.empty(n_units)
            coef = np.empty(n_units)
            dots = np.empty(L)
            jac = np.empty((2, n_units))
            delta = np.empty(n_units)
            stats = np.empty((5, n_units))
            mean, sq, pos, neg, zero = stats[0], stats[1], stats[2], stats[3], stats[4]
            below = np.empty((2, L))
            groups = np.empty((n_groups, 3))
            counts = np.empty((n_groups, 2 * K + 2))
            m, m2, sign, desc = acc_m[b, c], acc_m2[b, c], acc_sign[b, c], acc_desc[b, c]
            lo = c * S // nc
            stop = (c + 1) * S // nc
            while lo < stop:
                hi = min(stop, ((lo >> n_top) + 1) << n_top)
                logp, period = _enter_block(
                    theta, sizes, woff, boff, uoff, tab, mode, lo, no_u, a, p, bit, h, y,
                    top_units,
                )  # fmt: skip
                _descent_weights(sizes, woff, boff, uoff, h, DW[b], c_b, shift, z, zc)
                if not score:
                    _surrogate_jacobians(code, opts, kappa, uoff, a, bit, jac)
                for k in range(n_units):
                    coef[k] = bit[k] - p[k] if score else jac[int(bit[k]), k]
                for l in range(L - 1 if score else 0):
                    v = 0.0
                    vc = 0.0
                    for k in range(uoff[l], uoff[l + 1]):
                        v += coef[k] * z[k]
                        vc += coef[k] * zc[k]
                    below[0, l] = v
                    below[1, l] = vc
                stats[:] = 0.0
                groups[:] = 0.0
                counts[:] = 0.0
                total = 0.0
                logp_low = 0.0
                y_low[:] = 0.0
                countdown = period
                for gpos in range(lo, hi):
                    if countdown == 0:
                        countdown = period
                        logp = forward_state(
                            theta, sizes, woff, boff, uoff, tab, _joint_state(gpos, n_top, top),
                            no_u, mode, a, p, bit, h, y,
                        )  # fmt: skip
                        logp_low = 0.0
                        y_low[:] = 0.0
                    countdown -= 1
                    w = exp(logp + logp_low)
                    if w > 0.0:
                        for o in range(n_out):
                            y_sum[o] = y[o] + y_low[o]
                        C = loss_and_grad(loss, y_sum, T[b], dy)
                        if score:
                            x = C - shift
                            base = 0
                            span = K
                            while span > 1:
                                half = span >> 1
                                base = base + half if levels[base + half] < C else base
                                span -= half
                            rank = base + 1 if levels[base] < C else base
                            cell = 2 * rank + (2 if rank < K and levels[rank] == C else 1)
                            _west(groups[0], x, w)
                            counts[0, cell] += w
                            for i in range(n_top):
                                gi = 2 + 2 * i if bit[top + i] == 1.0 else 1 + 2 * i
                                _west(groups[gi], x, w)
                                counts[gi, cell] += w
                            for l in range(L - 1):
                                dots[l] = x * below[0, l] - below[1, l]
                            v = 0.0
                            for k in range(top, n_units):
                                v += coef[k] * (x * z[k] - zc[k])
                            dots[L - 1] = v
                        else:
                            for i in range(n_top):
                                v = 0.0
                                for o in range(n_out):
                                    v += theta[woff[L] + o * n_top + i] * dy[o]
                                delta[top + i] = v * coef[top + i]
                            for l in range(L - 1, 0, -1):
                                _backprop_layer(
                                    theta, woff[l], sizes[l], sizes[l + 1], uoff[l], uoff[l - 1],
                                    coef, delta,
                                )  # fmt: skip
                            ratio = w / (total + w)
                            for k in range(n_units):
                                d = delta[k]
                                dev = d - mean[k]
                                step = dev * ratio
                                mean[k] += step
                                sq[k] += total * dev * step
                                pos[k] += w if d > 0.0 else 0.0
                                neg[k] += w if d < 0.0 else 0.0
                                zero[k] += w if d == 0.0 else 0.0
                            for l in range(L):
                                v = 0.0
                                for k in range(uoff[l], uoff[l + 1]):
                                    v += delta[k] * z[k]
                                dots[l] = v
                        total += w
                        out = 0.0
                        for o in range(n_out):
                            q = boff[L] - s0 + o
                            _add_coordinate(w, dy[o], q, G[b], m, m2, sign)
                            out += dy[o] * DW[b, q]
                            row = woff[L] - s0 + o * n_top
                            for j in range(n_top):
                                e = dy[o] * h[top + j]
                                _add_coordinate(w, e, row + j, G[b], m, m2, sign)
                                out += e * DW[b, row + j]
                        _add_descent(w, dots, out, desc)
                    if gpos + 1 < hi:
                        k = _gray_unit(gpos & mask)
                        u = top + k
                        fire = bit[u] == 0.0
                        bit[u] = 1.0 if fire else 0.0
                        logp, err = _two_sum(logp, top_units[2, k] if fire else -top_units[2, k])
                        logp_low += err
                        new = top_units[0, k] if fire else top_units[1, k]
                        step = new - h[u]
                        h[u] = new
                        for o in range(n_out):
                            y[o], err = _two_sum(y[o], step * theta[woff[L] + o * n_top + k])
                            y_low[o] += err
                        coef[u] = bit[u] - p[u] if score else jac[int(bit[u]), u]
                _add_block(
                    score, sizes, woff, boff, uoff, p, h, coef, stats, total, groups, counts, c_b,
                    shift, ranks, G[b], m, m2, sign,
                )  # fmt: skip
                lo = hi
    return reduce_chunks(acc_m, acc_m2, acc_sign, acc_desc, acc_cov)


@njit(parallel=True, cache=True)
def _moments_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    code: int,
    mode: int,
    n_bits: int,
    opts: np.ndarray,
    baselines: np.ndarray,
    G: np.ndarray,
    DW: np.ndarray,
    seg: np.ndarray,
    want_cov: bool,
    cols: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact moments of built-in estimator ``code``, per example, in the compressed layout.

    Sums over the ``2^n_bits`` noise states (``n_bits = N``, or ``N k`` for ``k`` draws).
    ``reinforce`` and the straight-through-type estimators factorise per unit and take
    :func:`_factored_moments_kernel` (except for ``want_cov``); every other estimator runs
    :func:`draw_estimate` per state. Returns
    ``E[d]``, ``E[d^2]`` with ``d = g_hat - g``, ``P(sign g_hat_j = sign g_j)``, descent
    probabilities (see :func:`gradstat.kernels.accumulate.accumulate`) and (``want_cov``)
    ``sum_x E[d d^T]``.
    """
    woff, boff, uoff = offsets(sizes)
    B, n = G.shape
    n_seg = seg.shape[0] - 1
    if not want_cov and n_bits == uoff[uoff.shape[0] - 1]:
        if code == REINFORCE or code in SURROGATES:
            return _factored_moments_kernel(
                theta, sizes, L1, T, loss, code, mode, opts, baselines, G, DW, seg
            )
    S = np.int64(1) << n_bits
    nc = _n_chunks(S, CHUNKS // 4 if want_cov else CHUNKS)
    acc_m, acc_m2, acc_sign, acc_desc, acc_cov = new_accumulators(B, nc, n, n_seg, want_cov)
    no_u = np.empty(0)
    for b in range(B):
        for c in prange(nc):
            ws = np.empty((WS_ROWS, cols))
            e = np.empty(n)
            d = np.empty(n)
            dots = np.empty(n_seg)
            for state in range(c * S // nc, (c + 1) * S // nc):
                logp = draw_estimate(
                    code, opts, theta, sizes, woff, boff, uoff, L1[b], T[b], loss, mode, state,
                    no_u, baselines[b], ws, e,
                )  # fmt: skip
                accumulate(
                    exp(logp), e, G[b], DW[b], seg, acc_m[b, c], acc_m2[b, c],
                    acc_sign[b, c], acc_desc[b, c], d, dots, acc_cov[c],
                )  # fmt: skip
    return reduce_chunks(acc_m, acc_m2, acc_sign, acc_desc, acc_cov)


@cache
def user_moments_kernel(fn: Any) -> Any:
    """The enumeration kernel for a user's jitted per-state function (full layout).

    Compiled once per function and process (a kernel that calls a user function cannot be
    cached on disk); it shares the forward pass and :func:`gradstat.kernels.accumulate.accumulate`
    with the built-in kernel, so only the estimate differs.
    """

    @njit(parallel=True)
    def kernel(theta, sizes, X, L1, T, loss, mode, G, DW, seg, want_cov):  # noqa: ANN001, ANN202
        woff, boff, uoff = offsets(sizes)
        n_units = uoff[uoff.shape[0] - 1]
        B, n = G.shape
        n_out = sizes[sizes.shape[0] - 1]
        n_seg = seg.shape[0] - 1
        S = np.int64(1) << n_units
        nc = _n_chunks(S, CHUNKS // 4 if want_cov else CHUNKS)
        acc_m, acc_m2, acc_sign, acc_desc, acc_cov = new_accumulators(B, nc, n, n_seg, want_cov)
        no_u = np.empty(0)
        for b in range(B):
            for c in prange(nc):
                a, p, bit, h, y, dy = state_buffers(n_units, n_out)
                e = np.empty(n)
                d = np.empty(n)
                dots = np.empty(n_seg)
                for state in range(c * S // nc, (c + 1) * S // nc):
                    logp = forward_state(
                        theta, sizes, woff, boff, uoff, L1[b], state, no_u, mode, a, p, bit,
                        h, y,
                    )  # fmt: skip
                    C = loss_and_grad(loss, y, T[b], dy)
                    e[:] = 0.0
                    fn(theta, sizes, X[b], T[b], no_u, a, p, h, y, dy, C, e)
                    accumulate(
                        exp(logp), e, G[b], DW[b], seg, acc_m[b, c], acc_m2[b, c],
                        acc_sign[b, c], acc_desc[b, c], d, dots, acc_cov[c],
                    )  # fmt: skip
        return reduce_chunks(acc_m, acc_m2, acc_sign, acc_desc, acc_cov)

    return kernel


TRANSCENDENTAL_COST = 16
"""Cost of a state of the ``bce`` or ``xent`` loss (an exponential per output) relative to
``mse`` or ``linear`` in the one-layer kernel, for :func:`one_layer_work`."""


def one_layer_work(problem: Problem) -> int:
    """Work of :func:`_one_layer_kernel` in the units of :func:`gradstat.problem.threads_for`.

    About ``B 2^N (1 + n_out)`` per-state updates (times :data:`TRANSCENDENTAL_COST` for
    ``bce`` and ``xent``), or 0 when there is a single chunk to run (nothing to share).
    """
    net = problem.net
    _, nc = _one_layer_layout(net.n_stochastic)
    tasks = problem.n_examples * nc
    if tasks < 2:
        return 0
    per_state = (1 + net.n_out) * (TRANSCENDENTAL_COST if problem.loss_code in (BCE, XENT) else 1)
    return problem.n_examples * 2**net.n_stochastic * per_state


def gradient_pass(
    problem: Problem, want_stats: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-example ``E[C]``, compressed exact gradient, and optimal-baseline sums."""
    one_layer = problem.net.n_layers == 1
    with threads_for(one_layer_work(problem) if one_layer else problem.work()):
        kernel = _one_layer_kernel if one_layer else _gradient_kernel
        return kernel(
            problem.theta,
            problem.sizes,
            layer1_table(problem.A1, problem.mode),
            problem.T,
            problem.loss_code,
            problem.mode,
            want_stats,
        )


def gradient_engine(net: BinaryNetwork) -> str:
    """The cheaper exact engine for the loss and gradient: ``"joint"`` or ``"layerwise"``.

    Joint enumeration costs about ``2^N n_params``; messages over adjacent layers cost
    about ``sum_l 2^{n_{l-1} + n_l} n_l`` (:mod:`gradstat.layerwise`) plus a fixed
    overhead of a few kernel calls per layer (:data:`MESSAGE_OVERHEAD`). One stochastic
    layer always uses joint enumeration (the two coincide and it is the tuned path).
    """
    if net.n_layers == 1:
        return "joint"
    joint = net.n_states * net.n_params
    return "joint" if joint <= layerwise_cost(net.sizes) + MESSAGE_OVERHEAD else "layerwise"


MESSAGE_OVERHEAD = 2**18
"""The message engine's fixed cost in units of joint work (its kernel calls take a few
tenths of a millisecond), so that tiny multi-layer networks keep joint enumeration."""


def check_layerwise_states(net: BinaryNetwork, max_states: int, what: str) -> None:
    """Refuse a message pass whose widest pair of adjacent layers exceeds ``max_states``."""
    hidden = net.hidden_sizes
    widest = max(a + b for a, b in zip(hidden[:-1], hidden[1:]))
    if 2**widest > max_states:
        raise ValueError(
            f"{what} by layer-wise messages enumerates 2^{widest} = {2**widest:,} pairs of "
            f"adjacent layer states, more than max_states = {max_states:,}; the network is "
            f"too wide to compute exactly: use Monte Carlo draws (gradstat.sample_gradients, "
            f"gradstat.stats.compare_estimators)"
        )


def reference_gradient(
    problem: Problem, max_states: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example ``E[C]`` ``(B,)`` and exact gradients ``(B, n_params)``, cheaper engine.

    ``max_states`` caps the states one engine enumerates at once: ``2^N`` joint states, or
    ``2^{n_{l-1} + n_l}`` pairs of adjacent layer states for the layer-wise engine.
    """
    net = problem.net
    if gradient_engine(net) == "joint":
        check_states(net, max_states, what)
        losses, grads_c, _, _ = gradient_pass(problem)
        return losses, expand_mean(problem, grads_c)
    check_layerwise_states(net, max_states, what)
    tab = layer1_table(problem.A1, problem.mode)
    with threads_for(problem.n_examples * layerwise_cost(net.sizes)):
        return layerwise_gradient(
            problem.theta, problem.sizes, tab, problem.X, problem.T, problem.loss_code, problem.low
        )


def expected_loss(
    net: BinaryNetwork, x: Any, t: Any, *, max_states: int = DEFAULT_MAX_STATES
) -> float:
    """Exact objective ``J = (1/B) sum_x E_{h ~ P(h | x)}[C(y(h), t)]`` (SPEC section 1).

    Parameters
    ----------
    net : BinaryNetwork
    x : array_like, shape (n_in,) or (B, n_in)
    t : array_like
        Targets matching the loss (see :class:`BinaryNetwork`).
    max_states : int
        Refuse to enumerate more than this many states at once per example (``2^N``
        joint states, or ``2^{n_{l-1} + n_l}`` for the layer-wise engine).

    Raises
    ------
    ValueError
        For malformed input, or when ``2^N > max_states`` (the message says what to use).
    """
    problem = make_problem(net, x, t)
    losses, _ = reference_gradient(problem, max_states, "expected_loss")
    return float(np.mean(losses))


def exact_gradient(
    net: BinaryNetwork, x: Any, t: Any, *, max_states: int = DEFAULT_MAX_STATES
) -> np.ndarray:
    """Exact gradient ``g = grad_theta J`` by enumerating the ``2^N`` hidden states.

    Uses the score-function identity ``g = E[C(h) grad log P(h | x) + grad C(y(h), t)]``,
    summed exactly over all joint states, or, for deep networks where that is cheaper,
    the same sums by messages over adjacent layers (:mod:`gradstat.layerwise`; see
    :func:`gradient_engine`). No sampling either way. Returns shape ``(n_params,)`` in
    SPEC order; for a batch, the mean over examples.
    """
    problem = make_problem(net, x, t)
    _, grads = reference_gradient(problem, max_states, "exact_gradient")
    return grads.mean(axis=0)


@dataclass(frozen=True, eq=False)
class EstimatorMoments:
    """Exact moments of an estimator's batch estimate (all arrays in SPEC order).

    Attributes
    ----------
    estimator : str
    options : dict
    gradient : ndarray (n_params,)
        Exact gradient of the batch objective.
    mean : ndarray (n_params,)
        ``E[g_hat]`` of the batch estimate (mean of the per-example means).
    var : ndarray (n_params,)
        Per-coordinate variance of the batch estimate, ``(1/B^2) sum_x var_x``.
    cov : ndarray (n_params, n_params) or None
        Covariance of the batch estimate (with ``full_cov=True``).
    example_gradient, example_mean, example_var : ndarray (B, n_params)
        The same per example.
    sign_probability : ndarray (B, n_params)
        Per example, ``P(sign g_hat_j = sign g_j)`` against that example's gradient.
    descent_probability : ndarray (B, L + 3)
        Per example, ``P(<g_hat, g> > 0)`` restricted to ``descent_labels``.
    descent_labels : tuple of str
        ``layer1..layerL, output, all, stochastic``.
    engine : str
        How the moments were computed: ``"joint"`` (all noise states), ``"cells"``
        (ARM/DisARM's cells of ``u``) or ``"layerwise"`` (messages over adjacent layers;
        sign and descent probabilities are then NaN: they are not sums over adjacent
        layer states).
    """

    estimator: str
    options: dict[str, Any]
    gradient: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    var: np.ndarray = field(repr=False)
    cov: np.ndarray | None = field(repr=False)
    example_gradient: np.ndarray = field(repr=False)
    example_mean: np.ndarray = field(repr=False)
    example_var: np.ndarray = field(repr=False)
    sign_probability: np.ndarray = field(repr=False)
    descent_probability: np.ndarray = field(repr=False)
    descent_labels: tuple[str, ...] = field(repr=False)
    engine: str = "joint"

    @property
    def bias(self) -> np.ndarray:
        """``E[g_hat] - g``."""
        return self.mean - self.gradient


def descent_labels(net: BinaryNetwork) -> tuple[str, ...]:
    """Names of the descent-probability columns: per layer, then ``all``, ``stochastic``."""
    return tuple(f"layer{k}" for k in range(1, net.n_layers + 1)) + (
        "output",
        "all",
        "stochastic",
    )


def check_values(spec: AnyEstimator, net: BinaryNetwork) -> None:
    """Refuse an estimator on unit values it is not defined for (``sts``, rectifier: 0/1)."""
    if isinstance(spec, Estimator) and net.values not in spec.values:
        raise ValueError(
            f"estimator {spec.name!r} is not defined for units with values={net.values!r}; "
            f"it takes networks with values in {spec.values} (build the network with "
            f"values='01')"
        )


def kernel_options(
    spec: AnyEstimator, options: dict[str, Any], problem: Problem, max_states: int
) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's option array and per-example baseline rows for the kernels."""
    B, Pc = problem.n_examples, problem.n_compressed
    if not isinstance(spec, Estimator):
        return np.zeros(1), np.zeros((B, Pc))
    opts = np.ascontiguousarray(spec.encode(options), dtype=np.float64)
    baseline = options.get("baseline", "none")
    if spec.name != "reinforce" or baseline == "none":
        return opts, np.zeros((B, Pc))
    if isinstance(baseline, float):
        return opts, np.full((B, Pc), baseline)
    what = f"the {baseline!r} baseline (an exact oracle)"
    if baseline == "mean":
        losses, _ = reference_gradient(problem, max_states, what)
        return opts, np.repeat(losses[:, None], Pc, axis=1)
    if gradient_engine(problem.net) == "layerwise":
        check_layerwise_states(problem.net, max_states, what)
        used = np.zeros((B, problem.net.n_params))
        with threads_for(B * layerwise_moments_cost(problem.net.sizes, SCORE)):
            layerwise_moments(
                problem.theta, problem.sizes, problem.A1, problem.X, problem.T,
                problem.loss_code, problem.low, SCORE, REINFORCE, opts, "optimal", used,
            )  # fmt: skip
        return opts, np.ascontiguousarray(used[:, problem.net.n_params - Pc :])
    check_states(problem.net, max_states, what)
    losses, _, s2c, s2 = gradient_pass(problem, want_stats=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(s2 > 0.0, s2c / np.where(s2 > 0.0, s2, 1.0), 0.0)
    return opts, np.ascontiguousarray(np.pad(c, ((0, 0), (0, Pc - c.shape[1]))))


def workspace_for(problem: Problem, spec: AnyEstimator, options: dict[str, Any]) -> int:
    """Columns of the kernels' scratch array for ``spec`` on ``problem``."""
    net = problem.net
    k = int(options.get("k", 1)) if isinstance(spec, Estimator) else 1
    return workspace_columns(
        net.n_stochastic, net.n_out, problem.n_compressed, max(net.hidden_sizes), k
    )


def unit_mode(problem: Problem, spec: AnyEstimator) -> int:
    """The forward pass's unit mode for ``spec``: STS's smooth units, else the network's."""
    return SMOOTH if isinstance(spec, Estimator) and spec.smooth else problem.mode


def exact_engine(spec: AnyEstimator, net: BinaryNetwork) -> str | None:
    """``"joint"`` (noise states), ``"cells"`` (ARM/DisARM, one layer) or None (Monte Carlo)."""
    if isinstance(spec, Estimator):
        return spec.exact_engine(net.n_layers)
    if isinstance(spec, PythonEstimator) or spec.noise != "discrete":
        return None
    return "joint"


def exact_count(spec: AnyEstimator, net: BinaryNetwork, options: dict[str, Any]) -> int:
    """Noise states (or cells) an exact computation of ``spec``'s moments sums over."""
    if isinstance(spec, Estimator):
        return spec.exact_count(net.hidden_sizes, options)
    return net.n_states


def check_exact(
    spec: AnyEstimator, net: BinaryNetwork, options: dict[str, Any], max_states: int
) -> str:
    """The exact engine for ``spec``'s moments, or a ValueError saying what to use instead."""
    engine = exact_engine(spec, net)
    if engine is None:
        why = (
            "its ARM cells are enumerated for one stochastic layer only"
            if isinstance(spec, Estimator) and spec.cells
            else "it has continuous or undeclared noise"
        )
        raise ValueError(
            f"the moments of estimator {spec.name!r} cannot be enumerated ({why}); use "
            f"gradstat.analyze(..., method='mc') or gradstat.sample_gradients (or declare a "
            f"discrete one with gradstat.per_state_estimator)"
        )
    check_states(net, max_states, f"exact moments of {spec.name!r}")
    count = exact_count(spec, net, options)
    if count > max_states:
        what = "cells of u" if engine == "cells" else "noise states"
        raise ValueError(
            f"exact moments of {spec.name!r} sum over {count:,} {what} per example, more than "
            f"max_states = {max_states:,}. Use method='mc' (gradstat.analyze(..., method='mc', "
            f"n_samples=..., seed=...)) or raise max_states if you can afford it."
        )
    return engine


ENGINES = ("auto", "joint", "cells", "layerwise")
"""Exact-moment engines a caller may ask for (``"auto"`` chooses by cost)."""

JOINT_PREFERRED_WORK = 2**26
"""``"auto"`` keeps joint enumeration up to this many state-coordinate updates per example
(a fraction of a second) even where messages are cheaper: it alone also gives exact sign
agreement and descent probabilities."""


def layerwise_family(spec: AnyEstimator) -> str | None:
    """``"score"`` (REINFORCE), ``"surrogate"`` (straight-through type) or None: whether
    ``spec``'s exact moments can be computed by messages over adjacent layers."""
    if not (isinstance(spec, Estimator) and spec.layerwise):
        return None
    return SCORE if spec.code == REINFORCE else SURROGATE


def layerwise_states(net: BinaryNetwork) -> int:
    """Largest number of (pairs of) layer states one message enumerates at once."""
    hidden = net.hidden_sizes
    return 2 ** max([hidden[0], *(a + b for a, b in zip(hidden[:-1], hidden[1:]))])


def _layerwise_refusal(spec: AnyEstimator) -> str:
    if isinstance(spec, Estimator) and spec.smooth:
        return (
            "STS passes on h = b sqrt(p(a)), which depends on the layer below, so its "
            "estimate is not a function of adjacent layers' states (not Markov)"
        )
    return (
        "only REINFORCE and the straight-through-type estimators (st, st_sigmoid, "
        "st_tempered, reinmax) are sums over adjacent layers' states"
    )


def joint_state_cost(spec: AnyEstimator, net: BinaryNetwork) -> int:
    """Work per enumerated state: about ``N + n_out n_L`` for REINFORCE and the
    straight-through-type estimators (per-unit sums, :func:`_factored_moments_kernel`),
    ``n_params`` for the others (a full estimate per state)."""
    if isinstance(spec, Estimator) and (spec.code == REINFORCE or spec.code in SURROGATES):
        return net.n_stochastic + net.n_out * (net.hidden_sizes[-1] + 1)
    return net.n_params


def moments_engine(
    spec: AnyEstimator,
    net: BinaryNetwork,
    options: dict[str, Any],
    max_states: int,
    *,
    engine: str = "auto",
    full_cov: bool = False,
) -> str:
    """The engine for ``spec``'s exact moments, or a ValueError saying what to use instead.

    ``"joint"`` sums over all noise states (``"cells"`` for ARM/DisARM on one layer);
    ``"layerwise"`` passes messages over adjacent layers (:mod:`gradstat.layerwise`; mean
    and variance only, REINFORCE and straight-through-type estimators). ``"auto"`` takes
    the cheaper of the two that fit ``max_states``, keeping joint enumeration when its
    work is below :data:`JOINT_PREFERRED_WORK` (it also gives sign agreement and descent
    probability). Work: ``count x`` :func:`joint_state_cost` for joint enumeration,
    :func:`gradstat.layerwise.layerwise_moments_cost` for messages.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    family = layerwise_family(spec)
    name = spec.name
    if engine == "layerwise" or (engine == "auto" and family is not None and not full_cov):
        problems = []
        if family is None:
            problems.append(_layerwise_refusal(spec))
        elif full_cov:
            problems.append("full_cov needs joint enumeration (messages give variances only)")
        elif layerwise_states(net) > max_states:
            problems.append(
                f"it enumerates {layerwise_states(net):,} pairs of adjacent layer states, "
                f"more than max_states = {max_states:,}"
            )
        if engine == "layerwise":
            if problems:
                raise ValueError(
                    f"exact moments of {name!r} by layer-wise messages are not available: "
                    f"{problems[0]}; use engine='joint' (or 'auto') or method='mc'"
                )
            return "layerwise"
        if not problems:
            try:
                joint = check_exact(spec, net, options, max_states)
            except ValueError:
                return "layerwise"
            joint_work = exact_count(spec, net, options) * joint_state_cost(spec, net)
            messages = layerwise_moments_cost(net.sizes, family)
            return joint if joint_work <= max(messages, JOINT_PREFERRED_WORK) else "layerwise"
    found = check_exact(spec, net, options, max_states)
    if engine != "auto" and engine != found:
        raise ValueError(
            f"exact moments of {name!r} on this network use engine {found!r}, not "
            f"{engine!r}; pass engine='auto' or engine={found!r}"
        )
    return found


def _layerwise_pass(
    problem: Problem, spec: AnyEstimator, options: dict[str, Any]
) -> EstimatorMoments:
    """Exact means and variances by messages (:func:`gradstat.layerwise.layerwise_moments`)."""
    net = problem.net
    family = layerwise_family(spec)
    opts = np.ascontiguousarray(spec.encode(options), dtype=np.float64)
    work = problem.n_examples * layerwise_moments_cost(net.sizes, family)
    with threads_for(work):
        _, ex_grad, ex_mean, ex_var = layerwise_moments(
            problem.theta, problem.sizes, problem.A1, problem.X, problem.T, problem.loss_code,
            problem.low, family, spec.code, opts, options.get("baseline", "none"),
        )  # fmt: skip
    B = problem.n_examples
    labels = descent_labels(net)
    return EstimatorMoments(
        estimator=spec.name,
        options=options,
        gradient=ex_grad.mean(axis=0),
        mean=ex_mean.mean(axis=0),
        var=ex_var.sum(axis=0) / B**2,
        cov=None,
        example_gradient=ex_grad,
        example_mean=ex_mean,
        example_var=ex_var,
        sign_probability=np.full_like(ex_grad, np.nan),
        descent_probability=np.full((B, len(labels)), np.nan),
        descent_labels=labels,
        engine="layerwise",
    )


def _run_moments(
    problem: Problem,
    spec: AnyEstimator,
    options: dict[str, Any],
    opts: np.ndarray,
    baselines: np.ndarray,
    G: np.ndarray,
    dw: np.ndarray,
    seg: np.ndarray,
    rows: slice,
    want_cov: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One enumeration over the examples ``rows`` with the kernel that fits ``spec``."""
    mode = unit_mode(problem, spec)
    L1, T = layer1_table(problem.A1[rows], mode), problem.T[rows]
    net = problem.net
    count = exact_count(spec, net, options)
    work = L1.shape[0] * count * G.shape[1] * (G.shape[1] if want_cov else 1)
    with threads_for(work):
        if isinstance(spec, Estimator) and exact_engine(spec, net) == "cells":
            return cells_kernel(
                spec.name == "disarm", problem.theta, problem.sizes, L1, T, problem.loss_code,
                G[rows], dw[rows], seg, want_cov, CHUNKS // 4 if want_cov else CHUNKS,
            )  # fmt: skip
        if isinstance(spec, Estimator):
            return _moments_kernel(
                problem.theta, problem.sizes, L1, T, problem.loss_code, spec.code, mode,
                spec.noise_size(net.hidden_sizes, options), opts, baselines[rows], G[rows],
                dw[rows], seg, want_cov, workspace_for(problem, spec, options),
            )  # fmt: skip
        kernel = user_moments_kernel(spec.function)
        return kernel(
            problem.theta, problem.sizes, problem.X[rows], L1, T, problem.loss_code, mode,
            G[rows], dw[rows], seg, want_cov,
        )  # fmt: skip


def moments_pass(
    problem: Problem,
    spec: AnyEstimator,
    options: dict[str, Any],
    *,
    full_cov: bool,
    max_states: int,
    engine: str = "auto",
) -> EstimatorMoments:
    """Exact moments of a registered or per-state user estimator on a validated problem.

    ``engine`` is resolved by :func:`moments_engine`. Built-in estimators work in the
    compressed layout, per-state user functions in the full one (``full``); both are
    expanded to the full layout here.
    """
    check_values(spec, problem.net)
    engine = moments_engine(
        spec, problem.net, options, max_states, engine=engine, full_cov=full_cov
    )
    if engine == "layerwise":
        return _layerwise_pass(problem, spec, options)
    full = not isinstance(spec, Estimator)
    opts, baselines = kernel_options(spec, options, problem, max_states)
    _, ex_grad = reference_gradient(problem, max_states, f"exact moments of {spec.name!r}")
    s0 = problem.net.n_params - problem.n_compressed
    G = ex_grad if full else np.ascontiguousarray(ex_grad[:, s0:])
    seg = problem.segment_starts(full)
    dw = problem.descent_weights(G, full)
    B = problem.n_examples
    everything = slice(0, B)
    args = (problem, spec, options, opts, baselines, G, dw, seg)
    m, m2, sign, desc, _ = _run_moments(*args, everything, False)
    var = np.maximum(m2 - m**2, 0.0)
    ex_mean = ex_grad + expand_mean(problem, m, full)
    ex_var = expand_square(problem, var, full)
    cov = None
    if full_cov:
        cov = np.zeros((problem.net.n_params, problem.net.n_params))
        for b in range(B):
            cov_b = _run_moments(*args, slice(b, b + 1), True)[4]
            cov_b -= np.outer(m[b], m[b])
            M = expansion_matrix(problem, b, full)
            cov += M @ cov_b @ M.T
        cov /= B**2
    return EstimatorMoments(
        estimator=spec.name,
        options=options,
        gradient=ex_grad.mean(axis=0),
        mean=ex_mean.mean(axis=0),
        var=ex_var.sum(axis=0) / B**2,
        cov=cov,
        example_gradient=ex_grad,
        example_mean=ex_mean,
        example_var=ex_var,
        sign_probability=expand_sign(problem, sign, full),
        descent_probability=desc,
        descent_labels=descent_labels(problem.net),
        engine=engine,
    )


def estimator_moments(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    *,
    full_cov: bool = False,
    max_states: int = DEFAULT_MAX_STATES,
    engine: str = "auto",
    **options: Any,
) -> EstimatorMoments:
    """Exact mean and variance of an estimator's batch estimate, by enumerating its noise.

    For one example, ``E[g_hat] = sum_h P(h) g_hat(h)`` and ``Var[g_hat_j] =
    sum_h P(h) (g_hat_j(h) - E g_hat_j)^2`` over all ``2^N`` noise states (for ``sts``
    the states of the bits ``b ~ Bernoulli(sqrt(p))``), or, for REINFORCE and the
    straight-through-type estimators on deep networks, the same sums by messages over
    adjacent layers (:func:`gradstat.layerwise.layerwise_moments`, linear in depth). For a
    batch, each example has independent noise: the mean is the mean of the per-example
    means and the variance is ``(1/B^2) sum_x var_x`` (SPEC section 3).

    Parameters
    ----------
    net, x, t
        Network, one example ``(n_in,)`` or a batch ``(B, n_in)``, and targets.
    estimator : str or PerStateEstimator
        A registered name (:func:`gradstat.available_estimators`) or a user's jitted
        per-state function wrapped by :func:`gradstat.per_state_estimator`.
    full_cov : bool
        Also return the full covariance matrix (costs ``O(n_params^2)`` per state).
    max_states : int
        Refuse to enumerate more than this many states per example (joint states, or
        pairs of adjacent layer states for ``engine="layerwise"``).
    engine : {"auto", "joint", "cells", "layerwise"}
        ``"joint"`` enumerates all noise states; ``"layerwise"`` passes messages over
        adjacent layers (REINFORCE and straight-through-type estimators; mean and variance
        only, ``sign_probability`` and ``descent_probability`` are NaN); ``"auto"`` picks by
        cost (see :func:`moments_engine`) and ``result.engine`` says which ran.
    **options
        Estimator options, e.g. ``baseline="optimal"`` for ``reinforce``.

    Raises
    ------
    ValueError
        Unknown estimator, an estimator with continuous noise, too many states.
    TypeError
        Unknown option names.
    """
    spec, opts = resolve_estimator(estimator, options)
    problem = make_problem(net, x, t)
    return moments_pass(
        problem, spec, opts, full_cov=bool(full_cov), max_states=max_states, engine=engine
    )
