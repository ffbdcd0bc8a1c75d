"""Running a sweep: :func:`sweep`, and :func:`run_sweep` under it and under reports.

:func:`run_sweep` expands the grid (:mod:`gradstat.sweep.grid`), locks the output folder,
writes the networks and reads an earlier run for ``resume`` (:mod:`gradstat.sweep.store`),
runs the other tasks on the executor (:mod:`gradstat.sweep.executors`) while the store
writes each one as it completes, checks that the files hold what was written, and
collects the rows (:mod:`gradstat.sweep.results`). :func:`sweep` adds ``results.json``
and raises :class:`SweepInterrupted` after a Ctrl-C; :func:`locked_sweep` keeps the
folder locked while the caller writes more (a report's summary files and plots).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gradstat._validation import check_int
from gradstat.sweep.config import NetworkCase, ReportConfig
from gradstat.sweep.executors import DEFAULT_RETRIES, check_executor, describe_executor, run_on
from gradstat.sweep.grid import as_config, grid_cases, grid_tasks
from gradstat.sweep.results import CSV_COLUMNS, SweepInterrupted, SweepResult, task_rows
from gradstat.sweep.store import Store, hold_folder, read_previous, save_networks
from gradstat.sweep.tasks import SweepTask, TaskOutcome


@contextlib.contextmanager
def locked_sweep(
    config: ReportConfig,
    out: Path,
    *,
    executor: Any = None,
    resume: bool = False,
    retries: int = DEFAULT_RETRIES,
    on_result: Callable[[SweepTask, TaskOutcome], None] | None = None,
    progress: bool | str = True,
    batch: int | None = None,
) -> Iterator[SweepResult]:
    """:func:`run_sweep` as a context: the output folder stays locked until the block ends.

    The caller writes its own files into the folder (``results.json``, a report) before
    another run may enter. The arguments are checked and the grid expanded before
    anything is written; the folder is then created and locked.

    Parameters
    ----------
    config : ReportConfig
        The grid.
    out : Path
        The output folder.
    executor, resume, retries, on_result, batch
        As in :func:`sweep`.
    progress : bool or str
        Show a progress bar on a terminal; a string is its title.

    Yields
    ------
    SweepResult
        Once every task finished (or Ctrl-C stopped them: ``result.interrupted``).

    Raises
    ------
    ValueError, TypeError
        Bad arguments or grid, or an output folder that another run holds.
    LostRowsError
        When, at the end, ``results.csv`` or ``tasks.jsonl`` do not hold exactly the rows
        written (another process changed them).
    """
    started = time.perf_counter()
    check_executor(executor)
    check_int(retries, "retries", minimum=0)
    if batch is not None:
        check_int(batch, "batch", minimum=1)
    cases = grid_cases(config)
    tasks = grid_tasks(config, cases)
    with hold_folder(out):
        run = (executor, resume, retries, on_result, progress, batch)
        yield _run_locked(config, out, cases, tasks, started, *run)


def run_sweep(config: ReportConfig, out: Path, **options: Any) -> SweepResult:
    """The sweep without its summary file (``results.json``), the output folder locked
    while it runs; ``options`` are those of :func:`locked_sweep` (``executor``,
    ``resume``, ``retries``, ``on_result``, ``progress``, ``batch``). A
    ``KeyboardInterrupt`` stops it and is reported as ``result.interrupted``; everything
    finished is then on disk.

    Raises
    ------
    LostRowsError
        When, at the end, ``results.csv`` or ``tasks.jsonl`` do not hold exactly the rows
        written (another process changed them).
    """
    with locked_sweep(config, out, **options) as result:
        return result


def _run_locked(
    config: ReportConfig,
    out: Path,
    cases: tuple[NetworkCase, ...],
    tasks: tuple[SweepTask, ...],
    started: float,
    executor: Any,
    resume: bool,
    retries: int,
    on_result: Callable[[SweepTask, TaskOutcome], None] | None,
    progress: bool | str,
    batch: int | None,
) -> SweepResult:
    files = save_networks(out, cases)
    previous = read_previous(out, tasks) if resume else {}
    outcomes = {identity: outcome for identity, (outcome, _line) in previous.items()}
    stored = [(t, *previous[t.identity]) for t in tasks if t.identity in previous]
    todo = [task for task in tasks if task.identity not in previous]
    store = Store(out, config.metrics, stored)
    files += [store.csv_path, store.tasks_path]
    desc = progress if isinstance(progress, str) else "gradstat sweep"
    # disable=None: the bar shows on a terminal and stays quiet in logs and pipes.
    bar = tqdm(
        total=len(tasks),
        initial=len(stored),
        desc=desc,
        unit="analysis",
        disable=None if progress else True,
        file=sys.stderr,
    )

    def emit(task: SweepTask, outcome: TaskOutcome) -> None:
        store.write(task, outcome)
        outcomes[task.identity] = outcome
        bar.set_postfix_str(task.identity, refresh=False)
        bar.update()
        if on_result is not None:
            on_result(task, outcome)

    interrupted = False
    retried = 0
    try:
        retried = run_on(executor, todo, emit, retries=retries, batch=batch)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        store.close()
    if not interrupted:  # (an interrupted run reports no success; Ctrl-C may cut a write)
        store.check()
    done = [outcomes[t.identity] for t in tasks if t.identity in outcomes]
    by_identity = {t.identity: t for t in tasks}
    rows = [
        {column: row.get(column) for column in CSV_COLUMNS}
        for outcome in done
        for row in task_rows(by_identity[outcome.identity], outcome, config.metrics)
    ]
    return SweepResult(
        out_dir=out,
        config=config,
        cases=cases,
        rows=tuple(rows),
        files=tuple(files),
        interrupted=interrupted,
        wall_time=time.perf_counter() - started,
        reused=len(stored),
        executor=describe_executor(executor),
        tasks=tasks,
        outcomes=tuple(done),
        retried=retried,
    )


def sweep(
    grid: ReportConfig | Mapping[str, Any] | str | os.PathLike[str],
    *,
    executor: Any = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    retries: int = DEFAULT_RETRIES,
    on_result: Callable[[SweepTask, TaskOutcome], None] | None = None,
    progress: bool = True,
    batch: int | None = None,
) -> SweepResult:
    """Run every task of a grid on an executor, writing each result as it completes.

    Parameters
    ----------
    grid : ReportConfig, mapping or path of a TOML file
        Networks x estimators x options, with the method (the report's config, see
        :class:`gradstat.ReportConfig`); its ``plots`` setting is not used.
    executor : None, "serial", int, concurrent.futures.Executor or distributed.Client
        None (default): a pool of worker processes over every core
        (:func:`default_workers`); an int: a pool of that many worker processes;
        ``"serial"``: this process, one task after the other; an Executor: used as
        given (not shut down); a ``distributed.Client``: its Dask cluster
        (:func:`dask_client`).
    out : str or path-like, optional
        Output folder (default ``grid.out``): ``results.csv``, ``tasks.jsonl``,
        ``results.json`` and ``networks/``.
    resume : bool
        Keep the tasks that succeeded in an earlier run into ``out`` (read from
        ``tasks.jsonl``) and run only the others, including those that failed. Without
        it the files in ``out`` are replaced.
    retries : int
        Reruns of a lost task, the same on every executor: a task is lost when its worker
        process dies, or when its run raises outside the analysis (an error of the
        executor or the transport; an analysis that raises is recorded as failed at once).
        After ``retries + 1`` losses it is recorded as failed. Serially nothing is lost; a
        pool given here cannot be restarted, so its tasks lost with a dead worker are
        recorded at once; a Dask scheduler not started by :func:`dask_client` first
        reschedules a task of a dead worker itself, up to its
        ``distributed.scheduler.allowed-failures`` times. Default 2.
    on_result : callable, optional
        ``on_result(task, outcome)``, called in this process after each task's result is
        on disk.
    progress : bool
        Show a progress bar on a terminal.
    batch : int, optional
        Tasks sent to a worker at a time (pools and Dask; rows are written per batch).
        None: automatic (:func:`batches`: up to 16, at least 8 batches per worker), so
        that grids of many millisecond analyses do not drown in messages.

    Returns
    -------
    SweepResult

    Raises
    ------
    SweepInterrupted
        On ``KeyboardInterrupt``, after every finished task and ``results.json`` are on
        disk; its ``result`` attribute is the partial :class:`SweepResult`.
    ValueError, TypeError
        From the grid, a network file, repeated network labels, a bad ``executor`` or
        ``retries``, an output folder that another run holds (it is locked while a sweep
        runs), or, with ``resume``, an earlier run into ``out`` that holds tasks of
        another grid or computed with other settings.
    LostRowsError
        When, at the end, ``results.csv`` or ``tasks.jsonl`` do not hold exactly the rows
        this run wrote (another process changed them): no success is reported over lost
        rows.
    ImportError
        For a Dask client without ``distributed`` (``pip install "gradstat[dask]"``).

    Notes
    -----
    The sweep's own process pool starts its workers with ``spawn`` (numba's threading
    layers are not fork-safe), so a script that calls it must guard its top level with
    ``if __name__ == "__main__":``, as for any ``multiprocessing`` program. Its workers
    exit when the sweep's process dies, even by ``kill -9``. Workers limit
    numba to one thread each; the serial executor leaves numba's threads as they are
    (every core), so it uses the machine through numba's parallel kernels instead.

    Examples
    --------
    >>> import gradstat as gs
    >>> config = gs.ReportConfig.from_args(sizes=[(2, 2, 1)], estimators=["st", "sts"])
    >>> result = gs.sweep(config, executor="serial", out="sweep-out", progress=False)
    >>> len(result.outcomes), len(result.failed)
    (2, 0)
    """
    config = as_config(grid)
    out_dir = Path(config.out if out is None else out)
    options = {"executor": executor, "resume": resume, "retries": retries,
               "on_result": on_result, "progress": progress, "batch": batch}  # fmt: skip
    with locked_sweep(config, out_dir, **options) as result:
        path = out_dir / "results.json"
        result.write_json(path)
    result = replace(result, files=(*result.files, path))
    if result.interrupted:
        raise SweepInterrupted(result)
    return result
