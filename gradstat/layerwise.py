"""Exact expected loss and gradient by messages over each layer's states.

Given the input, the hidden layers of a layered network form a Markov chain, so the
``2^(n_1 + ... + n_L)`` joint states need not be enumerated. With ``s_l`` a state of layer
``l`` (one of ``2^{n_l}``) and ``T_l(s, s') = P(h_l = s' | h_{l-1} = s)``:

* forward messages ``alpha_l(s') = sum_s alpha_{l-1}(s) T_l(s, s')``, with
  ``alpha_1(s) = P(h_1 = s | x)``;
* backward messages ``beta_L(s) = C(y(s), t)`` and
  ``beta_{l-1}(s) = sum_{s'} T_l(s, s') beta_l(s') = E[C | h_{l-1} = s]``;
* ``E[C] = sum_s alpha_1(s) beta_1(s)``;
* ``dE[C]/dW_l = sum_s alpha_{l-1}(s) v_l(s) h_{l-1}(s)^T`` and ``dE[C]/db_l = sum_s
  alpha_{l-1}(s) v_l(s)``, with ``v_l(s) = sum_{s'} T_l(s, s') (beta_l(s') - beta_{l-1}(s))
  (s' - p_l(s))`` (the score-function identity within one transition, centred on its
  conditional mean, which is exact because ``sum_{s'} T_l(s, s') (s' - p_l(s)) = 0``);
* the output layer: ``dE[C]/dW_o = sum_s alpha_L(s) dC/dy(s) s^T``.

The cost is ``sum_l 2^{n_{l-1} + n_l} n_l``: linear in depth, exponential only in width
(the same recursion as the forward-backward algorithm of a hidden Markov model). Each
parallel loop writes its own entries or its own chunk's accumulator, reduced in a fixed
order, so results are bit-identical for any thread count.
"""

from __future__ import annotations

from math import exp

import numpy as np
from numba import njit, prange

from gradstat.forward import log_sigmoid, loss_and_grad, offsets

CHUNKS = 64


@njit(cache=True)
def _bits(s: int, n: int, low: float, out: np.ndarray) -> None:
    """The values of layer state ``s``: 1 where a unit fires, ``low`` (0 or -1) elsewhere."""
    for i in range(n):
        out[i] = 1.0 if (s >> i) & 1 else low


@njit(parallel=True, cache=True)
def _transition_logs(
    theta: np.ndarray, woff: int, boff: int, n_prev: int, n: int, low: float
) -> tuple[np.ndarray, np.ndarray]:
    """``log p_i(s)`` and ``log(1 - p_i(s))`` for every state ``s`` of the layer below."""
    S = 1 << n_prev
    lp = np.empty((S, n))
    ln = np.empty((S, n))
    for s in prange(S):
        for i in range(n):
            a = theta[boff + i]
            for j in range(n_prev):
                a += theta[woff + i * n_prev + j] * (1.0 if (s >> j) & 1 else low)
            lp[s, i] = log_sigmoid(a)
            ln[s, i] = log_sigmoid(-a)
    return lp, ln


@njit(cache=True)
def _log_t(lp: np.ndarray, ln: np.ndarray, s: int, s2: int, n: int) -> float:
    v = 0.0
    for i in range(n):
        if (s2 >> i) & 1:
            v += lp[s, i]
        else:
            v += ln[s, i]
    return v


