"""Exact expected loss, gradient and estimator moments by messages over each layer's states.

Given the input, the hidden layers of a layered network form a Markov chain, so the
``2^(n_1 + ... + n_L)`` joint states need not be enumerated. With ``s_l`` a state of layer
``l`` (one of ``2^{n_l}``) and ``T_l(s, s') = P(h_l = s' | h_{l-1} = s)``:

* forward messages ``alpha_l(s') = sum_s alpha_{l-1}(s) T_l(s, s')``, with
  ``alpha_1(s) = P(h_1 = s | x)``;
* backward messages ``beta_L(s) = C(y(s), t)`` and
  ``beta_{l-1}(s) = sum_{s'} T_l(s, s') beta_l(s') = E[C | h_{l-1} = s]``;
* ``E[C] = sum_s alpha_L(s) beta_L(s)``;
* ``dE[C]/dW_l = sum_s alpha_{l-1}(s) v_l(s) h_{l-1}(s)^T`` and ``dE[C]/db_l = sum_s
  alpha_{l-1}(s) v_l(s)``, with ``v_l(s) = sum_{s'} T_l(s, s') beta_l(s') (b'(s') - p_l(s))``
  (the score-function identity within one transition; losses are centred on ``E[C]``);
* the output layer: ``dE[C]/dW_o = sum_s alpha_L(s) dC/dy(s) s^T``.

The same recursion carries the first and second conditional moments of the signal an
estimator backpropagates, which gives the exact per-coordinate mean and variance of
REINFORCE (every baseline) and of the straight-through-type estimators (``st``,
``st_sigmoid``, ``st_tempered``, ``reinmax``): see :func:`layerwise_moments`. STS is not
covered: the next layer sees ``b sqrt(p(a))``, which depends on the layer below, so the
estimate is not a function of adjacent layer states. Per-state quantities (sign agreement,
descent probability) are not sums of this form either; joint enumeration gives them.

Each ``2^{n_{l-1}} x 2^{n_l}`` transition matrix is used one row at a time, factored into
products of two half-layer tables (:func:`half_tables`). The cost is about
``sum_l 2^{n_{l-1} + n_l}`` times the number of conditional moments carried: linear in
depth, exponential only in width (the forward-backward algorithm of a hidden Markov
model). Each parallel loop writes its own entries or its own chunk's accumulator,
reduced in a fixed order, so results are bit-identical for any thread count.
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat.kernels.blocks import CHUNKS
from gradstat.kernels.forward import log_sigmoid, loss_and_grad, offsets
from gradstat.kernels.linking import PRANGE_ONLY


@njit(cache=True)
def unit_values(s: int, n: int, low: float, out: np.ndarray) -> None:
    """The values of layer state ``s``: 1 where a unit fires, ``low`` (0 or -1) elsewhere."""
    for i in range(n):
        out[i] = 1.0 if (s >> i) & 1 else low


@njit(parallel=PRANGE_ONLY, cache=True)
def preactivations(
    theta: np.ndarray, woff: int, boff: int, n_prev: int, n: int, low: float
) -> np.ndarray:
    """Pre-activations ``a_l(s) = W_l h(s) + b_l`` for every state ``s`` of the layer below."""
    S = 1 << n_prev
    A = np.empty((S, n))
    for s in prange(S):
        for i in range(n):
            a = theta[boff + i]
            for j in range(n_prev):
                a += theta[woff + i * n_prev + j] * (1.0 if (s >> j) & 1 else low)
            A[s, i] = a
    return A


@njit(parallel=PRANGE_ONLY, cache=True)
def half_tables(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``T(s, s') = TL[s, s' mod 2^lo] * TH[s, s' >> lo]`` with ``lo = n // 2``.

    ``TL[s, k] = prod_{i < lo} P(bit i = k_i | s)`` and ``TH`` the same over the high
    bits, each from a sum of log-sigmoids (finite for any pre-activation): a row of the
    transition matrix costs one product per entry and no exponential.
    """
    S, n = A.shape
    lo = n // 2
    hi = n - lo
    TL = np.empty((S, 1 << lo))
    TH = np.empty((S, 1 << hi))
    for s in prange(S):
        for k in range(1 << lo):
            v = 0.0
            for i in range(lo):
                v += log_sigmoid(A[s, i]) if (k >> i) & 1 else log_sigmoid(-A[s, i])
            TL[s, k] = exp(v)
        for k in range(1 << hi):
            v = 0.0
            for i in range(hi):
                a = A[s, lo + i]
                v += log_sigmoid(a) if (k >> i) & 1 else log_sigmoid(-a)
            TH[s, k] = exp(v)
    return TL, TH


