"""Smoke test of analyses/digits.py (every estimator on scikit-learn's digits).

It runs in ``--quick`` mode into a temporary folder (skipped without scikit-learn); the
tests check the key numbers against independent computations.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from analysis_scripts import load, read_csv, run_quick


def test_digits_quick(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    summary = run_quick("digits", tmp_path)
    assert "Training by each estimator" in summary.read_text()
    ref = read_csv(tmp_path / "reference_trajectory.csv")
    assert float(ref[-1]["train_loss"]) < float(ref[0]["train_loss"])
    metrics = read_csv(tmp_path / "bias_and_noise.csv")
    assert {r["checkpoint"] for r in metrics} == {"start", "halfway", "end"}
    for r in metrics:
        assert float(r["total_variance"]) >= 0.0
        assert -1.0 - 1e-12 <= float(r["cosine"]) <= 1.0 + 1e-12
        if r["estimator"].startswith("reinforce"):
            assert float(r["relative_bias"]) < 1e-9  # unbiased, exactly
    training = read_csv(tmp_path / "training_by_estimator.csv")
    assert training[0]["method"] == "exact gradient"
    for r in training:
        assert math.isfinite(float(r["held_out_loss"]))
        assert 0.0 <= float(r["held_out_accuracy"]) <= 1.0


def test_held_out_accuracy_uses_the_exact_expected_logits() -> None:
    """``E[y | x] = W_o p + b_o`` against a brute-force sum over the hidden states."""
    module = load("digits")
    rng = np.random.default_rng(0)
    n = 4
    theta = rng.normal(0.0, 1.0, 75 * n + 10)
    X = rng.uniform(0.0, 1.0, (7, 64))
    W1, b1 = theta[: 64 * n].reshape(n, 64), theta[64 * n : 65 * n]
    Wo, bo = theta[65 * n : 75 * n].reshape(10, n), theta[75 * n :]
    expected = np.zeros((7, 10))
    for x_i, x in enumerate(X):
        p = 1.0 / (1.0 + np.exp(-(W1 @ x + b1)))
        for h in itertools.product((0.0, 1.0), repeat=n):
            h = np.array(h)
            expected[x_i] += np.prod(np.where(h == 1.0, p, 1.0 - p)) * (Wo @ h + bo)
    y = np.argmax(expected, axis=1)
    _, accuracy = module.held_out(theta, X, y)
    assert accuracy == 1.0
    _, accuracy = module.held_out(theta, X, (y + 1) % 10)
    assert accuracy == 0.0


def test_t_interval() -> None:
    mean, half = load("common").t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302652729749464 * 1.0 / math.sqrt(3), rel=1e-12)
