"""Where a sweep's tasks run: serially, on a process pool, or on a Dask cluster.

``"serial"`` runs the tasks one after the other in this process; an int ``N`` (or None:
every core of the machine, :func:`default_workers`) a pool of ``N`` worker processes that
the sweep creates; any :class:`concurrent.futures.Executor` is used as given; a
:class:`distributed.Client` runs the tasks on a Dask cluster (:func:`dask_client` joins a
running scheduler or starts a ``LocalCluster``; needs ``pip install "gradstat[dask]"``).
Workers receive consecutive tasks in small batches (:func:`batches`) and run numba on one
thread each. A task whose worker process dies is run again: by Dask itself, or by
:func:`run_on` for a process pool it created (a new pool, up to ``retries`` times per
task); a pool passed in by the caller cannot be restarted, so its lost tasks are recorded
as errors. Each finished task goes to ``emit(task, outcome)`` in this process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gradstat._validation import check_int
from gradstat.sweep.tasks import SweepTask, TaskOutcome, limit_threads, run_task, run_tasks

DASK_HINT = 'pip install "gradstat[dask]"'
"""How to get Dask's distributed scheduler (the ``dask`` extra)."""

DEFAULT_RETRIES = 2
"""Reruns of a task whose worker process died (process pools the sweep creates; Dask)."""

MAX_BATCH = 16
"""Most tasks sent to a worker at a time (see :func:`batches`)."""

Emit = Callable[[SweepTask, TaskOutcome], None]
"""What receives each finished task, in this process: ``emit(task, outcome)``."""


