"""Claims about ARM and DisARM."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from gradstat.analysis import analyze
from gradstat.claims.reference import uniforms
from gradstat.claims.registry import TOL, Part, claim
from gradstat.claims.search import Search, describe_as, relative, spread
from gradstat.claims.wording import BOTH_VALUES, INPUTS, LARGEST, UNBIASED, paper
from gradstat.engines.arm_descent import ARM_DESCENT_MAX_UNITS
from gradstat.engines.arm_descent import uniform_sum_above as _uniform_sum_above  # noqa: F401
from gradstat.exact import estimator_moments
from gradstat.network import VALUES, BinaryNetwork
from gradstat.sampling import estimate_from_noise, forward_pass
from gradstat.strategies import problems

_SOURCE = f"{paper('disarm')}; ARM: {paper('arm')}"


@claim(
    statement="DisARM, ARM averaged over u given the pair (b1, b2) (a Rao-Blackwellisation), "
    "has per-coordinate variance at most ARM's; both are unbiased.",
    source=_SOURCE,
    conditions=f"One stochastic layer, N <= 5, every loss, {BOTH_VALUES}, batches of 1-2, "
    f"{INPUTS}; exact moments over the 3^N cells of u. Per example "
    f"and coordinate Var_disarm <= Var_arm + {TOL:g} (1 + Var_arm), equal on the output "
    f"layer, and {UNBIASED} for both.",
)
def disarm_le_arm(max_examples: int) -> list[Part]:
    """DisARM is ARM Rao-Blackwellised over ``u`` given the pair ``(b1, b2)``.

    Closed form (one stochastic layer): ARM's estimate on ``b_1[i]`` is ``(f1 - f2)(u_i -
    1/2)``, where ``f1 - f2 = C(y(b1)) - C(y(b2))`` depends on ``u`` only through the pair
    ``(b1, b2)``. The units' uniforms are independent and unit ``i``'s pair is fixed by the
    cell of ``u_i`` (``[0, m)``, ``[m, 1 - m)``, ``[1 - m, 1]`` with ``m = min(p_i, 1 -
    p_i)``), so given the pair ``u_i`` is uniform on its cell and ``E[u_i - 1/2 | b1, b2]``
    is the cell's midpoint minus 1/2: ``-(1 - m)/2`` on the low cell (``b1_i = 0``, ``b2_i =
    1``), 0 on the middle one (symmetric about 1/2; ``b1_i = b2_i``), ``+(1 - m)/2`` on the
    high one. As ``1 - m = sigmoid(|a_i|)`` this is DisARM's ``1/2 1[b1_i != b2_i]
    (-1)^{b2_i} sigmoid(|a_i|)`` factor: DisARM ``= E[ARM | b1, b2]`` coordinate by
    coordinate (``W_1[i, j]`` multiplies both by ``x_j``; the output layer's ``1/2
    (dC/dW_o(b1) + dC/dW_o(b2))`` is the same function of the pair in both). By the law of
    total variance ``Var(ARM_j) = Var(DisARM_j) + E[Var(ARM_j | b1, b2)] >= Var(DisARM_j)``,
    with equality on the output layer, and the means agree. ARM is unbiased (the ARM
    identity); for one unit the two outer cells, of width ``m`` each, give ``m (1 - m)(f(1)
    - f(0)) = p (1 - p)(f(1) - f(0))``.
    """
    ratios: list[float] = []

    def excess(problem: Any) -> float:
        net, X, T = problem
        arm = estimator_moments(net, X, T, "arm")
        dis = estimator_moments(net, X, T, "disarm")
        stoch = net.parameter_groups()["stochastic"]
        out = slice(stoch.stop, None)
        gap = (dis.example_var - arm.example_var) / (1.0 + arm.example_var)
        worst = max(
            float(np.max(gap)),
            relative(dis.example_var[:, out], arm.example_var[:, out]),
            relative(arm.example_mean, arm.example_gradient),
            relative(dis.example_mean, dis.example_gradient),
        )
        total = float(arm.example_var[:, stoch].sum())
        if total > 0:
            ratios.append(float(dis.example_var[:, stoch].sum()) / total)
        return worst

    strategy = problems(
        max_batch=2, min_depth=1, max_depth=1, max_width=5, max_stochastic=5, values=VALUES
    )
    return Search(max_examples).holds(
        "Var_j(disarm) <= Var_j(arm) on every coordinate (equal on the output layer) and "
        "E[g_hat] = g for both",
        strategy, excess, "largest of (Var_disarm - Var_arm) / (1 + Var_arm) and the "
        "relative deviations:",
        describe_as(
            "DisARM's variance exceeds ARM's on a coordinate, or one of them is biased", "disarm"
        ),
        lambda: spread("total layer-1 variance DisARM / ARM: median", ratios),
    )  # fmt: skip


def cell_midpoints(net: BinaryNetwork, x: Any, t: Any, noise: np.ndarray) -> np.ndarray:
    """``noise`` with each unit's uniform ``u_i`` moved to the midpoint of its ARM cell.

    The cells are those of the main pass that ``u`` draws (``forward_pass``: unit ``i``
    fires when ``u_i < p_i``): ``[0, m)``, ``[m, 1 - m)``, ``[1 - m, 1]`` with ``m =
    min(p_i, 1 - p_i)``; the uniforms ``v`` of the upper branches are kept.
    """
    n = net.n_stochastic
    u = noise[:n]
    p = forward_pass(net, x, t, u).p
    m = np.minimum(p, 1.0 - p)
    mid = np.where(u < m, m / 2, np.where(u >= 1.0 - m, 1.0 - m / 2, 0.5))
    return np.concatenate([mid, noise[n:]])


@claim(
    statement="DisARM has per-coordinate variance at most ARM's at any depth: in the "
    "multi-layer scheme (each layer's pair of branches, upper layers resampled) DisARM is "
    "ARM averaged over u given the cells of u and the other uniforms.",
    source=_SOURCE,
    conditions="Exact draw by draw: two or three stochastic layers, N <= 6, every loss, "
    f"{BOTH_VALUES}, one example, 3 draws of the noise per network; DisARM's estimate "
    f"equals ARM's at the cell midpoints of u on every coordinate to {LARGEST}. The "
    "variance inequality follows by the law of total variance; one layer is "
    "disarm_le_arm's.",
)
def disarm_le_arm_any_depth(max_examples: int) -> list[Part]:
    """DisARM ``= E[ARM | cells of u, v]`` draw by draw, at any depth.

    In the multi-layer scheme (module :mod:`gradstat.estimators.arm`) layer ``t``'s two
    losses ``f1, f2`` depend on ``u_t`` only through the pair ``(b1_t, b2_t)``, i.e. the cell
    of each ``u_{t,i}``; the layers above are sampled from ``u_{>t}`` (branch 2) and ``v^(t)``
    (branch 1), and ``h_{t-1}`` from ``u_{<t}``. ARM's coordinate ``(f1 - f2)(u_{t,i} - 1/2)
    h_{t-1,j}`` is therefore linear in ``u_{t,i}`` given the cells and every other uniform, and
    its conditional mean is its value at the cell's midpoint: ``0`` on the middle cell and
    ``-+(1 - m)/2 (f1 - f2)`` on the outer ones, DisARM's ``1/2 (f1 - f2) 1[b1 != b2]
    (-1)^{b2} sigmoid(|a|)``. Moving every ``u`` to its midpoint at once changes no cell, so
    no loss, and the output layer (the mean of two direct paths) is unchanged. With DisARM
    ``= E[ARM | G]`` for the sigma-algebra ``G`` of the cells and ``v``, ``Var(ARM_j) =
    Var(DisARM_j) + E[Var(ARM_j | G)]``: the inequality holds coordinate by coordinate at
    every depth, with equality where ARM does not read ``u`` (the output layer).
    """

    def deviation(case: Any) -> float:
        (net, X, T), seed = case
        x, t = X[0], T[0]
        size = net.n_stochastic + sum(
            sum(net.hidden_sizes[k + 1 :]) for k in range(len(net.hidden_sizes) - 1)
        )
        worst = 0.0
        for k in range(3):
            noise = uniforms(seed + k, size)
            dis = estimate_from_noise(net, x, t, "disarm", noise)
            arm = estimate_from_noise(net, x, t, "arm", cell_midpoints(net, x, t, noise))
            worst = max(worst, relative(arm, dis))
        return worst

    deep = problems(max_batch=1, min_depth=2, max_depth=3, max_stochastic=6, values=VALUES)
    return Search(max_examples).holds(
        "DisARM(noise) = ARM(u at its cell midpoints, v kept) on every coordinate, two or "
        "three stochastic layers",
        st.tuples(deep, st.integers(0, 2**32 - 1)), deviation, "largest relative deviation:",
        describe_as("DisARM differs from ARM at the cell midpoints of u", "disarm"),
    )  # fmt: skip


def arm_descent_probability(net: BinaryNetwork, x: Any, t: Any, scope: str = "stochastic") -> float:
    """ARM's exact ``P(<g_hat, g> > 0)`` for one example of a one-stochastic-layer network.

    ``scope`` is ``"stochastic"`` (layer 1's coordinates) or ``"all"``. The sum over the
    ``3^N`` cells of ``u`` of rational uniform-sum tails (:mod:`gradstat.engines.arm_descent`,
    which ``analyze`` uses for ARM's exact result), so ``N <= 6``.
    """
    if net.n_layers != 1 or net.n_stochastic > ARM_DESCENT_MAX_UNITS:
        raise ValueError(
            "arm_descent_probability takes one stochastic layer of at most "
            f"{ARM_DESCENT_MAX_UNITS} units, got sizes {net.sizes}"
        )
    if scope not in ("stochastic", "all"):
        raise ValueError(f"scope must be 'stochastic' or 'all', got {scope!r}")
    result = analyze(net, x, t, "arm", method="exact")
    metrics = result.stochastic if scope == "stochastic" else result.overall
    return metrics.descent_probability
