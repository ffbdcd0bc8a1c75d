"""Exact moments of any discrete-noise estimator by joint enumeration of its noise states.

``E[g_hat] = sum_s P(s) g_hat(s)`` and ``Var[g_hat_j] = sum_s P(s) (g_hat_j(s) - E g_hat_j)^2``
over all noise states ``s`` (``2^N``, or ``2^(N k)`` for ``k`` draws), per example, in
fixed chunks with private accumulators (:mod:`gradstat.kernels.accumulate`). Variances are
sums of squares about the estimate at the greedy state (:func:`greedy_shift`), so a nearly
deterministic estimate keeps its tiny variance.
"""

from __future__ import annotations

from functools import cache
from math import exp
from typing import Any

import numpy as np
from numba import njit, prange

from gradstat.estimators.dispatch import draw_estimate
from gradstat.kernels.accumulate import (
    accumulate,
    call_reduce_chunks,
    new_accumulators,
    reduce_chunks,
)
from gradstat.kernels.blocks import CHUNKS, n_chunks
from gradstat.kernels.forward import forward_state, loss_and_grad, state_buffers
from gradstat.kernels.geometry import Batch, Geometry, example
from gradstat.kernels.linking import PRANGE_ONLY, outlined
from gradstat.kernels.workspace import WS_ROWS


