"""Why do binary stochastic units trained with sigmoid straight-through train slowly?

Question. Hinton's lecture 9c (2012) reports that a network of stochastic binary units,
trained by back-propagating as if each unit were logistic (``st_sigmoid``: surrogate
``dh/da = p (1 - p)``), "does worse on the training set and trains considerably slower"
than the same network of logistic units. Three reasons are usually given: (1) the
gradient estimate is noisy, (2) a binary stochastic network has less capacity than a
deterministic sigmoid network of the same shape, (3) the estimate is biased. This script
measures all three on the same small networks, and then asks whether the noise has a
specific form.

Setup. A ``(4, 3, 3, 2)`` network with the ``mse`` loss, a fixed batch of 12 inputs
``x ~ N(0, I)`` and targets from a random teacher: a deterministic sigmoid network of the
same shape (Gaussian parameters, scale 2), its outputs standardised per output so that the
best constant predictor has loss 1.0. Everything is seeded from ``--seed``.

* Training. From the same random initialisation (one per seed), Adam (beta 0.9/0.999) on
  the binary network with the exact gradient, with one draw per step of every registered
  estimator (``gradstat.estimate_from_noise`` with fresh noise from
  ``gradstat.sample_noise``), with REINFORCE also
  given a constant baseline (the exact objective at the latest evaluation: it does not
  depend on the sampled state, so the estimate stays unbiased), and with the exact mean
  ``E[g_hat]`` of ``st_sigmoid`` (its bias without its noise). The exact objective
  ``gradstat.expected_loss`` is recorded every few steps. Each method gets its best
  learning rate from a small grid (lowest final objective, the mean of the last 10% of
  evaluations, averaged over seeds). The reference level of a seed is 10% of the way from
  the exact-gradient run's final objective back up to its initial objective:
  ``level = J_final + 0.1 (J_0 - J_final)``; "steps to level" is the first evaluated step
  at or below it.
* Capacity. The best reachable exact expected loss of the binary network (exact gradient,
  Adam with a cosine-decayed learning rate, several random restarts) against a
  deterministic sigmoid network of the same shape (``h = sigmoid(a)`` at every layer; its
  forward pass and gradient are written below in NumPy and checked by finite differences)
  trained the same way. The binary optimum is split exactly into a fit term
  ``0.5 mean_x ||E[y|x] - t||^2`` and a noise term ``0.5 mean_x tr Var(y|x)``.
* Noise and bias. At three points of the exact-gradient run (start, first step halfway
  down, end) every estimator's exact moments: total variance, median per-coordinate SNR,
  relative bias, cosine, sign agreement, descent probability (``gradstat.analyze``).
* Form of the noise. ``g_hat = g + b + e`` exactly, with ``b = E[g_hat] - g`` the bias and
  ``e`` zero-mean noise whose covariance is enumerated exactly
  (``gradstat.estimator_moments(..., full_cov=True)``). Its eigen-spectrum gives the
  numerical rank (eigenvalues above ``1e-10`` times the largest), the fraction of the
  variance in the top 1/3/5 directions, the participation ratio ``(sum l)^2 / sum l^2``,
  and the alignment ``|cos|`` of the top eigenvectors with the exact gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import exact_variants, group_means, pyplot, start, t_interval

import gradstat as gs

SIZES = (4, 3, 3, 2)
BATCH = 12
TEACHER_SCALE = 2.0
LEVEL_FRACTION = 0.1
RANK_TOL = 1e-10
"""Numerical rank: eigenvalues above ``RANK_TOL`` times the largest one."""
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
MEAN_ST_SIGMOID = "st_sigmoid[exact mean]"
SIGMOID_ROW = "sigmoid network (own loss)"
REINFORCE_J = "reinforce[c=J]"


@dataclass(frozen=True)
class Config:
    seeds: int
    steps: int
    lrs: tuple[float, ...]
    every: int
    restarts: int
    capacity_steps: int
    capacity_lr: float
    cost_seeds: int
    cost_steps: int


FULL = Config(
    seeds=5,
    steps=2000,
    lrs=(0.01, 0.03, 0.1),
    every=10,
    restarts=6,
    capacity_steps=4000,
    capacity_lr=0.03,
    cost_seeds=20,
    cost_steps=1000,
)
QUICK = Config(
    seeds=1, steps=40, lrs=(0.03,), every=5, restarts=1, capacity_steps=60, capacity_lr=0.03,
    cost_seeds=2, cost_steps=20,
)  # fmt: skip


# ----------------------------------------------------------------------------------------
# The deterministic sigmoid network (same shape and parameter layout, h = sigmoid(a))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def unpack(theta: np.ndarray, sizes: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` per layer in SPEC order (``W`` of shape ``(fan_out, fan_in)``)."""
    out, off = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        W = theta[off : off + fan_in * fan_out].reshape(fan_out, fan_in)
        off += fan_in * fan_out
        out.append((W, theta[off : off + fan_out]))
        off += fan_out
    return out


