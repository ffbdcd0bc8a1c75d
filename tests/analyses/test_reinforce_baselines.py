"""Smoke test of analyses/reinforce_baselines.py (variance of REINFORCE with several baselines).

It runs in ``--quick`` mode into a temporary folder; the tests check a few key numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from analysis_scripts import load, read_csv, run_quick


def test_reinforce_baselines_quick(tmp_path: Path) -> None:
    run_quick("reinforce_baselines", tmp_path)
    rows = read_csv(tmp_path / "networks.csv")
    networks = {r["network"] for r in rows}
    assert len(networks) == 3
    for net in networks:
        var = {r["baseline"]: float(r["total_variance"]) for r in rows if r["network"] == net}
        assert all(math.isfinite(v) and v >= 0 for v in var.values())
        assert var["optimal"] <= var["none"]
        assert var["optimal"] <= var["best per-example constant"] * (1 + 1e-9)
        assert var["best shared constant"] <= min(var["none"], var["c=0.5"], var["c=1"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    removed = summary["median_removed"]
    assert removed["none"] == 0.0
    assert 0.0 <= removed["best shared constant"] <= removed["optimal"] <= 1.0


def test_best_constant_closed_form() -> None:
    """The quadratic's minimiser from three values equals the true minimiser."""
    module = load("reinforce_baselines")
    alpha, beta, gamma = 3.0, 0.7, 0.5

    def variance(c: float) -> float:
        return alpha - 2 * beta * c + gamma * c * c

    c_best, v_pred, v_eval = module.best_constant(variance, variance(0.0))
    assert c_best == pytest.approx(beta / gamma)
    assert v_pred == pytest.approx(alpha - beta**2 / gamma)
    assert v_eval == pytest.approx(v_pred)
