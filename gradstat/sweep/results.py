"""What a sweep or a report produces: the rows, ``results.json`` and the result objects.

* :data:`CSV_COLUMNS`, :func:`result_rows` and :func:`task_rows`: the rows of
  ``results.csv`` (one per network x estimator x scope x metric; one per failed task);
* :func:`write_results_json`: ``results.json``, the rows with the config and networks;
* :func:`rows_frame`: the rows as a :class:`pandas.DataFrame` with nullable dtypes
  (:data:`FRAME_DTYPES`; pandas is optional, ``pip install "gradstat[pandas]"``);
* :class:`RunResult`: the fields a sweep's and a report's results share
  (:class:`SweepResult` here, :class:`gradstat.report.ReportResult` above), and
  :class:`Interrupted`, raised on Ctrl-C once what was finished is on disk
  (:class:`SweepInterrupted`, :class:`gradstat.report.ReportInterrupted`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from gradstat._frames import FRAME_DTYPES, import_pandas
from gradstat._frames import PANDAS_HINT as PANDAS_HINT  # re-exported by gradstat.sweep
from gradstat.analysis_result import ROW_COLUMNS, AnalysisResult
from gradstat.estimators.user import resolve_estimator
from gradstat.metrics import METRICS
from gradstat.sweep.config import EstimatorSpec, NetworkCase, ReportConfig
from gradstat.sweep.tasks import SweepTask, TaskOutcome

CSV_COLUMNS: tuple[str, ...] = (
    "network",
    "sizes",
    "loss",
    "seed",
    *ROW_COLUMNS,  # estimator, options, method, engine, scope, metric, value, ...
    "task",
    "status",
    "error",
    "estimator_label",
)
"""Columns of ``results.csv`` (and keys of the rows of ``results.json``): ``engine`` is
how the analysis was computed (``joint``, ``cells``, ``layerwise`` or ``monte-carlo``;
``layerwise`` leaves sign agreement and descent probability NaN), ``options`` the resolved
options as JSON with sorted keys, ``task`` is the analysis's identity
(``"<network>/<estimator label>"``), ``status`` is ``ok`` or ``error``, and a failed
analysis has one row, with its message in ``error``. ``estimator_label`` (the last column,
added after the others so that readers by position keep working) is the estimator's label
in the grid, e.g. ``reinforce baseline=mean``: unique within a grid, so that (network,
estimator_label, scope, metric) names one row even when an estimator appears with several
options."""


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun that agrees with it: ``"1 analysis"``, ``"2 analyses"``.

    Parameters
    ----------
    n : int
    singular : str
    plural : str, optional
        Default ``singular + "s"``.
    """
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _network_columns(case: NetworkCase) -> dict[str, Any]:
    """The columns that describe the network of a row."""
    sizes = ",".join(map(str, case.net.sizes))
    return {"network": case.label, "sizes": sizes, "loss": case.net.loss, "seed": case.seed}


def result_rows(
    case: NetworkCase, result: AnalysisResult, metrics: Sequence[str] = METRICS
) -> list[dict[str, Any]]:
    """The ``results.csv`` rows of one analysis: one per scope and metric.

    Scopes are ``all``, ``stochastic``, ``layer1..layerL`` and ``output``;
    ``standard_error`` and ``n_samples`` are None for exact results.
    """
    network = _network_columns(case)
    return [{**network, **row} for row in result.rows(metrics)]


def _options_text(spec: EstimatorSpec) -> str:
    try:
        options = resolve_estimator(spec.name, spec.options)[1]
    except Exception:  # the options as given: this row only reports an error
        options = dict(spec.options)
    return json.dumps(options, sort_keys=True, default=repr)


def task_rows(task: SweepTask, outcome: TaskOutcome, metrics: Sequence[str]) -> list[dict]:
    """The ``results.csv`` rows of a finished task (one holding the error if it failed)."""
    extra = {
        "task": task.identity,
        "status": outcome.status,
        "error": outcome.error,
        "estimator_label": task.estimator.label,
    }
    if outcome.ok:
        return [{**row, **extra} for row in result_rows(task.case, outcome.result, metrics)]
    row = {
        **_network_columns(task.case),
        "estimator": task.estimator.name,
        "options": _options_text(task.estimator),
        "method": task.method["method"],
        "n_samples": task.method.get("n_samples"),
    }
    return [{column: row.get(column, extra.get(column)) for column in CSV_COLUMNS}]


