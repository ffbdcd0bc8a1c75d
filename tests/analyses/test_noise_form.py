"""Smoke test of analyses/noise_form.py (the form of straight-through's noise, its sources).

It runs in ``--quick`` mode into a temporary folder; the tests check the closed forms it
reports and a few key numbers.
"""

from __future__ import annotations

import json
import math

from analysis_scripts import read_csv, run_quick


def test_noise_form_quick(tmp_path):
    run_quick("noise_form", tmp_path)
    checks = json.loads((tmp_path / "checks.json").read_text())
    for key in (
        "per_state_linear_error", "output_noise_error", "mean_minus_deterministic",
        "gradient_formula_error", "cov_logit_error", "cov_kronecker_error", "walsh_bce_error",
        "skewness_error",
    ):  # fmt: skip
        assert checks[key] < 1e-13, key
    assert checks["rank_st_sigmoid"] == checks["rank_bound"] == 2
    assert checks["rank_reinforce"] == 4
    losses = read_csv(tmp_path / "losses.csv")
    assert all(float(r["linear_share"]) > 1 - 1e-12 for r in losses if r["loss"] == "mse")
    assert all(int(r["rank"]) <= 2 for r in losses if r["loss"] == "mse")
    for r in read_csv(tmp_path / "depth.csv"):
        shares = [float(r[f"share_layer{k}"]) for k in range(1, int(r["depth"]) + 1)]
        assert math.isclose(sum(shares), 1.0, rel_tol=1e-9)
    # The seed's starting network: the top layer causes 95% of st_sigmoid's trace, 82% of
    # st's and 96% of REINFORCE's with the optimal baseline (over all parameters).
    start = {r["estimator"]: r for r in read_csv(tmp_path / "training.csv")
             if r["checkpoint"] == "start"}  # fmt: skip
    for name, share in (("st_sigmoid", 0.95), ("st", 0.82), ("reinforce[optimal]", 0.96)):
        assert abs(float(start[name]["all_share_layer2"]) - share) < 0.006, name
    assert (tmp_path / "lattice.png").exists() and (tmp_path / "sources.png").exists()
