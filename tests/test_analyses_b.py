"""Smoke tests of the analysis scripts reinforce_baselines, toy_bernoulli and psa_benchmark.

Each runs in ``--quick`` mode into a temporary folder; the tests check that summary.md, a
CSV and a PNG are written and that a few key numbers are finite and sane.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("matplotlib")

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"


def load(name: str) -> ModuleType:
    if str(ANALYSES) not in sys.path:
        sys.path.insert(0, str(ANALYSES))
    return importlib.import_module(name)


def run_quick(name: str, tmp_path: Path) -> Path:
    summary = load(name).main(["--quick", "--out", str(tmp_path)])
    assert summary == tmp_path / "summary.md"
    assert summary.read_text().startswith("# ")
    assert "Mode: quick" in summary.read_text()
    assert list(tmp_path.glob("*.csv")), "no CSV written"
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    return summary


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


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


def test_toy_bernoulli_quick(tmp_path: Path) -> None:
    run_quick("toy_bernoulli", tmp_path)
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["n_checked"] > 0
    assert check["max_abs_difference"] <= 1e-12
    rows = read_csv(tmp_path / "moments.csv")
    for r in rows:
        if r["hand_mean"] != "nan":
            assert float(r["mean"]) == pytest.approx(float(r["hand_mean"]), abs=1e-12)
            assert float(r["var"]) == pytest.approx(float(r["hand_var"]), abs=1e-12)
    # Straight-through's mean vanishes at p = t; REINFORCE's optimal baseline has zero variance.
    summary = (tmp_path / "summary.md").read_text()
    assert "Finding" in summary
    opt = [float(r["var"]) for r in rows if r["estimator"] == "reinforce[optimal]"]
    assert max(opt) < 1e-12
    train = read_csv(tmp_path / "training_summary.csv")
    assert all(0.0 < float(r["p (last 10%, mean over seeds)"]) < 1.0 for r in train)


def test_toy_bernoulli_hand_moments() -> None:
    module = load("toy_bernoulli")
    t = 0.45
    st = module.hand_moments("st", {}, 0.0, t)
    assert st["mean"] == pytest.approx(0.5 - t)
    assert st["var"] == pytest.approx(0.25)
    assert st["sign_agreement"] == pytest.approx(0.5)
    opt = module.hand_moments("reinforce", {"baseline": "optimal"}, 1.3, t)
    assert opt["var"] == 0.0 and opt["mean"] == pytest.approx(opt["gradient"])
    assert module.hand_moments("no_such_estimator", {}, 0.0, t) is None


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
    mc = read_csv(tmp_path / "monte_carlo.csv")
    assert all(-1.0 <= float(r["mc_cos"]) <= 1.0 for r in mc)


def test_psa_data() -> None:
    """The two classes are drawn as described: class 0 below the cosine."""
    module = load("psa_benchmark")
    X, T = module.make_data(np.random.default_rng(3), 3)
    assert X.shape == (6, 2) and set(T[:, 0]) == {0.0, 1.0}
    assert np.all(X[3:, 1] < np.cos(X[3:, 0]))
