"""The comparisons estimator papers make, with exact numbers.

Question. Four comparisons from the literature, redone with exact moments where gradstat
has them:

1. **DisARM against two-sample REINFORCE with leave-one-out baselines at equal cost**
   (Dong, Mnih & Tucker 2020, arXiv:2006.10680, their main comparison): both evaluate the
   loss twice per estimate. Exact on one stochastic layer (DisARM and ARM by their
   ``3^N`` cells of ``u``, LOO by its ``2^(2N)`` pairs of states).
2. **Leave-one-out against the optimal constant baseline** (Kool, van Hoof & Welling 2019,
   ICLR workshop, "Buy 4 REINFORCE samples, get a baseline for free!"): ``k``-sample LOO
   against the mean of ``k`` independent REINFORCE draws with the best constant baseline
   per example (the oracle LOO imitates). The variance of REINFORCE with a constant ``c`` is
   a quadratic in ``c`` (``analyses/reinforce_baselines.py``): three exact evaluations give
   its minimiser.
3. **The bias-variance trade-off of the temperature**: tempered straight-through
   (``st_tempered``, surrogate ``sigmoid'(a / tau) / tau``; exact at any depth) and the
   Concrete relaxation (Maddison, Mnih & Teh 2017, arXiv:1611.00712; Monte Carlo, with the
   squared bias corrected for the sampling noise, ``||mean - g||^2 - tr Var / n``).
4. **ReinMax's polynomial benchmark** (Liu et al. 2023, arXiv:2304.08612): ``n``
   independent units, loss ``sum_i |h_i - 0.45|^q``, ``q in {1.5, 2, 3}``. gradstat's losses
   cannot express ``|h - c|^q`` for ``q != 2``, so this part is a small dedicated
   enumeration: for a loss additive over independent units, a straight-through-type
   estimate on unit ``i``'s logit is ``f'(h_i) J(b_i)`` and depends on unit ``i`` only, so its
   exact mean and variance are sums over that unit's two states and the ``n``-unit numbers
   are ``n`` times the one-unit numbers (relative bias independent of ``n``). The
   surrogates ``J(b)`` are read off the engine (a one-unit network with a linear loss), and
   ``q = 2`` is cross-checked against the engine's exact moments on an mse network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import pyplot, start

import gradstat as gs

POLY_C = 0.45
POLY_Q = (1.5, 2.0, 3.0)
REINMAX_TAUS = (1.0, 1.5, 2.0, 3.0)
TAUS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
LOO_KS = (2, 3, 4)


def one_layer_problem(rng: np.random.Generator, loss: str) -> tuple[Any, np.ndarray, Any]:
    """A random one-stochastic-layer network (2-3 units), one input, one target."""
    n_in, width = int(rng.integers(1, 4)), int(rng.integers(2, 4))
    n_out = int(rng.integers(2, 4)) if loss == "xent" else int(rng.integers(1, 3))
    scale = float(rng.uniform(0.5, 2.5))
    net = gs.BinaryNetwork.random(
        (n_in, width, n_out), loss=loss, scale=scale, seed=int(rng.integers(2**31))
    )
    x = rng.normal(size=n_in)
    t = int(rng.integers(n_out)) if loss == "xent" else rng.uniform(0, 1, n_out)
    return net, x, t


def stochastic_variance(net: Any, x: Any, t: Any, estimator: str, **options: Any) -> float:
    """Exact total variance of the stochastic-layer coordinates."""
    m = gs.estimator_moments(net, x, t, estimator, **options)
    return float(m.var[net.parameter_groups()["stochastic"]].sum())


def best_constant_variance(variance: Callable[[float], float]) -> tuple[float, float]:
    """``(c*, V(c*))`` of a variance quadratic in the baseline ``c``, from ``V(0), V(+-1)``."""
    v0, v1, vm = variance(0.0), variance(1.0), variance(-1.0)
    beta, gamma = (vm - v1) / 4.0, (v1 + vm) / 2.0 - v0
    c = beta / gamma
    return c, variance(c)


def equal_cost_rows(rng: np.random.Generator, per_loss: int) -> list[dict[str, Any]]:
    """Parts 1 and 2 on random one-layer networks: exact variances at equal cost."""
    rows = []
    for loss in ("mse", "bce", "xent", "linear"):
        for _ in range(per_loss):
            net, x, t = one_layer_problem(rng, loss)

            def reinforce(c: float, net: Any = net, x: Any = x, t: Any = t) -> float:
                return stochastic_variance(net, x, t, "reinforce", baseline=c)

            c_best, v_best = best_constant_variance(reinforce)
            row = {
                "loss": loss,
                "sizes": "-".join(map(str, net.sizes)),
                "disarm": stochastic_variance(net, x, t, "disarm"),
                "arm": stochastic_variance(net, x, t, "arm"),
                "reinforce_mean": stochastic_variance(net, x, t, "reinforce", baseline="mean"),
                "reinforce_best_constant": v_best,
                "best_constant": c_best,
            }
            check = stochastic_variance(net, x, t, "reinforce", baseline=c_best)
            if abs(check - v_best) > 1e-9 * (1 + v_best):
                raise AssertionError(f"best constant: quadratic {v_best} vs direct {check}")
            for k in LOO_KS:
                row[f"loo{k}"] = stochastic_variance(net, x, t, "reinforce_loo", k=k)
            rows.append(row)
    return rows


def temperature_rows(net: Any, x: Any, t: Any, draws: int, seed: int) -> list[dict[str, Any]]:
    """Part 3: relative squared bias and variance of tempered ST and Concrete per ``tau``."""
    stoch = net.parameter_groups()["stochastic"]
    g = gs.exact_gradient(net, x, t)[stoch]
    g2 = float(g @ g)
    rows = []
    for tau in TAUS:
        m = gs.estimator_moments(net, x, t, "st_tempered", tau=tau)
        bias2 = float(np.sum((m.mean[stoch] - g) ** 2))
        rows.append(
            {"estimator": "st_tempered", "tau": tau, "rel_bias2": bias2 / g2,
             "rel_var": float(m.var[stoch].sum()) / g2, "rel_bias2_se": 0.0}
        )  # fmt: skip
        d = gs.sample_gradients(net, x, t, "concrete", draws, seed=seed, tau=tau)[:, stoch]
        var = d.var(axis=0, ddof=1)
        gap = d.mean(axis=0) - g
        # E||mean - g||^2 = ||bias||^2 + tr Var / n: remove the noise term.
        bias2 = float(gap @ gap - var.sum() / draws)
        se = float(2.0 * np.sqrt(np.sum(gap**2 * var) / draws))
        rows.append(
            {"estimator": "concrete", "tau": tau, "rel_bias2": bias2 / g2,
             "rel_var": float(var.sum()) / g2, "rel_bias2_se": se / g2}
        )  # fmt: skip
    return rows


def surrogates(estimator: str, a: float, **options: Any) -> tuple[float, float]:
    """``J(1), J(0)`` of a straight-through-type estimator at logit ``a``, off the engine.

    One unit, ``C = h`` (linear loss, ``W_o = 1``, ``t = 1``): the estimate on the logit is
    ``J(b)``; ``u = p/2`` draws ``b = 1`` and ``u = (1 + p)/2`` draws ``b = 0``.
    """
    net = gs.BinaryNetwork((0, 1, 1), [a, 1.0, 0.0], loss="linear")
    p = 1.0 / (1.0 + np.exp(-a))
    j1 = gs.estimate_from_noise(net, [], [1.0], estimator, [p / 2], **options)[0]
    j0 = gs.estimate_from_noise(net, [], [1.0], estimator, [(1 + p) / 2], **options)[0]
    return float(j1), float(j0)


def poly_moments(
    q: float, a: float, estimator: str, c: float = POLY_C, **options: Any
) -> tuple[float, float, float]:
    """Exact ``E[g_hat]``, ``Var[g_hat]`` and ``g`` on one unit's logit for ``|h - c|^q``."""
    p = 1.0 / (1.0 + np.exp(-a))

    def f(h: float) -> float:
        return abs(h - c) ** q

    def df(h: float) -> float:
        return q * float(np.sign(h - c)) * abs(h - c) ** (q - 1)

    j1, j0 = surrogates(estimator, a, **options)
    e1, e0 = df(1.0) * j1, df(0.0) * j0
    mean = p * e1 + (1 - p) * e0
    return mean, p * e1**2 + (1 - p) * e0**2 - mean**2, p * (1 - p) * (f(1.0) - f(0.0))


def poly_rows(logits: np.ndarray) -> list[dict[str, Any]]:
    """Part 4: relative bias and variance per unit on the polynomial losses."""
    cases = [("st", {}), ("st_sigmoid", {})] + [("reinmax", {"tau": t}) for t in REINMAX_TAUS]
    rows = []
    for q in POLY_Q:
        for name, opts in cases:
            label = name + (f" tau={opts['tau']:g}" if opts else "")
            for a in logits:
                mean, var, g = poly_moments(q, float(a), name, **opts)
                rows.append(
                    {"q": q, "estimator": label, "logit": float(a), "mean": mean, "var": var,
                     "gradient": g, "rel_bias": (mean - g) / abs(g), "rel_var": var / g**2}
                )  # fmt: skip
    return rows


def check_poly_against_engine(logits: Sequence[float]) -> float:
    """``q = 2`` is ``0.5 (sqrt 2 h - sqrt 2 c)^2``: the dedicated enumeration against the
    engine's exact moments; returns the largest relative deviation."""
    worst = 0.0
    for a in logits:
        net = gs.BinaryNetwork((0, 1, 1), [a, np.sqrt(2.0), 0.0], loss="mse")
        for name, opts in (("st_sigmoid", {}), ("reinmax", {"tau": 1.5})):
            m = gs.estimator_moments(net, [], [np.sqrt(2.0) * POLY_C], name, **opts)
            mean, var, g = poly_moments(2.0, a, name, **opts)
            got = np.array([m.mean[0], m.var[0], m.gradient[0]])
            worst = max(worst, float(np.max(np.abs(got - [mean, var, g]))) / (1 + abs(g)))
    return worst


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float)))


