"""Monte Carlo draws of gradient estimates.

Uniforms ``u`` come from ``numpy.random.default_rng(seed)`` in a fixed order (sample,
example, unit); a unit fires when ``u < P(fire)``. The jitted kernel splits the samples of
each block into fixed chunks with no shared state, so the draws depend on the seed only,
not on the number of threads or the block size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numba import njit, prange

from gradstat.estimators import Estimator, get_estimator
from gradstat.estimators.per_state import estimate_state
from gradstat.exact import kernel_options
from gradstat.forward import forward_state, loss_and_grad, offsets
from gradstat.layout import DEFAULT_MAX_STATES, Problem, make_problem, threads_for
from gradstat.network import BinaryNetwork

BLOCK_VALUES = 2**22
"""Uniforms generated per block (bounds memory; does not change the draws)."""


@njit(parallel=True, cache=True)
def _sample_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    A1: np.ndarray,
    T: np.ndarray,
    loss: int,
    code: int,
    smooth: bool,
    opts: np.ndarray,
    baselines: np.ndarray,
    U: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill ``out[i, b]`` (compressed) with the estimate for noise ``U[i, b]`` on example ``b``."""
    woff, boff, uoff = offsets(sizes)
    n_units = uoff[uoff.shape[0] - 1]
    n_out = sizes[sizes.shape[0] - 1]
    width = 1
    for l in range(1, sizes.shape[0] - 1):
        if sizes[l] > width:
            width = sizes[l]
    m = U.shape[0]
    B = U.shape[1]
    nc = m if m < 64 else 64
    for c in prange(nc):
        a = np.empty(n_units)
        p = np.empty(n_units)
        bit = np.empty(n_units)
        h = np.empty(n_units)
        jac = np.empty(n_units)
        y = np.empty(n_out)
        dy = np.empty(n_out)
        work = np.empty((2, width))
        for i in range(c * m // nc, (c + 1) * m // nc):
            for b in range(B):
                forward_state(
                    theta, sizes, woff, boff, uoff, A1[b], 0, U[i, b], smooth, a, p, bit, h, y
                )
                C = loss_and_grad(loss, y, T[b], dy)
                estimate_state(
                    code, opts, theta, sizes, woff, boff, uoff, a, p, bit, h, dy, C,
                    baselines[b], jac, work, out[i, b],
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


def draw_blocks(
    problem: Problem,
    spec: Estimator,
    options: dict[str, Any],
    n_samples: int,
    seed: np.random.SeedSequence,
    max_states: int = DEFAULT_MAX_STATES,
) -> Iterator[np.ndarray]:
    """Yield blocks ``(m, B, n_compressed)`` of per-example estimates, ``n_samples`` in all."""
    opts, baselines = kernel_options(spec, options, problem, max_states)
    rng = np.random.default_rng(seed)
    B, N, Pc = problem.n_examples, problem.net.n_stochastic, problem.n_compressed
    per_block = max(1, BLOCK_VALUES // max(1, B * max(N, Pc)))
    done = 0
    while done < n_samples:
        m = min(per_block, n_samples - done)
        U = rng.random((m, B, N))
        out = np.empty((m, B, Pc))
        with threads_for(m * B * Pc):
            _sample_kernel(
                problem.theta, problem.sizes, problem.A1, problem.T, problem.loss_code,
                spec.code, spec.smooth, opts, baselines, U, out,
            )  # fmt: skip
        done += m
        yield out


def batch_estimates(problem: Problem, block: np.ndarray) -> np.ndarray:
    """Full-layout batch estimates ``(m, n_params)`` from a block of per-example estimates."""
    n_in, n1 = problem.net.sizes[0], problem.net.sizes[1]
    m, B, _ = block.shape
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
    spec = get_estimator(estimator)
    opts = spec.resolve_options(options)
    n = check_n_samples(n_samples)
    ss = check_seed(seed)
    problem = make_problem(net, x, t)
    blocks = [
        batch_estimates(problem, blk) for blk in draw_blocks(problem, spec, opts, n, ss, max_states)
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
    sample against a hand-derived value.

    Parameters
    ----------
    u : array_like, shape (N,) for one example or (B, N) for a batch
        Uniforms in ``[0, 1]``.

    Returns
    -------
    ndarray, shape (n_params,)
        The batch estimate (mean over examples).
    """
    spec = get_estimator(estimator)
    opts = spec.resolve_options(options)
    problem = make_problem(net, x, t)
    B, N = problem.n_examples, net.n_stochastic
    U = np.asarray(u, dtype=np.float64)
    if U.shape == (N,) and B == 1:
        U = U[None, :]
    if U.shape != (B, N):
        raise ValueError(f"u must have shape ({N},) for one example or ({B}, {N}), got {U.shape}")
    if not np.all((U >= 0.0) & (U <= 1.0)):
        raise ValueError("u must hold uniforms in [0, 1]")
    opts_arr, baselines = kernel_options(spec, opts, problem, max_states)
    out = np.empty((1, B, problem.n_compressed))
    with threads_for(0):
        _sample_kernel(
        problem.theta, problem.sizes, problem.A1, problem.T, problem.loss_code,
            spec.code, spec.smooth, opts_arr, baselines, np.ascontiguousarray(U[None]), out,
        )  # fmt: skip
    return batch_estimates(problem, out)[0]
