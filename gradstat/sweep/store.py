"""The results folder of a sweep: ``results.csv`` and ``tasks.jsonl``, task by task.

:class:`Store` appends each finished task's rows to ``results.csv`` and its line to
``tasks.jsonl`` (identity, fingerprint, status, error and traceback, run time, worker,
gradstat's version and the whole :class:`gradstat.AnalysisResult`, floats written
exactly), flushing both, so that an interrupted sweep keeps everything finished.
:func:`read_previous` reads ``tasks.jsonl`` back for ``resume``.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradstat.storage import save_network
from gradstat.sweep.config import NetworkCase
from gradstat.sweep.results import CSV_COLUMNS, task_rows
from gradstat.sweep.tasks import (
    TASK_FORMAT,
    TASKS_FILE,
    SweepTask,
    TaskOutcome,
    decode_result,
    encode_result,
)


def save_networks(out: Path, cases: Sequence[NetworkCase]) -> list[Path]:
    """Write every network of the grid to ``out/networks/<label>.npz`` (folders created)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "networks").mkdir(exist_ok=True)
    return [save_network(case.net, out / "networks" / f"{case.label}.npz") for case in cases]


def _version() -> str:
    # The package's own version: gradstat/__init__ is always run before its submodules.
    return getattr(sys.modules.get("gradstat"), "__version__", "")


def _task_line(task: SweepTask, outcome: TaskOutcome) -> str:
    data = {
        "format": TASK_FORMAT,
        "gradstat": _version(),
        "task": task.identity,
        "fingerprint": task.fingerprint,
        "network": task.case.label,
        "estimator": task.estimator.label,
        "seed": task.seed,
        "status": outcome.status,
        "error": outcome.error,
        "traceback": outcome.traceback,
        "seconds": outcome.seconds,
        "worker": outcome.worker,
        "result": None if outcome.result is None else encode_result(outcome.result),
    }
    return json.dumps(data, allow_nan=False)


def read_previous(out: Path, tasks: Sequence[SweepTask]) -> dict[str, tuple[TaskOutcome, str]]:
    """Successful outcomes of an earlier run in ``out`` (with their lines), by identity."""
    path = out / TASKS_FILE
    if not path.exists():
        return {}
    by_identity = {task.identity: task for task in tasks}
    kept: dict[str, tuple[TaskOutcome, str]] = {}
    unknown, changed = [], []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                data = json.loads(line)
                identity = data["task"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: that task runs again
            task = by_identity.get(identity)
            if task is None:
                unknown.append(identity)
                continue
            if data.get("fingerprint") != task.fingerprint:
                changed.append(identity)
                continue
            if data.get("status") != "ok":
                kept.pop(identity, None)
                continue  # failed before: retried
            try:
                result = decode_result(data["result"])
            except (ValueError, KeyError, TypeError):
                continue
            outcome = TaskOutcome(
                identity,
                "ok",
                result,
                seconds=data.get("seconds", 0.0),
                worker=data.get("worker", ""),
                reused=True,
            )
            kept[identity] = (outcome, line.rstrip("\n"))
    for what, ids in (("not in this grid", unknown), ("computed with other settings", changed)):
        if ids:
            raise ValueError(
                f"cannot resume: {path} holds {len(ids)} task(s) {what} (e.g. {ids[:3]}); "
                "resume with the grid and options that wrote them (network parameters, "
                "estimators, method, n_samples, mc_seed, seeding), or write to another "
                "folder (--out)"
            )
    return kept


class Store:
    """``results.csv`` and ``tasks.jsonl``, appended to and flushed task by task."""

    def __init__(self, out: Path, metrics: Sequence[str], previous: Sequence[tuple]) -> None:
        self.metrics = metrics
        self.csv_path = out / "results.csv"
        self.tasks_path = out / TASKS_FILE
        # Earlier results are rewritten first (to a temporary file, then renamed), so
        # that a crash at any point leaves them on disk.
        for path, write in (
            (self.tasks_path, self._write_lines),
            (self.csv_path, self._write_rows),
        ):
            tmp = path.with_name(path.name + ".tmp")
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                write(fh, previous)
            os.replace(tmp, path)
        self.csv_fh = self.csv_path.open("a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.csv_fh, fieldnames=CSV_COLUMNS)
        self.tasks_fh = self.tasks_path.open("a", encoding="utf-8")

    def _write_lines(self, fh: Any, previous: Sequence[tuple]) -> None:
        for _task, _outcome, line in previous:
            fh.write(line + "\n")

    def _write_rows(self, fh: Any, previous: Sequence[tuple]) -> None:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for task, outcome, _line in previous:
            writer.writerows(task_rows(task, outcome, self.metrics))

    def write(self, task: SweepTask, outcome: TaskOutcome) -> None:
        # Rows first, then the task's line: resume trusts tasks.jsonl and rebuilds the CSV.
        self.writer.writerows(task_rows(task, outcome, self.metrics))
        self.csv_fh.flush()
        self.tasks_fh.write(_task_line(task, outcome) + "\n")
        self.tasks_fh.flush()

    def close(self) -> None:
        self.csv_fh.close()
        self.tasks_fh.close()
