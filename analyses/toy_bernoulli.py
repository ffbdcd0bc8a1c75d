"""The one-unit toy problems of REBAR and RELAX: bias, variance and training by each estimator.

Question. On ``min_p E_{b ~ Bernoulli(p)} (b - t)^2`` with ``t`` just below 1/2 (``t = 0.45``
in REBAR, Tucker et al. 2017, arXiv:1703.07370; ``t = 0.499`` in RELAX, Grathwohl et al.
2018, arXiv:1711.00123) the optimum is ``p -> 0``, but the gradient signal is tiny. How
biased, how noisy and how often of the right sign is each estimator, and where does SGD
with it actually take ``p``?

Setup. In gradstat the toy is the network ``sizes = (0, 1, 1)`` with parameters
``[a, 1.0, 0.0]`` (``b_1 = a`` the logit, ``W_o = 1``, ``b_o = 0``) and the ``mse`` loss
with target ``t``, so ``C = 0.5 (h - t)^2``. The true toy is twice this: every gradient,
mean and bias doubles and every variance quadruples, while relative metrics, signs and
the SGD trajectories (with the learning rate halved) are unchanged. Everything below is
about the stochastic coordinate ``b_1 = a``.

With ``p = sigmoid(a)``, ``f1 = (1 - t)^2 / 2``, ``f0 = t^2 / 2``, the exact gradient is
``g = p (1 - p) (f1 - f0) = p (1 - p) (1 - 2t) / 2``. Each estimator takes two values, so
its moments have closed forms (derived in :func:`hand_moments`, checked against gradstat's
enumeration to 1e-12). Then SGD on ``a`` from ``a = 0``, one draw per step through
:func:`gradstat.estimate_from_noise`, against SGD with the exact gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import pyplot, start
from scipy.optimize import brentq
from scipy.special import expit

import gradstat as gs

TARGETS = (0.45, 0.499)
TOLERANCE = 1e-12
CONSTANT_BASELINE = 0.125
"""A fixed REINFORCE baseline: ``f(1/2)`` at ``t = 1/2``, between ``f0`` and ``f1``."""

LEARNING_RATE = 1.0


def toy_network(a: float) -> gs.BinaryNetwork:
    """The one-unit toy: ``b_1 = a``, ``W_o = 1``, ``b_o = 0``, ``C = 0.5 (h - t)^2``."""
    return gs.BinaryNetwork((0, 1, 1), [a, 1.0, 0.0], loss="mse")


def variants() -> list[tuple[str, str, dict[str, Any]]]:
    """``(label, estimator, options)`` for every registered estimator (defaults), and
    REINFORCE with each baseline."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for name in gs.available_estimators():
        if name == "reinforce":
            for baseline in ("none", CONSTANT_BASELINE, "mean", "optimal"):
                label = f"reinforce[{baseline if isinstance(baseline, str) else 'c=0.125'}]"
                out.append((label, name, {"baseline": baseline}))
        else:
            out.append((name, name, {}))
    return out


def exact_gradient_by_hand(a: float, t: float) -> float:
    p = expit(a)
    return p * (1.0 - p) * (1.0 - 2.0 * t) / 2.0


def expected_loss_by_hand(p: np.ndarray | float, t: float) -> np.ndarray | float:
    """``J = p f1 + (1 - p) f0``; its infimum ``f0 = t^2 / 2`` is approached as ``p -> 0``."""
    return p * (1.0 - t) ** 2 / 2.0 + (1.0 - p) * t**2 / 2.0


