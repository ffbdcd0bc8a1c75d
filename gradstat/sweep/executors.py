"""Where a sweep's tasks run: serially, on a process pool, or on a Dask cluster.

``"serial"`` runs the tasks one after the other in this process; an int ``N`` (or None:
every core of the machine, :func:`default_workers`) a pool of ``N`` worker processes that
the sweep creates; any :class:`concurrent.futures.Executor` is used as given; a
:class:`distributed.Client` runs the tasks on a Dask cluster (:func:`dask_client` joins a
running scheduler or starts a ``LocalCluster``; needs ``pip install "gradstat[dask]"``).
Workers receive consecutive tasks in small batches (:func:`batches`) and run numba on one
thread each; the workers of the sweep's own pool exit when this process dies, even when it
is killed (:func:`exit_with_parent`). Each finished task goes to ``emit(task, outcome)`` in
this process.

**Retries** mean the same on every executor (:func:`run_on`): a task is **lost** when its
worker process dies while it holds the task, or when its run raises outside the analysis
(an error of the executor or of the transport; an analysis that raises is a failed
outcome, never retried: it is deterministic). A lost task is run again, up to ``retries``
times; after ``retries + 1`` losses it is recorded as failed (``resume`` runs it again).
Serially nothing can be lost. A process pool loses every task it holds when one of its
workers dies; the sweep then starts a new pool if the pool is its own, while a pool given
by the caller cannot be restarted, so its lost tasks are recorded as failed at once. On
Dask the tasks of a dead worker come back as ``KilledWorker``: the ``LocalCluster`` of
:func:`dask_client` lets its scheduler give up at the first death
(``allowed_failures = 0``) so that only ``retries`` counts; a scheduler started elsewhere
first reschedules such a task itself, up to its
``distributed.scheduler.allowed-failures`` times (default 3), unseen by the sweep.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gradstat._validation import check_int
from gradstat.sweep.tasks import SweepTask, TaskOutcome, limit_threads, run_task, run_tasks

DASK_HINT = 'pip install "gradstat[dask]"'
"""How to get Dask's distributed scheduler (the ``dask`` extra)."""

DEFAULT_RETRIES = 2
"""Reruns of a lost task: its worker process died, or its run raised outside the analysis."""

