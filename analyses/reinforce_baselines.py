"""How much of REINFORCE's variance do constant, mean and optimal baselines remove?

Question. REINFORCE (score function; Williams 1992) is unbiased, so its whole error is
variance. A baseline ``c`` that does not depend on the sampled state keeps it unbiased and
changes only the variance. Across many small random networks, how much of the
no-baseline variance do a few fixed constants, the best single constant, the exact mean
``E[C | x]`` and the per-parameter optimal baseline ``E[s_j^2 C] / E[s_j^2]`` (Bengio,
Léonard & Courville 2013, arXiv:1308.3432) remove?

The best constant in closed form. For the stochastic-layer coordinates the estimate is
``(C - c) s_j`` with ``s_j = d log P(h | x) / d theta_j``, so per example and coordinate
``Var_j(c) = Var(C s_j) - 2 c Cov(C s_j, s_j) + c^2 Var(s_j)``, and the batch total
``V(c) = sum_j Var_j(c) / B^2`` is a quadratic ``alpha - 2 beta c + gamma c^2``. Three exact
evaluations at ``c = 0, 1, -1`` give ``alpha = V(0)``, ``beta = (V(-1) - V(1)) / 4``,
``gamma = (V(1) + V(-1)) / 2 - V(0)`` (``gamma = sum_j E[s_j^2] / B^2 > 0``), so the best
constant is ``c* = beta / gamma`` with ``V(c*) = alpha - beta^2 / gamma``; the script checks
that value against a fourth exact evaluation at ``c*``. ``c*`` is one constant shared by
all examples and parameters (as a tuned constant baseline would be), whereas the ``mean``
and ``optimal`` oracles are per example (and, for ``optimal``, per parameter).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import pyplot, start

import gradstat as gs

LOSSES = ("mse", "bce", "xent", "linear")
DEPTHS = (1, 2, 3)
FIXED_CONSTANTS = (0.5, 1.0, 2.0)
BATCH = 4
"""Examples per network (each with its own noise; SPEC section 3's batch estimate)."""

BASELINES = (
    "none",
    *(f"c={c:g}" for c in FIXED_CONSTANTS),
    "best shared constant",
    "best per-example constant",
    "mean",
    "optimal",
)


def random_problem(
    rng: np.random.Generator, depth: int, loss: str
) -> tuple[gs.BinaryNetwork, np.ndarray, np.ndarray, float]:
    """A random network (widths 2-4, inputs 1-3, outputs 1-3), a batch and targets."""
    widths = [int(w) for w in rng.integers(2, 5, size=depth)]
    n_in = int(rng.integers(1, 4))
    n_out = int(rng.integers(2, 4)) if loss == "xent" else int(rng.integers(1, 4))
    scale = float(rng.uniform(0.5, 2.5))
    seed = int(rng.integers(2**31))
    net = gs.BinaryNetwork.random((n_in, *widths, n_out), loss=loss, scale=scale, seed=seed)
    X = rng.normal(size=(BATCH, n_in))
    if loss == "xent":
        T: np.ndarray = rng.integers(0, n_out, size=BATCH)
    elif loss == "bce":
        T = rng.random((BATCH, n_out))
    else:
        T = rng.normal(size=(BATCH, n_out))
    return net, X, T, scale


def best_constant(
    variance: Any, v0: float, v_plus: float | None = None
) -> tuple[float, float, float]:
    """Minimise the quadratic ``V(c)`` from its values at ``c = 0, 1, -1``.

    ``variance(c)`` returns the exact total stochastic-layer variance with baseline ``c``;
    ``v0 = V(0)`` (and ``v_plus = V(1)`` if already known). Returns ``c*``, the predicted
    ``V(c*) = alpha - beta^2 / gamma`` and the evaluated ``V(c*)`` (checked to agree).
    """
    v_plus = variance(1.0) if v_plus is None else v_plus
    v_minus = variance(-1.0)
    beta = (v_minus - v_plus) / 4.0
    gamma = (v_plus + v_minus) / 2.0 - v0
    if not gamma > 0:
        raise AssertionError(f"variance is not strictly convex in c (gamma = {gamma!r})")
    c_best = beta / gamma
    v_predicted = v0 - beta**2 / gamma
    v_best = variance(c_best)
    if abs(v_best - v_predicted) > 1e-9 * v0:
        raise AssertionError(
            f"closed-form minimum {v_predicted!r} differs from the evaluated V(c*) {v_best!r}"
        )
    return c_best, v_predicted, v_best


def measure(net: gs.BinaryNetwork, X: np.ndarray, T: np.ndarray) -> dict[str, Any]:
    """Exact stochastic-layer variance (and MSE) of REINFORCE under every baseline."""

    def analyze(baseline: Any, rows: slice = slice(None)) -> gs.AnalysisResult:
        return gs.analyze(net, X[rows], T[rows], "reinforce", method="exact", baseline=baseline)

    results = {"none": analyze("none")}
    for c in FIXED_CONSTANTS:
        results[f"c={c:g}"] = analyze(float(c))
    v0 = results["none"].stochastic.total_variance
    c_best, v_predicted, _ = best_constant(
        lambda c: analyze(float(c)).stochastic.total_variance, v0,
        results["c=1"].stochastic.total_variance,
    )  # fmt: skip
    results["best shared constant"] = analyze(float(c_best))
    # One best constant per example (shared by its parameters): the batch variance is
    # (1/B^2) sum_x V_x(c_x), so each example's quadratic is minimised on its own.
    v_per_example = 0.0
    for b in range(X.shape[0]):
        one = slice(b, b + 1)
        _, _, v_x = best_constant(
            lambda c, one=one: analyze(float(c), one).stochastic.total_variance,
            analyze("none", one).stochastic.total_variance,
        )
        v_per_example += v_x / X.shape[0] ** 2
    results["mean"] = analyze("mean")
    results["optimal"] = analyze("optimal")
    groups = net.parameter_groups()
    g = results["none"].gradient
    g_stoch_sq = float(np.sum(g[groups["stochastic"]] ** 2))
    g_sq = float(g @ g)
    out: dict[str, Any] = {
        "c_best": c_best,
        "v_predicted": v_predicted,
        "mean_loss": gs.expected_loss(net, X, T),
        "g_stoch_sq": g_stoch_sq,
    }
    for name, r in results.items():
        if r.stochastic.relative_bias > 1e-8:
            raise AssertionError(f"REINFORCE with baseline {name} is biased: {r.stochastic}")
        out[name] = {
            "total_variance": r.stochastic.total_variance,
            "rel_mse": r.stochastic.mse / g_stoch_sq,
            "rel_mse_all": r.overall.mse / g_sq,
            "removed": 1.0 - r.stochastic.total_variance / v0,
        }
    # The per-example constants are not a gradstat option: assemble from the exact parts
    # (unbiased, and the output layer's variance is the same under every baseline).
    output_var = results["none"].overall.total_variance - v0
    out["best per-example constant"] = {
        "total_variance": v_per_example,
        "rel_mse": v_per_example / g_stoch_sq,
        "rel_mse_all": (v_per_example + output_var) / g_sq,
        "removed": 1.0 - v_per_example / v0,
    }
    var = {b: out[b]["total_variance"] for b in BASELINES}
    slack = 1e-9 * v0
    orderings = [("optimal", "best per-example constant"), ("best per-example constant", "mean")]
    orderings += [("best shared constant", b) for b in BASELINES[:4]]
    for low, high in orderings:
        if var[low] > var[high] + slack:
            raise AssertionError(f"variance with {low} exceeds that with {high}: {var}")
    return out


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    q1, q2, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return float(q1), float(q2), float(q3)


def cell(values: Sequence[float], fmt: str = ".3g") -> str:
    q1, q2, q3 = quartiles(values)
    return f"{q2:{fmt}} [{q1:{fmt}}, {q3:{fmt}}]"


def main(argv: Sequence[str] | None = None) -> Path:
    run = start("reinforce_baselines", __doc__.splitlines()[0], argv)
    per_cell = 1 if run.quick else 5
    rng = np.random.default_rng(run.seed)
    cells = [(d, loss) for d in DEPTHS for loss in LOSSES]
    if run.quick:
        cells = [(1, "mse"), (2, "xent"), (3, "bce")]
    run.section(
        "Setup",
        f"""
{len(cells) * per_cell} random networks: {per_cell} per (depth, loss) cell for depths
{sorted({d for d, _ in cells})} and losses {sorted({loss for _, loss in cells})}; widths
drawn from 2-4 per stochastic layer, 1-3 inputs, 1-3 outputs (2-3 for `xent`), parameters
from `BinaryNetwork.random` with a scale drawn from U(0.5, 2.5); a batch of {BATCH}
examples with x ~ N(0, I) and targets N(0, I) (`mse`, `linear`), U(0, 1) (`bce`) or a
uniform class (`xent`). Everything is exact (enumeration of all hidden states).
Variances and MSEs are of the batch estimate restricted to the stochastic-layer
parameters (a baseline does not touch the output layer, whose estimate is the direct
path); REINFORCE is unbiased under every baseline (checked: relative bias < 1e-8), so
MSE = variance and the share of the no-baseline variance a baseline removes is also the
share of the gap to the exact gradient that it closes. Relative MSE is `mse / ||g||^2`
(stochastic-layer coordinates). Baselines: none; the constants {list(FIXED_CONSTANTS)};
the best single constant c* shared by the whole batch, from the closed form in the module
docstring (checked against a fourth exact evaluation to 1e-9 relative); the best constant
per example (the same closed form on each example alone; shared by that example's
parameters); the exact per-example mean E[C | x]; the per-example, per-parameter optimal
E[s_j^2 C] / E[s_j^2]. By construction optimal <= best per-example constant <= mean, and
best shared constant <= every fixed constant and none (checked).
""",
    )

    rows: list[dict[str, Any]] = []
    for k, (depth, loss) in enumerate(cells):
        for i in range(per_cell):
            net, X, T, scale = random_problem(rng, depth, loss)
            m = measure(net, X, T)
            base = {
                "network": k * per_cell + i,
                "depth": depth,
                "loss": loss,
                "sizes": "-".join(map(str, net.sizes)),
                "states": net.n_states,
                "scale": scale,
                "mean_loss": m["mean_loss"],
                "c_best": m["c_best"],
            }
            for b in BASELINES:
                rows.append({**base, "baseline": b, **m[b]})
    run.csv("networks.csv", rows)

    def values(baseline: str, key: str, **where: Any) -> list[float]:
        return [
            r[key]
            for r in rows
            if r["baseline"] == baseline and all(r[k] == v for k, v in where.items())
        ]

    table = [
        {
            "baseline": b,
            "total variance": cell(values(b, "total_variance")),
            "relative MSE": cell(values(b, "rel_mse")),
            "relative MSE, all params": cell(values(b, "rel_mse_all")),
            "share of variance removed": cell(values(b, "removed"), ".3f"),
        }
        for b in BASELINES
    ]
    run.section(
        "Per baseline: median [quartiles] over networks",
        "Stochastic-layer coordinates except the column 'all params' (whose output-layer "
        "part is the same for every baseline). Share removed = 1 - V_baseline / V_none "
        "(negative: the baseline adds variance).",
    )
    run.table(table)

    by_loss = []
    for loss in sorted({loss for _, loss in cells}):
        entry: dict[str, Any] = {"loss": loss}
        for b in BASELINES[1:]:
            entry[b] = float(np.median(values(b, "removed", loss=loss)))
        by_loss.append(entry)
    by_depth = []
    for depth in sorted({d for d, _ in cells}):
        entry = {"depth": depth}
        for b in BASELINES[1:]:
            entry[b] = float(np.median(values(b, "removed", depth=depth)))
        by_depth.append(entry)
    run.section("Median share of the no-baseline variance removed, by loss and by depth")
    run.table(by_loss, fmt=".3f")
    run.table(by_depth, fmt=".3f")

    nets = sorted({r["network"] for r in rows})
    v = {b: np.array(values(b, "total_variance")) for b in BASELINES}
    best_vs_opt = v["best shared constant"] / v["optimal"]
    mean_vs_opt = v["mean"] / v["optimal"]
    mean_vs_per_example = v["mean"] / v["best per-example constant"]
    mean_beats_best = float(np.mean(v["mean"] < v["best shared constant"]))
    positive = [loss for loss in ("mse", "bce", "xent") if loss in {x for _, x in cells}]
    c_ratio = np.array(
        [r["c_best"] / r["mean_loss"] for r in rows if r["baseline"] == "none"
         and r["loss"] in positive]
    )  # fmt: skip
    hurts = {f"c={c:g}": float(np.mean(v[f"c={c:g}"] > v["none"])) for c in FIXED_CONSTANTS}
    summary = {
        "n_networks": len(nets),
        "median_removed": {b: float(np.median(values(b, "removed"))) for b in BASELINES},
        "median_rel_mse": {b: float(np.median(values(b, "rel_mse"))) for b in BASELINES},
        "median_best_constant_over_optimal_variance": float(np.median(best_vs_opt)),
        "median_mean_over_optimal_variance": float(np.median(mean_vs_opt)),
        "median_mean_over_best_per_example_variance": float(np.median(mean_vs_per_example)),
        "fraction_mean_beats_best_constant": mean_beats_best,
        "median_c_best_over_mean_loss": float(np.median(c_ratio)),
        "fraction_fixed_constant_adds_variance": hurts,
    }
    run.json("summary.json", summary)
    run.section(
        "Comparisons",
        f"Variance of the best shared constant / optimal baseline: median "
        f"{cell(best_vs_opt.tolist())}; mean / optimal: median {cell(mean_vs_opt.tolist())}; "
        f"mean / best per-example constant: median {cell(mean_vs_per_example.tolist(), '.4g')}. "
        f"The per-example mean beats the best shared constant on "
        f"{100 * mean_beats_best:.0f}% of networks. c* / (batch mean of E[C]) for the "
        f"non-negative losses ({', '.join(positive)}): median "
        f"{cell(c_ratio.tolist())}. Share of networks where a fixed constant adds variance "
        f"(V_c > V_none): " + ", ".join(f"{b}: {100 * f:.0f}%" for b, f in hurts.items()) + ".",
    )

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    shown = BASELINES[1:]
    ratios = [v[b] / v["none"] for b in shown]
    axes[0].boxplot(ratios, whis=(5, 95), showfliers=True)
    short = {"best shared constant": "best shared c", "best per-example constant": "best c per x"}
    axes[0].set_xticks(
        range(1, len(shown) + 1), [short.get(b, b) for b in shown], rotation=30, ha="right"
    )
    axes[0].set_yscale("log")
    axes[0].axhline(1.0, color="grey", ls=":")
    axes[0].set_title("variance / no-baseline variance (stochastic layers)")
    axes[1].boxplot([values(b, "rel_mse") for b in BASELINES], whis=(5, 95))
    axes[1].set_xticks(
        range(1, len(BASELINES) + 1), [short.get(b, b) for b in BASELINES], rotation=30, ha="right"
    )
    axes[1].set_yscale("log")
    axes[1].set_title("relative MSE  E||g_hat - g||^2 / ||g||^2")
    markers = dict(zip(LOSSES, "osD^"))
    for loss in sorted({loss for _, loss in cells}):
        sel = [r["network"] for r in rows if r["baseline"] == "none" and r["loss"] == loss]
        idx = [nets.index(n) for n in sel]
        axes[2].scatter(
            (v["best shared constant"] / v["none"])[idx],
            (v["optimal"] / v["none"])[idx],
            marker=markers[loss],
            label=loss,
            alpha=0.7,
        )
    lims = [min(1e-3, float(np.min(v["optimal"] / v["none"]))), 1.0]
    axes[2].plot(lims, lims, "k:", lw=1)
    axes[2].set_xscale("log")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("best shared constant: V / V_none")
    axes[2].set_ylabel("optimal: V / V_none")
    axes[2].legend()
    axes[2].set_title("per network")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"REINFORCE baselines on {len(nets)} random networks (box: quartiles, 5-95%)")
    run.figure("baselines.png", fig)

    med = summary["median_removed"]
    run.section(
        "Finding",
        f"Median share of the no-baseline stochastic-layer variance removed: best shared "
        f"constant {med['best shared constant']:.3f}, best per-example constant "
        f"{med['best per-example constant']:.3f}, mean {med['mean']:.3f}, optimal "
        f"{med['optimal']:.3f}; "
        f"fixed constants "
        + ", ".join(f"{c:g}: {med[f'c={c:g}']:.3f}" for c in FIXED_CONSTANTS)
        + f". Median relative MSE falls from {summary['median_rel_mse']['none']:.3g} (none) to "
        f"{summary['median_rel_mse']['best shared constant']:.3g} (best shared constant), "
        f"{summary['median_rel_mse']['mean']:.3g} (mean) and "
        f"{summary['median_rel_mse']['optimal']:.3g} (optimal).",
    )
    return run.finish("REINFORCE baselines on random networks")


if __name__ == "__main__":
    main()
