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

**Tied conditional noise (``tied=True``), the authors' multi-layer code.** The reference
implementation (``tensorflow/models``, ``research/rebar/rebar.py``, ``quadratic=True``)
reparameterises the conditional sample of *every* layer ``k >= t`` in the relaxed pass
``c(ztilde_t)``, not only of the switch layer ``t``: layer ``k > t`` gets ``ztilde_k =
atilde_k + logit(v'_k)`` with ``v'_k`` equal to ``u_k`` in value but differentiated as the
conditional sample given ``b_k`` at the hard logit ``a_k``, ``d logit(v'_k)/d a_k = e_k =
-(1 - p_k)/u_k`` (``b_k = 1``) or ``-p_k/(1 - u_k)`` (``b_k = 0``). The relaxed values are
unchanged; the estimate gains, for every ``k > t``, ``-eta r_k e_k`` on ``b_k`` and ``-eta
r_k e_k h_{k-1}`` on ``W_k`` (``r_k = dc(ztilde_t)/dz_k`` in that pass, ``h_{k-1}`` the hard
values). By the REBAR identity for unit ``k`` alone, ``E[r_k e_k] = -E[c(ztilde_t) (b_k -
p_k)]``, so the tied estimate's mean is the gradient plus ``eta sum_{t<k} E[c(ztilde_t)
(b_k - p_k) h_{k-1}]``, which is not zero: tied REBAR is biased from the second
stochastic layer up (the switch layer's own ``v_t`` stays gradstat's independent draw; with
``v_t`` the cell fraction of ``u_t``, ``(u_t - 1 + p_t)/p_t`` or ``u_t/(1 - p_t)``, the
estimate is the published code's draw for draw). One stochastic layer is unaffected.
"""

from __future__ import annotations

from math import exp, log, log1p

import numpy as np
from numba import njit

from gradstat._validation import check_bool
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
    transposed_product,
    write_unit,
)
from gradstat.kernels.geometry import Example
from gradstat.kernels.workspace import REBAR_G, REBAR_Z, UNIT2, UNIT3, UNIT4, WORK, state_rows


@njit(cache=True)
def _relaxed_loss(
    ex: Example, layer: int, z_layer: np.ndarray, u: np.ndarray, tau: float, ws: np.ndarray,
    gz: np.ndarray, tied: float,
) -> float:  # fmt: skip
    """``c(z)`` for layer ``layer`` at ``z_layer``, and ``dc/dz`` of that layer into ``gz``.

    Layers below ``layer`` keep the hard values (row ``H`` of ``ws``); rows ``UNIT3`` and
    ``UNIT4`` receive the relaxed values ``hr`` and their slopes ``jr = d hr / dz``. With
    ``r_l = dc/dz_l``: ``r_L = (W_o^T dc/dy) * jr_L`` and ``r_{l-1} = (W_l^T r_l) *
    jr_{l-1}``, each product summed as in :func:`transposed_product`. A nonzero ``tied``
    adds ``tied * r_k * e_k`` (the tied noise's path, module docstring) to row ``UNIT2``
    for every unit ``k`` above ``layer``.
    """
    theta, geo, tab1, t, loss, _ = ex
    sizes, woff, _, uoff = geo
    L = sizes.shape[0] - 2
    a, _, bit, h, _, _, _, y, dy = state_rows(ws, geo)
    extra = ws[UNIT2, : uoff[L]]
    hr = ws[UNIT3, : uoff[L]]
    jr = ws[UNIT4, : uoff[L]]
    work = ws[WORK : WORK + 2]
    low = tab1[6, 0]
    kappa = 1.0 - low
    for k in range(uoff[layer]):
        hr[k] = h[k]
    for l in range(layer, L):
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            if l == layer:
                z = z_layer[i]
            else:
                z = preactivation(theta, geo, tab1, hr, l, i) + logistic(u[k])
            s = z / tau
            ls1 = log_sigmoid(s)
            hr[k] = kappa * exp(ls1) + low
            jr[k] = kappa * exp(ls1 + log_sigmoid(-s)) / tau
    output_layer(theta, geo, hr, y)
    c = loss_and_grad(loss, y, t, dy)
    cur = 0
    transposed_product(theta, woff[L], sizes[L + 1], sizes[L], dy, work[cur])
    for l in range(L, layer, -1):
        n = sizes[l]
        g = work[cur, :n]
        for i in range(n):
            g[i] *= jr[uoff[l - 1] + i]
        if tied != 0.0 and l - 1 > layer:
            for i in range(n):
                k = uoff[l - 1] + i
                if bit[k] == 1.0:
                    ek = -exp(log_sigmoid(-a[k])) / u[k]
                else:
                    ek = -exp(log_sigmoid(a[k])) / (1.0 - u[k])
                extra[k] += tied * g[i] * ek
        if l - 1 > layer:
            nxt = 1 - cur
            transposed_product(theta, woff[l - 1], n, sizes[l - 1], g, work[nxt])
            cur = nxt
    for i in range(sizes[layer + 1]):
        gz[i] = work[cur, i]
    return c


@njit(cache=True)
def rebar_draw(
    eta: float, tau: float, tied: bool, ex: Example, noise: np.ndarray, ws: np.ndarray,
    e: np.ndarray,
) -> None:  # fmt: skip
    """One REBAR estimate from ``2N`` uniforms (``u`` then ``v``), compressed layout;
    ``tied`` adds the published code's path through the upper layers' conditional noise."""
    theta, geo, tab1, t, loss, _ = ex
    sizes, uoff = geo.sizes, geo.uoff
    L = sizes.shape[0] - 2
    N = uoff[L]
    a, _, bit, h, _, y, dy, _, _ = state_rows(ws, geo)
    zbuf = ws[REBAR_Z : REBAR_Z + 3]
    gz = ws[REBAR_G : REBAR_G + 2]
    low = tab1[6, 0]
    u = noise[:N]
    v = noise[N:]
    extra = ws[UNIT2, :N]
    for k in range(N):
        extra[k] = 0.0
    coef = -eta if tied else 0.0
    for l in range(L):
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            ai = preactivation(theta, geo, tab1, h, l, i)
            a[k] = ai
            fire = ai + logistic(u[k]) > 0.0
            bit[k] = 1.0 if fire else 0.0
            h[k] = 1.0 if fire else low
    output_layer(theta, geo, h, y)
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
        _relaxed_loss(ex, l, zl, u, tau, ws, gz1, 0.0)
        r = C - eta * _relaxed_loss(ex, l, zc, u, tau, ws, gz2, coef)
        for i in range(n):
            k = base + i
            p = exp(log_sigmoid(a[k]))
            # extra[k] is complete: it collects the paths of the switch layers below l.
            g = r * (bit[k] - p) + eta * gz1[i] - eta * gz2[i] * dzc[i] + extra[k]
            write_unit(geo, h, l, i, g, e)
    output_gradient(geo.sizes, geo.woff, geo.boff, uoff, h, dy, e)


ENTRIES = (
    Estimator(
        name="rebar",
        code=REBAR,
        summary="REBAR: REINFORCE with a conditional Concrete control variate (eta, tau; "
        "tied=True: the published multi-layer code, biased)",
        reference="Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), NeurIPS, "
        "arXiv:1703.07370",
        unbiased=True,
        noise="continuous",
        options={"eta": 1.0, "tau": 0.5, "tied": False},
        validators={
            "eta": check_finite("eta"),
            "tau": check_positive("tau"),
            "tied": lambda value: check_bool(value, "tied"),
        },
        encode=lambda options: np.array(
            [options["eta"], options["tau"], 1.0 if options["tied"] else 0.0]
        ),
        noise_size=lambda hidden, options: 2 * int(sum(hidden)),
    ),
)