def hand_moments(name: str, options: dict[str, Any], a: float, t: float) -> dict[str, float] | None:
    """Closed-form ``E[g_hat]``, ``Var[g_hat]`` and ``P(sign g_hat = sign g)`` on ``b_1``.

    Each estimator takes value ``v1`` with probability ``q`` and ``v0`` otherwise, so
    ``mean = q v1 + (1-q) v0``, ``var = q (1-q) (v1 - v0)^2``; the simplified forms are:

    * ``st``: ``g_hat = (h - t) W_o``: ``v1 = 1 - t``, ``v0 = -t``, ``q = p``;
      mean ``p - t``, var ``p (1 - p)``.
    * ``st_sigmoid``: ``g_hat = (h - t) p (1-p)``: mean ``(p - t) p (1-p)``, var
      ``p^3 (1-p)^3``; bias ``p (1-p) (p - 1/2)``.
    * ``sts``: ``s = sqrt(p)``, ``b ~ Bernoulli(s)``, ``h = b s``, surrogate
      ``b s (1-p)/2``: ``v1 = (s - t) s (1-p)/2``, ``v0 = 0``, ``q = s``; mean
      ``p (s - t)(1-p)/2``, var ``s (1-s) v1^2``.
    * ``reinforce`` with constant ``c``: ``g_hat = (C(h) - c)(h - p)``: ``v1 = (f1 - c)(1-p)``,
      ``v0 = -(f0 - c) p``; mean ``g`` and var ``p (1-p) ((1-p) f1 + p f0 - c)^2``. The mean
      baseline is ``c = p f1 + (1-p) f0``; the optimal one ``E[s^2 C]/E[s^2]`` is
      ``(1-p) f1 + p f0`` and gives zero variance (``v1 = v0 = g``).

    A value of exactly 0 never agrees in sign with ``g != 0``. Returns None for an
    estimator without a derivation here.
    """
    p = expit(a)
    f1, f0 = (1.0 - t) ** 2 / 2.0, t**2 / 2.0
    g = p * (1.0 - p) * (f1 - f0)
    if name == "st":
        q, v1, v0 = p, 1.0 - t, -t
        mean, var = p - t, p * (1.0 - p)
    elif name == "st_sigmoid":
        s = p * (1.0 - p)
        q, v1, v0 = p, (1.0 - t) * s, -t * s
        mean, var = (p - t) * s, s**3
    elif name == "sts":
        s = np.sqrt(p)
        q, v1, v0 = s, (s - t) * s * (1.0 - p) / 2.0, 0.0
        mean, var = p * (s - t) * (1.0 - p) / 2.0, s * (1.0 - s) * v1**2
    elif name == "reinforce":
        baseline = options.get("baseline", "none")
        if baseline == "optimal":
            q, v1, v0 = p, g, g
            mean, var = g, 0.0
        else:
            c = {"none": 0.0, "mean": p * f1 + (1.0 - p) * f0}.get(baseline, baseline)
            q, v1, v0 = p, (f1 - c) * (1.0 - p), -(f0 - c) * p
            mean, var = g, p * (1.0 - p) * ((1.0 - p) * f1 + p * f0 - c) ** 2
    else:
        return None
    sign = q * float(np.sign(v1) == np.sign(g)) + (1.0 - q) * float(np.sign(v0) == np.sign(g))
    return {"mean": float(mean), "var": float(var), "sign_agreement": sign, "gradient": g}


def sweep(logits: np.ndarray, t: float) -> list[dict[str, Any]]:
    """Engine and hand-derived moments on ``b_1`` for every variant and logit."""
    rows = []
    x, target = np.zeros(0), np.array([t])
    for a in logits:
        net = toy_network(float(a))
        g = gs.exact_gradient(net, x, target)[0]
        g_hand = exact_gradient_by_hand(float(a), t)
        if abs(g - g_hand) > TOLERANCE:
            raise AssertionError(f"exact gradient at a={a}, t={t}: gradstat {g!r}, hand {g_hand!r}")
        for label, name, options in variants():
            r = gs.analyze(net, x, target, name, seed=0, **options)
            row: dict[str, Any] = {
                "t": t,
                "a": float(a),
                "p": float(expit(a)),
                "estimator": label,
                "method": r.method,
                "gradient": float(g),
                "mean": float(r.mean[0]),
                "bias": float(r.mean[0] - g),
                "var": float(r.var[0]),
                "sign_agreement": float(r.sign_probability[0]),
            }
            hand = hand_moments(name, options, float(a), t)
            if hand is None:
                row.update(hand_mean=np.nan, hand_var=np.nan, hand_sign=np.nan, max_diff=np.nan)
            else:
                diffs = {k: abs(row[k] - hand[k]) for k in ("mean", "var", "sign_agreement")}
                if max(diffs.values()) > TOLERANCE:
                    raise AssertionError(
                        f"{label} at a={a}, t={t}: gradstat and the closed form differ by "
                        f"{diffs} (tolerance {TOLERANCE}); engine {row}, hand {hand}"
                    )
                row.update(
                    hand_mean=hand["mean"],
                    hand_var=hand["var"],
                    hand_sign=hand["sign_agreement"],
                    max_diff=max(diffs.values()),
                )
            rows.append(row)
    return rows


def one_draw(name: str, options: dict[str, Any], a: float, t: float, u: np.ndarray | None) -> float:
    """One estimate on ``b_1`` from the uniform ``u`` (shape (1, 1))."""
    net = toy_network(a)
    x, target = np.zeros(0), np.array([t])
    if name == "exact":
        return float(gs.exact_gradient(net, x, target)[0])
    return float(gs.estimate_from_noise(net, x, target, name, u, **options)[0])


