"""The exact loss and gradient of one stochastic layer by a low/high split of the state."""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat.kernels.blocks import CHUNKS
from gradstat.kernels.forward import BCE, MSE, XENT, bce_term, loss_and_grad, xent_terms
from gradstat.kernels.geometry import Batch, Geometry
from gradstat.kernels.linking import PRANGE_ONLY, outlined

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
    tot_r: float, tot_c: float,
) -> tuple[float, float, float]:  # fmt: skip
    """Low state ``j``'s share of one output in :func:`_block_sums`; returns the running
    block totals ``tot`` (of ``v_d[o]``), ``tot_r`` (of ``v_r``) and ``tot_c`` (of ``P_lo C``).

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
        tot_c += pj * c
    else:
        cost[j] = c
    return tot, tot_r, tot_c


@njit(cache=True, fastmath={"reassoc"})
def _block_sums(
    loss: int, ph: float, p_lo: np.ndarray, y_lo: np.ndarray, yh: np.ndarray,
    t: np.ndarray, ref: float, work: np.ndarray, sum_r: np.ndarray, sum_d: np.ndarray,
    totals: np.ndarray,
) -> None:  # fmt: skip
    """Add one block of ``K`` states sharing their high bits to the low-bit tables.

    With ``P(s) = ph P_lo(s)`` and ``y(s) = y_lo[:, s] + yh`` (``yh`` holds the high
    units' part and ``b_o``), the per-state terms are ``v_r(s) = P_lo(s) (C(y(s), t) -
    ref)`` and ``v_d[o](s) = P_lo(s) dC/dy_o(s)``, with the losses of docs/model.md as in
    :func:`gradstat.kernels.forward.loss_and_grad`: ``mse`` ``sum_o (y_o - t_o)^2 / 2``; ``bce``
    ``sum_o softplus(y_o) - t_o y_o`` (:func:`gradstat.kernels.forward.bce_term`); ``xent``
    ``lse(y) - y_t`` with ``dC/dy_o = softmax(y)_o - [o = t]``
    (:func:`gradstat.kernels.forward.xent_terms`); ``linear`` ``sum_o t_o y_o``; ``bce`` and
    ``xent`` to full relative precision at confident outputs.

    Adds ``ph v_r`` to ``sum_r`` and ``ph v_d`` to ``sum_d`` (per low state) and writes the block
    totals ``sum_s v_r(s)``, ``sum_s v_d[o](s)`` and ``sum_s P_lo(s) C(s)`` to ``totals[0]``,
    ``totals[1 + o]`` and ``totals[1 + n_out]``. One loop per loss and output, the states innermost,
    so that each vectorises (:func:`_add_state` does the common part). The totals are reassociated
    so that they vectorise too: their order is fixed by the compiled code, not by the threads.
    ``work`` is scratch of shape ``(2 + n_out, K)``, ``totals`` of ``2 + n_out``.
    """
    K = p_lo.shape[0]
    n_out = yh.shape[0]
    cost = work[0]
    tot = 0.0
    tot_r = 0.0
    tot_c = 0.0
    if loss == XENT:
        # The loss needs every output first; the first output's pass then adds v_r.
        # Row 1 of work holds max_o y_o, then 1 / sum_o exp(y_o - max); row 2 + o holds
        # exp(y_o - max) (for the class, dC/dy_t itself), so that dC/dy_o costs no
        # exponential; row 0 sums exp(y_o - max) over the other classes first, which
        # xent_terms needs to keep a confident output's tiny loss and gradient.
        top = work[1]
        for j in range(K):
            top[j] = y_lo[0, j] + yh[0]
        for o in range(1, n_out):
            yo = yh[o]
            row = y_lo[o]
            for j in range(K):
                top[j] = max(top[j], row[j] + yo)
        cls = int(t[0])
        for j in range(K):
            cost[j] = 0.0
        for o in range(n_out):
            yo = yh[o]
            row = y_lo[o]
            ex = work[2 + o]
            for j in range(K):
                ex[j] = exp(row[j] + yo - top[j])
            if o != cls:
                for j in range(K):
                    cost[j] += ex[j]
        ycls = yh[cls]
        row = y_lo[cls]
        ex_cls = work[2 + cls]
        for j in range(K):
            e_cls = ex_cls[j]
            others = cost[j]
            cost[j], ex_cls[j] = xent_terms(top[j], row[j] + ycls, e_cls, others)
            top[j] = 1.0 / (e_cls + others)
        first = np.bool_(False)  # cost[j] holds the whole loss already (a bool, not a literal)
        for o in range(n_out):
            last = o == 0
            ex = work[2 + o]
            acc = sum_d[o]
            tot = 0.0
            if o == cls:
                for j in range(K):
                    tot, tot_r, tot_c = _add_state(
                        j, 0.0, ex[j], first, last, ph, ref, p_lo, cost, acc, sum_r, tot, tot_r,
                        tot_c,
                    )  # fmt: skip
            else:
                for j in range(K):
                    tot, tot_r, tot_c = _add_state(
                        j, 0.0, ex[j] * top[j], first, last, ph, ref, p_lo, cost, acc, sum_r,
                        tot, tot_r, tot_c,
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
                tot, tot_r, tot_c = _add_state(
                    j, 0.5 * r * r, r, first, last, ph, ref, p_lo, cost, acc, sum_r, tot, tot_r,
                    tot_c,
                )  # fmt: skip
            totals[1 + o] = tot
    else:
        # bce and linear: one output at a time, a loop over the states per loss.
        for o in range(n_out):
            first = o == 0
            last = o == n_out - 1
            yo = yh[o]
            to = t[o]
            row = y_lo[o]
            acc = sum_d[o]
            tot = 0.0
            if loss == BCE:
                for j in range(K):
                    term, grad = bce_term(row[j] + yo, to)
                    tot, tot_r, tot_c = _add_state(
                        j, term, grad, first, last, ph, ref, p_lo, cost, acc, sum_r, tot, tot_r,
                        tot_c,
                    )  # fmt: skip
            else:
                for j in range(K):
                    tot, tot_r, tot_c = _add_state(
                        j, to * (row[j] + yo), to, first, last, ph, ref, p_lo, cost, acc, sum_r,
                        tot, tot_r, tot_c,
                    )  # fmt: skip
            totals[1 + o] = tot
    totals[0] = tot_r
    totals[1 + n_out] = tot_c


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
def one_layer_layout(n1: int) -> tuple[int, int]:
    """Low-half bits ``n_lo`` and chunks per example of the one-layer kernel (from ``n_1``)."""
    n_lo = n1 if n1 < LO_BITS else LO_BITS
    blocks = np.int64(1) << (n1 - n_lo)
    nc = blocks // MIN_BLOCKS
    if nc > CHUNKS:
        nc = CHUNKS
    if nc < 1:
        nc = 1
    return n_lo, nc


@njit(cache=True)
def _one_layer_chunk(
    batch: Batch, geo: Geometry, b: int, c: int, ref: float, on: np.ndarray, off: np.ndarray
) -> None:  # fmt: skip
    """Chunk ``c`` of example ``b`` for :func:`one_layer_kernel`, added to its marginals
    over ``b_i = 1`` (``on``) and ``b_i = 0`` (``off``). A serial function called through
    its one compiled copy (:func:`gradstat.kernels.linking.outlined`), so that numba's
    parallel passes see only the kernel's short loop over tasks.
    """
    theta, sizes, L1, T, loss = batch.theta, geo.sizes, batch.L1, batch.T, batch.loss
    n1, n_out = sizes[1], sizes[2]
    n_lo, nc = one_layer_layout(n1)
    n_hi = n1 - n_lo
    K = np.int64(1) << n_lo
    blocks = np.int64(1) << n_hi
    Pc = n1 + n_out * n1 + n_out
    woff = sizes[0] * n1 + n1
    boff = woff + n_out * n1
    dcol = n1 + n_out * n1
    tab = L1[b]
    p_lo = np.empty(K)
    y_lo = np.empty((n_out, K))
    work = np.empty((2 + n_out, K))
    totals = np.empty(2 + n_out)
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
        on[Pc + 2] += ph * totals[1 + n_out]
        for q in range(n_out + 1):
            total = ph * totals[q]
            on[Pc if q == 0 else dcol + q - 1] += total
            first_hi = n1 * q + n_lo
            for k in range(n_hi):
                if (blk >> k) & 1:
                    on[first_hi + k] += total
                else:
                    off[first_hi + k] += total
    _fold_marginals(sum_r, n_lo, on, off, np.int64(0), work[0])
    for o in range(n_out):
        _fold_marginals(sum_d[o], n_lo, on, off, n1 + o * n1, work[0])


_call_chunk = outlined(f"{__name__}:_one_layer_chunk")


@njit(parallel=PRANGE_ONLY, cache=True)
def one_layer_kernel(
    batch: Batch, geo: Geometry, want_stats: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`gradient_kernel` for one stochastic layer of units with values ``01`` or
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
    same over ``b_i(s) = 0`` (likewise ``A^d_oi``, ``Z^d_oi``), ``D_o = sum_s v_d[o]``,
    ``W = sum_s P(s)`` (1 up to rounding) and ``q_i = 1 - p_i`` (as ``exp(log P(not
    fire))``)::

        E[C]           = sum_s P C                  (summed apart: ref W + sum_s v_r
                                                     would cancel when E[C] << ref)
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
    theta, sizes, L1, T, loss = batch.theta, geo.sizes, batch.L1, batch.T, batch.loss
    n1, n_out = sizes[1], sizes[2]
    B = L1.shape[0]
    n_lo, nc = one_layer_layout(n1)
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
    acc = np.zeros((B * nc, 2, Pc + 3))
    for task in prange(B * nc):
        _call_chunk(batch, geo, task // nc, task % nc, refs[task // nc], acc[task, 0], acc[task, 1])
    losses = np.zeros(B)
    grads = np.zeros((B, Pc))
    s2c = np.zeros((B, n_stat))
    s2 = np.zeros((B, n_stat))
    on_sum = np.empty(Pc + 3)
    off_sum = np.empty(Pc + 3)
    for ex in range(B):
        on_sum[:] = 0.0
        off_sum[:] = 0.0
        for cc in range(nc):
            for col in range(Pc + 3):
                on_sum[col] += acc[ex * nc + cc, 0, col]
                off_sum[col] += acc[ex * nc + cc, 1, col]
        ref_ex = refs[ex]
        W = on_sum[Pc + 1]
        losses[ex] = on_sum[Pc + 2]
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
