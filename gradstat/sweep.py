"""Sweeps: a grid of analyses run on any executor, streamed to disk, resumable.

A **grid** is what a report analyses (:class:`gradstat.report.ReportConfig`, its TOML file
or the same keys as a dict): networks x estimators x options, with one method. Each
**task** is one network case analysed with one estimator (:func:`gradstat.analyze`),
named by a stable **identity** ``"<network label>/<estimator label>"``, e.g.
``"4-3-1_mse_seed0/reinforce baseline=mean"``. :func:`sweep` expands the grid into tasks,
runs them on an executor and writes one result per task as soon as it completes:

* ``results.csv``: the rows of :func:`gradstat.report.result_rows` (one per scope and
  metric) with the columns ``task``, ``status`` (``ok`` or ``error``) and ``error``, in
  the order the tasks finish; a failed task has one row holding its error message;
* ``tasks.jsonl``: one JSON line per finished task (identity, a fingerprint of its inputs,
  status, error and traceback, run time, worker, gradstat's version and the whole
  :class:`gradstat.AnalysisResult`, floats written exactly);
* ``networks/<label>.npz``: every network of the grid; at the end, ``results.json``.

**Executors.** ``"serial"`` runs the tasks one after the other in this process; an int
``N`` (or None: every core of the machine, :func:`default_workers`) a pool of ``N`` worker
processes that the sweep creates; any :class:`concurrent.futures.Executor` is used as
given; a :class:`distributed.Client` runs the tasks on a Dask cluster (:func:`dask_client`
joins a running scheduler or starts a ``LocalCluster``; needs ``pip install
"gradstat[dask]"``). Tasks travel as plain data (the network's parameters, sizes and loss,
the input and target, the estimator's name and options, the method's options), so
workers need only gradstat installed; they receive consecutive tasks in small batches
(:func:`batches`), so that analyses of a few milliseconds are not swamped by messages. In
worker processes numba runs one thread per task (``numba.set_num_threads(1)``): ``N``
workers on ``N`` cores then do not compete for cores. Arrays are rebuilt in the worker as
they were made (:func:`run_task`), since numba compiles, and rounds, per array layout.

**Determinism.** A task's Monte Carlo seed depends only on the grid: with
``seeding = "task"`` (the default) it is :func:`task_seed`, derived with
:class:`numpy.random.SeedSequence` from ``mc_seed`` and a SHA-256 hash of the task's
identity; with ``seeding = "common"`` every task uses ``mc_seed`` (common random numbers
across estimators). The exact sums and the draws are bit-identical for any numba thread count, so
the rows are identical whatever the executor, the number of workers or the order in which
tasks complete.

**Nothing lost.** Each task's rows are flushed to disk as soon as it (its batch)
completes. A task
that raises is recorded with ``status = "error"`` and its message, and the sweep goes on.
A task whose worker process dies is run again: by Dask itself (the scheduler reschedules
the tasks of a lost worker, up to ``distributed.scheduler.allowed-failures`` times), or by
the sweep for a process pool it created (a new pool, up to ``retries`` times per task); a
pool passed in by the caller cannot be restarted, so its lost tasks are recorded as
errors. ``resume=True`` reads ``tasks.jsonl``, keeps every task that succeeded and runs
the others: those never run **and those that failed**, since a failure may have been
transient (a lost worker, memory); a deterministic failure simply fails again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import hashlib
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gradstat import report
from gradstat.analysis import AnalysisResult
from gradstat.metrics import ScopeMetrics
from gradstat.report import (
    CSV_COLUMNS,
    EstimatorSpec,
    NetworkCase,
    ReportConfig,
    result_rows,
    write_results_json,
)
from gradstat.storage import save_network

DASK_HINT = 'pip install "gradstat[dask]"'
"""How to get Dask's distributed scheduler (the ``dask`` extra)."""

TASKS_FILE = "tasks.jsonl"
"""One JSON line per finished task; what ``resume`` reads."""

DEFAULT_RETRIES = 2
"""Reruns of a task whose worker process died (process pools the sweep creates; Dask)."""

