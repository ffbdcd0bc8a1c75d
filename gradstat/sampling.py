"""Monte Carlo draws of gradient estimates.

Uniforms ``u`` come from ``numpy.random.default_rng(seed)`` in a fixed order (sample,
example, unit); a unit fires when ``u < P(fire)``. The jitted kernel splits the samples of
each block into fixed chunks with no shared state, so the draws depend on the seed only,
not on the number of threads or the block size.
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
from gradstat.forward import forward_state, layer1_table, loss_and_grad, offsets, state_buffers
from gradstat.layout import DEFAULT_MAX_STATES, Problem, make_problem, threads_for
from gradstat.network import BinaryNetwork

BLOCK_VALUES = 2**22
"""Uniforms generated per block (bounds memory; does not change the draws)."""


@njit(parallel=True, cache=True)
def _sample_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    code: int,
    mode: int,
    opts: np.ndarray,
    baselines: np.ndarray,
    U: np.ndarray,
    cols: int,
    out: np.ndarray,
) -> None:
    """Fill ``out[i, b]`` (compressed) with the estimate for noise ``U[i, b]`` on example ``b``."""
    woff, boff, uoff = offsets(sizes)
    m = U.shape[0]
    B = U.shape[1]
    nc = m if m < 64 else 64
    for c in prange(nc):
        ws = np.empty((WS_ROWS, cols))
        for i in range(c * m // nc, (c + 1) * m // nc):
            for b in range(B):
                draw_estimate(
                    code, opts, theta, sizes, woff, boff, uoff, L1[b], T[b], loss, mode, 0,
                    U[i, b], baselines[b], ws, out[i, b],
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


@cache
def user_sample_kernel(fn: Any) -> Any:
    """The sampling kernel for a user's jitted per-state function (full layout)."""

    @njit(parallel=True)
    def kernel(theta, sizes, X, L1, T, loss, mode, U, out):  # noqa: ANN001, ANN202
        woff, boff, uoff = offsets(sizes)
        n_units = uoff[uoff.shape[0] - 1]
        n_out = sizes[sizes.shape[0] - 1]
        m = U.shape[0]
        B = U.shape[1]
        nc = m if m < 64 else 64
        for c in prange(nc):
            a, p, bit, h, y, dy = state_buffers(n_units, n_out)
            for i in range(c * m // nc, (c + 1) * m // nc):
                for b in range(B):
                    forward_state(
                        theta, sizes, woff, boff, uoff, L1[b], 0, U[i, b], mode, a, p, bit,
                        h, y,
                    )  # fmt: skip
                    C = loss_and_grad(loss, y, T[b], dy)
                    out[i, b, :] = 0.0
                    fn(theta, sizes, X[b], T[b], U[i, b], a, p, h, y, dy, C, out[i, b])

    return kernel


def _python_block(
    problem: Problem,
    spec: PythonEstimator,
    options: dict[str, Any],
    m: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws of a plain Python estimator: ``f(net, x, t, rng, **options)`` per example."""
    net, B = problem.net, problem.n_examples
    targets = [int(t[0]) if net.loss == "xent" else t.copy() for t in problem.T]
    out = np.empty((m, B, net.n_params))
    for i in range(m):
        for b in range(B):
            value = np.asarray(spec.function(net, problem.X[b].copy(), targets[b], rng, **options))
            if value.shape != (net.n_params,):
                raise ValueError(
                    f"estimator {spec.name!r} returned shape {value.shape}; it must return one "
                    f"estimate of shape ({net.n_params},) per call"
                )
            out[i, b] = value
    if not np.all(np.isfinite(out)):
        raise ValueError(f"estimator {spec.name!r} returned NaN or infinite values")
    return out


def _kernel_block(
    problem: Problem,
    spec: AnyEstimator,
    options: dict[str, Any],
    opts: np.ndarray,
    baselines: np.ndarray,
    U: np.ndarray,
) -> np.ndarray:
    """Per-example estimates ``(m, B, n)`` for the noise ``U (m, B, noise size)``."""
    m, B, _ = U.shape
    n = problem.net.n_params if full_layout(spec) else problem.n_compressed
    out = np.empty((m, B, n))
    args = (problem.theta, problem.sizes)
    mode = unit_mode(problem, spec)
    L1 = layer1_table(problem.A1, mode)
    with threads_for(m * B * n):
        if isinstance(spec, Estimator):
            cols = workspace_for(problem, spec, options)
            _sample_kernel(
                *args, L1, problem.T, problem.loss_code, spec.code, mode, opts, baselines, U,
                cols, out,
            )  # fmt: skip
        else:
            kernel = user_sample_kernel(spec.function)
            kernel(*args, problem.X, L1, problem.T, problem.loss_code, mode, U, out)
    return out


def noise_size(spec: AnyEstimator, problem: Problem, options: dict[str, Any]) -> int:
    """Numbers drawn per example and draw: uniforms (or normals for the noisy rectifier)."""
    if isinstance(spec, Estimator):
        return spec.noise_size(problem.net.hidden_sizes, options)
    return problem.net.n_stochastic


def draw_noise(
    spec: AnyEstimator, rng: np.random.Generator, shape: tuple[int, int, int]
) -> np.ndarray:
    """Noise of the given shape: standard normals, or uniforms strictly inside ``(0, 1)``.

    ``Generator.random`` returns ``[0, 1)``; an exact 0 (probability ``2^-53`` per draw) is
    replaced by ``2^-54`` so that logistic noise ``log u - log1p(-u)`` stays finite.
    """
    if isinstance(spec, Estimator) and spec.normal_noise:
        return rng.standard_normal(shape)
    U = rng.random(shape)
    U[U == 0.0] = 2.0**-54
    return U


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
    layout) for user estimators (:func:`gradstat.estimators.user.full_layout`).
    """
    check_values(spec, problem.net)
    opts, baselines = kernel_options(spec, options, problem, max_states)
    rng = np.random.default_rng(seed)
    B, P = problem.n_examples, problem.net.n_params
    N = noise_size(spec, problem, options)
    per_block = max(1, BLOCK_VALUES // max(1, B * max(N, P)))
    done = 0
    while done < n_samples:
        m = min(per_block, n_samples - done)
        done += m
        if isinstance(spec, PythonEstimator):
            yield _python_block(problem, spec, options, m, rng)
        else:
            U = draw_noise(spec, rng, (m, B, N))
            yield _kernel_block(problem, spec, options, opts, baselines, U)


def batch_estimates(problem: Problem, block: np.ndarray, full: bool = False) -> np.ndarray:
    """Full-layout batch estimates ``(m, n_params)`` from a block of per-example estimates."""
    m, B, _ = block.shape
    if full:
        return block.sum(axis=1) / B
    n_in, n1 = problem.net.sizes[0], problem.net.sizes[1]
    w1 = np.einsum("mbi,bj->mij", block[:, :, :n1], problem.X).reshape(m, n1 * n_in)
    return np.concatenate([w1, block.sum(axis=1)], axis=1) / B


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
    estimator : str
        A registered name.
    n_samples : int
        Number of independent draws (>= 2).
    seed : int, SeedSequence or None
        The draws are a function of the seed alone (any thread count). ``None`` uses
        fresh entropy.
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
    full = full_layout(spec)
    blocks = [
        batch_estimates(problem, blk, full)
        for blk in draw_blocks(problem, spec, opts, n, ss, max_states)
    ]
    return np.concatenate(blocks, axis=0)


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
    opts_arr, baselines = kernel_options(spec, opts, problem, max_states)
    U = np.ascontiguousarray(U[None])
    block = _kernel_block(problem, spec, opts, opts_arr, baselines, U)
    return batch_estimates(problem, block, full_layout(spec))[0]


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
