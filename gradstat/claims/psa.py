"""Claims about PSA, the path sample-analytic estimator."""

from __future__ import annotations

from typing import Any

from gradstat.claims.registry import Part, claim
from gradstat.claims.search import Search, describe_as, relative
from gradstat.claims.wording import LARGEST, paper
from gradstat.exact import estimator_moments
from gradstat.network import VALUES
from gradstat.strategies import problems


def _top_and_output_bias(problem: Any) -> float:
    """Relative deviation of PSA's exact mean from the gradient on the last stochastic
    layer's and the output layer's parameters."""
    net, X, T = problem
    m = estimator_moments(net, X, T, "psa")
    groups = net.parameter_groups()
    top = slice(groups[f"layer{net.n_layers}"].start, groups["output"].stop)
    return relative(m.example_mean[:, top], m.example_gradient[:, top])


def _leg_gap(problem: Any) -> float:
    """Largest relative deviation of PSA's exact mean and variance from LEG's, and of its
    mean from the gradient (one stochastic layer)."""
    net, X, T = problem
    psa = estimator_moments(net, X, T, "psa")
    leg = estimator_moments(net, X, T, "leg")
    return max(
        relative(psa.example_mean, leg.example_mean),
        relative(psa.example_var, leg.example_var),
        relative(psa.example_mean, psa.example_gradient),
    )


@claim(
    statement="PSA is unbiased on the last stochastic layer and the output layer at any "
    "depth, and with one stochastic layer it is LEG (local expectation gradients): the "
    "same mean (the exact gradient) and variance.",
    source=f"{paper('psa')} (the estimator); the two exact cases are derived here",
    conditions="Exact moments by joint enumeration; any depth (N <= 6), every loss, both "
    "unit values, batches of 1-2; one stochastic layer (N <= 5) for the comparison with "
    f"LEG. Equal to {LARGEST}.",
)
def psa_exact_cases(max_examples: int) -> list[Part]:
    """Where PSA's first-order flip expansion is exact.

    Closed form: for unit ``j`` of the last stochastic layer ``L``, PSA's term is
    ``-s_j sigmoid'(a_j)(C(h^(j)) - C(h)) = sigmoid'(a_j)(C(h, b_j = 1) - C(h, b_j = 0))``
    with every other unit at its sample. Given ``h_{L-1}`` the units of layer ``L`` are
    independent, so its mean over ``h_L`` is ``d/da_j E[C | h_{L-1}]`` and, times
    ``h_{L-1}``, the gradient of ``W_L`` and ``b_L``; the output layer's estimate is the
    sampled ``dC/dtheta_o``, unbiased. With one stochastic layer these are all hidden
    units, and LEG's weights ``P(b_j = v | h_{-j})`` reduce to ``p_j``, so both estimators
    are ``sigmoid'(a_j)(C(b_j = 1) - C(b_j = 0))`` state by state. Below the last layer PSA
    keeps only first-order terms in the flip probabilities and is biased.
    """
    s = Search(max_examples)

    return [
        s.holds(
            "any depth: E g_hat = g on the last stochastic layer and the output layer",
            problems(max_batch=2, max_stochastic=6, values=VALUES),
            _top_and_output_bias,
            "largest relative deviation:",
            describe_as("PSA is biased on the last stochastic layer or the output layer", "psa"),
        ),
        s.holds(
            "one stochastic layer: mean and variance equal LEG's, mean equals g",
            problems(
                max_batch=2, min_depth=1, max_depth=1, max_width=5, max_stochastic=5, values=VALUES
            ),  # fmt: skip
            _leg_gap,
            "largest relative deviation:",
            describe_as("one layer: PSA differs from LEG", "psa"),
        ),
    ]