_FORMAT = 1
"""Version of the ``tasks.jsonl`` lines and of the fingerprint."""


def task_seed(sweep_seed: int, identity: str) -> int:
    """The Monte Carlo seed of a task under ``seeding = "task"``.

    ``SeedSequence(sweep_seed, spawn_key=(h,))`` with ``h`` the first 128 bits of the
    SHA-256 hash of ``identity`` (UTF-8), reduced to one 64-bit int, so that
    ``analyze(..., seed=task_seed(...))`` repeats the task's draws anywhere.

    Parameters
    ----------
    sweep_seed : int
        The grid's ``mc_seed`` (>= 0).
    identity : str
        The task's identity, ``"<network label>/<estimator label>"``.

    Returns
    -------
    int
        In ``[0, 2**64)``.
    """
    if isinstance(sweep_seed, bool) or not isinstance(sweep_seed, (int, np.integer)):
        raise TypeError(f"sweep_seed must be a non-negative int, got {sweep_seed!r}")
    if sweep_seed < 0:
        raise ValueError(f"sweep_seed must be a non-negative int, got {sweep_seed}")
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    key = int.from_bytes(digest[:16], "little")
    sequence = np.random.SeedSequence(int(sweep_seed), spawn_key=(key,))
    return int(sequence.generate_state(1, np.uint64)[0])


@dataclass(frozen=True, eq=False)
class SweepTask:
    """One cell of a grid: a network case analysed with one estimator.

    Plain, picklable data: it is what travels to a worker.

    Attributes
    ----------
    index : int
        Position in the grid (networks in order, then estimators).
    identity : str
        ``"<network label>/<estimator label>"``: stable across runs and executors.
    case : NetworkCase
        The network, its input and target, and where it came from.
    estimator : EstimatorSpec
        Registered name and options.
    method : dict
        The method options given to :func:`gradstat.analyze`: ``method`` and, unless it
        is ``"exact"``, ``n_samples`` and ``seed``.
    fingerprint : str
        Hash of everything the result depends on (identity, network parameters, input,
        target, estimator, method options): ``resume`` reuses a stored result only when
        it matches.
    """

    index: int
    identity: str
    case: NetworkCase
    estimator: EstimatorSpec
    method: dict[str, Any]
    fingerprint: str

    @property
    def seed(self) -> int | None:
        """The Monte Carlo seed given to ``analyze`` (None with ``method = "exact"``)."""
        return self.method.get("seed")


