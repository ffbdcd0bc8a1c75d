"""Exact moments of estimators whose estimate factorises per unit.

REINFORCE and the straight-through-type estimators write every estimate of a weight
``W_l[i, j]`` as a per-unit quantity times ``h_{l-1,j}``, fixed within a block of the
Gray-code walk (:mod:`gradstat.kernels.blocks`): the per-state work is per unit and is
spread over the coordinates once per block.
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat.estimators.codes import REINFORCE
from gradstat.estimators.dispatch import surrogate_jacobian
from gradstat.kernels import blocks
from gradstat.kernels.accumulate import call_reduce_chunks, new_accumulators, sign_of
from gradstat.kernels.forward import score_residual
from gradstat.kernels.geometry import Batch, Geometry, example
from gradstat.kernels.linking import PRANGE_ONLY


@njit(cache=True)
def _add_coordinate(
    w: float, e: float, q: int, g: np.ndarray, cen: np.ndarray, m: np.ndarray, s1: np.ndarray,
    m2: np.ndarray, sign: np.ndarray,
) -> None:  # fmt: skip
    """Add coordinate ``q``'s estimate ``e`` of one state with probability ``w`` (as
    :func:`gradstat.kernels.accumulate.accumulate`: ``m`` sums ``w (e - g)``, ``s1`` and
    ``m2`` ``w d`` and ``w d^2`` with ``d = e - cen``)."""
    m[q] += w * (e - g[q])
    d = e - cen[q]
    s1[q] += w * d
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
    geo: Geometry, h: np.ndarray, dw: np.ndarray, c: np.ndarray, shift: float, z: np.ndarray,
    zc: np.ndarray,
) -> None:  # fmt: skip
    """Per unit: ``z_{l,i} = dw_{b_l,i} + sum_j h_{l-1,j} dw_{W_l,ij}``, and ``zc`` the same
    with each term times its coordinate's ``c - shift`` (``c`` empty: ``zc`` untouched).

    An estimate ``delta_{l,i} h_{l-1,j}`` of ``W_l[i, j]`` (and ``delta_{l,i}`` of
    ``b_l[i]``) has descent dot product ``sum_i delta_{l,i} z_{l,i}`` with layer ``l``.
    """
    sizes, woff, boff, uoff = geo
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


@njit(cache=True, inline="always")
def _add_states(
    q: int, f: float, mean: float, sq: float, W: float, pos: float, neg: float, zero: float,
    g: np.ndarray, cen: np.ndarray, m: np.ndarray, s1: np.ndarray, m2: np.ndarray,
    sign: np.ndarray,
) -> None:  # fmt: skip
    """Add states of total weight ``W`` to coordinate ``q``, whose estimate is ``e = f x``.

    ``x`` has weighted mean ``mean`` over the states, ``sum w (x - mean)^2 = sq``, and its
    states with ``x > 0``, ``< 0``, ``= 0`` weigh ``pos``, ``neg``, ``zero``. Then
    ``sum w (e - g) = W (f mean - g)``, ``sum w (e - c) = W (f mean - c)`` and
    ``sum w (e - c)^2 = f^2 sq + W (f mean - c)^2`` (no cancellation; ``c = cen[q]``), and
    ``sign e = sign f sign x``.
    """
    fm = f * mean
    m[q] += W * (fm - g[q])
    nu = fm - cen[q]
    s1[q] += W * nu
    m2[q] += f * f * sq + W * nu * nu
    sf = sign_of(f)
    sg = sign_of(g[q])
    if sf == 0:
        sign[q] += W if sg == 0 else 0.0
    else:
        want = sf * sg
        sign[q] += pos if want > 0 else (neg if want < 0 else zero)


@njit(cache=True)
def _add_group(
    fr: float, group: np.ndarray, counts: np.ndarray, K: int, c: float, rank: int, q: int,
    g: np.ndarray, cen: np.ndarray, m: np.ndarray, s1: np.ndarray, m2: np.ndarray,
    sign: np.ndarray,
) -> None:  # fmt: skip
    """Add a group of states to coordinate ``q``, whose estimate is ``e = fr (C - c)`` there.

    ``group`` holds the group's ``W = sum w``, the weighted mean of ``C`` and
    ``sum w (C - mean)^2`` (:func:`_west`; ``C`` and ``c`` shifted alike); ``counts[i]`` the
    weight of its states whose loss falls in a bin below ``i`` among the sorted baselines
    (:func:`factored_moments_kernel`), ``rank`` the rank of ``c`` there: the weights of
    ``C - c`` above, below and at 0 (:func:`_add_states` with ``x = C - c``).
    """
    below = counts[2 * rank + 1]
    equal = counts[2 * rank + 2] - below
    above = counts[2 * K + 1] - counts[2 * rank + 2]
    _add_states(
        q, fr, group[1] - c, group[2], group[0], above, below, equal, g, cen, m, s1, m2, sign
    )


@njit(cache=True)
def _add_block(
    score: bool, geo: Geometry, p: np.ndarray, a: np.ndarray, h: np.ndarray, coef: np.ndarray,
    stats: np.ndarray, total: float, groups: np.ndarray, counts: np.ndarray, c: np.ndarray,
    shift: float, ranks: np.ndarray, g: np.ndarray, cen: np.ndarray, m: np.ndarray,
    s1: np.ndarray, m2: np.ndarray, sign: np.ndarray,
) -> None:  # fmt: skip
    """Add a block's states to every coordinate of the stochastic layers.

    Coordinate ``W_l[i, j]`` has factor ``f = h_{l-1,j}`` and ``b_l[i]`` factor 1, both
    fixed within the block. Surrogates: :func:`_add_states` with ``x = delta_{l,i}``, from
    ``stats[:, k]`` (unit ``k``'s weighted mean of ``delta`` over the block,
    ``sum w (delta - mean)^2``, and the weights of ``delta > 0``, ``< 0``, ``= 0``).
    ``reinforce``: :func:`_add_group` with ``fr = f r`` per group of states, ``r = b - p``:
    the block (below the top layer), or the states where top unit ``i`` has bit 0
    (``r = -p``) and bit 1 (``r = 1 - p``). Cumulates ``counts`` in place.
    """
    sizes, woff, boff, uoff = geo
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
                mean, sq = stats[0, k], stats[1, k]
                pos, neg, zero = stats[2, k], stats[3, k], stats[4, k]
                _add_states(q, 1.0, mean, sq, total, pos, neg, zero, g, cen, m, s1, m2, sign)
                if l > 0:
                    for j in range(n_prev):
                        f = h[uoff[l - 1] + j]
                        _add_states(
                            row + j, f, mean, sq, total, pos, neg, zero, g, cen, m, s1, m2, sign
                        )
                continue
            first = 0 if k < top else 1 + 2 * (k - top)
            for gi in range(first, first + (1 if k < top else 2)):
                r = coef[k] if k < top else score_residual(float(gi - first), p[k], a[k])
                group, cum = groups[gi], counts[gi]
                _add_group(r, group, cum, K, c[q] - shift, ranks[q], q, g, cen, m, s1, m2, sign)
                if l > 0:
                    for j in range(n_prev):
                        fr = r * h[uoff[l - 1] + j]
                        cq = c[row + j] - shift
                        _add_group(
                            fr, group, cum, K, cq, ranks[row + j], row + j, g, cen, m, s1, m2, sign
                        )


@njit(parallel=PRANGE_ONLY, cache=True)
def factored_moments_kernel(
    batch: Batch, geo: Geometry, code: int, opts: np.ndarray, baselines: np.ndarray,
    G: np.ndarray, centre: np.ndarray, DW: np.ndarray, seg: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`moments_kernel` for the estimators whose estimate factorises per unit.

    The estimate of ``W_l[i, j]`` is ``delta_{l,i} h_{l-1,j}`` and that of ``b_l[i]`` is
    ``delta_{l,i}``; the output layer's is ``dC/dy`` and ``outer(dC/dy, h_L)``.

    * Surrogates (``code`` in :data:`SURROGATES`): ``delta_L = (W_o^T dC/dy) * J_L`` and
      ``delta_{l-1} = (W_l^T delta_l) * J_{l-1}``, ``J`` the surrogate ``dh/da``.
    * ``reinforce`` with baselines ``c_q``: ``e_q = (C - c_q) r_{l,i} f_q`` with
      ``r = b - p`` and ``f_q = h_{l-1,j}`` (1 for ``b_l[i]``).

    States are visited in blocks with the units below the top layer fixed
    (:func:`enter_block`), so ``h_{l-1}`` is constant within a block for every ``l <= L``
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

    Variances are summed about ``centre`` (per example, a value of the estimate; see
    :func:`gradstat.kernels.accumulate.reduce_chunks`): within a block about the block's
    mean, across blocks about ``centre``, never as ``E[e^2] - E[e]^2``.
    """
    theta = batch.theta
    w_out, b_out = blocks.output_layer(theta, geo)
    sizes, woff, boff, uoff = geo
    L = sizes.shape[0] - 2
    n_units = uoff[L]
    top = uoff[L - 1]
    n_top = sizes[L]
    n_out = sizes[L + 1]
    s0 = sizes[0] * sizes[1]
    n_hidden = woff[L] - s0
    B, n = G.shape
    S = np.int64(1) << n_units
    nc = blocks.block_chunks(S)
    mask = (np.int64(1) << n_top) - 1
    score = code == REINFORCE
    n_groups = 1 + 2 * n_top if score else 0
    acc = new_accumulators(B, nc, n, seg.shape[0] - 1, np.bool_(False))
    acc_m, acc_s1, acc_m2, acc_sign, acc_desc, _ = acc
    no_u = np.empty(0)
    for b in range(B):
        kappa = 1.0 - batch.L1[b, 6, 0]
        c_b = baselines[b] if score else no_u
        levels = np.unique(c_b[:n_hidden])
        ranks = np.searchsorted(levels, c_b[:n_hidden])
        K = levels.shape[0]
        shift = levels[0] if score else 0.0
        for c in prange(nc):
            ex = example(batch, geo, b)
            walk = blocks.new_walk(geo)
            a, p, bit, h, y, dy = walk.a, walk.p, walk.bit, walk.h, walk.y, walk.dy
            y_low, y_sum, top_units = walk.y_low, walk.y_sum, walk.top_units
            y_mag, h_top = walk.y_mag, walk.h[top : top + n_top]
            loss, t = ex.loss, ex.t
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
            m, s1, m2 = acc_m[b, c], acc_s1[b, c], acc_m2[b, c]
            sign, desc, cen = acc_sign[b, c], acc_desc[b, c], centre[b]
            lo = c * S // nc
            stop = (c + 1) * S // nc
            while lo < stop:
                hi = blocks.block_end(lo, stop, n_top)
                logp, period = blocks.enter_block(ex, lo, walk)
                _descent_weights(geo, h, DW[b], c_b, shift, z, zc)
                if not score:
                    _surrogate_jacobians(code, opts, kappa, uoff, a, bit, jac)
                for k in range(n_units):
                    coef[k] = score_residual(bit[k], p[k], a[k]) if score else jac[int(bit[k]), k]
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
                for gpos in range(lo, hi):
                    if blocks.resync_due(gpos, lo, period):
                        logp, logp_low = blocks.resync(ex, walk, gpos), 0.0
                    w = exp(logp + logp_low)
                    if w > 0.0:
                        C = blocks.compensated_loss(
                            loss, t, y, y_low, y_sum, dy, y_mag, w_out, b_out, h_top
                        )
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
                            _add_coordinate(w, dy[o], q, G[b], cen, m, s1, m2, sign)
                            out += dy[o] * DW[b, q]
                            row = woff[L] - s0 + o * n_top
                            for j in range(n_top):
                                e = dy[o] * h[top + j]
                                _add_coordinate(w, e, row + j, G[b], cen, m, s1, m2, sign)
                                out += e * DW[b, row + j]
                        _add_descent(w, dots, out, desc)
                    if gpos + 1 < hi:
                        logp, logp_low, u = blocks.gray_step(
                            gpos, mask, top, n_top, top_units, w_out, bit, h, y, y_low, logp,
                            logp_low,
                        )  # fmt: skip
                        bu = bit[u]
                        coef[u] = score_residual(bu, p[u], a[u]) if score else jac[int(bu), u]
                _add_block(
                    score, geo, p, a, h, coef, stats, total, groups, counts, c_b, shift, ranks,
                    G[b], cen, m, s1, m2, sign,
                )  # fmt: skip
                lo = hi
    return call_reduce_chunks(acc)
