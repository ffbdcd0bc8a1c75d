"""Naive, independent reference implementation of the gradstat mathematics.

This module is written from ``SPEC.md`` (sections 1, 2 and 3) only and deliberately
shares no code with the ``gradstat`` package: the test-suite uses it to check the
library's fast engine to about ``1e-10``.  Everything is done by brute force: every one
of the ``2^N`` joint states of the ``N`` stochastic units is enumerated with
:func:`itertools.product` and weighted by its exact probability.  Speed is irrelevant
(networks have at most about ten stochastic units); clarity is the point.

Model (SPEC section 1), for one input ``x`` with ``h_0 = x``::

    a_l = W_l h_{l-1} + b_l,   p_l = sigmoid(a_l),   h_l ~ Bernoulli(p_l)   (l = 1..L)
    y   = W_o h_L + b_o,       C = loss(y, t)

``theta`` is one flat float64 vector ordered ``W_1`` (row-major), ``b_1``, ...,
``W_L``, ``b_L``, ``W_o`` (row-major), ``b_o``.

Unit values (keyword ``values``): with ``"01"`` (the default) a unit passes on its bit
``b ~ Bernoulli(p)``; with ``"pm1"`` it passes on ``2b - 1``.  Probabilities and scores
are always those of the bits: ``d log P / d b_l = b_l - p_l`` and
``d log P / d W_l = outer(b_l - p_l, h_{l-1})`` with ``h_{l-1}`` the values of the layer
below.  Under ``"pm1"`` the smooth proxy of ``E[h | a]`` is ``2 sigmoid(a) - 1``, so the
``st_sigmoid`` surrogate doubles to ``2 p (1 - p)``; ``st`` keeps ``1``; ``sts`` is not
defined for ``"pm1"``.

Estimators (SPEC section 2): ``"st"``, ``"st_sigmoid"``, ``"sts"`` and ``"reinforce"``.
Only numpy, itertools and math are used.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

ESTIMATORS = ("st", "st_sigmoid", "sts", "reinforce")
LOSSES = ("mse", "bce", "xent", "linear")
VALUES = ("01", "pm1")

__all__ = [
    "ESTIMATORS",
    "LOSSES",
    "VALUES",
    "batch_moments",
    "estimate",
    "exact_gradient",
    "example_gradient",
    "example_moments",
    "expected_loss",
    "finite_difference_gradient",
    "forward",
    "layout",
    "log_sigmoid",
    "loss_grad",
    "loss_value",
    "n_params",
    "noise_states",
    "reinforce_baseline",
    "unpack",
]


# ---------------------------------------------------------------------------
# Parameter layout
# ---------------------------------------------------------------------------


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 3:
        raise ValueError("sizes must be (n_in, n_1, ..., n_L, n_out) with L >= 1")
    if any(s < 0 for s in sizes) or any(s < 1 for s in sizes[1:]):
        raise ValueError("n_in must be >= 0 and every other size >= 1")
    return sizes


def layout(sizes: Sequence[int]) -> list[tuple[slice, slice, tuple[int, int]]]:
    """Position of every weight matrix and bias vector in ``theta``.

    Parameters
    ----------
    sizes : sequence of int
        ``(n_in, n_1, ..., n_L, n_out)``.

    Returns
    -------
    list of (slice, slice, (int, int))
        One entry per layer, hidden layers ``1..L`` first and the output layer last:
        the slice of ``W`` in ``theta``, the slice of ``b`` in ``theta``, and the shape
        ``(n_out_of_layer, n_in_of_layer)`` of ``W`` (stored row-major).
    """
    sizes = _check_sizes(sizes)
    entries = []
    offset = 0
    for fan_in, fan_out in itertools.pairwise(sizes):
        w_slice = slice(offset, offset + fan_out * fan_in)
        offset += fan_out * fan_in
        b_slice = slice(offset, offset + fan_out)
        offset += fan_out
        entries.append((w_slice, b_slice, (fan_out, fan_in)))
    return entries


def n_params(sizes: Sequence[int]) -> int:
    """Number of parameters: ``sum over consecutive pairs (a, b) of a*b + b``."""
    sizes = _check_sizes(sizes)
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def unpack(sizes: Sequence[int], theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split ``theta`` into ``[(W_1, b_1), ..., (W_L, b_L), (W_o, b_o)]`` (copies)."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.shape != (n_params(sizes),):
        raise ValueError(f"theta must have shape ({n_params(sizes)},), got {theta.shape}")
    return [
        (theta[w_slice].reshape(shape).copy(), theta[b_slice].copy())
        for w_slice, b_slice, shape in layout(sizes)
    ]


def _pack(sizes: Sequence[int], grads: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Inverse of :func:`unpack`: flatten per-layer ``(dW, db)`` into one vector."""
    out = np.zeros(n_params(sizes))
    for (w_slice, b_slice, shape), (dw, db) in zip(layout(sizes), grads):
        out[w_slice] = np.asarray(dw, dtype=np.float64).reshape(shape).ravel()
        out[b_slice] = db
    return out


