"""The results folder of a sweep: its lock, ``results.csv`` and ``tasks.jsonl``, task by task.

:func:`hold_folder` locks the folder for the whole run (an exclusive ``flock`` on
``.gradstat.lock`` inside it, which the system releases when the process ends, however it
ends), so that a second run into the same folder is refused at once instead of replacing
the files under the first. :class:`Store` appends each finished task's rows to
``results.csv`` and its line to ``tasks.jsonl`` (identity, fingerprint, status, error and
traceback, run time, worker, gradstat's version and the whole
:class:`gradstat.AnalysisResult`, floats written exactly), flushing both, so that an
interrupted sweep keeps everything finished; :meth:`Store.check` reads both files back at
the end and raises :class:`LostRowsError` unless they hold exactly the rows written.
:func:`read_previous` reads ``tasks.jsonl`` back for ``resume``; :func:`load_results` reads
a finished (or interrupted) folder into a :class:`pandas.DataFrame`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gradstat._validation import parameter_count
from gradstat.storage import save_network
from gradstat.sweep.config import NetworkCase
from gradstat.sweep.results import CSV_COLUMNS, import_pandas, task_rows, typed_frame
from gradstat.sweep.tasks import (
    TASK_FORMAT,
    TASKS_FILE,
    SweepTask,
    TaskOutcome,
    decode_result,
    encode_result,
)

try:
    import fcntl
except ImportError:  # Windows: folders are not locked there
    fcntl = None  # type: ignore[assignment]


LOCK_FILE = ".gradstat.lock"
"""The lock file of a results folder (it holds the pid of the last run that locked it)."""

_HELD: dict[tuple[str, int], list[int]] = {}
"""Folders locked by this process: (real path, thread) -> [descriptor, depth]."""


class LostRowsError(RuntimeError):
    """The results files do not hold the rows this run wrote into them.

    Raised at the end of a sweep or report instead of reporting success: another process
    replaced or changed ``results.csv`` or ``tasks.jsonl`` while the run wrote them.
    """


def _refuse(out: Path, fd: int) -> None:
    try:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        holder = ""
    os.close(fd)
    who = f" (process {holder})" if holder.isdigit() else ""
    raise ValueError(
        f"output folder {str(out)!r} is in use: another gradstat run holds it{who}; wait "
        "for it to end, or write to another folder (--out)"
    )


def _lock(out: Path) -> int | None:
    """An open descriptor of the folder's lock file, exclusively locked (None: no locks)."""
    if fcntl is None:
        return None
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _refuse(out, fd)
    except OSError:  # a file system without locks: the check at the end still guards
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


