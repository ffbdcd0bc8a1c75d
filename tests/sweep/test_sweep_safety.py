"""Nothing lost: one writer per folder, rows checked at the end, no orphan workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sweep_grid import GRID, check_complete

import gradstat as gs
from gradstat.cli import main
from gradstat.report import ReportConfig, run_report
from gradstat.sweep import LOCK_FILE, LostRowsError, hold_folder
from gradstat.sweep import tasks as sweep_tasks

ROOT = Path(gs.__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SMALL = {**GRID, "networks": GRID["networks"][:1]}  # 6 quick tasks


def _until(condition, seconds: float, what: str) -> None:
    """Wait until ``condition()`` holds, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def held(tmp_path):
    """The output folder, held by another thread for the test's duration."""
    out = tmp_path / "out"
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with hold_folder(out):
            taken.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(30)
    yield out
    release.set()
    thread.join(30)


def test_a_second_writer_is_refused_at_once(held, capsys):
    match = f"output folder '{held}' is in use: another gradstat run holds it"
    with pytest.raises(ValueError, match=match):
        gs.sweep(SMALL, executor="serial", out=held)
    with pytest.raises(ValueError, match=match):
        run_report(ReportConfig.from_mapping(SMALL), held)
    for command in ("sweep", "report"):
        with pytest.raises(SystemExit) as stop:
            main([command, "--config", _toml(held.parent), "--out", str(held), "--resume"])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert f"'{held}' is in use: another gradstat run holds it" in err
    assert not (held / "results.csv").exists()  # nothing was written into the held folder


def _toml(folder: Path) -> str:
    path = folder / "grid.toml"
    path.write_text('estimators = ["st"]\n[[networks]]\nsizes = [2, 2, 1]\n')
    return str(path)


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    out = tmp_path / "out"
    code = (
        "import sys, time; from pathlib import Path; from gradstat.sweep import hold_folder\n"
        "with hold_folder(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(out)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        assert (out / LOCK_FILE).read_text() == f"{holder.pid}\n"
        with pytest.raises(
            ValueError, match=f"another gradstat run holds it \\(process {holder.pid}"
        ):
            gs.sweep(SMALL, executor="serial", out=out)
    finally:
        holder.kill()
        holder.wait(30)
        holder.stdout.close()
    result = gs.sweep(SMALL, executor="serial", out=out)  # the system dropped the lock
    assert len(result.outcomes) == 6


def test_a_report_holds_its_folder_until_its_last_file(tmp_path):
    """The same thread may enter its own lock again (a report around its sweep)."""
    out = tmp_path / "out"
    with hold_folder(out):
        run_report(ReportConfig.from_args(sizes=[(2, 2, 1)], estimators=["st"], plots=False), out)
        assert (out / "report.md").exists()
    again = run_report(ReportConfig.from_args(sizes=[(2, 2, 1)], plots=False), out)
    assert again.n_done == again.n_planned


def test_rows_replaced_under_a_sweep_fail_it(tmp_path, reference):
    out = tmp_path / "out"

    def replace_rows(task, outcome):
        if task.index == 1:  # another process rewrites results.csv (a new file)
            (out / "other.csv").write_text((out / "results.csv").read_text())
            os.replace(out / "other.csv", out / "results.csv")

    with pytest.raises(
        LostRowsError, match="holds 12 lines and results.csv 64 rows, but this run wrote 12 and 315"
    ):
        gs.sweep(GRID, executor="serial", out=out, on_result=replace_rows)
    assert not (out / "results.json").exists()  # no success reported over lost rows
    gs.sweep(GRID, executor="serial", out=out, resume=True)  # what it says to do
    check_complete(out, reference)


def test_rows_lost_under_a_report_end_the_command_line_with_one_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    calls = []
    real = sweep_tasks.analyze

    def truncating(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            (out / "tasks.jsonl").write_text("")  # another writer empties the file
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_tasks, "analyze", truncating)
    argv = ["report", "--sizes", "2,2,1", "--estimators", "st", "sts", "--no-plots",
            "--out", str(out)]  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "tasks.jsonl holds 1 lines and results.csv" in err and "but this run wrote 2" in err


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (psutil, else /proc's children lists)."""
    try:
        import psutil
    except ImportError:
        found, todo = [], [pid]
        while todo:
            parent = todo.pop()
            for path in Path(f"/proc/{parent}/task").glob("*/children"):
                children = [int(c) for c in path.read_text().split()]
                found += children
                todo += children
        return found
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


def _gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_pool_workers_exit_when_the_sweep_is_killed(tmp_path):
    out = tmp_path / "out"
    seeds = [str(s) for s in range(20)]
    argv = [sys.executable, "-m", "gradstat", "sweep", "--workers", "2", "--sizes", "3,4,4,1",
            "--seeds", *seeds, "--estimators", "st", "sts", "st_sigmoid", "reinforce",
            "--method", "mc", "--n-samples", "400000", "--out", str(out)]  # fmt: skip
    sweep = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[int] = []
    try:
        lines = out / "tasks.jsonl"
        # Workers are up and computing once a first task is on disk.
        _until(lambda: lines.exists() and lines.stat().st_size > 0, 300, "a first task")
        children = _descendants(sweep.pid)
        assert sweep.poll() is None, "the sweep ended before it could be killed"
        assert len(children) >= 3  # two workers and multiprocessing's resource tracker
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait(30)
        _until(lambda: all(_gone(pid) for pid in children), 15, "the workers to exit")
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait(30)
        for pid in children:  # if the test failed: leave no process behind
            if not _gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
