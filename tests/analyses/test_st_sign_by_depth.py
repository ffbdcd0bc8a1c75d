"""Smoke test of analyses/st_sign_by_depth.py: straight-through sign agreement by depth.

It runs in ``--quick`` mode into a temporary folder; the tests check a few key numbers.
"""

from __future__ import annotations

from analysis_scripts import read_csv, run_quick


def test_st_sign_by_depth_quick(tmp_path):
    summary = run_quick("st_sign_by_depth", tmp_path)
    assert "The claim holds exactly: yes" in summary.read_text()
    by_depth = read_csv(tmp_path / "by_depth.csv")
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
