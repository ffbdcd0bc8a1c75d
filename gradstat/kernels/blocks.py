"""Chunks of the joint state space and the block-wise Gray-code walk through it.

State ``s`` sets unit ``k`` to bit ``k`` of ``s``. The ``2^N`` states are split into a fixed
number of chunks (independent of the thread count), so sums reduced chunk by chunk in a
fixed order are bit-identical on any number of threads. The block-walking kernels visit
states in blocks that fix every unit below the top layer, the top layer's units running
through a Gray code (:func:`enter_block`), so consecutive states differ in one unit.
"""

from __future__ import annotations

from math import exp
from typing import NamedTuple

import numpy as np
from numba import njit

from gradstat.kernels.forward import (
    PM1,
    SMOOTH,
    forward_state,
    log1mexp,
    log_sigmoid,
    loss_and_grad,
    state_buffers,
)
from gradstat.kernels.geometry import Example, Geometry

CHUNKS = 64
"""Number of state chunks (fixed: results do not depend on the number of threads)."""


MIN_CHUNK_STATES = 1024
"""Smallest chunk of the block-walking kernels: each chunk re-enters its first block with
a full forward pass, so tiny chunks would cost more than they parallelise."""


@njit(cache=True)
def block_chunks(n_states: int) -> int:
    """Chunks of at least :data:`MIN_CHUNK_STATES` states, at most :data:`CHUNKS` (a
    function of the state count only, so results do not depend on the thread count)."""
    nc = n_states // MIN_CHUNK_STATES
    return 1 if nc < 1 else (CHUNKS if nc > CHUNKS else nc)


@njit(cache=True)
def n_chunks(n_states: int, cap: int) -> int:
    return n_states if n_states < cap else cap


RESYNC = 4096
"""Gray-code steps between exact recomputations of ``log P`` and ``y`` (bounds drift); a
power of two (:func:`resync_due`)."""


@njit(cache=True)
def joint_state(g: int, n_top: int, top: int) -> int:
    """The joint state at position ``g`` of the block order (see :func:`enter_block`).

    ``g = outer 2^{n_L} + i``: the units below the top layer take the bits of ``outer``, the
    top layer's units the bits of the Gray code ``i ^ (i >> 1)``.
    """
    i = g & ((np.int64(1) << n_top) - 1)
    return (g >> n_top) | ((i ^ (i >> 1)) << top)


@njit(cache=True)
def gray_unit(i: int) -> int:
    """The bit in which the Gray codes of ``i`` and ``i + 1`` differ: ``i + 1``'s trailing 0s."""
    k = 0
    m = i + 1
    while (m & 1) == 0:
        m >>= 1
        k += 1
    return k


@njit(cache=True)
def two_sum(a: float, b: float) -> tuple[float, float]:
    """``s = fl(a + b)`` and its rounding error ``a + b - s``, exactly (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


SPLITTER = 134217729.0
"""``2^27 + 1``: Dekker's constant splitting a double into two halves of 26 bits."""


@njit(cache=True, inline="always")
def two_product(a: float, b: float) -> tuple[float, float]:
    """``p = fl(a b)`` and its rounding error ``a b - p``, exactly (Dekker's TwoProduct;
    ``|a|``, ``|b|`` below about ``1e300``, and the error may underflow)."""
    p = a * b
    t = SPLITTER * a
    ah = t - (t - a)
    al = a - ah
    t = SPLITTER * b
    bh = t - (t - b)
    bl = b - bh
    return p, al * bl - (((p - ah * bh) - al * bh) - ah * bl)


@njit(cache=True)
def exact_output(w: np.ndarray, b: float, h: np.ndarray) -> float:
    """``b + sum_j w_j h_j`` as if computed in twice the working precision, then rounded.

    Ogita, Rump & Oishi's Dot2 (SIAM J. Sci. Comput. 26, 2005): every product and sum is
    split into its value and rounding error (:func:`two_product`, :func:`two_sum`) and the
    errors are summed apart, so the result keeps full relative precision unless the terms
    cancel to about ``eps^2`` of their size (an exact tiny bias next to large terms that
    cancel survives).
    """
    s = b
    err = 0.0
    for j in range(h.shape[0]):
        p, pe = two_product(w[j], h[j])
        s, se = two_sum(s, p)
        err += pe + se
    return s + err


