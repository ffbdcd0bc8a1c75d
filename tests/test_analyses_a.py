"""Smoke tests of three analysis scripts in their ``--quick`` mode.

``analyses/slow_training.py``, ``analyses/st_sign_by_depth.py`` and
``analyses/sts_first_order.py`` each write ``summary.md``, CSV tables and PNG figures; the
tests check that they do, and that a few key numbers are finite and what the mathematics
says they must be.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import sys
from pathlib import Path

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"
if str(ANALYSES) not in sys.path:
    sys.path.insert(0, str(ANALYSES))


def run_quick(name: str, out: Path) -> Path:
    module = importlib.import_module(name)
    summary = module.main(["--quick", "--out", str(out)])
    assert summary == out / "summary.md"
    assert summary.exists() and summary.read_text().startswith("# ")
    assert list(out.glob("*.csv")), "no CSV written"
    assert list(out.glob("*.png")), "no figure written"
    return summary


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_slow_training_quick(tmp_path):
    summary = run_quick("slow_training", tmp_path)
    assert "Capacity" in summary.read_text()
    training = rows(tmp_path / "training_summary.csv")
    finals = {r["method"]: float(r["final J mean"]) for r in training}
    assert {"exact", "st_sigmoid", "sigmoid network (own loss)"} <= set(finals)
    assert all(math.isfinite(v) and 0.0 <= v < 10.0 for v in finals.values())
    runs = rows(tmp_path / "training_runs.csv")
    exact = [r for r in runs if r["method"] == "exact"]
    assert all(float(r["final"]) < float(r["initial"]) for r in exact)
    noise = rows(tmp_path / "noise_bias_means.csv")
    for r in noise:
        assert float(r["total_variance"]) >= 0.0 and -1.0 <= float(r["cosine"]) <= 1.0 + 1e-12
        if r["estimator"].startswith("reinforce"):
            assert float(r["relative_bias"]) < 1e-9  # unbiased, exactly
    spectrum = rows(tmp_path / "noise_spectrum_means.csv")
    for r in spectrum:
        top = [float(r[f"top{k}"]) for k in (1, 3, 5)]
        assert 0.0 < top[0] <= top[1] <= top[2] <= 1.0 + 1e-12
        assert 1.0 <= float(r["rank"]) <= 35.0
    cap = json.loads((tmp_path / "capacity.json").read_text())
    assert math.isclose(cap["fit"] + cap["noise"], cap["binary_best"], rel_tol=1e-12)
    assert cap["noise"] >= -1e-12


def test_st_sign_by_depth_quick(tmp_path):
    summary = run_quick("st_sign_by_depth", tmp_path)
    assert "The claim holds exactly: yes" in summary.read_text()
    by_depth = rows(tmp_path / "by_depth.csv")
    one_layer_linear = [r for r in by_depth if r["depth"] == "1" and r["loss"] == "linear"]
    assert {r["estimator"] for r in one_layer_linear} == {"st", "st_sigmoid"}
    for r in one_layer_linear:
        assert float(r["mean_sign"]) == 1.0
        # A sum of state probabilities: 1 up to rounding.
        assert abs(float(r["descent_probability"]) - 1.0) <= 1e-12
    for r in by_depth:
        for key in ("sign_agreement", "mean_sign", "descent_probability"):
            assert 0.0 <= float(r[key]) <= 1.0 + 1e-12
        assert -1.0 - 1e-12 <= float(r["cosine"]) <= 1.0 + 1e-12


def test_sts_first_order_quick(tmp_path):
    run_quick("sts_first_order", tmp_path)
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert checks["first_order_holds"] is True
    assert checks["half_one_unit"] < 1e-12 and checks["half_one_layer"] < 1e-12
    assert checks["closed_form_error"] < 1e-12
    first = rows(tmp_path / "first_order.csv")
    for r in first:
        assert math.isfinite(float(r["ratio_over_p"]))
        if r["loss"] == "linear":
            assert abs(float(r["difference"])) < 1e-12
    bias = rows(tmp_path / "one_unit_bias.csv")
    linear = [r for r in bias if r["loss"] == "linear"]
    assert linear and all(abs(float(r["ratio_binary"]) - 0.5) < 1e-12 for r in linear)
