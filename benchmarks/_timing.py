"""Timing and formatting shared by the benchmark scripts.

Each script parses its options with :func:`benchmark_parser` and
:func:`parse_benchmark_args` (``--repeat``, ``--out`` and ``--quick``); times with
:func:`best_of` (or :func:`warm_best_of`, which warms up first, or
:func:`best_wall_and_cpu`, which also reports CPU time); formats with :func:`fmt_seconds`
and :func:`fmt_rate`; and heads its report with
:func:`machine_line` and :func:`versions_line`: the core count, numba's threads and
threading layer, the load average at start and end, and the versions of Python, numpy and
numba; :func:`publish` prints the report and writes it to ``--out``. Scripts that time
gradstat in fresh processes run them with :func:`run_python` (environment:
:func:`python_env`), which import this checkout's gradstat.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
"""The checkout whose gradstat the fresh processes of :func:`run_python` import."""


def best_wall_and_cpu(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall time and best process CPU time (all threads) of ``repeat`` calls of ``fn``."""
    wall = cpu = math.inf
    for _ in range(repeat):
        cpu_start = time.process_time()
        start = time.perf_counter()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - cpu_start)
    return wall, cpu


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls of ``fn`` (no warm-up)."""
    return best_wall_and_cpu(fn, repeat)[0]


def warm_best_of(fn: Callable[[], object], repeat: int) -> float:
    """One untimed warm-up call (numba compilation or cache load), then :func:`best_of`."""
    fn()
    return best_of(fn, repeat)


def fmt_seconds(seconds: float | None, missing: str = "-") -> str:
    """A duration in us, ms or s (three significant digits), or ``missing`` for ``None``."""
    if seconds is None:
        return missing
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_rate(per_second: float) -> str:
    """A rate in draws per second: ``M/s``, ``k/s`` or ``/s``."""
    if per_second >= 1e6:
        return f"{per_second / 1e6:.3g} M/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.3g} k/s"
    return f"{per_second:.3g} /s"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def threading_layer() -> str:
    """numba's threading layer, once a parallel kernel has chosen it."""
    try:
        return f"{numba.threading_layer()} threading layer"
    except ValueError:  # no parallel kernel has run yet
        return "threading layer not chosen yet"


def machine_line(load_start: str, threads: str = "") -> str:
    """The machine: core count, numba's threads (``threads`` qualifies them), load average.

    Call it after the measurements: ``load_start`` is :func:`load_average` before them,
    and the load average now is the one at the end.
    """
    return (
        f"Machine: {platform.processor() or platform.machine()}, os.cpu_count() = "
        f"{os.cpu_count()}, numba threads = {numba.get_num_threads()}{threads} "
        f"({threading_layer()}); load average {load_start} at start, {load_average()} at end "
        "(other processes skew the timings)."
    )


def versions_line() -> str:
    """``Python x, numpy y, numba z``."""
    return f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"


def benchmark_parser(doc: str, quick: str | None = None) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--repeat``, ``--out``, and ``--quick`` when
    ``quick`` says what that runs; the description is the first line of ``doc``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    return parser


def parse_benchmark_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """The parsed options: ``--quick`` times once, and ``--repeat`` must be at least 1."""
    args = parser.parse_args(argv)
    if getattr(args, "quick", False):
        args.repeat = 1
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def publish(lines: Sequence[str], out: Path | None) -> None:
    """Print the report, and write it to ``out`` too unless that is ``None``."""
    text = "\n".join(lines)
    print(text)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")


def python_env(**variables: str) -> dict[str, str]:
    """This process's environment with ``PYTHONPATH`` on :data:`ROOT`, plus ``variables``."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **variables}


def run_python(
    args: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None
) -> tuple[float, float, str]:
    """Run ``python ARGS`` in a fresh process: its wall seconds, CPU seconds (its user +
    system time, all threads) and stdout.

    ``env`` defaults to :func:`python_env`. A failure raises ``RuntimeError`` with the end
    of the process's stderr.
    """
    env = python_env() if env is None else env
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} failed: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout
