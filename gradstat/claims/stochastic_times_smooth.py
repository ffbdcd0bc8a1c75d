"""Claims about the stochastic-times-smooth (STS) unit ``h = b sqrt(p)``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from hypothesis import strategies as st
from scipy.special import expit

from gradstat.claims.registry import TOL, Counterexample, Part, claim
from gradstat.claims.search import Search, one_layer, relative, single
from gradstat.claims.wording import BENGIO, LARGEST
from gradstat.exact import estimator_moments
from gradstat.network import BinaryNetwork

STS_LOGITS: tuple[float, ...] = (-2.0, -4.0, -6.0, -8.0, -10.0, -12.0)
"""Logits ``a -> -inf`` along which the STS approximation error is followed."""

STS_RATIO_EXAMPLE = Counterexample.one_unit(
    "one unit, C = 0.5 (1.5 h + 0 - 0.45)^2; |E_sts C(h) - C(p)| / p = "
    "0.5 * 1.5^2 (sqrt(p) - p) along a = -2, -4, ..., -12",
    -2.0, 0.45, "mse", "sts", w_o=1.5,
)  # fmt: skip
"""The network of the STS approximation sequence (the logit ``b_1`` is replaced by each
of :data:`STS_LOGITS`); not a counterexample, recorded in the same reproducible form."""


def sts_expected_loss(net: BinaryNetwork, x: Any, t: Any) -> float:
    """``E[C]`` under the STS forward pass (``h = b sqrt(p)``) of an ``mse`` network.

    For ``mse``, ``<W_o, dC/dW_o> + <b_o - t, dC/db_o> = (y - t)^T (y - t) = 2 C`` at every
    state, so ``E_sts[C] = 0.5 (<W_o, E g_hat_{W_o}> + <b_o - t, E g_hat_{b_o}>)`` with the
    exact STS means of the output-layer coordinates.
    """
    if net.loss != "mse":
        raise ValueError(f"sts_expected_loss needs an mse network, got loss {net.loss!r}")
    m = estimator_moments(net, x, t, "sts")
    W_o, b_o = net.layers()[-1]
    w_sl, b_sl = net.layer_slices()[-1]
    return 0.5 * float(W_o.reshape(-1) @ m.mean[w_sl] + (b_o - np.asarray(t)) @ m.mean[b_sl])


def _one_unit_mse(W_o: np.ndarray, b_o: np.ndarray, t: np.ndarray, h: float) -> float:
    """``C(h) = 0.5 ||W_o h + b_o - t||^2`` of a one-unit network at a real value ``h``."""
    return 0.5 * float(np.sum((W_o * h + b_o - t) ** 2))


def _sts_ratios(W_o: np.ndarray, b_o: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """Along :data:`STS_LOGITS`: ``p``, the engine's and the two-point ``E_sts C``, ``C(p)``."""
    n_out = W_o.shape[0]
    p = expit(np.array(STS_LOGITS))
    engine, two_point, at_p = [], [], []
    for a, pk in zip(STS_LOGITS, p):
        net = BinaryNetwork((0, 1, n_out), np.concatenate([[a], W_o, b_o]), loss="mse")
        engine.append(sts_expected_loss(net, np.zeros(0), t))
        q = np.sqrt(pk)
        two_point.append(
            q * _one_unit_mse(W_o, b_o, t, q) + (1 - q) * _one_unit_mse(W_o, b_o, t, 0)
        )
        at_p.append(_one_unit_mse(W_o, b_o, t, pk))
    engine, two_point, at_p = np.array(engine), np.array(two_point), np.array(at_p)
    return {
        "p": p,
        "engine": engine,
        "two_point": two_point,
        "ratio": np.abs(engine - at_p) / p,
        "predicted": 0.5 * float(W_o @ W_o) * (np.sqrt(p) - p),
    }


