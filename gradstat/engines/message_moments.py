"""Exact means and variances of REINFORCE and the straight-through-type estimators by
messages over adjacent layers (see :mod:`gradstat.engines.messages` for the recursion).

The recursion carries the first and second conditional moments of the signal an estimator
backpropagates (surrogates), or of the loss (REINFORCE), per layer state: sums of squares
about a mean, never ``E[g^2] - E[g]^2``, so a nearly deterministic estimate keeps its tiny
variance.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from gradstat.engines.messages import (
    columns,
    combine,
    expect,
    expect_bits,
    forward_message,
    half_tables,
    job_span,
    pair_jobs,
    preactivations,
    reduce_jobs,
    top_layer,
    unit_values,
)
from gradstat.estimators.codes import REINMAX, SCORE, SURROGATE
from gradstat.estimators.dispatch import surrogate_jacobian
from gradstat.kernels.blocks import CHUNKS
from gradstat.kernels.forward import offsets
from gradstat.kernels.linking import PRANGE_ONLY


def layerwise_gradient(
    theta: np.ndarray,
    sizes: np.ndarray,
    tab1: np.ndarray,
    X: np.ndarray,
    T: np.ndarray,
    loss: int,
    low: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example expected losses ``(B,)`` and exact gradients ``(B, n_params)``.

    ``tab1`` is layer 1's :func:`gradstat.kernels.forward.layer1_table` (row 0, the
    pre-activations, is used); ``low`` is the value of a unit that does not fire: 0, or -1
    for ``values="pm1"``. One message pass of :func:`layerwise_moments` with the
    gradient's columns only.
    """
    A1 = np.ascontiguousarray(tab1[:, 0, :])
    losses, grads, _, _ = layerwise_moments(
        theta, sizes, A1, X, T, loss, low, GRADIENT, 0, np.zeros(1), "none"
    )
    return losses, grads


def layerwise_cost(sizes: tuple[int, ...]) -> int:
    """Work of one gradient message pass, about ``sum_l 2^{n_{l-1} + n_l} n_l``."""
    hidden = sizes[1:-1]
    cost = 2 ** hidden[0] * hidden[0] + 2 ** hidden[-1] * sizes[-1]
    for a, b in zip(hidden[:-1], hidden[1:]):
        cost += 2 * 2 ** (a + b) * b
    return cost


# ---------------------------------------------------------------------------------------
# Exact per-coordinate moments of estimators by messages.
# ---------------------------------------------------------------------------------------