# ---------------------------------------------------------------------------
# Elementary functions
# ---------------------------------------------------------------------------


def log_sigmoid(a: np.ndarray) -> np.ndarray:
    """Numerically stable ``log(sigmoid(a)) = -log(1 + exp(-a))``."""
    return -np.logaddexp(0.0, -np.asarray(a, dtype=np.float64))


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return np.exp(log_sigmoid(a))


def _log1m_exp(log_q: np.ndarray) -> np.ndarray:
    """Stable ``log(1 - exp(log_q))`` for ``log_q <= 0`` (``-inf`` where ``log_q == 0``)."""
    log_q = np.asarray(log_q, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(-np.expm1(log_q))


# ---------------------------------------------------------------------------
# Forward pass
# ---------------------------------------------------------------------------


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")


def _check_values(values: str, estimator: str = "st") -> None:
    if values not in VALUES:
        raise ValueError(f"unknown values {values!r}; expected one of {VALUES}")
    if values == "pm1" and estimator == "sts":
        raise ValueError("'sts' is not defined for values='pm1'")


def forward(
    sizes: Sequence[int],
    theta: np.ndarray,
    x: np.ndarray,
    noise_bits: Sequence[int],
    estimator: str = "st",
    *,
    values: str = "01",
) -> dict[str, Any]:
    """Deterministic forward pass for one fixed noise state.

    Parameters
    ----------
    sizes : sequence of int
        ``(n_in, n_1, ..., n_L, n_out)``.
    theta : ndarray, shape (n_params,)
        Flat parameter vector.
    x : ndarray, shape (n_in,)
        One input (may be empty when ``n_in == 0``).
    noise_bits : sequence of {0, 1}, length N
        The bits of all stochastic units, layer 1 first, unit order within a layer.
        For binary estimators these are the bits ``b ~ Bernoulli(p)`` (the unit values
        ``h`` under ``values="01"``); for ``"sts"`` they are the ``b`` bits,
        ``b ~ Bernoulli(sqrt(p))``.
    estimator : {"st", "st_sigmoid", "sts", "reinforce"}
        Only ``"sts"`` changes the forward pass.
    values : {"01", "pm1"}, keyword-only
        Unit values: the bit ``b`` (``"01"``) or ``2b - 1`` (``"pm1"``; not with
        ``"sts"``).

    Returns
    -------
    dict
        ``"x"`` (the input, ``h_0``), and lists over hidden layers ``l = 1..L`` of
        ``"a"`` (pre-activations), ``"p"`` (``sigmoid(a)``), ``"bits"`` (the given bits)
        and ``"h"`` (values passed on: the bits, or ``2 bits - 1`` under ``"pm1"``, for
        binary estimators, ``bits*sqrt(p)`` for ``"sts"``); ``"y"`` (output),
        ``"log_prob"`` (log-probability of the bits: ``Bernoulli(p)`` for binary
        estimators, ``Bernoulli(sqrt(p))`` for ``"sts"``), ``"prob"`` (its exponential),
        ``"estimator"`` and ``"values"``.
    """
    _check_estimator(estimator)
    _check_values(values, estimator)
    sizes = _check_sizes(sizes)
    params = unpack(sizes, theta)
    x = np.asarray(x, dtype=np.float64).reshape(sizes[0])
    bits_all = np.asarray(noise_bits, dtype=np.float64).ravel()
    n_stochastic = sum(sizes[1:-1])
    if bits_all.shape != (n_stochastic,):
        raise ValueError(f"need {n_stochastic} noise bits, got {bits_all.shape[0]}")
    if not np.all((bits_all == 0.0) | (bits_all == 1.0)):
        raise ValueError("noise bits must be 0 or 1")

    a_list, p_list, bits_list, h_list = [], [], [], []
    log_prob = 0.0
    h_prev = x
    start = 0
    for W, b in params[:-1]:
        a = W @ h_prev + b
        log_p = log_sigmoid(a)  # log p
        bits = bits_all[start : start + b.shape[0]]
        start += b.shape[0]
        if estimator == "sts":
            log_on = 0.5 * log_p  # log q, q = sqrt(p)
            h = bits * np.exp(log_on)  # b * q
        else:
            log_on = log_p
            h = bits.copy() if values == "01" else 2.0 * bits - 1.0
        log_off = _log1m_exp(log_on)  # log(1 - p) or log(1 - q)
        # sum of log Bernoulli terms; a zero-probability factor is never multiplied by 0
        for bit, lon, loff in zip(bits, log_on, log_off):
            log_prob += lon if bit == 1.0 else loff
        a_list.append(a)
        p_list.append(np.exp(log_p))
        bits_list.append(bits.copy())
        h_list.append(h)
        h_prev = h
    W_o, b_o = params[-1]
    y = W_o @ h_prev + b_o
    return {
        "estimator": estimator,
        "values": values,
        "x": x,
        "a": a_list,
        "p": p_list,
        "bits": bits_list,
        "h": h_list,
        "y": y,
        "log_prob": float(log_prob),
        "prob": math.exp(log_prob),
    }


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


def _class_index(t: Any, n_out: int) -> int:
    k = int(np.asarray(t).reshape(()))
    if not 0 <= k < n_out:
        raise ValueError(f"class {k} out of range [0, {n_out})")
    return k


def loss_value(loss: str, y: np.ndarray, t: Any) -> float:
    """Loss ``C(y, t)`` of one example.

    Parameters
    ----------
    loss : {"mse", "bce", "xent", "linear"}
        ``mse``: ``0.5 * sum (y - t)^2``; ``bce``: ``sum softplus(y) - t*y``;
        ``xent``: ``-log softmax(y)[t]`` (``t`` an integer class); ``linear``:
        ``sum t*y``.
    y : ndarray, shape (n_out,)
        Network output.
    t : array_like or int
        Target of the example.

    Returns
    -------
    float
    """
    y = np.asarray(y, dtype=np.float64)
    if loss == "mse":
        r = y - np.asarray(t, dtype=np.float64)
        return float(0.5 * np.sum(r * r))
    if loss == "bce":
        # softplus(y) - t y = (1 - t) relu(y) + t relu(-y) + log(1 + e^-|y|): for t in
        # [0, 1] a sum of non-negative terms, so a confident output keeps its tiny loss.
        t = np.asarray(t, dtype=np.float64)
        tail = np.log1p(np.exp(-np.abs(y)))
        return float(np.sum((1.0 - t) * np.maximum(y, 0.0) + t * np.maximum(-y, 0.0) + tail))
    if loss == "xent":
        # -log softmax(y)[k] = log(1 + sum_{j != k} e^(y_j - y_k)) when y_k is the largest
        # output, else (max - y_k) + log sum e^(y - max): no cancellation either way.
        k = _class_index(t, y.shape[0])
        m = np.max(y)
        if y[k] >= m:
            return float(np.log1p(np.sum(np.exp(np.delete(y, k) - y[k]))))
        return float((m - y[k]) + math.log(float(np.sum(np.exp(y - m)))))
    if loss == "linear":
        return float(np.sum(np.asarray(t, dtype=np.float64) * y))
    raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")


def loss_grad(loss: str, y: np.ndarray, t: Any) -> np.ndarray:
    """Gradient ``dC/dy`` of :func:`loss_value` with respect to the output ``y``.

    Returns
    -------
    ndarray, shape (n_out,)
        ``mse``: ``y - t``; ``bce``: ``sigmoid(y) - t``; ``xent``:
        ``softmax(y) - onehot(t)``; ``linear``: ``t``.
    """
    y = np.asarray(y, dtype=np.float64)
    if loss == "mse":
        return y - np.asarray(t, dtype=np.float64)
    if loss == "bce":
        # sigmoid(y) - t as (1 - t) - sigmoid(-y) where t >= 1/2 (1 - t exact there), so a
        # confident, right output keeps its tiny gradient.
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), y.shape)
        return np.where(t >= 0.5, (1.0 - t) - _sigmoid(-y), _sigmoid(y) - t)
    if loss == "xent":
        # softmax(y)_k - 1 = -sum_{j != k} softmax(y)_j, used where softmax(y)_k >= 1/2.
        k = _class_index(t, y.shape[0])
        e = np.exp(y - np.max(y))
        g = e / np.sum(e)
        rest = float(np.sum(np.delete(g, k)))
        g[k] = -rest if g[k] >= 0.5 else g[k] - 1.0
        return g
    if loss == "linear":
        return np.broadcast_to(np.asarray(t, dtype=np.float64), y.shape).copy()
    raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")


