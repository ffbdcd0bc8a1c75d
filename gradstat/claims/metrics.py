"""Claims about the engine's metrics: the mean squared error it reports."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from gradstat.analysis import analyze
from gradstat.claims.registry import TOL, Counterexample, Part, claim
from gradstat.claims.search import Search, first_example
from gradstat.exact import estimator_moments
from gradstat.strategies import problems

MSE_CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("st", {}),
    ("st_sigmoid", {}),
    ("sts", {}),
    ("reinforce", {"baseline": "none"}),
    ("reinforce", {"baseline": "mean"}),
    ("reinforce", {"baseline": "optimal"}),
    ("reinforce", {"baseline": 0.7}),
)
"""Estimators (with options) whose MSE decomposition ``mse_decomposition`` checks."""


@claim(
    statement="For every estimator, E||g_hat - g||^2 = ||E g_hat - g||^2 + tr Cov(g_hat); "
    "the engine's reported mse must satisfy it.",
    source="Bias-variance decomposition of the mean squared error (e.g. Lehmann & "
    "Casella (1998), Theory of Point Estimation, 2nd ed.)",
    conditions="Any depth, N <= 5, every loss, batches of 1-2; estimators st, "
    "st_sigmoid, sts, reinforce (baselines none, mean, optimal, 0.7); all parameters "
    f"and the stochastic layers; agreement to {TOL:g} (1 + mse).",
)
def mse_decomposition(max_examples: int) -> Part:
    """``E ||g_hat - g||^2 = ||bias||^2 + tr Cov(g_hat)`` as reported by ``analyze``.

    Closed form: ``E||g_hat - g||^2 = sum_j E[(g_hat_j - m_j + m_j - g_j)^2] = sum_j
    Var(g_hat_j) + (m_j - g_j)^2`` because the cross term has mean zero. The check compares
    ``analyze(...).overall.mse`` (and ``.stochastic.mse``) with ``||bias||^2 + trace(cov)``
    from the separately accumulated full covariance of ``estimator_moments(...,
    full_cov=True)``.
    """
    cases = st.tuples(problems(max_stochastic=5, max_batch=2), st.sampled_from(MSE_CASES))

    def residual(case: Any) -> float:
        (net, X, T), (name, options) = case
        r = analyze(net, X, T, name, method="exact", **options)
        m = estimator_moments(net, X, T, name, full_cov=True, **options)
        stoch = net.parameter_groups()["stochastic"]
        worst = 0.0
        for got, sl in ((r.overall.mse, slice(None)), (r.stochastic.mse, stoch)):
            bias = m.bias[sl]
            want = float(bias @ bias + np.trace(m.cov[sl, sl]))
            worst = max(worst, abs(got - want) / (1.0 + abs(want)))
        return worst

    def describe(case: Any) -> Counterexample:
        problem, (name, options) = case
        return first_example(
            f"analyze mse of {name} {options} differs from ||bias||^2 + trace(cov)",
            problem, name,
        )  # fmt: skip

    names = ", ".join(n + "".join(f" {k}={v}" for k, v in o.items()) for n, o in MSE_CASES)
    return Search(max_examples).holds(
        f"analyze mse = ||bias||^2 + trace(cov) over all and stochastic parameters for {names}",
        cases, residual, "largest relative deviation:", describe,
    )  # fmt: skip