def train(
    name: str, options: dict[str, Any], t: float, n_steps: int, seed: int, every: int
) -> list[tuple[int, float]]:
    """SGD on ``a`` from 0 with step ``LEARNING_RATE``; ``(step, a)`` every ``every`` steps."""
    rng = np.random.default_rng(seed)
    a = 0.0
    trace = []
    for step in range(n_steps + 1):
        if step % every == 0 or step == n_steps:
            trace.append((step, a))
        if step == n_steps:
            break
        u = None if name == "exact" else gs.sample_noise(toy_network(a), name, rng, **options)
        a -= LEARNING_RATE * one_draw(name, options, a, t, u)
    return trace


def stationary_p(label: str, t: float, rows: list[dict[str, Any]]) -> float:
    """``p`` where the estimator's mean on ``b_1`` changes sign, or nan if it never does.

    The sign change is bracketed on the sweep's grid and refined by Brent's method on the
    engine's exact mean (Monte Carlo estimators: the grid's linear interpolation).
    """
    _, name, options = next(v for v in variants() if v[0] == label)
    a = np.array([r["a"] for r in rows])
    m = np.array([r["mean"] for r in rows])
    for i in range(len(a) - 1):
        if m[i] == 0.0:
            return float(expit(a[i]))
        if m[i] * m[i + 1] < 0:
            if rows[i]["method"] != "exact":
                return float(expit(a[i] - m[i] * (a[i + 1] - a[i]) / (m[i + 1] - m[i])))

            def mean(x: float) -> float:
                net = toy_network(x)
                return float(gs.analyze(net, np.zeros(0), np.array([t]), name, **options).mean[0])

            return float(expit(brentq(mean, a[i], a[i + 1], xtol=1e-12)))
    return float("nan")


