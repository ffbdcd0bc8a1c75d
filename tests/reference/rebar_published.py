"""The REBAR estimate of the authors' multi-layer code, differentiated by complex step.

An independent transcription of the surrogate objective that ``research/rebar/rebar.py``
in ``tensorflow/models`` (Tucker et al., 2017) builds with ``quadratic=True``, for the
model of SPEC section 1 (its own layers feed ``2 h - 1`` and an ELBO; here the network's
values and loss). It shares no code with ``gradstat``: the estimate is the derivative of
a scalar surrogate, taken by complex step (``Im S(theta + i eps e_q) / eps``, exact to
rounding because every function of ``theta`` below is analytic), with ``stop_gradient``
played by freezing a quantity at its real value. For each stochastic layer ``t`` (the
"switch layer"):

* ``_random_sample``: ``z_k = a_k + logit(u_k)``, hard bits ``b_k = 1[z_k > 0]``; the
  tied noise ``v_k = stop(f_k) (1 - u'_k) + u'_k`` (``b_k = 1``) or ``stop(f_k) u'_k``
  (``b_k = 0``), ``u'_k = sigmoid(-a_k)`` of the *hard* logit and ``f_k`` the cell fraction
  of ``u_k``, so ``v_k = u_k`` in value (``_u_to_v``);
* ``softELBO``: layers below ``t`` hard, layers ``k >= t`` relaxed with ``logit(u_k)``;
* ``softELBO_v``: the same with ``logit(v_k)`` for every ``k >= t``
  (``_random_sample_switch_v``);
* surrogate ``sum_t stop(C - eta c_v) log q(b_t) + eta (c - c_v)`` plus ``C`` at the
  frozen hard state (the direct path into the output layer): ``-nvil_gradient`` with a
  zero baseline plus ``eta`` times ``_create_gumbel_control_variate_quadratic``'s ``h``.

The minimised loss ``C`` replaces the maximised ELBO (one sign throughout).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference import naive_enumerator as ne

EPS = 1e-30


def _sig(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-z))


def _log_sig(z: Any) -> Any:
    return -np.log(1.0 + np.exp(-z))


def _loss(loss: str, y: Any, t: Any) -> Any:
    """The SPEC losses, written with analytic functions only."""
    if loss == "mse":
        return 0.5 * np.sum((y - np.asarray(t)) ** 2)
    if loss == "bce":
        return np.sum(np.log(1.0 + np.exp(y)) - np.asarray(t) * y)
    if loss == "linear":
        return np.sum(np.asarray(t) * y)
    if loss == "xent":
        c = int(np.asarray(t).reshape(-1)[0])
        return np.log(np.sum(np.exp(y))) - y[c]
    raise ValueError(f"unknown loss {loss!r}")


def _surrogate(
    sizes: tuple[int, ...], theta: np.ndarray, x: np.ndarray, t: Any, loss: str, values: str,
    u: list[np.ndarray], eta: float, tau: float,
) -> Any:  # fmt: skip
    """The scalar surrogate at (possibly complex) ``theta``; bits from its real part."""
    params = [(theta[w].reshape(shape), theta[b]) for w, b, shape in ne.layout(sizes)]
    low = -1.0 if values == "pm1" else 0.0
    kappa = 1.0 - low
    n_layers = len(params) - 1
    # hard pass
    h = x.astype(complex)
    hard_in, hard_a, bits = [], [], []
    for W, b in params[:-1]:
        hard_in.append(h)
        a = W @ h + b
        bit = (a.real + np.log(u[len(bits)]) - np.log1p(-u[len(bits)]) > 0).astype(float)
        hard_a.append(a)
        bits.append(bit)
        h = np.where(bit == 1.0, 1.0, low).astype(complex)
    W_o, b_o = params[-1]
    # the hard h is frozen: only W_o, b_o carry the direct path
    C = _loss(loss, W_o @ h.real + b_o, t)
    logq = [np.sum(bit * _log_sig(a) + (1 - bit) * _log_sig(-a)) for bit, a in zip(bits, hard_a)]
    # tied noise of every layer, from the hard logits (_u_to_v)
    tied = []
    for a, bit, uk in zip(hard_a, bits, u):
        q = _sig(-a)  # u' = sigmoid(-a)
        qr = q.real
        frac = np.where(bit == 1.0, (uk - qr) / (1.0 - qr), uk / qr)  # stop_gradient
        tied.append(np.where(bit == 1.0, frac * (1.0 - q) + q, frac * q))

    def relaxed(switch: int, noise: list[Any]) -> Any:
        hr = hard_in[switch]
        for k in range(switch, n_layers):
            W, b = params[k]
            a = W @ hr + b if k > switch else hard_a[k]
            z = a + np.log(noise[k]) - np.log(1.0 - noise[k])
            hr = kappa * _sig(z / tau) + low
        return _loss(loss, W_o @ hr + b_o, t)

    S = C
    for switch in range(n_layers):
        c = relaxed(switch, [uk.astype(complex) for uk in u])
        c_v = relaxed(switch, tied)
        S = S + (C.real - eta * c_v.real) * logq[switch] + eta * (c - c_v)
    return S


def published_rebar(
    sizes: tuple[int, ...], theta: Any, x: Any, t: Any, loss: str, u: Any, *,
    eta: float = 1.0, tau: float = 0.5, values: str = "01",
) -> np.ndarray:  # fmt: skip
    """The published code's REBAR estimate of ``dC/dtheta`` for uniforms ``u`` (``N``).

    Returns the estimate in SPEC order; ``v`` is tied to ``u`` as the code ties it.
    """
    sizes = tuple(int(s) for s in sizes)
    theta = np.asarray(theta, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(sizes[0])
    u = np.asarray(u, dtype=np.float64)
    cuts = np.cumsum(sizes[1:-1])[:-1]
    u_layers = np.split(u, cuts)
    out = np.empty(theta.size)
    for q in range(theta.size):
        step = theta.astype(complex)
        step[q] += 1j * EPS
        s = _surrogate(sizes, step, x, t, loss, values, u_layers, eta, tau)
        out[q] = s.imag / EPS
    return out


def cell_fraction(sizes: tuple[int, ...], theta: Any, x: Any, u: Any, values: str = "01") -> Any:
    """``v`` with ``v' = u``: the cell fraction of ``u`` given the hard bit, per unit."""
    params = ne.unpack(tuple(sizes), np.asarray(theta, dtype=np.float64))
    low = -1.0 if values == "pm1" else 0.0
    h = np.asarray(x, dtype=np.float64).reshape(sizes[0])
    out, start = [], 0
    for W, b in params[:-1]:
        a = W @ h + b
        uk = np.asarray(u[start : start + a.size])
        start += a.size
        q = 1.0 / (1.0 + np.exp(a))
        bit = uk > q
        out.append(np.where(bit, (uk - q) / (1.0 - q), uk / q))
        h = np.where(bit, 1.0, low)
    return np.concatenate(out)
