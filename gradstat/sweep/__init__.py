"""Sweeps: a grid of analyses run on any executor, streamed to disk, resumable.

A **grid** is what a report analyses (:class:`gradstat.ReportConfig`, its TOML file
or the same keys as a dict): networks x estimators x options, with one method. Each
**task** is one network case analysed with one estimator (:func:`gradstat.analyze`),
named by a stable **identity** ``"<network label>/<estimator label>"``, e.g.
``"4-3-1_mse_seed0/reinforce baseline=mean"``. :func:`sweep` expands the grid into tasks,
runs them on an executor and writes one result per task as soon as it completes:

* ``results.csv``: the rows of :func:`result_rows` (one per scope and
  metric) with the columns ``task``, ``status`` (``ok`` or ``error``) and ``error``, in
  the order the tasks finish; a failed task has one row holding its error message;
* ``tasks.jsonl``: one JSON line per finished task (identity, a fingerprint of its inputs,
  status, error and traceback, run time, worker, gradstat's version and the whole
  :class:`gradstat.AnalysisResult`, floats written exactly);
* ``networks/<label>.npz``: every network of the grid; at the end, ``results.json``.

:func:`load_results` reads such a folder into a :class:`pandas.DataFrame` (the metrics, or
with ``per_parameter=True`` the per-parameter arrays), and ``SweepResult.to_frame()`` turns
a result in memory into the same table; both need ``pip install "gradstat[pandas]"``.

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

**Nothing lost.** The output folder is locked for the whole run (an exclusive ``flock``
on ``.gradstat.lock`` in it, dropped by the system when the process ends, however it
ends): a second run into the same folder is refused at once (``ValueError`` naming the
folder). Each task's rows are flushed to disk as soon as it (its batch) completes, and at
the end ``results.csv`` and ``tasks.jsonl`` are read back: unless they hold exactly the
rows written, the run raises :class:`LostRowsError` instead of reporting success. A task
that raises is recorded with ``status = "error"`` and its message, and the sweep goes on.
A task is **lost** when its worker process dies, or when its run raises outside the
analysis (the executor's or the transport's error); a lost task is run again up to
``retries`` times, counted the same way on every executor (see
:mod:`gradstat.sweep.executors`: a pool passed in by the caller cannot be restarted, so
its lost tasks are recorded as errors; a Dask scheduler the sweep did not start first
reschedules them itself). Pool workers exit when the sweep's process dies.
``resume=True`` reads ``tasks.jsonl``, keeps every task that succeeded and runs the
others: those never run **and those that failed**, since a failure may have been
transient (a lost worker, memory); a deterministic failure simply fails again.

The package, each module importing only those listed before it: :mod:`.config` (the
grid's :class:`ReportConfig`, its networks and estimators), :mod:`.tasks` (one task:
:class:`SweepTask`, :func:`run_task`, :class:`TaskOutcome`), :mod:`.grid` (a grid's
tasks: identities, seeds, fingerprints), :mod:`.results` (rows, ``results.json``,
:class:`SweepResult`), :mod:`.store` (the results folder), :mod:`.executors` (serial,
process pools, Dask) and :mod:`.run` (:func:`sweep`). :mod:`gradstat.report` builds on it.
"""

from gradstat.sweep.config import EstimatorSpec, NetworkCase, ReportConfig
from gradstat.sweep.executors import (
    DASK_HINT,
    DEFAULT_RETRIES,
    MAX_BATCH,
    Emit,
    batches,
    dask_client,
    default_workers,
    exit_with_parent,
)
from gradstat.sweep.grid import as_config, grid_cases, grid_tasks, method_options, task_seed
from gradstat.sweep.results import (
    CSV_COLUMNS,
    FRAME_DTYPES,
    PANDAS_HINT,
    Interrupted,
    RunResult,
    SweepInterrupted,
    SweepResult,
    counted,
    result_rows,
    rows_frame,
    task_rows,
    write_results_json,
)
from gradstat.sweep.run import locked_sweep, run_sweep, sweep
from gradstat.sweep.store import (
    LOCK_FILE,
    PER_PARAMETER_COLUMNS,
    LostRowsError,
    hold_folder,
    load_results,
    parameter_names,
)
from gradstat.sweep.tasks import (
    TASKS_FILE,
    SweepTask,
    TaskOutcome,
    decode_result,
    encode_result,
    run_task,
    run_tasks,
)

__all__ = [
    "CSV_COLUMNS",
    "DASK_HINT",
    "DEFAULT_RETRIES",
    "FRAME_DTYPES",
    "LOCK_FILE",
    "MAX_BATCH",
    "PANDAS_HINT",
    "PER_PARAMETER_COLUMNS",
    "TASKS_FILE",
    "Emit",
    "EstimatorSpec",
    "Interrupted",
    "LostRowsError",
    "NetworkCase",
    "ReportConfig",
    "RunResult",
    "SweepInterrupted",
    "SweepResult",
    "SweepTask",
    "TaskOutcome",
    "as_config",
    "batches",
    "counted",
    "dask_client",
    "decode_result",
    "default_workers",
    "encode_result",
    "exit_with_parent",
    "grid_cases",
    "grid_tasks",
    "hold_folder",
    "load_results",
    "locked_sweep",
    "method_options",
    "parameter_names",
    "result_rows",
    "rows_frame",
    "run_sweep",
    "run_task",
    "run_tasks",
    "sweep",
    "task_rows",
    "task_seed",
    "write_results_json",
]
