"""What the kernels read besides the network: option arrays, baselines, scratch size.

REINFORCE's oracle baselines (``"mean"``: the exact ``E[C | x]``; ``"optimal"``: the exact
per-parameter ``c_j = E[s_j^2 C] / E[s_j^2]``) are computed here by the gradient engines,
once per call, before any enumeration or sampling reads them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradstat.engines.gradient import (
    check_layerwise_states,
    gradient_engine,
    gradient_pass,
    reference_gradient,
)
from gradstat.engines.message_moments import layerwise_moments, layerwise_moments_cost
from gradstat.estimators.codes import REINFORCE, SCORE
from gradstat.estimators.registry import EstimatorBase
from gradstat.kernels.workspace import workspace_columns
from gradstat.problem import Problem, check_states, threads_for


def kernel_options(
    spec: EstimatorBase, options: dict[str, Any], problem: Problem, max_states: int
) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's option array and per-example baseline rows for the kernels."""
    B, Pc = problem.n_examples, problem.n_compressed
    opts = np.ascontiguousarray(spec.encode(options), dtype=np.float64)
    baseline = options.get("baseline", "none")
    if spec.code != REINFORCE or baseline == "none":
        return opts, np.zeros((B, Pc))
    if isinstance(baseline, float):
        return opts, np.full((B, Pc), baseline)
    what = f"the {baseline!r} baseline (an exact oracle)"
    if baseline == "mean":
        losses, _ = reference_gradient(problem, max_states, what)
        return opts, np.repeat(losses[:, None], Pc, axis=1)
    if gradient_engine(problem.net) == "layerwise":
        check_layerwise_states(problem.net, max_states, what)
        used = np.zeros((B, problem.net.n_params))
        with threads_for(B * layerwise_moments_cost(problem.net.sizes, SCORE)):
            layerwise_moments(
                problem.theta, problem.sizes, problem.A1, problem.X, problem.T,
                problem.loss_code, problem.low, SCORE, REINFORCE, opts, "optimal", used,
            )  # fmt: skip
        return opts, np.ascontiguousarray(used[:, problem.net.n_params - Pc :])
    check_states(problem.net, max_states, what)
    losses, _, s2c, s2 = gradient_pass(problem, want_stats=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(s2 > 0.0, s2c / np.where(s2 > 0.0, s2, 1.0), 0.0)
    return opts, np.ascontiguousarray(np.pad(c, ((0, 0), (0, Pc - c.shape[1]))))


def workspace_for(problem: Problem, spec: EstimatorBase, options: dict[str, Any]) -> int:
    """Columns of the kernels' scratch array for ``spec`` on ``problem``."""
    net = problem.net
    k = spec.draws_per_estimate(options)
    return workspace_columns(
        net.n_stochastic, net.n_out, problem.n_compressed, max(net.hidden_sizes), k
    )
