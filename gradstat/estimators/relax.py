"""RELAX: REINFORCE with a free-form control variate of the relaxed noise, plus its
reparameterised correction (Grathwohl, Choi, Wu, Roeder & Duvenaud (2018), ICLR,
arXiv:1711.00123).

Per stochastic layer ``t`` (layers below it at the hard sample, as gradstat's ``rebar``):
``z_t = a_t + logit(u_t)`` gives the bits ``b_t = 1[z_t > 0]``; ``ztilde_t = a_t +
logit(v')`` is a draw of ``z_t`` given ``b_t`` (``v' = 1 - p (1 - v)`` if ``b = 1``, ``v' =
(1 - p) v`` if ``b = 0``, ``v ~ U(0, 1)``), with ``d ztilde_i / da_i = p v / v'`` (``b = 1``)
or ``(1 - p)(1 - v) / (1 - v')`` (``b = 0``). With a control variate ``c(t, z) -> (c,
dc/dz)``::

    g_hat(b_t)_i = [C(y(h)) - c(t, ztilde_t)] (b_i - p_i)
                   + dc/dz_i(t, z_t) - dc/dz_i(t, ztilde_t) dztilde_i/da_i
    g_hat(W_t)_ij = g_hat(b_t)_i h_{t-1,j}

and the direct path ``dC/dW_o`` at the hard sample for the output layer. Since
``E[c(ztilde) d log P(b)] = E[dc(z)/dtheta] - E[dc(ztilde)/dtheta]`` for any ``c`` that sees
layer ``t``'s noise only through its argument (it may depend on the layers below, on
other noise, on anything fixed), RELAX is unbiased for every such ``c``. ``rebar`` is the
case ``c = eta`` times the loss of the Concrete-relaxed network.

RELAX is offered as a Python-level estimator (numpy, Monte Carlo), so that the control
variate can be any Python callable, a closure over learned parameters, or a jitted
function called from Python: :func:`relax_estimator` wraps one, and
:func:`linear_control` is the simple built-in parametric control ``c(t, z) = sum_i w_{t,i}
sigmoid(z_i / tau)`` (a linear function of the relaxed sample). A draw reads ``2N``
uniforms, ``u`` then ``v`` (:func:`relax_from_noise`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.special import expit, log_expit

from gradstat._validation import check_real
from gradstat.estimators.options import check_positive
from gradstat.estimators.user import PythonEstimator
from gradstat.kernels.forward import loss_and_grad
from gradstat.network import LOSSES, BinaryNetwork

Control = Callable[[int, np.ndarray], tuple[float, np.ndarray]]
"""``c(t, z) -> (value, dc/dz)`` for stochastic layer ``t`` (0-based) at noisy logits ``z``."""


def linear_control(weights: float | Sequence[Any] = 1.0, tau: float = 1.0) -> Control:
    """The control ``c(t, z) = sum_i w_{t,i} sigmoid(z_i / tau)``, ``dc/dz_i = w_{t,i}
    sigmoid'(z_i / tau) / tau``.

    ``weights`` is one number for every unit, or a list or tuple with one entry per
    stochastic layer (an array of that layer's width, or a number for all its units).
    """
    tau = check_positive("tau")(tau)
    if isinstance(weights, (list, tuple)):
        per_layer = [np.asarray(w, dtype=float) for w in weights]
        scalar = 0.0
    else:
        per_layer = None
        scalar = check_real(weights, "weights")

    def control(t: int, z: np.ndarray) -> tuple[float, np.ndarray]:
        w = scalar if per_layer is None else per_layer[t]
        s = z / tau
        return float(np.sum(w * expit(s))), w * expit(s) * expit(-s) / tau

    return control


def _conditional(a: np.ndarray, bits: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ztilde`` given the bits and ``d ztilde / da`` (module docstring), in logs where the
    probabilities are tiny."""
    lp, lq = log_expit(a), log_expit(-a)
    p, q = np.exp(lp), np.exp(lq)
    fire = bits == 1.0
    # b = 1: v' = 1 - p (1 - v), 1 - v' = p (1 - v); b = 0: v' = q v, 1 - v' = 1 - q v.
    log_vp = np.where(fire, np.log1p(-p * (1.0 - v)), lq + np.log(v))
    log_1m = np.where(fire, lp + np.log1p(-v), np.log1p(-q * v))
    slope = np.where(fire, p * v * np.exp(-log_vp), q * (1.0 - v) * np.exp(-log_1m))
    return a + log_vp - log_1m, slope


def relax_from_noise(
    net: BinaryNetwork, x: Any, t: Any, noise: np.ndarray, control: Control
) -> np.ndarray:
    """One RELAX estimate (gradstat's parameter order) for one example from ``2N`` uniforms strictly
    inside ``(0, 1)``: ``u`` (the bits) then ``v`` (the conditional noise)."""
    layers = net.layers()
    N = net.n_stochastic
    noise = np.asarray(noise, dtype=float)
    if noise.shape != (2 * N,) or not np.all((noise > 0.0) & (noise < 1.0)):
        raise ValueError(f"noise must hold {2 * N} uniforms strictly inside (0, 1)")
    u, v = noise[:N], noise[N:]
    low = -1.0 if net.values == "pm1" else 0.0
    h = np.asarray(x, dtype=float).reshape(-1)
    inputs, logits, bits = [], [], []
    start = 0
    for W, b in layers[:-1]:
        n = b.shape[0]
        inputs.append(h)
        a = W @ h + b
        z = a + np.log(u[start : start + n]) - np.log1p(-u[start : start + n])
        logits.append((a, z))
        bits.append((z > 0.0).astype(float))
        h = np.where(z > 0.0, 1.0, low)
        start += n
    W_o, b_o = layers[-1]
    y = W_o @ h + b_o
    dy = np.empty_like(y)
    target = np.atleast_1d(np.asarray(t, dtype=float))
    C = loss_and_grad(LOSSES[net.loss], y, target, dy)
    out = []
    start = 0
    for layer, ((a, z), bit) in enumerate(zip(logits, bits, strict=True)):
        n = a.shape[0]
        zt, slope = _conditional(a, bit, v[start : start + n])
        _, dc_z = control(layer, z)
        c_zt, dc_zt = control(layer, zt)
        g = (C - c_zt) * (bit - expit(a)) + np.asarray(dc_z) - np.asarray(dc_zt) * slope
        out += [np.outer(g, inputs[layer]).ravel(), g]
        start += n
    out += [np.outer(dy, h).ravel(), dy]
    return np.concatenate(out)


def relax_estimator(control: Control | None = None, *, name: str = "relax") -> PythonEstimator:
    """RELAX with the control variate ``control`` (default :func:`linear_control` ``()``)
    as a user estimator, accepted wherever an estimator is (Monte Carlo).

    ``control(t, z)`` returns the control's value and its gradient in ``z`` (shape of
    ``z``) for stochastic layer ``t`` (0-based) at the noisy logits ``z = a + logit(u)``
    of that layer. Each draw takes ``2N`` fresh uniforms from the ``rng`` it is given.

    Examples
    --------
    >>> import numpy as np, gradstat as gs
    >>> from gradstat.estimators.relax import linear_control, relax_estimator
    >>> net = gs.BinaryNetwork.random((2, 3, 1), seed=0)
    >>> r = gs.analyze(net, np.ones(2), [0.5], relax_estimator(linear_control(0.3)),
    ...                n_samples=2000, seed=1)
    """
    control = linear_control() if control is None else control
    if not callable(control):
        raise TypeError(
            f"control must be a callable c(t, z) -> (value, dc/dz), got {type(control).__name__}"
        )

    def relax(net: BinaryNetwork, x: Any, t: Any, rng: np.random.Generator) -> np.ndarray:
        # Open interval: a uniform of exactly 0 has probability 2^-53 but an infinite logit.
        noise = np.clip(rng.random(2 * net.n_stochastic), 2.0**-60, 1.0 - 2.0**-53)
        return relax_from_noise(net, x, t, noise, control)

    return PythonEstimator(relax, name=name, unbiased=True)
