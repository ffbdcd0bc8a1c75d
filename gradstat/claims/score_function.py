"""Claims about REINFORCE (the score-function estimator) and its baselines."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from gradstat.claims.registry import TOL, Counterexample, Part, claim
from gradstat.claims.search import (
    Search,
    bias_ratio,
    first_example,
    relative,
    spread,
    variance_ratio,
)
from gradstat.claims.wording import BENGIO, INPUTS, UNBIASED
from gradstat.exact import estimator_moments
from gradstat.network import BinaryNetwork
from gradstat.strategies import problems

BASELINE_CASES: tuple[str | float, ...] = ("none", "mean", "optimal")
"""REINFORCE baselines the checks draw from, besides float constants."""


def _constant_loss(net: BinaryNetwork) -> BinaryNetwork:
    """The network with ``W_o = 0``: a loss that does not depend on ``h``."""
    theta = net.params.copy()
    theta[net.layer_slices()[-1][0]] = 0.0
    return net.with_params(theta)


@claim(
    statement="REINFORCE, (C - c) grad log P(h) + grad C, is unbiased for every baseline "
    "c that does not depend on h; a loss constant in h gives mean zero on the stochastic layers.",
    source=f"Williams (1992), Machine Learning 8:229-256; {BENGIO}",
    conditions=f"Any depth, N <= 6, every loss, batches of 1-2, {INPUTS}; baselines none, "
    f"mean (E[C|x]), optimal (exact), or a constant in [-5, 5]. Per example, {UNBIASED}.",
)
def reinforce_unbiased(max_examples: int) -> list[Part]:
    """REINFORCE is unbiased with any baseline that does not depend on ``h``.

    Closed form: with ``s = grad_theta log P(h | x)``, ``E[s] = sum_h grad P(h) =
    grad sum_h P(h) = 0``, so ``E[(C - c) s] = E[C s]`` for a constant ``c``, and
    ``E[C s + grad C] = grad E[C]`` (the score-function identity; the direct term is the
    output layer's, whose parameters do not move ``P(h)``). The ``mean`` and ``optimal``
    baselines are constants per example (they are expectations, not functions of ``h``).
    A loss that does not depend on ``h`` (``W_o = 0``) gives ``E[C s] = C E[s] = 0`` on the
    stochastic layers.
    """
    s = Search(max_examples)
    baselines = st.one_of(st.sampled_from(BASELINE_CASES), st.floats(-5.0, 5.0))
    cases = st.tuples(problems(max_stochastic=6, max_batch=2), baselines)

    def residual(case: Any) -> float:
        problem, baseline = case
        return bias_ratio(problem, "reinforce", baseline=baseline)

    def describe(case: Any) -> Counterexample:
        (net, X, T), baseline = case
        m = estimator_moments(net, X[:1], T[:1], "reinforce", baseline=baseline)
        return first_example(
            f"baseline {baseline!r}: max |E g_hat - g| = {np.max(np.abs(m.bias)):.3g}",
            (net, X, T), "reinforce",
        )  # fmt: skip

    def constant_loss(case: Any) -> float:
        (net, X, T), baseline = case
        m = estimator_moments(_constant_loss(net), X, T, "reinforce", baseline=baseline)
        stoch = m.example_mean[:, net.parameter_groups()["stochastic"]]
        return relative(stoch, np.zeros_like(stoch))

    def describe_flat(case: Any) -> Counterexample:
        (net, X, T), baseline = case
        return first_example(
            f"W_o = 0, baseline {baseline!r}: stochastic mean is not 0",
            (_constant_loss(net), X, T), "reinforce",
        )  # fmt: skip

    return [
        s.holds(
            "E[g_hat] = g for baselines none/mean/optimal and constants in [-5, 5]",
            cases, residual, "largest |E g_hat - g| / (1 + |g|_max):", describe,
        ),
        s.holds(
            "constant loss (W_o = 0): E[g_hat] = 0 on the stochastic layers",
            cases, constant_loss, "largest |E g_hat_j| / (1 + |E g_hat|_max):", describe_flat,
        ),
    ]  # fmt: skip


@claim(
    statement="REINFORCE's optimal baseline c_j = E[s_j^2 C] / E[s_j^2] gives, on every "
    "stochastic-layer coordinate, variance at most that of any constant baseline (the "
    "minimum among constant baselines, not among unbiased estimators: LEG, which sums over "
    "the unit's own values, can have less); for a one-unit network the variance on the "
    "stochastic-layer coordinates is zero (the output layer's direct gradient keeps its "
    "variance).",
    source=f"{BENGIO} (the variance-minimising constant baseline); Weaver & Tao (2001), "
    "UAI, arXiv:1301.2315",
    conditions="Any depth, N <= 5, every loss, batches of 1-2; constants drawn in "
    f"[-5, 5] plus none and mean. Var_opt - Var_c <= {TOL:g} (1 + Var_c); for N = 1, "
    f"Var_j <= {TOL:g} (1 + max |E g_hat|)^2.",
)
def optimal_baseline(max_examples: int) -> list[Part]:
    """The optimal baseline minimises REINFORCE's variance over constants; zero on the
    stochastic layer for N = 1.

    Closed form: on a stochastic coordinate ``j`` the estimate is ``(C - c) s_j``, with a
    mean that does not depend on ``c``, so ``Var_j(c) = E[s_j^2 (C - c)^2] - g_j^2``: a
    convex quadratic in ``c`` minimised at ``c_j* = E[s_j^2 C] / E[s_j^2]``, with
    ``Var_j(c) - Var_j(c_j*) = E[s_j^2] (c - c_j*)^2 >= 0``. For one unit, ``s = (h - p)
    x_j`` (or ``h - p`` for the bias) and ``c* = (1 - p) C(1) + p C(0)``, so the estimate is
    ``p (1 - p) (C(1) - C(0)) x_j`` for both ``h = 1`` and ``h = 0``: zero variance.
    """
    s = Search(max_examples)
    cases = st.tuples(problems(max_stochastic=5, max_batch=2), st.floats(-5.0, 5.0))
    reduction: list[float] = []

    def excess(case: Any) -> float:
        (net, X, T), c = case
        stoch = net.parameter_groups()["stochastic"]
        best = estimator_moments(net, X, T, "reinforce", baseline="optimal").example_var
        worst = -np.inf
        for other in (c, "none", "mean"):
            var = estimator_moments(net, X, T, "reinforce", baseline=other).example_var
            gap = (best[:, stoch] - var[:, stoch]) / (1.0 + var[:, stoch])
            worst = max(worst, float(np.max(gap, initial=-np.inf)))
            if other == "none":
                total = var[:, stoch].sum()
                if total > 0:
                    reduction.append(1.0 - best[:, stoch].sum() / total)
        return worst

    def describe(case: Any) -> Counterexample:
        problem, c = case
        return first_example(
            f"Var(optimal) exceeds Var(c = {c!r}) on a stochastic coordinate",
            problem, "reinforce",
        )  # fmt: skip

    def spread_one_unit(problem: Any) -> float:
        net, X, T = problem
        m = estimator_moments(net, X, T, "reinforce", baseline="optimal")
        stoch = net.parameter_groups()["stochastic"]
        return variance_ratio(m.example_var[:, stoch], m.example_mean)

    def describe_unit(problem: Any) -> Counterexample:
        return first_example(
            "N = 1 with the optimal baseline: non-zero variance", problem, "reinforce"
        )

    return [
        s.holds(
            "Var_j(optimal) <= Var_j(c) on every stochastic coordinate, c a constant in "
            "[-5, 5], 0 (none) or E[C|x] (mean)",
            cases, excess, "largest (Var_opt - Var_c) / (1 + Var_c):", describe,
            lambda: spread(
                "total stochastic variance vs no baseline cut by a median", reduction, ".1%"
            ),
        ),
        s.holds(
            "N = 1: the optimal baseline has zero variance on the stochastic-layer "
            "coordinates",
            problems(max_batch=2, max_depth=1, max_width=1), spread_one_unit,
            "largest Var_j / (1 + |E g_hat|_max)^2:", describe_unit,
        ),
    ]  # fmt: skip