def main(argv: Sequence[str] | None = None) -> Path:
    run = start("literature_comparisons", __doc__.splitlines()[0], argv)
    rng = np.random.default_rng(run.seed)
    per_loss = 2 if run.quick else 15
    draws = 2_000 if run.quick else 40_000
    plt = pyplot()

    # 1-2. Equal cost: DisARM, ARM and LOO(k) against REINFORCE oracles.
    rows = equal_cost_rows(rng, per_loss)
    run.csv("equal_cost.csv", rows)
    dis_loo = [r["disarm"] / r["loo2"] for r in rows]
    arm_loo = [r["arm"] / r["loo2"] for r in rows]
    run.section(
        "DisARM against two-sample LOO at equal cost",
        f"""
{len(rows)} random one-stochastic-layer networks ({per_loss} per loss; 2-3 units, one
input, parameter scale U(0.5, 2.5)). Exact total variance of the stochastic-layer
coordinates; every estimator here evaluates the loss twice per estimate.
""",
    )
    run.table(
        [
            {"ratio": "Var(DisARM) / Var(LOO k=2)", "median": _median(dis_loo),
             "min": min(dis_loo), "max": max(dis_loo),
             "share < 1": float(np.mean(np.array(dis_loo) < 1))},
            {"ratio": "Var(ARM) / Var(LOO k=2)", "median": _median(arm_loo),
             "min": min(arm_loo), "max": max(arm_loo),
             "share < 1": float(np.mean(np.array(arm_loo) < 1))},
        ]
    )  # fmt: skip
    run.section(
        "LOO against the best constant baseline at equal cost",
        """
Ratio of k-sample LOO's variance to that of the mean of k independent REINFORCE draws
with the best constant baseline of the example (`Var_c* / k`) and with the exact mean
`E[C | x]` as baseline (`Var_mean / k`).
""",
    )
    loo_table = []
    for k in LOO_KS:
        best = [r[f"loo{k}"] / (r["reinforce_best_constant"] / k) for r in rows]
        mean = [r[f"loo{k}"] / (r["reinforce_mean"] / k) for r in rows]
        loo_table.append(
            {"k": k, "median LOO / best-constant": _median(best), "max": max(best),
             "median LOO / mean-baseline": _median(mean), "(k/(k-1))": k / (k - 1)}
        )  # fmt: skip
    run.table(loo_table)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.hist(np.log10(dis_loo), bins=20, alpha=0.7, label="DisARM / LOO(2)")
    ax.hist(np.log10(arm_loo), bins=20, alpha=0.5, label="ARM / LOO(2)")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("log10 variance ratio (stochastic layer)")
    ax.set_ylabel("networks")
    ax.legend()
    run.figure("equal_cost.png", fig)

    # 3. Temperature.
    net = gs.BinaryNetwork.random((3, 4, 3, 2), loss="bce", seed=run.seed + 11)
    x, t = rng.normal(size=3), rng.uniform(0, 1, 2)
    trows = temperature_rows(net, x, t, draws, run.seed)
    run.csv("temperature.csv", trows)
    run.section(
        "Bias and variance against the temperature",
        f"""
Network (3, 4, 3, 2) bce (seed {run.seed + 11}); stochastic-layer coordinates, relative
to ||g||^2. `st_tempered` exact; `concrete` Monte Carlo ({draws:,} draws per tau), its
squared bias corrected for the sampling noise, with a standard error (values at or
below zero are within noise of zero and left out of the figure).
""",
    )
    run.table(trows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, style in (("st_tempered", "o-"), ("concrete", "s--")):
        sel = [r for r in trows if r["estimator"] == name]
        taus = [r["tau"] for r in sel]
        # A noise-corrected squared bias can fall at or below zero: not drawn on a log axis.
        kept = [(r["tau"], r["rel_bias2"]) for r in sel if r["rel_bias2"] > 0]
        axes[0].plot(*zip(*kept, strict=True), style, label=name)
        axes[1].plot(taus, [r["rel_var"] for r in sel], style, label=name)
    for ax, label in zip(axes, ("squared bias / ||g||^2", "tr Var / ||g||^2"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tau")
        ax.set_ylabel(label)
        ax.legend()
    run.figure("temperature.png", fig)

    # 4. ReinMax's polynomial benchmark.
    logits = np.linspace(-4, 4, 9 if run.quick else 33)
    prows = poly_rows(logits)
    run.csv("polynomial.csv", prows)
    deviation = check_poly_against_engine([-2.0, 0.0, 1.5])
    if deviation > 1e-12:
        raise AssertionError(f"q = 2 enumeration differs from the engine by {deviation:g}")
    run.section(
        "ReinMax's polynomial benchmark",
        f"""
Loss `sum_i |h_i - {POLY_C}|^q` on independent units (the numbers are per unit; for n
units, n times these variances and the same relative bias). The q = 2 enumeration
matches the engine's exact moments to {deviation:.1g}. Relative bias (E g_hat - g)/|g| at
logits 0 and 2:
""",
    )
    summary = []
    for q in POLY_Q:
        for label in dict.fromkeys(r["estimator"] for r in prows):
            sel = {r["logit"]: r for r in prows if r["q"] == q and r["estimator"] == label}
            summary.append(
                {"q": q, "estimator": label, "rel bias a=0": sel[0.0]["rel_bias"],
                 "rel bias a=2": sel[2.0]["rel_bias"], "rel var a=0": sel[0.0]["rel_var"]}
            )  # fmt: skip
    run.table(summary)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
    for ax, q in zip(axes, POLY_Q, strict=True):
        for label in dict.fromkeys(r["estimator"] for r in prows):
            sel = [r for r in prows if r["q"] == q and r["estimator"] == label]
            ax.plot([r["logit"] for r in sel], [r["rel_bias"] for r in sel], label=label)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(f"|h - {POLY_C}|^{q:g}")
        ax.set_xlabel("logit a")
    axes[0].set_ylabel("relative bias (E g_hat - g)/|g|")
    axes[0].legend(fontsize=7)
    run.figure("polynomial.png", fig)
    run.json(
        "summary.json",
        {"disarm_over_loo2_median": _median(dis_loo), "arm_over_loo2_median": _median(arm_loo),
         "loo": loo_table, "poly_engine_deviation": deviation},
    )  # fmt: skip
    return run.finish("The comparisons estimator papers make, with exact numbers")


if __name__ == "__main__":
    main()
