"""Does the noise of sigmoid straight-through have a specific form, and where does it come from?

Question. The lecture-9c variant of straight-through (``st_sigmoid``: Hinton 2012, surrogate
``dh/da = p (1 - p)``) "amounts to adding noise to the gradient"; does that noise have a
specific form? ``slow_training.py`` describes its spectrum; this script gives the form.

Formulas (one stochastic layer, logit coordinates ``a``, ``D = diag(p (1 - p))``,
``epsilon = h - p``: independent, mean 0, variance ``D``):

* mse (``H = W_o^T W_o``): ``g_hat = g_det + D H epsilon`` for every state, where
  ``g_det = D dC/dh(p)`` is the gradient of the deterministic sigmoid network at the same
  parameters. So the mean is ``g_det``, the true gradient is ``g_det - D diag(H) (p - 1/2)``,
  and ``Cov = D H D H D`` on the logits, ``(D H D H D) (x) x~ x~^T`` on layer 1
  (``x~ = [x; 1]``), of rank at most ``min(n_out, N)``. The output layer's noise is
  ``r epsilon^T + W_o epsilon p^T + W_o (epsilon epsilon^T - D)``, ``r = W_o p + b_o - t``.
* Any loss: ``Cov(g_i, g_k) = s_i s_k sum_{S nonempty} c_{i,S} c_{k,S} prod_{j in S}
  p_j (1 - p_j)`` from the Walsh expansion ``dC/dh_i = sum_S c_{i,S} prod_{j in S}
  epsilon_j``; the sets with one unit are the noise linear in ``epsilon``.
* Any depth: ``Cov(g_hat) = sum_l E[Cov(E[g_hat | h_1..h_l] | h_1..h_{l-1})]``
  (``gradstat.noise_decomposition``), the noise each layer's sampling adds.

Setup. Everything is exact (enumeration; no sampling).

* The form: a ``(3, 4, 2)`` mse network (``BinaryNetwork.random(seed=3)``, one input and
  target from ``numpy``'s generator seeded 0): every state's estimate
  (``gradstat.estimate_from_noise``) against ``g_det + D H epsilon``, the enumerated
  covariance (``estimator_moments(full_cov=True)``) against ``D H D H D`` and its Kronecker
  form, numerical ranks (eigenvalues above 1e-10 of the largest), the Walsh sum on the same
  network with the bce loss. The exact skewness of each logit coordinate for one example
  and for the mean of a batch of ``B`` examples (third cumulants add over independent
  examples).
* Loss: one-layer ``(3, 4, 2)`` networks with mse, bce and xent (random seeds): the rank of
  the layer-1 covariance and the share of the variance that is linear in ``epsilon``.
* Depth: ``(4, 3 x depth, 2)`` mse and bce networks, depth 1 to 3: the share of every source
  layer.
* Training: ``slow_training.py``'s task and its seed's first initialisation, trained with
  the exact gradient (Adam, its best learning rate 0.03); the source split at the start,
  the first evaluated step halfway down, and the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import pyplot, start
from scipy.special import expit
from slow_training import SIZES as TASK_SIZES
from slow_training import descend, final_value, initial_params, make_task

import gradstat as gs
from gradstat.claims import deterministic_gradient, walsh_covariance

FORM_SEED = 3
RANK_TOL = 1e-10
SPLIT_ESTIMATORS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("st_sigmoid", "st_sigmoid", {}),
    ("st", "st", {}),
    ("sts", "sts", {}),
    ("reinmax", "reinmax", {}),
    ("reinforce[optimal]", "reinforce", {"baseline": "optimal"}),
    ("leg", "leg", {}),
)
TRAIN_LR = 0.03


def rank(cov: np.ndarray) -> int:
    ev = np.linalg.eigvalsh(cov)
    return int(np.sum(ev > RANK_TOL * max(ev.max(), 1e-300)))


def states(net: gs.BinaryNetwork, x: Any, t: Any, estimator: str) -> tuple[np.ndarray, ...]:
    """Every state ``h`` of one stochastic layer, its probability and its estimate."""
    W1, b1 = net.layers()[0]
    p = expit(W1 @ np.asarray(x, dtype=float) + b1)
    n = net.n_stochastic
    hs = np.array([[(s >> k) & 1 for k in range(n)] for s in range(2**n)], dtype=float)
    prob = np.prod(np.where(hs == 1.0, p, 1.0 - p), axis=1)
    est = np.array([gs.estimate_from_noise(net, x, t, estimator, np.where(h == 1, 0.0, 1.0))
                    for h in hs])  # fmt: skip
    return hs, prob, est, p


def form_checks(run: Any) -> dict[str, Any]:
    """The one-layer formulas on the ``(3, 4, 2)`` network, with the numbers that check them."""
    net = gs.BinaryNetwork.random((3, 4, 2), loss="mse", seed=FORM_SEED)
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=3), rng.normal(size=2)
    (_, _), (W_o, b_o) = net.layers()
    hs, prob, est, p = states(net, x, t, "st_sigmoid")
    n, n_in = net.n_stochastic, net.n_in
    D, H = np.diag(p * (1 - p)), W_o.T @ W_o
    b1 = slice(n_in * n, n_in * n + n)
    det = deterministic_gradient(net, x, t)
    linear = max(float(np.abs(e[b1] - det[b1] - D @ H @ (h - p)).max()) for h, e in zip(hs, est))
    r = W_o @ p + b_o - t
    out = slice(b1.stop, b1.stop + net.n_out * n)
    output = max(
        float(np.abs(e[out].reshape(net.n_out, n) - np.outer(r, p) - W_o @ D
                     - np.outer(r, h - p) - np.outer(W_o @ (h - p), p)
                     - W_o @ (np.outer(h - p, h - p) - D)).max())
        for h, e in zip(hs, est)
    )  # fmt: skip
    m = gs.estimator_moments(net, x, t, "st_sigmoid", full_cov=True)
    C = D @ H @ D @ H @ D
    xt = np.append(x, 1.0)
    order = np.concatenate([[i * n_in + j for j in range(n_in)] + [b1.start + i] for i in range(n)])
    kron = float(np.abs(m.cov[np.ix_(order, order)] - np.kron(C, np.outer(xt, xt))).max())
    g_a = det[b1] - (p * (1 - p)) * np.diag(H) * (p - 0.5)
    reinforce = gs.estimator_moments(net, x, t, "reinforce", full_cov=True)
    stoch = net.parameter_groups()["stochastic"]
    bce = gs.BinaryNetwork(net.sizes, net.params, loss="bce")
    t_bce = expit(t)
    walsh = gs.estimator_moments(bce, x, t_bce, "st_sigmoid", full_cov=True).cov[b1, b1]
    walsh_error = float(np.abs(walsh - walsh_covariance(bce, x, t_bce, p * (1 - p))).max())
    # Skewness of each logit coordinate: a weighted sum of independent Bernoulli terms.
    w = D @ H
    k2 = (w**2) @ (p * (1 - p))
    k3 = (w**3) @ (p * (1 - p) * (1 - 2 * p))
    mean = prob @ est[:, b1]
    enumerated = (prob @ (est[:, b1] - mean) ** 3) / np.maximum(
        prob @ (est[:, b1] - mean) ** 2, 1e-300
    ) ** 1.5
    checks = {
        "per_state_linear_error": linear,
        "output_noise_error": output,
        "mean_minus_deterministic": float(np.abs(m.mean[stoch] - det[stoch]).max()),
        "gradient_formula_error": float(np.abs(m.gradient[b1] - g_a).max()),
        "cov_logit_error": float(np.abs(m.cov[b1, b1] - C).max()),
        "cov_kronecker_error": kron,
        "rank_st_sigmoid": rank(m.cov[stoch, stoch]),
        "rank_reinforce": rank(reinforce.cov[stoch, stoch]),
        "rank_bound": min(net.n_out, n),
        "walsh_bce_error": walsh_error,
        "skewness_error": float(np.abs(enumerated - k3 / k2**1.5).max()),
        "skewness_one_example": (k3 / k2**1.5).tolist(),
        "skewness_batch_12": (k3 / k2**1.5 / np.sqrt(12)).tolist(),
        "single_unit_skewness": ((1 - 2 * p) / np.sqrt(p * (1 - p))).tolist(),
        "p": p.tolist(),
    }
    run.json("checks.json", checks)
    return {"checks": checks, "cov": m.cov, "reinforce": reinforce.cov, "order": order}


def linear_share(net: gs.BinaryNetwork, x: Any, t: Any) -> float:
    """The fraction of ``st_sigmoid``'s logit variance that is linear in ``epsilon`` (the
    Walsh terms of one unit), over the coordinates."""
    hs, prob, est, p = states(net, x, t, "st_sigmoid")
    n = net.n_stochastic
    e = est[:, net.n_in * n : net.n_in * n + n]
    e = e - prob @ e
    eps = hs - p
    coef = ((prob[:, None] * eps).T @ e) / (p * (1 - p))[:, None]  # c_{j -> i}
    linear = ((coef**2) * (p * (1 - p))[:, None]).sum()
    return float(linear / (prob @ (e**2)).sum())


def loss_rows(n_nets: int) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(1)
    for loss in ("mse", "bce", "xent"):
        for k in range(n_nets):
            net = gs.BinaryNetwork.random((3, 4, 2), loss=loss, seed=100 + k)
            x = rng.normal(size=3)
            t = int(rng.integers(2)) if loss == "xent" else (
                rng.random(2) if loss == "bce" else rng.normal(size=2))  # fmt: skip
            cov = gs.estimator_moments(net, x, t, "st_sigmoid", full_cov=True).cov
            stoch = net.parameter_groups()["stochastic"]
            rows.append({"loss": loss, "network": k, "rank": rank(cov[stoch, stoch]),
                         "linear_share": linear_share(net, x, t)})  # fmt: skip
    return rows


def depth_rows(depths: Sequence[int], n_nets: int) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(2)
    for loss in ("mse", "bce"):
        for depth in depths:
            sizes = (4, *([3] * depth), 2)
            for k in range(n_nets):
                net = gs.BinaryNetwork.random(sizes, loss=loss, seed=200 + 10 * depth + k)
                X = rng.normal(size=(4, 4))
                T = rng.random((4, 2)) if loss == "bce" else rng.normal(size=(4, 2))
                for label, name, options in SPLIT_ESTIMATORS:
                    d = gs.noise_decomposition(net, X, T, name, **options)
                    shares = d.shares("stochastic")
                    row = {"loss": loss, "depth": depth, "network": k, "estimator": label}
                    row.update({f"share_layer{l}": np.nan for l in range(1, max(depths) + 1)})
                    row.update({f"share_{s}": float(v) for s, v in zip(d.sources, shares)})
                    rows.append(row)
    return rows


def training_rows(seed: int, steps: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    X, T = make_task(seed)
    seen: list[tuple[int, float, np.ndarray]] = []

    def record(theta: np.ndarray, k: int) -> None:
        seen.append((k, gs.expected_loss(gs.BinaryNetwork(TASK_SIZES, theta), X, T), theta.copy()))

    def grad(theta: np.ndarray, k: int) -> np.ndarray:
        return gs.exact_gradient(gs.BinaryNetwork(TASK_SIZES, theta), X, T)

    descend(grad, initial_params(seed, 0), TRAIN_LR, steps, record, max(1, steps // 100))
    losses = np.array([j for _, j, _ in seen])
    half = 0.5 * (losses[0] + final_value(losses))
    points = {"start": 0, "halfway": int(np.nonzero(losses <= half)[0][0]), "end": len(seen) - 1}
    rows = []
    by_point: dict[str, Any] = {}
    for point, i in points.items():
        net = gs.BinaryNetwork(TASK_SIZES, seen[i][2])
        for label, name, options in SPLIT_ESTIMATORS:
            d = gs.noise_decomposition(net, X, T, name, **options)
            row: dict[str, Any] = {"checkpoint": point, "step": seen[i][0],
                                   "objective": seen[i][1], "estimator": label}  # fmt: skip
            for group in ("all", "stochastic"):
                row[f"trace_{group}"] = float(d.traces(group).sum())
                for s, v in zip(d.sources, d.shares(group)):
                    row[f"{group}_share_{s}"] = float(v)
            rows.append(row)
            by_point[(point, label)] = d
    return rows, by_point


def lattice_figure(run: Any, plt: Any) -> None:
    """The 4 atoms of st_sigmoid's logit estimate for 2 units and 1 output: on a line for mse
    (rank 1 = n_out), spread in the plane for bce."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, loss, t in zip(axes, ("mse", "bce"), (0.3, 0.8)):
        net = gs.BinaryNetwork((2, 2, 1), [0.8, -0.5, 0.3, 0.9, 0.2, -0.4, 1.6, -1.2, 0.1],
                               loss=loss)  # fmt: skip
        x = np.array([1.0, -0.5])
        hs, prob, est, p = states(net, x, [t], "st_sigmoid")
        e = est[:, 4:6]
        ax.scatter(e[:, 0], e[:, 1], s=2000 * prob, alpha=0.6, label="atoms (area ∝ P)")
        for h, (u, v) in zip(hs, e):
            ax.annotate(f"h={int(h[0])}{int(h[1])}", (u, v), fontsize=8, xytext=(6, 6),
                        textcoords="offset points")  # fmt: skip
        m = gs.estimator_moments(net, x, [t], "st_sigmoid")
        ax.plot(*m.mean[4:6], "k+", ms=14, mew=2, label="E[g_hat] (= g_det for mse)")
        ax.plot(*m.gradient[4:6], "rx", ms=10, mew=2, label="exact gradient g")
        if loss == "mse":
            det = deterministic_gradient(net, x, [t])[4:6]
            W_o = net.layers()[-1][0]
            direction = np.diag(p * (1 - p)) @ W_o.T[:, 0]
            s = np.linspace(-1.2, 1.2, 2) * np.abs(e - det).max() / np.abs(direction).max()
            ax.plot(det[0] + s * direction[0], det[1] + s * direction[1], ":", color="grey",
                    label="g_det + D W_o^T span")  # fmt: skip
        ax.set_title(f"{loss}: st_sigmoid on (b_1[0], b_1[1]), p = {p[0]:.2f}, {p[1]:.2f}",
                     fontsize=9)  # fmt: skip
        ax.set_xlabel("estimate of dJ/da_1")
        ax.set_ylabel("estimate of dJ/da_2")
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, markerscale=0.4, loc="best")
    fig.suptitle("The law of st_sigmoid's estimate: 2^N atoms (one layer, 2 units, 1 output)",
                 fontsize=10)  # fmt: skip
    run.figure("lattice.png", fig)


