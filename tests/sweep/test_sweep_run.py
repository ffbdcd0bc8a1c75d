"""Sweeps end to end: failed tasks, and ``gradstat sweep`` then ``gradstat report``."""

from __future__ import annotations

import json

import numpy as np
from sweep_grid import GRID, N_FAILING, N_TASKS, read_rows

import gradstat as gs
from gradstat.cli import main
from gradstat.sweep import grid_tasks


def test_failed_tasks_are_recorded_and_the_others_complete(reference):
    failed = [r for r in reference if r["status"] == "error"]
    assert len(failed) == N_FAILING  # one row each
    assert {r["network"] for r in failed} == {"huge_seed0"}
    assert all(r["error"].startswith("ValueError: the exact gradient") for r in failed)
    assert all(r["value"] == r["scope"] == r["metric"] == "" for r in failed)
    ok = [r for r in reference if r["status"] == "ok"]
    assert {r["task"] for r in ok} == {t.identity for t in grid_tasks(GRID)[: N_TASKS - N_FAILING]}
    assert all(r["error"] == "" and r["method"] == "mc" for r in ok)
    # The rows are those of analyze with the task's seed.
    task = grid_tasks(GRID)[4]
    r = gs.analyze(task.case.net, task.case.x, task.case.t, "sts", method="mc", n_samples=200,
                   seed=task.seed)  # fmt: skip
    row = next(x for x in ok if x["task"] == task.identity and x["scope"] == "all"
               and x["metric"] == "total_variance")  # fmt: skip
    assert float(row["value"]) == r.total_variance


def test_sweep_then_report_on_the_command_line(tmp_path, capsys):
    config = tmp_path / "grid.toml"
    config.write_text(
        'estimators = ["st", "reinforce:baseline=mean"]\nmetrics = ["mse", "cosine"]\n'
        "[[networks]]\nsizes = [2, 2, 1]\nseeds = [0, 1]\n"
    )
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(config), "--out", str(out), "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "4 tasks" in printed and "a pool of 2 worker processes" in printed
    argv = ["report", "--config", str(config), "--out", str(out), "--resume", "--no-plots"]
    assert main(argv) == 0
    assert "4 reused" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "4 analyses were read back from an earlier run" in report and "| st |" in report
    rows = read_rows(out)
    assert len(rows) == 4 * 4 * 2 and {r["status"] for r in rows} == {"ok"}
    net = gs.BinaryNetwork.random((2, 2, 1), seed=1)
    r = gs.analyze(net, np.ones(2), np.zeros(1), "reinforce", baseline="mean")
    row = next(x for x in rows if x["task"] == "2-2-1_mse_seed1/reinforce baseline=mean"
               and x["scope"] == "all" and x["metric"] == "mse")  # fmt: skip
    assert float(row["value"]) == r.mse


def test_report_lists_failed_analyses_and_exits_with_status_1(tmp_path, capsys):
    argv = ["report", "--sizes", "2,2,1", "--sizes", "2,25,1", "--estimators", "st",
            "--method", "mc", "--n-samples", "50", "--no-plots",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 1
    printed = capsys.readouterr()
    assert "1 analysis (2 networks x 1 estimator, method mc, 1 failed)" in printed.out
    assert printed.err == (
        "gradstat report: 1 of 2 analyses failed (see report.md); --resume runs them again\n"
    )
    report = (tmp_path / "report.md").read_text()
    assert "**1 analysis failed**" in report and "| 2-25-1_mse_seed0 | st | ValueError:" in report
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["analyses_failed"] == 1 and data["analyses_done"] == 2


def test_a_report_whose_every_analysis_failed_exits_with_status_1(tmp_path, capsys):
    argv = ["report", "--estimators", "concrete", "--method", "exact", "--sizes", "3,2,1",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 1
    printed = capsys.readouterr()
    assert "0 analyses (1 network x 1 estimator, method exact, 1 failed)" in printed.out
    assert "1 .npz file)" in printed.out and "plots not drawn: no analysis succeeded" in printed.out
    assert printed.err.splitlines() == [
        "gradstat report: 1 of 1 analysis failed (see report.md); --resume runs them again"
    ]
    assert "**1 analysis failed**" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["analyses_failed"] == 1


def test_a_sweep_with_failed_tasks_exits_with_status_1(tmp_path, capsys):
    argv = ["sweep", "--sizes", "2,2,1", "--sizes", "2,25,1", "--estimators", "st",
            "--method", "mc", "--n-samples", "50", "--workers", "1",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 1
    printed = capsys.readouterr()
    assert "gradstat sweep: 2 tasks (2 networks x 1 estimator; 0 reused, 1 failed" in printed.out
    assert printed.err.splitlines() == [
        "gradstat sweep: 1 of 2 tasks failed (status 'error' in results.csv); --resume runs "
        "them again"
    ]