@claim(
    statement="The STS unit h = b sqrt(p), b ~ Bernoulli(sqrt(p)): E[h] = p; for one layer "
    "and a linear loss its backprop mean is exactly half the true gradient on the "
    "stochastic layer; E[f(h)] - f(p) vanishes faster than p as p -> 0.",
    source=f"{BENGIO} (the STS unit; E[f(h)] = f(p) to first order); the factor 1/2 and "
    "the rate are derived here",
    conditions="One stochastic layer, N <= 4, linear loss, one example, values in "
    f"[-2, 2], agreement to {LARGEST}; the rate on one-unit mse "
    "networks (n_out <= 3, W_o, b_o, t in [-2, 2]) at a = -2, -4, ..., -12.",
)
def sts(max_examples: int) -> list[Part]:
    """Three exact facts about the STS unit ``h = b sqrt(p)``, ``b ~ Bernoulli(sqrt(p))``.

    * ``E[h] = sqrt(p) sqrt(p) = p``. Checked through the engine: with one layer and the
      linear loss the output-layer estimate is ``t h^T``, whose STS mean ``t E[h]^T``
      must equal the exact gradient ``t p^T``.
    * One layer, linear loss ``dC/dh = w``: the estimate on ``a_i`` is ``w_i b_i sqrt(p_i)
      (1 - p_i) / 2`` with mean ``w_i p_i (1 - p_i) / 2 = g_i / 2``: half the gradient.
    * ``E[f(h)] = sqrt(p) f(sqrt(p)) + (1 - sqrt(p)) f(0) = f(0) + p f'(0) + p^{3/2}
      f''(0) / 2 + O(p^2)`` while ``f(p) = f(0) + p f'(0) + O(p^2)``, so ``(E f(h) -
      f(p)) / p -> 0`` as ``p -> 0``; for ``f = C`` of a one-unit ``mse`` network, exactly
      ``0.5 kappa (sqrt(p) - p)`` with ``kappa = sum_k W_o[k]^2``, decreasing for
      ``p < 1/4``.
    """
    s = Search(max_examples)

    def linear(problem: Any) -> float:
        net, x, t = single(problem)
        m = estimator_moments(net, x, t, "sts")
        stoch = net.parameter_groups()["stochastic"]
        return max(
            relative(m.mean[stoch.stop :], m.gradient[stoch.stop :]),
            relative(m.mean[stoch], 0.5 * m.gradient[stoch]),
        )

    def describe(problem: Any) -> Counterexample:
        net, x, t = single(problem)
        return Counterexample.from_problem(
            "STS mean is not (g/2 on layer 1, g on the output layer)", net, x, t, "sts"
        )

    weights = st.floats(-2.0, 2.0)
    heads = st.integers(1, 3).flatmap(
        lambda n: st.tuples(*(st.lists(weights, min_size=n, max_size=n) for _ in range(3)))
    )

    def shrinking(head: Any) -> tuple[bool, float]:
        W_o, b_o, t = (np.array(v) for v in head)
        r = _sts_ratios(W_o, b_o, t)
        closed = relative(r["engine"], r["two_point"])
        bad = (
            closed > TOL
            or np.any(np.diff(r["ratio"]) > 1e-9)
            or np.max(np.abs(r["ratio"] - r["predicted"])) > 1e-6
        )
        return bool(bad), closed

    def describe_head(head: Any) -> Counterexample:
        W_o, b_o, t = (np.array(v) for v in head)
        net = BinaryNetwork((0, 1, W_o.size), np.concatenate([[STS_LOGITS[0]], W_o, b_o]))
        return Counterexample.from_problem(
            "|E_sts C - C(p)| / p does not follow 0.5 kappa (sqrt(p) - p)", net, [], t, "sts"
        )

    ex = STS_RATIO_EXAMPLE
    seq = _sts_ratios(np.array(ex.params[1:2]), np.array(ex.params[2:]), np.array(ex.t))
    rate = s.holds(
        "|E_sts C(h) - C(p)| / p is non-increasing along a = -2, ..., -12 and equals "
        "0.5 kappa (sqrt(p) - p) to 1e-6 for one-unit mse networks (E_sts C from the engine "
        "agrees with the two-point sum)",
        heads, shrinking, "largest engine vs two-point deviation:", describe_head,
    )  # fmt: skip
    listed = ", ".join(f"{r:.3g}" for r in seq["ratio"])
    return [
        s.holds(
            "one layer, linear loss: E[g_hat] = g on the output layer (so E[h] = p) and "
            "E[g_hat] = g/2 on layer 1",
            one_layer(("linear",), max_stochastic=4), linear, "largest relative deviation:",
            describe,
        ),
        replace(
            rate,
            text=rate.text + f" For W_o = 1.5, t = 0.45 the ratio is {listed} at p = "
            f"{seq['p'][0]:.3g} ... {seq['p'][-1]:.3g}.",
        ),
    ]  # fmt: skip