@njit(parallel=True, cache=True)
def _example(
    theta: np.ndarray, sizes: np.ndarray, tab1: np.ndarray, t: np.ndarray, loss: int, low: float
) -> tuple[float, np.ndarray]:
    """Expected loss and gradient (full SPEC layout) of one example."""
    woff, boff, _ = offsets(sizes)
    L = sizes.shape[0] - 2
    n_out = sizes[L + 1]
    grad = np.zeros(theta.shape[0])
    # Forward messages, one array per layer (flat with offsets).
    aoff = np.zeros(L + 1, dtype=np.int64)
    for l in range(L):
        aoff[l + 1] = aoff[l] + (1 << sizes[l + 1])
    alpha = np.empty(aoff[L])
    beta = np.empty(aoff[L])
    n1 = sizes[1]
    for s in prange(1 << n1):
        v = 0.0
        for i in range(n1):
            v += tab1[2, i] if (s >> i) & 1 else tab1[3, i]
        alpha[s] = exp(v)
    for l in range(1, L):
        n_prev, n = sizes[l], sizes[l + 1]
        lp, ln = _transition_logs(theta, woff[l], boff[l], n_prev, n, low)
        for s2 in prange(1 << n):
            acc = 0.0
            for s in range(1 << n_prev):
                acc += alpha[aoff[l - 1] + s] * exp(_log_t(lp, ln, s, s2, n))
            alpha[aoff[l] + s2] = acc
    # Output layer: beta_L = C, and the direct gradient of W_o, b_o.
    nL = sizes[L]
    SL = 1 << nL
    nc = SL if SL < CHUNKS else CHUNKS
    acc_o = np.zeros((nc, n_out * nL + n_out))
    for c in prange(nc):
        h = np.empty(nL)
        y = np.empty(n_out)
        dy = np.empty(n_out)
        for s in range(c * SL // nc, (c + 1) * SL // nc):
            _bits(s, nL, low, h)
            for o in range(n_out):
                v = theta[boff[L] + o]
                for j in range(nL):
                    v += theta[woff[L] + o * nL + j] * h[j]
                y[o] = v
            beta[aoff[L - 1] + s] = loss_and_grad(loss, y, t, dy)
            w = alpha[aoff[L - 1] + s]
            for o in range(n_out):
                for j in range(nL):
                    acc_o[c, o * nL + j] += w * dy[o] * h[j]
                acc_o[c, n_out * nL + o] += w * dy[o]
    for c in range(nc):
        for k in range(n_out * nL + n_out):
            grad[woff[L] + k] += acc_o[c, k]
    # Backward messages and the gradients of layers L..2.
    for l in range(L - 1, 0, -1):
        n_prev, n = sizes[l], sizes[l + 1]
        lp, ln = _transition_logs(theta, woff[l], boff[l], n_prev, n, low)
        pp = np.exp(lp)
        S = 1 << n_prev
        nc = S if S < CHUNKS else CHUNKS
        acc = np.zeros((nc, n * n_prev + n))
        for c in prange(nc):
            s1 = np.empty(n)
            s0 = np.empty(n)
            hp = np.empty(n_prev)
            for s in range(c * S // nc, (c + 1) * S // nc):
                m = 0.0
                for i in range(n):
                    s1[i] = 0.0
                    s0[i] = 0.0
                for s2 in range(1 << n):
                    tr = exp(_log_t(lp, ln, s, s2, n))
                    b = beta[aoff[l] + s2]
                    m += tr * b
                    for i in range(n):
                        r = tr * (float((s2 >> i) & 1) - pp[s, i])
                        s1[i] += r * b
                        s0[i] += r
                beta[aoff[l - 1] + s] = m
                w = alpha[aoff[l - 1] + s]
                _bits(s, n_prev, low, hp)
                for i in range(n):
                    vi = w * (s1[i] - m * s0[i])
                    for j in range(n_prev):
                        acc[c, i * n_prev + j] += vi * hp[j]
                    acc[c, n * n_prev + i] += vi
        for c in range(nc):
            for k in range(n * n_prev + n):
                grad[woff[l] + k] += acc[c, k]
    # Layer 1 and the expected loss.
    S1 = 1 << n1
    expected = 0.0
    for s in range(S1):
        expected += alpha[s] * beta[s]
    nc = S1 if S1 < CHUNKS else CHUNKS
    acc1 = np.zeros((nc, n1))
    for c in prange(nc):
        for s in range(c * S1 // nc, (c + 1) * S1 // nc):
            w = alpha[s] * (beta[s] - expected)
            for i in range(n1):
                acc1[c, i] += w * (float((s >> i) & 1) - tab1[1, i])
    for c in range(nc):
        for i in range(n1):
            grad[boff[0] + i] += acc1[c, i]
    return expected, grad


@njit(cache=True)
def _first_layer_weights(grad: np.ndarray, x: np.ndarray, n1: int) -> None:
    n_in = x.shape[0]
    for i in range(n1):
        for j in range(n_in):
            grad[i * n_in + j] = grad[n1 * n_in + i] * x[j]


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

    ``low`` is the value of a unit that does not fire: 0, or -1 for ``values="pm1"``.
    """
    B = X.shape[0]
    losses = np.empty(B)
    grads = np.empty((B, theta.shape[0]))
    for b in range(B):
        losses[b], grads[b] = _example(theta, sizes, tab1[b], T[b], loss, low)
        _first_layer_weights(grads[b], X[b], int(sizes[1]))
    return losses, grads


def layerwise_cost(sizes: tuple[int, ...]) -> int:
    """Transition evaluations of one message pass: ``sum_l 2^{n_{l-1} + n_l} n_l``."""
    hidden = sizes[1:-1]
    cost = 2 ** hidden[0] * hidden[0] + 2 ** hidden[-1] * sizes[-1]
    for a, b in zip(hidden[:-1], hidden[1:]):
        cost += 2 * 2 ** (a + b) * b
    return cost
