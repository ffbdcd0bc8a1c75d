"""High-precision reference: exact sums over noise states in 400-digit arithmetic.

Written from ``SPEC.md`` (sections 1 to 3) with ``mpmath`` only, sharing no code with the
``gradstat`` package or with :mod:`naive_enumerator`. Every quantity is a finite sum over
the ``2^N`` joint states of the stochastic units, evaluated with 400 significant digits
(enough for ``1 - sigmoid(a)`` and ``log(1 + e^y) - y`` up to ``|a|, |y|`` of about 800),
so that its value at the edges (confident outputs, nearly deterministic units, tiny losses
and variances) is known to far more than double precision: the float64 engines are
compared with it by relative tolerances.

Model, for one input ``x`` (``h_0 = x``) and the bits ``b`` of a state::

    a_l = W_l h_{l-1} + b_l,  p_l = sigmoid(a_l),  P(b) = prod p^b (1 - p)^(1 - b)
    h_l = b (values "01"), or b q with q = sqrt(p) and P from q (STS)
    y = W_o h_L + b_o,  C = loss(y, t)

Losses: ``mse`` ``sum (y - t)^2 / 2``; ``bce`` ``sum log(1 + e^y) - t y``; ``xent``
``log sum_k e^(y_k) - y_t``; ``linear`` ``sum t y``. Parameter order as in SPEC: ``W_1``
(row-major), ``b_1``, ..., ``W_o``, ``b_o``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import mpmath
import numpy as np

mp = mpmath.mp.clone()
mp.dps = 400

__all__ = ["example_moments", "expected_loss_and_gradient", "loss_and_derivative"]


def _layers(sizes: Sequence[int], theta: Sequence[float]) -> list[tuple[list, list]]:
    """``[(W, b), ...]`` with ``W`` a list of rows, as exact ``mpf`` values."""
    out = []
    pos = 0
    for fan_in, fan_out in itertools.pairwise(sizes):
        W = [[mp.mpf(float(theta[pos + i * fan_in + j])) for j in range(fan_in)]
             for i in range(fan_out)]  # fmt: skip
        pos += fan_in * fan_out
        b = [mp.mpf(float(theta[pos + i])) for i in range(fan_out)]
        pos += fan_out
        out.append((W, b))
    return out


def _sigmoid(a: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mp.exp(-a))


def loss_and_derivative(loss: str, y: list, t: Sequence[float]) -> tuple[mpmath.mpf, list]:
    """``C(y, t)`` and ``dC/dy`` in 400-digit arithmetic (``t`` a class index for xent)."""
    if loss == "mse":
        r = [yk - mp.mpf(float(tk)) for yk, tk in zip(y, t)]
        return sum(rk * rk for rk in r) / 2, r
    if loss == "bce":
        tt = [mp.mpf(float(tk)) for tk in t]
        c = sum(mp.log(1 + mp.exp(yk)) - tk * yk for yk, tk in zip(y, tt))
        return c, [_sigmoid(yk) - tk for yk, tk in zip(y, tt)]
    if loss == "xent":
        k = int(t[0])
        total = sum(mp.exp(yk) for yk in y)
        return mp.log(total) - y[k], [mp.exp(yk) / total - (1 if j == k else 0)
                                      for j, yk in enumerate(y)]  # fmt: skip
    if loss == "linear":
        tt = [mp.mpf(float(tk)) for tk in t]
        return sum(tk * yk for yk, tk in zip(y, tt)), tt
    raise ValueError(f"unknown loss {loss!r}")


def _states(sizes: Sequence[int], theta: Sequence[float], x: Sequence[float], smooth: bool):
    """Yield ``(P, bits, p, h, y)`` per joint state: lists per hidden layer of ``mpf``."""
    layers = _layers(sizes, theta)
    n_units = sum(sizes[1:-1])
    for flat in itertools.product((0, 1), repeat=n_units):
        h_prev = [mp.mpf(float(v)) for v in x]
        prob = mp.mpf(1)
        bits, ps, hs = [], [], []
        start = 0
        for W, b in layers[:-1]:
            a = [b[i] + mp.fsum(W[i][j] * h_prev[j] for j in range(len(h_prev)))
                 for i in range(len(b))]  # fmt: skip
            p = [_sigmoid(ai) for ai in a]
            layer_bits = flat[start : start + len(b)]
            start += len(b)
            fire = [mp.sqrt(pi) for pi in p] if smooth else p
            for bit, f in zip(layer_bits, fire):
                prob *= f if bit else 1 - f
            h = [f if bit else mp.mpf(0) for bit, f in zip(layer_bits, fire)]
            if not smooth:
                h = [mp.mpf(bit) for bit in layer_bits]
            bits.append(list(layer_bits))
            ps.append(p)
            hs.append(h)
            h_prev = h
        W_o, b_o = layers[-1]
        y = [b_o[o] + mp.fsum(W_o[o][j] * h_prev[j] for j in range(len(h_prev)))
             for o in range(len(b_o))]  # fmt: skip
        yield prob, bits, ps, hs, y


def _surrogate(estimator: str, a_p: mpmath.mpf, bit: int) -> mpmath.mpf:
    if estimator == "st":
        return mp.mpf(1)
    if estimator == "st_sigmoid":
        return a_p * (1 - a_p)
    if estimator == "sts":
        return bit * mp.sqrt(a_p) * (1 - a_p) / 2
    raise ValueError(estimator)


def _estimate(sizes, layers, x, loss, t, state, estimator, baseline):  # noqa: ANN001, ANN202
    """One state's estimate (a list in SPEC order) and its loss."""
    _, bits, ps, hs, y = state
    C, dy = loss_and_derivative(loss, y, t)
    inputs = [[mp.mpf(float(v)) for v in x]] + hs[:-1]
    grads: list = [None] * len(layers)
    W_o = layers[-1][0]
    grads[-1] = ([[dy[o] * hj for hj in hs[-1]] for o in range(len(dy))], list(dy))
    if estimator == "reinforce":
        for l in range(len(layers) - 1):
            r = [(C - baseline) * (bi - pi) for bi, pi in zip(bits[l], ps[l])]
            grads[l] = ([[ri * hj for hj in inputs[l]] for ri in r], r)
    else:
        dh = [mp.fsum(W_o[o][j] * dy[o] for o in range(len(dy))) for j in range(len(hs[-1]))]
        for l in range(len(layers) - 2, -1, -1):
            delta = [dh[i] * _surrogate(estimator, ps[l][i], bits[l][i]) for i in range(len(dh))]
            grads[l] = ([[di * hj for hj in inputs[l]] for di in delta], delta)
            W = layers[l][0]
            dh = [mp.fsum(W[i][j] * delta[i] for i in range(len(delta)))
                  for j in range(len(inputs[l]))]  # fmt: skip
    flat = []
    for dW, db in grads:
        for row in dW:
            flat.extend(row)
        flat.extend(db)
    return flat, C


