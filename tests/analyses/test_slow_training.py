"""Smoke test of analyses/slow_training.py: training, noise bias and spectrum, capacity.

It runs in ``--quick`` mode into a temporary folder; the tests check a few key numbers.
"""

from __future__ import annotations

import json
import math

import numpy as np
from analysis_scripts import load, read_csv, run_quick


def test_slow_training_quick(tmp_path):
    summary = run_quick("slow_training", tmp_path)
    assert "Capacity" in summary.read_text()
    training = read_csv(tmp_path / "training_summary.csv")
    finals = {r["method"]: float(r["final J mean"]) for r in training}
    assert {"exact", "st_sigmoid", "sigmoid network (own loss)"} <= set(finals)
    assert all(math.isfinite(v) and 0.0 <= v < 10.0 for v in finals.values())
    runs = read_csv(tmp_path / "training_runs.csv")
    exact = [r for r in runs if r["method"] == "exact"]
    assert all(float(r["final"]) < float(r["initial"]) for r in exact)
    noise = read_csv(tmp_path / "noise_bias_means.csv")
    for r in noise:
        assert float(r["total_variance"]) >= 0.0 and -1.0 <= float(r["cosine"]) <= 1.0 + 1e-12
        if r["estimator"].startswith("reinforce"):
            assert float(r["relative_bias"]) < 1e-9  # unbiased, exactly
    spectrum = read_csv(tmp_path / "noise_spectrum_means.csv")
    for r in spectrum:
        top = [float(r[f"top{k}"]) for k in (1, 3, 5)]
        assert 0.0 < top[0] <= top[1] <= top[2] <= 1.0 + 1e-12
        assert 1.0 <= float(r["rank"]) <= 35.0
    cap = json.loads((tmp_path / "capacity.json").read_text())
    assert math.isclose(cap["fit"] + cap["noise"], cap["binary_best"], rel_tol=1e-12)
    assert cap["noise"] >= -1e-12
    costs = read_csv(tmp_path / "three_costs_runs.csv")
    assert {(r["network"], r["optimizer"]) for r in costs} == {
        (net, opt) for net in ("4-3-3-2", "4-8-2") for opt in ("sgd", "adam")
    }
    for r in costs:
        parts = sum(float(r[c]) for c in ("bias", "noise", "capacity"))
        total = float(r["final st_sigmoid"]) - float(r["final sigmoid network (own loss)"])
        assert math.isclose(parts, total, rel_tol=1e-9, abs_tol=1e-12)
    summary_costs = read_csv(tmp_path / "three_costs.csv")
    assert all(int(r["seeds"]) == 2 for r in summary_costs)


def test_plain_sgd_steps_along_the_gradient() -> None:
    module = load("slow_training")
    seen: list[tuple[int, float]] = []
    theta = module.descend(
        lambda th, k: 2.0 * th,
        np.array([1.0]),
        0.25,
        3,
        lambda th, k: seen.append((k, th[0])),
        1,
        optimizer="sgd",
    )
    assert theta[0] == 0.125  # each step halves theta: theta - 0.25 * 2 theta
    assert seen == [(0, 1.0), (1, 0.5), (2, 0.25), (3, 0.125)]
