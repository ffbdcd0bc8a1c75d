"""What the sweep tests share: a grid with failing tasks, readers of its output folder,
and a poison that kills the worker process running it."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import pytest

from gradstat.report import CSV_COLUMNS, ReportConfig
from gradstat.sweep import TASKS_FILE, grid_tasks
from gradstat.sweep import tasks as sweep_tasks

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


def arm_poison(marker: str, after: int) -> int:
    """In a Dask worker: the first worker to start its analysis number ``after + 1`` dies."""
    real = sweep_tasks.analyze
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

    sweep_tasks.analyze = poisoned
    return os.getpid()
