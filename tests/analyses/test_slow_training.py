"""Smoke test of analyses/slow_training.py: training, noise bias and spectrum, capacity.

It runs in ``--quick`` mode into a temporary folder; the tests check a few key numbers.
"""

from __future__ import annotations

import json
import math

from analysis_scripts import read_csv, run_quick


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