@njit(cache=True)
def _state_chunks(n_bits: int, want_cov: bool) -> tuple[int, int]:
    """The number ``2^n_bits`` of noise states and of the chunks they are summed in (fewer
    with the covariance, whose per-chunk accumulators are ``n x n``)."""
    S = np.int64(1) << n_bits
    return S, n_chunks(S, CHUNKS // 4 if want_cov else CHUNKS)


@njit(cache=True)
def greedy_shift(
    batch: Batch, geo: Geometry, code: int, n_bits: int, opts: np.ndarray,
    baselines: np.ndarray, n: int, cols: int,
) -> np.ndarray:  # fmt: skip
    """Per example, the estimate of ``code`` at the greedy noise state (every unit at its
    likelier value given the units below; each of ``k`` draws alike): the shift about which
    the variance is summed (:func:`gradstat.kernels.accumulate.accumulate`). It is a value
    the estimate takes, and the value of a nearly deterministic one."""
    B = batch.L1.shape[0]
    shift = np.empty((B, n))
    half = np.full(n_bits, 0.5)
    ws = np.empty((WS_ROWS, cols))
    for b in range(B):
        draw_estimate(code, opts, example(batch, geo, b), 0, half, baselines[b], ws, shift[b])
    return shift


@njit(cache=True)
def _moments_chunk(
    batch: Batch, geo: Geometry, code: int, opts: np.ndarray, baselines: np.ndarray,
    G: np.ndarray, DW: np.ndarray, seg: np.ndarray, cols: int, b: int, lo: int, stop: int,
    shift: np.ndarray, m: np.ndarray, s1: np.ndarray, m2: np.ndarray, sign: np.ndarray,
    desc: np.ndarray, cov: np.ndarray,
) -> None:  # fmt: skip
    """States ``lo`` to ``stop`` of example ``b`` for :func:`moments_kernel`, added to the
    chunk's accumulators ``m, s1, m2, sign, desc, cov``. A serial function called through
    its one compiled copy (:func:`gradstat.kernels.linking.outlined`), so that numba's
    parallel passes see only the kernel's short loop over chunks.
    """
    n = G.shape[1]
    n_seg = seg.shape[0] - 1
    no_u = np.empty(0)
    ex = example(batch, geo, b)
    ws = np.empty((WS_ROWS, cols))
    e = np.empty(n)
    d = np.empty(n)
    dots = np.empty(n_seg)
    for state in range(lo, stop):
        logp = draw_estimate(code, opts, ex, state, no_u, baselines[b], ws, e)
        accumulate(exp(logp), e, G[b], shift, DW[b], seg, m, s1, m2, sign, desc, d, dots, cov)


_call_chunk = outlined(f"{__name__}:_moments_chunk")


@njit(parallel=PRANGE_ONLY, cache=True)
def moments_kernel(
    batch: Batch, geo: Geometry, code: int, n_bits: int, opts: np.ndarray,
    baselines: np.ndarray, G: np.ndarray, DW: np.ndarray, seg: np.ndarray, want_cov: bool,
    cols: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Exact moments of built-in estimator ``code``, per example, in the compressed layout.

    Sums over the ``2^n_bits`` noise states (``n_bits = N``, or ``N k`` for ``k`` draws),
    running :func:`draw_estimate` per state (:func:`gradstat.engines.moments.moments_pass`
    takes :func:`gradstat.engines.factored.factored_moments_kernel` instead for the
    estimators that factorise per unit). Returns
    ``E[g_hat - g]``, ``Var[g_hat]``, ``P(sign g_hat_j = sign g_j)``, descent
    probabilities (see :func:`gradstat.kernels.accumulate.accumulate`) and (``want_cov``)
    ``sum_x Cov_x``; the variances are centred sums (:func:`greedy_shift`,
    :func:`gradstat.kernels.accumulate.reduce_chunks`).
    """
    B, n = G.shape
    n_seg = seg.shape[0] - 1
    shift = greedy_shift(batch, geo, code, n_bits, opts, baselines, n, cols)
    S, nc = _state_chunks(n_bits, want_cov)
    acc_m, acc_s1, acc_m2, acc_sign, acc_desc, acc_cov = new_accumulators(B, nc, n, n_seg, want_cov)
    for b in range(B):
        for c in prange(nc):
            _call_chunk(
                batch, geo, code, opts, baselines, G, DW, seg, cols, b, c * S // nc,
                (c + 1) * S // nc, shift[b], acc_m[b, c], acc_s1[b, c], acc_m2[b, c],
                acc_sign[b, c], acc_desc[b, c], acc_cov[c],
            )  # fmt: skip
    return call_reduce_chunks((acc_m, acc_s1, acc_m2, acc_sign, acc_desc, acc_cov))


@cache
def user_moments_kernel(fn: Any) -> Any:
    """The enumeration kernel for a user's jitted per-state function (full layout).

    Compiled once per function and process (a kernel that calls a user function cannot be
    cached on disk); it shares the forward pass and :func:`gradstat.kernels.accumulate.accumulate`
    with the built-in kernel, so only the estimate differs.
    """

    @njit(parallel=PRANGE_ONLY)
    def kernel(batch, geo, G, DW, seg, want_cov):  # noqa: ANN001, ANN202
        # Arrays are taken out of the tuples outside the loops over states: reading a tuple's
        # array costs a reference count update.
        theta, L1, X, T, loss, mode = batch
        sizes, woff, boff, uoff = geo
        n_units = uoff[sizes.shape[0] - 2]
        B, n = G.shape
        n_out = sizes[sizes.shape[0] - 1]
        n_seg = seg.shape[0] - 1
        S, nc = _state_chunks(n_units, want_cov)
        acc = new_accumulators(B, nc, n, n_seg, want_cov)
        acc_m, acc_s1, acc_m2, acc_sign, acc_desc, acc_cov = acc
        no_u = np.empty(0)
        half = np.full(n_units, 0.5)
        shift = np.zeros((B, n))
        for b in range(B):
            # The estimate at the greedy state: the shift of the variance sums.
            ga, gp, gbit, gh, gy, gdy = state_buffers(n_units, n_out)
            forward_state(
                theta, sizes, woff, boff, uoff, L1[b], np.int64(0), half, mode, ga, gp, gbit, gh, gy
            )
            gC = loss_and_grad(loss, gy, T[b], gdy)
            fn(theta, sizes, X[b], T[b], no_u, ga, gp, gh, gy, gdy, gC, shift[b])
            for c in prange(nc):
                a, p, bit, h, y, dy = state_buffers(n_units, n_out)
                e = np.empty(n)
                d = np.empty(n)
                dots = np.empty(n_seg)
                for state in range(c * S // nc, (c + 1) * S // nc):
                    logp = forward_state(
                        theta, sizes, woff, boff, uoff, L1[b], state, no_u, mode, a, p, bit,
                        h, y,
                    )  # fmt: skip
                    C = loss_and_grad(loss, y, T[b], dy)
                    e[:] = 0.0
                    fn(theta, sizes, X[b], T[b], no_u, a, p, h, y, dy, C, e)
                    accumulate(
                        exp(logp), e, G[b], shift[b], DW[b], seg, acc_m[b, c], acc_s1[b, c],
                        acc_m2[b, c], acc_sign[b, c], acc_desc[b, c], d, dots, acc_cov[c],
                    )  # fmt: skip
        return reduce_chunks(acc)

    return kernel
