"""Import time: ``import gradstat`` and the first analysis, each in fresh processes.

Each measurement runs ``--repeat`` fresh interpreters (default 10) and gives the best and
the median: the CPU time (user + system, all threads, so that other processes' load
matters less than for wall time) and the wall time of ``import numpy`` (the floor: every
use of gradstat needs numpy), of ``import gradstat``, of ``python -m gradstat --version``
(the whole process) and, on a warm numba cache (filled by one untimed run first), of the
first ``analyze`` after ``import gradstat``: the import, then the call, which loads the
kernels it needs (numba and the compiled code from the on-disk cache). The last column
lists the heavy packages the import left in ``sys.modules`` (numba, scipy, ...).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence

import _timing as timing
from bench_startup import child_threading_layer

HEAVY = ("numba", "scipy", "matplotlib", "pandas", "dask", "torch", "jax", "hypothesis")
"""Packages whose presence after an import the table reports."""

PROBE = """
import sys, time
cpu, wall = time.process_time(), time.perf_counter()
{code}
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
heavy = [n for n in {heavy!r} if n in sys.modules]
print("TIMES", cpu, wall, ",".join(heavy) or "-")
"""

ANALYZE = """
import gradstat as gs
import numpy as np
net = gs.BinaryNetwork.random((4, 3, 3, 2), seed=0)
gs.analyze(net, np.ones(4), np.zeros(2), "st_sigmoid")
"""
"""The first analysis: exact moments of one estimator on the README's network."""

CASES = {
    "`import numpy`": PROBE.format(code="import numpy", heavy=HEAVY),
    "`import gradstat`": PROBE.format(code="import gradstat", heavy=HEAVY),
    "`import gradstat` + first `analyze` (warm cache)": PROBE.format(code=ANALYZE, heavy=HEAVY),
}
"""Each case's code, timed inside a fresh interpreter (interpreter start-up excluded)."""


def best_and_median(values: Sequence[float]) -> str:
    return f"{timing.fmt_seconds(min(values))} / {timing.fmt_seconds(statistics.median(values))}"


def time_case(code: str, repeat: int) -> tuple[list[float], list[float], str]:
    """CPU and wall seconds of ``code`` in ``repeat`` fresh processes, and the heavy
    packages loaded (from the last run)."""
    cpu, wall, heavy = [], [], "-"
    for _ in range(repeat):
        out = timing.run_python(["-c", code])[2].split("TIMES ")[-1].split()
        cpu.append(float(out[0]))
        wall.append(float(out[1]))
        heavy = out[2]
    return cpu, wall, heavy


def main(argv: Sequence[str] | None = None) -> int:
    parser = timing.benchmark_parser(__doc__, quick="three processes per measurement")
    parser.set_defaults(repeat=10)
    args = timing.parse_benchmark_args(parser, argv)
    if args.quick:
        args.repeat = 3
    load_start = timing.load_average()
    timing.run_python(["-c", ANALYZE])  # fills numba's cache if it is cold (untimed)
    lines = [
        f"# Import time: best / median of {args.repeat} fresh processes",
        "",
        "| what | CPU | wall | heavy packages loaded |",
        "| --- | ---: | ---: | --- |",
    ]
    for label, code in CASES.items():
        cpu, wall, heavy = time_case(code, args.repeat)
        lines.append(f"| {label} | {best_and_median(cpu)} | {best_and_median(wall)} | {heavy} |")
        print(lines[-1], f"(load average {timing.load_average()})", file=sys.stderr, flush=True)
    runs = [timing.run_python(["-m", "gradstat", "--version"]) for _ in range(args.repeat)]
    cpu, wall = [r[1] for r in runs], [r[0] for r in runs]
    lines.append(
        f"| `python -m gradstat --version` (whole process) | {best_and_median(cpu)} "
        f"| {best_and_median(wall)} | |"
    )
    layer = child_threading_layer()
    machine = timing.machine_line(load_start)
    machine = machine.replace("(threading layer not chosen yet)", f"({layer})")
    lines += ["", machine, timing.versions_line()]
    timing.publish(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