def default_workers() -> int:
    """The number of cores this process may use (at least 1)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            f"Dask's distributed scheduler is not installed; get it with `{DASK_HINT}`"
        ) from err
    return distributed


def _is_dask_client(executor: Any) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(executor, distributed.Client)


@contextlib.contextmanager
def dask_client(
    address: str | None = None, *, n_workers: int | None = None, **cluster_options: Any
) -> Iterator[Any]:
    """A Dask client for :func:`gradstat.sweep`: joined to a running scheduler, or to a new cluster.

    Parameters
    ----------
    address : str, optional
        A running scheduler, e.g. ``"tcp://10.0.0.5:8786"`` (``--scheduler``).
    n_workers : int, optional
        Instead: start a ``distributed.LocalCluster`` of this many worker processes with
        one thread each, on 127.0.0.1 and without dashboard (``--dask-local N``);
        ``cluster_options`` override those settings. It is closed on exit.

    Raises
    ------
    ImportError
        Without Dask's distributed scheduler; the message says ``pip install
        "gradstat[dask]"``.
    ValueError
        Unless exactly one of ``address`` and ``n_workers`` is given.
    """
    if (address is None) == (n_workers is None):
        raise ValueError(
            "give exactly one of address (a running Dask scheduler) and n_workers "
            "(a new local cluster)"
        )
    distributed = _distributed()
    if address is not None:
        with distributed.Client(address) as client:
            yield client
        return
    check_int(n_workers, "n_workers", minimum=1)
    options = {
        "n_workers": n_workers,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        **cluster_options,
    }
    with distributed.LocalCluster(**options) as cluster, distributed.Client(cluster) as client:
        yield client


def describe_executor(executor: Any) -> str:
    """How the tasks run, e.g. ``"a pool of 2 worker processes"`` (``SweepResult.executor``)."""
    if executor == "serial":
        return "serially in this process"
    if executor is None or isinstance(executor, int):
        n = default_workers() if executor is None else executor
        return f"a pool of {n} worker process{'es' if n > 1 else ''}"
    if _is_dask_client(executor):
        return f"Dask ({executor.scheduler.address})"
    return type(executor).__name__


def check_executor(executor: Any) -> None:
    """Refuse what :func:`run_on` cannot run on (``TypeError``, ``ValueError``)."""
    if executor is None or executor == "serial" or _is_dask_client(executor):
        return
    if isinstance(executor, concurrent.futures.Executor):
        return
    if isinstance(executor, int) and not isinstance(executor, bool):
        check_int(executor, "executor (a number of worker processes)", minimum=1)
        return
    raise TypeError(
        "executor must be None (a process pool over every core), 'serial', a number of "
        "worker processes, a concurrent.futures.Executor or a distributed.Client, got "
        f"{executor!r}"
    )


def batches(
    tasks: Sequence[SweepTask], n_workers: int, size: int | None = None
) -> list[tuple[SweepTask, ...]]:
    """Consecutive tasks grouped into the units of work sent to workers.

    Sending tasks of a few milliseconds one by one costs more in messages than in
    computing (a few milliseconds each through Dask). By default (``size=None``) a batch
    holds ``len(tasks) // (8 * n_workers)`` tasks, between 1 and :data:`MAX_BATCH`: at
    least 8 batches per worker keep them all busy to the end. Each finished batch is
    written at once; a batch lost with its worker is run again whole.
    """
    if size is None:
        size = max(1, min(MAX_BATCH, len(tasks) // (8 * max(1, n_workers))))
    return [tuple(tasks[i : i + size]) for i in range(0, len(tasks), size)]


def _run_serial(tasks: Sequence[SweepTask], emit: Emit) -> int:
    for task in tasks:
        emit(task, run_task(task))
    return 0


def _lost(task: SweepTask, err: BaseException, note: str) -> TaskOutcome:
    return TaskOutcome(task.identity, "error", error=f"{type(err).__name__}: {err} ({note})")


def _emit_batch(batch: Sequence[SweepTask], outcomes: Sequence[TaskOutcome], emit: Emit) -> None:
    for task, outcome in zip(batch, outcomes, strict=True):
        emit(task, outcome)


def _init_pool_worker() -> None:
    # Ctrl-C is the parent's to handle: it cancels the sweep and stops this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads(1)


def _spawn_pool(n_workers: int) -> concurrent.futures.ProcessPoolExecutor:
    # spawn, not fork: numba's threading layers are not fork-safe once started.
    return concurrent.futures.ProcessPoolExecutor(
        n_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_pool_worker
    )


def _stop_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel what is queued and stop the worker processes now (Ctrl-C)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()


def _run_futures(
    tasks: Sequence[SweepTask],
    emit: Emit,
    *,
    executor: concurrent.futures.Executor | None,
    n_workers: int,
    retries: int,
    batch: int | None,
) -> int:
    """Run on a concurrent.futures executor; None: a process pool of our own."""
    owned = executor is None
    pool = _spawn_pool(n_workers) if owned else executor
    queue = list(tasks)
    attempts: dict[int, int] = {}
    retried = 0
    pending: dict[concurrent.futures.Future, tuple[SweepTask, ...]] = {}
    try:
        while queue:
            lost: list[tuple[SweepTask, BaseException]] = []
            for group in batches(queue, n_workers, batch):
                try:
                    pending[pool.submit(run_tasks, group, 1)] = group
                except concurrent.futures.BrokenExecutor as err:
                    lost += [(task, err) for task in group]
            queue = []
            while pending:
                done, _ = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in sorted(done, key=lambda f: pending[f][0].index):
                    group = pending.pop(future)
                    try:
                        outcomes = future.result()
                    except concurrent.futures.BrokenExecutor as err:
                        lost += [(task, err) for task in group]
                        continue
                    except Exception as err:
                        outcomes = [_lost(task, err, "raised by the executor") for task in group]
                    _emit_batch(group, outcomes, emit)
            for task, err in sorted(lost, key=lambda item: item[0].index):
                attempts[task.index] = attempts.get(task.index, 0) + 1
                if owned and attempts[task.index] <= retries:
                    queue.append(task)
                    continue
                if owned:
                    note = f"its worker process died on each of {attempts[task.index]} attempts"
                else:
                    note = (
                        "its worker process died and the sweep cannot restart an executor it "
                        "was given (give it a number of workers instead)"
                    )
                emit(task, _lost(task, err, note + "; resume to run it again"))
            if queue:
                retried += len(queue)
                pool.shutdown(wait=True)
                pool = _spawn_pool(n_workers)
    except BaseException:
        for future in pending:
            future.cancel()
        if owned:
            _stop_pool(pool)
        raise
    if owned:
        pool.shutdown(wait=True)
    return retried


def _run_dask(
    client: Any, tasks: Sequence[SweepTask], emit: Emit, *, retries: int, batch: int | None
) -> int:
    distributed = _distributed()
    if not tasks:
        return 0
    n_workers = len(client.scheduler_info().get("workers", {}))
    groups = batches(tasks, n_workers, batch)
    token = uuid.uuid4().hex[:12]
    keys = [f"gradstat-sweep-{token}-{group[0].index}" for group in groups]
    futures = client.map(
        run_tasks, groups, [1] * len(groups), key=keys, pure=False, retries=retries
    )
    pending = dict(zip(futures, groups))
    try:
        for future in distributed.as_completed(futures):
            group = pending.pop(future)
            try:
                outcomes = future.result()
            except Exception as err:  # KilledWorker: its workers kept dying; cancelled
                outcomes = [_lost(t, err, "lost by Dask; resume to run it again") for t in group]
            future.release()
            _emit_batch(group, outcomes, emit)
    except BaseException:
        client.cancel(list(pending))
        raise
    return 0


def run_on(
    executor: Any, tasks: Sequence[SweepTask], emit: Emit, *, retries: int, batch: int | None
) -> int:
    """Run ``tasks`` on ``executor`` (see :func:`gradstat.sweep`), giving each finished one
    to ``emit``; returns the number of tasks rerun after their worker process died."""
    if executor == "serial":
        return _run_serial(tasks, emit)
    if _is_dask_client(executor):
        return _run_dask(executor, tasks, emit, retries=retries, batch=batch)
    given = isinstance(executor, concurrent.futures.Executor)
    if given:
        n = getattr(executor, "_max_workers", None) or default_workers()
    else:
        n = default_workers() if executor is None else executor
    return _run_futures(
        tasks,
        emit,
        executor=executor if given else None,
        n_workers=n,
        retries=retries,
        batch=batch,
    )
