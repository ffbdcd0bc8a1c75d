"""``gradstat.sweep``: executors, determinism, failures, lost workers and ``resume``."""

from __future__ import annotations

import concurrent.futures
import csv
import hashlib
import importlib
import json
import multiprocessing
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import gradstat as gs
import gradstat.report
from gradstat.__main__ import main
from gradstat.report import CSV_COLUMNS, ReportConfig
from gradstat.sweep import (
    DASK_HINT,
    TASKS_FILE,
    SweepInterrupted,
    dask_client,
    decode_result,
    encode_result,
    grid_tasks,
    task_seed,
)

GRID = {
    "method": "mc",
    "n_samples": 200,
    "mc_seed": 3,
    "seeding": "task",
    "plots": False,
    "estimators": ["st", "sts", "reinforce:baseline=optimal"],
    "networks": [
        {"sizes": [2, 2, 1], "seeds": [0, 1]},
        {"sizes": [2, 2, 2, 3], "loss": "xent", "seeds": [4], "label": "deep"},
        # Too wide to enumerate the exact reference gradient: every analysis fails.
        {"sizes": [2, 25, 1], "seeds": [0], "label": "huge"},
    ],
}
"""12 tasks (4 networks x 3 estimators), 3 of which fail; Monte Carlo with per-task seeds."""
N_TASKS, N_FAILING = 12, 3

# On a slow disk Dask warns that its scratch directory takes long to create: harmless.
DASK_SLOW_DISK = pytest.mark.filterwarnings("ignore:Creating scratch directories:UserWarning")


def config() -> ReportConfig:
    return ReportConfig.from_mapping(GRID)


def read_rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        return sorted(reader, key=lambda r: (r["task"], r["scope"], r["metric"]))


def read_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / TASKS_FILE).read_text().splitlines()]


def check_complete(out: Path, reference: list[dict[str, str]]) -> None:
    """Every task once in tasks.jsonl, every row once in results.csv, equal to the serial run."""
    lines = read_lines(out)
    assert Counter(line["task"] for line in lines) == Counter(t.identity for t in grid_tasks(GRID))
    rows = read_rows(out)
    keys = Counter((r["task"], r["scope"], r["metric"]) for r in rows)
    assert set(keys.values()) == {1}
    assert rows == reference  # every column of every row, as written: bit-identical values


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[dict[str, str]]:
    """The rows of a serial run in this process."""
    out = tmp_path_factory.mktemp("serial")
    result = gs.sweep(GRID, executor="serial", out=out)
    assert len(result.outcomes) == N_TASKS and len(result.failed) == N_FAILING
    assert result.executor == "serially in this process"
    return read_rows(out)


def test_task_identities_and_seeds_are_stable():
    tasks = grid_tasks(GRID)
    assert len(tasks) == N_TASKS
    assert tasks[0].identity == "2-2-1_mse_seed0/st"
    assert tasks[2].identity == "2-2-1_mse_seed0/reinforce baseline=optimal"
    # seeding = "task": SeedSequence(mc_seed, spawn_key=(128 bits of SHA-256(identity),)).
    key = int.from_bytes(hashlib.sha256(b"2-2-1_mse_seed0/st").digest()[:16], "little")
    expected = int(np.random.SeedSequence(3, spawn_key=(key,)).generate_state(1, np.uint64)[0])
    assert tasks[0].seed == task_seed(3, "2-2-1_mse_seed0/st") == expected
    assert len({t.seed for t in tasks}) == N_TASKS
    assert [t.fingerprint for t in grid_tasks(GRID)] == [t.fingerprint for t in tasks]
    common = grid_tasks({**GRID, "seeding": "common"})
    assert {t.seed for t in common} == {3}
    exact = grid_tasks({**GRID, "method": "exact", "n_samples": None})
    assert all(t.method == {"method": "exact"} and t.seed is None for t in exact)


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


def test_process_pools_give_identical_rows(reference, tmp_path):
    gs.sweep(GRID, executor=2, out=tmp_path / "own")
    check_complete(tmp_path / "own", reference)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:
        result = gs.sweep(GRID, executor=pool, out=tmp_path / "given")
    assert result.executor == "ProcessPoolExecutor"
    check_complete(tmp_path / "given", reference)


