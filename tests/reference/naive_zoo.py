"""Naive, independent reference implementation of the further gradient estimators.

Written from the estimator definitions (SPEC.md section 2b and the exact definitions that
go with it) and shares no code with the ``gradstat`` package; the elementary pieces
(parameter layout, losses) come from :mod:`naive_enumerator`, the other test oracle.
Speed is irrelevant (networks of up to about eight stochastic units); clarity is the
point.  Only numpy, itertools and math are used.

Model (SPEC section 1), for one input ``x`` with ``h_0 = x``: a unit of layer ``l`` has the
pre-activation ``a = W_l h_{l-1} + b_l``, the probability ``p = sigmoid(a)``, a bit
``b ~ Bernoulli(p)`` and the value ``h = v(b)`` with ``v(b) = b`` (``values="01"``) or
``v(b) = 2b - 1`` (``values="pm1"``); ``y = W_o h_L + b_o`` and ``C = loss(y, t)``.
``kappa = 1`` for ``"01"`` and ``2`` for ``"pm1"`` (``d E[h | a] / da = kappa p (1 - p)``).
Scores are those of the bits: ``d log P / d b_l = b_l - p_l``,
``d log P / d W_l = outer(b_l - p_l, h_{l-1})``.

Public functions
----------------
:func:`estimate`
    One estimate of one example from its noise, for every estimator in
    :data:`ESTIMATORS`.  Noise layout (``N`` stochastic units, layer 1 first):

    * ``st_tempered``, ``reinmax``, ``leg``, ``muprop``: ``N`` uniforms ``u``; unit ``k``
      fires when ``u[k] < p[k]``.
    * ``reinforce_loo``: ``k * N`` uniforms; draw ``j`` uses ``u[j*N:(j+1)*N]`` as above.
    * ``arm``, ``disarm``: ``N`` uniforms ``u``, then for ``t = 1..L-1`` one uniform
      ``v^(t)`` per unit of layers ``t+1..L`` (none for one stochastic layer).
    * ``gumbel_st``, ``concrete``: ``N`` uniforms; ``L = log u - log(1 - u)`` and a unit
      fires when ``a + L > 0`` (that is, when ``u > 1 - p``).
    * ``rebar``: ``2N`` uniforms, ``u`` then ``v``.
    * ``noisy_rectifier``: ``N`` standard normals ``z``.
:func:`example_moments`
    Exact per-example mean and per-coordinate variance for the estimators with exact
    moments (:data:`EXACT_ESTIMATORS`): sums over the ``2^N`` bit states, the ``2^(N k)``
    tuples of ``reinforce_loo``, and the ``3^N`` cells of ``u`` for ``arm``/``disarm`` on
    one stochastic layer.
:func:`toy_moments`, :func:`toy_gradient`, :func:`toy_problem`
    Closed forms, derived by hand, for one unit with ``f(b) = (b - t)^2``.

The one-unit toy as a network: ``sizes = (0, 1, 1)``, loss ``"mse"``,
``theta = [b_1, W_o, b_o] = [a, sqrt(2), 0]`` and target ``sqrt(2) t``, so that
``C = 1/2 (sqrt(2) h - sqrt(2) t)^2 = (h - t)^2``; coordinate 0 of an estimate is the
logit's.  Under ``sts`` the value passed on is ``b sqrt(p)``, so there the toy is
``f(h) = (h - t)^2`` with ``h = b sqrt(p)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

import numpy as np

from reference import naive_enumerator as ne

ESTIMATORS = (
    "st_tempered",
    "reinmax",
    "leg",
    "muprop",
    "reinforce_loo",
    "arm",
    "disarm",
    "gumbel_st",
    "concrete",
    "rebar",
    "noisy_rectifier",
)
EXACT_ESTIMATORS = ("st_tempered", "reinmax", "leg", "muprop", "reinforce_loo", "arm", "disarm")
TOY_ESTIMATORS = (
    "st",
    "st_sigmoid",
    "st_tempered",
    "reinmax",
    "sts",
    "reinforce",
    "reinforce_loo",
    "leg",
    "muprop",
    "arm",
    "disarm",
)
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "st_tempered": {"tau": 1.0},
    "reinmax": {"tau": 1.0},
    "leg": {},
    "muprop": {"expansion": "mean_field"},
    "reinforce_loo": {"k": 2},
    "arm": {},
    "disarm": {},
    "gumbel_st": {"tau": 1.0},
    "concrete": {"tau": 1.0},
    "rebar": {"eta": 1.0, "tau": 0.5},
    "noisy_rectifier": {"sigma": 1.0},
}

__all__ = [
    "DEFAULT_OPTIONS",
    "ESTIMATORS",
    "EXACT_ESTIMATORS",
    "TOY_ESTIMATORS",
    "estimate",
    "example_moments",
    "noise_size",
    "toy_gradient",
    "toy_moments",
    "toy_problem",
]


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _options(estimator: str, options: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged with ``options``, validated."""
    if estimator not in DEFAULT_OPTIONS:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS[estimator]))
    if unknown:
        raise TypeError(f"{estimator!r} takes no option(s) {unknown}")
    opts = {**DEFAULT_OPTIONS[estimator], **options}
    for name in ("tau", "sigma"):
        if name in opts and not (_is_real(opts[name]) and opts[name] > 0):
            raise ValueError(f"{name} must be a positive number, got {opts[name]!r}")
    if estimator == "reinmax" and opts["tau"] < 1.0:
        raise ValueError("reinmax needs tau >= 1")
    if "eta" in opts and not _is_real(opts["eta"]):
        raise ValueError(f"eta must be a number, got {opts['eta']!r}")
    if "k" in opts and not (isinstance(opts["k"], (int, np.integer)) and opts["k"] >= 2):
        raise ValueError(f"k must be an integer >= 2, got {opts['k']!r}")
    if "expansion" in opts and opts["expansion"] != "mean_field":
        if not _is_real(opts["expansion"]):
            raise ValueError("expansion must be 'mean_field' or a number")
    return opts