@contextlib.contextmanager
def hold_folder(out: Path) -> Iterator[None]:
    """Lock the results folder ``out`` (created if needed) while the block runs.

    The lock is an exclusive ``flock`` on ``out/.gradstat.lock``, held until the block
    ends; the system drops it when the process dies, however it dies. The same thread
    may enter it again (a report holds it around its sweep); any other run, in this
    process or another, is refused.

    Raises
    ------
    ValueError
        When another run holds the folder: the message names it.
    """
    out.mkdir(parents=True, exist_ok=True)
    key = (os.path.realpath(out), threading.get_ident())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    fd = _lock(out)
    _HELD[key] = [-1 if fd is None else fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        if fd is not None:
            os.close(fd)  # releases the lock


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
        self.lines: Counter[str] = Counter(task.identity for task, _o, _l in previous)
        self.rows: Counter[str] = Counter()
        for task, outcome, _line in previous:
            self.rows[task.identity] += len(task_rows(task, outcome, self.metrics))

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
        rows = task_rows(task, outcome, self.metrics)
        self.writer.writerows(rows)
        self.csv_fh.flush()
        self.rows[task.identity] += len(rows)
        self.tasks_fh.write(_task_line(task, outcome) + "\n")
        self.tasks_fh.flush()
        self.lines[task.identity] += 1

    def close(self) -> None:
        self.csv_fh.close()
        self.tasks_fh.close()

    def check(self) -> None:
        """Read both files back: they must hold exactly the lines and rows written.

        Raises
        ------
        LostRowsError
            When they do not (another process replaced or changed them meanwhile).
        """
        lines: Counter[str] = Counter()
        rows: Counter[str] = Counter()
        with contextlib.suppress(FileNotFoundError), self.tasks_path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    lines[json.loads(line)["task"]] += 1
                except (ValueError, KeyError, TypeError):
                    lines[""] += 1  # a line that is not one of ours
        with (
            contextlib.suppress(FileNotFoundError),
            self.csv_path.open(newline="", encoding="utf-8") as fh,
        ):
            rows.update(row.get("task") or "" for row in csv.DictReader(fh))
        if lines == self.lines and rows == self.rows:
            return
        raise LostRowsError(
            f"the results in {str(self.csv_path.parent)!r} are not those of this run: "
            f"{TASKS_FILE} holds {lines.total()} lines and results.csv {rows.total()} rows, "
            f"but this run wrote {self.lines.total()} and {self.rows.total()} (another "
            "process replaced or changed them meanwhile); rerun into this folder, with "
            "--resume to keep what it holds"
        )


PER_PARAMETER_COLUMNS: tuple[str, ...] = (
    "network",
    "estimator_label",
    "estimator",
    "options",
    "method",
    "engine",
    "task",
    "parameter",
    "name",
    "group",
    "gradient",
    "mean",
    "var",
    "bias",
    "sign_probability",
)
"""Columns of ``load_results(folder, per_parameter=True)``: one row per task and
parameter; ``parameter`` is the index into the flat vector, ``name`` e.g. ``W1[2,0]``
(layer 1, unit 2, input 0) or ``bo[1]``, ``group`` its scope (``layer1..layerL``,
``output``); ``mean`` and ``var`` are the estimator's (Monte Carlo estimates when
``method`` is ``mc``), ``bias = mean - gradient``."""


def parameter_names(sizes: Sequence[int]) -> list[tuple[str, str]]:
    """``(name, group)`` of each parameter in the flat order ``W_1, b_1, ..., W_o, b_o``.

    ``W<l>[i,j]`` is the weight from unit ``j`` of the layer below to unit ``i`` of layer
    ``l`` (``o`` for the output layer), ``b<l>[i]`` the bias of unit ``i``.
    """
    out: list[tuple[str, str]] = []
    n_layers = len(sizes) - 1
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        tag, group = ("o", "output") if k == n_layers else (str(k), f"layer{k}")
        out += [(f"W{tag}[{i},{j}]", group) for i in range(fan_out) for j in range(fan_in)]
        out += [(f"b{tag}[{i}]", group) for i in range(fan_out)]
    return out


def _check_folder(folder: Any) -> Path:
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(
            f"folder must be a path (str or os.PathLike) to a sweep's or report's output "
            f"folder, got {type(folder).__name__}"
        )
    path = Path(folder)
    if not (path / "results.csv").is_file():
        raise ValueError(
            f"folder {str(path)!r} holds no results.csv: give the output folder of "
            "gradstat.sweep, gradstat.run_report or `gradstat report --out`"
        )
    return path


def _per_parameter(path: Path, frame: Any) -> Any:
    pd = import_pandas()
    sizes = {
        row.network: tuple(int(n) for n in row.sizes.split(","))
        for row in frame[["network", "sizes"]].dropna().drop_duplicates().itertuples()
    }
    last: dict[str, dict] = {}  # a task rerun by resume: its last line counts
    with contextlib.suppress(FileNotFoundError), (path / TASKS_FILE).open(encoding="utf-8") as fh:
        for line in fh:
            try:
                data = json.loads(line)
                last[data["task"]] = data
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash
    parts = []
    for identity, data in last.items():
        if data.get("status") != "ok" or data.get("network") not in sizes:
            continue
        result = decode_result(data["result"])
        names = parameter_names(sizes[data["network"]])
        if len(names) != result.gradient.size:
            raise ValueError(
                f"{TASKS_FILE} in {str(path)!r}: task {identity!r} has "
                f"{result.gradient.size} parameters, but its network's sizes in results.csv "
                f"have {parameter_count(sizes[data['network']])}; the two files are not "
                "from the same run"
            )
        n = len(names)
        parts.append(
            pd.DataFrame(
                {
                    "network": [data["network"]] * n,
                    "estimator_label": [data.get("estimator")] * n,
                    "estimator": [result.estimator] * n,
                    "options": [json.dumps(result.options, sort_keys=True)] * n,
                    "method": [result.method] * n,
                    "engine": [result.engine] * n,
                    "task": [identity] * n,
                    "parameter": range(n),
                    "name": [name for name, _ in names],
                    "group": [group for _, group in names],
                    "gradient": result.gradient,
                    "mean": result.mean,
                    "var": result.var,
                    "bias": result.bias,
                    "sign_probability": result.sign_probability,
                }
            )
        )
    text = [*PER_PARAMETER_COLUMNS[:7], "name", "group"]
    dtypes = {**dict.fromkeys(PER_PARAMETER_COLUMNS, "float64"), **dict.fromkeys(text, "string")}
    dtypes["parameter"] = "Int64"
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in PER_PARAMETER_COLUMNS})
    return pd.concat(parts, ignore_index=True).astype(dtypes)


def load_results(folder: str | os.PathLike[str], *, per_parameter: bool = False) -> Any:
    """The results of a sweep or report folder as a :class:`pandas.DataFrame`.

    Parameters
    ----------
    folder : str or path-like
        The output folder of :func:`gradstat.sweep`, :func:`gradstat.run_report` or
        ``gradstat report --out``.
    per_parameter : bool, default False
        False: ``results.csv``, one row per network x estimator x scope x metric (columns
        :data:`gradstat.sweep.CSV_COLUMNS`, dtypes
        :data:`gradstat.sweep.results.FRAME_DTYPES`). True: the per-parameter arrays of
        every successful task, read from ``tasks.jsonl``, one row per task and parameter
        (columns :data:`PER_PARAMETER_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        With ``per_parameter=False``, (``network``, ``estimator_label``, ``scope``,
        ``metric``) names one row of a successful task, so that e.g.
        ``frame.pivot(index=["network", "estimator_label"], columns=["scope", "metric"],
        values="value")`` works; integers load as ``Int64`` and missing values as
        ``pd.NA``. With ``per_parameter=True``, (``task``, ``parameter``) names one row.

    Raises
    ------
    ImportError
        Without pandas (``pip install "gradstat[pandas]"``).
    TypeError, ValueError
        When ``folder`` is not a path, or holds no ``results.csv``.

    Examples
    --------
    >>> frame = gradstat.sweep.load_results("gradstat-report")  # doctest: +SKIP
    >>> frame.query("scope == 'all' and metric == 'mse'")  # doctest: +SKIP
    """
    pd = import_pandas()
    if not isinstance(per_parameter, bool):
        raise TypeError(f"per_parameter must be True or False, got {per_parameter!r}")
    path = _check_folder(folder)
    text = pd.read_csv(path / "results.csv", dtype=str, keep_default_na=False)
    frame = typed_frame(text)
    return _per_parameter(path, frame) if per_parameter else frame
