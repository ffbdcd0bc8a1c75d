"""REBAR: REINFORCE with a conditional Concrete control variate.

REINFORCE with the Concrete relaxation, evaluated at *conditional* noise, as control
variate, plus the reparameterised correction that makes it unbiased. Per unit,
``z = a + logit(u)`` gives the hard bit ``b = 1[z > 0]``; ``ztilde = a + logit(v')`` is a
draw of ``z`` given ``b`` (``v' = v (1 - p)`` if ``b = 0``, ``v' = v p + 1 - p`` if ``b = 1``,
``v ~ U(0, 1)``), with ``d ztilde / da = p v / v'`` (``b = 1``) or
``(1 - p)(1 - v) / (1 - v')`` (``b = 0``). For stochastic layer ``t`` (everything below it
at the hard sample), the control variate ``c(z_t)`` is the loss of the relaxed network:
layer ``t`` passes on ``sigma_tau(z_t)`` (``sigmoid(z / tau)``, or ``2 sigmoid(z/tau) - 1``
for ``values="pm1"``) and each layer above passes on ``sigma_tau(atilde_k + logit(u_k))``
with the draw's own uniforms. Then::

    g_hat(b_t)_i = [C(y(h)) - eta c(ztilde_t)] (b_i - p_i)
                   + eta dc/dz_{t,i}(z_t) - eta dc/dz_{t,i}(ztilde_t) dztilde_i/da_i
    g_hat(W_t)_ij = g_hat(b_t)_i h_{t-1,j}

and the direct path ``dC/dW_o`` at the hard sample for the output layer. The identity
``E[c(ztilde) d log P(b)] = E[dc(z)] - E[dc(ztilde)]`` holds for any ``c`` that depends on
layer ``t``'s noise only through ``z_t`` (the uniforms above are independent of it), so
REBAR is unbiased for every ``eta`` and ``tau``. Its mean is the exact gradient; its
variance is measured by Monte Carlo. A draw takes ``2N`` uniforms: ``u`` then ``v``.
"""

from __future__ import annotations

from math import exp, log, log1p

import numpy as np
from numba import njit

from gradstat.estimators.codes import REBAR
from gradstat.estimators.options import check_finite, check_positive
from gradstat.estimators.registry import Estimator
from gradstat.estimators.relaxed import logistic
from gradstat.kernels.forward import (
    log_sigmoid,
    loss_and_grad,
    output_gradient,
    output_layer,
    preactivation,
    write_unit,
)


@njit(cache=True)
def _relaxed_loss(
    theta: np.ndarray,
    sizes: np.ndarray,
    woff: np.ndarray,
    boff: np.ndarray,
    uoff: np.ndarray,
    t: np.ndarray,
    loss: int,
    layer: int,
    z_layer: np.ndarray,
    u: np.ndarray,
    tau: float,
    low: float,
    h: np.ndarray,
    hr: np.ndarray,
    jr: np.ndarray,
    y: np.ndarray,
    dy: np.ndarray,
    work: np.ndarray,
    gz: np.ndarray,
) -> float:
    """``c(z)`` for layer ``layer`` at ``z_layer``, and ``dc/dz`` of that layer into ``gz``.

    Layers below ``layer`` keep the hard values ``h``; ``hr`` and ``jr`` receive the relaxed
    values and their slopes ``d hr / dz``.
    """
    L = sizes.shape[0] - 2
    kappa = 1.0 - low
    for k in range(uoff[layer]):
        hr[k] = h[k]
    for l in range(layer, L):
        n_prev = sizes[l]
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            if l == layer:
                z = z_layer[i]
            else:
                z = theta[boff[l] + i]
                for j in range(n_prev):
                    z += theta[woff[l] + i * n_prev + j] * hr[uoff[l - 1] + j]
                z += logistic(u[k])
            s = z / tau
            ls1 = log_sigmoid(s)
            hr[k] = kappa * exp(ls1) + low
            jr[k] = kappa * exp(ls1 + log_sigmoid(-s)) / tau
    n_last = sizes[L]
    last = uoff[L - 1]
    n_out = sizes[L + 1]
    output_layer(theta, sizes, woff, boff, uoff, hr, y)
    c = loss_and_grad(loss, y, t, dy)
    cur = 0
    for j in range(n_last):
        v = 0.0
        for o in range(n_out):
            v += theta[woff[L] + o * n_last + j] * dy[o]
        work[cur, j] = v * jr[last + j]
    for l in range(L - 1, layer, -1):
        n, n_prev = sizes[l + 1], sizes[l]
        nxt = 1 - cur
        for j in range(n_prev):
            v = 0.0
            for i in range(n):
                v += theta[woff[l] + i * n_prev + j] * work[cur, i]
            work[nxt, j] = v * jr[uoff[l - 1] + j]
        cur = nxt
    for i in range(sizes[layer + 1]):
        gz[i] = work[cur, i]
    return c