def expected_loss_and_gradient(
    sizes: Sequence[int], theta: Sequence[float], loss: str, x: Sequence[float],
    t: Sequence[float],
) -> tuple[mpmath.mpf, list]:  # fmt: skip
    """``E[C]`` and its exact gradient ``sum_h P(h) (C s(h) + grad C)`` (score-function
    identity, ``s = d log P / d theta``), for one example, as ``mpf``."""
    layers = _layers(sizes, theta)
    total = mp.mpf(0)
    grad = [mp.mpf(0)] * sum(a * b + b for a, b in itertools.pairwise(sizes))
    for state in _states(sizes, theta, x, False):
        prob = state[0]
        # The score-function estimate without baseline is exactly C s + grad C.
        est, C = _estimate(sizes, layers, x, loss, t, state, "reinforce", 0)
        total += prob * C
        grad = [g + prob * e for g, e in zip(grad, est)]
    return total, grad


def example_moments(
    sizes: Sequence[int], theta: Sequence[float], loss: str, x: Sequence[float],
    t: Sequence[float], estimator: str, baseline: float = 0.0,
) -> dict[str, list]:  # fmt: skip
    """Mean, variance (about the exact mean) and ``P(sign e_j = sign g_j)`` of one
    estimator (``st``, ``st_sigmoid``, ``sts``, ``reinforce`` with a constant baseline),
    and the exact gradient, as lists of ``mpf``."""
    _, g = expected_loss_and_gradient(sizes, theta, loss, x, t)
    layers = _layers(sizes, theta)
    probs, ests = [], []
    for state in _states(sizes, theta, x, estimator == "sts"):
        probs.append(state[0])
        ests.append(_estimate(sizes, layers, x, loss, t, state, estimator,
                              mp.mpf(float(baseline)))[0])  # fmt: skip
    n = len(g)
    mean = [mp.fsum(p * e[j] for p, e in zip(probs, ests)) for j in range(n)]
    var = [mp.fsum(p * (e[j] - mean[j]) ** 2 for p, e in zip(probs, ests)) for j in range(n)]
    sign = [mp.fsum(p for p, e in zip(probs, ests) if mp.sign(e[j]) == mp.sign(g[j]))
            for j in range(n)]  # fmt: skip
    return {"gradient": g, "mean": mean, "var": var, "sign_probability": sign}


def to_float(values: list) -> np.ndarray:
    """``mpf`` values rounded to float64."""
    return np.array([float(v) for v in values])
