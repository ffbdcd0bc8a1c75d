"""Does straight-through have "the right sign" for one layer but not deeper?

Question. Bengio, Léonard & Courville (2013, arXiv:1308.3432) remark that the straight-
through estimator, although biased, "has the right sign when considering a single layer
of neurons", which "is not guaranteed anymore when back-propagating through more hidden
layers". The remark states no theorem. For a single layer the exact mean of ``st_sigmoid``
is ``sigmoid'(a_i) E[dC/dh_i]`` against the true ``sigmoid'(a_i) E[C(h_i=1) - C(h_i=0)]``,
and ``st`` is the same divided by ``sigmoid'(a_i) > 0``; the two agree in sign whenever the
loss is affine (or monotone) in each unit, e.g. the ``linear`` loss, and can disagree
otherwise. How often does the sign hold, and how does that change with depth?

Setup. Networks ``(3, 3, ..., 3, 2)`` with ``depth`` stochastic layers of width 3
(``N = 3 depth <= 18``, enumerated exactly), Gaussian parameters
(``BinaryNetwork.random``, scale 1), one input ``x ~ N(0, I)`` and a random target per
network (``N(0, 1)`` entries for ``linear`` and ``mse``, a uniform class for ``xent``).
For ``st`` and ``st_sigmoid``, over the parameters of the stochastic layers (the output
layer is left out: its estimate ``dC/dy h^T`` is exact in expectation for both):

* sign agreement: mean over coordinates with ``|g_j| > 1e-9`` of
  ``P(sign g_hat_j = sign g_j)`` (one draw);
* mean-sign agreement: fraction of those coordinates where ``sign E[g_hat_j] = sign g_j``
  (the reading of "right sign" that the remark is about), also per unit (the bias
  coordinates, ``dJ/da_i``), in the bottom layer (farthest from the output) and in the top
  stochastic layer;
* cosine ``cos(E[g_hat], g)`` and descent probability ``P(<g_hat, g> > 0)``.

All are exact (``gradstat.analyze`` enumerates the ``2^N`` states). Means with standard
errors over the random networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import pyplot, start

import gradstat as gs

WIDTH = 3
N_IN = 3
N_OUT = 2
SCALE = 1.0
TOL = 1e-9
LOSSES = ("linear", "mse", "xent")
ESTIMATORS = ("st", "st_sigmoid")
FULL_DEPTHS = (1, 2, 3, 4, 5, 6)
QUICK_DEPTHS = (1, 2, 3, 4)
FULL_NETWORKS = 50
QUICK_NETWORKS = 3
METRICS = {
    "sign_agreement": "sign agreement P(sign g_hat_j = sign g_j)",
    "mean_sign": "mean-sign agreement (sign E g_hat_j = sign g_j)",
    "cosine": "cosine cos(E g_hat, g)",
    "descent_probability": "descent probability P(<g_hat, g> > 0)",
}


def problem(depth: int, loss: str, seed: Any) -> tuple[gs.BinaryNetwork, np.ndarray, Any]:
    """A random network of ``depth`` stochastic layers, one input and its target."""
    rng = np.random.default_rng(seed)
    sizes = (N_IN, *([WIDTH] * depth), N_OUT)
    net = gs.BinaryNetwork.random(sizes, loss=loss, scale=SCALE, seed=rng.integers(2**63))
    x = rng.normal(size=N_IN)
    t: Any = int(rng.integers(N_OUT)) if loss == "xent" else rng.normal(size=N_OUT)
    return net, x, t


def mean_sign(mean: np.ndarray, g: np.ndarray) -> float:
    """Fraction of coordinates with ``|g_j| > TOL`` where ``sign E[g_hat_j] = sign g_j``."""
    keep = np.abs(g) > TOL
    if not keep.any():
        return float("nan")
    return float(np.mean(np.sign(mean[keep]) == np.sign(g[keep])))


def measure(net: gs.BinaryNetwork, x: np.ndarray, t: Any, estimator: str) -> dict[str, float]:
    r = gs.analyze(net, x, t, estimator, tol=TOL)
    groups = net.parameter_groups()
    stoch = groups["stochastic"]
    units = np.concatenate([np.arange(b.start, b.stop) for _, b in net.layer_slices()[:-1]])
    bottom, top = groups["layer1"], groups[f"layer{net.n_layers}"]
    g, m = r.gradient, r.mean
    right = mean_sign(m[stoch], g[stoch])
    return {
        "sign_agreement": r.stochastic.sign_agreement,
        "mean_sign": right,
        "cosine": r.stochastic.cosine,
        "descent_probability": r.stochastic.descent_probability,
        "mean_sign_units": mean_sign(m[units], g[units]),
        "mean_sign_bottom": mean_sign(m[bottom], g[bottom]),
        "mean_sign_top": mean_sign(m[top], g[top]),
        "all_right": float(right == 1.0),
        "relative_bias": r.stochastic.relative_bias,
        "cosine_all_params": r.overall.cosine,
        "descent_all_params": r.overall.descent_probability,
    }


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), se


def main(argv: Sequence[str] | None = None) -> Path:
    run = start("st_sign_by_depth", __doc__.splitlines()[0], argv)
    depths = QUICK_DEPTHS if run.quick else FULL_DEPTHS
    n_nets = QUICK_NETWORKS if run.quick else FULL_NETWORKS

    rows: list[dict[str, Any]] = []
    for depth in depths:
        for li, loss in enumerate(LOSSES):
            for k in range(n_nets):
                net, x, t = problem(depth, loss, np.random.SeedSequence([run.seed, depth, li, k]))
                for est in ESTIMATORS:
                    rows.append(
                        {
                            "depth": depth,
                            "loss": loss,
                            "network": k,
                            "estimator": est,
                            "n_stochastic": net.n_stochastic,
                            **measure(net, x, t, est),
                        }
                    )
    run.csv("networks.csv", rows)

    per_net_keys = [
        k for k in rows[0] if k not in ("depth", "loss", "network", "estimator", "n_stochastic")
    ]
    agg: list[dict[str, Any]] = []
    for loss in LOSSES:
        for est in ESTIMATORS:
            for depth in depths:
                sel = [
                    r for r in rows if (r["loss"], r["estimator"], r["depth"]) == (loss, est, depth)
                ]
                row: dict[str, Any] = {
                    "loss": loss,
                    "estimator": est,
                    "depth": depth,
                    "networks": len(sel),
                }
                for key in per_net_keys:
                    row[key], row[f"{key}_se"] = mean_se([r[key] for r in sel])
                agg.append(row)
    run.csv("by_depth.csv", agg)

    # The one-layer linear-loss check: sign E[g_hat] = sign g on every coordinate.
    one = [r for r in rows if r["depth"] == 1 and r["loss"] == "linear"]
    one_layer_linear = {
        est: min(r["mean_sign"] for r in one if r["estimator"] == est) for est in ESTIMATORS
    }
    st_sig_bias = max(r["relative_bias"] for r in one if r["estimator"] == "st_sigmoid")
    exact_ok = all(v == 1.0 for v in one_layer_linear.values())

    run.section(
        "Setup",
        f"Depths {list(depths)} of width {WIDTH} (N = {WIDTH} x depth stochastic units), "
        f"n_in = {N_IN}, n_out = {N_OUT}, parameters N(0, {SCALE:g}^2 / fan_in) and biases "
        f"N(0, {SCALE:g}^2); {n_nets} random networks per depth and loss, one input "
        f"x ~ N(0, I) each; losses {', '.join(LOSSES)}. Metrics over the stochastic layers' "
        f"parameters, coordinates with |g_j| > {TOL:g}; exact by enumeration. Entries are "
        f"mean ± standard error over the networks.",
    )
    run.section(
        "Right sign for one layer (linear loss)",
        f"Minimum over the {len(one) // len(ESTIMATORS)} one-layer linear-loss networks of the "
        f"mean-sign agreement: "
        + ", ".join(f"{e} {v:.6g}" for e, v in one_layer_linear.items())
        + f". Largest relative bias of st_sigmoid there: {st_sig_bias:.1e} (it is exact for a "
        f"loss linear in the units of one layer). The claim holds exactly: "
        f"{'yes' if exact_ok else 'NO'}.",
    )
    first = [r for r in agg if r["depth"] == 1 and r["estimator"] == "st_sigmoid"]
    last = [r for r in agg if r["depth"] == depths[-1]]
    run.text(
        "One layer, other losses: fraction of networks whose every stochastic coordinate has "
        "the right mean sign (st and st_sigmoid agree in sign unit by unit): "
        + ", ".join(f"{r['loss']} {r['all_right']:.2f}" for r in first)
        + f". With {N_OUT} classes the xent loss is softplus of a linear function of h, hence "
        "monotone in each unit, so the sign holds there as well; mse is not monotone in a "
        f"unit and can fail. At depth {depths[-1]}: "
        + ", ".join(f"{r['estimator']}/{r['loss']} {r['all_right']:.2f}" for r in last)
        + "."
    )
    plt = pyplot()
    for metric, title in METRICS.items():
        run.section(title)
        table = []
        for loss in LOSSES:
            for est in ESTIMATORS:
                cells = {"loss": loss, "estimator": est}
                for depth in depths:
                    a = next(
                        r
                        for r in agg
                        if (r["loss"], r["estimator"], r["depth"]) == (loss, est, depth)
                    )
                    cells[f"depth {depth}"] = f"{a[metric]:.3f} ± {a[metric + '_se']:.3f}"
                table.append(cells)
        run.table(table)
        fig, ax = plt.subplots(figsize=(6, 4))
        colors = dict(zip(LOSSES, ("C0", "C1", "C2")))
        for loss in LOSSES:
            for est, style in zip(ESTIMATORS, ("-o", "--s")):
                sel = [r for r in agg if r["loss"] == loss and r["estimator"] == est]
                ax.errorbar(
                    [r["depth"] for r in sel],
                    [r[metric] for r in sel],
                    yerr=[r[metric + "_se"] for r in sel],
                    fmt=style,
                    color=colors[loss],
                    capsize=3,
                    label=f"{est}, {loss}",
                )
        ax.set_xlabel("number of stochastic layers (width 3)")
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_title(title, fontsize=9)
        ax.set_xticks(list(depths))
        ax.legend(fontsize=7)
        run.figure(f"{metric}.png", fig)

    run.section(
        "Where the sign goes wrong",
        "Mean-sign agreement per unit (the bias coordinates, dJ/da_i), in the bottom layer "
        "(layer 1, farthest from the output) and in the top stochastic layer, and the "
        "fraction of networks whose every stochastic coordinate has the right mean sign.",
    )
    table = []
    for loss in LOSSES:
        for est in ESTIMATORS:
            for depth in depths:
                a = next(
                    r for r in agg if (r["loss"], r["estimator"], r["depth"]) == (loss, est, depth)
                )
                table.append(
                    {
                        "loss": loss,
                        "estimator": est,
                        "depth": depth,
                        "units": a["mean_sign_units"],
                        "bottom layer": a["mean_sign_bottom"],
                        "top layer": a["mean_sign_top"],
                        "all right": a["all_right"],
                        "relative bias": a["relative_bias"],
                    }
                )
    run.table(table, fmt=".3f")
    return run.finish('Straight-through: "right sign" by depth')


if __name__ == "__main__":
    main()