CANCEL = 2.0**-20
"""An output ``y`` below ``CANCEL`` times ``|b_o| + sum_j |W_o[o, j]| max|h_j|`` (the size of
its terms) is recomputed by :func:`exact_output` in the Gray-code walk: the updated value
carries absolute errors of about ``eps`` times that size, which would decide the sign of
an output that is tiny by cancellation (:func:`compensated_loss`)."""


class Walk(NamedTuple):
    """One chunk's scratch for walking blocks of joint states (:func:`new_walk`).

    The current state's ``a, p, bit, h`` (``N`` units), its output ``y`` and ``dC/dy``
    ``dy``; ``y_low``, the rounding errors of the Gray-code updates of ``y``, ``y_sum =
    y + y_low``, and ``y_mag``, the size of ``y``'s terms in the block (``n_out``, see
    :data:`CANCEL`); ``top_units`` (:func:`enter_block`); ``no_u``, the
    empty noise of an enumerated state. Per-block steps take the tuple; the loop over a
    block's states takes its arrays out first, since reading an array from a tuple costs a
    reference count update each time.
    """

    a: np.ndarray
    p: np.ndarray
    bit: np.ndarray
    h: np.ndarray
    y: np.ndarray
    dy: np.ndarray
    y_low: np.ndarray
    y_sum: np.ndarray
    y_mag: np.ndarray
    top_units: np.ndarray
    no_u: np.ndarray


@njit(cache=True, inline="always")
def new_walk(geo: Geometry) -> Walk:
    """Fresh scratch for a walk through the states of the network of ``geo``."""
    L = geo.sizes.shape[0] - 2
    n_out = geo.sizes[L + 1]
    a, p, bit, h, y, dy = state_buffers(geo.uoff[L], n_out)
    top_units = np.empty((3, geo.sizes[L]))
    return Walk(
        a, p, bit, h, y, dy, np.empty(n_out), np.empty(n_out), np.empty(n_out), top_units,
        np.empty(0),
    )  # fmt: skip


