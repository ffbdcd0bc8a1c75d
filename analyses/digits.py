"""Every estimator on a real data set: scikit-learn's handwritten digits.

Question. The other analyses use small synthetic networks. Do their conclusions hold on
real data, at a size where the exact gradient still enumerates every hidden state? How
biased and how noisy is each estimator along a real training trajectory, and how well
does a classifier trained by each estimator generalise?

Data. scikit-learn's bundled digits (1,797 greyscale 8x8 images, ten classes; nothing to
download), pixels scaled to [0, 1], shuffled with the seed and split into a training set
and a held-out set.

Model. A ``(64, N, 10)`` network with one layer of ``N = 16`` stochastic binary units and
the ``xent`` loss (SPEC section 1): ``E[C]`` is the expected cross-entropy over the
``2^16`` hidden states of each image. Its exact gradient over the whole training set
enumerates ``n_train x 2^16`` states. The held-out accuracy is that of the expected
logits ``E[y | x] = W_o p(x) + b_o``, exact because the output layer is linear in ``h``.

* Reference trajectory: Adam on the exact full-batch gradient (``gradstat.exact_gradient``)
  from a seeded initialisation, with the exact training objective
  (``gradstat.expected_loss``) and the held-out loss and accuracy recorded along it.
* Exact bias and noise along it: at the start, halfway and the end of that trajectory,
  every estimator with exact moments on one stochastic layer (``gradstat.analyze``, method
  exact) on a fixed sample of training images: relative bias and cosine (all parameters
  and the stochastic layer alone), total variance, sign agreement.
* Training by each estimator: Adam on minibatches, one draw of the estimator per step
  (``gradstat.sample_gradients`` with a seed per step), for every estimator and for the
  exact minibatch gradient, several seeds each; the held-out expected loss and accuracy at
  the end, with 95% t-intervals over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import exact_variants, pyplot, start, t_interval

import gradstat as gs

N_UNITS = 16
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
EXACT = "exact gradient"


@dataclass(frozen=True)
class Config:
    n_units: int
    n_train: int
    ref_steps: int
    ref_lr: float
    record_every: int
    n_probe: int
    train_steps: int
    batch: int
    train_lr: float
    seeds: int


FULL = Config(N_UNITS, 500, 40, 0.05, 5, 16, 300, 32, 0.02, 5)
QUICK = Config(8, 60, 4, 0.05, 2, 3, 10, 16, 0.02, 2)
QUICK_VARIANTS = ("st", "st_sigmoid", "reinforce[mean]", "disarm")
"""The estimators of the smoke test (the full run has every one with exact moments)."""


def load_digits(seed: int, n_train: int) -> tuple[np.ndarray, ...]:
    """Digits scaled to [0, 1], shuffled with ``seed``: ``X_train, y_train, X_test, y_test``."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit(
            "analyses/digits.py needs scikit-learn for its bundled digits data set: "
            "pip install scikit-learn"
        ) from exc
    data = sk_load_digits()
    order = np.random.default_rng(seed).permutation(len(data.target))
    X = data.data[order] / 16.0
    y = data.target[order].astype(np.int64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def initial_params(n_units: int, seed: int) -> np.ndarray:
    """Gaussian weights scaled by fan-in, zero biases, in gradstat's parameter order."""
    rng = np.random.default_rng([seed, 1])
    W1 = rng.normal(0.0, 1.0 / np.sqrt(64), (n_units, 64))
    Wo = rng.normal(0.0, 1.0 / np.sqrt(n_units), (10, n_units))
    return np.concatenate([W1.ravel(), np.zeros(n_units), Wo.ravel(), np.zeros(10)])


def network(theta: np.ndarray) -> gs.BinaryNetwork:
    n_units = (theta.size - 10) // 75
    return gs.BinaryNetwork((64, n_units, 10), theta, loss="xent")


def held_out(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Exact held-out expected loss, and the accuracy of the expected logits."""
    net = network(theta)
    n = net.sizes[1]
    W1, b1 = theta[: 64 * n].reshape(n, 64), theta[64 * n : 65 * n]
    Wo, bo = theta[65 * n : 75 * n].reshape(10, n), theta[75 * n :]
    p = 1.0 / (1.0 + np.exp(-(X @ W1.T + b1)))
    accuracy = float(np.mean(np.argmax(p @ Wo.T + bo, axis=1) == y))
    return gs.expected_loss(net, X, y), accuracy


class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction, on a flat parameter vector."""

    def __init__(self, theta: np.ndarray, lr: float) -> None:
        self.theta = theta.copy()
        self.lr = lr
        self.m = np.zeros_like(theta)
        self.v = np.zeros_like(theta)
        self.k = 0

    def step(self, grad: np.ndarray) -> None:
        b1, b2 = ADAM_BETAS
        self.k += 1
        self.m = b1 * self.m + (1 - b1) * grad
        self.v = b2 * self.v + (1 - b2) * grad**2
        m_hat = self.m / (1 - b1**self.k)
        v_hat = self.v / (1 - b2**self.k)
        self.theta -= self.lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS)


def variants(quick: bool = False) -> list[tuple[str, str, dict[str, Any]]]:
    """Every registered estimator with exact moments on one stochastic layer (a few of
    them in ``quick`` mode)."""
    return [v for v in exact_variants(1) if not quick or v[0] in QUICK_VARIANTS]


def reference_trajectory(
    cfg: Config, theta0: np.ndarray, data: tuple[np.ndarray, ...]
) -> tuple[list[dict[str, float]], dict[str, np.ndarray]]:
    """Adam on the exact full-batch gradient; rows of the record and three checkpoints."""
    Xtr, ytr, Xte, yte = data
    opt = Adam(theta0, cfg.ref_lr)
    rows = []
    checkpoints = {"start": theta0.copy()}
    for k in range(cfg.ref_steps + 1):
        if k % cfg.record_every == 0 or k == cfg.ref_steps:
            loss, acc = held_out(opt.theta, Xte, yte)
            rows.append(
                {
                    "step": k,
                    "train_loss": gs.expected_loss(network(opt.theta), Xtr, ytr),
                    "held_out_loss": loss,
                    "held_out_accuracy": acc,
                }
            )
        if k == cfg.ref_steps // 2:
            checkpoints["halfway"] = opt.theta.copy()
        if k < cfg.ref_steps:
            opt.step(gs.exact_gradient(network(opt.theta), Xtr, ytr))
    checkpoints["end"] = opt.theta.copy()
    return rows, checkpoints


def bias_and_noise(
    checkpoints: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, quick: bool,
    skipped: dict[str, str],
) -> list[dict[str, Any]]:  # fmt: skip
    """Every estimator's exact metrics at each checkpoint, on the probe images; those
    whose noise has too many states to enumerate go into ``skipped`` with the reason."""
    rows = []
    for point, theta in checkpoints.items():
        net = network(theta)
        for label, name, options in variants(quick):
            try:
                res = gs.analyze(net, X, y, name, method="exact", **options)
            except ValueError as exc:  # more noise states than an enumeration affords
                skipped[label] = str(exc).split(". ")[0]
                continue
            rows.append(
                {
                    "checkpoint": point,
                    "estimator": label,
                    "relative_bias": res.overall.relative_bias,
                    "relative_bias_stochastic": res.stochastic.relative_bias,
                    "cosine": res.overall.cosine,
                    "cosine_stochastic": res.stochastic.cosine,
                    "total_variance": res.overall.total_variance,
                    "sign_agreement": res.overall.sign_agreement,
                }
            )
    return rows


def train_by(
    cfg: Config,
    label: str,
    name: str | None,
    options: dict[str, Any],
    theta0: np.ndarray,
    data: tuple[np.ndarray, ...],
    seed: int,
) -> tuple[float, float]:
    """Minibatch Adam with one draw of ``name`` per step (the exact minibatch gradient when
    ``name`` is None); the final held-out loss and accuracy."""
    Xtr, ytr, Xte, yte = data
    seeds = np.random.SeedSequence([seed, sum(map(ord, label))])
    batches, draws = seeds.spawn(2)
    rng = np.random.default_rng(batches)
    opt = Adam(theta0, cfg.train_lr)
    for step_seed in draws.spawn(cfg.train_steps):
        idx = rng.choice(len(ytr), cfg.batch, replace=False)
        net = network(opt.theta)
        if name is None:
            grad = gs.exact_gradient(net, Xtr[idx], ytr[idx])
        else:
            grad = gs.sample_gradients(net, Xtr[idx], ytr[idx], name, 1, seed=step_seed,
                                       **options)[0]  # fmt: skip
        opt.step(grad)
    return held_out(opt.theta, Xte, yte)


def bias_cosine_figure(
    plt: Any, metric_rows: list[dict[str, Any]], labels: list[str], points: list[str]
) -> Any:
    """Relative bias on the stochastic layer (log scale) and cosine, per estimator and
    checkpoint."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, key, title in (
        (
            axes[0],
            "relative_bias_stochastic",
            "relative bias ||E g_hat - g|| / ||g||, stochastic layer",
        ),
        (axes[1], "cosine", "cosine with the exact gradient (all parameters)"),
    ):
        for j, point in enumerate(points):
            by_label = {r["estimator"]: r[key] for r in metric_rows if r["checkpoint"] == point}
            vals = [float(by_label[lab]) for lab in labels]
            if key.startswith("relative_bias"):  # exact zeros drawn at the rounding floor
                vals = [max(v, 1e-17) for v in vals]
            ax.bar(np.arange(len(labels)) + (j - 1) * 0.27, vals, width=0.27, label=point)
        ax.set_xticks(np.arange(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("||E g_hat - g|| / ||g|| (unbiased: rounding level)")
    axes[1].axhline(0.0, color="k", lw=0.6)
    fig.legend(*axes[0].get_legend_handles_labels(), title="checkpoint", loc="upper center",
               ncol=len(points), bbox_to_anchor=(0.5, 1.08))  # fmt: skip
    return fig


def main(argv: Sequence[str] | None = None) -> Path:
    run = start("digits", __doc__.splitlines()[0], argv)
    cfg = QUICK if run.quick else FULL
    data = load_digits(run.seed, cfg.n_train)
    Xtr, ytr, Xte, yte = data
    theta0 = initial_params(cfg.n_units, run.seed)

    ref_rows, checkpoints = reference_trajectory(cfg, theta0, data)
    run.csv("reference_trajectory.csv", ref_rows)

    probe = np.random.default_rng([run.seed, 2]).choice(len(ytr), cfg.n_probe, replace=False)
    skipped: dict[str, str] = {}
    metric_rows = bias_and_noise(checkpoints, Xtr[probe], ytr[probe], run.quick, skipped)
    run.csv("bias_and_noise.csv", metric_rows)

    train_rows = []
    finals: dict[str, list[tuple[float, float]]] = {}
    methods = [(EXACT, None, {}), *variants(run.quick)]
    for label, name, options in methods:
        finals[label] = [
            train_by(
                cfg,
                label,
                name,
                options,
                initial_params(cfg.n_units, run.seed + s),
                data,
                run.seed + s,
            )  # fmt: skip
            for s in range(cfg.seeds)
        ]
        loss_mean, loss_half = t_interval([f[0] for f in finals[label]])
        acc_mean, acc_half = t_interval([f[1] for f in finals[label]])
        train_rows.append(
            {
                "method": label,
                "held_out_loss": loss_mean,
                "loss_95ci_half_width": loss_half,
                "held_out_accuracy": acc_mean,
                "accuracy_95ci_half_width": acc_half,
            }
        )
    run.csv("training_by_estimator.csv", train_rows)

    n_params = network(theta0).n_params
    run.section(
        "Setup",
        f"Digits: {len(ytr)} training and {len(yte)} held-out images; network (64, "
        f"{cfg.n_units}, 10), xent, {n_params} parameters, 2^{cfg.n_units} hidden states per "
        f"image. Reference: {cfg.ref_steps} Adam steps (lr {cfg.ref_lr}) on the exact "
        f"full-batch gradient. Exact metrics on {cfg.n_probe} fixed training images. "
        f"Training by each estimator: {cfg.train_steps} Adam steps (lr {cfg.train_lr}) on "
        f"minibatches of {cfg.batch}, {cfg.seeds} seeds, 95% t-intervals over seeds.",
    )
    run.section("Reference trajectory (exact full-batch gradient)")
    run.table(ref_rows)
    run.section("Exact bias and noise along the trajectory")
    run.table(metric_rows)
    for label, why in skipped.items():
        run.text(f"`{label}` has no exact row: {why}.")
    run.section("Training by each estimator: held-out loss and accuracy")
    run.table(train_rows)

    plt = pyplot()
    labels = [lab for lab, _, _ in variants(run.quick) if lab not in skipped]
    run.figure("bias_cosine.png", bias_cosine_figure(plt, metric_rows, labels, list(checkpoints)))

    fig, ax = plt.subplots(figsize=(7, 0.32 * len(train_rows) + 1.2))
    ys = np.arange(len(train_rows))[::-1]
    ax.errorbar(
        [r["held_out_accuracy"] for r in train_rows],
        ys,
        xerr=[r["accuracy_95ci_half_width"] for r in train_rows],
        fmt="o",
        capsize=3,
    )
    ax.set_yticks(ys, [r["method"] for r in train_rows], fontsize=8)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(
        f"held-out accuracy after {cfg.train_steps} steps (95% interval, {cfg.seeds} seeds)"
    )
    run.figure("held_out_accuracy.png", fig)
    return run.finish("Every estimator on scikit-learn's digits")


if __name__ == "__main__":
    main()