@njit(cache=True)
def rebar_draw(
    eta: float,
    tau: float,
    theta: np.ndarray,
    sizes: np.ndarray,
    woff: np.ndarray,
    boff: np.ndarray,
    uoff: np.ndarray,
    tab1: np.ndarray,
    t: np.ndarray,
    loss: int,
    noise: np.ndarray,
    a: np.ndarray,
    bit: np.ndarray,
    h: np.ndarray,
    hr: np.ndarray,
    jr: np.ndarray,
    zbuf: np.ndarray,
    gz: np.ndarray,
    y: np.ndarray,
    dy: np.ndarray,
    y2: np.ndarray,
    dy2: np.ndarray,
    work: np.ndarray,
    e: np.ndarray,
) -> None:
    """One REBAR estimate from ``2N`` uniforms (``u`` then ``v``), compressed layout."""
    L = sizes.shape[0] - 2
    N = uoff[L]
    sizes[0] * sizes[1]
    low = tab1[6, 0]
    u = noise[:N]
    v = noise[N:]
    for l in range(L):
        sizes[l]
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            ai = preactivation(theta, sizes, woff, boff, uoff, tab1, h, l, i)
            a[k] = ai
            fire = ai + logistic(u[k]) > 0.0
            bit[k] = 1.0 if fire else 0.0
            h[k] = 1.0 if fire else low
    output_layer(theta, sizes, woff, boff, uoff, h, y)
    C = loss_and_grad(loss, y, t, dy)
    for l in range(L):
        n = sizes[l + 1]
        base = uoff[l]
        zl = zbuf[0, :n]
        zc = zbuf[1, :n]
        dzc = zbuf[2, :n]
        for i in range(n):
            k = base + i
            ai = a[k]
            zl[i] = ai + logistic(u[k])
            lp = log_sigmoid(ai)
            lq = log_sigmoid(-ai)
            vk = v[k]
            if bit[k] == 1.0:
                # v' = 1 - p (1 - v); 1 - v' = p (1 - v).
                one_minus = exp(lp) * (1.0 - vk)
                vp = 1.0 - one_minus
                zc[i] = ai + log(vp) - lp - log1p(-vk)
                dzc[i] = exp(lp) * vk / vp
            else:
                # v' = v (1 - p).
                vp = vk * exp(lq)
                zc[i] = ai + log(vk) + lq - log1p(-vp)
                dzc[i] = exp(lq) * (1.0 - vk) / (1.0 - vp)
        gz1 = gz[0, :n]
        gz2 = gz[1, :n]
        _relaxed_loss(
            theta, sizes, woff, boff, uoff, t, loss, l, zl, u, tau, low, h, hr, jr, y2, dy2,
            work, gz1,
        )  # fmt: skip
        c_tilde = _relaxed_loss(
            theta, sizes, woff, boff, uoff, t, loss, l, zc, u, tau, low, h, hr, jr, y2, dy2,
            work, gz2,
        )  # fmt: skip
        r = C - eta * c_tilde
        sizes[l]
        for i in range(n):
            k = base + i
            p = exp(log_sigmoid(a[k]))
            g = r * (bit[k] - p) + eta * gz1[i] - eta * gz2[i] * dzc[i]
            write_unit(sizes, woff, boff, uoff, h, l, i, g, e)
    output_gradient(sizes, woff, boff, uoff, h, dy, e)


ENTRIES = (
    Estimator(
        name="rebar",
        code=REBAR,
        summary="REBAR: REINFORCE with a conditional Concrete control variate (eta, tau)",
        reference="Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), NeurIPS, "
        "arXiv:1703.07370",
        unbiased=True,
        noise="continuous",
        options={"eta": 1.0, "tau": 0.5},
        validators={"eta": check_finite("eta"), "tau": check_positive("tau")},
        encode=lambda options: np.array([options["eta"], options["tau"]]),
        noise_size=lambda hidden, options: 2 * int(sum(hidden)),
    ),
)