@dataclass(frozen=True, eq=False)
class TaskOutcome:
    """What one task gave.

    Attributes
    ----------
    identity : str
    status : {"ok", "error"}
    result : AnalysisResult or None
        None when the task failed.
    error : str or None
        ``"<ExceptionType>: <message>"`` when the task failed.
    traceback : str or None
        The traceback of the failure (when the task raised in its worker).
    seconds : float
        Run time of the analysis in its worker.
    worker : str
        ``host:pid`` of the process that ran it (empty when unknown).
    reused : bool
        True for a result read back from ``tasks.jsonl`` by ``resume``.
    """

    identity: str
    status: str
    result: AnalysisResult | None = field(default=None, repr=False)
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    seconds: float = 0.0
    worker: str = ""
    reused: bool = False

    @property
    def ok(self) -> bool:
        """True when the analysis succeeded."""
        return self.status == "ok"


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did.

    Attributes
    ----------
    out_dir : Path
    config : ReportConfig
        The grid.
    cases : tuple of NetworkCase
        Every network of the grid.
    tasks : tuple of SweepTask
        Every task of the grid, in grid order.
    outcomes : tuple of TaskOutcome
        The finished tasks (succeeded or failed, run now or reused), in grid order.
    rows : tuple of dict
        The rows of ``results.csv`` (keys :data:`gradstat.report.CSV_COLUMNS`), in grid
        order.
    files : tuple of Path
        Everything written.
    executor : str
        How the tasks ran, e.g. ``"a pool of 2 worker processes"``.
    reused : int
        Tasks read back from an earlier run (``resume``).
    retried : int
        Tasks run again after their worker process died (process pools the sweep
        created; Dask reschedules such tasks itself, unseen here).
    interrupted : bool
        True when a ``KeyboardInterrupt`` stopped the sweep.
    wall_time : float
        Seconds.
    """

    out_dir: Path
    config: ReportConfig = field(repr=False)
    cases: tuple[NetworkCase, ...] = field(repr=False)
    tasks: tuple[SweepTask, ...] = field(repr=False)
    outcomes: tuple[TaskOutcome, ...] = field(repr=False)
    rows: tuple[dict[str, Any], ...] = field(repr=False)
    files: tuple[Path, ...] = field(repr=False)
    executor: str
    reused: int
    retried: int
    interrupted: bool
    wall_time: float

    @property
    def n_planned(self) -> int:
        """Number of tasks in the grid."""
        return len(self.tasks)

    @property
    def failed(self) -> tuple[TaskOutcome, ...]:
        """The outcomes with ``status = "error"``."""
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def results(self) -> dict[str, AnalysisResult]:
        """The successful analyses, by task identity."""
        return {o.identity: o.result for o in self.outcomes if o.ok}


class SweepInterrupted(KeyboardInterrupt):
    """Raised by :func:`sweep` on Ctrl-C once the finished tasks are on disk.

    Attributes
    ----------
    result : SweepResult
        What was done (``result.interrupted`` is True).
    """

    def __init__(self, result: SweepResult) -> None:
        super().__init__(
            f"interrupted after {len(result.outcomes)} of {result.n_planned} tasks; results "
            f"in {result.out_dir} (finish them with resume=True, or --resume)"
        )
        self.result = result


def default_workers() -> int:
    """The number of cores this process may use (at least 1)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


def as_config(grid: ReportConfig | Mapping[str, Any] | str | os.PathLike[str]) -> ReportConfig:
    """The :class:`ReportConfig` of a grid given as a config, a TOML path or a mapping."""
    if isinstance(grid, ReportConfig):
        return grid
    if isinstance(grid, (str, os.PathLike)):
        return ReportConfig.from_toml(grid)
    if isinstance(grid, Mapping):
        return ReportConfig.from_mapping(grid)
    raise TypeError(
        "grid must be a ReportConfig, the path of a TOML config or a mapping with the "
        f"config's keys, got {type(grid).__name__}"
    )


def method_options(config: ReportConfig, identity: str) -> dict[str, Any]:
    """The options a task gives to :func:`gradstat.analyze`: method, n_samples and seed."""
    if config.method == "exact":
        return {"method": "exact"}
    seed = config.mc_seed if config.seeding == "common" else task_seed(config.mc_seed, identity)
    return {"method": config.method, "n_samples": config.n_samples, "seed": seed}


def grid_cases(config: ReportConfig) -> tuple[NetworkCase, ...]:
    """Every network case of a grid (reading network files), with distinct labels."""
    cases = tuple(case for spec in config.networks for case in spec.cases())
    labels = [case.label for case in cases]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(
            f"network label(s) {repeated} occur more than once; give the networks distinct 'label's"
        )
    return cases


def grid_tasks(
    grid: ReportConfig | Mapping[str, Any] | str | os.PathLike[str],
    cases: Sequence[NetworkCase] | None = None,
) -> tuple[SweepTask, ...]:
    """Expand a grid into its tasks: every network case x every estimator, in that order.

    Parameters
    ----------
    grid : ReportConfig, mapping or path of a TOML file
    cases : sequence of NetworkCase, optional
        The grid's cases when already built (:func:`grid_cases`).

    Raises
    ------
    ValueError, TypeError
        From the config, a network file, or repeated network labels.
    """
    config = as_config(grid)
    cases = grid_cases(config) if cases is None else tuple(cases)
    tasks = []
    for case in cases:
        digest = _network_digest(case)
        for spec in config.estimators:
            identity = f"{case.label}/{spec.label}"
            method = method_options(config, identity)
            fingerprint = _fingerprint(identity, digest, spec, method)
            tasks.append(SweepTask(len(tasks), identity, case, spec, method, fingerprint))
    return tuple(tasks)