@njit(cache=True, inline="always")
def output_layer(theta: np.ndarray, geo: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """The output layer's weights ``W_o`` (``n_out x n_L``, row by row) and biases ``b_o``
    in ``theta``: what :func:`compensated_loss` and :func:`gray_step` read."""
    sizes, woff, boff, _ = geo
    L = sizes.shape[0] - 2
    n_out = sizes[L + 1]
    return theta[woff[L] : woff[L] + n_out * sizes[L]], theta[boff[L] : boff[L] + n_out]


@njit(cache=True, inline="always")
def block_end(lo: int, stop: int, n_top: int) -> int:
    """End of the block that starts at position ``lo``, cut at the chunk's end ``stop``."""
    return min(stop, ((lo >> n_top) + 1) << n_top)


@njit(cache=True)
def resync(ex: Example, walk: Walk, g: int) -> float:
    """Run the state at position ``g`` forward from scratch, dropping the rounding errors of
    the Gray steps that led to it (``walk.y_low``); returns its ``log P``."""
    theta, geo, tab1, mode = ex.theta, ex.geo, ex.tab1, ex.mode
    sizes, woff, boff, uoff = geo
    L = sizes.shape[0] - 2
    state = joint_state(g, sizes[L], uoff[L - 1])
    a, p, bit, h, y, no_u = walk.a, walk.p, walk.bit, walk.h, walk.y, walk.no_u
    walk.y_low[:] = 0.0
    return forward_state(theta, sizes, woff, boff, uoff, tab1, state, no_u, mode, a, p, bit, h, y)


@njit(cache=True)
def enter_block(ex: Example, g: int, walk: Walk) -> tuple[float, int]:
    """Run the state at position ``g`` forward and tabulate the top layer for Gray steps.

    Joint states are visited in blocks of ``2^{n_L}``: within a block the units below the
    top layer ``L`` are fixed (their forward pass, ``log P`` and everything derived from
    them are computed once per block) and the top layer's units run through a Gray code
    (:func:`joint_state`), so consecutive states differ in one top unit ``k``
    (:func:`gray_unit`). Flipping it changes ``log P`` by ``+-(log P(b_k = 1) -
    log P(b_k = 0))`` and ``y`` by ``(h_k' - h_k) W_o[:, k]``: ``O(n_out)`` per state
    instead of a forward pass. Fills ``walk`` for the state (clearing ``y_low``) and
    ``walk.top_units`` (rows: the value a top unit passes on when it fires, when it does
    not, and its log-odds of firing) and ``walk.y_mag`` (:data:`CANCEL`), and returns
    ``log P`` of the state and the period of
    exact recomputation: :data:`RESYNC` (bounds the drift of the updates), or 1 (every
    state run forward) when a log-odds is infinite.
    """
    tab1, mode, a, top_units = ex.tab1, ex.mode, walk.a, walk.top_units
    L = ex.geo.sizes.shape[0] - 2
    top = ex.geo.uoff[L - 1]
    n_top = ex.geo.sizes[L]
    logp = resync(ex, walk, g)
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
    theta, woff, boff = ex.theta, ex.geo.woff, ex.geo.boff
    for o in range(ex.geo.sizes[L + 1]):
        v = abs(theta[boff[L] + o])
        for i in range(n_top):
            big = max(abs(top_units[0, i]), abs(top_units[1, i]))
            v += abs(theta[woff[L] + o * n_top + i]) * big
        walk.y_mag[o] = v
    return logp, period


@njit(cache=True, inline="always")
def resync_due(g: int, lo: int, period: int) -> bool:
    """Whether the state at position ``g`` of the block that starts at ``lo`` is run forward
    from scratch (:func:`resync`): every ``period``-th state after the first (``period`` is
    :data:`RESYNC` or 1, a power of two, so no division is needed)."""
    return g != lo and (g - lo) & (period - 1) == 0


@njit(cache=True, inline="always")
def compensated_loss(
    loss: int, t: np.ndarray, y: np.ndarray, y_low: np.ndarray, y_sum: np.ndarray,
    dy: np.ndarray, y_mag: np.ndarray, w_out: np.ndarray, b_out: np.ndarray,
    h_top: np.ndarray,
) -> float:  # fmt: skip
    """The loss ``C(y + y_low)`` of a state reached by Gray steps (``y_sum = y + y_low``),
    with ``dC/dy`` in ``dy``.

    An output that is small against the size of its terms (:data:`CANCEL`) is recomputed
    from the top layer's values ``h_top``, ``W_o`` (``w_out``, row-major) and ``b_o``
    (``b_out``) by :func:`exact_output`, and the walk continues from it: its sign and
    relative precision come from the terms themselves, not from updates that lost a tiny
    one.
    """
    n_top = h_top.shape[0]
    for o in range(y_sum.shape[0]):
        v = y[o] + y_low[o]
        if abs(v) < CANCEL * y_mag[o]:
            v = exact_output(w_out[o * n_top : (o + 1) * n_top], b_out[o], h_top)
            y[o] = v
            y_low[o] = 0.0
        y_sum[o] = v
    return loss_and_grad(loss, y_sum, t, dy)


@njit(cache=True)
def gray_step(
    g: int, mask: int, top: int, n_top: int, top_units: np.ndarray, w_out: np.ndarray,
    bit: np.ndarray, h: np.ndarray, y: np.ndarray, y_low: np.ndarray, logp: float,
    logp_low: float,
) -> tuple[float, float, int]:  # fmt: skip
    """Move from position ``g`` of a block to ``g + 1``: flip the one top unit that changes.

    ``log P`` and ``y`` are updated by compensated sums (their rounding errors collect in
    ``logp_low`` and ``y_low``); ``w_out`` is ``W_o`` flattened row-major. Returns the new
    ``logp``, ``logp_low`` and the flipped unit's index.
    """
    k = gray_unit(g & mask)
    u = top + k
    fire = bit[u] == 0.0
    bit[u] = 1.0 if fire else 0.0
    logp, err = two_sum(logp, top_units[2, k] if fire else -top_units[2, k])
    logp_low += err
    new = top_units[0, k] if fire else top_units[1, k]
    step = new - h[u]
    h[u] = new
    for o in range(y.shape[0]):
        y[o], err = two_sum(y[o], step * w_out[o * n_top + k])
        y_low[o] += err
    return logp, logp_low, u
