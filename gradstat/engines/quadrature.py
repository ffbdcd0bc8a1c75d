"""Exact mean and variance of Gumbel straight-through and Gumbel-Rao: states and quadrature.

Given the sampled bits ``h``, each unit's slope ``J_k`` depends only on its own logistic
noise conditioned on its bit, independently across units, and the estimate is a
backpropagation in which every product holds at most one slope per layer. Hence, per state:

* ``E[g_hat | h]`` is the backpropagation with the conditional mean slopes ``m_k``;
* with ``delta_l = dC/dh_l`` backpropagated through the layers above ``l``, the second
  moments ``S_l = E[delta_l delta_l^T | h]`` follow from ``S_L = outer(W_o^T dC/dy)`` and
  ``S_{l-1} = W_l^T ((m m^T + diag(v)) * S_l) W_l`` (``v_k`` the conditional variance of
  ``J_k``; the slopes of layer ``l`` are independent of ``delta_l``), and
  ``E[g_hat(b_l)_j^2 | h] = (m_j^2 + v_j) S_l[j, j]``, times ``h_{l-1,i}^2`` for ``W_l``.

Summing ``P(h)`` times these over the ``2^N`` states gives the exact mean and variance; the
per-unit ``m_k``, ``v_k`` are one-dimensional integrals
(:func:`gradstat.estimators.gumbel_rao.conditional_surrogate`). Sign agreement and
descent probabilities are not sums of conditional moments and are left NaN.
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat.estimators.gumbel_rao import conditional_surrogate
from gradstat.kernels.forward import backprop_surrogate, forward_loss, transposed_product
from gradstat.kernels.geometry import Batch, Geometry, example
from gradstat.kernels.workspace import UNIT2, WORK, WS_ROWS, state_rows


@njit(cache=True)
def _second_moments(
    ex_theta: np.ndarray, geo: Geometry, h: np.ndarray, dy: np.ndarray, jac: np.ndarray,
    var: np.ndarray, e: np.ndarray, S: np.ndarray, T: np.ndarray, cv: np.ndarray,
) -> None:  # fmt: skip
    """``E[g_hat^2 | h] - E[g_hat | h]^2`` per compressed coordinate into ``cv`` (zero on the
    output layer), from the conditional mean estimate ``e`` (slopes ``jac``) and the
    conditional slope variances ``var``."""
    sizes, woff, boff, uoff = geo
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    for q in range(cv.shape[0]):
        cv[q] = 0.0
    top = sizes[L]
    transposed_product(ex_theta, woff[L], sizes[L + 1], top, dy, T[0])
    for i in range(top):
        for j in range(top):
            S[i, j] = T[0, i] * T[0, j]
    for l in range(L - 1, -1, -1):
        n = sizes[l + 1]
        base = uoff[l]
        for j in range(n):
            m = jac[base + j]
            c = (m * m + var[base + j]) * S[j, j] - e[boff[l] - s0 + j] ** 2
            cv[boff[l] - s0 + j] = c
            if l > 0:
                n_prev = sizes[l]
                row = woff[l] - s0 + j * n_prev
                for i in range(n_prev):
                    cv[row + i] = c * h[uoff[l - 1] + i] ** 2
        if l == 0:
            break
        n_prev = sizes[l]
        # T = ((m m^T + diag v) * S) W_l, then S = W_l^T T.
        for j in range(n):
            for i in range(n_prev):
                total = 0.0
                for jj in range(n):
                    M = jac[base + j] * jac[base + jj]
                    if jj == j:
                        M += var[base + j]
                    total += M * S[j, jj] * ex_theta[woff[l] + jj * n_prev + i]
                T[j, i] = total
        for i in range(n_prev):
            for ii in range(n_prev):
                total = 0.0
                for j in range(n):
                    total += ex_theta[woff[l] + j * n_prev + i] * T[j, ii]
                S[i, ii] = total


@njit(parallel=True, cache=True)
def quadrature_kernel(
    batch: Batch, geo: Geometry, code: int, opts: np.ndarray, G: np.ndarray, cols: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per example, ``E[d]`` and ``E[d^2]`` with ``d = g_hat - g`` (compressed layout) for
    estimator ``code`` over all ``2^N`` states, each state's conditional moments exact up
    to the per-unit quadrature. Examples run in parallel, each summed in state order."""
    B, n = G.shape
    sizes, uoff = geo.sizes, geo.uoff
    N = uoff[sizes.shape[0] - 2]
    width = 1
    for l in range(1, sizes.shape[0] - 1):
        width = max(width, sizes[l])
    mean = np.zeros((B, n))
    second = np.zeros((B, n))
    no_u = np.empty(0)
    for b in prange(B):
        ex = example(batch, geo, b)
        ws = np.empty((WS_ROWS, cols))
        a, p, bit, h, jac, y, dy, _, _ = state_rows(ws, geo)
        var = ws[UNIT2, :N]
        e = np.empty(n)
        cv = np.empty(n)
        S = np.empty((width, width))
        T = np.empty((width, width))
        kappa = 1.0 - ex.tab1[6, 0]
        for state in range(np.int64(1) << N):
            logp, _ = forward_loss(ex, state, no_u, a, p, bit, h, y, dy)
            w = exp(logp)
            for k in range(N):
                jac[k], var[k] = conditional_surrogate(code, opts, a[k], bit[k], kappa)
            backprop_surrogate(ex.theta, geo.sizes, geo.woff, geo.boff, uoff, h, dy, jac,
                               ws[WORK : WORK + 2], e)  # fmt: skip
            _second_moments(ex.theta, geo, h, dy, jac, var, e, S, T, cv)
            for q in range(n):
                d = e[q] - G[b, q]
                mean[b, q] += w * d
                second[b, q] += w * (d * d + cv[q])
    return mean, second
