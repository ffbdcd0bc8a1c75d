"""Claims about ReinMax and the binary ZGR estimator it reduces to at ``tau = 1``."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from scipy.special import expit

from gradstat.claims.reference import backprop, draw_by_draw, unit_scale
from gradstat.claims.registry import TOL, Counterexample, Part, claim
from gradstat.claims.search import Search, bias_ratio, confirmed, first_example, relative
from gradstat.claims.wording import LARGEST, paper
from gradstat.exact import estimator_moments
from gradstat.network import VALUES, BinaryNetwork
from gradstat.sampling import estimate_from_noise, forward_pass
from gradstat.strategies import problems

REINMAX_BIAS_TOL = 1e-6
"""ReinMax counts as biased when ``|E g_hat - g|`` exceeds this times ``1 +`` the largest
magnitude compared (far above the ``TOL`` of the exact comparisons)."""

REINMAX_POWER_C = 0.45
"""The ``c`` of the one-unit loss ``f(h) = |h - c|^1.5``."""

REINMAX_LOGITS: tuple[float, ...] = (-2.0, 0.0, 2.0)
"""Logits at which the bias of ZGR on ``|h - c|^1.5`` is reported."""

REINMAX_PROBE = Counterexample.one_unit(
    "one unit, C = h (linear loss, W_o = 1, t = 1): dC/dh = 1, so the estimate "
    "on b_1 is the surrogate J(b) itself; the logit b_1 is replaced by each of "
    "REINMAX_LOGITS",
    0.0, 1.0, "linear", "reinmax",
)  # fmt: skip
"""The network that reads ReinMax's surrogate off the engine (not a counterexample,
recorded in the same reproducible form)."""

REINMAX_BCE_MINIMAL = Counterexample.one_unit(
    "minimal one-layer bce counterexample (hypothesis.find): one unit, a = 0, "
    "C = softplus(h) (t = 0): exact gradient on b_1 sigmoid'(0)(softplus(1) - log 2) = "
    "0.155029, E[reinmax] sigmoid'(0)(sigmoid(1) + sigmoid(0))/2 = 0.153882",
    0.0, 0.0, "bce", "reinmax",
)  # fmt: skip
"""A loss that is not quadratic in ``h``: the trapezoid rule misses its curvature."""


def zgr_estimate(net: BinaryNetwork, x: Any, t: Any, u: Any) -> np.ndarray:
    """The ZGR (DARN(1/2)) estimate for the state drawn by ``u``, written in numpy.

    ``forward_pass`` samples the state (unit ``k`` fires when ``u[k] < p[k]``); each unit's
    ``dh/da`` is replaced by ``kappa (b (1 - p) + (1 - b) p) / 2`` (``kappa`` 1, or 2 for
    ``values="pm1"``; ``b`` the unit's bit) and ``dC/dy`` is backpropagated with derivatives
    at the sampled values. Returns the estimate in the parameter order of docs/model.md.
    """
    fp = forward_pass(net, x, t, u)
    bits = (fp.h + 1.0) / 2.0 if net.values == "pm1" else fp.h
    jac = unit_scale(net) * (bits * (1.0 - fp.p) + (1.0 - bits) * fp.p) / 2.0
    return backprop(net, x, fp, jac)


def reinmax_power_bias(a: float, c: float = REINMAX_POWER_C) -> tuple[float, float]:
    """``E[g_hat]`` of ReinMax (``tau = 1``) and the exact gradient for ``f(h) = |h - c|^1.5``.

    One unit with logit ``a``: the surrogate ``J(b)`` is read off :data:`REINMAX_PROBE`
    (``u = p/2`` draws ``b = 1``, ``u = (1 + p)/2`` draws ``b = 0``), then ``E[g_hat] =
    p f'(1) J(1) + (1 - p) f'(0) J(0)`` against ``g = sigmoid'(a)(f(1) - f(0))``.
    """
    net = REINMAX_PROBE.network().with_params([a, *REINMAX_PROBE.params[1:]])
    p = float(expit(a))

    def surrogate(u: float) -> float:
        est = estimate_from_noise(net, REINMAX_PROBE.x, REINMAX_PROBE.t, "reinmax", [u], tau=1.0)
        return float(est[0])

    def f(h: float) -> float:
        return abs(h - c) ** 1.5

    def df(h: float) -> float:
        return 1.5 * float(np.sign(h - c)) * abs(h - c) ** 0.5

    mean = p * df(1.0) * surrogate(p / 2) + (1 - p) * df(0.0) * surrogate((1 + p) / 2)
    return mean, p * (1 - p) * (f(1.0) - f(0.0))


def _bias(net: BinaryNetwork, x: Any, t: Any) -> float:
    m = estimator_moments(net, x, t, "reinmax", tau=1.0)
    return relative(m.mean, m.gradient)


def _bias_numbers(net: BinaryNetwork, x: Any, t: Any) -> str:
    m = estimator_moments(net, x, t, "reinmax", tau=1.0)
    j = int(np.argmax(np.abs(m.bias)))
    return f"coordinate {j}: exact gradient {m.gradient[j]:+.6g}, E[reinmax] {m.mean[j]:+.6g}"


@claim(
    statement="ReinMax at tau = 1 is the binary ZGR estimator (surrogate (b(1-p) + "
    "(1-b)p)/2, doubled for units in {-1, +1}) sample by sample; it is unbiased for one "
    "stochastic layer when the loss is at most quadratic in each unit, and biased for a "
    "loss like |h - c|^1.5.",
    source=f"{paper('reinmax')} (ReinMax); Shekhovtsov (2023), ICML (ZGR, the trapezoid rule)",
    conditions="Sample by sample: any depth, N <= 6, every loss, both unit values, one "
    "example, 3 draws of u per network, against a numpy backprop with the ZGR surrogate, "
    f"to {LARGEST}. Unbiased: one stochastic layer, N <= 5, mse "
    f"or linear, both unit values, batches of 1-2, |E g_hat - g| <= {TOL:g} (1 + max). "
    "Outside: one-layer bce (N <= 4; biased means a relative deviation above "
    f"{REINMAX_BIAS_TOL:g}), and one unit with f(h) = |h - 0.45|^1.5 at a = -2, 0, 2.",
)
def reinmax_zgr(max_examples: int) -> list[Part]:
    """ReinMax at ``tau = 1`` is ZGR; unbiased for a loss at most quadratic in each unit.

    Closed form: with ``q = (p + b)/2``, ``2 q (1 - q) - p (1 - p)/2`` is ``(1 - p^2)/2 - p
    (1 - p)/2 = (1 - p)/2`` for ``b = 1`` and ``p - p^2/2 - p (1 - p)/2 = p/2`` for ``b =
    0``: ZGR's ``(b (1 - p) + (1 - b) p)/2`` (times ``kappa``), compared sample by sample
    with a numpy backprop (:func:`zgr_estimate`). One stochastic layer: with the other units
    fixed (independent of unit ``i``), ``E[g_hat(b_1[i])] = p (1 - p) (f'(v_1) + f'(v_0))
    kappa / 2`` with ``f(h_i) = C`` and ``v_1, v_0`` the unit's two values, the trapezoid
    rule for ``f(v_1) - f(v_0) = int f'``, against ``g = p (1 - p)(f(v_1) - f(v_0))``; the
    rule is exact when ``f'`` is affine, i.e. ``C`` at most quadratic in ``h_i`` (mse,
    linear). ``W_1`` coordinates are ``x_j`` times these and the output layer is the direct
    gradient. For ``f(h) = |h - c|^1.5`` the rule is off: ``E[g_hat] = sigmoid'(a) 0.75
    (sqrt(1 - c) - sqrt(c))`` vs ``sigmoid'(a)((1 - c)^1.5 - c^1.5)``, a ratio 0.501 at
    ``c = 0.45`` for every ``a``; bce (softplus-shaped in ``h``) is biased too.
    """
    s = Search(max_examples)

    def same(case: Any) -> float:
        problem, seed = case
        return draw_by_draw(problem, seed, "reinmax", zgr_estimate, tau=1.0)

    def describe_same(case: Any) -> Counterexample:
        return first_example(
            "reinmax (tau = 1) differs from ZGR sample by sample", case[0], "reinmax"
        )

    def describe_unbiased(problem: Any) -> Counterexample:
        return first_example(
            "reinmax (tau = 1) is biased on one layer with a quadratic or linear loss",
            problem, "reinmax",
        )  # fmt: skip

    def biased(net: BinaryNetwork, x: Any, t: Any) -> tuple[bool, float]:
        r = _bias(net, x, t)
        return r > REINMAX_BIAS_TOL, r

    def confirm(cx: Counterexample) -> str | None:
        net = cx.network()
        if _bias(net, cx.x, cx.t) > REINMAX_BIAS_TOL:
            return f"{cx.sizes} {cx.loss}, {_bias_numbers(net, cx.x, cx.t)}"
        return None

    any_depth = problems(max_batch=1, max_stochastic=6, values=VALUES)
    quadratic = problems(
        max_batch=2, min_depth=1, max_depth=1, max_width=5, max_stochastic=5,
        losses=("mse", "linear"), values=VALUES,
    )  # fmt: skip
    bce = problems(
        max_batch=1, min_depth=1, max_depth=1, max_width=4, max_stochastic=4, losses=("bce",),
        values=VALUES,
    )  # fmt: skip
    rows = []
    for a in REINMAX_LOGITS:
        mean, g = reinmax_power_bias(a)
        rows.append((a, mean, g, mean - g))
    listed = "; ".join(
        f"a = {a:g}: E[g_hat] {mean:.4g}, g {g:.4g}, bias {b:+.4g}" for a, mean, g, b in rows
    )
    every = all(abs(b) > REINMAX_BIAS_TOL * (1 + abs(g)) for _, _, g, b in rows)
    return [
        s.holds(
            "reinmax (tau = 1) = ZGR sample by sample (3 draws of u per network, any depth, "
            "N <= 6, every loss, both unit values)",
            st.tuples(any_depth, st.integers(0, 2**32 - 1)), same,
            "largest relative deviation:", describe_same,
        ),
        s.holds(
            "one layer, mse or linear loss: E[g_hat] = g",
            quadratic, lambda problem: bias_ratio(problem, "reinmax", tau=1.0),
            "largest relative deviation:", describe_unbiased,
        ),
        confirmed((REINMAX_BCE_MINIMAL,), confirm),
        s.outside("one layer, bce", bce, biased, "reinmax", _bias_numbers),
        Part(
            f"One unit, f(h) = |h - {REINMAX_POWER_C:g}|^1.5 with the engine's surrogate "
            f"J(b): {listed} ({'biased at every a' if every else 'NOT biased at every a'}).",
            0,
            outside=True,
        ),
    ]  # fmt: skip
