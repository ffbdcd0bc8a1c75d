"""Monte Carlo draws of gradient estimates.

**Streams.** The noise of built-in estimators and of :func:`gradstat.per_state_estimator`
functions is counter-based: number ``k`` of example ``b`` in draw ``n`` (``n = 0, 1, ...``
over one call's ``n_samples``) is word ``k mod 4`` of Philox4x64-10
(:mod:`gradstat.kernels.philox`; Salmon et al. 2011) with counter ``(n, b, k div 4, 0)`` and key
``seed.generate_state(2, numpy.uint64)``, turned into a uniform strictly inside ``(0, 1)``
(or, for the noisy rectifier, a standard normal by Box-Muller). Each draw is therefore its
own stream, a pure function of ``(seed, n, b)``. The kernels split the draws into chunks of
``CHUNK_DRAWS`` that threads take in parallel with no shared state; the numbers do not
depend on the chunk size, the thread count or, for :func:`draw_blocks`, the block size.

A plain Python estimator draws its own noise from the ``rng`` it is given: draws
``c PYTHON_CHUNK .. (c + 1) PYTHON_CHUNK - 1`` (examples in order within a draw) share the
generator ``numpy.random.default_rng(child)``, where ``child`` is the ``SeedSequence``
with the seed's entropy and spawn key ``seed.spawn_key + (c,)`` (what ``seed.spawn``
would give as its ``c``-th child); the chunks run one after the other.

**Reproducibility.** For one seed, the draws are the same bits for any number of threads,
chunk size or block size, and from one run to the next. The uniforms are exact integer
functions of ``(seed, n, b, k)`` on every machine; the estimates computed from them use
the platform's ``exp`` and ``log``, so on other hardware or library versions they may differ
in the last bits. The per-example estimates of :func:`draw_blocks` (which
:func:`gradstat.analyze` reads) use the same noise as :func:`sample_gradients`: for a
single example they are its batch estimates exactly. These streams are not those of
gradstat versions that drew all uniforms from one ``default_rng(seed)``.

**Memory.** Each parallel chunk builds a few rows in about 16 KB of scratch (the batch
estimate in the full SPEC layout, with ``W_1``'s block expanded from ``b_1``'s in the
kernel, or the per-example estimates) and copies them to the caller's array in one go, so
a call needs its output and a few KB per chunk, never a copy of the output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numba import njit, prange

from gradstat.estimators import Estimator
from gradstat.estimators.per_state import WS_ROWS, draw_estimate
from gradstat.estimators.user import (
    AnyEstimator,
    PythonEstimator,
    full_layout,
    resolve_estimator,
)
from gradstat.exact import check_values, kernel_options, unit_mode, workspace_for
from gradstat.kernels.forward import (
    forward_state,
    layer1_table,
    loss_and_grad,
    offsets,
    state_buffers,
)
from gradstat.kernels.philox import fill_noise, stream_key
from gradstat.network import BinaryNetwork
from gradstat.problem import DEFAULT_MAX_STATES, Problem, make_problem, threads_for

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


@njit(cache=True)
def _store_estimate(
    e: np.ndarray, x: np.ndarray, b: int, per_example: bool, row: np.ndarray
) -> None:
    """Put example ``b``'s compressed estimate ``e`` into ``row``.

    With ``per_example``, ``row`` holds the examples' compressed estimates one after the
    other. Otherwise it is the full-layout sum over the examples so far: example 0 sets it,
    later ones add to it. ``W_1``'s block is ``outer(e[:n_1], x)``
    (:mod:`gradstat.kernels.forward`).
    """
    n = e.shape[0]
    if per_example:
        for k in range(n):
            row[b * n + k] = e[k]
        return
    n_in = x.shape[0]
    s0 = row.shape[0] - n
    n1 = s0 // n_in if n_in > 0 else 0
    if b == 0:
        for i in range(n1):
            for j in range(n_in):
                row[i * n_in + j] = e[i] * x[j]
        for k in range(n):
            row[s0 + k] = e[k]
        return
    for i in range(n1):
        for j in range(n_in):
            row[i * n_in + j] += e[i] * x[j]
    for k in range(n):
        row[s0 + k] += e[k]


@njit(cache=True)
def _sample_chunk(
    start: int,
    stop: int,
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    X: np.ndarray,
    T: np.ndarray,
    loss: int,
    code: int,
    mode: int,
    opts: np.ndarray,
    baselines: np.ndarray,
    key: np.ndarray,
    normal: bool,
    first: int,
    noise: np.ndarray,
    per_example: bool,
    scratch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    out: np.ndarray,
) -> None:
    """Rows ``start .. stop - 1`` of :func:`_sample_kernel`'s ``out``, on one thread.

    ``scratch`` is ``(ws, u, e, stage)``: the estimators' workspace, one example's noise,
    one example's compressed estimate and the rows built before they are copied to ``out``
    together (faster than scattering each estimate's writes over a large array).
    """
    woff, boff, uoff = offsets(sizes)
    ws, u, e, stage = scratch
    B = X.shape[0]
    given = noise.shape[0] > 0
    for lo in range(start, stop, stage.shape[0]):
        hi = min(stop, lo + stage.shape[0])
        # Examples outermost, so that each example's rows of L1, T, ... are taken once per
        # stage; every row still sums its examples in order b = 0, 1, ... The noise and the
        # estimate always go through the same two buffers: branches that pick different
        # arrays in this loop compile to markedly slower code.
        for b in range(B):
            tab, t, base, x = L1[b], T[b], baselines[b], X[b]
            for i in range(lo, hi):
                if given:
                    for k in range(u.shape[0]):
                        u[k] = noise[i, b, k]
                else:
                    fill_noise(key, first + i, b, normal, u)
                draw_estimate(
                    code, opts, theta, sizes, woff, boff, uoff, tab, t, loss, mode, 0, u, base, ws,
                    e,
                )  # fmt: skip
                _store_estimate(e, x, b, per_example, stage[i - lo])
        if not per_example and B > 1:
            for r in range(hi - lo):
                for k in range(stage.shape[1]):
                    stage[r, k] /= B
        out[lo:hi] = stage[: hi - lo]


@njit(parallel=True, cache=True)
def _sample_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    X: np.ndarray,
    T: np.ndarray,
    loss: int,
    code: int,
    mode: int,
    opts: np.ndarray,
    baselines: np.ndarray,
    key: np.ndarray,
    normal: bool,
    first: int,
    noise: np.ndarray,
    n_noise: int,
    chunk: int,
    stage_rows: int,
    cols: int,
    per_example: bool,
    out: np.ndarray,
) -> None:
    """Fill ``out[i]`` with draw ``first + i`` of built-in estimator ``code``.

    Row ``i`` is the batch estimate in the full layout (``per_example`` false) or the
    ``B`` per-example estimates in the compressed layout, one after the other. The noise
    of example ``b`` is ``noise[i, b]`` when ``noise`` is not empty, else ``n_noise``
    numbers drawn by :func:`gradstat.kernels.philox.fill_noise` for draw ``first + i``. Chunks of
    ``chunk`` draws run in parallel, each with its own scratch (``stage_rows`` rows of
    ``out`` and ``cols`` columns of workspace).
    """
    m = out.shape[0]
    nc = (m + chunk - 1) // chunk
    for c in prange(nc):
        scratch = (
            np.empty((WS_ROWS, cols)),
            np.empty(n_noise),
            np.empty(baselines.shape[1]),
            np.empty((stage_rows, out.shape[1])),
        )
        _sample_chunk(
            c * chunk, min(m, (c + 1) * chunk), theta, sizes, L1, X, T, loss, code, mode, opts,
            baselines, key, normal, first, noise, per_example, scratch, out,
        )  # fmt: skip


def check_n_samples(n_samples: Any) -> int:
    """Validate a sample count (an int >= 2)."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise TypeError(f"n_samples must be an int >= 2, got {n_samples!r}")
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 (a variance needs two draws), got {n_samples}")
    return int(n_samples)


def check_seed(seed: Any) -> np.random.SeedSequence:
    """A ``SeedSequence`` from an int, a ``SeedSequence`` or ``None`` (fresh entropy)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, a SeedSequence or None, got {seed!r}")
    return np.random.SeedSequence(int(seed))


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
    def kernel(
        theta, sizes, X, L1, T, loss, mode, key, first, noise, chunk, stage_rows, per_example, out
    ):  # noqa: ANN001, ANN202
        woff, boff, uoff = offsets(sizes)
        n_units = uoff[uoff.shape[0] - 1]
        n_out = sizes[sizes.shape[0] - 1]
        m = out.shape[0]
        B = X.shape[0]
        given = noise.shape[0] > 0
        no_x = np.empty(0)  # estimates come in the full layout: nothing to expand
        nc = (m + chunk - 1) // chunk
        for c in prange(nc):
            a, p, bit, h, y, dy = state_buffers(n_units, n_out)
            u = np.empty(n_units)
            e = np.empty(theta.shape[0])
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
                        forward_state(
                            theta, sizes, woff, boff, uoff, L1[b], 0, u, mode, a, p, bit, h, y
                        )
                        C = loss_and_grad(loss, y, T[b], dy)
                        e[:] = 0.0
                        fn(theta, sizes, X[b], T[b], u, a, p, h, y, dy, C, e)
                        _store_estimate(e, no_x, b, per_example, stage[i - lo])
                    if not per_example and B > 1:
                        for q in range(out.shape[1]):
                            stage[i - lo, q] /= B
                out[lo:hi] = stage[: hi - lo]

    return kernel


def _python_draws(
    problem: Problem,
    spec: PythonEstimator,
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


def noise_size(spec: AnyEstimator, problem: Problem, options: dict[str, Any]) -> int:
    """Numbers drawn per example and draw: uniforms (or normals for the noisy rectifier)."""
    if isinstance(spec, Estimator):
        return spec.noise_size(problem.net.hidden_sizes, options)
    return problem.net.n_stochastic


def draw_noise(
    spec: AnyEstimator, rng: np.random.Generator, shape: tuple[int, int, int]
) -> np.ndarray:
    """Noise of the given shape from ``rng``: standard normals, or uniforms inside ``(0, 1)``.

    ``Generator.random`` returns ``[0, 1)``; an exact 0 (probability ``2^-53`` per draw) is
    replaced by ``2^-54`` so that logistic noise ``log u - log1p(-u)`` stays finite.
    """
    if isinstance(spec, Estimator) and spec.normal_noise:
        return rng.standard_normal(shape)
    U = rng.random(shape)
    U[U == 0.0] = 2.0**-54
    return U


@dataclass(frozen=True, eq=False)
class Sampler:
    """One estimator on one problem, ready to fill arrays with draws (see :meth:`fill`).

    Built by :func:`make_sampler`, which validates the estimator on the network and
    computes its option array and baselines once (the ``"mean"`` and ``"optimal"``
    baselines of ``reinforce`` enumerate the states).
    """

    problem: Problem
    spec: AnyEstimator
    options: dict[str, Any]
    seed: np.random.SeedSequence
    opts: np.ndarray
    baselines: np.ndarray

    @property
    def width(self) -> int:
        """Length of one per-example estimate: compressed, or ``n_params`` for user ones."""
        net = self.problem.net
        return net.n_params if full_layout(self.spec) else self.problem.n_compressed

    def fill(
        self, out: np.ndarray, *, first: int = 0, per_example: bool = False, noise: Any = None
    ) -> None:
        """Write draws ``first .. first + len(out) - 1`` into ``out``.

        ``out`` has shape ``(m, n_params)`` for batch estimates (full layout) or
        ``(m, B * width)`` with ``per_example``. ``noise`` (shape ``(m, B, M)``) replaces
        the seeded streams, for estimators that read noise.
        """
        problem, spec = self.problem, self.spec
        if isinstance(spec, PythonEstimator):
            _python_draws(problem, spec, self.options, self.seed, first, per_example, out)
            return
        key = stream_key(self.seed)
        given = NO_NOISE if noise is None else noise
        mode = unit_mode(problem, spec)
        L1 = layer1_table(problem.A1, mode)
        args = (problem.theta, problem.sizes)
        rows = max(1, min(CHUNK_DRAWS, STAGE_VALUES // max(1, out.shape[1])))
        with threads_for(out.shape[0] * problem.n_examples * self.width):
            if isinstance(spec, Estimator):
                _sample_kernel(
                    *args, L1, problem.X, problem.T, problem.loss_code, spec.code, mode,
                    self.opts, self.baselines, key, spec.normal_noise, first, given,
                    noise_size(spec, problem, self.options), CHUNK_DRAWS, rows,
                    workspace_for(problem, spec, self.options), per_example, out,
                )  # fmt: skip
            else:
                kernel = user_sample_kernel(spec.function)
                kernel(
                    *args, problem.X, L1, problem.T, problem.loss_code, mode, key, first,
                    given, CHUNK_DRAWS, rows, per_example, out,
                )  # fmt: skip


def make_sampler(
    problem: Problem,
    spec: AnyEstimator,
    options: dict[str, Any],
    seed: np.random.SeedSequence,
    max_states: int = DEFAULT_MAX_STATES,
) -> Sampler:
    """A :class:`Sampler`, refusing estimators not defined for the network's unit values."""
    check_values(spec, problem.net)
    opts, baselines = kernel_options(spec, options, problem, max_states)
    return Sampler(problem, spec, options, seed, opts, baselines)


def draw_blocks(
    problem: Problem,
    spec: AnyEstimator,
    options: dict[str, Any],
    n_samples: int,
    seed: np.random.SeedSequence,
    max_states: int = DEFAULT_MAX_STATES,
) -> Iterator[np.ndarray]:
    """Yield blocks ``(m, B, n)`` of per-example estimates, ``n_samples`` draws in all.

    ``n`` is the compressed length for built-in estimators and ``n_params`` (the full
    layout) for user estimators (:func:`gradstat.estimators.user.full_layout`). Draw ``i``
    is the one :func:`sample_gradients` makes with the same seed, whatever the block size.
    """
    sampler = make_sampler(problem, spec, options, seed, max_states)
    B, n = problem.n_examples, sampler.width
    N = noise_size(spec, problem, options)
    per_block = max(1, BLOCK_VALUES // max(1, B * max(N, n)))
    if isinstance(spec, PythonEstimator):
        per_block = -(-per_block // PYTHON_CHUNK) * PYTHON_CHUNK
    done = 0
    while done < n_samples:
        m = min(per_block, n_samples - done)
        block = np.empty((m, B * n))
        sampler.fill(block, first=done, per_example=True)
        done += m
        yield block.reshape(m, B, n)


def sample_gradients(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    n_samples: int,
    *,
    seed: int | np.random.SeedSequence | None,
    max_states: int = DEFAULT_MAX_STATES,
    **options: Any,
) -> np.ndarray:
    """Independent batch estimates of the gradient by Monte Carlo.

    Each draw samples fresh noise for every example and returns the batch estimate, the
    mean over the ``B`` examples of the per-example estimates (SPEC section 2).

    Parameters
    ----------
    net, x, t
        Network, one example ``(n_in,)`` or a batch ``(B, n_in)``, and targets.
    estimator : str or user estimator
        A registered name, a :func:`gradstat.per_state_estimator` or a callable
        ``f(net, x, t, rng, **options)``.
    n_samples : int
        Number of independent draws (>= 2).
    seed : int, SeedSequence or None
        The draws are a function of the seed alone, bit for bit, whatever the number of
        threads: draw ``n`` reads its own Philox stream (see the module docstring).
        ``None`` uses fresh entropy.
    max_states : int
        Only for the oracle baselines ``"mean"`` and ``"optimal"`` of ``reinforce``,
        which are computed exactly by enumeration.
    **options
        Estimator options.

    Returns
    -------
    ndarray, shape (n_samples, n_params)
    """
    spec, opts = resolve_estimator(estimator, options)
    n = check_n_samples(n_samples)
    ss = check_seed(seed)
    problem = make_problem(net, x, t)
    sampler = make_sampler(problem, spec, opts, ss, max_states)
    out = np.empty((n, net.n_params))
    sampler.fill(out)
    return out


def estimate_from_noise(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    u: Any,
    *,
    max_states: int = DEFAULT_MAX_STATES,
    **options: Any,
) -> np.ndarray:
    """The estimate for one given noise draw: a deterministic function of ``u``.

    Unit ``k`` (layer 1 first) fires when ``u[k] < P(fire)`` (``p``, or ``sqrt(p)`` for
    ``sts``), so ``u`` pins down the sampled state. Useful to check an estimator sample by
    sample against a hand-derived value. Estimators that draw more than one number per
    unit read them in the order their docstrings give: ``reinforce_loo`` takes ``k N``
    uniforms (draw ``j`` is ``u[j N:(j+1) N]``), ``arm``/``disarm`` take ``N`` plus, for each
    layer ``t < L``, one per unit above it, ``rebar`` takes ``2N`` (``u`` then ``v``),
    ``gumbel_st``/``concrete`` read ``u`` as logistic noise ``log u - log1p(-u)`` (so ``u``
    must lie strictly inside ``(0, 1)``), and ``noisy_rectifier`` takes ``N`` standard
    normals.

    Parameters
    ----------
    u : array_like, shape (M,) for one example or (B, M) for a batch
        The draw's noise, ``M`` numbers per example (``M = N`` for most estimators).

    Returns
    -------
    ndarray, shape (n_params,)
        The batch estimate (mean over examples).
    """
    spec, opts = resolve_estimator(estimator, options)
    if isinstance(spec, PythonEstimator):
        raise TypeError(
            "estimate_from_noise needs a registered estimator or a per_state_estimator; a "
            "plain Python estimator draws its own noise from rng"
        )
    problem = make_problem(net, x, t)
    check_values(spec, net)
    B, N = problem.n_examples, noise_size(spec, problem, opts)
    U = np.asarray(u, dtype=np.float64)
    if U.shape == (N,) and B == 1:
        U = U[None, :]
    if U.shape != (B, N):
        raise ValueError(f"u must have shape ({N},) for one example or ({B}, {N}), got {U.shape}")
    if isinstance(spec, Estimator) and spec.normal_noise:
        if not np.all(np.isfinite(U)):
            raise ValueError("u must hold finite standard-normal draws")
    elif isinstance(spec, Estimator) and spec.noise == "continuous":
        if not np.all((U > 0.0) & (U < 1.0)):
            raise ValueError(
                f"u must hold uniforms strictly inside (0, 1) for {spec.name!r} (its logistic "
                "noise log u - log1p(-u) is infinite at 0 and 1)"
            )
    elif not np.all((U >= 0.0) & (U <= 1.0)):
        raise ValueError("u must hold uniforms in [0, 1]")
    unused = np.random.SeedSequence(0)  # the noise is given: no stream is read
    out = np.empty((1, net.n_params))
    make_sampler(problem, spec, opts, unused, max_states).fill(
        out, noise=np.ascontiguousarray(U[None])
    )
    return out[0]


def sample_noise(
    net: BinaryNetwork,
    estimator: str,
    rng: np.random.Generator,
    *,
    n_examples: int = 1,
    **options: Any,
) -> np.ndarray:
    """Fresh noise for :func:`estimate_from_noise`: shape ``(n_examples, M)``.

    ``M`` numbers per example, of the kind ``estimator`` reads (uniforms strictly inside
    ``(0, 1)``, or standard normals for ``noisy_rectifier``); see
    :func:`estimate_from_noise` for the layout.
    """
    spec, opts = resolve_estimator(estimator, options)
    if isinstance(spec, PythonEstimator):
        raise TypeError("a plain Python estimator draws its own noise from rng")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if (
        isinstance(n_examples, bool)
        or not isinstance(n_examples, (int, np.integer))
        or n_examples < 1
    ):
        raise ValueError(f"n_examples must be an int >= 1, got {n_examples!r}")
    if isinstance(spec, Estimator):
        size = spec.noise_size(net.hidden_sizes, opts)
    else:
        size = net.n_stochastic
    return draw_noise(spec, rng, (1, int(n_examples), size))[0]


@dataclass(frozen=True, eq=False)
class ForwardPass:
    """One sampled state of a network on one example (see :func:`forward_pass`).

    Attributes
    ----------
    a, p, h : ndarray (N,)
        Pre-activations, ``p = sigmoid(a)`` and unit values, layer 1 first.
    y : ndarray (n_out,)
        Output.
    loss : float
        ``C(y, t)``.
    dloss_dy : ndarray (n_out,)
        ``dC/dy``.
    log_prob : float
        ``log P(h | x)``.
    """

    a: np.ndarray
    p: np.ndarray
    h: np.ndarray
    y: np.ndarray
    loss: float
    dloss_dy: np.ndarray
    log_prob: float


def forward_pass(net: BinaryNetwork, x: Any, t: Any, u: Any) -> ForwardPass:
    """Sample the state drawn by uniforms ``u`` (unit ``k`` fires when ``u[k] < p[k]``).

    A building block for Python estimators: the same jitted forward pass the engine
    uses, for one example ``x`` of shape ``(n_in,)``.
    """
    problem = make_problem(net, x, t)
    if problem.n_examples != 1:
        raise ValueError("forward_pass takes one example: x of shape (n_in,)")
    N = net.n_stochastic
    U = np.asarray(u, dtype=np.float64)
    if U.shape != (N,) or not np.all((U >= 0.0) & (U <= 1.0)):
        raise ValueError(f"u must hold {N} uniforms in [0, 1], got shape {U.shape}")
    woff, boff, uoff = offsets(problem.sizes)
    a, p, bit, h = (np.empty(N) for _ in range(4))
    y, dy = np.empty(net.n_out), np.empty(net.n_out)
    tab = layer1_table(problem.A1, problem.mode)[0]
    log_prob = forward_state(
        problem.theta, problem.sizes, woff, boff, uoff, tab, 0, U, problem.mode, a, p, bit, h, y
    )
    loss = loss_and_grad(problem.loss_code, y, problem.T[0], dy)
    return ForwardPass(a, p, h, y, float(loss), dy, float(log_prob))
