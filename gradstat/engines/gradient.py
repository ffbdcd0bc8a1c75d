"""The exact expected loss and gradient: joint enumeration, one layer, or messages.

For one example the expected loss is ``E[C] = sum_h P(h | x) C(y(h), t)`` and the gradient
follows from the score-function identity ``g = E[C(h) grad log P(h | x) + grad C(y(h), t)]``,
summed exactly over all joint states (blocks of top-layer states in Gray-code order,
:mod:`gradstat.kernels.blocks`), by the factorised one-layer kernel
(:mod:`gradstat.engines.one_layer`), or by messages over adjacent layers
(:mod:`gradstat.engines.messages`), whichever is cheaper (:func:`gradient_engine`).
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat._validation import describe_power
from gradstat.engines.message_moments import layerwise_cost, layerwise_gradient
from gradstat.engines.one_layer import one_layer_kernel, one_layer_layout
from gradstat.kernels.accumulate import sum_chunks
from gradstat.kernels.blocks import (
    block_chunks,
    block_end,
    compensated_loss,
    enter_block,
    gray_step,
    new_walk,
    output_layer,
    resync,
    resync_due,
)
from gradstat.kernels.forward import (
    BCE,
    XENT,
    forward_loss,
    layer1_table,
    score_residual,
    state_buffers,
)
from gradstat.kernels.geometry import Batch, Geometry, example, geometry, make_batch
from gradstat.kernels.linking import PRANGE_ONLY, outlined
from gradstat.network import BinaryNetwork
from gradstat.problem import Problem, check_states, expand_mean, threads_for


@njit(cache=True)
def _gradient_chunk(
    batch: Batch, geo: Geometry, want_stats: bool, b: int, lo: int, stop: int, ref: float,
    acc_loss: np.ndarray, ag: np.ndarray, s2c: np.ndarray, s2: np.ndarray,
) -> None:  # fmt: skip
    """One chunk of :func:`gradient_kernel`: example ``b``'s states ``lo`` to ``stop`` in
    block order, added to the chunk's ``acc_loss[0]``, gradient ``ag`` and statistics
    ``s2c``, ``s2``. A serial function called through its one compiled copy
    (:func:`gradstat.kernels.linking.outlined`), so that numba's parallel passes see only
    the kernel's short loop over chunks.
    """
    theta = batch.theta
    sizes, woff, boff, uoff = geo
    L = sizes.shape[0] - 2
    top = uoff[L - 1]
    n_top = sizes[L]
    n_out = sizes[L + 1]
    w_out, b_out = output_layer(theta, geo)
    s0 = sizes[0] * sizes[1]
    mask = (np.int64(1) << n_top) - 1
    ex = example(batch, geo, b)
    walk = new_walk(geo)
    a, p, bit, h, y, dy = walk.a, walk.p, walk.bit, walk.h, walk.y, walk.dy
    y_low, y_sum, top_units = walk.y_low, walk.y_sum, walk.top_units
    y_mag, h_top = walk.y_mag, walk.h[top : top + n_top]
    loss, t = ex.loss, ex.t
    unit = np.empty((3, n_top))
    while lo < stop:
        hi = block_end(lo, stop, n_top)
        logp, period = enter_block(ex, lo, walk)
        unit[:] = 0.0
        sum_r = 0.0
        sum_c = 0.0
        sum_w = 0.0
        logp_low = 0.0
        for g in range(lo, hi):
            if resync_due(g, lo, period):
                logp, logp_low = resync(ex, walk, g), 0.0
            w = exp(logp + logp_low)
            C = compensated_loss(loss, t, y, y_low, y_sum, dy, y_mag, w_out, b_out, h_top)
            r = w * (C - ref)
            sum_r += r
            sum_c += w * C
            sum_w += w
            for i in range(n_top):
                si = score_residual(bit[top + i], p[top + i], a[top + i])
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
                logp, logp_low, u = gray_step(
                    g, mask, top, n_top, top_units, w_out, bit, h, y, y_low, logp, logp_low
                )
        acc_loss[0] += sum_c
        for l in range(L):
            n_prev = sizes[l]
            for i in range(sizes[l + 1]):
                k = uoff[l] + i
                if k < top:
                    si = score_residual(bit[k], p[k], a[k])
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


_call_chunk = outlined(f"{__name__}:_gradient_chunk")


@njit(parallel=PRANGE_ONLY, cache=True)
def gradient_kernel(
    batch: Batch, geo: Geometry, want_stats: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per example: ``E[C]``, the exact gradient, and (``want_stats``) ``E[s^2 C]``, ``E[s^2]``.

    The gradient is the score-function identity ``E[(C - r) s + grad C]`` with the
    reference ``r`` the loss of the greedy state (every unit at its likelier value):
    exact for any ``r`` because ``E[s] = 0``, and ``r`` removes a loss offset that would
    otherwise cost precision.

    States are visited in blocks (:func:`enter_block`). The score of ``W_l[i, j]`` is
    ``s = (b_i - p_i) h_{l-1, j}`` with ``h_{l-1}`` fixed within a block, so each unit
    ``i`` sums ``w (C - r) (b_i - p_i)``, ``w (b_i - p_i)^2 C`` and ``w (b_i - p_i)^2`` over
    the block (``w = P(h)``), and these are multiplied by ``h_{l-1, j}`` (or its square)
    once per block. Below the top layer ``b_i - p_i`` is fixed as well, so those units
    only need the block's ``sum w (C - r)``, ``sum w C`` and ``sum w``. Per state the cost
    is ``O(n_L n_out)`` instead of ``O(n_params)``.
    """
    theta = batch.theta
    sizes, _, _, uoff = geo
    L = sizes.shape[0] - 2
    n_units = uoff[L]
    B = batch.L1.shape[0]
    n_out = sizes[L + 1]
    s0 = sizes[0] * sizes[1]
    Pc = theta.shape[0] - s0
    S = np.int64(1) << n_units
    nc = block_chunks(S)
    n_stat = Pc if want_stats else 0
    acc_loss = np.zeros((B, nc, 1))
    acc_g = np.zeros((B, nc, Pc))
    acc_s2c = np.zeros((B, nc, n_stat))
    acc_s2 = np.zeros((B, nc, n_stat))
    half = np.full(n_units, 0.5)
    for b in range(B):
        ga, gp, gbit, gh, gy, gdy = state_buffers(n_units, n_out)
        ref = forward_loss(example(batch, geo, b), np.int64(0), half, ga, gp, gbit, gh, gy, gdy)[1]
        for c in prange(nc):
            _call_chunk(
                batch, geo, want_stats, b, c * S // nc, (c + 1) * S // nc, ref, acc_loss[b, c],
                acc_g[b, c], acc_s2c[b, c], acc_s2[b, c],
            )  # fmt: skip
    return sum_chunks(acc_loss)[:, 0], sum_chunks(acc_g), sum_chunks(acc_s2c), sum_chunks(acc_s2)


