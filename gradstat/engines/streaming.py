"""Monte Carlo sums accumulated inside the sampling kernel, draw by draw.

``analyze(method="mc")`` needs, per group of draws of its grouped jackknife and per
example ``b``, the sums of ``d = e - G_b`` and ``d^2`` (``e`` a per-example estimate, ``G_b``
the example's reference gradient), the counts of ``sign(e) == sign(G_b)``, and the counts
of positive descent products ``<e, w_b>`` per layer, in all and over the stochastic
layers (:meth:`gradstat.problem.Problem.descent_weights` gives ``w_b``). This module adds
each draw to them as soon as it is made, so memory does not grow with the number of draws.

**The same numbers as a NumPy accumulation.** The draws are those of
:func:`gradstat.engines.sampling.draw_blocks` (the same streams). The draws are cut into
*spans*: maximal runs of consecutive draws inside one block of ``draw_blocks`` and one
group. Each span's sums run over its draws in order, from the first, and are added to
their group's totals span after span; the descent products are summed as NumPy's
``add.reduceat`` and ``sum`` sum them (pairwise, :func:`_pairwise`). So the sums equal,
bit for bit, those of the NumPy loop over ``draw_blocks`` that the module replaces:
``s1[k] += d[sel].sum(axis=0)`` and so on, block by block. Spans are independent, so
threads compute them in any order and their results are folded in span order: the sums
do not depend on the thread count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import njit, prange

from gradstat.engines.baselines import workspace_for
from gradstat.engines.gradient import problem_batch
from gradstat.engines.lanes import LANE_ROWS, LANES, call_surrogate_lanes, lane_noise
from gradstat.engines.sampling import (
    NO_NOISE,
    Draws,
    block_draws,
    make_sampler,
    sampler_blocks,
    surrogate_table,
)
from gradstat.estimators.dispatch import draw_estimate
from gradstat.estimators.registry import EstimatorBase
from gradstat.kernels.geometry import Batch, Geometry, example
from gradstat.kernels.philox import fill_noise, stream_key
from gradstat.kernels.workspace import DY, WS_ROWS, Y
from gradstat.problem import Problem, threads_for

PARTIAL_VALUES = 2**21
"""Values of the per-span partial sums one kernel call holds (16 MB): bounds memory, and
does not change the sums."""

PAIRWISE_BLOCK = 128
"""NumPy's ``PW_BLOCKSIZE``: runs up to this length are summed with 8 accumulators."""


class GroupSums(NamedTuple):
    """Per-group sums of a Monte Carlo analysis (module docstring).

    ``counts (n_groups,)`` draws per group; ``s1``, ``s2 (n_groups, B, n)`` sums of ``d`` and
    ``d^2``; ``agree (n_groups, B, n)`` counts of ``sign(e) == sign(G_b)``;
    ``desc (n_groups, B, n_seg + 2)`` counts of positive descent products per layer
    segment, of the total and of the stochastic layers' part summed directly. All float64.
    """

    counts: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    agree: np.ndarray
    desc: np.ndarray


class Targets(NamedTuple):
    """What each draw is compared with: reference gradients ``G (B, n)``, their signs
    ``sign (B, n)``, descent weights ``dw (B, n)`` and layer segment starts ``seg``
    (``n_seg + 1`` int64, the last one ``n``)."""

    G: np.ndarray
    sign: np.ndarray
    dw: np.ndarray
    seg: np.ndarray


class Partials(NamedTuple):
    """Sums of each span of one kernel call: ``sums (W, B, 3, n)`` (``s1``, ``s2`` and
    ``agree`` side by side, so that one example's are adjacent in memory) and
    ``desc (W, B, n_seg + 2)``, as in :class:`GroupSums`."""

    sums: np.ndarray
    desc: np.ndarray