def deterministic_output(theta: np.ndarray, sizes: Sequence[int], X: np.ndarray) -> np.ndarray:
    layers = unpack(theta, sizes)
    h = X
    for W, b in layers[:-1]:
        h = sigmoid(h @ W.T + b)
    W, b = layers[-1]
    return h @ W.T + b


def deterministic_loss_grad(
    theta: np.ndarray, sizes: Sequence[int], X: np.ndarray, T: np.ndarray
) -> tuple[float, np.ndarray]:
    """Batch-mean mse loss ``(1/B) sum_x 0.5 ||y(x) - t||^2`` of the sigmoid network, and its
    gradient by back-propagation, in SPEC parameter order."""
    layers = unpack(theta, sizes)
    hs = [X]
    for W, b in layers[:-1]:
        hs.append(sigmoid(hs[-1] @ W.T + b))
    W_o, b_o = layers[-1]
    B = X.shape[0]
    r = hs[-1] @ W_o.T + b_o - T
    loss = 0.5 * float(np.sum(r**2)) / B
    delta = r / B
    grads = [(delta.T @ hs[-1], delta.sum(axis=0))]
    back = delta @ W_o
    for l in range(len(layers) - 2, -1, -1):
        da = back * hs[l + 1] * (1.0 - hs[l + 1])
        grads.append((da.T @ hs[l], da.sum(axis=0)))
        back = da @ layers[l][0]
    grads.reverse()
    return loss, np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in grads])


def check_deterministic_gradient(X: np.ndarray, T: np.ndarray, seed: int) -> float:
    """Largest absolute error of the back-propagated gradient against central differences."""
    theta = gs.BinaryNetwork.random(SIZES, seed=seed).params.copy()
    _, g = deterministic_loss_grad(theta, SIZES, X, T)
    eps = 1e-6
    fd = np.empty_like(g)
    for j in range(g.size):
        e = np.zeros_like(theta)
        e[j] = eps
        up = deterministic_loss_grad(theta + e, SIZES, X, T)[0]
        down = deterministic_loss_grad(theta - e, SIZES, X, T)[0]
        fd[j] = (up - down) / (2 * eps)
    return float(np.max(np.abs(fd - g)))


# ----------------------------------------------------------------------------------------
# Task and training


def make_task(seed: int, sizes: tuple[int, ...] = SIZES) -> tuple[np.ndarray, np.ndarray]:
    """Fixed inputs and standardised targets of a random deterministic sigmoid teacher."""
    ss = np.random.SeedSequence([seed, 1])
    rng = np.random.default_rng(ss)
    X = rng.normal(size=(BATCH, sizes[0]))
    teacher = gs.BinaryNetwork.random(sizes, scale=TEACHER_SCALE, seed=rng.integers(2**31))
    Y = deterministic_output(teacher.params, sizes, X)
    T = (Y - Y.mean(axis=0)) / Y.std(axis=0)
    return X, T


def initial_params(seed: int, k: int, sizes: tuple[int, ...] = SIZES) -> np.ndarray:
    return gs.BinaryNetwork.random(sizes, seed=np.random.SeedSequence([seed, 2, k])).params.copy()


def descend(
    grad: Callable[[np.ndarray, int], np.ndarray],
    theta0: np.ndarray,
    lr: float,
    steps: int,
    record: Callable[[np.ndarray, int], None],
    every: int,
    cosine_decay: bool = False,
    optimizer: str = "adam",
) -> np.ndarray:
    """Adam (``optimizer="adam"``) or plain gradient descent as in the lecture
    (``"sgd"``) on ``theta``; ``record(theta, step)`` is called every ``every`` steps and
    at the end (step ``steps``)."""
    b1, b2 = ADAM_BETAS
    theta = theta0.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for k in range(steps):
        if k % every == 0:
            record(theta, k)
        g = grad(theta, k)
        rate = lr * (0.5 * (1 + np.cos(np.pi * k / steps)) if cosine_decay else 1.0)
        if optimizer == "sgd":
            theta = theta - rate * g
            continue
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - rate * (m / (1 - b1 ** (k + 1))) / (
            np.sqrt(v / (1 - b2 ** (k + 1))) + ADAM_EPS
        )
    record(theta, steps)
    return theta


