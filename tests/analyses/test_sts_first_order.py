"""Smoke test of analyses/sts_first_order.py (the first-order claim about STS).

It runs in ``--quick`` mode into a temporary folder; the tests check a few key numbers.
"""

from __future__ import annotations

import json
import math

from analysis_scripts import read_csv, run_quick


def test_sts_first_order_quick(tmp_path):
    run_quick("sts_first_order", tmp_path)
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert checks["first_order_holds"] is True
    assert checks["half_one_unit"] < 1e-12 and checks["half_one_layer"] < 1e-12
    assert checks["closed_form_error"] < 1e-12
    crossing = checks["unbiased_crossing"]  # one unit, mse, w = 1.5, t = 0.45, p = 0.49
    assert abs(crossing["mean"] - 0.112455) < 1e-12
    assert abs(crossing["gradient"] - 0.112455) < 1e-12
    first = read_csv(tmp_path / "first_order.csv")
    for r in first:
        assert math.isfinite(float(r["ratio_over_p"]))
        if r["loss"] == "linear":
            assert abs(float(r["difference"])) < 1e-12
    bias = read_csv(tmp_path / "one_unit_bias.csv")
    linear = [r for r in bias if r["loss"] == "linear"]
    assert linear and all(abs(float(r["ratio_binary"]) - 0.5) < 1e-12 for r in linear)
