"""One task of a sweep: what travels to a worker, what it runs, what comes back.

A :class:`SweepTask` is plain, picklable data (the network case, the estimator, the
method's options); :func:`run_task` runs it in whatever process receives it and returns a
:class:`TaskOutcome` (an analysis that raises is a failed outcome, never an exception).
:func:`encode_result` and :func:`decode_result` turn an :class:`gradstat.AnalysisResult`
into JSON-ready data and back, bit for bit (the ``result`` of a ``tasks.jsonl`` line).
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numba
import numpy as np

from gradstat.analysis import AnalysisResult, analyze
from gradstat.metrics import ScopeMetrics
from gradstat.sweep.config import EstimatorSpec, NetworkCase

TASKS_FILE = "tasks.jsonl"
"""One JSON line per finished task; what ``resume`` reads."""

TASK_FORMAT = 1
"""Version of the ``tasks.jsonl`` lines and of the task fingerprints."""


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

    A task that failed keeps its error and traceback instead of a result (``ok`` is False).

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


def analyze_case(
    case: NetworkCase, spec: EstimatorSpec, method: Mapping[str, Any]
) -> AnalysisResult:
    """One analysis of a grid: :func:`gradstat.analyze` of ``case`` with ``spec``.

    ``method`` holds ``analyze``'s method options (``method``, ``n_samples``, ``seed``;
    :func:`gradstat.sweep.method_options`).
    """
    return analyze(case.net, case.x, case.t, spec.name, **method, **spec.options)


def limit_threads(n: int) -> None:
    """Let numba's parallel kernels use ``n`` threads (at most as many as it started)."""
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
        limit_threads(numba_threads)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    started = time.perf_counter()
    try:
        result = analyze_case(_local_case(task.case), task.estimator, task.method)
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


def run_tasks(batch: Sequence[SweepTask], numba_threads: int | None = None) -> list[TaskOutcome]:
    """:func:`run_task` for each task of a batch, in order (what a worker runs)."""
    return [run_task(task, numba_threads) for task in batch]


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
    """The :class:`AnalysisResult` of :func:`encode_result`, bit for bit.

    Results stored before the ``uncalibrated`` field existed decode with it as None (no
    metric was flagged then).
    """
    names = {f.name for f in fields(AnalysisResult)}
    if "uncalibrated" in names and "uncalibrated" not in data:
        data = {**data, "uncalibrated": None}
    if set(data) != names:
        raise ValueError(f"stored result has fields {sorted(data)}, expected {sorted(names)}")
    return AnalysisResult(**{k: _decode(v) for k, v in data.items()})
