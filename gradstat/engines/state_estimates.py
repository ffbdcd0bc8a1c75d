"""Every noise state's estimate and probability, kept rather than summed.

The moment engines (:mod:`gradstat.engines.joint`) add each state into running sums; a
split of the covariance by the layer whose sampling causes it
(:mod:`gradstat.noise`) needs the conditional means ``E[g_hat | h_1..h_l]``, so this
kernel keeps the states themselves. It calls the same per-draw code
(:func:`gradstat.estimators.dispatch.draw_estimate`) as enumeration and sampling.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from gradstat.estimators.dispatch import draw_estimate
from gradstat.kernels.blocks import CHUNKS, n_chunks
from gradstat.kernels.geometry import Batch, Geometry, example
from gradstat.kernels.workspace import WS_ROWS


@njit(parallel=True, cache=True)
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
    nc = n_chunks(S, CHUNKS)
    no_u = np.empty(0)
    for b in range(B):
        for c in prange(nc):
            ex = example(batch, geo, b)
            ws = np.empty((WS_ROWS, cols))
            for state in range(c * S // nc, (c + 1) * S // nc):
                logp[b, state] = draw_estimate(
                    code, opts, ex, state, no_u, baselines[b], ws, out[b, state]
                )
