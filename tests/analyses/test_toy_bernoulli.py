"""Smoke test of analyses/toy_bernoulli.py (the one-unit Bernoulli toy problem).

It runs in ``--quick`` mode into a temporary folder; the tests check a few key numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from analysis_scripts import load, read_csv, run_quick


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
