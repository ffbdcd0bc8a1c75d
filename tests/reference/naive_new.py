"""Naive, independent references for PSA, Gumbel-Rao and the Gumbel surrogate's moments.

Written from the papers' definitions in plain NumPy/SciPy, sharing no code with the
``gradstat`` package (the elementary pieces come from the other test oracles,
:mod:`naive_enumerator` and :mod:`naive_zoo`).

* :func:`psa_estimate` builds PSA the way its authors' code does: a scalar objective of
  the parameters in which every "detached" quantity is frozen at the current parameters,
  whose gradient is the estimate. Here the gradient is taken by central finite
  differences, so nothing of the backward recursion is reused. ``linearize=True`` gives
  the paper's linearised ("deep straight-through") variant.
* :func:`gumbel_rao_estimate`: the conditional noises by inversion with
  ``scipy.stats.logistic.ppf``.
* :func:`surrogate_moments`: ``E[J^n | b]`` of the Gumbel surrogate by adaptive
  ``scipy.integrate.quad`` over the conditional uniform of the bit's interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import integrate, stats
from scipy.special import expit

from reference import naive_enumerator as ne
from reference import naive_zoo as nz


def _layers(sizes: Sequence[int], noise: np.ndarray) -> list[np.ndarray]:
    return nz._split(np.asarray(noise, dtype=float), [int(s) for s in sizes[1:-1]])


def _flip_value(h: np.ndarray, values: str) -> np.ndarray:
    """The other value of each unit: ``1 - h`` or ``-h``."""
    return 1.0 - h if values == "01" else -h


def _psa_objective(
    theta: np.ndarray, theta0: np.ndarray, sizes, x, t, loss, values, bits, linearize
) -> float:
    """The authors' surrogate objective (``fw_SAH``) at ``theta``, detached parts at
    ``theta0``; the bits are those sampled at ``theta0``."""
    params = ne.unpack(sizes, theta)
    params0 = ne.unpack(sizes, theta0)
    hs = [nz._value(b, values) for b in bits]
    inputs = [np.asarray(x, dtype=float), *hs[:-1]]
    q = None
    for layer, ((W, b), (W0, b0)) in enumerate(zip(params[:-1], params0[:-1], strict=True)):
        s = 2.0 * bits[layer] - 1.0
        a = W @ inputs[layer] + b
        a0 = W0 @ inputs[layer] + b0
        q_new = expit(-s * a) - expit(-s * a0)  # value 0, derivative of the flip probability
        if q is not None:
            h_prev = inputs[layer]
            jump = _flip_value(h_prev, values) - h_prev
            if linearize:
                D = (-s * expit(a0) * expit(-a0))[:, None] * W0 * jump[None, :]
            else:
                a_flip = a0[:, None] + W0 * jump[None, :]  # (j, i)
                D = expit(-s[:, None] * a_flip) - expit(-s * a0)[:, None]
            q_new = q_new + D @ q
        q = q_new
    W_o, b_o = params[-1]
    W_o0, b_o0 = params0[-1]
    h_top = hs[-1]
    C = ne.loss_value(loss, W_o @ h_top + b_o, t)
    C0 = ne.loss_value(loss, W_o0 @ h_top + b_o0, t)
    jump = _flip_value(h_top, values) - h_top
    if linearize:
        dC = (W_o0.T @ ne.loss_grad(loss, W_o0 @ h_top + b_o0, t)) * jump
    else:
        dC = np.array(
            [
                ne.loss_value(loss, W_o0 @ (h_top + jump[i] * np.eye(len(h_top))[i]) + b_o0, t) - C0
                for i in range(len(h_top))
            ]
        )
    return float(C + q @ dC)


def psa_estimate(
    sizes: Sequence[int], theta: np.ndarray, x: np.ndarray, t: Any, loss: str, u: np.ndarray,
    *, values: str = "01", linearize: bool = False, step: float = 1e-5,
) -> np.ndarray:  # fmt: skip
    """PSA for the state drawn by ``u`` (unit fires when ``u < p``), SPEC order, as the
    central-difference gradient of :func:`_psa_objective` (error about ``1e-9``)."""
    sizes = tuple(int(s) for s in sizes)
    theta = np.asarray(theta, dtype=float)
    fwd = nz._uniform_pass(ne.unpack(sizes, theta), np.asarray(x, float), values,
                           _layers(sizes, u))  # fmt: skip
    bits = fwd["bits"]
    grad = np.empty_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = step
        up = _psa_objective(theta + e, theta, sizes, x, t, loss, values, bits, linearize)
        down = _psa_objective(theta - e, theta, sizes, x, t, loss, values, bits, linearize)
        grad[k] = (up - down) / (2 * step)
    return grad


def gumbel_rao_estimate(
    sizes: Sequence[int], theta: np.ndarray, x: np.ndarray, t: Any, loss: str,
    noise: np.ndarray, *, k: int, tau: float, values: str = "01",
) -> np.ndarray:  # fmt: skip
    """Gumbel-Rao from ``(k + 1) N`` uniforms: ``u`` sets the bits (``a + logit(u) > 0``),
    block ``r`` the ``r``-th conditional logistic draw of every unit."""
    sizes = tuple(int(s) for s in sizes)
    params = ne.unpack(sizes, np.asarray(theta, dtype=float))
    N = sum(sizes[1:-1])
    noise = np.asarray(noise, dtype=float)
    fwd = nz._logistic_pass(params, np.asarray(x, float), values, _layers(sizes, noise[:N]))
    blocks = [_layers(sizes, noise[(r + 1) * N : (r + 2) * N]) for r in range(k)]
    jac = []
    for layer, (a, bits) in enumerate(zip(fwd["a"], fwd["bits"], strict=True)):
        edge = stats.logistic.cdf(-a)  # P(L < -a) = 1 - p: the unit fires above it
        total = np.zeros_like(a)
        for block in blocks:
            v = block[layer]
            quantile = np.where(bits == 1.0, edge + (1.0 - edge) * v, edge * v)
            z = a + stats.logistic.ppf(quantile)
            total += stats.logistic.pdf(z / tau) / tau
        jac.append(nz._kappa(values) * total / k)
    return nz._pack(sizes, nz._backprop(params, fwd["inputs"], fwd["h"][-1], fwd["y"], loss,
                                        t, jac))  # fmt: skip


def surrogate_moments(a: float, bit: int, tau: float) -> tuple[float, float]:
    """``E[J | b]``, ``E[J^2 | b]`` for ``J = sigmoid'((a + L)/tau)/tau``, ``L`` logistic
    given the bit, by adaptive quadrature over the conditional uniform ``w`` in ``(0, 1)``:
    the upper tail ``P(L > z - a)`` is ``p (1 - w)`` for ``b = 1`` and ``p + (1 - p) w``
    for ``b = 0``, so that ``z = a + L = 0`` at ``w = 0`` either way, with breakpoints
    where ``J`` is peaked (width about ``tau (1 - p)``, or ``tau p``, in ``w``)."""
    p = float(expit(a))
    scales = np.array([0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0])
    points = tau * float(expit(-a) if bit == 1 else p) * scales

    q_fire, q_rest = p, float(expit(-a))  # P(b = 1), P(b = 0), neither rounded to 1

    def z(w: float) -> float:
        # The upper tail P(L > z - a) is p (1 - w) for b = 1 and p + (1 - p) w for b = 0;
        # the lower tail is one minus it. Whichever is below 1/2 is formed directly (no
        # cancellation) and inverted by isf or ppf.
        upper = q_fire * (1.0 - w) if bit == 1 else q_fire + q_rest * w
        lower = q_rest + q_fire * w if bit == 1 else q_rest * (1.0 - w)
        if upper <= 0.5:
            return a + stats.logistic.isf(upper)
        return a + stats.logistic.ppf(lower)

    # Breakpoints only where the spike is narrower than J's decay over the interval.
    inside = sorted(q for q in points if 0.0 < q < 1.0) if tau < 1.0 else None

    def J(w: float) -> float:
        return float(stats.logistic.pdf(z(w) / tau) / tau)

    out = []
    for power in (1, 2):
        value, _ = integrate.quad(
            lambda w, n=power: J(w) ** n, 0.0, 1.0, points=inside, limit=500,
            epsabs=1e-14 / (4.0 * tau) ** power, epsrel=1e-11,
        )  # fmt: skip
        out.append(value)
    return out[0], out[1]


def _conditional_z(a: float, bit: float, v: float) -> float:
    """``a + L`` with ``L`` logistic given ``1[a + L > 0] = bit``, by inversion of ``v``."""
    edge = stats.logistic.cdf(-a)  # P(L < -a)
    return a + stats.logistic.ppf(edge + (1.0 - edge) * v if bit == 1.0 else edge * v)


def relax_estimate(
    sizes: Sequence[int], theta: np.ndarray, x: np.ndarray, t: Any, loss: str,
    noise: np.ndarray, control: Any, *, values: str = "01", step: float = 1e-6,
) -> np.ndarray:  # fmt: skip
    """RELAX from ``2N`` uniforms (``u`` then ``v``), written from Grathwohl et al.'s
    estimator: ``ztilde`` by ``scipy.stats.logistic`` inversion and ``d ztilde / da`` by
    central differences in ``a`` with ``v`` held fixed."""
    sizes = tuple(int(s) for s in sizes)
    params = ne.unpack(sizes, np.asarray(theta, dtype=float))
    N = sum(sizes[1:-1])
    noise = np.asarray(noise, dtype=float)
    u_layers, v_layers = _layers(sizes, noise[:N]), _layers(sizes, noise[N:])
    fwd = nz._logistic_pass(params, np.asarray(x, float), values, u_layers)
    C = ne.loss_value(loss, fwd["y"], t)
    terms = []
    for layer, (a, bits) in enumerate(zip(fwd["a"], fwd["bits"], strict=True)):
        z = a + nz._logit(u_layers[layer])
        zt = np.array([_conditional_z(ai, bi, vi)
                       for ai, bi, vi in zip(a, bits, v_layers[layer], strict=True)])  # fmt: skip
        slope = np.array([
            (_conditional_z(ai + step, bi, vi) - _conditional_z(ai - step, bi, vi)) / (2 * step)
            for ai, bi, vi in zip(a, bits, v_layers[layer], strict=True)
        ])  # fmt: skip
        _, dz = control(layer, z)
        c_t, dzt = control(layer, zt)
        terms.append((C - c_t) * (bits - expit(a)) + dz - dzt * slope)
    out = nz._direct(params, fwd["h"][-1], fwd["y"], loss, t)
    return nz._pack(sizes, nz._from_unit_terms(fwd["inputs"], terms, out))