TRANSCENDENTAL_COST = 16
"""Cost of a state of the ``bce`` or ``xent`` loss (an exponential per output) relative to
``mse`` or ``linear`` in the one-layer kernel, for :func:`one_layer_work`."""


def one_layer_work(problem: Problem) -> int:
    """Work of :func:`one_layer_kernel` in the units of :func:`gradstat.problem.threads_for`.

    About ``B 2^N (1 + n_out)`` per-state updates (times :data:`TRANSCENDENTAL_COST` for
    ``bce`` and ``xent``), or 0 when there is a single chunk to run (nothing to share).
    """
    net = problem.net
    _, nc = one_layer_layout(net.n_stochastic)
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
        kernel = one_layer_kernel if one_layer else gradient_kernel
        return kernel(*problem_batch(problem, problem.mode), want_stats)


def problem_batch(problem: Problem, mode: int, rows: slice = slice(None)) -> tuple[Batch, Geometry]:
    """The kernels' :class:`~gradstat.kernels.geometry.Batch` of examples ``rows`` of
    ``problem``, with layer 1's tables for the unit mode ``mode``, and its geometry."""
    L1 = layer1_table(problem.A1[rows], mode)
    batch = make_batch(problem.theta, L1, problem.X[rows], problem.T[rows], problem.loss_code, mode)
    return batch, geometry(problem.sizes)


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
    if widest > 62 or 2**widest > max_states:
        raise ValueError(
            f"{what} by layer-wise messages enumerates {describe_power(2, widest)} pairs of "
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