def _setup(
    sizes: Sequence[int], theta: np.ndarray, x: np.ndarray, values: str
) -> tuple[tuple[int, ...], list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    if values not in ("01", "pm1"):
        raise ValueError(f"values must be '01' or 'pm1', got {values!r}")
    sizes = tuple(int(s) for s in sizes)
    params = ne.unpack(sizes, theta)  # validates sizes and theta
    x = np.asarray(x, dtype=np.float64).reshape(sizes[0])
    return sizes, params, x


def noise_size(sizes: Sequence[int], estimator: str, **options: Any) -> int:
    """Length of the noise vector that :func:`estimate` expects (see the module docstring)."""
    opts = _options(estimator, options)
    layer_sizes = [int(s) for s in sizes[1:-1]]
    n = sum(layer_sizes)
    if estimator == "reinforce_loo":
        return opts["k"] * n
    if estimator == "rebar":
        return 2 * n
    if estimator in ("arm", "disarm"):
        return n + sum(sum(layer_sizes[t + 1 :]) for t in range(len(layer_sizes) - 1))
    return n


# ---------------------------------------------------------------------------
# Elementary functions
# ---------------------------------------------------------------------------


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return np.exp(ne.log_sigmoid(a))


def _dsigmoid(a: np.ndarray) -> np.ndarray:
    """``sigmoid'(a) = sigmoid(a) sigmoid(-a)``."""
    return np.exp(ne.log_sigmoid(a) + ne.log_sigmoid(-np.asarray(a, dtype=np.float64)))


def _logit(u: np.ndarray) -> np.ndarray:
    """Standard logistic noise ``log u - log(1 - u)``."""
    u = np.asarray(u, dtype=np.float64)
    return np.log(u) - np.log1p(-u)


def _kappa(values: str) -> float:
    return 2.0 if values == "pm1" else 1.0


def _value(bits: np.ndarray, values: str) -> np.ndarray:
    """Unit values ``v(b)``: ``b`` or ``2b - 1``."""
    bits = np.asarray(bits, dtype=np.float64)
    return bits.copy() if values == "01" else 2.0 * bits - 1.0


def _smooth(z: np.ndarray, values: str) -> np.ndarray:
    """Smooth proxy of a unit's value: ``sigmoid(z)`` or ``2 sigmoid(z) - 1``."""
    s = _sigmoid(z)
    return s if values == "01" else 2.0 * s - 1.0


def _log_bernoulli(bits: np.ndarray, a: np.ndarray) -> float:
    """``sum log P(bits | a)`` for ``bits ~ Bernoulli(sigmoid(a))``."""
    a = np.asarray(a, dtype=np.float64)
    return float(np.sum(np.where(bits == 1.0, ne.log_sigmoid(a), ne.log_sigmoid(-a))))


def _split(vector: np.ndarray, layer_sizes: Sequence[int]) -> list[np.ndarray]:
    """Cut a vector into consecutive pieces of the given lengths."""
    pieces, start = [], 0
    for n in layer_sizes:
        pieces.append(np.asarray(vector[start : start + n], dtype=np.float64))
        start += n
    return pieces


def _pack(sizes: Sequence[int], grads: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Flatten per-layer ``(dW, db)`` (hidden layers, then output) into SPEC order."""
    out = np.zeros(ne.n_params(sizes))
    for (w_slice, b_slice, shape), (dw, db) in zip(ne.layout(sizes), grads, strict=True):
        out[w_slice] = np.asarray(dw, dtype=np.float64).reshape(shape).ravel()
        out[b_slice] = db
    return out


# ---------------------------------------------------------------------------
# Forward passes
# ---------------------------------------------------------------------------

BitRule = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


def _pass(
    params: list[tuple[np.ndarray, np.ndarray]],
    x: np.ndarray,
    values: str,
    rule: BitRule,
    with_log_prob: bool = False,
) -> dict[str, Any]:
    """Forward pass of the binary network; ``rule(layer, a, p)`` gives that layer's bits.

    Returns a dict with lists over hidden layers of ``"inputs"`` (``h_{l-1}``), ``"a"``,
    ``"p"``, ``"bits"``, ``"h"``, the output ``"y"`` and, if asked for, ``"log_prob"``
    of the bits (only enumeration needs it).
    """
    out: dict[str, Any] = {"inputs": [], "a": [], "p": [], "bits": [], "h": []}
    log_prob = 0.0
    h = x
    for layer, (W, b) in enumerate(params[:-1]):
        a = W @ h + b
        p = _sigmoid(a)
        bits = np.asarray(rule(layer, a, p), dtype=np.float64)
        if with_log_prob:
            log_prob += _log_bernoulli(bits, a)
        out["inputs"].append(h)
        h = _value(bits, values)
        for key, val in (("a", a), ("p", p), ("bits", bits), ("h", h)):
            out[key].append(val)
    W_o, b_o = params[-1]
    out["y"] = W_o @ h + b_o
    out["log_prob"] = log_prob
    return out


def _bits_pass(params, x, values, bits_layers):
    return _pass(params, x, values, lambda layer, a, p: bits_layers[layer], with_log_prob=True)


def _uniform_pass(params, x, values, u_layers):
    """Bits ``1[u < p]``."""
    return _pass(params, x, values, lambda layer, a, p: (u_layers[layer] < p).astype(float))


def _logistic_pass(params, x, values, u_layers):
    """Bits ``1[a + L > 0]`` with ``L = logit(u)`` (Gumbel / REBAR convention)."""
    return _pass(
        params, x, values, lambda layer, a, p: (a + _logit(u_layers[layer]) > 0).astype(float)
    )


# ---------------------------------------------------------------------------
# Building blocks of the estimates
# ---------------------------------------------------------------------------


def _direct(params, h_last: np.ndarray, y: np.ndarray, loss: str, t: Any):
    """Direct path at a state: ``(dC/dW_o, dC/db_o) = (outer(dC/dy, h_L), dC/dy)``."""
    dy = ne.loss_grad(loss, y, t)
    return np.outer(dy, h_last), dy


def _from_unit_terms(inputs, unit_terms, output_grads):
    """``(b_l) = d_l``, ``(W_l) = outer(d_l, h_{l-1})`` per hidden layer, then the output."""
    grads = [(np.outer(d, h_prev), d) for d, h_prev in zip(unit_terms, inputs, strict=True)]
    return grads + [output_grads]


def _backprop(params, inputs, h_last, y, loss, t, jacobians):
    """Surrogate backpropagation at the given values.

    ``dC/dh_L = W_o^T dC/dy``; ``delta_l = dC/dh_l * J_l``; ``dW_l = outer(delta_l,
    h_{l-1})``, ``db_l = delta_l``; ``dC/dh_{l-1} = W_l^T delta_l``; output: direct path.
    """
    dy = ne.loss_grad(loss, y, t)
    grads = [None] * len(params)
    grads[-1] = (np.outer(dy, h_last), dy)
    dC_dh = params[-1][0].T @ dy
    for layer in reversed(range(len(params) - 1)):
        delta = dC_dh * jacobians[layer]
        grads[layer] = (np.outer(delta, inputs[layer]), delta)
        dC_dh = params[layer][0].T @ delta
    return grads


def _surrogate_jacobian(estimator: str, a, p, bits, values: str, tau: float) -> np.ndarray:
    kappa = _kappa(values)
    if estimator == "st_tempered":
        return kappa * _dsigmoid(a / tau) / tau
    if estimator == "reinmax":
        q = (_sigmoid(a / tau) + bits) / 2.0
        return kappa * (2.0 * q * (1.0 - q) - p * (1.0 - p) / 2.0)
    raise ValueError(f"{estimator!r} is not a surrogate estimator")


def _leg_terms(params, fwd, loss, t, values):
    """Local expectation: per unit, both values of its bit weighted by its Markov blanket.

    ``w_v ~ P(b_i = v | h_{l-1}) prod_c P(b_c | h_l^(v))`` over the children ``c`` in layer
    ``l + 1``; ``f_v`` the loss with unit ``i`` set to ``v`` (equal to the sampled loss
    below the last layer); term ``sum_v w_v f_v (v - p_i)``.
    """
    n_hidden = len(params) - 1
    cost = ne.loss_value(loss, fwd["y"], t)
    terms = []
    for layer in range(n_hidden):
        a, p = fwd["a"][layer], fwd["p"][layer]
        d = np.zeros_like(p)
        for i in range(p.shape[0]):
            log_w, f = [], []
            for v in (0.0, 1.0):
                bits = fwd["bits"][layer].copy()
                bits[i] = v
                h = _value(bits, values)
                lw = float(ne.log_sigmoid(a[i] if v == 1.0 else -a[i]))
                if layer < n_hidden - 1:
                    W_c, b_c = params[layer + 1]
                    lw += _log_bernoulli(fwd["bits"][layer + 1], W_c @ h + b_c)
                    f.append(cost)
                else:
                    W_o, b_o = params[-1]
                    f.append(ne.loss_value(loss, W_o @ h + b_o, t))
                log_w.append(lw)
            m = max(log_w)
            w = np.exp(np.array(log_w) - m)
            w /= w.sum()
            d[i] = w[0] * f[0] * (0.0 - p[i]) + w[1] * f[1] * (1.0 - p[i])
        terms.append(d)
    return terms


def _muprop_terms(params, fwd, loss, t, values, expansion):
    """MuProp: per layer, REINFORCE around the first-order Taylor expansion of the
    mean-field loss at ``hbar_l`` plus that expansion's analytic gradient."""
    n_hidden = len(params) - 1
    kappa = _kappa(values)
    cost = ne.loss_value(loss, fwd["y"], t)
    W_o, b_o = params[-1]
    terms = []
    for layer in range(n_hidden):
        p = fwd["p"][layer]
        if expansion == "mean_field":
            hbar = p.copy() if values == "01" else 2.0 * p - 1.0
        else:
            hbar = np.full(p.shape, float(expansion))
        m, abars = hbar, []
        for k in range(layer + 1, n_hidden):
            W, b = params[k]
            abar = W @ m + b
            abars.append(abar)
            m = _smooth(abar, values)
        ybar = W_o @ m + b_o
        fbar = ne.loss_value(loss, ybar, t)
        d = W_o.T @ ne.loss_grad(loss, ybar, t)  # d fbar / d m_L
        for k, abar in reversed(list(zip(range(layer + 1, n_hidden), abars, strict=True))):
            d = params[k][0].T @ (d * kappa * _dsigmoid(abar))
        r = cost - fbar - float(d @ (fwd["h"][layer] - hbar))
        terms.append(r * (fwd["bits"][layer] - p) + d * kappa * p * (1.0 - p))
    return terms


def _discrete_estimate(sizes, params, fwd, loss, t, estimator, values, opts) -> np.ndarray:
    """Estimate of ``st_tempered``, ``reinmax``, ``leg`` or ``muprop`` at one bit state."""
    h_last = fwd["h"][-1]
    if estimator in ("st_tempered", "reinmax"):
        jac = [
            _surrogate_jacobian(estimator, a, p, bits, values, opts["tau"])
            for a, p, bits in zip(fwd["a"], fwd["p"], fwd["bits"], strict=True)
        ]
        return _pack(sizes, _backprop(params, fwd["inputs"], h_last, fwd["y"], loss, t, jac))
    if estimator == "leg":
        terms = _leg_terms(params, fwd, loss, t, values)
    elif estimator == "muprop":
        terms = _muprop_terms(params, fwd, loss, t, values, opts["expansion"])
    else:
        raise ValueError(f"{estimator!r} is not estimated from one bit state")
    out = _direct(params, h_last, fwd["y"], loss, t)
    return _pack(sizes, _from_unit_terms(fwd["inputs"], terms, out))


def _loo_estimate(sizes, params, fwds, loss, t) -> np.ndarray:
    """``(1/k) sum_j [(C_j - mean_{m != j} C_m) score(h^(j)) + direct(h^(j))]``."""
    k = len(fwds)
    costs = [ne.loss_value(loss, f["y"], t) for f in fwds]
    total = np.zeros(ne.n_params(sizes))
    for j, f in enumerate(fwds):
        advantage = costs[j] - (sum(costs) - costs[j]) / (k - 1)
        terms = [advantage * (bits - p) for bits, p in zip(f["bits"], f["p"], strict=True)]
        out = _direct(params, f["h"][-1], f["y"], loss, t)
        total += _pack(sizes, _from_unit_terms(f["inputs"], terms, out))
    return total / k


def _arm_branches(params, x, values, loss, t, u_layers, v_layers):
    """The ARM/DisARM pairs of every layer.

    Main pass: bits ``1[u_l < p_l]``; its loss is ``f2`` for every layer.  Branch 1 of
    layer ``l``: the main pass below ``l``, bits ``1[u_l > 1 - p_l]`` at ``l``, and
    layers above sampled with ``1[v^(l) < p]``.  Returns the main pass, the list of
    branch-1 passes, their losses ``f1`` and ``f2``.
    """
    main = _uniform_pass(params, x, values, u_layers)
    n_hidden = len(params) - 1
    branches = []
    for layer in range(n_hidden):
        b1 = (u_layers[layer] > 1.0 - main["p"][layer]).astype(float)

        def rule(k, a, p, layer=layer, b1=b1):
            if k < layer:
                return main["bits"][k]
            if k == layer:
                return b1
            return (v_layers[layer][k - layer - 1] < p).astype(float)

        branches.append(_pass(params, x, values, rule))
    f1 = [ne.loss_value(loss, br["y"], t) for br in branches]
    f2 = ne.loss_value(loss, main["y"], t)
    return main, branches, f1, f2


def _arm_estimate(sizes, params, x, values, loss, t, estimator, u_layers, v_layers):
    main, branches, f1, f2 = _arm_branches(params, x, values, loss, t, u_layers, v_layers)
    terms = []
    for layer, branch in enumerate(branches):
        if estimator == "arm":
            terms.append((f1[layer] - f2) * (u_layers[layer] - 0.5))
        else:
            b1, b2 = branch["bits"][layer], main["bits"][layer]
            sign = np.where(b2 == 1.0, -1.0, 1.0)
            differ = (b1 != b2).astype(float)
            terms.append(
                0.5 * (f1[layer] - f2) * differ * sign * _sigmoid(np.abs(main["a"][layer]))
            )
    dw_main, db_main = _direct(params, main["h"][-1], main["y"], loss, t)
    dw_br, db_br = _direct(params, branches[-1]["h"][-1], branches[-1]["y"], loss, t)
    out = (0.5 * (dw_main + dw_br), 0.5 * (db_main + db_br))
    return _pack(sizes, _from_unit_terms(main["inputs"], terms, out))


def _rebar_control(params, values, tau, loss, t, layer, z, u_layers):
    """``c(z) = C(ytilde)`` and ``dc/dz`` for layer ``layer``'s logistic variable ``z``.

    ``htilde_l = sigma_tau(z)`` (``z`` already holds the main pass's values below);
    above: ``htilde_k = sigma_tau(W_k htilde_{k-1} + b_k + logit(u_k))`` with the main
    pass's uniforms ``u_k``.
    """
    kappa = _kappa(values)
    n_hidden = len(params) - 1
    jac = [kappa * _dsigmoid(z / tau) / tau]
    h = _smooth(z / tau, values)
    for k in range(layer + 1, n_hidden):
        W, b = params[k]
        zk = W @ h + b + _logit(u_layers[k])
        jac.append(kappa * _dsigmoid(zk / tau) / tau)
        h = _smooth(zk / tau, values)
    W_o, b_o = params[-1]
    y = W_o @ h + b_o
    g = W_o.T @ ne.loss_grad(loss, y, t)  # dc / d htilde_L
    for k in reversed(range(layer + 1, n_hidden)):
        g = params[k][0].T @ (g * jac[k - layer])
    return ne.loss_value(loss, y, t), g * jac[0]


def _rebar_estimate(sizes, params, x, values, loss, t, u_layers, v_layers, eta, tau):
    main = _logistic_pass(params, x, values, u_layers)
    cost = ne.loss_value(loss, main["y"], t)
    terms = []
    for layer in range(len(params) - 1):
        a, p, bits = main["a"][layer], main["p"][layer], main["bits"][layer]
        q = _sigmoid(-a)  # 1 - p
        v = v_layers[layer]
        z = a + _logit(u_layers[layer])
        _, dc_z = _rebar_control(params, values, tau, loss, t, layer, z, u_layers)
        # conditional noise: ztilde ~ p(z | b), reparameterised by v
        v_on = v * p + q  # b = 1: v' in (1 - p, 1)
        v_off = v * q  # b = 0: v' in (0, 1 - p)
        one_minus = np.where(bits == 1.0, p * (1.0 - v), 1.0 - v_off)
        v_prime = np.where(bits == 1.0, v_on, v_off)
        z_tilde = a + np.log(v_prime) - np.log(one_minus)
        dzt_da = np.where(bits == 1.0, p * v / v_prime, q * (1.0 - v) / one_minus)
        c_zt, dc_zt = _rebar_control(params, values, tau, loss, t, layer, z_tilde, u_layers)
        terms.append((cost - eta * c_zt) * (bits - p) + eta * dc_z - eta * dc_zt * dzt_da)
    out = _direct(params, main["h"][-1], main["y"], loss, t)
    return _pack(sizes, _from_unit_terms(main["inputs"], terms, out))


def _gumbel_st_estimate(sizes, params, x, values, loss, t, u_layers, tau):
    fwd = _logistic_pass(params, x, values, u_layers)
    kappa = _kappa(values)
    jac = [
        kappa * _dsigmoid((a + _logit(u)) / tau) / tau
        for a, u in zip(fwd["a"], u_layers, strict=True)
    ]
    return _pack(sizes, _backprop(params, fwd["inputs"], fwd["h"][-1], fwd["y"], loss, t, jac))


def _concrete_estimate(sizes, params, x, values, loss, t, u_layers, tau):
    kappa = _kappa(values)
    inputs, jac = [], []
    h = x
    for (W, b), u in zip(params[:-1], u_layers, strict=True):
        inputs.append(h)
        z = W @ h + b + _logit(u)
        jac.append(kappa * _dsigmoid(z / tau) / tau)
        h = _smooth(z / tau, values)
    W_o, b_o = params[-1]
    y = W_o @ h + b_o
    return _pack(sizes, _backprop(params, inputs, h, y, loss, t, jac))


def _noisy_rectifier_estimate(sizes, params, x, loss, t, z_layers, sigma):
    inputs, jac = [], []
    h = x
    for (W, b), z in zip(params[:-1], z_layers, strict=True):
        inputs.append(h)
        pre = W @ h + b + sigma * z
        jac.append((pre > 0.0).astype(float))
        h = np.maximum(0.0, pre)
    W_o, b_o = params[-1]
    y = W_o @ h + b_o
    return _pack(sizes, _backprop(params, inputs, h, y, loss, t, jac))


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def estimate(
    sizes: Sequence[int],
    theta: np.ndarray,
    x: np.ndarray,
    t: Any,
    loss: str,
    estimator: str,
    noise: np.ndarray,
    *,
    values: str = "01",
    **options: Any,
) -> np.ndarray:
    """One per-example estimate from its noise, in SPEC parameter order.

    Parameters
    ----------
    sizes : sequence of int
        ``(n_in, n_1, ..., n_L, n_out)``.
    theta : ndarray, shape (n_params,)
    x : ndarray, shape (n_in,)
    t : target of the example (as in :func:`naive_enumerator.loss_value`).
    loss : {"mse", "bce", "xent", "linear"}
    estimator : str
        One of :data:`ESTIMATORS`.
    noise : ndarray, shape (noise_size(sizes, estimator, **options),)
        Uniforms in ``[0, 1]`` (open ``(0, 1)`` for ``gumbel_st``, ``concrete`` and
        ``rebar``), or standard normals for ``noisy_rectifier``; layout in the module
        docstring.
    values : {"01", "pm1"}, keyword-only
        Unit values (``noisy_rectifier`` only ``"01"``).
    **options
        ``tau`` (``st_tempered``, ``reinmax`` (>= 1), ``gumbel_st``, ``concrete``, ``rebar``),
        ``k`` (``reinforce_loo``), ``expansion`` (``muprop``: ``"mean_field"`` or a
        number), ``eta`` (``rebar``), ``sigma`` (``noisy_rectifier``); defaults in
        :data:`DEFAULT_OPTIONS`.

    Returns
    -------
    ndarray, shape (n_params,)

    Raises
    ------
    ValueError
        Unknown estimator, bad option value, bad noise, or ``"pm1"`` with
        ``noisy_rectifier``.
    TypeError
        An option the estimator does not take.
    """
    opts = _options(estimator, options)
    sizes, params, x = _setup(sizes, theta, x, values)
    layer_sizes = sizes[1:-1]
    n = sum(layer_sizes)
    noise = np.asarray(noise, dtype=np.float64).ravel()
    expected = noise_size(sizes, estimator, **options)
    if noise.shape != (expected,):
        raise ValueError(f"{estimator!r} needs {expected} noise values, got {noise.shape[0]}")
    if not np.all(np.isfinite(noise)):
        raise ValueError("noise must be finite")
    if estimator == "noisy_rectifier":
        if values != "01":
            raise ValueError("noisy_rectifier is defined for values='01' only")
        z_layers = _split(noise, layer_sizes)
        return _noisy_rectifier_estimate(sizes, params, x, loss, t, z_layers, opts["sigma"])
    if np.any(noise < 0.0) or np.any(noise > 1.0):
        raise ValueError("uniform noise must lie in [0, 1]")
    if estimator in ("gumbel_st", "concrete", "rebar") and (
        np.any(noise == 0.0) or np.any(noise == 1.0)
    ):
        raise ValueError(f"{estimator!r} needs uniforms in the open interval (0, 1)")

    if estimator in ("st_tempered", "reinmax", "leg", "muprop"):
        fwd = _uniform_pass(params, x, values, _split(noise, layer_sizes))
        return _discrete_estimate(sizes, params, fwd, loss, t, estimator, values, opts)
    if estimator == "reinforce_loo":
        fwds = [
            _uniform_pass(params, x, values, _split(noise[j * n : (j + 1) * n], layer_sizes))
            for j in range(opts["k"])
        ]
        return _loo_estimate(sizes, params, fwds, loss, t)
    if estimator in ("arm", "disarm"):
        u_layers = _split(noise[:n], layer_sizes)
        v_layers, start = [], n
        for layer in range(len(layer_sizes) - 1):
            above = layer_sizes[layer + 1 :]
            v_layers.append(_split(noise[start : start + sum(above)], above))
            start += sum(above)
        return _arm_estimate(sizes, params, x, values, loss, t, estimator, u_layers, v_layers)
    if estimator == "gumbel_st":
        u_layers = _split(noise, layer_sizes)
        return _gumbel_st_estimate(sizes, params, x, values, loss, t, u_layers, opts["tau"])
    if estimator == "concrete":
        u_layers = _split(noise, layer_sizes)
        return _concrete_estimate(sizes, params, x, values, loss, t, u_layers, opts["tau"])
    # rebar
    u_layers, v_layers = _split(noise[:n], layer_sizes), _split(noise[n:], layer_sizes)
    return _rebar_estimate(
        sizes, params, x, values, loss, t, u_layers, v_layers, opts["eta"], opts["tau"]
    )


def _bit_states(params, x, values, n):
    """All ``2^N`` bit states: (probabilities, passes)."""
    layer_sizes = [b.shape[0] for _, b in params[:-1]]
    fwds = [
        _bits_pass(params, x, values, _split(np.array(bits, dtype=float), layer_sizes))
        for bits in itertools.product((0, 1), repeat=n)
    ]
    return np.array([math.exp(f["log_prob"]) for f in fwds]), fwds


def _weighted_moments(probs: np.ndarray, estimates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = probs @ estimates
    centred = estimates - mean
    return mean, probs @ (centred * centred)


def _arm_cells(p: float) -> list[tuple[float, float]]:
    """The three cells of ``u`` on which ``(b1, b2)`` is constant (in that order)."""
    q = 1.0 - p
    if p >= 0.5:
        return [(0.0, q), (q, p), (p, 1.0)]  # (0, 1), (1, 1), (1, 0)
    return [(0.0, p), (p, q), (q, 1.0)]  # (0, 1), (0, 0), (1, 0)


def _arm_moments(sizes, params, x, t, loss, estimator, values):
    """Exact moments of one-layer ARM/DisARM over the ``3^N`` cells of ``u``.

    Within a cell ``(b1, b2)`` and so ``f1 - f2`` are constant and ``u_i`` is uniform;
    ARM's coordinates of unit ``i`` are ``(f1 - f2)(u_i - 1/2) z`` (``z = x_j`` or ``1``),
    so their cell mean uses ``E[u_i - 1/2 | cell]`` (the midpoint) and their within-cell
    variance is ``((f1 - f2) z)^2 (E[(u_i - 1/2)^2 | cell] - E[u_i - 1/2 | cell]^2)
    = ((f1 - f2) z)^2 width_i^2 / 12``.  DisARM and the output coordinates are constant
    within a cell.  The variance adds the within-cell part to the between-cell part.
    """
    W, b = params[0]
    p = _sigmoid(W @ x + b)
    n = p.shape[0]
    cells = [_arm_cells(float(pi)) for pi in p]
    cell_prob, cell_mean, cell_within = [], [], []
    for combo in itertools.product(range(3), repeat=n):
        lo = np.array([cells[i][c][0] for i, c in enumerate(combo)])
        hi = np.array([cells[i][c][1] for i, c in enumerate(combo)])
        width = hi - lo
        if np.any(width <= 0.0):
            continue
        mid = (lo + hi) / 2.0
        g = _arm_estimate(sizes, params, x, values, loss, t, estimator, [mid], [])
        within = np.zeros_like(g)
        if estimator == "arm":
            _, _, f1, f2 = _arm_branches(params, x, values, loss, t, [mid], [])
            d2 = ((f1[0] - f2) * width) ** 2 / 12.0
            (w_slice, b_slice, shape), _ = ne.layout(sizes)
            within[w_slice] = np.outer(d2, x * x).reshape(shape).ravel()
            within[b_slice] = d2
        cell_prob.append(float(np.prod(width)))
        cell_mean.append(g)
        cell_within.append(within)
    probs = np.array(cell_prob)
    mean, between = _weighted_moments(probs, np.array(cell_mean))
    return mean, between + probs @ np.array(cell_within)


def example_moments(
    sizes: Sequence[int], theta: np.ndarray, x: np.ndarray, t: Any, loss: str, estimator: str,
    *, values: str = "01", **options: Any,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Exact per-example mean and per-coordinate variance of an estimator.

    ``st_tempered``, ``reinmax``, ``leg``, ``muprop``: a sum over the ``2^N`` bit states;
    ``reinforce_loo``: over the ``2^(N k)`` tuples of ``k`` independent states;
    ``arm``/``disarm`` (one stochastic layer only): over the ``3^N`` cells of ``u``.

    Returns
    -------
    mean, var : ndarray, shape (n_params,)

    Raises
    ------
    ValueError
        For an estimator without exact moments here (``gumbel_st``, ``concrete``,
        ``rebar``, ``noisy_rectifier``, unknown names), or ``arm``/``disarm`` with more
        than one stochastic layer.
    """
    if estimator not in EXACT_ESTIMATORS:
        raise ValueError(f"no exact moments for {estimator!r}; they exist for {EXACT_ESTIMATORS}")
    opts = _options(estimator, options)
    sizes, params, x = _setup(sizes, theta, x, values)
    n = sum(sizes[1:-1])
    if estimator in ("arm", "disarm"):
        if len(sizes) != 3:
            raise ValueError(f"exact {estimator} moments need one stochastic layer")
        return _arm_moments(sizes, params, x, t, loss, estimator, values)
    probs, fwds = _bit_states(params, x, values, n)
    if estimator == "reinforce_loo":
        tuple_probs, estimates = [], []
        for idx in itertools.product(range(len(fwds)), repeat=opts["k"]):
            tuple_probs.append(float(np.prod(probs[list(idx)])))
            estimates.append(_loo_estimate(sizes, params, [fwds[i] for i in idx], loss, t))
        return _weighted_moments(np.array(tuple_probs), np.array(estimates))
    estimates = np.array(
        [_discrete_estimate(sizes, params, f, loss, t, estimator, values, opts) for f in fwds]
    )
    return _weighted_moments(probs, estimates)


# ---------------------------------------------------------------------------
# One-unit closed forms
# ---------------------------------------------------------------------------


def toy_problem(a: float, t: float) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray, Any]:
    """The one-unit toy as a network: ``(sizes, theta, x, target)`` with ``loss="mse"``.

    ``sizes = (0, 1, 1)``, ``theta = [a, sqrt(2), 0]``, ``x`` empty and target
    ``[sqrt(2) t]``, so ``C = (h - t)^2``.
    """
    return (0, 1, 1), np.array([a, math.sqrt(2.0), 0.0]), np.zeros(0), np.array([math.sqrt(2) * t])


def _sig(a: float) -> float:
    return float(_sigmoid(np.float64(a)))


def toy_gradient(a: float, t: float) -> float:
    """``d/da E[(b - t)^2] = p (1 - p) (f(1) - f(0)) = p (1 - p) (1 - 2t)``."""
    p = _sig(a)
    return p * (1.0 - p) * (1.0 - 2.0 * t)


def _two_point(prob_one: float, g1: float, g0: float) -> tuple[float, float]:
    """Moments of ``g1`` with probability ``prob_one``, else ``g0``:
    mean ``prob g1 + (1 - prob) g0``, variance ``prob (1 - prob) (g1 - g0)^2``."""
    return prob_one * g1 + (1.0 - prob_one) * g0, prob_one * (1.0 - prob_one) * (g1 - g0) ** 2


def toy_moments(estimator: str, a: float, t: float, **options: Any) -> tuple[float, float]:
    """Exact mean and variance of an estimate of ``d E[f] / da``, ``f(b) = (b - t)^2``,
    for one unit with logit ``a`` (closed forms derived by hand; see the comments).

    Notation: ``p = sigmoid(a)``, ``v = p (1 - p)``, ``f(1) = (1 - t)^2``, ``f(0) = t^2``,
    ``Delta = f(1) - f(0) = 1 - 2t``, ``f'(h) = 2 (h - t)``; the true value is
    ``v Delta``.  Options: ``tau`` (``st_tempered``, default 1; ``reinmax``, default 1,
    ``>= 1``), ``baseline`` (``reinforce``: ``"none"`` or a number), ``k``
    (``reinforce_loo``, default 2), ``expansion`` (``muprop``: ``"mean_field"`` or a
    number).  ``sts``: ``h = b sqrt(p)``, ``b ~ Bernoulli(sqrt(p))``, estimate
    ``f'(h) b sqrt(p) (1 - p) / 2``.

    Returns
    -------
    (mean, var) : tuple of float
    """
    allowed = {
        "st_tempered": {"tau"},
        "reinmax": {"tau"},
        "reinforce": {"baseline"},
        "reinforce_loo": {"k"},
        "muprop": {"expansion"},
    }
    if estimator not in TOY_ESTIMATORS:
        raise ValueError(f"no closed form for {estimator!r}; expected one of {TOY_ESTIMATORS}")
    unknown = sorted(set(options) - allowed.get(estimator, set()))
    if unknown:
        raise TypeError(f"{estimator!r} takes no option(s) {unknown}")
    p = _sig(a)
    v = p * (1.0 - p)
    f1, f0 = (1.0 - t) ** 2, t**2
    delta = f1 - f0
    df1, df0 = 2.0 * (1.0 - t), -2.0 * t  # f'(1), f'(0)

    if estimator == "st":
        # g = f'(b): two values f'(1), f'(0)
        return _two_point(p, df1, df0)
    if estimator == "st_sigmoid":
        # g = f'(b) v
        return _two_point(p, df1 * v, df0 * v)
    if estimator == "st_tempered":
        # g = f'(b) j, j = sigmoid'(a / tau) / tau
        tau = float(options.get("tau", 1.0))
        if tau <= 0:
            raise ValueError("tau must be positive")
        j = _sig(a / tau) * _sig(-a / tau) / tau
        return _two_point(p, df1 * j, df0 * j)
    if estimator == "reinmax":
        # g = f'(b) J_b, J_b = 2 q_b (1 - q_b) - v / 2, q_b = (sigmoid(a / tau) + b) / 2;
        # at tau = 1: J_1 = (1 - p) / 2, J_0 = p / 2 (ZGR)
        tau = float(options.get("tau", 1.0))
        if tau < 1.0:
            raise ValueError("reinmax needs tau >= 1")
        s = _sig(a / tau)
        q1, q0 = (s + 1.0) / 2.0, s / 2.0
        j1, j0 = 2 * q1 * (1 - q1) - v / 2, 2 * q0 * (1 - q0) - v / 2
        return _two_point(p, df1 * j1, df0 * j0)
    if estimator == "sts":
        # q = sqrt(p), b ~ Bernoulli(q), h = b q: g = 2 (b q - t) b q (1 - p) / 2, i.e.
        # g = (q - t) q (1 - p) when b = 1 and 0 when b = 0
        q = math.sqrt(p)
        return _two_point(q, (q - t) * q * (1.0 - p), 0.0)
    if estimator == "reinforce":
        # g = (f(b) - c)(b - p): (f(1) - c)(1 - p) when b = 1, -(f(0) - c) p when b = 0
        baseline = options.get("baseline", "none")
        c = 0.0 if baseline == "none" else float(baseline)
        return _two_point(p, (f1 - c) * (1.0 - p), -(f0 - c) * p)
    if estimator == "reinforce_loo":
        # f(b) = t^2 + Delta b, so with s_j = b_j - p:
        #   g = (1/k) sum_j (f_j - mean_{m != j} f_m) s_j = (Delta/k) (A - 2 B / (k - 1)),
        #   A = sum_j s_j^2, B = sum_{j < m} s_j s_m.
        # E[s^2] = v, so E[g] = Delta v.  Var(s^2) = E[s^4] - v^2 = v (1 - 3v) - v^2
        # = v (1 - 2p)^2; the products s_j s_m are uncorrelated with each other and with A
        # (each such covariance has a lone zero-mean factor), Var(s_j s_m) = v^2:
        #   Var g = (Delta^2 / k) [v (1 - 2p)^2 + 2 v^2 / (k - 1)].
        k = int(options.get("k", 2))
        if k < 2:
            raise ValueError("k must be >= 2")
        return delta * v, delta**2 / k * (v * (1 - 2 * p) ** 2 + 2 * v**2 / (k - 1))
    if estimator == "leg":
        # one layer: g = v (f(1) - f(0)) whatever the sample: no variance
        return delta * v, 0.0
    if estimator == "muprop":
        # expansion point c (c = p for the mean field): f is quadratic with f'' = 2, so
        # r = f(b) - f(c) - f'(c)(b - c) = (b - c)^2 exactly and
        # g = (b - c)^2 (b - p) + f'(c) v: two values
        # g_1 = (1 - c)^2 (1 - p) + 2 (c - t) v, g_0 = -c^2 p + 2 (c - t) v;
        # the mean is v [(1 - c)^2 - c^2 + 2c - 2t] = v Delta for every c, and
        # Var = v [(1 - c)^2 (1 - p) + c^2 p]^2 (= v (1 - 3v)^2 at c = p).
        expansion = options.get("expansion", "mean_field")
        c = p if expansion == "mean_field" else float(expansion)
        g1 = (1.0 - c) ** 2 * (1.0 - p) + 2.0 * (c - t) * v
        g0 = -(c**2) * p + 2.0 * (c - t) * v
        return _two_point(p, g1, g0)
    p_star = max(p, 1.0 - p)  # sigmoid(|a|)
    if estimator == "arm":
        # g = (f(b1) - f(b2))(u - 1/2) is +-Delta (u - 1/2) on the two outer cells
        # [0, 1 - p*) and [p*, 1] and 0 on the middle one, so
        # E[g^2] = Delta^2 * 2 int_{p*}^1 (u - 1/2)^2 du = Delta^2 [1/12 - (2/3)(p* - 1/2)^3]
        # and Var = Delta^2 [1/12 - (2/3)(p* - 1/2)^3 - v^2]; E[g] = Delta v.
        return delta * v, delta**2 * (1.0 / 12.0 - (2.0 / 3.0) * (p_star - 0.5) ** 3 - v**2)
    # disarm: g = Delta p* / 2 on the two outer cells (total probability 2 (1 - p*)) and 0
    # on the middle one: E[g] = Delta p* (1 - p*) = Delta v,
    # Var = Delta^2 p*^2 (1 - p*) / 2 - Delta^2 p*^2 (1 - p*)^2
    #     = Delta^2 p*^2 (1 - p*) (1/2 - (1 - p*)).
    return delta * v, delta**2 * p_star**2 * (1.0 - p_star) * (0.5 - (1.0 - p_star))