def main(argv: Sequence[str] | None = None) -> Path:
    run = start("toy_bernoulli", __doc__.splitlines()[0], argv)
    logits = np.linspace(-6.0, 6.0, 7 if run.quick else 49)
    n_steps, n_seeds, every = (40, 2, 1) if run.quick else (2000, 5, 10)
    labels = [label for label, _, _ in variants()]

    run.section(
        "Setup",
        f"""
The toy `E (b - t)^2`, `b ~ Bernoulli(sigmoid(a))`, for t in {list(TARGETS)} (t = 0.45:
REBAR, Tucker et al. 2017; t = 0.499: RELAX, Grathwohl et al. 2018). In gradstat:
`sizes = (0, 1, 1)`, `params = [a, 1.0, 0.0]`, `loss = "mse"`, so `C = 0.5 (h - t)^2`,
**half the true toy**: the true toy's gradients, means and biases are twice the numbers
below and its variances four times; relative metrics and signs are the same. All numbers
are on the stochastic coordinate `b_1 = a`. Exact gradient
`g = p (1 - p) (1 - 2t) / 2 > 0` for t < 1/2: the objective always decreases as p -> 0.
Estimators: every registered one with default options ({", ".join(labels)}); REINFORCE with
no baseline, the constant c = {CONSTANT_BASELINE}, the exact mean E[C] and the optimal
`E[s^2 C]/E[s^2]`. {len(logits)} logits in [-6, 6].
""",
    )

    # ---- exact moments, checked against closed forms -------------------------------------
    moment_rows: list[dict[str, Any]] = []
    for t in TARGETS:
        moment_rows += sweep(logits, t)
    run.csv("moments.csv", moment_rows)
    checked = [r for r in moment_rows if not np.isnan(r["max_diff"])]
    worst = max(r["max_diff"] for r in checked)
    unchecked = sorted({r["estimator"] for r in moment_rows if np.isnan(r["max_diff"])})
    run.section(
        "Closed forms against the engine",
        f"Mean, variance and sign agreement of {len({r['estimator'] for r in checked})} "
        f"estimator variants at {len(logits)} logits x {len(TARGETS)} targets were derived by "
        f"hand (see `hand_moments`) and agree with `gradstat.analyze` to a largest absolute "
        f"difference of {worst:.2e} (tolerance {TOLERANCE:g}; the script stops otherwise)."
        + (
            f" Without a hand derivation (engine only): {', '.join(unchecked)}."
            if unchecked
            else ""
        ),
    )
    run.json("check.json", {"max_abs_difference": worst, "n_checked": len(checked)})

    stationary: dict[tuple[str, float], float] = {}
    show = [a for a in (-4.0, -2.0, 0.0, 2.0, 4.0) if np.any(np.isclose(logits, a))]
    for t in TARGETS:
        table = []
        for label in labels:
            rows = [r for r in moment_rows if r["t"] == t and r["estimator"] == label]
            entry: dict[str, Any] = {"estimator": label}
            for a in show:
                r = next(r for r in rows if np.isclose(r["a"], a))
                entry[f"rel. bias a={a:g}"] = r["bias"] / abs(r["gradient"])
            for a in show:
                r = next(r for r in rows if np.isclose(r["a"], a))
                entry[f"sign a={a:g}"] = r["sign_agreement"]
            stationary[label, t] = stationary_p(label, t, rows)
            entry["E[g_hat]=0 at p"] = stationary[label, t]
            table.append(entry)
        run.section(
            f"t = {t}: relative bias and sign agreement",
            "rel. bias is (E[g_hat] - g)/abs(g); sign is P(sign g_hat = sign g) (a draw of exactly "
            "0 counts as a disagreement). The last column is the p at which the estimator's "
            "mean changes sign (the stationary point of its expected update; nan: none in "
            "[-6, 6]); the exact gradient has none, its infimum is at p -> 0.",
        )
        run.table(table, fmt=".3g")

    plt = pyplot()
    fig, axes = plt.subplots(len(TARGETS), 3, figsize=(15, 4.2 * len(TARGETS)), squeeze=False)
    for i, t in enumerate(TARGETS):
        for label in labels:
            rows = [r for r in moment_rows if r["t"] == t and r["estimator"] == label]
            a = [r["a"] for r in rows]
            axes[i, 0].plot(a, [r["mean"] for r in rows], label=label)
            axes[i, 1].semilogy(a, [max(r["var"], 1e-30) for r in rows], label=label)
            axes[i, 2].plot(a, [r["sign_agreement"] for r in rows], label=label)
        g = [exact_gradient_by_hand(x, t) for x in logits]
        axes[i, 0].plot(logits, g, "k--", lw=2, label="exact g")
        axes[i, 0].set_yscale("symlog", linthresh=1e-7)
        axes[i, 0].set_title(f"t = {t}: E[g_hat] on b_1 (symlog)")
        axes[i, 1].set_title(f"t = {t}: Var[g_hat] (optimal baseline: 0, not shown)")
        axes[i, 1].set_ylim(1e-12, 1)
        axes[i, 2].set_title(f"t = {t}: P(sign g_hat = sign g)")
        axes[i, 2].text(
            0.02, 0.9, "st, st_sigmoid, reinforce[none]: = p (coincide);\n"
            "constant, mean, optimal baselines: 1", transform=axes[i, 2].transAxes, fontsize=7,
        )  # fmt: skip
        for ax in axes[i]:
            ax.set_xlabel("logit a")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    run.figure("moments.png", fig)

    # ---- training -------------------------------------------------------------------------
    train_rows: list[dict[str, Any]] = []
    summary_rows = []
    runs = [("exact", "exact", {})] + variants()
    for t in TARGETS:
        for label, name, options in runs:
            finals, objectives = [], []
            for seed in range(n_seeds):
                trace = train(name, options, t, n_steps, run.seed * 1000 + seed, every)
                for step, a in trace:
                    p = float(expit(a))
                    train_rows.append(
                        {"t": t, "estimator": label, "seed": seed, "step": step, "a": a,
                         "p": p, "objective": float(expected_loss_by_hand(p, t))}
                    )  # fmt: skip
                tail = [expit(a) for step, a in trace if step >= 0.9 * n_steps]
                finals.append(float(np.mean(tail)))
                objectives.append(float(expected_loss_by_hand(expit(trace[-1][1]), t)))
            summary_rows.append(
                {
                    "t": t,
                    "estimator": label,
                    "p (last 10%, mean over seeds)": float(np.mean(finals)),
                    "sd over seeds": float(np.std(finals)),
                    "J final": float(np.mean(objectives)),
                    "J final - inf J": float(np.mean(objectives)) - t**2 / 2,
                    "J(start) - inf J": float(expected_loss_by_hand(0.5, t)) - t**2 / 2,
                }
            )
    # Spot check of the closed-form objective against the engine at the final points.
    for row in train_rows[-5:]:
        J = gs.expected_loss(toy_network(row["a"]), np.zeros(0), np.array([row["t"]]))
        if abs(J - row["objective"]) > TOLERANCE:
            raise AssertionError(f"objective: gradstat {J!r}, closed form {row['objective']!r}")
    run.csv("training.csv", train_rows)
    run.csv("training_summary.csv", summary_rows)
    run.section(
        "Training",
        f"SGD on the logit a from a = 0 (p = 0.5), step size {LEARNING_RATE}, {n_steps} steps, "
        f"one draw per step (`gradstat.estimate_from_noise` with the seed's uniforms, the same "
        f"uniforms for every estimator), {n_seeds} seeds; 'exact' uses the exact gradient. "
        f"p is averaged over the last 10% of the steps and then over seeds. The objective "
        f"J = p (1-t)^2/2 + (1-p) t^2/2 (gradstat's half-scale) has infimum t^2/2 at p -> 0.",
    )
    run.table(summary_rows, fmt=".4g")

    fig, axes = plt.subplots(1, len(TARGETS), figsize=(7 * len(TARGETS), 4.5), squeeze=False)
    for i, t in enumerate(TARGETS):
        ax = axes[0, i]
        for label, _, _ in runs:
            rows = [r for r in train_rows if r["t"] == t and r["estimator"] == label]
            steps = sorted({r["step"] for r in rows})
            p = np.array([[r["p"] for r in rows if r["seed"] == s] for s in range(n_seeds)])
            style = {"color": "k", "lw": 2.5} if label == "exact" else {}
            ax.plot(steps, p.mean(axis=0), label=label, **style)
            ax.fill_between(steps, p.min(axis=0), p.max(axis=0), alpha=0.12, **style)
        ax.axhline(t, color="grey", ls=":", label=f"p = t = {t}")
        ax.set_title(f"t = {t}: p = sigmoid(a) during SGD (mean, min-max over seeds)")
        ax.set_xlabel("step")
        ax.set_ylabel("p")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    run.figure("training.png", fig)

    by = {(r["t"], r["estimator"]): r["p (last 10%, mean over seeds)"] for r in summary_rows}

    def sd_end(t: float) -> str:
        row = [r for r in summary_rows if r["t"] == t and r["estimator"] == "reinforce[none]"]
        return f"{row[0]['sd over seeds']:.2g}" if row else "n/a"

    def p_end(t: float, label: str) -> str:
        return f"{by[(t, label)]:.3g}" if (t, label) in by else "n/a"

    sentences = [
        f"For t < 1/2 the exact gradient p (1-p)(1-2t)/2 is positive at every a, so gradient "
        f"descent drives p -> 0: exact-gradient SGD ends at p = {p_end(0.45, 'exact')} "
        f"(t = 0.45) and {p_end(0.499, 'exact')} (t = 0.499, where the signal is 1/50 as "
        f"large). The means of straight-through, p - t (`st`) and (p - t) p (1-p) "
        f"(`st_sigmoid`), vanish at p = t instead (found: {stationary['st', 0.45]:.4g} and "
        f"{stationary['st_sigmoid', 0.45]:.4g} at t = 0.45) and point the wrong way for every "
        f"p < t (a draw has the right sign only when h = 1, probability p); SGD with them "
        f"settles near p = t: "
        f"{p_end(0.45, 'st')} and {p_end(0.45, 'st_sigmoid')} at t = 0.45, "
        f"{p_end(0.499, 'st')} and {p_end(0.499, 'st_sigmoid')} at t = 0.499.",
        f"STS's mean vanishes at sqrt(p) = t, p = t^2 (found {stationary['sts', 0.45]:.4g} at "
        f"t = 0.45); SGD with it ends at p = {p_end(0.45, 'sts')}.",
        "At that point every STS draw is exactly 0 (b = 0, or b = 1 with sqrt(p) - t = 0), "
        "so the wrong fixed point is absorbing.",
        f"REINFORCE is unbiased with every baseline: without one, SGD ends at "
        f"p = {p_end(0.45, 'reinforce[none]')} at t = 0.45 but is far noisier at t = 0.499 "
        f"(p = {p_end(0.499, 'reinforce[none]')}, sd over seeds {sd_end(0.499)}), where "
        f"the signal is tiny against its noise; any constant between f0 and f1 makes every "
        f"draw of the right sign, and the optimal constant (1-p) f1 + p f0 makes it exact "
        f"(zero variance) in this one-unit problem; these runs stay close to the exact one.",
    ]
    run.section("Finding", " ".join(sentences))
    return run.finish("Toy Bernoulli problems (REBAR t = 0.45, RELAX t = 0.499)")


if __name__ == "__main__":
    main()