def _network_digest(case: NetworkCase) -> str:
    h = hashlib.sha256()
    # Every field of the network but its parameters (sizes, loss, ...), then their bits.
    described = {f.name: getattr(case.net, f.name) for f in fields(case.net) if f.name != "params"}
    h.update(json.dumps(described, sort_keys=True, default=repr).encode())
    h.update(np.ascontiguousarray(case.net.params, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(case.x, dtype=np.float64).tobytes())
    t = case.t if isinstance(case.t, int) else np.asarray(case.t, dtype=np.float64).tolist()
    h.update(json.dumps(t).encode())
    return h.hexdigest()


def _fingerprint(identity: str, network: str, spec: EstimatorSpec, method: dict) -> str:
    payload = {
        "format": _FORMAT,
        "task": identity,
        "network": network,
        "estimator": spec.name,
        "options": dict(spec.options),
        "method": method,
    }
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# -- running one task (in a worker) ---------------------------------------------------------


def _limit_threads(n: int) -> None:
    import numba

    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


def _local_case(case: NetworkCase) -> NetworkCase:
    """The case with fresh arrays, laid out as in the process that made it.

    Arrays arrive from other processes read-only, writable or unaligned depending on the
    transport (Dask reads them straight from its network buffers), and numba compiles a
    kernel per array layout, whose floating-point results may differ in the last bits.
    Rebuilding them makes every executor run the same code on the same inputs.
    """
    t = case.t if isinstance(case.t, (int, np.integer)) else np.array(case.t, dtype=np.float64)
    net = case.net.with_params(np.array(case.net.params, dtype=np.float64))
    return replace(case, net=net, x=np.array(case.x, dtype=np.float64), t=t)


def run_task(task: SweepTask, numba_threads: int | None = None) -> TaskOutcome:
    """Run one task: :func:`gradstat.analyze` of its case with its estimator.

    An exception raised by the analysis is returned as a failed outcome (with its
    message and traceback), never raised; ``KeyboardInterrupt`` and other
    ``BaseException``\\ s propagate.

    Parameters
    ----------
    task : SweepTask
    numba_threads : int, optional
        Threads for numba's parallel kernels in this thread (1 in worker processes, so
        that workers on all cores do not oversubscribe them); None leaves numba as it is.
    """
    if numba_threads is not None:
        _limit_threads(numba_threads)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    started = time.perf_counter()
    try:
        result = report.analyze_case(_local_case(task.case), task.estimator, task.method)
    except Exception as err:
        return TaskOutcome(
            task.identity,
            "error",
            error=f"{type(err).__name__}: {err}",
            traceback=traceback.format_exc(),
            seconds=time.perf_counter() - started,
            worker=worker,
        )
    return TaskOutcome(
        task.identity, "ok", result, seconds=time.perf_counter() - started, worker=worker
    )


def _init_pool_worker() -> None:
    # Ctrl-C is the parent's to handle: it cancels the sweep and stops this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_threads(1)


# -- storing results ------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    """JSON-ready form of an AnalysisResult field; floats keep every bit (repr)."""
    if isinstance(value, np.ndarray):
        return {"__array__": [_encode(v) for v in value.tolist()], "dtype": value.dtype.str}
    if isinstance(value, ScopeMetrics):
        return {"__scope__": {f.name: _encode(getattr(value, f.name)) for f in fields(value)}}
    if isinstance(value, Mapping):
        return {"__dict__": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in {TASKS_FILE}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return np.array([_decode(v) for v in value["__array__"]], dtype=np.dtype(value["dtype"]))
    if "__scope__" in value:
        return ScopeMetrics(**{k: _decode(v) for k, v in value["__scope__"].items()})
    if "__dict__" in value:
        return {k: _decode(v) for k, v in value["__dict__"].items()}
    if "__float__" in value:
        return float(value["__float__"])
    raise ValueError(f"unknown value {value!r}")


def encode_result(result: AnalysisResult) -> dict[str, Any]:
    """An :class:`AnalysisResult` as JSON-ready data (:func:`decode_result` reverses it)."""
    return {f.name: _encode(getattr(result, f.name)) for f in fields(result)}


def decode_result(data: Mapping[str, Any]) -> AnalysisResult:
    """The :class:`AnalysisResult` of :func:`encode_result`, bit for bit."""
    names = {f.name for f in fields(AnalysisResult)}
    if set(data) != names:
        raise ValueError(f"stored result has fields {sorted(data)}, expected {sorted(names)}")
    return AnalysisResult(**{k: _decode(v) for k, v in data.items()})


def _options_text(spec: EstimatorSpec) -> str:
    try:
        from gradstat.estimators import get_estimator

        options = get_estimator(spec.name).resolve_options(spec.options)
    except Exception:  # the options as given: this row only reports an error
        options = dict(spec.options)
    return json.dumps(options, sort_keys=True, default=repr)


def task_rows(task: SweepTask, outcome: TaskOutcome, metrics: Sequence[str]) -> list[dict]:
    """The ``results.csv`` rows of a finished task (one holding the error if it failed)."""
    extra = {"task": task.identity, "status": outcome.status, "error": outcome.error}
    if outcome.ok:
        return [{**row, **extra} for row in result_rows(task.case, outcome.result, metrics)]
    case = task.case
    row = {
        "network": case.label,
        "sizes": ",".join(map(str, case.net.sizes)),
        "loss": case.net.loss,
        "seed": case.seed,
        "estimator": task.estimator.name,
        "options": _options_text(task.estimator),
        "method": task.method["method"],
        "n_samples": task.method.get("n_samples"),
    }
    return [{column: row.get(column, extra.get(column)) for column in CSV_COLUMNS}]


def _version() -> str:
    import gradstat

    return getattr(gradstat, "__version__", "")


def _task_line(task: SweepTask, outcome: TaskOutcome) -> str:
    data = {
        "format": _FORMAT,
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


def _read_previous(out: Path, tasks: Sequence[SweepTask]) -> dict[str, tuple[TaskOutcome, str]]:
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


class _Store:
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


# -- executors ------------------------------------------------------------------------------

Emit = Callable[[SweepTask, TaskOutcome], None]


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
    """A Dask client for :func:`sweep`: joined to a running scheduler, or to a new cluster.

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
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
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


def _describe(executor: Any) -> str:
    if executor == "serial":
        return "serially in this process"
    if executor is None or isinstance(executor, int):
        n = default_workers() if executor is None else executor
        return f"a pool of {n} worker process{'es' if n > 1 else ''}"
    if _is_dask_client(executor):
        return f"Dask ({executor.scheduler.address})"
    return type(executor).__name__


def _check_executor(executor: Any) -> None:
    if executor is None or executor == "serial" or _is_dask_client(executor):
        return
    if isinstance(executor, concurrent.futures.Executor):
        return
    if isinstance(executor, int) and not isinstance(executor, bool):
        if executor < 1:
            raise ValueError(f"executor: a number of worker processes must be >= 1, got {executor}")
        return
    raise TypeError(
        "executor must be None (a process pool over every core), 'serial', a number of "
        "worker processes, a concurrent.futures.Executor or a distributed.Client, got "
        f"{executor!r}"
    )


MAX_BATCH = 16
"""Most tasks sent to a worker at a time (see :func:`batches`)."""


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


def run_tasks(batch: Sequence[SweepTask], numba_threads: int | None = None) -> list[TaskOutcome]:
    """:func:`run_task` for each task of a batch, in order (what a worker runs)."""
    return [run_task(task, numba_threads) for task in batch]


def _run_serial(tasks: Sequence[SweepTask], emit: Emit) -> int:
    for task in tasks:
        emit(task, run_task(task))
    return 0


def _lost(task: SweepTask, err: BaseException, note: str) -> TaskOutcome:
    return TaskOutcome(task.identity, "error", error=f"{type(err).__name__}: {err} ({note})")


def _emit_batch(batch: Sequence[SweepTask], outcomes: Sequence[TaskOutcome], emit: Emit) -> None:
    for task, outcome in zip(batch, outcomes, strict=True):
        emit(task, outcome)


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


# -- the sweep ------------------------------------------------------------------------------


def run_sweep(
    config: ReportConfig,
    out: Path,
    *,
    executor: Any = None,
    resume: bool = False,
    retries: int = DEFAULT_RETRIES,
    on_result: Callable[[SweepTask, TaskOutcome], None] | None = None,
    progress: bool | str = True,
    batch: int | None = None,
) -> SweepResult:
    """The sweep without its summary file (``results.json``): used by :func:`sweep` and
    :func:`gradstat.run_report`. A ``KeyboardInterrupt`` stops it and is reported as
    ``result.interrupted``; everything finished is then on disk."""
    started = time.perf_counter()
    _check_executor(executor)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be None (automatic) or an integer >= 1, got {batch!r}")
    cases = grid_cases(config)
    tasks = grid_tasks(config, cases)
    out.mkdir(parents=True, exist_ok=True)
    (out / "networks").mkdir(exist_ok=True)
    files = [save_network(case.net, out / "networks" / f"{case.label}.npz") for case in cases]
    previous = _read_previous(out, tasks) if resume else {}
    outcomes = {identity: outcome for identity, (outcome, _line) in previous.items()}
    stored = [(t, *previous[t.identity]) for t in tasks if t.identity in previous]
    todo = [task for task in tasks if task.identity not in previous]
    store = _Store(out, config.metrics, stored)
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
        if executor == "serial":
            retried = _run_serial(todo, emit)
        elif _is_dask_client(executor):
            retried = _run_dask(executor, todo, emit, retries=retries, batch=batch)
        else:
            given = isinstance(executor, concurrent.futures.Executor)
            if given:
                n = getattr(executor, "_max_workers", None) or default_workers()
            else:
                n = default_workers() if executor is None else executor
            retried = _run_futures(
                todo,
                emit,
                executor=executor if given else None,
                n_workers=n,
                retries=retries,
                batch=batch,
            )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        store.close()
    done = [outcomes[t.identity] for t in tasks if t.identity in outcomes]
    by_identity = {t.identity: t for t in tasks}
    rows = [
        {column: row.get(column) for column in CSV_COLUMNS}
        for outcome in done
        for row in task_rows(by_identity[outcome.identity], outcome, config.metrics)
    ]
    return SweepResult(
        out,
        config,
        cases,
        tasks,
        tuple(done),
        tuple(rows),
        tuple(files),
        _describe(executor),
        len(stored),
        retried,
        interrupted,
        time.perf_counter() - started,
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
        Reruns of a task whose worker process died: for process pools the sweep creates
        and as Dask's ``retries``. Default 2.
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
        ``retries``, or, with ``resume``, an earlier run into ``out`` that holds tasks of
        another grid or computed with other settings.
    ImportError
        For a Dask client without ``distributed`` (``pip install "gradstat[dask]"``).

    Notes
    -----
    The sweep's own process pool starts its workers with ``spawn`` (numba's threading
    layers are not fork-safe), so a script that calls it must guard its top level with
    ``if __name__ == "__main__":``, as for any ``multiprocessing`` program. Workers limit
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
    result = run_sweep(
        config,
        out_dir,
        executor=executor,
        resume=resume,
        retries=retries,
        on_result=on_result,
        progress=progress,
        batch=batch,
    )
    path = out_dir / "results.json"
    write_results_json(
        path,
        config,
        result.cases,
        result.rows,
        planned=result.n_planned,
        done=len(result.outcomes),
        failed=len(result.failed),
        reused=result.reused,
        complete=not result.interrupted,
        wall_time=result.wall_time,
        executor=result.executor,
    )
    result = replace(result, files=(*result.files, path))
    if result.interrupted:
        raise SweepInterrupted(result)
    return result
