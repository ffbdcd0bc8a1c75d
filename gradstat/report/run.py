"""Running a report: :func:`run_report`, on :func:`gradstat.sweep.locked_sweep`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from gradstat.report import plots
from gradstat.report.markdown import format_report
from gradstat.report.results import Record, ReportInterrupted, ReportResult
from gradstat.sweep.config import ReportConfig
from gradstat.sweep.executors import DEFAULT_RETRIES
from gradstat.sweep.results import SweepResult
from gradstat.sweep.run import locked_sweep


def run_report(
    config: ReportConfig,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    executor: Any = "serial",
    resume: bool = False,
    retries: int = DEFAULT_RETRIES,
) -> ReportResult:
    """Analyse every network of ``config`` with every estimator and write the report.

    The analyses run on :func:`gradstat.sweep` (one task per network and estimator),
    which writes ``results.csv`` and ``tasks.jsonl`` as they complete.

    Parameters
    ----------
    config : ReportConfig
    out_dir : str or path-like, optional
        Output folder (created if needed; default ``config.out``). Existing report files
        in it are replaced (kept with ``resume``).
    executor : "serial", None, int, concurrent.futures.Executor or distributed.Client
        Where the analyses run (see :func:`gradstat.sweep`); default ``"serial"``: one
        after the other in this process.
    resume : bool
        Reuse the analyses that succeeded in an earlier run into ``out_dir`` and run the
        others (those never run and those that failed).
    retries : int
        Reruns of a lost analysis (its worker process died, or its run raised outside
        the analysis), as in :func:`gradstat.sweep`.

    Returns
    -------
    ReportResult

    Raises
    ------
    ReportInterrupted
        On ``KeyboardInterrupt`` during the analyses, after ``results.csv`` (already
        holding every finished analysis), ``results.json`` and ``report.md`` have been
        written for what was done; its ``result`` attribute is the partial
        :class:`ReportResult`.
    ValueError, TypeError
        From a network file that cannot be read, duplicate network labels, a bad
        ``executor``, an output folder that another run holds (it is locked from the
        first analysis to ``report.md``), or ``resume`` into a folder written by another
        grid. An analysis that raises does not stop the report: it is listed as failed.
    LostRowsError
        When ``results.csv`` or ``tasks.jsonl`` do not hold exactly the rows written
        (another process changed them).
    """
    started = time.perf_counter()
    out = Path(config.out if out_dir is None else out_dir)
    options = {"executor": executor, "resume": resume, "retries": retries}
    with locked_sweep(config, out, progress="gradstat report", **options) as swept:
        result = _write(config, out, swept, started)
    if result.interrupted:
        raise ReportInterrupted(result)
    return result


def _write(config: ReportConfig, out: Path, swept: SweepResult, started: float) -> ReportResult:
    """The plots, ``results.json`` and ``report.md`` of a finished (or interrupted) sweep."""
    records, failures = _analyses(swept)
    files = list(swept.files)
    interrupted = swept.interrupted
    if interrupted:
        note = "not drawn: the run was interrupted"
    elif not config.plots:
        note = "not drawn: plots are switched off (`plots = false` or `--no-plots`)"
    elif not records:
        note = "not drawn: no analysis succeeded"
    else:
        try:
            files += plots.write_plots(records, out, config.metrics)
            note = None
        except ImportError:
            note = f"skipped: matplotlib is not installed; get them with `{plots.INSTALL_HINT}`"
    files += [out / "results.json", out / "report.md"]
    result = ReportResult(
        out_dir=out,
        config=config,
        cases=swept.cases,
        rows=swept.rows,
        files=tuple(files),
        interrupted=interrupted,
        wall_time=time.perf_counter() - started,
        reused=swept.reused,
        executor=swept.executor,
        records=tuple(records),
        plots_note=note,
        failures=tuple(failures),
    )
    result.write_json(out / "results.json")
    (out / "report.md").write_text(format_report(result), encoding="utf-8")
    return result


def _analyses(swept: SweepResult) -> tuple[list[Record], list[tuple]]:
    """The sweep's outcomes as the report's records (succeeded) and failures, in grid order."""
    tasks = {task.identity: task for task in swept.tasks}
    records, failures = [], []
    for outcome in swept.outcomes:
        task = tasks[outcome.identity]
        if outcome.ok:
            records.append(Record(task.case, task.estimator, outcome.result))
        else:
            failures.append((task.case, task.estimator, outcome.error))
    return records, failures
