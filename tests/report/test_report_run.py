"""``gradstat report`` end to end: the output folder, network files, Monte Carlo and Ctrl-C."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

import gradstat as gs
from gradstat.cli import main
from gradstat.report import (
    CSV_COLUMNS,
    RandomNetworks,
    ReportConfig,
    ReportInterrupted,
    default_target,
    run_report,
)
from gradstat.report.plots import INSTALL_HINT
from gradstat.sweep import task_seed
from gradstat.sweep import tasks as sweep_tasks

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
PNGS = ("bias_variance.png", "metrics_vs_depth.png", "cosine_vs_samples.png", "rmse_vs_samples.png")

TINY_TOML = """
method = "auto"
metrics = ["bias_norm", "relative_bias", "cosine", "median_snr"]
estimators = [
    "st",
    "reinforce:baseline=mean",
    {name = "reinforce", options = {baseline = "optimal"}},
]

[[networks]]
sizes = [2, 2, 1]
seeds = [0, 1]

[[networks]]
sizes = [2, 2, 2, 3]
loss = "xent"
scale = 1.5
seeds = [4]
label = "deep"
"""


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        return list(reader)


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_cli_end_to_end_on_a_tiny_config(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    out = tmp_path / "out"
    assert main(["report", "--config", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "9 analyses (3 networks x 3 estimators, method exact)" in printed

    rows = read_csv(out / "results.csv")
    # 2 networks with scopes all/stochastic/layer1/output, 1 with two layers: 4+4+5 scopes.
    assert len(rows) == 3 * 4 * (4 + 4 + 5)
    assert {r["network"] for r in rows} == {"2-2-1_mse_seed0", "2-2-1_mse_seed1", "deep_seed4"}
    nets = {
        "2-2-1_mse_seed0": gs.BinaryNetwork.random((2, 2, 1), seed=0),
        "2-2-1_mse_seed1": gs.BinaryNetwork.random((2, 2, 1), seed=1),
        "deep_seed4": gs.BinaryNetwork.random((2, 2, 2, 3), loss="xent", scale=1.5, seed=4),
    }
    for row in rows:
        net = nets[row["network"]]
        options = json.loads(row["options"])
        r = gs.analyze(net, np.ones(2), default_target(net), row["estimator"], **options)
        expected = getattr(r.scopes()[row["scope"]], row["metric"])
        assert same(float(row["value"]), expected), row
        assert row["method"] == "exact" and row["standard_error"] == row["n_samples"] == ""
    assert {r["options"] for r in rows} == {"{}", '{"baseline": "mean"}', '{"baseline": "optimal"}'}

    data = json.loads((out / "results.json").read_text())
    assert data["complete"] and data["analyses_done"] == data["analyses_planned"] == 9
    assert len(data["rows"]) == len(rows)
    expected = ReportConfig.from_args(base=ReportConfig.from_toml(config), out=str(out))
    assert ReportConfig.from_mapping(data["config"]) == expected
    report = (out / "report.md").read_text()
    assert "## Networks" in report and "### deep_seed4" in report and "| layer2 |" in report
    for name in ("2-2-1_mse_seed0", "2-2-1_mse_seed1", "deep_seed4"):
        saved = gs.BinaryNetwork.load(out / "networks" / f"{name}.npz")
        assert saved.params.tobytes() == nets[name].params.tobytes()
    if HAS_MATPLOTLIB:
        assert all((out / png).stat().st_size > 10_000 for png in PNGS)
        assert "cos_M" in report and "not** `E[cos(g_M, g)]`" in report
    else:
        assert INSTALL_HINT in report


def test_rerun_on_saved_network_gives_the_same_numbers(tmp_path, capsys):
    net = gs.BinaryNetwork.random((3, 2, 2), loss="bce", seed=9)
    net.save(tmp_path / "mine.npz")
    out = tmp_path / "out"
    argv = ["report", "--network", str(tmp_path / "mine.npz"), "--estimators", "sts",
            "--metrics", "mse", "--no-plots", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = read_csv(out / "results.csv")
    assert {r["network"] for r in rows} == {"mine"} and rows[0]["seed"] == ""
    r = gs.analyze(net, np.ones(3), np.full(2, 0.5), "sts")
    assert float(rows[0]["value"]) == r.mse
    assert "plots are switched off" in (out / "report.md").read_text()


def test_monte_carlo_rows_carry_standard_errors(tmp_path):
    config = ReportConfig.from_args(
        sizes=[(2, 2, 1)], estimators=["st_sigmoid"], method="mc", n_samples=200, plots=False
    )
    result = run_report(config, tmp_path)
    rows = read_csv(tmp_path / "results.csv")
    assert rows and all(r["method"] == "mc" and r["n_samples"] == "200" for r in rows)
    assert all(r["standard_error"] != "" for r in rows)
    net = gs.BinaryNetwork.random((2, 2, 1), seed=0)
    row = next(x for x in rows if x["scope"] == "all" and x["metric"] == "total_variance")
    seed = task_seed(0, row["task"])
    r = gs.analyze(net, np.ones(2), np.zeros(1), "st_sigmoid", method="mc", n_samples=200,
                   seed=seed)  # fmt: skip
    assert float(row["value"]) == r.total_variance
    assert float(row["standard_error"]) == r.standard_errors["all"].total_variance > 0
    assert "±" in (tmp_path / "report.md").read_text()
    assert result.records[0].result.method == "mc"


def test_keyboard_interrupt_leaves_rows_on_disk(tmp_path, monkeypatch, capsys):
    calls = []
    real = sweep_tasks.analyze

    def interrupted_analyze(*args, **kwargs):
        calls.append(args[3])
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_tasks, "analyze", interrupted_analyze)
    out = tmp_path / "out"
    argv = ["report", "--sizes", "2,2,1", "--seeds", "0", "1", "--estimators", "st", "sts",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 130
    assert "interrupted after 2 of 4 analyses" in capsys.readouterr().err
    rows = read_csv(out / "results.csv")
    assert {(r["network"], r["estimator"]) for r in rows} == {
        ("2-2-1_mse_seed0", "st"),
        ("2-2-1_mse_seed0", "sts"),
    }
    data = json.loads((out / "results.json").read_text())
    assert not data["complete"] and len(data["rows"]) == len(rows)
    assert "**Interrupted** after 2 of 4" in (out / "report.md").read_text()
    with pytest.raises(ReportInterrupted) as stop:
        run_report(ReportConfig.from_args(sizes=[(2, 2, 1)], plots=False), tmp_path / "again")
    assert stop.value.result.interrupted and len(stop.value.result.records) == 0


def test_duplicate_network_labels_are_refused(tmp_path):
    config = ReportConfig(
        networks=(RandomNetworks((2, 2, 1), label="a"), RandomNetworks((2, 3, 1), label="a")),
        plots=False,
    )
    with pytest.raises(ValueError, match=r"label\(s\) \['a_seed0'\] occur more than once"):
        run_report(config, tmp_path)