@njit(parallel=PRANGE_ONLY, cache=True)
def forward_message(TL: np.ndarray, TH: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha_l(s') = sum_s alpha_{l-1}(s) T(s, s')`` (each entry summed in a fixed order)."""
    S, nl = TL.shape
    nh = TH.shape[1]
    out = np.empty(nl * nh)
    for kh in prange(nh):
        acc = np.zeros(nl)
        for s in range(S):
            w = alpha[s] * TH[s, kh]
            for kl in range(nl):
                acc[kl] += w * TL[s, kl]
        for kl in range(nl):
            out[kh * nl + kl] = acc[kl]
    return out


@njit(cache=True, inline="always")
def pair_jobs(S: int, nh: int) -> tuple[int, int, int]:
    """How the pairs ``(s, s')`` of ``S`` rows (states of the layer below) by ``2^n``
    columns are split: ``nb`` blocks of a row's ``nh`` high-bit states (more than one when
    the rows are few), ``jobs = S nb`` fixed jobs, and the number of parallel chunks."""
    nb = 1 if S >= CHUNKS else min(nh, CHUNKS // S)
    jobs = S * nb
    return nb, jobs, jobs if jobs < CHUNKS else CHUNKS


@njit(cache=True, inline="always")
def job_span(job: int, nb: int, nh: int) -> tuple[int, int, int]:
    """Job ``job``'s row ``s`` and its block ``kh0 .. kh1 - 1`` of high-bit states."""
    bk = job % nb
    return job // nb, bk * nh // nb, (bk + 1) * nh // nb


@njit(cache=True)
def reduce_jobs(part: np.ndarray, nb: int) -> np.ndarray:
    """``out[s] = sum`` of row ``s``'s ``nb`` jobs' sums ``part``, in job order."""
    out = np.zeros((part.shape[0] // nb, part.shape[1]))
    for job in range(part.shape[0]):
        for q in range(part.shape[1]):
            out[job // nb, q] += part[job, q]
    return out


@njit(cache=True)
def expect(TL: np.ndarray, TH: np.ndarray, F: np.ndarray) -> np.ndarray:
    """``Y[s, q] = sum_{s'} T(s, s') F[s', q]``: conditional expectations given the layer below.

    The ``S x 2^n`` pairs are split into fixed jobs (a row, or for few rows a block of the
    row's high bits), each summed in a fixed order and reduced in a fixed order, so the
    result does not depend on the number of threads.
    """
    return _pair_sums(TL, TH, F, np.empty((0, F.shape[1])))


@njit(cache=True)
def spread(TL: np.ndarray, TH: np.ndarray, F: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``V[s, q] = sum_{s'} T(s, s') (F[s', q] - M[s, q])^2``: with ``M`` the conditional
    means (:func:`expect`), the conditional variances given the layer below, as sums of
    squares about the mean (the jobs of :func:`expect`)."""
    return _pair_sums(TL, TH, F, M)


@njit(parallel=PRANGE_ONLY, cache=True)
def _pair_sums(TL: np.ndarray, TH: np.ndarray, F: np.ndarray, M: np.ndarray) -> np.ndarray:
    """:func:`expect` (``M`` empty) or :func:`spread` (``M`` the centres)."""
    nb, jobs, nc = pair_jobs(TL.shape[0], TH.shape[1])
    part = np.zeros((jobs, F.shape[1]))
    for c in prange(nc):
        tmp = np.empty(F.shape[1])
        for job in range(c * jobs // nc, (c + 1) * jobs // nc):
            _expect_job(TL, TH, F, M, job, nb, part[job], tmp)
    return reduce_jobs(part, nb)


@njit(cache=True)
def _expect_job(
    TL: np.ndarray, TH: np.ndarray, F: np.ndarray, M: np.ndarray, job: int, nb: int,
    row: np.ndarray, tmp: np.ndarray,
) -> None:  # fmt: skip
    """Add job ``job``'s pairs (:func:`job_span`) of :func:`expect` (or, with centres ``M``,
    :func:`spread`) to ``row``, summing each high state's ``sum_{kl} T F`` in ``tmp`` first."""
    nl = TL.shape[1]
    Q = F.shape[1]
    centred = M.shape[0] > 0
    s, kh0, kh1 = job_span(job, nb, TH.shape[1])
    for kh in range(kh0, kh1):
        for q in range(Q):
            tmp[q] = 0.0
        for kl in range(nl):
            w = TL[s, kl]
            base = kh * nl + kl
            if centred:
                for q in range(Q):
                    d = F[base, q] - M[s, q]
                    tmp[q] += w * d * d
            else:
                for q in range(Q):
                    tmp[q] += w * F[base, q]
        th = TH[s, kh]
        for q in range(Q):
            row[q] += th * tmp[q]


@njit(parallel=PRANGE_ONLY, cache=True)
def expect_bits(TL: np.ndarray, TH: np.ndarray, F: np.ndarray, n: int) -> np.ndarray:
    """Conditional sums given the layer below, split by each unit's bit of the upper state.

    Row ``s`` holds ``Y[q] = sum_{s'} T(s, s') F[s', q]`` in ``[0, Q)``, then for unit
    ``i`` the part over ``b'_i = 1``, ``Z1[i, q]``, at ``Q (1 + i) + q`` and the part
    over ``b'_i = 0``, ``Z0[i, q]``, at ``Q (1 + n + i) + q``. Each part is a sum of its
    own pairs (never ``Y - Z1``), so a score ``b' - p`` weighs them as
    ``sigmoid(-a) Z1 - p Z0`` to full relative precision at near-certain units. The jobs
    of :func:`expect`; per pair it costs ``Q (1 + n // 2)`` additions, fewer than the
    ``Q (1 + n)`` of masked columns.
    """
    S, nh = TL.shape[0], TH.shape[1]
    Q = F.shape[1]
    nb, jobs, nc = pair_jobs(S, nh)
    part = np.zeros((jobs, Q * (1 + 2 * n)))
    for c in prange(nc):
        tmp = np.empty((1 + 2 * (n // 2), Q))
        for job in range(c * jobs // nc, (c + 1) * jobs // nc):
            _bits_job(TL, TH, F, n, job, nb, part[job], tmp)
    return reduce_jobs(part, nb)


@njit(cache=True)
def _bits_job(
    TL: np.ndarray, TH: np.ndarray, F: np.ndarray, n: int, job: int, nb: int,
    row: np.ndarray, tmp: np.ndarray,
) -> None:  # fmt: skip
    """Add job ``job``'s pairs of :func:`expect_bits` to ``row``: per high state, the
    low units' halves (``tmp`` rows ``1 + i`` and ``1 + lo + i``) and the total (row 0)
    first; a high unit's half is the whole high state's total."""
    nl = TL.shape[1]
    Q = F.shape[1]
    lo = n // 2
    s, kh0, kh1 = job_span(job, nb, TH.shape[1])
    for kh in range(kh0, kh1):
        tmp[:] = 0.0
        for kl in range(nl):
            w = TL[s, kl]
            base = kh * nl + kl
            for q in range(Q):
                v = w * F[base, q]
                tmp[0, q] += v
                for i in range(lo):
                    tmp[1 + i + lo * (1 - ((kl >> i) & 1)), q] += v
        th = TH[s, kh]
        for q in range(Q):
            row[q] += th * tmp[0, q]
            for i in range(lo):
                row[Q * (1 + i) + q] += th * tmp[1 + i, q]
                row[Q * (1 + n + i) + q] += th * tmp[1 + lo + i, q]
            for i in range(lo, n):
                side = 0 if (kh >> (i - lo)) & 1 else n
                row[Q * (1 + side + i) + q] += th * tmp[0, q]


@njit(parallel=PRANGE_ONLY, cache=True)
def top_layer(
    theta: np.ndarray, sizes: np.ndarray, t: np.ndarray, loss: int, low: float, alpha: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Loss ``C(s)`` and ``dC/dy(s)`` for every state of the last layer, ``E[C]``, and the
    mean ``[o, j, 0]`` and variance ``[o, j, 1]`` under ``alpha`` of the output layer's
    gradient ``dC/dy_o h_j`` (``j = n_L`` is the bias, ``h = 1``; the variance is summed
    about the mean, a second pass)."""
    woff, boff, _ = offsets(sizes)
    L = sizes.shape[0] - 2
    nL, n_out = sizes[L], sizes[L + 1]
    S = 1 << nL
    C = np.empty(S)
    dY = np.empty((S, n_out))
    nc = S if S < CHUNKS else CHUNKS
    acc = np.zeros((nc, n_out, nL + 1))
    part = np.zeros(nc)
    for c in prange(nc):
        h = np.empty(nL + 1)
        y = np.empty(n_out)
        dy = np.empty(n_out)
        h[nL] = 1.0
        for s in range(c * S // nc, (c + 1) * S // nc):
            unit_values(s, nL, low, h)
            for o in range(n_out):
                v = theta[boff[L] + o]
                for j in range(nL):
                    v += theta[woff[L] + o * nL + j] * h[j]
                y[o] = v
            C[s] = loss_and_grad(loss, y, t, dy)
            w = alpha[s]
            part[c] += w * C[s]
            for o in range(n_out):
                dY[s, o] = dy[o]
                for j in range(nL + 1):
                    acc[c, o, j] += w * dy[o] * h[j]
    expected = 0.0
    for c2 in range(nc):
        expected += part[c2]
    out = np.zeros((n_out, nL + 1, 2))
    for c3 in range(nc):
        out[:, :, 0] += acc[c3]
    acc[:] = 0.0
    for c4 in prange(nc):
        h = np.empty(nL + 1)
        h[nL] = 1.0
        for s in range(c4 * S // nc, (c4 + 1) * S // nc):
            unit_values(s, nL, low, h)
            for o in range(n_out):
                for j in range(nL + 1):
                    d = dY[s, o] * h[j] - out[o, j, 0]
                    acc[c4, o, j] += alpha[s] * d * d
    for c5 in range(nc):
        out[:, :, 1] += acc[c5]
    return C, dY, expected, out


def columns(beta1: np.ndarray, beta2: np.ndarray, score: bool) -> np.ndarray:
    """The functions of the upper layer's state whose expectations, split by each unit's
    bit (:func:`expect_bits`), a layer needs: ``beta1`` and, with ``score``, ``beta2``."""
    return np.ascontiguousarray(np.stack([beta1, beta2], axis=1) if score else beta1[:, None])


@njit(cache=True, inline="always")
def score_moments(
    Yb: np.ndarray, Q: int, q0: int, i: int, n: int, p: float, r: float
) -> tuple[float, float]:
    """``E[sigma_i F_q0 | s]`` and ``E[sigma_i^2 F_q0 | s]`` from a row of
    :func:`expect_bits`, with ``sigma_i = b'_i - p`` and ``r = sigmoid(-a) = 1 - p``
    (both from log-sigmoids): ``r Z1 - p Z0`` and ``r^2 Z1 + p^2 Z0``, each to full
    relative precision however close ``p`` is to 0 or 1."""
    z1 = Yb[Q * (1 + i) + q0]
    z0 = Yb[Q * (1 + n + i) + q0]
    return r * z1 - p * z0, r * r * z1 + p * p * z0


@njit(parallel=PRANGE_ONLY, cache=True)
def combine(
    Yb: np.ndarray,
    A: np.ndarray,
    alpha: np.ndarray,
    n_prev: int,
    low: float,
    score: bool,
    propagate: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One layer's gradient (and REINFORCE) coordinate sums and the backward messages.

    ``Yb`` is :func:`expect_bits` of :func:`columns`. For each state ``s`` of the layer
    below (values ``h``, weight ``alpha(s)``) and unit ``i`` with ``sigma_i = b'_i - p_i``:
    ``A1_i = sum_{s'} T sigma_i beta1`` (the exact gradient's term) and, for REINFORCE,
    ``A0_i = p_i (1 - p_i) = sum T sigma_i^2``, ``A1sq_i = sum T sigma_i^2 beta1`` and
    ``A2_i = sum T sigma_i^2 beta2`` (:func:`score_moments`: the score's residual
    ``1 - p`` is ``sigmoid(-a)``, never a rounded ``1 - p``). Accumulates, per coordinate
    ``(i, j)`` (``j = n_prev`` is the bias, ``h = 1``), ``[0] sum alpha h_j A1_i`` and
    ``[1..3] sum alpha h_j^2 (A0, A1sq, A2)_i``; with ``propagate``, returns ``beta1,
    beta2`` of the layer below.
    """
    S, n = A.shape
    Q = 2 if score else 1
    K = 4 if score else 1
    nc = S if S < CHUNKS else CHUNKS
    acc = np.zeros((nc, n, n_prev + 1, K))
    beta1 = np.empty(S if propagate else 0)
    beta2 = np.empty(S if propagate and score else 0)
    for c in prange(nc):
        h = np.empty(n_prev + 1)
        st = np.empty((4, n))
        for s in range(c * S // nc, (c + 1) * S // nc):
            unit_values(s, n_prev, low, h)
            h[n_prev] = 1.0
            w = alpha[s]
            y = Yb[s]
            for i in range(n):
                lp = log_sigmoid(A[s, i])
                lr = log_sigmoid(-A[s, i])
                p, r = exp(lp), exp(lr)
                st[0, i], st[2, i] = score_moments(y, Q, 0, i, n, p, r)
                if score:
                    st[1, i] = exp(lp + lr)
                    st[3, i] = score_moments(y, Q, 1, i, n, p, r)[1]
            a = acc[c]
            for i in range(n):
                for j in range(n_prev + 1):
                    w1 = w * h[j]
                    a[i, j, 0] += w1 * st[0, i]
                    if score:
                        w2 = w1 * h[j]
                        a[i, j, 1] += w2 * st[1, i]
                        a[i, j, 2] += w2 * st[2, i]
                        a[i, j, 3] += w2 * st[3, i]
            if propagate:
                beta1[s] = y[0]
                if score:
                    beta2[s] = y[1]
    out = np.zeros((n, n_prev + 1, K))
    for c2 in range(nc):
        out += acc[c2]
    return out, beta1, beta2
