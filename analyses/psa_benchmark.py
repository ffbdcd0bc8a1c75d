"""Per-layer gradient accuracy on the 2-5-5-5 benchmark of Shekhovtsov, Yanush & Flach (2020).

Question. In a three-layer stochastic binary network trained on a small 2-D
classification problem, how close to the exact gradient is each estimator, layer by
layer, as a function of the number M of averaged draws, at initialisation and after
training? This is the gradient-accuracy benchmark of "Path sample-analytic gradient
estimators for stochastic binary networks" (Shekhovtsov, Yanush & Flach, NeurIPS 2020,
arXiv:2006.03143; public code github.com/shekhovt/PSA-Neurips2020, ``gradeval/exp_class.py``
and ``gradeval/test_grad1.py``), here with exact moments instead of 20,000 draws.

Setup (as in the public code unless stated). Data: 100 points per class; class 1:
``x0 ~ U(-pi/2, pi/2)``, ``x1 ~ U(0, 1)``; class 0: pairs ``x0 ~ U(-pi/2, pi/2)``,
``y ~ U(-1, 1)`` redrawn until ``y < cos(x0)``, then ``x1 = y``. Network ``sizes = (2, 5, 5,
5, 1)``: three stochastic layers of 5 units (``2^15 = 32768`` joint states), a linear
output and the logistic loss, gradstat's ``bce`` with ``t`` in {0, 1} (the code's
``log(1 + exp(-eta y))`` with ``y = 2t - 1``); weights and biases ``U(-1, 1)``. Training:
SGD with momentum 0.9, learning rate 0.03, batches of 10, 2000 epochs (the paper's
schedule) but with the exact mini-batch gradient. For every estimator, per layer
(``layer1..layer3``, ``output``) and for the average of M independent draws:

* relative RMSE ``sqrt(E||g_M - g||^2 / ||g||^2) = sqrt((||bias||^2 + tr Var / M) / ||g||^2)``,
  exact (the code's metric, ``sqrt`` of the mean squared relative error);
* the cosine proxy ``cos_M = <E g_hat, g> / (||g|| sqrt(||E g_hat||^2 + tr Var / M))``: the
  cosine between ``g`` and the root-mean-square M-average (numerator and squared norm
  replaced by their expectations). It is *not* ``E[cos(g_M, g)]``, which the paper plots;
  that one is estimated by Monte Carlo for M in {1, 10, 100} for comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import pyplot, start

import gradstat as gs
from gradstat.network import count_params

SIZES = (2, 5, 5, 5, 1)
LEARNING_RATE = 0.03
MOMENTUM = 0.9
BATCH = 10
M_GRID = np.unique(np.round(np.logspace(0, 3, 25)).astype(int))
MC_M = (1, 10, 100)


def make_data(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """The two-class data of the public code (``exp_class.py``); targets in {0, 1}."""
    x1 = np.column_stack(
        [rng.uniform(-np.pi / 2, np.pi / 2, per_class), rng.uniform(0.0, 1.0, per_class)]
    )
    x0 = np.empty((per_class, 2))
    i = 0
    while i < per_class:
        a, y = rng.uniform(-np.pi / 2, np.pi / 2), rng.uniform(-1.0, 1.0)
        if y < np.cos(a):
            x0[i] = a, y
            i += 1
    X = np.vstack([x1, x0])
    T = np.concatenate([np.ones(per_class), np.zeros(per_class)])[:, None]
    return X, T


def train(
    net: gs.BinaryNetwork,
    X: np.ndarray,
    T: np.ndarray,
    epochs: Sequence[int],
    rng: np.random.Generator,
) -> tuple[dict[int, gs.BinaryNetwork], list[dict[str, float]]]:
    """SGD with momentum (PyTorch's form ``v = mu v + g``, ``theta -= lr v``) on exact
    mini-batch gradients; the networks at ``epochs`` and the full-batch curve per epoch.

    ``gs.exact_gradient`` computes this network's gradient by layer-wise messages
    (``2^15`` joint states, but only ``2^10`` pairs of adjacent layer states)."""
    theta = net.params.copy()
    velocity = np.zeros_like(theta)
    snapshots = {0: net}
    curve = [{"epoch": 0, "objective": gs.expected_loss(net, X, T)}]
    for epoch in range(1, max(epochs) + 1):
        order = rng.permutation(X.shape[0])
        for start_ in range(0, X.shape[0], BATCH):
            idx = order[start_ : start_ + BATCH]
            g = gs.exact_gradient(net.with_params(theta), X[idx], T[idx])
            velocity = MOMENTUM * velocity + g
            theta = theta - LEARNING_RATE * velocity
        current = net.with_params(theta)
        curve.append({"epoch": epoch, "objective": gs.expected_loss(current, X, T)})
        if epoch in epochs:
            snapshots[epoch] = current
    return snapshots, curve


def variants() -> list[tuple[str, str, dict[str, Any]]]:
    """Every registered estimator with exact moments on this network (default options),
    and REINFORCE's optimal baseline. Estimators measured only by Monte Carlo here (ARM
    and DisARM beyond one layer, the relaxations, REBAR, the noisy rectifier, and
    ``reinforce_loo``, whose ``2^(N k) = 2^30`` states exceed the default cap) are left
    out: the crossing points ``M*`` below need exact biases and variances."""
    hidden = SIZES[1:-1]
    out: list[tuple[str, str, dict[str, Any]]] = []
    for name in gs.available_estimators():
        spec = gs.get_estimator(name)
        exact = spec.exact_engine(len(hidden)) is not None
        if exact and spec.exact_count(hidden, spec.options) <= gs.DEFAULT_MAX_STATES:
            out.append((name, name, {}))
    out.append(("reinforce[optimal]", "reinforce", {"baseline": "optimal"}))
    return out


def layer_curves(result: gs.AnalysisResult, net: gs.BinaryNetwork) -> dict[str, dict[str, Any]]:
    """Per layer: ``||g||``, ``||bias||``, ``tr Var``, ``<E g_hat, g>``, ``||E g_hat||`` and
    the relative-RMSE and cosine-proxy curves over ``M_GRID``."""
    groups = net.parameter_groups()
    out = {}
    for name, scope in result.layers.items():
        sl = groups[name]
        g, m, v = result.gradient[sl], result.mean[sl], result.var[sl]
        g_sq, bias_sq, tr = float(g @ g), float((m - g) @ (m - g)), float(v.sum())
        if result.method == "mc":
            bias_sq = scope.bias_norm**2  # Monte Carlo: analyze's debiased estimate
        # The same numbers as analyze's per-layer metrics:
        if not np.isclose(np.sqrt(bias_sq), scope.bias_norm, rtol=1e-9, atol=1e-14):
            raise AssertionError(f"{name}: bias norm {np.sqrt(bias_sq)} vs {scope.bias_norm}")
        if not np.isclose(tr, scope.total_variance, rtol=1e-9, atol=1e-14):
            raise AssertionError(f"{name}: total variance {tr} vs {scope.total_variance}")
        dot, m_sq = float(m @ g), float(m @ m)
        out[name] = {
            "g_norm": np.sqrt(g_sq),
            "bias_norm": np.sqrt(bias_sq),
            "total_variance": tr,
            "cosine": scope.cosine,
            "rel_rmse": np.sqrt((bias_sq + tr / M_GRID) / g_sq),
            "cos_proxy": dot / np.sqrt(g_sq * (m_sq + tr / M_GRID)),
        }
    return out


def rel_rmse(c: dict[str, Any], M: int) -> float:
    """``sqrt((||bias||^2 + tr Var / M) / ||g||^2)`` from a :func:`layer_curves` entry."""
    return float(np.sqrt(c["bias_norm"] ** 2 + c["total_variance"] / M) / c["g_norm"])


def monte_carlo(
    net: gs.BinaryNetwork,
    X: np.ndarray,
    T: np.ndarray,
    name: str,
    options: dict[str, Any],
    g: np.ndarray,
    n_draws: int,
    seed: int,
) -> dict[tuple[str, int], dict[str, float]]:
    """``E[cos(g_M, g)]`` and ``E||g_M - g||^2 / ||g||^2`` per layer for M in ``MC_M``, from
    disjoint groups of M consecutive draws, each with its standard error (``g``: the exact
    gradient)."""
    draws = gs.sample_gradients(net, X, T, name, n_draws, seed=seed, **options)
    out = {}
    for layer, sl in net.parameter_groups().items():
        if layer == "stochastic":
            continue
        gl = g[sl]
        for M in MC_M:
            n_groups = n_draws // M
            if n_groups < 2:
                continue
            avg = draws[: n_groups * M, sl].reshape(n_groups, M, -1).mean(axis=1)
            norms = np.linalg.norm(avg, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                cos = avg @ gl / (norms * np.linalg.norm(gl))
            cos = cos[np.isfinite(cos)]
            sq = np.sum((avg - gl) ** 2, axis=1) / (gl @ gl)
            out[layer, M] = {
                "groups": n_groups,
                "mc_cos": float(cos.mean()),
                "mc_cos_se": float(cos.std(ddof=1) / np.sqrt(cos.size)),
                "mc_cos_q15": float(np.quantile(cos, 0.15)),
                "mc_cos_q85": float(np.quantile(cos, 0.85)),
                "mc_sq_rel_err": float(sq.mean()),
                "mc_sq_rel_err_se": float(sq.std(ddof=1) / np.sqrt(sq.size)),
            }
    return out


def main(argv: Sequence[str] | None = None) -> Path:
    run = start("psa_benchmark", __doc__.splitlines()[0], argv)
    if run.quick:
        per_class, eval_per_class, epochs, n_draws = 5, 2, (0, 3), 200
    else:
        per_class, eval_per_class, epochs, n_draws = 100, 20, (0, 100, 2000), 10_000
    rng = np.random.default_rng(run.seed)
    X, T = make_data(rng, per_class)
    n_params = count_params(SIZES)
    net0 = gs.BinaryNetwork(SIZES, rng.uniform(-1.0, 1.0, n_params), loss="bce")
    # A fixed class-balanced subset for the gradient metrics.
    eval_idx = np.concatenate(
        [rng.choice(per_class, eval_per_class, replace=False) + k * per_class for k in (0, 1)]
    )
    Xe, Te = X[eval_idx], T[eval_idx]

    snapshots, curve = train(net0, X, T, epochs, rng)
    run.csv("training.csv", curve)
    labels = [label for label, _, _ in variants()]
    run.section(
        "Setup",
        f"""
