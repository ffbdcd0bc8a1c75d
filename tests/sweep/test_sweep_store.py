"""The results folder: ``resume`` after an interrupt, a line cut short, another grid."""

from __future__ import annotations

import json

import pytest
from sweep_grid import GRID, N_FAILING, N_TASKS, check_complete, read_lines

import gradstat as gs
from gradstat.sweep import TASKS_FILE, SweepInterrupted
from gradstat.sweep import tasks as sweep_tasks


def test_resume_after_an_interrupt_runs_only_the_missing_tasks(reference, tmp_path, monkeypatch):
    calls = []
    real = sweep_tasks.analyze

    def counting(*args, **kwargs):
        calls.append(args[3])
        if stop_after is not None and len(calls) > stop_after:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_tasks, "analyze", counting)
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