def test_resume_after_an_interrupt_runs_only_the_missing_tasks(reference, tmp_path, monkeypatch):
    calls = []
    real = gradstat.report.analyze

    def counting(*args, **kwargs):
        calls.append(args[3])
        if stop_after is not None and len(calls) > stop_after:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gradstat.report, "analyze", counting)
    stop_after = 5
    with pytest.raises(SweepInterrupted) as stop:
        gs.sweep(GRID, executor="serial", out=tmp_path)
    assert "interrupted after 5 of 12 tasks" in str(stop.value)
    first = [line["task"] for line in read_lines(tmp_path)]
    assert len(first) == 5 and not json.loads((tmp_path / "results.json").read_text())["complete"]

    calls.clear()
    stop_after = None
    result = gs.sweep(GRID, executor="serial", out=tmp_path, resume=True)
    assert len(calls) == N_TASKS - 5  # the five finished tasks were not recomputed
    assert result.reused == 5 and sum(o.reused for o in result.outcomes) == 5
    assert [line["task"] for line in read_lines(tmp_path)][:5] == first
    check_complete(tmp_path, reference)

    calls.clear()  # failed tasks are retried by resume; succeeded ones are kept
    result = gs.sweep(GRID, executor="serial", out=tmp_path, resume=True)
    assert len(calls) == N_FAILING and result.reused == N_TASKS - N_FAILING
    check_complete(tmp_path, reference)


def test_resume_reruns_a_task_cut_short_and_refuses_another_grid(reference, tmp_path):
    gs.sweep(GRID, executor="serial", out=tmp_path)
    path = tmp_path / TASKS_FILE
    lines = path.read_text().splitlines(keepends=True)  # 9 succeeded tasks, then 3 failed
    path.write_text("".join(lines[:8]) + lines[8][:100])  # a crash in the middle of a line
    result = gs.sweep(GRID, executor="serial", out=tmp_path, resume=True)
    assert result.reused == 8
    check_complete(tmp_path, reference)
    with pytest.raises(ValueError, match=r"12 task\(s\) computed with other settings"):
        gs.sweep({**GRID, "n_samples": 300}, executor="serial", out=tmp_path, resume=True)
    smaller = {**GRID, "networks": GRID["networks"][:1]}
    with pytest.raises(ValueError, match=r"6 task\(s\) not in this grid"):
        gs.sweep(smaller, executor="serial", out=tmp_path, resume=True)
    fresh = gs.sweep(smaller, executor="serial", out=tmp_path)  # without resume: replaced
    assert fresh.reused == 0 and len(read_lines(tmp_path)) == 6


def _poisoned_worker(marker: str, after: int) -> None:
    """Initializer of a pool worker: the sweep's own, then :func:`_arm_poison`."""
    importlib.import_module("gradstat.sweep")._init_pool_worker()
    _arm_poison(marker, after)


def test_a_lost_worker_of_the_sweeps_own_pool_is_replaced(reference, tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    spawn = multiprocessing.get_context("spawn")
    pools = []

    def poisoned_pool(n_workers):
        pools.append(n_workers)
        return concurrent.futures.ProcessPoolExecutor(
            n_workers, mp_context=spawn, initializer=_poisoned_worker, initargs=(str(marker), 2)
        )

    monkeypatch.setattr(importlib.import_module("gradstat.sweep"), "_spawn_pool", poisoned_pool)
    result = gs.sweep(GRID, executor=2, out=tmp_path / "out")
    assert marker.exists() and pools == [2, 2]  # a worker died; a new pool took over
    assert result.retried > 0 and result.failed == tuple(o for o in result.outcomes if not o.ok)
    check_complete(tmp_path / "out", reference)


def test_a_lost_worker_of_a_given_pool_is_recorded_then_resumed(reference, tmp_path):
    marker = tmp_path / "killed"
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        2, mp_context=spawn, initializer=_arm_poison, initargs=(str(marker), 2)
    ) as pool:
        first = gs.sweep(GRID, executor=pool, out=tmp_path / "out")
    assert marker.exists()
    lost = [o for o in first.failed if "BrokenProcessPool" in o.error]
    assert lost and "resume to run it again" in lost[0].error
    assert len(first.outcomes) == N_TASKS  # recorded, not dropped
    result = gs.sweep(GRID, executor="serial", out=tmp_path / "out", resume=True)
    assert result.reused == N_TASKS - len(first.failed) > 0
    check_complete(tmp_path / "out", reference)


