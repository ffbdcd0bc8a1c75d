"""Smoke test of analyses/literature_comparisons.py, and its closed forms by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from analysis_scripts import load, read_csv, run_quick


def test_literature_comparisons_quick(tmp_path: Path) -> None:
    run_quick("literature_comparisons", tmp_path)
    rows = read_csv(tmp_path / "equal_cost.csv")
    assert len(rows) == 8
    for r in rows:
        # DisARM is ARM Rao-Blackwellised; the best constant beats the mean baseline.
        assert float(r["disarm"]) <= float(r["arm"]) * (1 + 1e-9)
        assert float(r["reinforce_best_constant"]) <= float(r["reinforce_mean"]) * (1 + 1e-9)
        loo = [float(r[f"loo{k}"]) for k in (2, 3, 4)]
        assert loo[0] >= loo[1] >= loo[2] > 0
    temp = read_csv(tmp_path / "temperature.csv")
    st = [r for r in temp if r["estimator"] == "st_tempered"]
    var = [float(r["rel_var"]) for r in st]
    assert var == sorted(var, reverse=True)  # a hotter surrogate is less noisy
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["poly_engine_deviation"] < 1e-12


def test_poly_moments_by_hand() -> None:
    # ReinMax at tau = 1 on one unit: J(1) = (1 - p)/2, J(0) = p/2 (ZGR); at a = 0,
    # E[g_hat] = (f'(1) + f'(0))/8 and g = (f(1) - f(0))/4 for f = |h - 0.45|^1.5.
    module = load("literature_comparisons")
    mean, var, g = module.poly_moments(1.5, 0.0, "reinmax", tau=1.0)
    d1, d0 = 1.5 * 0.55**0.5, -1.5 * 0.45**0.5
    assert mean == pytest.approx((d1 + d0) / 8, rel=1e-12)
    assert g == pytest.approx((0.55**1.5 - 0.45**1.5) / 4, rel=1e-12)
    assert var == pytest.approx((d1 / 4) ** 2 / 2 + (d0 / 4) ** 2 / 2 - mean**2, rel=1e-12)


def test_best_constant_is_the_quadratic_minimiser() -> None:
    module = load("literature_comparisons")
    c, v = module.best_constant_variance(lambda c: 2.0 - 1.2 * c + 0.4 * c * c)
    assert c == pytest.approx(1.5) and v == pytest.approx(2.0 - 0.9)
    assert math.isfinite(v)