# ---------------------------------------------------------------------------
# Enumeration and the exact objective
# ---------------------------------------------------------------------------


def noise_states(
    sizes: Sequence[int],
    theta: np.ndarray,
    x: np.ndarray,
    estimator: str = "st",
    *,
    values: str = "01",
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Enumerate all ``2^N`` noise states of one example (``values`` as in :func:`forward`).

    Returns
    -------
    probs : ndarray, shape (2^N,)
        Probability of each state (they sum to 1).
    forwards : list of dict
        The :func:`forward` dict of each state, in ``itertools.product((0, 1),
        repeat=N)`` order.
    """
    sizes = _check_sizes(sizes)
    n_stochastic = sum(sizes[1:-1])
    forwards = [
        forward(sizes, theta, x, bits, estimator, values=values)
        for bits in itertools.product((0, 1), repeat=n_stochastic)
    ]
    probs = np.array([f["prob"] for f in forwards])
    return probs, forwards


def _batch(sizes: Sequence[int], X: np.ndarray, T: Sequence[Any]) -> tuple[np.ndarray, list]:
    sizes = _check_sizes(sizes)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != sizes[0]:
        raise ValueError(f"X must have shape (B, {sizes[0]}), got {X.shape}")
    T = list(T)
    if len(T) != X.shape[0]:
        raise ValueError(f"{X.shape[0]} inputs but {len(T)} targets")
    if X.shape[0] == 0:
        raise ValueError("empty batch")
    return X, T


def expected_loss(
    sizes: Sequence[int],
    theta: np.ndarray,
    loss: str,
    X: np.ndarray,
    T: Sequence[Any],
    *,
    values: str = "01",
) -> float:
    """Exact objective ``J = (1/B) sum_x sum_h P(h | x) C(y(h), t)``.

    Parameters
    ----------
    X : ndarray, shape (B, n_in)
    T : sequence of length B
        Per-example targets (vectors, or integer classes for ``xent``).
    values : {"01", "pm1"}, keyword-only
        Unit values (see :func:`forward`).
    """
    X, T = _batch(sizes, X, T)
    total = 0.0
    for x, t in zip(X, T):
        probs, fwds = noise_states(sizes, theta, x, "st", values=values)
        total += sum(p * loss_value(loss, f["y"], t) for p, f in zip(probs, fwds))
    return total / X.shape[0]


def _score(sizes: Sequence[int], fwd: dict[str, Any]) -> np.ndarray:
    """``d log P(h | x) / d theta`` of a binary state: ``outer(b_l - p_l, h_{l-1})``,
    ``b_l - p_l`` (bits ``b``, values ``h``); zero for the output layer."""
    grads = []
    h_prev = fwd["x"]
    for h, bits, p in zip(fwd["h"], fwd["bits"], fwd["p"]):
        d = bits - p
        grads.append((np.outer(d, h_prev), d))
        h_prev = h
    n_out = sizes[-1]
    grads.append((np.zeros((n_out, sizes[-2])), np.zeros(n_out)))
    return _pack(sizes, grads)


def _direct(sizes: Sequence[int], loss: str, fwd: dict[str, Any], t: Any) -> np.ndarray:
    """Direct path ``grad_theta C(y(h), t)`` at fixed ``h``: only ``W_o`` and ``b_o``."""
    grads = [(np.zeros((len(h), len(hp))), np.zeros(len(h))) for h, hp in _pairs(fwd)]
    dy = loss_grad(loss, fwd["y"], t)
    grads.append((np.outer(dy, fwd["h"][-1]), dy))
    return _pack(sizes, grads)


def _pairs(fwd: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(h_1, h_0), (h_2, h_1), ..., (h_L, h_{L-1})]``."""
    inputs = [fwd["x"]] + fwd["h"][:-1]
    return list(zip(fwd["h"], inputs))


def example_gradient(
    sizes: Sequence[int],
    theta: np.ndarray,
    loss: str,
    x: np.ndarray,
    t: Any,
    *,
    values: str = "01",
) -> np.ndarray:
    """Exact gradient of ``E_h[C]`` for one example, by the score-function identity.

    ``g_x = sum_h P(h) [C(h) * d log P(h)/d theta + d C/d theta (direct)]`` with
    ``d log P / d W_l = outer(b_l - p_l, h_{l-1})`` and ``d log P / d b_l = b_l - p_l``
    (bits ``b``; ``h = b`` for ``values="01"``, ``h = 2b - 1`` for ``values="pm1"``).
    """
    probs, fwds = noise_states(sizes, theta, x, "st", values=values)
    g = np.zeros(n_params(sizes))
    for p, f in zip(probs, fwds):
        c = loss_value(loss, f["y"], t)
        g += p * (c * _score(sizes, f) + _direct(sizes, loss, f, t))
    return g


def exact_gradient(
    sizes: Sequence[int], theta: np.ndarray, loss: str, X: np.ndarray, T: Sequence[Any], *,
    values: str = "01",
) -> np.ndarray:  # fmt: skip
    """Exact ``grad_theta J``: the batch mean of :func:`example_gradient`.

    Returns
    -------
    ndarray, shape (n_params,)
    """
    X, T = _batch(sizes, X, T)
    g = np.zeros(n_params(sizes))
    for x, t in zip(X, T):
        g += example_gradient(sizes, theta, loss, x, t, values=values)
    return g / X.shape[0]


def finite_difference_gradient(
    sizes: Sequence[int],
    theta: np.ndarray,
    loss: str,
    X: np.ndarray,
    T: Sequence[Any],
    eps: float = 1e-6,
    *,
    values: str = "01",
) -> np.ndarray:
    """Central finite differences ``(J(theta + eps e_j) - J(theta - eps e_j)) / (2 eps)``."""
    theta = np.asarray(theta, dtype=np.float64)
    g = np.zeros(theta.shape[0])
    for j in range(theta.shape[0]):
        up = theta.copy()
        up[j] += eps
        down = theta.copy()
        down[j] -= eps
        j_up = expected_loss(sizes, up, loss, X, T, values=values)
        j_down = expected_loss(sizes, down, loss, X, T, values=values)
        g[j] = (j_up - j_down) / (2.0 * eps)
    return g


# ---------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------


def _surrogate(estimator: str, fwd: dict[str, Any], layer: int) -> np.ndarray:
    """Surrogate ``dh/da`` of hidden layer ``layer`` (0-based) for one state.

    Under ``values="pm1"`` the sigmoid surrogate doubles (``d(2 sigmoid(a) - 1)/da``).
    """
    p = fwd["p"][layer]
    if estimator == "st":
        return np.ones_like(p)
    if estimator == "st_sigmoid":
        kappa = 2.0 if fwd.get("values", "01") == "pm1" else 1.0
        return kappa * p * (1.0 - p)
    if estimator == "sts":
        return fwd["bits"][layer] * np.sqrt(p) * (1.0 - p) / 2.0
    raise ValueError(f"{estimator!r} is not a surrogate-gradient estimator")


def estimate(
    sizes: Sequence[int],
    theta: np.ndarray,
    loss: str,
    x: np.ndarray,
    t: Any,
    fwd: dict[str, Any],
    estimator: str,
    baseline_vector: np.ndarray | None = None,
    *,
    values: str | None = None,
) -> np.ndarray:
    """The estimate ``g_hat`` of one example for one noise state.

    Parameters
    ----------
    fwd : dict
        A :func:`forward` dict of this example (for ``"sts"`` it must have been built
        with ``estimator="sts"``).  Its ``"values"`` entry fixes the unit values.
    estimator : {"st", "st_sigmoid", "sts", "reinforce"}
        Surrogate estimators backpropagate: ``dC/dh_L = W_o^T dC/dy``;
        ``delta_l = dC/dh_l * surrogate_l``; ``grad W_l = outer(delta_l, h_{l-1})``,
        ``grad b_l = delta_l``; ``dC/dh_{l-1} = W_l^T delta_l``; output layer
        ``grad W_o = outer(dC/dy, h_L)``, ``grad b_o = dC/dy``; everything at the
        sampled values.  ``"reinforce"`` returns
        ``(C(h) - c) * d log P(h)/d theta + grad_theta C (direct path)``.
    baseline_vector : ndarray, shape (n_params,), optional
        The per-parameter baseline ``c`` of ``"reinforce"`` (default 0); ignored by the
        other estimators.
    values : {"01", "pm1"} or None, keyword-only
        If given, it must match ``fwd["values"]`` (a guard against mixing up passes).

    Returns
    -------
    ndarray, shape (n_params,)
    """
    _check_estimator(estimator)
    fwd_values = fwd.get("values", "01")
    _check_values(fwd_values, estimator)
    if values is not None and values != fwd_values:
        raise ValueError(f"forward dict was built with values={fwd_values!r}, not {values!r}")
    if fwd["estimator"] != estimator and "sts" in (fwd["estimator"], estimator):
        raise ValueError("forward dict was built for a different estimator")
    sizes = _check_sizes(sizes)
    if estimator == "reinforce":
        c = np.zeros(n_params(sizes)) if baseline_vector is None else baseline_vector
        c = np.broadcast_to(np.asarray(c, dtype=np.float64), (n_params(sizes),))
        cost = loss_value(loss, fwd["y"], t)
        return (cost - c) * _score(sizes, fwd) + _direct(sizes, loss, fwd, t)

    params = unpack(sizes, theta)
    n_hidden = len(params) - 1
    dy = loss_grad(loss, fwd["y"], t)
    W_o = params[-1][0]
    inputs = [fwd["x"]] + fwd["h"][:-1]  # h_0, ..., h_{L-1}
    reversed_grads = [(np.outer(dy, fwd["h"][-1]), dy)]  # output layer first
    dC_dh = W_o.T @ dy  # dC/dh_L
    for layer in reversed(range(n_hidden)):
        delta = dC_dh * _surrogate(estimator, fwd, layer)
        reversed_grads.append((np.outer(delta, inputs[layer]), delta))
        dC_dh = params[layer][0].T @ delta  # dC/dh_{layer-1}
    return _pack(sizes, reversed_grads[::-1])


def reinforce_baseline(
    sizes: Sequence[int],
    theta: np.ndarray,
    loss: str,
    x: np.ndarray,
    t: Any,
    baseline: str | float,
    *,
    values: str = "01",
) -> np.ndarray:
    """Per-parameter REINFORCE baseline vector ``c`` of one example (``values`` as in
    :func:`forward`).

    Parameters
    ----------
    baseline : {"none", "mean", "optimal"} or float
        ``"none"``: 0; a float: that constant; ``"mean"``: the exact ``E[C | x]``;
        ``"optimal"``: ``c_j = E[s_j^2 C] / E[s_j^2]`` with ``s_j = d log P / d theta_j``,
        and ``0`` where ``E[s_j^2] == 0`` (always so for the output layer).

    Returns
    -------
    ndarray, shape (n_params,)
    """
    size = n_params(sizes)
    if isinstance(baseline, str):
        if baseline == "none":
            return np.zeros(size)
        probs, fwds = noise_states(sizes, theta, x, "reinforce", values=values)
        costs = np.array([loss_value(loss, f["y"], t) for f in fwds])
        if baseline == "mean":
            return np.full(size, float(np.sum(probs * costs)))
        if baseline == "optimal":
            num = np.zeros(size)
            den = np.zeros(size)
            for p, cost, f in zip(probs, costs, fwds):
                s2 = _score(sizes, f) ** 2
                num += p * s2 * cost
                den += p * s2
            c = np.zeros(size)
            nonzero = den > 0.0
            c[nonzero] = num[nonzero] / den[nonzero]
            return c
        raise ValueError(f"unknown baseline {baseline!r}")
    if isinstance(baseline, (bool, np.bool_)):
        raise TypeError("baseline must be 'none', 'mean', 'optimal' or a float")
    return np.full(size, float(baseline))


# ---------------------------------------------------------------------------
# Exact moments
# ---------------------------------------------------------------------------


def example_moments(
    sizes: Sequence[int],
    theta: np.ndarray,
    loss: str,
    x: np.ndarray,
    t: Any,
    estimator: str,
    baseline: str | float = "none",
    *,
    values: str = "01",
) -> dict[str, Any]:
    """Exact moments of an estimator for one example, by enumerating its noise states.

    Parameters
    ----------
    baseline : {"none", "mean", "optimal"} or float
        Used by ``"reinforce"`` only.
    values : {"01", "pm1"}, keyword-only
        Unit values (see :func:`forward`); ``"sts"`` rejects ``"pm1"``.

    Returns
    -------
    dict
        ``"gradient"``: exact ``g_x``; ``"mean"``: ``E[g_hat]``; ``"var"``: per-coordinate
        ``Var[g_hat_j]``; ``"cov"``: full covariance ``(n_params, n_params)``;
        ``"sign_probability"``: per coordinate ``P(np.sign(g_hat_j) == np.sign(g_j))``
        (``np.sign(0) == 0``, so where ``g_j != 0`` an estimate of exactly 0 never
        agrees; where ``g_j == 0`` exactly, only an estimate of exactly 0 agrees);
        ``"descent_probability"``: ``P(<g_hat, g_x> > 0)`` (strict);
        ``"probs"``: state probabilities ``(S,)``; ``"estimates"``: ``(S, n_params)``.
    """
    _check_estimator(estimator)
    _check_values(values, estimator)
    g = example_gradient(sizes, theta, loss, x, t, values=values)
    probs, fwds = noise_states(sizes, theta, x, estimator, values=values)
    c = None
    if estimator == "reinforce":
        c = reinforce_baseline(sizes, theta, loss, x, t, baseline, values=values)
    estimates = np.array([estimate(sizes, theta, loss, x, t, f, estimator, c) for f in fwds])
    mean = probs @ estimates
    centred = estimates - mean
    cov = (probs[:, None] * centred).T @ centred
    var = probs @ (centred * centred)
    agree = np.sign(estimates) == np.sign(g)[None, :]
    sign_probability = probs @ agree.astype(np.float64)
    descent_probability = float(np.sum(probs[estimates @ g > 0.0]))
    return {
        "gradient": g,
        "mean": mean,
        "var": var,
        "cov": cov,
        "sign_probability": sign_probability,
        "descent_probability": descent_probability,
        "probs": probs,
        "estimates": estimates,
    }


def batch_moments(
    sizes: Sequence[int],
    theta: np.ndarray,
    loss: str,
    X: np.ndarray,
    T: Sequence[Any],
    estimator: str,
    baseline: str | float = "none",
    *,
    values: str = "01",
) -> dict[str, Any]:
    """Exact moments of the batch estimate ``(1/B) sum_x g_hat_x`` (independent noise).

    Returns
    -------
    dict
        ``"gradient"``: mean of ``g_x``; ``"mean"``: mean of the per-example means;
        ``"var"``: ``(1/B^2) sum_x var_x``; ``"cov"``: ``(1/B^2) sum_x cov_x``;
        ``"sign_probability"`` and ``"descent_probability"``: averages over the examples
        of their per-example values (SPEC section 3); ``"examples"``: the list of
        :func:`example_moments` dicts.
    """
    X, T = _batch(sizes, X, T)
    B = X.shape[0]
    per = [
        example_moments(sizes, theta, loss, x, t, estimator, baseline, values=values)
        for x, t in zip(X, T)
    ]
    return {
        "gradient": sum(m["gradient"] for m in per) / B,
        "mean": sum(m["mean"] for m in per) / B,
        "var": sum(m["var"] for m in per) / B**2,
        "cov": sum(m["cov"] for m in per) / B**2,
        "sign_probability": sum(m["sign_probability"] for m in per) / B,
        "descent_probability": sum(m["descent_probability"] for m in per) / B,
        "examples": per,
    }