def surrogate_moments(
    TL: np.ndarray, TH: np.ndarray, D0: np.ndarray, D1: np.ndarray, rbar: np.ndarray,
    V: np.ndarray, pi: np.ndarray, pk: np.ndarray, pidx: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Conditional mean and covariance of the surrogate signal ``e = D(s, b') * r``.

    Given the layer below in state ``s`` and this layer in ``s'`` (bits ``b'``), the signal
    backpropagated into this layer's pre-activations is ``e = D(s, b') * r`` with ``r``
    the signal from above, of conditional mean ``rbar(s')`` and covariance ``V(s')``
    (packed; empty for the last layer, where ``r`` is determined by ``s'``). Returns
    ``m(s) = sum_{s'} T(s, s') D * rbar`` and, for the pairs ``(pi, pk)``,

        Cov[e_i, e_k | s] = sum_{s'} T(s, s') [(x_i - m_i)(x_k - m_k) + D_i D_k V_ik(s')],

    ``x = D * rbar`` (the law of total covariance), summed about the mean in a second pass
    (:func:`_pair_sums`) so that nearly deterministic signals lose no precision.
    """
    m = _pair_sums(TL, TH, D0, D1, rbar, V, np.zeros((0, 0)), pi, pk, pidx)
    return m, _pair_sums(TL, TH, D0, D1, rbar, V, m, pi, pk, pidx)


@njit(parallel=PRANGE_ONLY, cache=True)
def _pair_sums(
    TL: np.ndarray, TH: np.ndarray, D0: np.ndarray, D1: np.ndarray, rbar: np.ndarray,
    V: np.ndarray, m: np.ndarray, pi: np.ndarray, pk: np.ndarray, pidx: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """One pass of :func:`surrogate_moments` over the pairs ``(s, s')``, per state ``s``.

    With ``m`` empty, ``sum_{s'} T D_i rbar_i`` per unit ``i`` (the mean); else, per pair
    ``q`` of units, ``sum_{s'} T [(x_i - m_i)(x_k - m_k) + D_i D_k V_ik]`` with ``x = D *
    rbar``, ``i = pi[q]``, ``k = pk[q]`` and ``V`` packed (``pidx``). The pairs are split as
    in :func:`gradstat.engines.messages.expect`: fixed jobs, each summed and then reduced
    in a fixed order.
    """
    S, nl = TL.shape
    nh = TH.shape[1]
    n = D0.shape[1]
    P = pi.shape[0]
    second = m.shape[0] > 0
    has_v = V.shape[0] > 0
    nb, jobs, nc = pair_jobs(S, nh)
    part = np.zeros((jobs, P if second else n))
    for c in prange(nc):
        x = np.empty(n)
        d = np.empty(n)
        for job in range(c * jobs // nc, (c + 1) * jobs // nc):
            s, kh0, kh1 = job_span(job, nb, nh)
            row = part[job]
            for kh in range(kh0, kh1):
                for kl in range(nl):
                    w = TL[s, kl] * TH[s, kh]
                    s2 = kh * nl + kl
                    if not second:
                        for i in range(n):
                            di = D1[s, i] if (s2 >> i) & 1 else D0[s, i]
                            row[i] += w * di * rbar[s2, i]
                        continue
                    for i in range(n):
                        d[i] = D1[s, i] if (s2 >> i) & 1 else D0[s, i]
                        x[i] = d[i] * rbar[s2, i] - m[s, i]
                    for q in range(P):
                        v = x[pi[q]] * x[pk[q]]
                        if has_v:
                            v += d[pi[q]] * d[pk[q]] * V[s2, pidx[q]]
                        row[q] += w * v
    return reduce_jobs(part, nb)


def centred_moments(
    TL: np.ndarray,
    TH: np.ndarray,
    D: np.ndarray,
    rbar: np.ndarray,
    V: np.ndarray,
    alpha: np.ndarray,
    pi: np.ndarray,
    pk: np.ndarray,
    pidx: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`surrogate_moments` for a surrogate ``D(s)`` that ignores the unit's own bit.

    Then ``m(s) = D * mu(s)`` and ``Cov(s) = (D D^T) * Cov[r | s]`` with ``mu(s) =
    sum_{s'} T rbar``. The conditional moments of ``r`` are summed about the layer's mean
    signal ``c = sum_{s'} alpha(s') rbar(s')`` (a constant, so the sums are single
    matrix-vector passes of :func:`expect`): ``Cov[r | s] = E[(r - c)(r - c)^T | s] -
    (mu - c)(mu - c)^T``, which cancels only at the scale of the signal's spread about
    ``c``, not at the scale of the signal itself.
    """
    n = D.shape[1]
    c = (alpha[:, None] * rbar).sum(axis=0)  # fixed-order (pairwise) sums, no BLAS
    rho = rbar - c
    F = np.empty((rbar.shape[0], n + pi.shape[0]))
    F[:, :n] = rho
    F[:, n:] = rho[:, pi] * rho[:, pk]
    if V.shape[0]:
        F[:, n:] += V[:, pidx]
    Y = expect(TL, TH, F)
    mu = Y[:, :n]
    cov = D[:, pi] * D[:, pk] * (Y[:, n:] - mu[:, pi] * mu[:, pk])
    return D * (c + mu), cov


@njit(parallel=PRANGE_ONLY, cache=True)
def surrogate_stats(
    m: np.ndarray,
    cov: np.ndarray,
    diag: np.ndarray,
    alpha: np.ndarray,
    W: np.ndarray,
    low: float,
    propagate: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and variance of a layer's surrogate gradient ``e_i h_j`` and the messages below.

    ``E = sum_s alpha(s) h_j m_i(s)`` and ``Var = sum_s alpha h_j^2 Cov_ii(s) +
    sum_s alpha (h_j m_i(s) - E)^2`` (the second sum in a second pass, about the mean).
    With ``propagate``: ``rbar(s) = W^T m(s)`` and ``V(s) = W^T Cov(s) W`` (packed) for the
    layer below, whose states are the ``s`` here.
    """
    S, n = m.shape
    n_prev = W.shape[1]
    nc = S if S < CHUNKS else CHUNKS
    acc = np.zeros((nc, n, n_prev + 1, 2))
    Pn = n_prev * (n_prev + 1) // 2
    rn = np.empty((S if propagate else 0, n_prev))
    Vn = np.empty((S if propagate else 0, Pn))
    for c in prange(nc):
        h = np.empty(n_prev + 1)
        M = np.empty((n, n))
        MW = np.empty((n, n_prev))
        for s in range(c * S // nc, (c + 1) * S // nc):
            unit_values(s, n_prev, low, h)
            h[n_prev] = 1.0
            w = alpha[s]
            for i in range(n):
                for j in range(n_prev + 1):
                    acc[c, i, j, 0] += w * h[j] * m[s, i]
                    acc[c, i, j, 1] += w * h[j] * h[j] * cov[s, diag[i]]
            if propagate:
                q = 0
                for i in range(n):
                    for k in range(i, n):
                        M[i, k] = cov[s, q]
                        M[k, i] = cov[s, q]
                        q += 1
                for j in range(n_prev):
                    v = 0.0
                    for i in range(n):
                        v += W[i, j] * m[s, i]
                    rn[s, j] = v
                for i in range(n):
                    for j in range(n_prev):
                        v = 0.0
                        for k in range(n):
                            v += M[i, k] * W[k, j]
                        MW[i, j] = v
                q = 0
                for j in range(n_prev):
                    for j2 in range(j, n_prev):
                        v = 0.0
                        for i in range(n):
                            v += W[i, j] * MW[i, j2]
                        Vn[s, q] = v
                        q += 1
    out = np.zeros((n, n_prev + 1, 2))
    for c2 in range(nc):
        out += acc[c2]
    between = np.zeros((nc, n, n_prev + 1))
    for c3 in prange(nc):
        h = np.empty(n_prev + 1)
        for s in range(c3 * S // nc, (c3 + 1) * S // nc):
            unit_values(s, n_prev, low, h)
            h[n_prev] = 1.0
            for i in range(n):
                for j in range(n_prev + 1):
                    d = h[j] * m[s, i] - out[i, j, 0]
                    between[c3, i, j] += alpha[s] * d * d
    for c4 in range(nc):
        out[:, :, 1] += between[c4]
    return out[:, :, 0].copy(), out[:, :, 1].copy(), rn, Vn


@njit(cache=True)
def surrogate_jacobians_table(
    A: np.ndarray, code: int, opts: np.ndarray, kappa: float
) -> tuple[np.ndarray, np.ndarray]:
    """The surrogate ``dh/da`` at every pre-activation, for a unit that drew 0 and 1."""
    S, n = A.shape
    D0 = np.empty((S, n))
    D1 = np.empty((S, n))
    for s in range(S):
        for i in range(n):
            D0[s, i] = surrogate_jacobian(code, A[s, i], 0.0, opts, kappa)
            D1[s, i] = surrogate_jacobian(code, A[s, i], 1.0, opts, kappa)
    return D0, D1


def unit_pairs(n: int, diagonal: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``i <= k`` of ``n`` units (or only ``i = k``), their indices in the packed
    upper triangle, and where each ``(i, i)`` sits among the chosen pairs."""
    full = [(i, k) for i in range(n) for k in range(i, n)]
    index = {pair: q for q, pair in enumerate(full)}
    chosen = [(i, i) for i in range(n)] if diagonal else full
    pi = np.array([i for i, _ in chosen], dtype=np.int64)
    pk = np.array([k for _, k in chosen], dtype=np.int64)
    pidx = np.array([index[p] for p in chosen], dtype=np.int64)
    diag = np.array([chosen.index((i, i)) for i in range(n)], dtype=np.int64)
    return pi, pk, pidx, diag


GRADIENT = "gradient"
"""The family of the exact gradient itself (no estimator)."""
"""What a message pass computes: the exact gradient only, or with it the moments of
REINFORCE (``score``) or of a straight-through-type estimator (``surrogate``)."""


def layerwise_moments(
    theta: np.ndarray,
    sizes: np.ndarray,
    A1: np.ndarray,
    X: np.ndarray,
    T: np.ndarray,
    loss: int,
    low: float,
    family: str,
    code: int,
    opts: np.ndarray,
    baseline: str | float,
    baselines_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-example expected loss, exact gradient, estimator mean and variance.

    Returns ``(losses (B,), gradients, means, variances (B, n_params))`` in the full
    layout, for ``family`` ``"surrogate"`` (straight-through-type estimator ``code`` with
    options ``opts``), ``"score"`` (REINFORCE with ``baseline``: ``"none"``, a float,
    ``"mean"`` or ``"optimal"``) or ``"gradient"`` (no estimator: means and variances are
    left zero). ``A1`` holds layer 1's pre-activations ``(B, n_1)``. With ``"score"``,
    ``baselines_out`` (``(B, n_params)``, optional) receives the baseline used per
    stochastic-layer coordinate (the exact optimal one for ``"optimal"``).

    **Surrogates.** The signal backpropagated into layer ``l``'s pre-activations is
    ``e_l = D_l(h_{l-1}, h_l) * (W_{l+1}^T e_{l+1})`` (``D`` the surrogate ``dh/da``; above
    the last layer the signal is ``W_o^T dC/dy``), and ``dW_l = outer(e_l, h_{l-1})``.
    Given ``h_{l-1}``, ``e_l`` depends only on the layers above, so its conditional mean
    ``m_l(s)`` and covariance ``Cov_l(s)`` given ``h_{l-1} = s`` follow from those of the
    layer above by the laws of total expectation and covariance:

        m_l(s)   = sum_{s'} T_l(s, s') D(s, s') * rbar(s'),       rbar = W_{l+1}^T m_{l+1},
        Cov_l(s) = sum_{s'} T_l(s, s') [(x - m_l)(x - m_l)^T + (D D^T) * V(s')],
                   x = D * rbar,  V = W_{l+1}^T Cov_{l+1} W_{l+1}.

    Then ``E[dW_l,ij] = sum_s alpha_{l-1}(s) h_j m_l,i`` and ``Var[dW_l,ij] = sum_s
    alpha_{l-1} h_j^2 Cov_l,ii + sum_s alpha_{l-1} (h_j m_l,i - E)^2``. Variances are sums
    of squares about a mean (ReinMax, whose surrogate depends on the unit's own bit, with
    ``D`` evaluated per pair ``(s, s')``), or about the layer's mean signal
    (:func:`centred_moments`), never differences of raw second moments, so nearly
    deterministic estimates keep their tiny variances.

    **REINFORCE.** ``g_hat_ij = (C - c) sigma_i h_j`` with ``sigma = b_l - p_l``; given
    ``(h_{l-1}, h_l)`` the loss enters only through ``beta1 = E[C | h_l]`` and
    ``beta2 = E[C^2 | h_l]`` (backward messages), so ``E[g_hat^2] = sum_s alpha h_j^2
    sum_{s'} T sigma_i^2 (beta2 - 2 c beta1 + c^2)``; the optimal baseline
    ``c_j = E[s_j^2 C] / E[s_j^2]`` comes from the same sums, and ``Var = E[g_hat^2] -
    E[g_hat]^2`` (accurate to about ``1e-15 E[g_hat^2]``; the score term keeps REINFORCE's
    variance far above that). Each sum over ``s'`` is kept apart by unit ``i``'s bit
    (:func:`gradstat.engines.messages.expect_bits`) and weighed by ``sigmoid(-a_i)`` and
    ``p_i``, never by a rounded ``1 - p_i``, so near-certain units keep full relative
    precision. Losses are centred on ``E[C]`` first, so the ``"mean"``
    baseline involves no cancellation.

    Cost per example: about ``sum_l 2^{n_{l-1} + n_l}`` times ``n_l (n_l + 3) / 2`` for
    surrogates (twice that for ReinMax, whose covariances take a second pass), ``2 n_l``
    for REINFORCE and ``n_l`` for the gradient.
    """
    sizes_t = tuple(int(v) for v in sizes)
    L = len(sizes_t) - 2
    woff, boff, _ = offsets(sizes)
    n_params = theta.shape[0]
    B = X.shape[0]
    score = family == SCORE
    surrogate = family == SURROGATE
    bitdep = surrogate and code == REINMAX
    kappa = 1.0 - low
    losses = np.empty(B)
    grads = np.zeros((B, n_params))
    means = np.zeros((B, n_params))
    variances = np.zeros((B, n_params))
    As, tables = layer_tables(theta, sizes_t, low)
    jac: list = [None] * (L + 1)
    for l in range(2, L + 1):
        if surrogate:
            jac[l] = surrogate_jacobians_table(As[l], code, opts, kappa)
    Ws = [
        np.ascontiguousarray(theta[woff[l - 1] : boff[l - 1]].reshape(sizes_t[l], -1))
        for l in range(1, L + 1)
    ]
    Ws[0] = np.zeros((sizes_t[1], 0))  # layer 1's weights are expanded from x below
    for b in range(B):
        alphas = example_messages(As, tables, A1[b])
        if surrogate:
            jac[1] = surrogate_jacobians_table(As[1], code, opts, kappa)
        C, dY, expected, out = top_layer(theta, sizes, T[b], loss, low, alphas[L])
        losses[b] = expected
        nL, n_out = sizes_t[L], sizes_t[L + 1]
        for o in range(n_out):
            rows = slice(woff[L] + o * nL, woff[L] + (o + 1) * nL)
            grads[b, rows] = means[b, rows] = out[o, :nL, 0]
            variances[b, rows] = out[o, :nL, 1]
            grads[b, boff[L] + o] = means[b, boff[L] + o] = out[o, nL, 0]
            variances[b, boff[L] + o] = out[o, nL, 1]
        beta1 = C - expected
        beta2 = beta1 * beta1
        rbar = V = np.zeros((0, 0))
        if surrogate:
            Wo = theta[woff[L] : boff[L]].reshape(n_out, nL)
            rbar = np.einsum("so,oj->sj", dY, Wo)  # numpy's own loops: a fixed order
        for l in range(L, 0, -1):
            n, n_prev = sizes_t[l], (sizes_t[l - 1] if l > 1 else 0)
            TL, TH = tables[l]
            Yb = expect_bits(TL, TH, columns(beta1, beta2, score), n)
            acc, beta1, beta2 = combine(Yb, As[l], alphas[l - 1], n_prev, low, score, l > 1)
            moments = None
            if surrogate:
                pi, pk, pidx, diag = unit_pairs(n, diagonal=l == 1)
                if bitdep:
                    m, cov = surrogate_moments(TL, TH, *jac[l], rbar, V, pi, pk, pidx)
                else:
                    m, cov = centred_moments(TL, TH, jac[l][0], rbar, V, alphas[l], pi, pk, pidx)
                moments = surrogate_stats(m, cov, diag, alphas[l - 1], Ws[l - 1], low, l > 1)
                rbar, V = moments[2], moments[3]
            used = None if baselines_out is None else baselines_out[b]
            _store_layer(acc, moments, l, sizes_t, woff, boff, X[b], expected, baseline,
                         grads[b], means[b], variances[b], used)  # fmt: skip
    return losses, grads, means, variances


def _store_layer(
    acc: np.ndarray,
    moments: tuple[np.ndarray, ...] | None,
    l: int,
    sizes: tuple[int, ...],
    woff: np.ndarray,
    boff: np.ndarray,
    x: np.ndarray,
    expected: float,
    baseline: str | float,
    grad: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    used: np.ndarray | None = None,
) -> None:
    """Write layer ``l``'s gradient, estimator mean and variance (full layout), and into
    ``used`` (if given) REINFORCE's baseline per coordinate.

    Columns ``0..n_prev - 1`` of the ``(n, n_prev + 1)`` sums are ``W_l``, the last is
    ``b_l``; layer 1 has only the bias column and ``dW_1 = outer(e_1, x)``.
    """
    n = sizes[l]
    G = acc[:, :, 0]
    if moments is not None:
        M, second = moments[0], moments[1] + moments[0] ** 2
    elif acc.shape[2] > 1:
        P0, P1, P2 = acc[:, :, 1], acc[:, :, 2], acc[:, :, 3]
        c = centred_baseline(P0, P1, expected, baseline)
        M, second = G, P2 - 2.0 * c * P1 + c * c * P0
        if used is not None:
            cb = c + expected
            if l == 1:
                cb = np.concatenate([np.repeat(cb, len(x), axis=1), cb], axis=1)
            k = cb.shape[1] - 1
            used[woff[l - 1] : boff[l - 1]] = cb[:, :k].ravel()
            used[boff[l - 1] : boff[l - 1] + n] = cb[:, k]
    else:
        M = second = np.zeros_like(G)
    if l == 1:
        G, M, second = (
            np.concatenate([np.outer(G[:, 0], x), G], axis=1),
            np.concatenate([np.outer(M[:, 0], x), M], axis=1),
            np.concatenate([np.outer(second[:, 0], x * x), second], axis=1),
        )
        if moments is not None:
            Vr = np.concatenate([np.outer(moments[1][:, 0], x * x), moments[1]], axis=1)
    elif moments is not None:
        Vr = moments[1]
    if moments is None:
        Vr = np.maximum(second - M * M, 0.0)
    for dst, src in ((grad, G), (mean, M), (var, Vr)):
        place_layer(dst, src, l, woff, boff)


def place_layer(dst: np.ndarray, V: np.ndarray, l: int, woff: np.ndarray, boff: np.ndarray) -> None:
    """Write layer ``l``'s ``(n, k + 1)`` coordinate values into the full layout ``dst``:
    columns ``0..k - 1`` are ``W_l`` (row-major), the last is ``b_l`` (``l = L + 1``: the
    output layer)."""
    w, bo = woff[l - 1], boff[l - 1]
    k = V.shape[1] - 1
    dst[w:bo] = V[:, :k].ravel()
    dst[bo : bo + V.shape[0]] = V[:, k]


def centred_baseline(
    P0: np.ndarray, P1: np.ndarray, expected: float, baseline: str | float
) -> np.ndarray:
    """REINFORCE's baseline per coordinate, less ``E[C]`` (losses are centred on it):
    ``"optimal"`` ``c = E[s^2 C] / E[s^2]`` from ``P0 = sum alpha h^2 p (1 - p)`` and
    ``P1 = sum alpha h^2 E[sigma^2 beta1]`` (``-E[C]``, no baseline, where ``P0 = 0``),
    ``"mean"`` 0, a float ``c - E[C]``, ``"none"`` ``-E[C]``."""
    if baseline == "optimal":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(P0 > 0.0, P1 / np.where(P0 > 0.0, P0, 1.0), -expected)
    if baseline == "mean":
        return np.zeros_like(P0)
    return np.full_like(P0, (0.0 if baseline == "none" else float(baseline)) - expected)


def layer_tables(theta: np.ndarray, sizes: tuple[int, ...], low: float) -> tuple[list, list]:
    """Pre-activations ``A_l`` (every state of layer ``l - 1`` by ``n_l``) and their
    :func:`half_tables` for layers ``2..L`` (index ``l``; layer 1's are per example,
    :func:`example_messages`)."""
    woff, boff, _ = offsets(np.asarray(sizes, dtype=np.int64))
    L = len(sizes) - 2
    As: list = [None] * (L + 1)
    tables: list = [None] * (L + 1)
    for l in range(2, L + 1):
        As[l] = preactivations(theta, woff[l - 1], boff[l - 1], sizes[l - 1], sizes[l], low)
        tables[l] = half_tables(As[l])
    return As, tables


def example_messages(As: list, tables: list, a1: np.ndarray) -> list:
    """Set layer 1's pre-activations ``a1`` and tables for one example (in place) and
    return the forward messages ``alpha_0 = [1], alpha_1, ..., alpha_L``."""
    As[1] = np.ascontiguousarray(a1[None, :])
    tables[1] = half_tables(As[1])
    alphas = [np.ones(1)]
    for l in range(1, len(As)):
        alphas.append(forward_message(tables[l][0], tables[l][1], alphas[l - 1]))
    return alphas


def layerwise_moments_cost(sizes: tuple[int, ...], family: str) -> int:
    """Pair-moment updates of one example's message pass (the moments engine's work)."""
    hidden = sizes[1:-1]
    cost = 0
    for l, n in enumerate(hidden):
        prev = 0 if l == 0 else hidden[l - 1]
        cols = 1 + n
        if family == SCORE:
            cols += 1 + n
        elif family == SURROGATE:
            pairs = n if l == 0 else n * (n + 1) // 2
            cols += n + pairs
        cost += 2 ** (prev + n) * cols
    return cost