@njit(cache=True)
def _pairwise_block(a: np.ndarray, lo: int, n: int) -> float:
    """``a[lo:lo + n]`` summed as NumPy sums at most :data:`PAIRWISE_BLOCK` values: under 8
    in order, else with 8 running sums combined as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5)
    + (r6 + r7))`` and the remainder added in order."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    stop = lo + n - n % 8
    for j in range(lo + 8, stop, 8):
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for j in range(stop, lo + n):
        res += a[j]
    return res


@njit(cache=True)
def _pairwise(a: np.ndarray, lo: int, n: int) -> float:
    """``a[lo:lo + n]`` summed in the order of NumPy's pairwise summation.

    Runs longer than :data:`PAIRWISE_BLOCK` are split at half their length rounded down
    to a multiple of 8 and the halves' sums added, as NumPy does by recursion; here the
    tree is walked with an explicit stack (numba's cached recursive functions crash).
    """
    if n <= PAIRWISE_BLOCK:
        return _pairwise_block(a, lo, n)
    starts = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    left = np.empty(64)
    right_next = np.zeros(64, dtype=np.bool_)
    top = 0
    starts[0], sizes[0] = lo, n
    while True:
        m = sizes[top]
        if m > PAIRWISE_BLOCK:  # descend into the left half
            half = m // 2 - (m // 2) % 8
            right_next[top] = False
            starts[top + 1], sizes[top + 1] = starts[top], half
            top += 1
            continue
        v = _pairwise_block(a, starts[top], m)
        while True:  # hand v up until some node still needs its right half
            if top == 0:
                return v
            top -= 1
            if not right_next[top]:
                left[top] = v
                right_next[top] = True
                half = sizes[top] // 2 - (sizes[top] // 2) % 8
                starts[top + 1], sizes[top + 1] = starts[top] + half, sizes[top] - half
                top += 1
                break
            v = left[top] + v


_inline_block = njit(cache=True, inline="always")(_pairwise_block.py_func)
"""The same code inlined where it is called (inlined into :func:`_pairwise` as well, it
made that function compile for seconds)."""


@njit(cache=True, inline="always")
def _pairwise_small(a: np.ndarray, lo: int, n: int) -> float:
    """:func:`_pairwise`, with runs of up to :data:`PAIRWISE_BLOCK` values summed inline
    (a call costs more than such a sum)."""
    if n <= PAIRWISE_BLOCK:
        return _inline_block(a, lo, n)
    # An int64 whatever the caller passed: an inlined literal 0 would compile another
    # specialisation of _pairwise.
    return _pairwise(a, np.int64(lo), np.int64(n))


@njit(cache=True)
def _add_draws(
    E: np.ndarray, m: int, G: np.ndarray, sg: np.ndarray, w: np.ndarray, seg: np.ndarray,
    prod: np.ndarray, dots: np.ndarray, sums: np.ndarray, desc: np.ndarray,
) -> None:  # fmt: skip
    """Add one example's estimates ``E[0] .. E[m - 1]``, in that order, to the sums of
    their span (``m`` is 1 for a draw at a time, up to
    :data:`gradstat.engines.lanes.LANES` for lanes).

    ``G``, ``sg``, ``w`` are the example's rows of :class:`Targets`, ``sums`` the span's
    ``(3, n)`` rows ``s1, s2, agree`` and ``desc`` its row of descent counts
    (:class:`GroupSums`). ``prod`` and ``dots`` are scratch of ``n`` and ``n_seg`` values.
    The layer products are ``e[lo] w[lo] + pairwise(rest)`` (``numpy.add.reduceat``),
    their total and the stochastic layers' part pairwise sums (``numpy.sum``).
    """
    n = E.shape[1]
    n_seg = seg.shape[0] - 1
    # One row each: indexing the (3, n) array itself compiles to markedly slower code.
    s1, s2, ag = sums[0], sums[1], sums[2]
    for q in range(m):
        for k in range(n):
            v = E[q, k]
            d = v - G[k]
            s1[k] += d
            s2[k] += d * d
            # numpy.sign(v) is -1, 0 or 1, or NaN (which agrees with nothing) for a NaN v;
            # written without branches, which would be mispredicted at random.
            sv = (1.0 if v > 0.0 else 0.0) - (1.0 if v < 0.0 else 0.0)
            ag[k] += 1.0 if sv == sg[k] and v == v else 0.0
            prod[k] = v * w[k]
        for j in range(n_seg):
            lo = seg[j]
            dots[j] = prod[lo] + _pairwise_small(prod, lo + 1, seg[j + 1] - lo - 1)
            desc[j] += 1.0 if dots[j] > 0.0 else 0.0
        desc[n_seg] += 1.0 if _pairwise_small(dots, 0, n_seg) > 0.0 else 0.0
        # The stochastic layers' part summed directly (total - output would lose it to
        # rounding when the output layer dominates).
        desc[n_seg + 1] += 1.0 if _pairwise_small(dots, 0, n_seg - 1) > 0.0 else 0.0


@njit(parallel=True, cache=True)
def _sums_kernel(
    batch: Batch, geo: Geometry, draws: Draws, jac1: np.ndarray, n_noise: int, cols: int,
    rows: np.ndarray, spans: np.ndarray, jobs: np.ndarray, tg: Targets, part: Partials,
) -> None:  # fmt: skip
    """Fill ``part[s]`` with the sums of span ``s``: draws ``spans[s, 0] .. spans[s, 1] - 1``.

    The estimates are drawn (:class:`gradstat.engines.sampling.Draws`, ``n_noise`` numbers
    per example, ``cols`` columns of workspace; ``LANES`` at a time by
    :func:`gradstat.engines.lanes.surrogate_lanes` when ``jac1`` is not empty), or,
    when ``rows`` is not empty, read from it: estimate ``(i, b)`` is
    ``rows[i - spans[0, 0], b]``. Worker ``c`` computes the spans
    ``jobs[c, 1:1 + jobs[c, 0]]``. ``part`` comes zeroed, and every span's sums run over
    its draws in order, so they do not depend on which worker computes it.
    """
    # no_noise: the draws' empty noise (the global NO_NOISE would be typed read-only, a
    # second signature of lane_noise).
    code, opts, baselines, key, normal, _, no_noise = draws
    B, n = part.sums.shape[1], part.sums.shape[3]
    n_seg = tg.seg.shape[0] - 1
    given = rows.shape[0] > 0
    fast = jac1.shape[0] > 0
    first = spans[0, 0]
    for c in prange(jobs.shape[0]):
        # The arrays of the tuples are read here, once per worker (module sampling).
        theta, L1, _, T, loss, _ = batch
        sizes, woff, boff, uoff = geo
        ws = np.empty((WS_ROWS, cols))
        y1, dy1 = ws[Y, : sizes[-1]], ws[DY, : sizes[-1]]
        S = np.empty((LANE_ROWS, cols, LANES))
        U = np.empty((n_noise, LANES))
        E = np.empty((LANES, n))
        u = np.empty(n_noise)
        e = np.empty(n)
        one = e.reshape((1, n))  # e as the one row of _add_draws
        prod = np.empty(n)
        dots = np.empty(n_seg)
        for job in range(jobs[c, 0]):
            s = jobs[c, 1 + job]
            # Examples outermost: each example's accumulators stay in cache over the span,
            # and their rows are taken once per span, not once per draw.
            for b in range(B):
                ex, base = example(batch, geo, b), baselines[b]
                G, sg, w, seg, t = tg.G[b], tg.sign[b], tg.dw[b], tg.seg, T[b]
                sums, desc = part.sums[s, b], part.desc[s, b]
                if fast:  # LANES draws at a time, added to the sums in draw order
                    for i in range(spans[s, 0], spans[s, 1], LANES):
                        m = min(LANES, spans[s, 1] - i)
                        lane_noise(key, i, m, b, normal, no_noise, u, U)
                        call_surrogate_lanes(code, opts, theta, geo, L1, jac1,
                                        b, t, loss, U, S, y1, dy1, E)  # fmt: skip
                        _add_draws(E, m, G, sg, w, seg, prod, dots, sums, desc)
                    continue
                for i in range(spans[s, 0], spans[s, 1]):
                    if given:
                        for q in range(n):
                            e[q] = rows[i - first, b, q]
                    else:
                        fill_noise(key, i, b, normal, u)
                        draw_estimate(code, opts, ex, 0, u, base, ws, e)
                    _add_draws(one, np.int64(1), G, sg, w, seg, prod, dots, sums, desc)


@njit(cache=True)
def _fold(spans: np.ndarray, part: Partials, sums: GroupSums) -> None:
    """Add the spans' sums to their groups' totals, span after span (``spans[s, 2]`` is the
    group of span ``s``)."""
    for s in range(spans.shape[0]):
        k = spans[s, 2]
        sums.counts[k] += spans[s, 1] - spans[s, 0]
        sums.s1[k] += part.sums[s, :, 0]
        sums.s2[k] += part.sums[s, :, 1]
        sums.agree[k] += part.sums[s, :, 2]
        sums.desc[k] += part.desc[s]


def draw_spans(n_samples: int, per_block: int, n_groups: int) -> Iterator[tuple[int, int, int]]:
    """``(start, stop, group)`` of each span, in order: the runs of draws inside one block of
    ``per_block`` draws and one group. Draw ``i`` is in group ``(i n_groups) // n_samples``,
    so group ``k`` starts at draw ``ceil(k n_samples / n_groups)``."""
    for lo in range(0, n_samples, per_block):
        hi = min(n_samples, lo + per_block)
        k = (lo * n_groups) // n_samples
        while lo < hi:
            end = min(hi, -(-(k + 1) * n_samples // n_groups))
            yield lo, end, k
            lo, k = end, k + 1


def _jobs(spans: np.ndarray, workers: int) -> np.ndarray:
    """Spans shared between ``workers`` by length, longest first to the least loaded
    (row ``c``: the count, then the spans of worker ``c``)."""
    lengths = spans[:, 1] - spans[:, 0]
    load = np.zeros(workers, dtype=np.int64)
    assigned: list[list[int]] = [[] for _ in range(workers)]
    for s in np.argsort(-lengths, kind="stable"):
        c = int(np.argmin(load))
        assigned[c].append(int(s))
        load[c] += lengths[s]
    jobs = np.zeros((workers, 1 + max(len(a) for a in assigned)), dtype=np.int64)
    for c, a in enumerate(assigned):
        jobs[c, 0] = len(a)
        jobs[c, 1 : 1 + len(a)] = a
    return jobs


def _waves(spans: Iterator[tuple[int, int, int]], per_wave: int) -> Iterator[np.ndarray]:
    """The spans in order, in arrays of at most ``per_wave`` rows."""
    wave: list[tuple[int, int, int]] = []
    for span in spans:
        wave.append(span)
        if len(wave) == per_wave:
            yield np.array(wave, dtype=np.int64)
            wave = []
    if wave:
        yield np.array(wave, dtype=np.int64)


def mc_group_sums(
    problem: Problem, spec: EstimatorBase, options: dict[str, Any], n_samples: int,
    seed: np.random.SeedSequence, max_states: int, G: np.ndarray, dw: np.ndarray,
    seg: np.ndarray, n_groups: int,
) -> GroupSums:  # fmt: skip
    """:class:`GroupSums` of ``n_samples`` draws in ``n_groups`` contiguous groups.

    ``G`` and ``dw`` are ``(B, n)`` in the layout of the estimates (compressed, or full for
    user estimators), ``seg`` the layer segment starts
    (:meth:`gradstat.problem.Problem.segment_starts`). Built-in estimators are drawn and
    summed in one kernel; user estimators (per-state functions and plain Python ones)
    draw their blocks as :func:`gradstat.engines.sampling.draw_blocks` does, and the same
    kernel sums each block. Either way the sums equal those of a NumPy loop over
    ``draw_blocks`` bit for bit (module docstring).
    """
    sampler = make_sampler(problem, spec, options, seed, max_states)
    B, n = problem.n_examples, sampler.width
    n_seg = seg.shape[0] - 1
    sums = GroupSums(
        np.zeros(n_groups), np.zeros((n_groups, B, n)), np.zeros((n_groups, B, n)),
        np.zeros((n_groups, B, n)), np.zeros((n_groups, B, n_seg + 2)),
    )  # fmt: skip
    tg = Targets(
        np.ascontiguousarray(G, dtype=np.float64), np.sign(G).astype(np.float64),
        np.ascontiguousarray(dw, dtype=np.float64), np.ascontiguousarray(seg, dtype=np.int64),
    )  # fmt: skip
    batch, geo = problem_batch(problem, spec.unit_mode(problem.mode))
    draws = Draws(
        spec.code, sampler.opts, sampler.baselines, stream_key(seed), spec.normal_noise, 0,
        NO_NOISE,
    )  # fmt: skip
    jac1 = surrogate_table(spec, sampler.opts, batch)
    n_noise = spec.noise_size(problem.net.hidden_sizes, options)
    cols = workspace_for(problem, spec, options)
    per_block = block_draws(sampler)
    per_wave = max(1, PARTIAL_VALUES // (B * (3 * n + n_seg + 2)))
    empty = np.empty((0, B, n))

    def run(spans: np.ndarray, rows: np.ndarray) -> None:
        # Zeroed here: numba's parallel loop drops whole-slice stores into a tuple's arrays.
        part = Partials(np.zeros((len(spans), B, 3, n)), np.zeros((len(spans), B, n_seg + 2)))
        with threads_for(int(spans[-1, 1] - spans[0, 0]) * B * n):
            jobs = _jobs(spans, numba.get_num_threads())
            _sums_kernel(batch, geo, draws, jac1, n_noise, cols, rows, spans, jobs, tg, part)
        _fold(spans, part, sums)

    spans = draw_spans(n_samples, per_block, n_groups)
    if spec.draws_own_noise or spec.jitted is not None or spec.batched:
        # User estimators (Python, per-state, or written in PyTorch or JAX): their blocks of
        # draws, then the same sums over each block (whose spans are those of the block).
        stop = 0
        for block in sampler_blocks(sampler, n_samples):
            stop += block.shape[0]
            inside = []
            while not inside or inside[-1][1] < stop:
                inside.append(next(spans))
            run(np.array(inside, dtype=np.int64), np.ascontiguousarray(block))
        return sums
    for wave in _waves(spans, per_wave):
        run(wave, empty)
    return sums
