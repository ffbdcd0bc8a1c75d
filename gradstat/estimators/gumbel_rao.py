"""Gumbel-Rao: straight-through Gumbel with its surrogate Rao-Blackwellised given the bits.

Per unit, with ``kappa`` 1 for units in ``{0, 1}`` and 2 for ``values="pm1"``, the hard
bit ``b = 1[a + L > 0]`` is drawn from the uniform ``u`` (``L = log u - log1p(-u)``), then
``K`` logistic draws ``L_1..L_K`` *conditional on* ``b`` replace ``L`` in the Gumbel
straight-through surrogate::

    dh/da := kappa (1/K) sum_k sigmoid'((a + L_k)/tau) / tau,   L_k ~ L | 1[a + L > 0] = b

and ``dC/dy`` is backpropagated through the hard values with these slopes. ``z_k = a +
L_k`` given ``b`` is drawn by inversion from a uniform ``v``: ``z = a + logit(1 - p (1 -
v))`` when ``b = 1`` and ``z = a + logit((1 - p) v)`` when ``b = 0``. A draw reads
``(K + 1) N`` uniforms: ``u``, then block ``k`` (``k = 1..K``) of ``N`` uniforms ``v``.

Given the bits, the units' conditional noises are independent and each enters every
backpropagated product at most once, so ``E[g_hat | h]`` is the backprop with the
conditional mean surrogates ``m(a, b) = E[sigmoid'((a + L)/tau)/tau | b]``: the mean of
Gumbel-Rao equals Gumbel straight-through's for every ``K``, and for ``K = 1`` the two
have the same distribution. The estimate is a multilinear function of per-unit averages
of ``K`` i.i.d. terms, whose variance ``sum_A prod_{i in A} (v_i / K) (d_A f)^2`` falls
with ``K``. As ``tau -> 0``, ``m(a, 1) -> (1 - p)/2`` and ``m(a, 0) -> p/2`` (half the
point mass of ``sigmoid'(z/tau)/tau`` at the boundary ``z = 0``, over ``P(b)``): the
surrogate of the binary ZGR / DARN(1/2) estimator, ReinMax at ``tau = 1``.

:func:`surrogate_moments` computes ``m`` and the second moment by one-dimensional
Gauss-Legendre quadrature; :mod:`gradstat.engines.quadrature` uses it for the exact mean and
variance of ``gumbel_st`` and ``gumbel_rao``.
"""

from __future__ import annotations

from math import ceil, exp, log, log1p

import numpy as np
from numba import njit

from gradstat.estimators.codes import GUMBEL_RAO
from gradstat.estimators.options import check_count, check_positive
from gradstat.estimators.registry import Estimator
from gradstat.estimators.relaxed import backprop_values, logistic
from gradstat.kernels.forward import log_sigmoid, preactivation, sigmoid_derivative
from gradstat.kernels.geometry import Example
from gradstat.kernels.workspace import JAC, H

QUAD_NODES, QUAD_WEIGHTS = np.polynomial.legendre.leggauss(8)
"""Gauss-Legendre rule of 8 nodes on ``[-1, 1]``, used on every panel."""

QUAD_SPAN = 42.0
"""Integrals are cut where the integrand falls below ``exp(-42)`` (about 6e-19) of its
largest possible value: beyond ``42 tau`` for ``sigmoid'(z/tau)``, beyond ``42`` from the
logistic density's mode."""


@njit(cache=True)
def conditional_logistic(a: float, bit: float, v: float) -> float:
    """``z = a + L`` with ``L`` logistic conditioned on ``1[a + L > 0] = bit``, by inversion
    of the uniform ``v`` in ``(0, 1)``."""
    lp = log_sigmoid(a)
    lq = log_sigmoid(-a)
    if bit == 1.0:
        # u' = 1 - p (1 - v): log u' = log1p(-p (1 - v)), log(1 - u') = log p + log1p(-v).
        return a + log1p(-exp(lp) * (1.0 - v)) - lp - log1p(-v)
    # u' = (1 - p) v: log u' = log(1 - p) + log v.
    return a + lq + log(v) - log1p(-exp(lq) * v)