def methods() -> list[str]:
    """Training methods: exact gradient, every registered estimator (one draw per step),
    REINFORCE with a constant baseline, and the exact mean of ``st_sigmoid``."""
    out = ["exact"]
    for name in gs.available_estimators():
        out.append(name)
        if name == "reinforce":
            out.append(REINFORCE_J)
    out.append(MEAN_ST_SIGMOID)
    return out


def train_binary(
    method: str,
    X: np.ndarray,
    T: np.ndarray,
    theta0: np.ndarray,
    lr: float,
    steps: int,
    every: int,
    noise_seed: Any,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Train the binary network; return evaluated steps, exact objectives, parameters."""
    rng = np.random.default_rng(noise_seed)
    steps_seen: list[int] = []
    losses: list[float] = []
    params: list[np.ndarray] = []

    def record(theta: np.ndarray, k: int) -> None:
        steps_seen.append(k)
        losses.append(gs.expected_loss(gs.BinaryNetwork(SIZES, theta), X, T))
        params.append(theta.copy())

    def grad(theta: np.ndarray, k: int) -> np.ndarray:
        net = gs.BinaryNetwork(SIZES, theta)
        if method == "exact":
            return gs.exact_gradient(net, X, T)
        if method == MEAN_ST_SIGMOID:
            return gs.estimator_moments(net, X, T, "st_sigmoid").mean
        if method == REINFORCE_J:
            u = gs.sample_noise(net, "reinforce", rng, n_examples=X.shape[0])
            return gs.estimate_from_noise(net, X, T, "reinforce", u, baseline=float(losses[-1]))
        u = gs.sample_noise(net, method, rng, n_examples=X.shape[0])
        return gs.estimate_from_noise(net, X, T, method, u)

    descend(grad, theta0, lr, steps, record, every)
    return np.array(steps_seen), np.array(losses), params


def train_deterministic(
    X: np.ndarray, T: np.ndarray, theta0: np.ndarray, lr: float, steps: int, every: int,
    cosine_decay: bool = False,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    steps_seen: list[int] = []
    losses: list[float] = []

    def record(theta: np.ndarray, k: int) -> None:
        steps_seen.append(k)
        losses.append(deterministic_loss_grad(theta, SIZES, X, T)[0])

    descend(
        lambda th, k: deterministic_loss_grad(th, SIZES, X, T)[1],
        theta0,
        lr,
        steps,
        record,
        every,
        cosine_decay,
    )
    return np.array(steps_seen), np.array(losses)


def final_value(losses: np.ndarray) -> float:
    """Mean of the last 10% of the evaluations (at least one)."""
    k = max(1, len(losses) // 10)
    return float(np.mean(losses[-k:]))


def steps_cell(hits: list[float], budget: int) -> str:
    """Median steps to the level over seeds (a seed that never reached it counts as more
    than the budget) and how many seeds reached it."""
    values = np.array([h if np.isfinite(h) else np.inf for h in hits])
    med = float(np.median(values))
    text = f"{med:.0f}" if np.isfinite(med) else f">{budget}"
    return f"{text} ({int(np.isfinite(values).sum())}/{values.size})"


def steps_to(steps: np.ndarray, losses: np.ndarray, level: float) -> float:
    hit = np.nonzero(losses <= level)[0]
    return float(steps[hit[0]]) if hit.size else float("nan")


# ----------------------------------------------------------------------------------------
# Capacity


def output_mean(net: gs.BinaryNetwork, X: np.ndarray) -> np.ndarray:
    """Exact ``E[y_k | x]`` per example (via the linear loss with one-hot targets)."""
    lin = gs.BinaryNetwork(net.sizes, net.params, loss="linear")
    n_out = net.n_out
    mean = np.empty((X.shape[0], n_out))
    for b, x in enumerate(X):
        for k in range(n_out):
            mean[b, k] = gs.expected_loss(lin, x, np.eye(n_out)[k])
    return mean


def capacity(run: Any, cfg: Config, X: np.ndarray, T: np.ndarray) -> dict[str, Any]:
    rows = []
    best_binary: tuple[float, np.ndarray] | None = None
    every = max(1, cfg.capacity_steps // 20)
    for k in range(cfg.restarts):
        theta0 = initial_params(run.seed, 1000 + k)
        holder: list[np.ndarray] = []

        def record(theta: np.ndarray, step: int, holder: list[np.ndarray] = holder) -> None:
            holder[:] = [theta.copy()]

        def grad(theta: np.ndarray, step: int) -> np.ndarray:
            return gs.exact_gradient(gs.BinaryNetwork(SIZES, theta), X, T)

        theta = descend(grad, theta0, cfg.capacity_lr, cfg.capacity_steps, record, every, True)
        binary = gs.expected_loss(gs.BinaryNetwork(SIZES, theta), X, T)
        _, det_losses = train_deterministic(
            X, T, theta0, cfg.capacity_lr, cfg.capacity_steps, every, cosine_decay=True
        )
        rows.append({"restart": k, "binary_expected_loss": binary, "sigmoid_loss": det_losses[-1]})
        if best_binary is None or binary < best_binary[0]:
            best_binary = (binary, theta)
    assert best_binary is not None
    best, theta = best_binary
    net = gs.BinaryNetwork(SIZES, theta)
    mean_y = output_mean(net, X)
    fit = 0.5 * float(np.mean(np.sum((mean_y - T) ** 2, axis=1)))
    p_stats = unit_probabilities(theta, X)
    return {
        "rows": rows,
        "binary_best": best,
        "binary_median": float(np.median([r["binary_expected_loss"] for r in rows])),
        "sigmoid_best": float(min(r["sigmoid_loss"] for r in rows)),
        "sigmoid_median": float(np.median([r["sigmoid_loss"] for r in rows])),
        "fit": fit,
        "noise": best - fit,
        "saturated": p_stats,
    }


def unit_probabilities(theta: np.ndarray, X: np.ndarray) -> float:
    """Fraction of first-layer firing probabilities within 0.05 of 0 or 1 (saturation)."""
    W, b = unpack(theta, SIZES)[0]
    p = sigmoid(X @ W.T + b)
    return float(np.mean((p < 0.05) | (p > 0.95)))


# ----------------------------------------------------------------------------------------
# The three costs, with intervals over seeds

COST_SHAPES: tuple[tuple[int, ...], ...] = ((4, 3, 3, 2), (4, 8, 2))
"""Networks of the three-costs study: the main two-layer network and one wider layer."""
COST_LRS = {"sgd": 0.1, "adam": 0.03}
"""Learning rate per optimiser in the three-costs study, the same for every method."""
COST_METHODS = ("exact", MEAN_ST_SIGMOID, "st_sigmoid", SIGMOID_ROW)
COSTS = ("bias", "noise", "capacity")


def cost_run(
    method: str,
    sizes: tuple[int, ...],
    X: np.ndarray,
    T: np.ndarray,
    theta0: np.ndarray,
    optimizer: str,
    steps: int,
    every: int,
    noise_seed: Any,
) -> float:
    """Final objective of one run (mean of the last 10% of evaluations): the binary
    network's exact expected loss, or the sigmoid network's own loss."""
    rng = np.random.default_rng(noise_seed)
    losses: list[float] = []

    def record(theta: np.ndarray, k: int) -> None:
        if method == SIGMOID_ROW:
            losses.append(deterministic_loss_grad(theta, sizes, X, T)[0])
        else:
            losses.append(gs.expected_loss(gs.BinaryNetwork(sizes, theta), X, T))

    def grad(theta: np.ndarray, k: int) -> np.ndarray:
        if method == SIGMOID_ROW:
            return deterministic_loss_grad(theta, sizes, X, T)[1]
        net = gs.BinaryNetwork(sizes, theta)
        if method == "exact":
            return gs.exact_gradient(net, X, T)
        if method == MEAN_ST_SIGMOID:
            return gs.estimator_moments(net, X, T, "st_sigmoid").mean
        u = gs.sample_noise(net, method, rng, n_examples=X.shape[0])
        return gs.estimate_from_noise(net, X, T, method, u)

    descend(grad, theta0, COST_LRS[optimizer], steps, record, every, optimizer=optimizer)
    return final_value(np.array(losses))


def three_costs(run: Any, cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per seed, from the same initialisation and the same budget: ``bias = F(exact mean of
    st_sigmoid) - F(exact)``, ``noise = F(st_sigmoid) - F(exact mean)``, ``capacity =
    F(exact) - F(sigmoid network)``, with ``F`` the final objective; so the three add up
    to ``F(st_sigmoid) - F(sigmoid network)``. Per-seed rows and, per network and
    optimiser, each cost's mean with a 95% t-interval over seeds."""
    rows = []
    for sizes in COST_SHAPES:
        X, T = make_task(run.seed, sizes)
        for optimizer in COST_LRS:
            for s in range(cfg.cost_seeds):
                theta0 = initial_params(run.seed, 500 + s, sizes)
                noise = np.random.SeedSequence([run.seed, 4, s])
                final = {
                    m: cost_run(
                        m, sizes, X, T, theta0, optimizer, cfg.cost_steps, cfg.every, noise
                    )  # fmt: skip
                    for m in COST_METHODS
                }
                rows.append(
                    {
                        "network": "-".join(map(str, sizes)),
                        "optimizer": optimizer,
                        "seed": s,
                        **{f"final {m}": v for m, v in final.items()},
                        "bias": final[MEAN_ST_SIGMOID] - final["exact"],
                        "noise": final["st_sigmoid"] - final[MEAN_ST_SIGMOID],
                        "capacity": final["exact"] - final[SIGMOID_ROW],
                    }
                )
    summary = []
    for sizes in COST_SHAPES:
        for optimizer in COST_LRS:
            net = "-".join(map(str, sizes))
            sel = [r for r in rows if r["network"] == net and r["optimizer"] == optimizer]
            row: dict[str, Any] = {"network": net, "optimizer": optimizer, "seeds": len(sel)}
            for cost in COSTS:
                mean, half = t_interval([r[cost] for r in sel])
                row[cost] = mean
                row[f"{cost} 95% half-width"] = half
            summary.append(row)
    return rows, summary


# ----------------------------------------------------------------------------------------
# Noise and bias


def variants() -> list[tuple[str, str, dict[str, Any]]]:
    """Every registered estimator whose covariance is exact on this network (plus REINFORCE
    with each baseline)."""
    return exact_variants(len(SIZES) - 2)


def spectrum(cov: np.ndarray, g: np.ndarray) -> dict[str, float]:
    """Eigen-structure of a noise covariance and its alignment with the gradient ``g``."""
    lam, vec = np.linalg.eigh(cov)
    order = np.argsort(lam)[::-1]
    lam, vec = np.maximum(lam[order], 0.0), vec[:, order]
    total = lam.sum()
    out: dict[str, float] = {}
    if total <= 0:
        return {
            "rank": 0.0,
            "top1": np.nan,
            "top3": np.nan,
            "top5": np.nan,
            "participation": 0.0,
            "cos_top1_g": np.nan,
            "max_cos_top3_g": np.nan,
            "g_in_top5": np.nan,
        }
    ghat = g / np.linalg.norm(g)
    cos = np.abs(vec.T @ ghat)
    out["rank"] = float(np.sum(lam > RANK_TOL * lam[0]))
    for k in (1, 3, 5):
        out[f"top{k}"] = float(lam[:k].sum() / total)
    out["participation"] = float(total**2 / np.sum(lam**2))
    out["cos_top1_g"] = float(cos[0])
    out["max_cos_top3_g"] = float(cos[:3].max())
    out["g_in_top5"] = float(np.sum(cos[:5] ** 2))
    return out


def per_example_rank(
    net: gs.BinaryNetwork, X: np.ndarray, T: np.ndarray, name: str, options: dict[str, Any]
) -> float:
    ranks = []
    for x, t in zip(X, T):
        cov = gs.estimator_moments(net, x, t, name, full_cov=True, **options).cov
        lam = np.linalg.eigvalsh(cov)
        ranks.append(np.sum(lam > RANK_TOL * max(lam.max(), 0.0)) if lam.max() > 0 else 0)
    return float(np.mean(ranks))


# ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> Path:
    run = start("slow_training", __doc__.splitlines()[0], argv)
    cfg = QUICK if run.quick else FULL
    X, T = make_task(run.seed)
    fd_error = check_deterministic_gradient(X, T, run.seed)
    assert fd_error < 1e-7, f"deterministic gradient disagrees with finite differences: {fd_error}"

    # --- training --------------------------------------------------------------------
    curves: dict[tuple[str, float, int], tuple[np.ndarray, np.ndarray]] = {}
    exact_params: dict[tuple[float, int], list[np.ndarray]] = {}
    for method in methods():
        for lr in cfg.lrs:
            for s in range(cfg.seeds):
                theta0 = initial_params(run.seed, s)
                noise = np.random.SeedSequence([run.seed, 3, s, methods().index(method)])
                steps, losses, params = train_binary(
                    method, X, T, theta0, lr, cfg.steps, cfg.every, noise
                )
                curves[(method, lr, s)] = (steps, losses)
                if method == "exact":
                    exact_params[(lr, s)] = params
    det_curves = {
        (lr, s): train_deterministic(X, T, initial_params(run.seed, s), lr, cfg.steps, cfg.every)
        for lr in cfg.lrs
        for s in range(cfg.seeds)
    }

    def best_lr(finals: Callable[[float], list[float]]) -> float:
        return min(cfg.lrs, key=lambda lr: float(np.mean(finals(lr))))

    chosen = {
        m: best_lr(lambda lr, m=m: [final_value(curves[(m, lr, s)][1]) for s in range(cfg.seeds)])
        for m in methods()
    }
    chosen_det = best_lr(lambda lr: [final_value(det_curves[(lr, s)][1]) for s in range(cfg.seeds)])
    lr_exact = chosen["exact"]
    levels = []
    for s in range(cfg.seeds):
        losses = curves[("exact", lr_exact, s)][1]
        j_final = final_value(losses)
        levels.append(j_final + LEVEL_FRACTION * (losses[0] - j_final))

    all_rows = []
    for (m, lr, s), (steps, losses) in curves.items():
        all_rows.append(
            {
                "method": m,
                "lr": lr,
                "seed": s,
                "chosen_lr": lr == chosen[m],
                "initial": losses[0],
                "final": final_value(losses),
                "best": float(losses.min()),
                "steps_to_level": steps_to(steps, losses, levels[s]),
                "level": levels[s],
            }
        )
    for (lr, s), (steps, losses) in det_curves.items():
        all_rows.append(
            {
                "method": SIGMOID_ROW,
                "lr": lr,
                "seed": s,
                "chosen_lr": lr == chosen_det,
                "initial": losses[0],
                "final": final_value(losses),
                "best": float(losses.min()),
                "steps_to_level": steps_to(steps, losses, levels[s]),
                "level": levels[s],
            }
        )
    run.csv("training_runs.csv", all_rows)
    summary_rows = []
    for m in [*methods(), SIGMOID_ROW]:
        lr = chosen_det if m == SIGMOID_ROW else chosen[m]
        sel = [r for r in all_rows if r["method"] == m and r["lr"] == lr]
        row: dict[str, Any] = {
            "method": m,
            "lr (final)": lr,
            "final J mean": float(np.mean([r["final"] for r in sel])),
            "final J min": float(np.min([r["final"] for r in sel])),
        }
        for lr_k in cfg.lrs:
            hits = [r["steps_to_level"] for r in all_rows if r["method"] == m and r["lr"] == lr_k]
            row[f"steps @ lr {lr_k}"] = steps_cell(hits, cfg.steps)
        summary_rows.append(row)
    run.csv("training_summary.csv", summary_rows)

    # --- capacity ---------------------------------------------------------------------
    cap = capacity(run, cfg, X, T)
    run.csv("capacity.csv", cap["rows"])
    cost_rows, cost_summary = three_costs(run, cfg)
    run.csv("three_costs_runs.csv", cost_rows)
    run.csv("three_costs.csv", cost_summary)

    # --- noise and bias along the exact run ---------------------------------------------
    checkpoints: dict[str, list[np.ndarray]] = {"start": [], "halfway": [], "end": []}
    for s in range(cfg.seeds):
        steps, losses = curves[("exact", lr_exact, s)]
        params = exact_params[(lr_exact, s)]
        half = 0.5 * (losses[0] + final_value(losses))
        checkpoints["start"].append(params[0])
        below = np.nonzero(losses <= half)[0]
        checkpoints["halfway"].append(params[int(below[0]) if below.size else -1])
        checkpoints["end"].append(params[-1])
    metric_rows = []
    for point, thetas in checkpoints.items():
        for label, name, options in variants():
            for s, theta in enumerate(thetas):
                r = gs.analyze(gs.BinaryNetwork(SIZES, theta), X, T, name, **options)
                gnorm2 = float(r.gradient @ r.gradient)
                metric_rows.append(
                    {
                        "checkpoint": point,
                        "estimator": label,
                        "seed": s,
                        "grad_norm_sq": gnorm2,
                        "total_variance": r.total_variance,
                        "noise_to_signal": r.total_variance / gnorm2,
                        "median_snr": r.median_snr,
                        "relative_bias": r.relative_bias,
                        "cosine": r.cosine,
                        "sign_agreement": r.sign_agreement,
                        "descent_probability": r.descent_probability,
                        "stochastic_relative_bias": r.stochastic.relative_bias,
                        "stochastic_cosine": r.stochastic.cosine,
                        "stochastic_median_snr": r.stochastic.median_snr,
                    }
                )
    run.csv("noise_bias.csv", metric_rows)
    keys = [
        "grad_norm_sq",
        "total_variance",
        "noise_to_signal",
        "median_snr",
        "relative_bias",
        "stochastic_relative_bias",
        "cosine",
        "stochastic_cosine",
        "sign_agreement",
        "descent_probability",
    ]
    labels = [label for label, _, _ in variants()]
    metric_means = group_means(metric_rows, {"checkpoint": list(checkpoints), "estimator": labels},
                               keys)  # fmt: skip
    run.csv("noise_bias_means.csv", metric_means)

    # --- the form of the noise -----------------------------------------------------------
    spec_rows = []
    decomposition_error = 0.0
    cumulative: dict[str, np.ndarray] = {}
    for point in ("start", "end"):
        for label, name, options in variants():
            for s, theta in enumerate(checkpoints[point]):
                net = gs.BinaryNetwork(SIZES, theta)
                mom = gs.estimator_moments(net, X, T, name, full_cov=True, **options)
                res = gs.analyze(net, X, T, name, **options)
                cov = mom.cov
                decomposition_error = max(
                    decomposition_error,
                    float(np.max(np.abs(np.diag(cov) - mom.var)) / max(mom.var.max(), 1e-300)),
                    abs(float(mom.bias @ mom.bias + np.trace(cov)) - res.mse) / res.mse,
                )
                row = {
                    "checkpoint": point,
                    "estimator": label,
                    "seed": s,
                    "total_variance": float(np.trace(cov)),
                    **spectrum(cov, mom.gradient),
                }
                if s == 0:
                    row["per_example_rank"] = per_example_rank(net, X, T, name, options)
                    lam = np.sort(np.maximum(np.linalg.eigvalsh(cov), 0))[::-1]
                    if point == "start":
                        cumulative[label] = np.cumsum(lam) / max(lam.sum(), 1e-300)
                else:
                    row["per_example_rank"] = float("nan")
                spec_rows.append(row)
    run.csv("noise_spectrum.csv", spec_rows)
    spec_keys = [
        "rank",
        "per_example_rank",
        "top1",
        "top3",
        "top5",
        "participation",
        "cos_top1_g",
        "max_cos_top3_g",
        "g_in_top5",
    ]
    spec_means = group_means(spec_rows, {"checkpoint": ["start", "end"], "estimator": labels},
                             spec_keys)  # fmt: skip
    run.csv("noise_spectrum_means.csv", spec_means)

    # --- report --------------------------------------------------------------------------
    n_params = gs.BinaryNetwork(SIZES).n_params
    run.section(
        "Setup",
        f"Network {SIZES} ({n_params} parameters, {sum(SIZES[1:-1])} stochastic units), mse "
        f"loss, batch of {BATCH} inputs x ~ N(0, I) with standardised targets of a random "
        f"deterministic sigmoid teacher (scale {TEACHER_SCALE}); the constant predictor's "
        f"loss is 1.0. {cfg.seeds} seed(s) (initialisations and noise), Adam for "
        f"{cfg.steps} steps, learning rate per method the best of {list(cfg.lrs)}, exact "
        f"objective recorded every {cfg.every} steps. Deterministic network gradient vs "
        f"central differences: max error {fd_error:.1e}.",
    )
    run.section(
        "Training speed",
        f"Reference level per seed: the exact-gradient run's final objective plus "
        f"{LEVEL_FRACTION:.0%} of its total decrease (mean level over seeds "
        f"{np.mean(levels):.4f}). `lr (final)`: the learning rate with the lowest mean final "
        f"objective, at which `final J` (mean of the last 10% of evaluations) is given. "
        f"`steps @ lr`: median over seeds of the first evaluated step at or below the level "
        f"(a seed that never reaches it counts as more than the {cfg.steps}-step budget), "
        f"and how many seeds reached it. "
        f"`{REINFORCE_J}` uses the latest exact objective as a constant baseline; "
        f"`{MEAN_ST_SIGMOID}` steps along the exact mean of st_sigmoid (bias, no noise). The "
        f"sigmoid network row is the deterministic network on its own loss.",
    )
    run.table(summary_rows)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for m in methods():
        steps = curves[(m, chosen[m], 0)][0]
        med = np.median([curves[(m, chosen[m], s)][1] for s in range(cfg.seeds)], axis=0)
        ax.plot(steps, med, label=f"{m} (lr {chosen[m]})")
    steps, _ = det_curves[(chosen_det, 0)]
    med = np.median([det_curves[(chosen_det, s)][1] for s in range(cfg.seeds)], axis=0)
    ax.plot(steps, med, "k--", label=f"sigmoid network, own loss (lr {chosen_det})")
    ax.axhline(np.mean(levels), color="grey", lw=0.8, ls=":", label="reference level (mean)")
    ax.axhline(cap["binary_best"], color="red", lw=0.8, ls="-.", label="best binary J (capacity)")
    ax.set_yscale("log")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("exact expected loss J (median over seeds)")
    ax.set_title(f"{SIZES} mse: training with each estimator")
    ax.legend(fontsize=7)
    run.figure("training_curves.png", fig)

    run.section(
        "Capacity",
        f"Exact-gradient Adam (lr {cfg.capacity_lr}, cosine decay, {cfg.capacity_steps} "
        f"steps), {cfg.restarts} random restart(s), for the binary network (exact expected "
        f"loss) and the deterministic sigmoid network of the same shape (its loss).",
    )
    run.table(
        [
            {
                "network": "stochastic binary",
                "best": cap["binary_best"],
                "median": cap["binary_median"],
            },
            {
                "network": "deterministic sigmoid",
                "best": cap["sigmoid_best"],
                "median": cap["sigmoid_median"],
            },
        ]
    )
    run.text(
        f"At the best binary solution J = {cap['binary_best']:.4f} = fit "
        f"0.5 mean ||E[y|x] - t||^2 = {cap['fit']:.4f} + output noise 0.5 mean tr Var(y|x) = "
        f"{cap['noise']:.4f}; {cap['saturated']:.0%} of its first-layer firing probabilities "
        f"are within 0.05 of 0 or 1."
    )
    run.section(
        "The three costs, with intervals",
        f"For each network and optimiser (plain SGD as in the lecture, lr "
        f"{COST_LRS['sgd']}; Adam, lr {COST_LRS['adam']}), {cfg.cost_seeds} seeds, each a "
        f"random initialisation shared by four runs of {cfg.cost_steps} steps: the exact "
        f"gradient, the exact mean of st_sigmoid (its bias without its noise), sampled "
        f"st_sigmoid (bias and noise), and the deterministic sigmoid network on its own loss. "
        f"With F the final objective: bias = F(mean) - F(exact), noise = F(st_sigmoid) - "
        f"F(mean), capacity = F(exact) - F(sigmoid network); the three add up to what "
        f"sampled st_sigmoid loses against the sigmoid network. Means over seeds with the "
        f"half-widths of 95% t-intervals (a cost whose interval contains 0 is not resolved "
        f"at this number of seeds).",
    )
    run.table(cost_summary)
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(COSTS)
    for j, cost in enumerate(COSTS):
        ax.bar(
            np.arange(len(cost_summary)) + (j - 1) * width,
            [r[cost] for r in cost_summary],
            width,
            yerr=[r[f"{cost} 95% half-width"] for r in cost_summary],
            capsize=3,
            label=cost,
        )
    ax.set_xticks(
        np.arange(len(cost_summary)),
        [f"{r['network']}\n{r['optimizer']}" for r in cost_summary],
    )
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_ylabel("increase of the final objective")
    ax.set_title(f"The three costs of st_sigmoid (95% intervals, {cfg.cost_seeds} seeds)")
    ax.legend()
    run.figure("three_costs.png", fig)
    run.section(
        "Noise and bias along the exact-gradient run",
        "Means over seeds, all parameters except the `stochastic_` columns, which are over "
        "the stochastic layers alone (the unbiased output layer dominates the all-parameter "
        "relative bias); `noise_to_signal` = total variance / ||g||^2 of the batch estimate "
        "(one draw per example).",
    )
    run.table(metric_means)
    run.section(
        "The form of the noise",
        f"g_hat = g + b + e exactly, b = E[g_hat] - g, Cov(e) enumerated. Checks: diag(Cov) "
        f"equals the enumerated variance and ||b||^2 + tr Cov equals analyze's MSE to "
        f"{decomposition_error:.1e} (relative). `rank`: eigenvalues above {RANK_TOL:g} x the "
        f"largest (of {n_params}); `per_example_rank`: the same for one example's estimate "
        f"(seed 0, mean over examples); `topk`: fraction of tr Cov in the top k eigen-"
        f"directions; `participation` = (sum l)^2 / sum l^2; `cos_top1_g`: |cos| of the top "
        f"eigenvector with g (a random direction in {n_params} dimensions gives about "
        f"{np.sqrt(2 / (np.pi * n_params)):.2f}); `g_in_top5`: fraction of ||g||^2 in the "
        f"top-5 eigenspace (random: {5 / n_params:.2f}). Means over seeds.",
    )
    run.table(spec_means)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, cum in cumulative.items():
        ax.plot(np.arange(1, cum.size + 1), cum, marker=".", label=label)
    ax.set_xlabel("number of top eigen-directions k")
    ax.set_ylabel("fraction of noise variance")
    ax.set_title("Noise covariance spectrum at the start (seed 0)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    run.figure("noise_spectrum.png", fig)
    run.json("capacity.json", {k: v for k, v in cap.items() if k != "rows"})
    return run.finish("Why binary stochastic units train slowly with sigmoid straight-through")


if __name__ == "__main__":
    main()