PARENT_POLL = 0.5
"""Seconds between two looks of a pool worker at its parent process."""

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
        one thread each, on 127.0.0.1 and without dashboard (``--dask-local N``), whose
        scheduler reports a task lost with its worker at once (``allowed_failures = 0``:
        the sweep's ``retries`` decide what is rerun); ``cluster_options`` override those
        settings. It is closed on exit.

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
        # The first death of a worker reaches the sweep, whose ``retries`` then count alone.
        "scheduler_kwargs": {"allowed_failures": 0},
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


class _Retries:
    """The lost tasks of a run: which to run again, and the others recorded as failed.

    Every executor counts the same way: each loss of a task is one attempt, and a task is
    rerun while it has had at most ``retries`` losses.
    """

    def __init__(self, retries: int, emit: Emit) -> None:
        self.retries = retries
        self.emit = emit
        self.attempts: dict[int, int] = {}
        self.retried = 0

    def lost(
        self, tasks: Sequence[SweepTask], err: BaseException, *, died: bool, rerun: bool = True
    ) -> list[SweepTask]:
        """The tasks to run again; the others are emitted as failed.

        ``died``: their worker process died (else their run raised outside the analysis);
        ``rerun=False``: they cannot be run again (an executor given broken).
        """
        again = []
        for task in tasks:
            n = self.attempts[task.index] = self.attempts.get(task.index, 0) + 1
            if rerun and n <= self.retries:
                again.append(task)
                continue
            what = "its worker process died" if died else "its run raised outside the analysis"
            if not rerun:
                note = (
                    f"{what} and the sweep cannot restart an executor it was given (give it "
                    "a number of workers instead)"
                )
            elif n == 1:
                note = f"{what} on its only attempt (retries = 0)"
            else:
                note = f"{what} on each of {n} attempts"
            self.emit(task, _lost(task, err, note + "; resume to run it again"))
        self.retried += len(again)
        return again


def exit_with_parent(parent: int) -> None:
    """Make this process exit when process ``parent`` dies, however it dies.

    On Linux the kernel sends this process ``SIGKILL`` when its parent ends
    (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon thread also compares
    ``os.getppid()`` with ``parent`` every :data:`PARENT_POLL` seconds and exits when they
    differ (the thread cannot run while a kernel holds the interpreter, the signal can).

    Parameters
    ----------
    parent : int
        The pid of the parent, as the parent saw it (``os.getpid()`` there).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            pr_set_pdeathsig = 1
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent,), name="gradstat-parent", daemon=True
    ).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    os._exit(1)


def _init_pool_worker(parent: int | None = None) -> None:
    # Ctrl-C is the parent's to handle: it cancels the sweep and stops this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads(1)
    if parent is not None:
        exit_with_parent(parent)


def _spawn_pool(n_workers: int) -> concurrent.futures.ProcessPoolExecutor:
    # spawn, not fork: numba's threading layers are not fork-safe once started.
    return concurrent.futures.ProcessPoolExecutor(
        n_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_pool_worker,
        initargs=(os.getpid(),),
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
    lost = _Retries(retries, emit)
    pending: dict[concurrent.futures.Future, tuple[SweepTask, ...]] = {}
    try:
        while queue:
            broken: list[tuple[SweepTask, BaseException]] = []
            for group in batches(queue, n_workers, batch):
                try:
                    pending[pool.submit(run_tasks, group, 1)] = group
                except concurrent.futures.BrokenExecutor as err:
                    broken += [(task, err) for task in group]
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
                        broken += [(task, err) for task in group]
                        continue
                    except Exception as err:  # raised outside the analysis: run it again
                        queue += lost.lost(group, err, died=False)
                        continue
                    _emit_batch(group, outcomes, emit)
            for task, err in sorted(broken, key=lambda item: item[0].index):
                queue += lost.lost([task], err, died=True, rerun=owned)
            queue.sort(key=lambda task: task.index)
            if broken and queue:
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
    return lost.retried


def _run_dask(
    client: Any, tasks: Sequence[SweepTask], emit: Emit, *, retries: int, batch: int | None
) -> int:
    distributed = _distributed()
    if not tasks:
        return 0
    n_workers = len(client.scheduler_info().get("workers", {}))
    token = uuid.uuid4().hex[:12]
    lost = _Retries(retries, emit)
    pending: dict[Any, tuple[SweepTask, ...]] = {}
    # Keys are unique per submission: a rerun is a new task for the scheduler.
    submitted = iter(range(1 << 62))

    def submit(groups: Sequence[tuple[SweepTask, ...]]) -> list[Any]:
        keys = [f"gradstat-sweep-{token}-{group[0].index}-{next(submitted)}" for group in groups]
        futures = client.map(run_tasks, groups, [1] * len(groups), key=keys, pure=False)
        pending.update(zip(futures, groups))
        return futures

    running = distributed.as_completed(submit(batches(tasks, n_workers, batch)))
    try:
        for future in running:
            group = pending.pop(future)
            try:
                outcomes = future.result()
            except Exception as err:  # KilledWorker: its worker died; or raised outside
                died = type(err).__name__ == "KilledWorker"
                again = lost.lost(group, err, died=died)
                if again:
                    running.update(submit(batches(again, n_workers, batch)))
                future.release()
                continue
            future.release()
            _emit_batch(group, outcomes, emit)
    except BaseException:
        client.cancel(list(pending))
        raise
    return lost.retried


def run_on(
    executor: Any, tasks: Sequence[SweepTask], emit: Emit, *, retries: int, batch: int | None
) -> int:
    """Run ``tasks`` on ``executor`` (see :func:`gradstat.sweep`), giving each finished one
    to ``emit``; returns the number of reruns of lost tasks (see the module's text)."""
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