def _label_from_task(task: Any) -> Any:
    # "<network>/<estimator label>": network labels hold no "/" (config._check_label).
    return task.partition("/")[2] if isinstance(task, str) and "/" in task else None


def typed_frame(frame: Any) -> Any:
    """``frame`` (columns :data:`CSV_COLUMNS`, any of them text) with :data:`FRAME_DTYPES`.

    Empty strings and None become ``pd.NA``; a table written before ``estimator_label``
    existed gets it from ``task``.
    """
    pd = import_pandas()
    frame = frame.copy()
    if "estimator_label" not in frame.columns:
        frame["estimator_label"] = frame["task"].map(_label_from_task)
    out = {}
    for column in CSV_COLUMNS:
        # None, an empty CSV cell, or what pandas put in their place (NaN, NA); the
        # text "nan" of a value column is a number, read as NaN below.
        values = [
            None if (v == "" if isinstance(v, str) else pd.isna(v)) else v
            for v in frame[column].tolist()
        ]
        dtype = FRAME_DTYPES[column]
        if dtype == "string":
            out[column] = pd.array([v if v is None else str(v) for v in values], dtype=dtype)
        else:
            # float() reads the texts "nan", "inf" and "-inf" that to_numeric refuses (only
            # those: a large integer seed must not pass through a float).
            values = [float(v) if isinstance(v, str) and v.lower() in _SPECIAL else v
                      for v in values]  # fmt: skip
            numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="raise")
            out[column] = numbers.astype(dtype).array
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


_SPECIAL = ("nan", "inf", "-inf", "+inf")
"""CSV texts of non-finite numbers."""