def main(argv: Sequence[str] | None = None) -> Path:
    run = start("noise_form", __doc__.splitlines()[0], argv)
    n_nets = 2 if run.quick else 10
    depths = (1, 2) if run.quick else (1, 2, 3)
    steps = 40 if run.quick else 2000
    plt = pyplot()

    # --- the form on one layer ------------------------------------------------------------
    form = form_checks(run)
    c = form["checks"]
    run.section(
        "The form: one layer, mse, the (3, 4, 2) network",
        "Largest absolute deviations from the closed forms (the network's estimates are O(0.1-1)):",
    )
    formulas = (
        ("g_hat = g_det + D H epsilon (logits, every state)", "per_state_linear_error"),
        ("output noise r eps^T + W_o eps p^T + W_o (eps eps^T - D)", "output_noise_error"),
        ("E[g_hat] = g_det (stochastic layer)", "mean_minus_deterministic"),
        ("g = g_det - D diag(H) (p - 1/2)", "gradient_formula_error"),
        ("Cov = D H D H D (logits)", "cov_logit_error"),
        ("Cov = (D H D H D) (x) x~ x~^T (layer 1)", "cov_kronecker_error"),
        ("Walsh sum, same network with bce", "walsh_bce_error"),
        ("coordinate skewness from cumulants", "skewness_error"),
    )
    run.table([{"formula": f, "deviation": c[key]} for f, key in formulas], fmt=".2g")
    skew = ", ".join(f"{v:+.2f}" for v in c["skewness_one_example"])
    single = ", ".join(f"{v:+.2f}" for v in c["single_unit_skewness"])
    run.text(
        f"Rank of the layer-1 covariance: st_sigmoid {c['rank_st_sigmoid']} (bound "
        f"min(n_out, N) = {c['rank_bound']}), REINFORCE {c['rank_reinforce']}. The law is "
        f"16 atoms in a {c['rank_st_sigmoid']}-dimensional affine subspace. Skewness of "
        f"the logit coordinates for one example: {skew} (a single unit's epsilon has "
        f"(1 - 2p)/sqrt(p(1 - p)) = {single}); the mean of a batch of 12 examples divides "
        f"it by about sqrt(12) (third cumulants add), so the noise looks Gaussian only after "
        f"averaging over a batch."
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    order = form["order"]
    for ax, cov, title in zip(axes, (form["cov"], form["reinforce"]),
                              ("st_sigmoid", "REINFORCE (no baseline)")):  # fmt: skip
        block = cov[np.ix_(order, order)]
        lim = np.abs(block).max()
        im = ax.imshow(block, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{title}: rank {rank(block)}", fontsize=9)
        for k in range(1, 4):
            ax.axhline(4 * k - 0.5, color="k", lw=0.4)
            ax.axvline(4 * k - 0.5, color="k", lw=0.4)
        ax.set_xlabel("layer 1, unit by unit: (W_1[i, 0..2], b_1[i]) for i = 1..4", fontsize=8)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(
        "Exact covariance of layer 1's estimate, (3, 4, 2) mse network: st_sigmoid's is "
        "(D H D H D) (x) x~ x~^T",
        fontsize=10,
    )
    run.figure("covariance.png", fig)
    lattice_figure(run, plt)

    # --- loss -----------------------------------------------------------------------------
    l_rows = loss_rows(n_nets)
    run.csv("losses.csv", l_rows)
    run.section(
        "How the form changes with the loss (one layer, (3, 4, 2), st_sigmoid)",
        f"{n_nets} random networks per loss. `rank`: numerical rank of the layer-1 "
        "covariance (the mse bound is n_out = 2); `linear share`: the fraction of the logit "
        "variance in the Walsh terms of one unit (noise linear in epsilon; 1 for mse).",
    )
    run.table([
        {"loss": loss,
         "rank (min-max)": f"{min(r['rank'] for r in sel)}-{max(r['rank'] for r in sel)}",
         "linear share (min-max)": f"{min(r['linear_share'] for r in sel):.4f}-"
                                   f"{max(r['linear_share'] for r in sel):.4f}"}
        for loss in ("mse", "bce", "xent")
        for sel in [[r for r in l_rows if r["loss"] == loss]]
    ])  # fmt: skip

    # --- depth ----------------------------------------------------------------------------
    d_rows = depth_rows(depths, n_nets)
    run.csv("depth.csv", d_rows)
    run.section(
        "Where the noise comes from, by depth",
        f"Networks (4, 3 x depth, 2), {n_nets} per depth and loss, 4 examples each; the "
        "share of the stochastic layers' total variance caused by each layer's sampling "
        "(mean over networks; `gradstat.noise_decomposition`).",
    )
    table = []
    for loss in ("mse", "bce"):
        for depth in depths:
            for label, *_ in SPLIT_ESTIMATORS:
                sel = [
                    r
                    for r in d_rows
                    if (r["loss"], r["depth"], r["estimator"]) == (loss, depth, label)
                ]
                shares = " / ".join(f"{np.mean([r[f'share_layer{l}'] for r in sel]):.3f}"
                                    for l in range(1, depth + 1))  # fmt: skip
                table.append({"loss": loss, "depth": depth, "estimator": label,
                              "shares (layer 1 / ... / top)": shares})  # fmt: skip
    run.table(table)

    # --- training -------------------------------------------------------------------------
    t_rows, splits = training_rows(run.seed, steps)
    run.csv("training.csv", t_rows)
    run.section(
        "Along training (slow_training's task, exact-gradient Adam)",
        f"Seed {run.seed}'s task and first initialisation, {steps} steps at lr {TRAIN_LR}; "
        "the split of the whole batch estimate's variance (12 examples). `top share`: the "
        "top stochastic layer's share, over all parameters and over the stochastic layers.",
    )
    run.table([
        {"checkpoint": r["checkpoint"], "step": r["step"], "objective": r["objective"],
         "estimator": r["estimator"], "tr Var": r["trace_all"],
         "top share (all)": r["all_share_layer2"],
         "top share (stochastic)": r["stochastic_share_layer2"]}
        for r in t_rows
    ])  # fmt: skip
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    labels = [label for label, *_ in SPLIT_ESTIMATORS]
    for ax, point in zip(axes, ("start", "halfway", "end")):
        low = [splits[(point, lab)].shares("stochastic")[0] for lab in labels]
        top = [splits[(point, lab)].shares("stochastic")[1] for lab in labels]
        ax.bar(labels, low, color="C0", label="layer 1")
        ax.bar(labels, top, bottom=low, color="C1", label="layer 2 (top)")
        ax.set_title(f"{point}", fontsize=9)
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    axes[0].set_ylabel("share of the stochastic layers' variance")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=7, loc="upper right", ncol=2)
    fig.suptitle("Which layer's sampling causes the noise ((4, 3, 3, 2), 12 examples)", fontsize=10)
    run.figure("sources.png", fig)
    return run.finish("The form of straight-through's noise, and where the noise comes from")


if __name__ == "__main__":
    main()
