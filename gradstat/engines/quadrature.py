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
(:func:`gradstat.estimators.gumbel_rao.conditional_surrogate`).

Sign agreement and descent probabilities are exact where the bits fix the sign. Given ``h``,
each estimate (and each scope's ``<g_hat, g>``) is a polynomial in the slopes, which are
positive, with one monomial per path from a unit up to the top stochastic layer and distinct
monomials for distinct paths; its coefficients are known given ``h``. When they all share
one sign (or vanish), the sign of the estimate is that sign whatever the slopes: always on
the output layer and the top stochastic layer (their estimates are linear in one slope),
and below wherever the weights along the paths agree. When a state of positive probability
has coefficients of both signs, the probability needs the joint law of several slopes (an
integral over as many noises as the monomials' units, not one per unit), and that
coordinate's sign agreement, or that scope's descent probability, is NaN.
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat.estimators.gumbel_rao import conditional_surrogate
from gradstat.kernels.accumulate import clip_probabilities, sign_of
from gradstat.kernels.forward import backprop_surrogate, forward_loss, transposed_product
from gradstat.kernels.geometry import Batch, Geometry, example
from gradstat.kernels.linking import PRANGE_ONLY, outlined
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


@njit(cache=True)
def _split(c: float, pos: float, neg: float) -> tuple[float, float]:
    """The positive and negative coefficient mass of ``c`` times a polynomial whose
    coefficients split into ``pos`` and ``neg``."""
    if c > 0.0:
        return c * pos, c * neg
    if c < 0.0:
        return -c * neg, -c * pos
    return 0.0, 0.0


@njit(cache=True)
def _fixed_sign(pos: float, neg: float) -> int:
    """The sign of a polynomial in positive variables with coefficient masses ``pos`` and
    ``neg``: 1, -1, 0, or 2 where both are positive (the sign is not fixed)."""
    if pos > 0.0:
        return 2 if neg > 0.0 else 1
    return -1 if neg > 0.0 else 0


@njit(cache=True)
def _sign_state(
    ex_theta: np.ndarray, geo: Geometry, h: np.ndarray, e: np.ndarray, g: np.ndarray,
    dw: np.ndarray, seg: np.ndarray, w: float, up: np.ndarray, sign: np.ndarray,
    desc: np.ndarray, sign_bad: np.ndarray, desc_bad: np.ndarray, top: np.ndarray,
) -> None:  # fmt: skip
    """Add state ``h``'s probability ``w`` to the sign and descent counts where the bits
    fix the sign, and flag the rest (see the module docstring).

    ``top`` holds ``W_o^T dC/dy``; ``up`` is scratch ``(4, width)`` or more: the positive and
    negative coefficient masses of ``dC/dh`` on the current layer, then the layer below.
    """
    sizes, woff, boff, uoff = geo
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    n_seg = seg.shape[0] - 1
    out = 0.0
    for q in range(seg[n_seg - 1], seg[n_seg]):
        out += e[q] * dw[q]
        if sign_of(e[q]) == sign_of(g[q]):
            sign[q] += w
    if out > 0.0:
        desc[n_seg - 1] += w
    pos_all, neg_all = 0.0, 0.0
    for j in range(sizes[L]):
        up[0, j], up[1, j] = _split(top[j], 1.0, 0.0)
    for l in range(L - 1, -1, -1):
        n = sizes[l + 1]
        n_prev = sizes[l]
        pos_l, neg_l = 0.0, 0.0
        for j in range(n):
            P, Nm = up[0, j], up[1, j]
            q = boff[l] - s0 + j
            c = dw[q]
            fixed = _fixed_sign(P, Nm)
            if fixed == 2:
                sign_bad[q] = True
            elif fixed == sign_of(g[q]):
                sign[q] += w
            if l > 0:
                for i in range(n_prev):
                    hv = h[uoff[l - 1] + i]
                    qw = woff[l] - s0 + j * n_prev + i
                    c += dw[qw] * hv
                    fw = _fixed_sign(*_split(hv, P, Nm))
                    if fw == 2:
                        sign_bad[qw] = True
                    elif fw == sign_of(g[qw]):
                        sign[qw] += w
            cp, cn = _split(c, P, Nm)
            pos_l += cp
            neg_l += cn
        fixed = _fixed_sign(pos_l, neg_l)
        if fixed == 2:
            desc_bad[l] = True
        elif fixed == 1:
            desc[l] += w
        pos_all += pos_l
        neg_all += neg_l
        if l > 0:
            for i in range(n_prev):
                P, Nm = 0.0, 0.0
                for j in range(n):
                    cp, cn = _split(ex_theta[woff[l] + j * n_prev + i], up[0, j], up[1, j])
                    P += cp
                    Nm += cn
                up[2, i], up[3, i] = P, Nm
            for i in range(n_prev):
                up[0, i], up[1, i] = up[2, i], up[3, i]
    for col, P, Nm in (
        (n_seg + 1, pos_all, neg_all),
        (n_seg, pos_all + max(out, 0.0), neg_all + max(-out, 0.0)),
    ):
        fixed = _fixed_sign(P, Nm)
        if fixed == 2:
            desc_bad[col] = True
        elif fixed == 1:
            desc[col] += w


@njit(cache=True)
def _quadrature_example(
    batch: Batch, geo: Geometry, code: int, opts: np.ndarray, G: np.ndarray, DW: np.ndarray,
    seg: np.ndarray, cols: int, b: int, width: int, mean: np.ndarray, second: np.ndarray,
    sign: np.ndarray, desc: np.ndarray, sign_bad: np.ndarray, desc_bad: np.ndarray,
) -> None:  # fmt: skip
    """Example ``b`` of :func:`quadrature_kernel`, added to its rows ``mean``, ``second``,
    ``sign``, ``desc``, ``sign_bad``, ``desc_bad``. A serial function called through its
    one compiled copy (:func:`gradstat.kernels.linking.outlined`), so that numba's
    parallel passes see only the kernel's short loop over examples.
    """
    n = G.shape[1]
    sizes, uoff = geo.sizes, geo.uoff
    N = uoff[sizes.shape[0] - 2]
    no_u = np.empty(0)
    ex = example(batch, geo, b)
    ws = np.empty((WS_ROWS, cols))
    a, p, bit, h, jac, y, dy, _, _ = state_rows(ws, geo)
    var = ws[UNIT2, :N]
    e = np.empty(n)
    cv = np.empty(n)
    S = np.empty((width, width))
    T = np.empty((width, width))
    up = np.empty((5, width))
    top = sizes.shape[0] - 2
    kappa = 1.0 - ex.tab1[6, 0]
    for state in range(np.int64(1) << N):
        logp, _ = forward_loss(ex, state, no_u, a, p, bit, h, y, dy)
        w = exp(logp)
        for k in range(N):
            jac[k], var[k] = conditional_surrogate(code, opts, a[k], bit[k], kappa)
        backprop_surrogate(ex.theta, geo.sizes, geo.woff, geo.boff, uoff, h, dy, jac,
                           ws[WORK : WORK + 2], e)  # fmt: skip
        _second_moments(ex.theta, geo, h, dy, jac, var, e, S, T, cv)
        if w > 0.0:
            transposed_product(ex.theta, geo.woff[top], sizes[top + 1], sizes[top], dy,
                               up[4])  # fmt: skip
            _sign_state(ex.theta, geo, h, e, G[b], DW[b], seg, w, up, sign, desc,
                        sign_bad, desc_bad, up[4])  # fmt: skip
        for q in range(n):
            d = e[q] - G[b, q]
            mean[q] += w * d
            second[q] += w * (d * d + cv[q])


_call_example = outlined(f"{__name__}:_quadrature_example")


@njit(parallel=PRANGE_ONLY, cache=True)
def quadrature_kernel(
    batch: Batch, geo: Geometry, code: int, opts: np.ndarray, G: np.ndarray, DW: np.ndarray,
    seg: np.ndarray, cols: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Per example, ``E[d]`` and ``E[d^2]`` with ``d = g_hat - g`` (compressed layout) for
    estimator ``code`` over all ``2^N`` states, each state's conditional moments exact up
    to the per-unit quadrature, and the sign and descent probabilities (descent weights
    ``DW``, segments ``seg``; NaN where the bits do not fix the sign). Examples run in
    parallel, each summed in state order."""
    B, n = G.shape
    sizes = geo.sizes
    width = 1
    for l in range(1, sizes.shape[0] - 1):
        width = max(width, sizes[l])
    mean = np.zeros((B, n))
    second = np.zeros((B, n))
    n_seg = seg.shape[0] - 1
    sign = np.zeros((B, n))
    desc = np.zeros((B, n_seg + 2))
    sign_bad = np.zeros((B, n), dtype=np.bool_)
    desc_bad = np.zeros((B, n_seg + 2), dtype=np.bool_)
    for b in prange(B):
        # np.int64: prange's index is signed when the kernel is typed and unsigned in its
        # parallel body; one type, one compiled worker.
        _call_example(
            batch, geo, code, opts, G, DW, seg, cols, np.int64(b), width, mean[b], second[b],
            sign[b], desc[b], sign_bad[b], desc_bad[b],
        )  # fmt: skip
    # State probabilities are rounded: clip sums of them to [0, 1].
    sign = clip_probabilities(sign)
    desc = clip_probabilities(desc)
    for b in range(B):
        for q in range(n):
            if sign_bad[b, q]:
                sign[b, q] = np.nan
        for k in range(n_seg + 2):
            if desc_bad[b, k]:
                desc[b, k] = np.nan
    return mean, second, sign, desc