Data: {per_class} points per class as in the public code (module docstring); network
{SIZES}, `bce` loss, weights and biases U(-1, 1); {2 * per_class // BATCH} SGD steps per
epoch (batch {BATCH}, momentum {MOMENTUM}, learning rate {LEARNING_RATE}), exact mini-batch
gradients from `gradstat.exact_gradient` (layer-wise messages: 2^10 pairs of adjacent
layer states instead of 2^15 joint states). Checkpoints: epochs {list(epochs)}.
Gradient metrics on a fixed subset of {2 * eval_per_class} training examples
({eval_per_class} per class): exact moments of the batch estimate (independent noise per
example) by enumerating 2^15 states per example. Estimators: {", ".join(labels)}
(defaults; `reinforce` has no baseline, `reinforce[optimal]` is the exact optimal-baseline
oracle). Monte Carlo: {n_draws} batch draws per estimator and checkpoint, cut into
disjoint groups of M for M in {list(MC_M)}.

**Metrics** (per layer; g is the exact gradient of the evaluation batch, g_M the average
of M independent batch estimates). Relative RMSE(M) = sqrt(E||g_M - g||^2 / ||g||^2) =
sqrt((||bias||^2 + tr Var / M) / ||g||^2), exact. Cosine proxy(M) = <E g_hat, g> /
(||g|| sqrt(||E g_hat||^2 + tr Var / M)) = E<g_M, g> / (||g|| sqrt(E||g_M||^2)): the cosine
of g with the root-mean-square M-average, exact. It is **not** E[cos(g_M, g)] (the paper's
metric); that expectation is estimated by Monte Carlo ("MC E[cos]", with its standard
error) for M in {list(MC_M)}. As M -> infinity both tend to cos(E g_hat, g).

**Deviations from the paper's code.** (1) The data are a fresh draw from numpy's
generator (seed {run.seed}), not the code's torch seed. (2) The code follows the U(-1, 1)
initialisation with a data-dependent rescaling of every layer's pre-activations
(`AP2-init`); not done here. (3) The code trains with the PSA estimator; here the
exact gradient (same optimiser and schedule). (4) The paper's first checkpoint is
after one epoch; here the initialisation itself. (5) The paper measures the
gradient of all {2 * per_class} examples; exact moments of that cost too much here, so every
gradient metric is for a fixed class-balanced batch of {2 * eval_per_class} training
examples, against that batch's exact gradient (a mini-batch setting). tr Var of a batch
estimate is (1/B^2) sum_x Var_x, so for all examples the variance terms would be about
{per_class / eval_per_class:g} times smaller, if the gradients were alike (see "How
representative is the subset?": after training they are not).
(6) The paper's "ST" backpropagates through sigmoid(a) (`out + (y - y.detach())`): that
is gradstat's `st_sigmoid`; `st` (identity) is shown as well. PSA is gradstat's `psa`,
with exact moments. ARM (and DisARM) and Concrete are estimators too (`arm`, `disarm`,
`concrete`), but on three stochastic layers only Monte Carlo measures them, and the
crossing points M* need exact biases and variances, so they are left out here. (7) The
cosine curve is the proxy of the module docstring, exact; the paper's E[cos] is the Monte
Carlo column.
""",
    )

    curve_rows: list[dict[str, Any]] = []
    mc_rows: list[dict[str, Any]] = []
    table_rows: dict[int, list[dict[str, Any]]] = {}
    all_curves: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
    subset_rows = []
    full_norm: dict[int, float] = {}
    for epoch in epochs:
        net = snapshots[epoch]
        g_dp = gs.exact_gradient(net, Xe, Te)
        g_all = gs.exact_gradient(net, X, T)
        full_norm[epoch] = float(np.linalg.norm(g_all))
        row = {"epoch": epoch}
        for layer, sl in net.parameter_groups().items():
            if layer != "stochastic":
                a, b = g_dp[sl], g_all[sl]
                row[f"cos {layer}"] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
                row[f"norm ratio {layer}"] = float(np.linalg.norm(a) / np.linalg.norm(b))
        subset_rows.append(row)
        table_rows[epoch] = []
        for k, (label, name, options) in enumerate(variants()):
            result = gs.analyze(net, Xe, Te, name, seed=run.seed, **options)
            curves = layer_curves(result, net)
            all_curves[epoch, label] = curves
            mc = monte_carlo(
                net,
                Xe,
                Te,
                name,
                options,
                result.gradient,
                n_draws,
                seed=run.seed * 10_000 + epoch * 100 + k,
            )
            for layer, c in curves.items():
                for M, rmse, cos in zip(M_GRID, c["rel_rmse"], c["cos_proxy"]):
                    curve_rows.append(
                        {"epoch": epoch, "estimator": label, "method": result.method,
                         "layer": layer, "M": int(M), "rel_rmse": float(rmse),
                         "cos_proxy": float(cos)}
                    )  # fmt: skip
                row: dict[str, Any] = {"estimator": label, "layer": layer}
                row["rel. bias"] = c["bias_norm"] / c["g_norm"]
                for M in (1, 10, 100, 1000):
                    row[f"rRMSE M={M}"] = rel_rmse(c, M)
                for M in (1, 100):
                    j = int(np.searchsorted(M_GRID, M))
                    row[f"cos proxy M={M}"] = float(c["cos_proxy"][j])
                for M in MC_M:
                    if (layer, M) in mc:
                        e = mc[layer, M]
                        row[f"MC E[cos] M={M}"] = f"{e['mc_cos']:.3f} ± {e['mc_cos_se']:.3f}"
                        exact_sq = rel_rmse(c, M) ** 2
                        j = int(np.searchsorted(M_GRID, M))
                        mc_rows.append(
                            {"epoch": epoch, "estimator": label, "layer": layer, "M": M,
                             **e, "cos_proxy": float(c["cos_proxy"][j]),
                             "exact_sq_rel_err": exact_sq,
                             "z_sq_rel_err": (e["mc_sq_rel_err"] - exact_sq)
                             / e["mc_sq_rel_err_se"]}
                        )  # fmt: skip
                table_rows[epoch].append(row)
    run.csv("curves.csv", curve_rows)
    run.csv("monte_carlo.csv", mc_rows)
    z = np.array([r["z_sq_rel_err"] for r in mc_rows if r["groups"] >= 20])
    z = z[np.isfinite(z)]

    by_epoch = {r["epoch"]: r for r in curve}
    run.section(
        "Training",
        "Exact full-batch objective (mean expected logistic loss over all "
        f"{2 * per_class} examples): "
        + "; ".join(f"epoch {e}: J = {by_epoch[e]['objective']:.4f}" for e in epochs)
        + ".",
    )
    run.section(
        "Checks",
        f"Monte Carlo mean squared relative error of the M-average against "
        f"the exact (||bias||^2 + tr Var/M)/||g||^2: z-scores over the {z.size} (estimator, "
        f"layer, M, checkpoint) cells with at least 20 groups have median |z| "
        f"{np.median(np.abs(z)):.2f}, max |z| {np.max(np.abs(z)):.2f} (heavy tails make a "
        f"few large |z| expected).",
    )
    run.csv("subset.csv", subset_rows)
    run.section(
        "How representative is the subset?",
        f"Exact gradient of the {2 * eval_per_class}-example subset against that of all "
        f"{2 * per_class} examples, per layer: cosine and norm ratio. Full-data gradient norm "
        + ", ".join(f"{full_norm[e]:.3g} (epoch {e})" for e in epochs)
        + ". Where the cosine is low the full-data gradient is small (near a stationary "
        "point) and the batch gradient is mostly example-to-example variation: the metrics "
        "at that checkpoint then describe this batch's objective and change with the batch.",
    )
    run.table(subset_rows, fmt=".3g")
    for epoch in epochs:
        run.section(
            f"Epoch {epoch}: per-layer accuracy",
            "rel. bias = ||E g_hat - g|| / ||g||; rRMSE M = relative RMSE of the M-average "
            "(exact); cos proxy M (exact, see the module docstring); MC E[cos] M = Monte "
            "Carlo mean of cos(g_M, g) ± standard error.",
        )
        run.table(table_rows[epoch], fmt=".3g")

    plt = pyplot()
    layer_names = list(all_curves[epochs[0], labels[0]])
    colors = {label: f"C{i}" for i, label in enumerate(labels)}
    for metric, fname, ylabel in (
        ("cos_proxy", "cosine.png", "cosine"),
        ("rel_rmse", "rel_rmse.png", "relative RMSE"),
    ):
        fig, axes = plt.subplots(
            len(epochs), len(layer_names), figsize=(4.2 * len(layer_names), 3.4 * len(epochs)),
            squeeze=False, sharex=True,
        )  # fmt: skip
        for i, epoch in enumerate(epochs):
            for j, layer in enumerate(layer_names):
                ax = axes[i, j]
                for label in labels:
                    ax.plot(M_GRID, all_curves[epoch, label][layer][metric], color=colors[label],
                            label=label)  # fmt: skip
                    if metric == "cos_proxy":
                        pts = [r for r in mc_rows if r["epoch"] == epoch
                               and r["estimator"] == label and r["layer"] == layer]  # fmt: skip
                        ax.errorbar([r["M"] for r in pts], [r["mc_cos"] for r in pts],
                                    yerr=[2 * r["mc_cos_se"] for r in pts], fmt="o", ms=3,
                                    color=colors[label], capsize=2)  # fmt: skip
                ax.set_xscale("log")
                if metric == "rel_rmse":
                    ax.set_yscale("log")
                else:
                    low = min(
                        min(float(np.min(all_curves[epoch, b][layer][metric])) for b in labels),
                        min([r["mc_cos"] for r in mc_rows if r["epoch"] == epoch
                             and r["layer"] == layer], default=0.0),
                    )  # fmt: skip
                    ax.set_ylim(min(-0.05, low - 0.05), 1.02)
                ax.set_title(f"epoch {epoch}, {layer}")
                ax.grid(alpha=0.3)
                if i == len(epochs) - 1:
                    ax.set_xlabel("M (draws averaged)")
                if j == 0:
                    ax.set_ylabel(ylabel)
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(
            "cosine proxy (lines, exact) and Monte Carlo E[cos(g_M, g)] (markers, ± 2 SE)"
            if metric == "cos_proxy"
            else "relative RMSE sqrt((||bias||^2 + tr Var / M) / ||g||^2), exact"
        )
        fig.tight_layout()
        run.figure(fname, fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["epoch"] for r in curve], [r["objective"] for r in curve])
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("exact objective J")
    ax.grid(alpha=0.3)
    run.figure("training.png", fig)

    crossings = crossing_rows(all_curves, epochs, labels, layer_names)
    run.csv("crossings.csv", crossings)
    run.section(
        "How many draws before an unbiased estimator wins",
        "For an unbiased estimator u and a biased one b, both averaged over M draws, "
        "u has the smaller relative RMSE once M > M* = (tr Var_u - tr Var_b) / ||bias_b||^2 "
        "(exact; '1' when u is better already at M = 1).",
    )
    run.table(crossings, fmt=".3g")
    last = subset_rows[-1]
    cosines = [last[f"cos {x}"] for x in layer_names]
    if min(cosines) < 0.9:
        caveat = (
            f" Caveat: at epoch {epochs[-1]} the full-data gradient is small (norm "
            f"{full_norm[epochs[-1]]:.3g} against {full_norm[epochs[0]]:.3g} at epoch "
            f"{epochs[0]}) and the evaluation batch's gradient has cosine "
            + ", ".join(f"{c:.2f}" for c in cosines)
            + f" with it per layer ({', '.join(layer_names)}): the trained-network numbers "
            "are those of this batch's objective and change with the batch."
        )
    else:
        caveat = (
            f" At every checkpoint the evaluation batch's gradient has cosine >= "
            f"{min(r[f'cos {x}'] for r in subset_rows for x in layer_names):.2f} with the "
            "full-data gradient in every layer."
        )
    run.section("Finding", finding(all_curves, epochs, labels, layer_names, mc_rows) + caveat)
    return run.finish("Per-layer gradient accuracy on the PSA 2-5-5-5 benchmark")


def unbiased(label: str, curves: dict[str, dict[str, Any]]) -> bool:
    """An estimator whose exact relative bias is at rounding level in every layer."""
    return all(c["bias_norm"] <= 1e-9 * c["g_norm"] for c in curves.values())


def crossing_rows(
    curves: dict[tuple[int, str], dict[str, dict[str, Any]]],
    epochs: Sequence[int],
    labels: Sequence[str],
    layers: Sequence[str],
) -> list[dict[str, Any]]:
    """``M*`` per (checkpoint, unbiased, biased, stochastic layer)."""
    rows = []
    for epoch in epochs:
        good = [b for b in labels if unbiased(b, curves[epoch, b])]
        bad = [b for b in labels if b not in good]
        for u in good:
            for b in bad:
                row: dict[str, Any] = {"epoch": epoch, "unbiased": u, "biased": b}
                for layer in layers:
                    if layer == "output":
                        continue
                    cu, cb = curves[epoch, u][layer], curves[epoch, b][layer]
                    if cb["bias_norm"] == 0.0:
                        # Unbiased in this layer: averaging never lets the other catch up.
                        m_star = np.inf
                    else:
                        gap = cu["total_variance"] - cb["total_variance"]
                        m_star = gap / cb["bias_norm"] ** 2
                    row[f"M* {layer}"] = float(max(1.0, m_star))
                rows.append(row)
    return rows


def finding(
    curves: dict[tuple[int, str], dict[str, dict[str, Any]]],
    epochs: Sequence[int],
    labels: Sequence[str],
    layers: Sequence[str],
    mc_rows: Sequence[dict[str, Any]],
) -> str:
    """A paragraph built from the numbers (the estimators of the seed set, when present)."""
    first, last = epochs[0], epochs[-1]
    hidden = [layer for layer in layers if layer != "output"]

    def rel_bias(epoch: int, label: str) -> str:
        c = curves[epoch, label]
        return ", ".join(f"{c[x]['bias_norm'] / c[x]['g_norm']:.2g}" for x in hidden)

    def mc_cos(epoch: int, label: str, M: int) -> str:
        vals = {r["layer"]: r["mc_cos"] for r in mc_rows
                if r["epoch"] == epoch and r["estimator"] == label and r["M"] == M}  # fmt: skip
        return ", ".join(f"{vals[x]:.2f}" for x in hidden if x in vals)

    def rmse1(epoch: int, label: str) -> str:
        return ", ".join(f"{rel_rmse(curves[epoch, label][x], 1):.3g}" for x in hidden)

    def m_star(epoch: int, u: str, b: str) -> str:
        out = []
        for x in hidden:
            cu, cb = curves[epoch, u][x], curves[epoch, b][x]
            out.append(
                max(1.0, (cu["total_variance"] - cb["total_variance"]) / cb["bias_norm"] ** 2)
            )
        return ", ".join(f"{m:.3g}" for m in out)

    parts = [f"Per hidden layer ({', '.join(hidden)}):"]
    if "st_sigmoid" in labels:
        parts.append(
            f"the paper's ST (`st_sigmoid`) has relative bias {rel_bias(first, 'st_sigmoid')} at "
            f"epoch {first} and {rel_bias(last, 'st_sigmoid')} at epoch {last}; its "
            f"single-draw E[cos] is {mc_cos(first, 'st_sigmoid', 1)} at epoch {first} and "
            f"{mc_cos(last, 'st_sigmoid', 1)} at epoch {last}."
        )
    if "st" in labels:
        parts.append(
            f"Identity `st` is off by a large factor (relative bias {rel_bias(first, 'st')} at "
            f"epoch {first}: each layer of backpropagation multiplies by 1 instead of "
            f"p(1-p) <= 1/4); what matters is its direction: cos(E g_hat, g) per layer is "
            + ", ".join(f"{curves[first, 'st'][x]['cosine']:.2f}" for x in hidden)
            + f" at epoch {first} and "
            + ", ".join(f"{curves[last, 'st'][x]['cosine']:.2f}" for x in hidden)
            + f" at epoch {last}."
        )
    if "sts" in labels:
        parts.append(
            f"`sts` has relative bias {rel_bias(first, 'sts')} (epoch {first}) and "
            f"{rel_bias(last, 'sts')} (epoch {last})."
        )
    if "psa" in labels and "st_sigmoid" in labels:

        def rmse_at(epoch: int, label: str, M: int) -> str:
            return ", ".join(f"{rel_rmse(curves[epoch, label][x], M):.3g}" for x in hidden)

        parts.append(
            f"PSA (the paper's estimator) has relative bias {rel_bias(first, 'psa')} at epoch "
            f"{first} and {rel_bias(last, 'psa')} at epoch {last} (none on the top layer, by "
            f"construction); at epoch {last} its relative RMSE per layer is "
            + "; ".join(f"{rmse_at(last, 'psa', M)} (M = {M})" for M in (1, 10, 100))
            + ", against `st_sigmoid`'s "
            + "; ".join(f"{rmse_at(last, 'st_sigmoid', M)} (M = {M})" for M in (1, 10, 100))
            + " (the paper's headline: PSA below ST in the deep layers at practical M)."
        )
    for u in ("reinforce", "reinforce[optimal]"):
        if u in labels:
            parts.append(
                f"`{u}` (unbiased) has single-draw relative RMSE {rmse1(first, u)} at epoch "
                f"{first} and {rmse1(last, u)} at epoch {last}"
                + (
                    f"; it beats `st_sigmoid` beyond M* = {m_star(first, u, 'st_sigmoid')} "
                    f"draws at epoch {first} and {m_star(last, u, 'st_sigmoid')} at epoch {last}."
                    if "st_sigmoid" in labels
                    else "."
                )
            )
    return " ".join(parts)


if __name__ == "__main__":
    main()
