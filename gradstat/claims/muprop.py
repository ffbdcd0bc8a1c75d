"""Claims about MuProp."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from gradstat.claims.registry import Counterexample, Part, claim
from gradstat.claims.search import Search, bias_ratio, first_example
from gradstat.claims.wording import BOTH_VALUES, INPUTS, UNBIASED, paper
from gradstat.network import VALUES
from gradstat.strategies import problems


@claim(
    statement="MuProp (REINFORCE with a first-order Taylor control variate of the "
    "mean-field network, plus its analytic mean) is unbiased for any expansion point.",
    source=paper("muprop"),
    conditions=f"Any depth, N <= 6, every loss, {BOTH_VALUES}, batches of 1-2, {INPUTS}; "
    f"expansion 'mean_field' or a constant in [-2, 2]. Per example, {UNBIASED}.",
)
def muprop_unbiased(max_examples: int) -> Part:
    """MuProp is unbiased for any expansion point.

    Closed form: for layer ``l``, given ``h_{l-1}`` the units of layer ``l`` are independent
    Bernoulli(``p_i``) and the control variate ``c(h_l) = fbar_l + d_l . (h_l - hbar_l)`` is
    affine in ``h_l`` with ``fbar_l, d_l, hbar_l`` functions of ``h_{l-1}`` only (the
    mean-field pass starts from ``hbar_l``, the mean ``mu_l`` or the constant). Then
    ``E[c(h_l)(b_i - p_i) | h_{l-1}] = d_{l,i} Cov(h_i, b_i) = d_{l,i} kappa p_i (1 - p_i)``,
    exactly the added term, so MuProp's mean is REINFORCE's without a baseline, the
    gradient, for every expansion point (``W_l[i, j]`` multiplies both by ``h_{l-1,j}``;
    the output layer is the direct gradient).
    """
    count = {"mean_field": 0, "float": 0}
    expansions = st.one_of(st.just("mean_field"), st.floats(-2.0, 2.0))
    cases = st.tuples(problems(max_stochastic=6, max_batch=2, values=VALUES), expansions)

    def residual(case: Any) -> float:
        problem, expansion = case
        count["mean_field" if expansion == "mean_field" else "float"] += 1
        return bias_ratio(problem, "muprop", expansion=expansion)

    def describe(case: Any) -> Counterexample:
        problem, expansion = case
        return first_example(f"muprop with expansion {expansion!r} is biased", problem, "muprop")

    return Search(max_examples).holds(
        "E[g_hat] = g for expansion 'mean_field' and constants in [-2, 2]",
        cases, residual, "largest |E g_hat - g| / (1 + max):", describe,
        lambda: f"{count['mean_field']} with 'mean_field', {count['float']} with a constant",
    )  # fmt: skip
