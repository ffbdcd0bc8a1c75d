"""Monte Carlo sampling kernels and the sampler."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from gradstat.engines.baselines import kernel_options, workspace_for
from gradstat.engines.gradient import problem_batch
from gradstat.engines.lanes import (
    LANE_ROWS,
    LANES,
    call_surrogate_lanes,
    lane_noise,
    surrogate_unit,
)
from gradstat.engines.states import batched_draws
from gradstat.estimators.codes import REINMAX, ST, ST_SIGMOID, ST_TEMPERED
from gradstat.estimators.dispatch import draw_estimate, surrogate_jacobian
from gradstat.estimators.registry import EstimatorBase
from gradstat.kernels.forward import forward_state, loss_and_grad, state_buffers
from gradstat.kernels.geometry import Batch, Geometry, example
from gradstat.kernels.philox import fill_noise, stream_key
from gradstat.kernels.workspace import DY, JAC, WORK, WS_ROWS, H, Y
from gradstat.problem import DEFAULT_MAX_STATES, Problem, threads_for

CHUNK_DRAWS = 256
"""Draws per parallel chunk of the sampling kernels: how work is split between threads.
It does not change the numbers drawn."""

STAGE_VALUES = 2048
"""Values a kernel's chunk builds in its scratch rows before copying them to the output
(16 KB: small enough to stay in the L1 cache)."""

PYTHON_CHUNK = 1024
"""Draws that share one generator of a plain Python estimator (see the module docstring)."""

BLOCK_VALUES = 2**22
"""Values per block of :func:`draw_blocks` (bounds memory; does not change the draws)."""

NO_NOISE = np.empty((0, 0, 0))
"""The ``noise`` argument of the kernels when they draw their own."""

FAST_SURROGATES = (ST, ST_SIGMOID, ST_TEMPERED, REINMAX)
"""Straight-through-type estimators whose draws the sampling kernels compute
:data:`gradstat.engines.lanes.LANES` at a time, each lane :func:`surrogate_estimate`'s
draw (the same numbers as ``draw_estimate``; about a third of its time per draw)."""

NO_TABLE = np.empty((0, 2, 0))
"""The ``jac1`` argument of the kernels for every other estimator (``draw_estimate``)."""


@njit(cache=True)
def _jacobian_table(code: int, opts: np.ndarray, L1: np.ndarray) -> np.ndarray:
    """Layer 1's surrogate ``dh/da`` of every example for bits 0 and 1: ``(B, 2, n_1)``.

    Layer 1's pre-activations do not depend on the draw, so the surrogate of each unit
    takes one of two values, computed once here by the function ``draw_estimate`` calls.
    """
    B, n1 = L1.shape[0], L1.shape[2]
    out = np.empty((B, 2, n1))
    for b in range(B):
        kappa = 1.0 - L1[b, 6, 0]
        for bit in range(2):
            for i in range(n1):
                out[b, bit, i] = surrogate_jacobian(code, L1[b, 0, i], float(bit), opts, kappa)
    return out


def surrogate_table(spec: EstimatorBase, opts: np.ndarray, batch: Batch) -> np.ndarray:
    """The ``jac1`` table of the sampling kernels: :func:`_jacobian_table` for the
    estimators of :data:`FAST_SURROGATES`, else :data:`NO_TABLE`."""
    builtin = spec.jitted is None and not spec.batched and not spec.draws_own_noise
    if not builtin or spec.smooth or spec.code not in FAST_SURROGATES:
        return NO_TABLE
    return _jacobian_table(spec.code, opts, batch.L1)


@njit(cache=True)
def surrogate_estimate(
    code: int, opts: np.ndarray, theta: np.ndarray, sizes: np.ndarray, woff: np.ndarray,
    boff: np.ndarray, uoff: np.ndarray, L1: np.ndarray, jac1: np.ndarray, b: int,
    t: np.ndarray, loss: int, u: np.ndarray, ws: np.ndarray, y: np.ndarray, dy: np.ndarray,
    e: np.ndarray,
) -> None:  # fmt: skip
    """``draw_estimate`` of a straight-through-type estimator (:data:`FAST_SURROGATES`) for
    example ``b`` (target ``t``) and uniforms ``u``: the same floating-point operations in
    the same order, so the same numbers bit for bit, with what does not depend on the draw
    taken out.

    Layer 1's units read their surrogate from ``jac1[b]`` (:func:`_jacobian_table`); the
    other layers' ``sigmoid'(a)`` of ``st_sigmoid`` reuses the ``exp(-|a|)`` of the
    forward pass; the log-probability of the state, which sampling never reads, is not
    computed; and arrays come one by one (``y``, ``dy``: rows of ``ws``) and are indexed
    in place: a slice, or an array read from a tuple, costs a reference count update,
    more than a unit's arithmetic. The kernels compute the same draws several at a time
    (:mod:`gradstat.engines.lanes`); this is the one-draw definition they are tested against.
    """
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    low = L1[b, 6, 0]
    kappa = 1.0 - low
    for i in range(sizes[1]):
        if u[i] < L1[b, 5, i]:
            ws[H, i] = L1[b, 4, i]
            ws[JAC, i] = jac1[b, 1, i]
        else:
            ws[H, i] = low
            ws[JAC, i] = jac1[b, 0, i]
    for l in range(1, L):
        n_prev, base, prev, w0, b0 = sizes[l], uoff[l], uoff[l - 1], woff[l], boff[l]
        for i in range(sizes[l + 1]):
            ak = theta[b0 + i]
            for j in range(n_prev):
                ak += theta[w0 + i * n_prev + j] * ws[H, prev + j]
            ws[H, base + i], ws[JAC, base + i] = surrogate_unit(
                ak, u[base + i], low, kappa, code, opts
            )
    n_last, last, wL, bL, n_out = sizes[L], uoff[L - 1], woff[L], boff[L], sizes[L + 1]
    for o in range(n_out):
        v = theta[bL + o]
        for j in range(n_last):
            v += theta[wL + o * n_last + j] * ws[H, last + j]
        y[o] = v
    loss_and_grad(loss, y, t, dy)
    # backprop_surrogate, its sums in the same order (each from 0.0, as there).
    for j in range(n_last):
        ws[WORK, j] = 0.0
    for o in range(n_out):
        d = dy[o]
        e[bL - s0 + o] = d
        for j in range(n_last):
            e[wL - s0 + o * n_last + j] = d * ws[H, last + j]
            ws[WORK, j] += theta[wL + o * n_last + j] * d
    cur = WORK
    for l in range(L - 1, -1, -1):
        n, n_prev, base = sizes[l + 1], sizes[l], uoff[l]
        for i in range(n):
            delta = ws[cur, i] * ws[JAC, base + i]
            ws[cur, i] = delta
            e[boff[l] - s0 + i] = delta
        if l > 0:
            nxt, prev, w0 = 2 * WORK + 1 - cur, uoff[l - 1], woff[l]
            for j in range(n_prev):
                ws[nxt, j] = 0.0
            for i in range(n):
                delta = ws[cur, i]
                for j in range(n_prev):
                    e[w0 - s0 + i * n_prev + j] = delta * ws[H, prev + j]
                    ws[nxt, j] += theta[w0 + i * n_prev + j] * delta
            cur = nxt


@njit(cache=True)
def _store_estimate(
    E: np.ndarray, q: int, x: np.ndarray, b: int, per_example: bool, stage: np.ndarray, r: int
) -> None:  # fmt: skip
    """Put example ``b``'s compressed estimate ``E[q]`` into row ``r`` of ``stage``.

    With ``per_example``, the row holds the examples' compressed estimates one after the
    other. Otherwise it is the full-layout sum over the examples so far: example 0 sets it,
    later ones add to it. ``W_1``'s block is ``outer(E[q, :n_1], x)``
    (:mod:`gradstat.kernels.forward`). Rows and the estimate come as indices: a view per
    draw would cost a reference count update.
    """
    n = E.shape[1]
    if per_example:
        for k in range(n):
            stage[r, b * n + k] = E[q, k]
        return
    n_in = x.shape[0]
    s0 = stage.shape[1] - n
    n1 = s0 // n_in if n_in > 0 else 0
    if b == 0:
        for i in range(n1):
            for j in range(n_in):
                stage[r, i * n_in + j] = E[q, i] * x[j]
        for k in range(n):
            stage[r, s0 + k] = E[q, k]
        return
    for i in range(n1):
        for j in range(n_in):
            stage[r, i * n_in + j] += E[q, i] * x[j]
    for k in range(n):
        stage[r, s0 + k] += E[q, k]


class Draws(NamedTuple):
    """Which draws a sampling kernel makes: those of built-in estimator ``code`` with option
    array ``opts`` and per-example baseline rows ``baselines``, numbered from ``first``,
    from noise ``noise[i, b]`` when ``noise`` is not empty, else from the Philox streams of
    ``key`` (standard normals when ``normal``, else uniforms;
    :func:`gradstat.kernels.philox.fill_noise`)."""

    code: int
    opts: np.ndarray
    baselines: np.ndarray
    key: np.ndarray
    normal: bool
    first: int
    noise: np.ndarray


# Not cached on its own: the kernel that calls it then always compiles it, and so records
# the compiled estimator code it calls (gradstat.kernels.linking).
@njit
def _sample_chunk(
    start: int, stop: int, batch: Batch, geo: Geometry, draws: Draws, jac1: np.ndarray,
    per_example: bool, scratch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    out: np.ndarray,
) -> None:  # fmt: skip
    """Rows ``start .. stop - 1`` of :func:`_sample_kernel`'s ``out``, on one thread.

    ``scratch`` is ``(ws, u, e, stage)``: the estimators' workspace, one example's noise,
    one example's compressed estimate and the rows built before they are copied to ``out``
    together (faster than scattering each estimate's writes over a large array).
    """
    code, opts, baselines, key, normal, first, noise = draws
    ws, u, e, stage = scratch
    theta, L1, X, T, loss, _ = batch
    sizes, woff, boff, uoff = geo
    y, dy = ws[Y, : sizes[-1]], ws[DY, : sizes[-1]]
    B = X.shape[0]
    given = noise.shape[0] > 0
    fast = jac1.shape[0] > 0
    one = e.reshape((1, e.shape[0]))
    S = np.empty((LANE_ROWS, ws.shape[1], LANES) if fast else (0, 0, 0))
    U = np.empty((u.shape[0], LANES) if fast else (0, 0))
    E = np.empty((LANES, e.shape[0]) if fast else (0, 0))
    for lo in range(start, stop, stage.shape[0]):
        hi = min(stop, lo + stage.shape[0])
        # Examples outermost, so that each example's rows of L1, T, ... are taken once per
        # stage; every row still sums its examples in order b = 0, 1, ... The noise and the
        # estimate always go through the same two buffers: branches that pick different
        # arrays in this loop compile to markedly slower code.
        for b in range(B):
            ex, base, x, t = example(batch, geo, b), baselines[b], X[b], T[b]
            if fast:  # LANES draws at a time (gradstat.engines.lanes)
                for i in range(lo, hi, LANES):
                    m = min(LANES, hi - i)
                    lane_noise(key, i if given else first + i, m, b, normal, noise, u, U)
                    call_surrogate_lanes(code, opts, theta, geo, L1, jac1, b, t,
                                    loss, U, S, y, dy, E)  # fmt: skip
                    for q in range(m):
                        _store_estimate(E, q, x, b, per_example, stage, i - lo + q)
                continue
            for i in range(lo, hi):
                if given:
                    for k in range(u.shape[0]):
                        u[k] = noise[i, b, k]
                else:
                    fill_noise(key, first + i, b, normal, u)
                draw_estimate(code, opts, ex, 0, u, base, ws, e)
                _store_estimate(one, np.int64(0), x, b, per_example, stage, i - lo)
        # Copied element by element: a slice assignment compiles numba's shape checks and
        # broadcasting code into every kernel that calls this function.
        mean = not per_example and B > 1
        for r in range(hi - lo):
            for k in range(stage.shape[1]):
                out[lo + r, k] = stage[r, k] / B if mean else stage[r, k]


@njit(parallel=True, cache=True)
def _sample_kernel(
    batch: Batch, geo: Geometry, draws: Draws, jac1: np.ndarray, n_noise: int, chunk: int,
    stage_rows: int, cols: int, per_example: bool, out: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``out[i]`` with draw ``draws.first + i`` (:class:`Draws`) of ``batch``.

    Row ``i`` is the batch estimate in the full layout (``per_example`` false) or the
    ``B`` per-example estimates in the compressed layout, one after the other; the noise
    of a draw is ``n_noise`` numbers per example. Chunks of ``chunk`` draws run in
    parallel, each with its own scratch (``stage_rows`` rows of ``out`` and ``cols``
    columns of workspace). Estimators with a layer-1 table ``jac1``
    (:func:`surrogate_table`) are drawn ``LANES`` at a time
    (:func:`gradstat.engines.lanes.surrogate_lanes`).
    """
    m = out.shape[0]
    nc = (m + chunk - 1) // chunk
    for c in prange(nc):
        scratch = (
            np.empty((WS_ROWS, cols)),
            np.empty(n_noise),
            np.empty(draws.baselines.shape[1]),
            np.empty((stage_rows, out.shape[1])),
        )
        start, stop = c * chunk, min(m, (c + 1) * chunk)
        _sample_chunk(start, stop, batch, geo, draws, jac1, per_example, scratch, out)


def chunk_seed(seed: np.random.SeedSequence, chunk: int) -> np.random.SeedSequence:
    """The child sequence of ``seed`` for ``chunk``: spawn key ``seed.spawn_key + (chunk,)``.

    Equal to ``seed.spawn(chunk + 1)[chunk]`` on a fresh ``seed``, but built directly, so
    ``seed`` itself is left unchanged and the result does not depend on earlier spawns.
    """
    return np.random.SeedSequence(
        seed.entropy, spawn_key=(*seed.spawn_key, chunk), pool_size=seed.pool_size
    )


@cache
def user_sample_kernel(fn: Any) -> Any:
    """The sampling kernel for a user's jitted per-state function (full layout).

    Compiled once per function and process (a kernel that calls a user function cannot be
    cached on disk). The same streams and chunks as :func:`_sample_kernel`; row ``i`` of
    ``out`` is the batch estimate or the ``B`` per-example estimates, each ``n_params`` long.
    """

    @njit(parallel=True)
    def kernel(batch, geo, draws, chunk, stage_rows, per_example, out):  # noqa: ANN001, ANN202
        # Arrays are taken out of the tuples outside the loops over draws: reading a tuple's
        # array costs a reference count update.
        theta, L1, X, T, loss, mode = batch
        sizes, woff, boff, uoff = geo
        n_units = uoff[sizes.shape[0] - 2]
        n_out = sizes[sizes.shape[0] - 1]
        key, first, noise = draws.key, draws.first, draws.noise
        m = out.shape[0]
        B = X.shape[0]
        given = noise.shape[0] > 0
        no_x = np.empty(0)  # estimates come in the full layout: nothing to expand
        nc = (m + chunk - 1) // chunk
        for c in prange(nc):
            a, p, bit, h, y, dy = state_buffers(n_units, n_out)
            u = np.empty(n_units)
            e = np.empty(theta.shape[0])
            one = e.reshape((1, e.shape[0]))
            stage = np.empty((stage_rows, out.shape[1]))
            end = min(m, (c + 1) * chunk)
            for lo in range(c * chunk, end, stage_rows):
                hi = min(end, lo + stage_rows)
                for i in range(lo, hi):
                    for b in range(B):
                        if given:
                            for k in range(n_units):
                                u[k] = noise[i, b, k]
                        else:
                            fill_noise(key, first + i, b, False, u)
                        state = np.int64(0)  # the bits come from u
                        forward_state(
                            theta, sizes, woff, boff, uoff, L1[b], state, u, mode, a, p, bit, h, y
                        )
                        C = loss_and_grad(loss, y, T[b], dy)
                        e[:] = 0.0
                        fn(theta, sizes, X[b], T[b], u, a, p, h, y, dy, C, e)
                        _store_estimate(one, np.int64(0), no_x, b, per_example, stage, i - lo)
                    if not per_example and B > 1:
                        for q in range(out.shape[1]):
                            stage[i - lo, q] /= B
                out[lo:hi] = stage[: hi - lo]

    return kernel


def _python_draws(
    problem: Problem,
    spec: EstimatorBase,
    options: dict[str, Any],
    seed: np.random.SeedSequence,
    first: int,
    per_example: bool,
    out: np.ndarray,
) -> None:
    """Draws ``first ..`` of a plain Python estimator: ``f(net, x, t, rng, **options)``.

    ``first`` is a multiple of ``PYTHON_CHUNK``; each chunk of draws gets its generator from
    :func:`chunk_seed`. ``out`` is as in :func:`_sample_kernel` (full layout).
    """
    if first % PYTHON_CHUNK:
        raise ValueError(f"first must be a multiple of {PYTHON_CHUNK}, got {first}")
    net, B, P = problem.net, problem.n_examples, problem.net.n_params
    targets = [int(t[0]) if net.loss == "xent" else t.copy() for t in problem.T]
    for start in range(0, out.shape[0], PYTHON_CHUNK):
        rng = np.random.default_rng(chunk_seed(seed, (first + start) // PYTHON_CHUNK))
        for i in range(start, min(out.shape[0], start + PYTHON_CHUNK)):
            row = out[i]
            for b in range(B):
                value = np.asarray(
                    spec.function(net, problem.X[b].copy(), targets[b], rng, **options)
                )
                if value.shape != (P,):
                    raise ValueError(
                        f"estimator {spec.name!r} returned shape {value.shape}; it must return "
                        f"one estimate of shape ({P},) per call"
                    )
                if per_example:
                    row[b * P : (b + 1) * P] = value
                elif b == 0:
                    row[:] = value
                else:
                    row += value
            if not per_example and B > 1:
                row /= B
    if not np.all(np.isfinite(out)):
        raise ValueError(f"estimator {spec.name!r} returned NaN or infinite values")


def draw_noise(
    spec: EstimatorBase, rng: np.random.Generator, shape: tuple[int, int, int]
) -> np.ndarray:
    """Noise of the given shape from ``rng``: standard normals, or uniforms inside ``(0, 1)``.

    ``Generator.random`` returns ``[0, 1)``; an exact 0 (probability ``2^-53`` per draw) is
    replaced by ``2^-54`` so that logistic noise ``log u - log1p(-u)`` stays finite.
    """
    if spec.normal_noise:
        return rng.standard_normal(shape)
    U = rng.random(shape)
    U[U == 0.0] = 2.0**-54
    return U


def estimate_width(problem: Problem, spec: EstimatorBase) -> int:
    """Length of one per-example estimate of ``spec``: compressed, or ``n_params`` for user
    estimators (``spec.full_layout``)."""
    return problem.net.n_params if spec.full_layout else problem.n_compressed


@dataclass(frozen=True, eq=False)
class Sampler:
    """One estimator on one problem, ready to fill arrays with draws (see :meth:`fill`).

    Built by :func:`make_sampler`, which validates the estimator on the network and
    computes its option array and baselines once (the ``"mean"`` and ``"optimal"``
    baselines of ``reinforce`` enumerate the states).
    """

    problem: Problem
    spec: EstimatorBase
    options: dict[str, Any]
    seed: np.random.SeedSequence
    opts: np.ndarray
    baselines: np.ndarray

    @property
    def width(self) -> int:
        """Length of one per-example estimate (:func:`estimate_width`)."""
        return estimate_width(self.problem, self.spec)

    def fill(
        self, out: np.ndarray, *, first: int = 0, per_example: bool = False, noise: Any = None
    ) -> None:
        """Write draws ``first .. first + len(out) - 1`` into ``out``.

        ``out`` has shape ``(m, n_params)`` for batch estimates (full layout) or
        ``(m, B * width)`` with ``per_example``. ``noise`` (shape ``(m, B, M)``) replaces
        the seeded streams, for estimators that read noise.
        """
        problem, spec = self.problem, self.spec
        if spec.draws_own_noise:
            _python_draws(problem, spec, self.options, self.seed, first, per_example, out)
            return
        if spec.batched:
            batched_draws(problem, spec, stream_key(self.seed), first, per_example, noise, out)
            return
        batch, geo = problem_batch(problem, spec.unit_mode(problem.mode))
        draws = Draws(
            spec.code, self.opts, self.baselines, stream_key(self.seed),
            spec.normal_noise, first, NO_NOISE if noise is None else noise,
        )  # fmt: skip
        # A whole number of lanes per stage: a stage's last lanes are otherwise computed for
        # nothing.
        rows = max(LANES, min(CHUNK_DRAWS, STAGE_VALUES // max(1, out.shape[1])) // LANES * LANES)
        with threads_for(out.shape[0] * problem.n_examples * self.width):
            if spec.jitted is None:
                _sample_kernel(
                    batch, geo, draws, surrogate_table(spec, self.opts, batch),
                    spec.noise_size(problem.net.hidden_sizes, self.options), CHUNK_DRAWS, rows,
                    workspace_for(problem, spec, self.options), per_example, out,
                )  # fmt: skip
            else:
                kernel = user_sample_kernel(spec.jitted)
                kernel(batch, geo, draws, CHUNK_DRAWS, rows, per_example, out)


def make_sampler(
    problem: Problem,
    spec: EstimatorBase,
    options: dict[str, Any],
    seed: np.random.SeedSequence,
    max_states: int = DEFAULT_MAX_STATES,
) -> Sampler:
    """A :class:`Sampler`, refusing estimators not defined for the network's unit values."""
    spec.check_values(problem.net)
    opts, baselines = kernel_options(spec, options, problem, max_states)
    return Sampler(problem, spec, options, seed, opts, baselines)


def block_draws(sampler: Sampler) -> int:
    """Draws per block of :func:`draw_blocks`: about ``BLOCK_VALUES`` values of noise or
    estimates, a whole number of ``PYTHON_CHUNK`` draws for plain Python estimators."""
    problem, spec = sampler.problem, sampler.spec
    N = spec.noise_size(problem.net.hidden_sizes, sampler.options)
    per_block = max(1, BLOCK_VALUES // max(1, problem.n_examples * max(N, sampler.width)))
    if spec.draws_own_noise:
        per_block = -(-per_block // PYTHON_CHUNK) * PYTHON_CHUNK
    return per_block


def draw_blocks(
    problem: Problem,
    spec: EstimatorBase,
    options: dict[str, Any],
    n_samples: int,
    seed: np.random.SeedSequence,
    max_states: int = DEFAULT_MAX_STATES,
) -> Iterator[np.ndarray]:
    """Yield blocks ``(m, B, n)`` of per-example estimates, ``n_samples`` draws in all.

    ``n`` is the compressed length for built-in estimators and ``n_params`` (the full
    layout) for user estimators (``spec.full_layout``). Draw ``i``
    is the one :func:`sample_gradients` makes with the same seed, whatever the block size.
    """
    return sampler_blocks(make_sampler(problem, spec, options, seed, max_states), n_samples)


def sampler_blocks(sampler: Sampler, n_samples: int) -> Iterator[np.ndarray]:
    """:func:`draw_blocks` of a :class:`Sampler`."""
    B, n = sampler.problem.n_examples, sampler.width
    per_block = block_draws(sampler)
    done = 0
    while done < n_samples:
        m = min(per_block, n_samples - done)
        block = np.empty((m, B * n))
        sampler.fill(block, first=done, per_example=True)
        done += m
        yield block.reshape(m, B, n)