def rows_frame(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The rows of ``results.csv`` (:func:`task_rows`) as a :class:`pandas.DataFrame`.

    Columns :data:`CSV_COLUMNS` with :data:`FRAME_DTYPES`; pivot it with
    ``frame.pivot_table(index=["network", "estimator_label"], columns=["scope", "metric"],
    values="value")``.

    Raises
    ------
    ImportError
        Without pandas (``pip install "gradstat[pandas]"``).
    """
    pd = import_pandas()
    records = [{c: row.get(c) for c in CSV_COLUMNS} for row in rows]
    return typed_frame(pd.DataFrame.from_records(records, columns=list(CSV_COLUMNS)))


def _json_value(value: Any) -> Any:
    # JSON has no NaN or infinity: write them as the strings Python's float() reads back.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_results_json(
    path: Path,
    config: ReportConfig,
    cases: Sequence[NetworkCase],
    rows: Sequence[Mapping[str, Any]],
    *,
    planned: int,
    done: int,
    failed: int = 0,
    reused: int = 0,
    complete: bool = True,
    wall_time: float = 0.0,
    executor: str = "",
) -> None:
    """Write ``results.json``: an indented header, then one line per row (thousands of
    rows stay easy to page); NaN and infinity as the strings ``"nan"``, ``"inf"``."""
    head = {
        "gradstat_report": 1,
        "complete": complete,
        "analyses_done": done,
        "analyses_planned": planned,
        "analyses_failed": failed,
        "analyses_reused": reused,
        "executor": executor,
        "wall_time_s": wall_time,
        "config": config.to_dict(),
        "networks": [case.to_dict() for case in cases],
        "columns": list(CSV_COLUMNS),
    }
    lines = [
        json.dumps({k: _json_value(v) for k, v in row.items()}, allow_nan=False) for row in rows
    ]
    text = json.dumps(head, indent=1, allow_nan=False)[:-2]
    text += ',\n "rows": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
    path.write_text(text, encoding="utf-8")


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What a run of a grid did: the fields of :class:`SweepResult` and of
    :class:`gradstat.report.ReportResult`.

    Attributes
    ----------
    out_dir : Path
    config : ReportConfig
        The grid.
    cases : tuple of NetworkCase
        Every network of the grid (also those an interrupted run did not reach).
    rows : tuple of dict
        The rows of ``results.csv`` (keys :data:`CSV_COLUMNS`; None where empty), in grid
        order (``results.csv`` itself is in the order the tasks finished).
    files : tuple of Path
        Everything written.
    interrupted : bool
        True when a ``KeyboardInterrupt`` stopped the run.
    wall_time : float
        Seconds.
    reused : int
        Tasks read back from an earlier run (``resume``) instead of computed.
    executor : str
        Where the tasks ran, e.g. ``"serially in this process"`` or ``"a pool of 2 worker
        processes"``.
    """

    out_dir: Path
    config: ReportConfig = field(repr=False)
    cases: tuple[NetworkCase, ...] = field(repr=False)
    rows: tuple[dict[str, Any], ...] = field(repr=False)
    files: tuple[Path, ...] = field(repr=False)
    interrupted: bool
    wall_time: float
    reused: int = 0
    executor: str = "serially in this process"

    @property
    def n_planned(self) -> int:
        """Number of tasks in the grid (networks x estimators)."""
        return len(self.cases) * len(self.config.estimators)

    @property
    def n_done(self) -> int:
        """Number of finished tasks (succeeded or failed, run now or reused)."""
        raise NotImplementedError

    @property
    def n_failed(self) -> int:
        """Number of failed tasks."""
        raise NotImplementedError

    def to_frame(self) -> Any:
        """:attr:`rows` as a :class:`pandas.DataFrame` (:func:`rows_frame`; needs pandas)."""
        return rows_frame(self.rows)

    def write_json(self, path: Path) -> None:
        """Write ``results.json`` for this result (:func:`write_results_json`)."""
        write_results_json(
            path,
            self.config,
            self.cases,
            self.rows,
            planned=self.n_planned,
            done=self.n_done,
            failed=self.n_failed,
            reused=self.reused,
            complete=not self.interrupted,
            wall_time=self.wall_time,
            executor=self.executor,
        )


class Interrupted(KeyboardInterrupt):
    """Raised on Ctrl-C once what was finished is on disk.

    Attributes
    ----------
    result : RunResult
        What was done (``result.interrupted`` is True).
    """

    unit: ClassVar[tuple[str, str]] = ("task", "tasks")
    """What the message counts (singular, plural)."""
    resume: ClassVar[str] = "results in {out_dir} (finish them with resume=True, or --resume)"
    """The end of the message: where the results are and how to finish them."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(
            f"interrupted after {result.n_done} of {counted(result.n_planned, *self.unit)}; "
            + self.resume.format(out_dir=result.out_dir)
        )
        self.result = result


@dataclass(frozen=True, kw_only=True)
class SweepResult(RunResult):
    """What a sweep did (:func:`gradstat.sweep`); besides the fields of :class:`RunResult`:

    Attributes
    ----------
    tasks : tuple of SweepTask
        Every task of the grid, in grid order.
    outcomes : tuple of TaskOutcome
        The finished tasks (succeeded or failed, run now or reused), in grid order.
    retried : int
        Reruns of lost tasks (their worker process died, or their run raised outside the
        analysis), counted the same way on every executor; a Dask scheduler not started
        by :func:`gradstat.sweep.dask_client` may also reschedule tasks itself, unseen
        here.
    """

    tasks: tuple[SweepTask, ...] = field(repr=False)
    outcomes: tuple[TaskOutcome, ...] = field(repr=False)
    retried: int = 0

    @property
    def n_done(self) -> int:
        return len(self.outcomes)

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    @property
    def failed(self) -> tuple[TaskOutcome, ...]:
        """The outcomes with ``status = "error"``."""
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def results(self) -> dict[str, AnalysisResult]:
        """The successful analyses, by task identity."""
        return {o.identity: o.result for o in self.outcomes if o.ok}


class SweepInterrupted(Interrupted):
    """Raised by :func:`gradstat.sweep` on Ctrl-C once the finished tasks and
    ``results.json`` are on disk; ``result`` is the partial :class:`SweepResult`."""