def test_results_round_trip_bit_for_bit():
    net = gs.BinaryNetwork.random((3, 3, 2, 1), seed=5)
    x, t = np.ones(3), np.zeros(1)
    for r in (
        gs.analyze(net, x, t, "reinforce", baseline=0.5),
        gs.analyze(net, x, t, "st", method="mc", n_samples=100, seed=2),
        gs.analyze(gs.BinaryNetwork((2, 2, 1)), np.zeros(2), np.zeros(1), "st"),  # nan, inf
    ):
        back = decode_result(json.loads(json.dumps(encode_result(r), allow_nan=False)))
        assert json.dumps(back.to_dict()) == json.dumps(r.to_dict())
        for name in ("gradient", "mean", "var", "sign_probability"):
            assert getattr(back, name).tobytes() == getattr(r, name).tobytes()


def test_bad_executors_and_missing_dask(tmp_path, monkeypatch, capsys):
    with pytest.raises(TypeError, match="executor must be None"):
        gs.sweep(GRID, executor="threads", out=tmp_path)
    with pytest.raises(ValueError, match="must be >= 1, got 0"):
        gs.sweep(GRID, executor=0, out=tmp_path)
    with pytest.raises(ValueError, match="retries must be an integer >= 0"):
        gs.sweep(GRID, executor="serial", out=tmp_path, retries=-1)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match="gradstat\\[dask\\]"), dask_client(n_workers=1):
        pass
    for flags in (["--dask-local", "2"], ["--scheduler", "tcp://127.0.0.1:1"]):
        with pytest.raises(SystemExit) as stop:
            main(["report", "--sizes", "2,2,1", "--out", str(tmp_path), *flags])
        assert stop.value.code == 2 and DASK_HINT in capsys.readouterr().err


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


def test_report_lists_failed_analyses(tmp_path, capsys):
    argv = ["report", "--sizes", "2,2,1", "--sizes", "2,25,1", "--estimators", "st",
            "--method", "mc", "--n-samples", "50", "--no-plots",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 failed" in printed and "--resume runs them again" in printed
    report = (tmp_path / "report.md").read_text()
    assert "**1 analyses failed**" in report and "| 2-25-1_mse_seed0 | st | ValueError:" in report
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["analyses_failed"] == 1 and data["analyses_done"] == 2


@DASK_SLOW_DISK
def test_dask_local_cluster_gives_identical_rows(reference, tmp_path):
    pytest.importorskip("distributed")
    with dask_client(n_workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        result = gs.sweep(GRID, executor=client, out=tmp_path)
    assert result.executor.startswith("Dask (tcp://127.0.0.1:")
    check_complete(tmp_path, reference)


def _arm_poison(marker: str, after: int) -> int:
    """In a Dask worker: the first worker to start its analysis number ``after + 1`` dies."""
    import gradstat.report

    real = gradstat.report.analyze
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os._exit(1)  # the worker process dies in the middle of a task
        return real(*args, **kwargs)

    gradstat.report.analyze = poisoned
    return os.getpid()


@DASK_SLOW_DISK
def test_dask_reruns_the_tasks_of_a_killed_worker(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    marker = tmp_path / "killed"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        pids = set(client.run(_arm_poison, str(marker), 2).values())
        result = gs.sweep(GRID, executor=client, out=tmp_path / "out")
    assert int(marker.read_text()) in pids  # one worker died in the middle of the sweep
    assert len(result.outcomes) == N_TASKS and len(result.failed) == N_FAILING
    check_complete(tmp_path / "out", reference)
