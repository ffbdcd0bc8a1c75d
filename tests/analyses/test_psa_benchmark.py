"""Smoke test of analyses/psa_benchmark.py (the PSA benchmark).

It runs in ``--quick`` mode into a temporary folder; the tests check a few key numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from analysis_scripts import load, read_csv, run_quick


def test_psa_benchmark_quick(tmp_path: Path) -> None:
    run_quick("psa_benchmark", tmp_path)
    rows = read_csv(tmp_path / "curves.csv")
    assert {r["layer"] for r in rows} == {"layer1", "layer2", "layer3", "output"}
    for r in rows:
        assert math.isfinite(float(r["rel_rmse"])) and float(r["rel_rmse"]) > 0
        assert -1.0 <= float(r["cos_proxy"]) <= 1.0
    # REINFORCE is unbiased: its relative RMSE falls like 1/sqrt(M).
    rein = {
        int(r["M"]): float(r["rel_rmse"])
        for r in rows
        if r["estimator"] == "reinforce" and r["layer"] == "layer1" and r["epoch"] == "0"
    }
    assert rein[1000] == pytest.approx(rein[1] / math.sqrt(1000), rel=1e-6)
    # PSA is unbiased on the top stochastic layer: its relative RMSE there falls like
    # 1/sqrt(M); below it PSA keeps a bias, so its error levels off.
    psa = {
        (r["layer"], int(r["M"])): float(r["rel_rmse"])
        for r in rows
        if r["estimator"] == "psa" and r["epoch"] == "0"
    }
    assert psa["layer3", 1000] == pytest.approx(psa["layer3", 1] / math.sqrt(1000), rel=1e-6)
    assert psa["layer1", 1000] > 1.5 * psa["layer1", 1] / math.sqrt(1000)
    mc = read_csv(tmp_path / "monte_carlo.csv")
    assert all(-1.0 <= float(r["mc_cos"]) <= 1.0 for r in mc)


def test_psa_data() -> None:
    """The two classes are drawn as described: class 0 below the cosine."""
    module = load("psa_benchmark")
    X, T = module.make_data(np.random.default_rng(3), 3)
    assert X.shape == (6, 2) and set(T[:, 0]) == {0.0, 1.0}
    assert np.all(X[3:, 1] < np.cos(X[3:, 0]))
