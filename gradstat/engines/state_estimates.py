"""Every noise state's estimate and probability, kept rather than summed.

The moment engines (:mod:`gradstat.engines.joint`) add each state into running sums; a
split of the covariance by the layer whose sampling causes it
(:mod:`gradstat.noise`) needs the conditional means ``E[g_hat | h_1..h_l]``, so this
kernel keeps the states themselves. It calls the same per-draw code
(:func:`gradstat.estimators.dispatch.draw_estimate`) as enumeration and sampling; a
user's jitted per-state function gets a kernel of its own (:func:`user_state_estimates`),
and an estimator written in PyTorch or JAX its blocks of states
(:func:`batched_state_estimates`), in the same order of states.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numba import njit, prange

from gradstat.engines.states import default_block, state_blocks
from gradstat.estimators.dispatch import draw_estimate
from gradstat.estimators.registry import EstimatorBase
from gradstat.kernels.blocks import CHUNKS, n_chunks
from gradstat.kernels.forward import forward_state, loss_and_grad, state_buffers
from gradstat.kernels.geometry import Batch, Geometry, example
from gradstat.kernels.linking import PRANGE_ONLY
from gradstat.kernels.workspace import WS_ROWS
from gradstat.problem import Problem


@njit(parallel=PRANGE_ONLY, cache=True)
def state_estimates_kernel(
    batch: Batch, geo: Geometry, code: int, n_bits: int, opts: np.ndarray,
    baselines: np.ndarray, cols: int, logp: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``logp[b, s]`` and ``out[b, s]`` (compressed layout) for every noise state.

    State ``s`` of example ``b`` is the integer whose bits are the ``n_bits`` noise bits
    (unit ``k`` of draw ``j`` is bit ``j N + k``), as in joint enumeration. Each state is
    written by exactly one thread, so the result does not depend on the thread count.
    """
    B = out.shape[0]
    S = np.int64(1) << n_bits
    nc = n_chunks(S, np.int64(CHUNKS))
    no_u = np.empty(0)
    for b in range(B):
        for c in prange(nc):
            ex = example(batch, geo, b)
            ws = np.empty((WS_ROWS, cols))
            for state in range(c * S // nc, (c + 1) * S // nc):
                logp[b, state] = draw_estimate(
                    code, opts, ex, state, no_u, baselines[b], ws, out[b, state]
                )


@cache
def user_state_estimates(fn: Any) -> Any:
    """The kernel of :func:`state_estimates_kernel` for a user's jitted per-state function
    ``fn`` (full layout, one example ``b``): ``kernel(batch, geo, b, logp, out)``.

    Compiled once per function and process (a kernel that calls a user function cannot be
    cached on disk), as :func:`gradstat.engines.joint.user_moments_kernel` is.
    """

    @njit(parallel=PRANGE_ONLY)
    def kernel(batch, geo, b, logp, out):  # noqa: ANN001, ANN202
        theta, L1, X, T, loss, mode = batch
        sizes, woff, boff, uoff = geo
        n_units = uoff[sizes.shape[0] - 2]
        S = out.shape[0]
        nc = n_chunks(S, np.int64(CHUNKS))
        no_u = np.empty(0)
        for c in prange(nc):
            a, p, bit, h, y, dy = state_buffers(n_units, sizes[sizes.shape[0] - 1])
            for s in range(c * S // nc, (c + 1) * S // nc):
                logp[s] = forward_state(theta, sizes, woff, boff, uoff, L1[b], s, no_u, mode,
                                        a, p, bit, h, y)  # fmt: skip
                out[s] = 0.0
                fn(theta, sizes, X[b], T[b], no_u, a, p, h, y, dy, loss_and_grad(loss, y, T[b], dy),
                   out[s])  # fmt: skip

    return kernel


def batched_state_estimates(
    problem: Problem, spec: EstimatorBase, b: int, logp: np.ndarray, out: np.ndarray
) -> None:
    """Fill ``logp`` and ``out`` (full layout) for every state of example ``b`` of a
    batched estimator, block by block (:func:`gradstat.engines.states.state_blocks`)."""
    for states in state_blocks(problem, b, spec.block_size or default_block(problem)):
        rows = slice(states.start, states.start + states.log_prob.shape[0])
        logp[rows] = states.log_prob
        out[rows] = spec.estimate_block(problem, b, states.uniforms)
