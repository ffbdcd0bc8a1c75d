"""Claims about LEG (local expectation gradients) against REINFORCE."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from gradstat.claims.registry import TOL, Counterexample, Part, claim
from gradstat.claims.score_function import BASELINE_CASES
from gradstat.claims.search import Search, confirmed, first_example, spread
from gradstat.claims.wording import BOTH_VALUES, paper
from gradstat.exact import estimator_moments
from gradstat.network import VALUES, BinaryNetwork
from gradstat.strategies import problems

LEG_DEEP_BASELINES: tuple[str | float, ...] = ("mean", "optimal", -2.0, -0.5, 0.5, 2.0)
"""REINFORCE baselines LEG is compared with on deeper networks (outside the conditions)."""

LEG_CONSTANT_LOSS = Counterexample.no_input(
    "two layers, a loss constant in h (xent, W_o = 0, C = log 2), a_1 = 0, "
    "a_2 = h_1: on b_1, Var(leg) = (log 2)^2 Var(P(h_1 = 1 | h_2)) = 0.006774 while "
    "REINFORCE with baseline 'mean' is exactly 0",
    (0, 1, 1, 2), (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0), 0, "xent", "leg",
)  # fmt: skip
"""Minimal (``hypothesis.find``): LEG multiplies the loss itself, not ``C - c``, by
``P(h_1 = 1 | h_2) - p_1``, so a constant loss leaves variance that any baseline removes."""

LEG_TWO_LAYERS_MSE = Counterexample.no_input(
    "two layers, C = 0.5 (h_2 / 8 - 1)^2, a_1 = 0, a_2 = h_1: on b_1, "
    "Var(leg) = 0.002918 > 0.000767 = Var(reinforce) with baseline 'mean' or 'optimal'",
    (0, 1, 1, 1), (0.0, 1.0, 0.0, 0.125, 0.0), 1.0, "mse", "leg",
)  # fmt: skip
"""Minimal (``hypothesis.find``, mse with ``W_o != 0``): a loss that depends on ``h`` but
sits far from zero."""

KEPT_LEG_COUNTEREXAMPLES: tuple[Counterexample, ...] = (LEG_CONSTANT_LOSS, LEG_TWO_LAYERS_MSE)
"""Networks on which REINFORCE with some baseline of :data:`LEG_DEEP_BASELINES` has a
smaller variance than LEG on a stochastic coordinate, confirmed on every check."""


def leg_variance_gaps(
    net: BinaryNetwork, x: Any, t: Any, baselines: Iterable[str | float]
) -> dict[str | float, tuple[float, int, float, float]]:
    """Per baseline, ``max_j (Var_leg_j - Var_rf_j) / (1 + Var_rf_j)`` over the stochastic
    coordinates and examples, with the worst coordinate ``j`` and both variances there
    (``Var_rf`` is REINFORCE's with that baseline; for a batch, the first worst example)."""
    stoch = net.parameter_groups()["stochastic"]
    leg = estimator_moments(net, x, t, "leg").example_var[:, stoch]
    out: dict[str | float, tuple[float, int, float, float]] = {}
    for baseline in baselines:
        ref = estimator_moments(net, x, t, "reinforce", baseline=baseline).example_var[:, stoch]
        gap = (leg - ref) / (1.0 + ref)
        b, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
        out[baseline] = (float(gap[b, j]), int(j), float(leg[b, j]), float(ref[b, j]))
    return out


def _largest_gap(net: BinaryNetwork, x: Any, t: Any, baselines: Iterable[str | float]) -> float:
    return max(g[0] for g in leg_variance_gaps(net, x, t, baselines).values())


def _leg_beaten(net: BinaryNetwork, x: Any, t: Any) -> tuple[list[str | float], str]:
    """Baselines of :data:`LEG_DEEP_BASELINES` that beat LEG, and the numbers of the worst."""
    gaps = leg_variance_gaps(net, x, t, LEG_DEEP_BASELINES)
    beaten = [b for b, (gap, *_) in gaps.items() if gap > TOL]
    worst = max(gaps, key=lambda b: gaps[b][0])
    _, j, v_leg, v_ref = gaps[worst]
    names = ", ".join(repr(b) for b in beaten)
    return beaten, (
        f"stochastic coordinate {j}: Var(leg) {v_leg:.4g} > Var(reinforce) {v_ref:.4g} "
        f"with baseline {worst!r} (beaten by {names})"
    )


@claim(
    statement="LEG (local expectation gradients) has variance at most REINFORCE's, per "
    "stochastic coordinate: for one stochastic layer with any baseline c(h_-i) that ignores "
    "the unit's own value, and at any depth with no baseline (deeper, a baseline can beat "
    "LEG).",
    source=f"{paper('leg')} (LEG as REINFORCE Rao-Blackwellised per unit); where it "
    "holds is derived here",
    conditions=f"One stochastic layer (N <= 5), every loss, {BOTH_VALUES}, "
    "batches of 1-2: baselines none, mean (E[C|x]), optimal and a constant in [-5, 5]. "
    "Two or three layers (N <= 6): no baseline only. Per example and stochastic "
    f"coordinate Var_leg <= Var_rf + {TOL:g} (1 + Var_rf). Outside: two or three layers "
    "(N <= 5, one example) with baselines mean, optimal, -2, -0.5, 0.5, 2.",
)
def leg_le_reinforce(max_examples: int) -> list[Part]:
    """LEG is REINFORCE conditioned on every unit but the one it differentiates.

    Closed form: REINFORCE on ``b_l[i]`` is ``(C - c)(b_i - p_i)`` (``(b_i - p_i)
    h_{l-1,j}`` for ``W_l[i, j]``; the same for units in ``{-1, +1}``, whose score is also
    ``b_i - p_i``). Given every other unit ``h_{-i}``, ``b_i`` is Bernoulli(``w_1``), ``w_v
    ∝ P(b_i = v | h_{l-1}) prod_children P(b_c | h_l, b_i = v)`` (LEG's weights), so
    ``E[(C - c)(b_i - p_i) | h_{-i}] = w_1 (1 - p_i)(f_1 - c) - w_0 p_i (f_0 - c)``. One
    stochastic layer: no children, ``w_1 = p_i``, and the ``c`` terms cancel, giving ``p_i
    (1 - p_i)(f_1 - f_0)``, LEG's estimate, for every constant ``c``: ``mean`` and
    ``optimal`` are constants per example (and coordinate), so ``Var(REINFORCE_j(c)) =
    Var(LEG_j) + E[Var(REINFORCE_j(c) | h_{-i})] >= Var(LEG_j)``. Deeper, for a unit below
    the last layer ``f_1 = f_0 = C`` (the loss sees ``h_L`` only) and the conditional
    expectation is ``(C - c)(w_1 - p_i) = LEG_i - c (w_1 - p_i)``: LEG is the conditional
    expectation of REINFORCE without a baseline only, so ``Var(LEG_j) <= Var(REINFORCE_j)``
    there; with ``c != 0`` the extra term (mean zero) can cancel part of LEG's variance, and
    a baseline can beat LEG (with a loss constant in ``h``, REINFORCE with ``c = C`` is 0).
    """
    s = Search(max_examples)
    ratios: list[float] = []

    def one_layer(case: Any) -> float:
        (net, X, T), c = case
        gaps = leg_variance_gaps(net, X, T, (*BASELINE_CASES, c))
        _, _, v_leg, v_ref = gaps["optimal"]
        if v_ref > 0:
            ratios.append(v_leg / v_ref)
        return max(g[0] for g in gaps.values())

    def describe(case: Any) -> Counterexample:
        problem, c = case
        return first_example(
            f"one layer: Var(leg) exceeds Var(reinforce) for a baseline among none, mean, "
            f"optimal, {c!r}",
            problem, "leg",
        )  # fmt: skip

    def describe_deep(problem: Any) -> Counterexample:
        return first_example(
            "deeper network: Var(leg) exceeds Var(reinforce) without a baseline", problem, "leg"
        )

    def confirm(cx: Counterexample) -> str | None:
        beaten, numbers = _leg_beaten(cx.network(), cx.x, cx.t)
        return f"{cx.sizes} {cx.loss}, {numbers}" if beaten else None

    shallow = problems(
        max_batch=2, min_depth=1, max_depth=1, max_width=5, max_stochastic=5, values=VALUES
    )
    deep = problems(max_batch=2, min_depth=2, max_depth=3, max_stochastic=6, values=VALUES)
    small_deep = problems(max_batch=1, min_depth=2, max_depth=3, max_stochastic=5, values=VALUES)
    return [
        s.holds(
            "one layer: Var_j(leg) <= Var_j(reinforce) on every stochastic coordinate for "
            "baselines none, mean, optimal and a constant in [-5, 5]",
            st.tuples(shallow, st.floats(-5.0, 5.0)), one_layer,
            "largest (Var_leg - Var_rf) / (1 + Var_rf):", describe,
            lambda: spread("worst-coordinate Var_leg / Var_optimal: median", ratios),
        ),
        s.holds(
            "two or three layers: Var_j(leg) <= Var_j(reinforce) without a baseline",
            deep, lambda problem: _largest_gap(*problem, ("none",)),
            "largest (Var_leg - Var_rf) / (1 + Var_rf):", describe_deep,
        ),
        confirmed(KEPT_LEG_COUNTEREXAMPLES, confirm),
        s.outside(
            "two or three layers, baselines " + ", ".join(map(repr, LEG_DEEP_BASELINES)),
            small_deep, lambda net, x, t: _largest_gap(net, x, t, LEG_DEEP_BASELINES), "leg",
            lambda net, x, t: _leg_beaten(net, x, t)[1],
            minimal="two or three layers, a baseline",
        ),
    ]  # fmt: skip