@njit(cache=True)
def gumbel_rao_draw(
    K: int, tau: float, ex: Example, noise: np.ndarray, ws: np.ndarray, e: np.ndarray
) -> None:
    """One Gumbel-Rao estimate from ``(K + 1) N`` uniforms, compressed layout."""
    geo = ex.geo
    L = geo.sizes.shape[0] - 2
    N = geo.uoff[L]
    h = ws[H, :N]
    jac = ws[JAC, :N]
    low = ex.tab1[6, 0]
    kappa = 1.0 - low
    for l in range(L):
        for i in range(geo.sizes[l + 1]):
            k = geo.uoff[l] + i
            a = preactivation(ex.theta, geo, ex.tab1, h, l, i)
            bit = 1.0 if a + logistic(noise[k]) > 0.0 else 0.0
            total = 0.0
            for r in range(K):
                z = conditional_logistic(a, bit, noise[(r + 1) * N + k])
                total += sigmoid_derivative(z / tau)
            jac[k] = kappa * total / (K * tau)
            h[k] = 1.0 if bit == 1.0 else low
    backprop_values(ex, ws, e)


@njit(cache=True)
def surrogate_moments(a: float, bit: float, tau: float) -> tuple[float, float]:
    """``E[J | b]`` and ``E[J^2 | b]`` for ``J = sigmoid'((a + L)/tau)/tau`` given the bit.

    With ``c = a`` for ``b = 1`` and ``c = -a`` for ``b = 0`` (``L`` and ``sigmoid'`` are
    symmetric), ``E[J^n | b] = int_0^inf J(z)^n sigmoid'(z - c) dz / sigmoid(c)``. The
    integral is cut to ``[max(0, c - 42), min(42 tau, max(c, 0) + 42)]`` (what lies outside
    is below ``6e-19`` of ``J``'s largest value ``1/(4 tau)``) and summed over panels no wider
    than ``min(tau, 1)``, the narrower of the two factors' scales, with 8 Gauss-Legendre
    nodes each: both factors are analytic within ``pi`` scales of the real axis, so each
    panel is exact to about ``1e-17`` relative. At most 84 panels.
    """
    c = a if bit == 1.0 else -a
    lp = log_sigmoid(c)
    lo = max(0.0, c - QUAD_SPAN)
    hi = min(QUAD_SPAN * tau, max(c, 0.0) + QUAD_SPAN)
    if hi <= lo:
        return 0.0, 0.0
    panels = int(ceil((hi - lo) / min(tau, 1.0)))
    step = (hi - lo) / panels
    m1 = 0.0
    m2 = 0.0
    for q in range(panels):
        mid = lo + (q + 0.5) * step
        for r in range(QUAD_NODES.shape[0]):
            z = mid + 0.5 * step * QUAD_NODES[r]
            dens = exp(log_sigmoid(z - c) + log_sigmoid(c - z) - lp)
            j = sigmoid_derivative(z / tau) / tau
            w = 0.5 * step * QUAD_WEIGHTS[r] * dens * j
            m1 += w
            m2 += w * j
    return m1, m2


@njit(cache=True)
def conditional_surrogate(
    code: int, opts: np.ndarray, a: float, bit: float, kappa: float
) -> tuple[float, float]:
    """Mean and variance, given the unit's bit, of the slope ``dh/da`` that estimator
    ``code`` uses for that unit: ``gumbel_st`` (``opts = [tau]``) one draw of ``J``,
    ``gumbel_rao`` (``opts = [k, tau]``) the average of ``k``; ``kappa`` as in the module
    docstring."""
    if code == GUMBEL_RAO:
        draws, tau = opts[0], opts[1]
    else:
        draws, tau = 1.0, opts[0]
    m1, m2 = surrogate_moments(a, bit, tau)
    return kappa * m1, kappa * kappa * max(m2 - m1 * m1, 0.0) / draws


def _noise_size(hidden: tuple[int, ...], options: dict) -> int:
    return (int(options["k"]) + 1) * int(sum(hidden))


ENTRIES = (
    Estimator(
        name="gumbel_rao",
        code=GUMBEL_RAO,
        summary="Gumbel-Rao: Gumbel-ST surrogate averaged over k draws of L given the bit",
        reference="Paulus, Maddison & Krause (2021), ICLR, arXiv:2010.04838",
        unbiased=False,
        noise="continuous",
        options={"k": 10, "tau": 1.0},
        validators={"k": check_count("k", 1), "tau": check_positive("tau")},
        encode=lambda options: np.array([float(options["k"]), options["tau"]]),
        noise_size=_noise_size,
        quadrature=True,
    ),
)
