"""Start-up time: each command in a fresh process with an empty numba cache, then warm.

Every command runs first with an empty ``NUMBA_CACHE_DIR`` (a new temporary folder: every
kernel it needs compiles) and then ``--repeat`` times with the cache that run filled; the
table gives the cold wall time, the best warm wall time, their ratio and the cold run's
CPU time. The commands: ``python -m gradstat report --no-plots`` (the default suite, into
a temporary folder), bare ``python -m gradstat`` (the summary table) and
``python -c "import gradstat"``. A command that finds the cache cold compiles in one
process per core first (:func:`gradstat.compilation.compile_ahead`); ``--serial`` adds the
report compiled in its own process only (``GRADSTAT_COMPILE_AHEAD=0``), the CPU time to
compare. ``--warmup`` adds the cold ``gradstat warmup`` and the report after it.
``--profile`` runs the report once more in a fresh process with an empty cache, compiling
in that process only, and lists the functions whose compilation took longest (numba's
compile events; each function's own CPU time, without the functions it compiled on the
way: CPU time, so that other processes' load does not distort the shares).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence

from _timing import (
    benchmark_parser,
    fmt_seconds,
    load_average,
    machine_line,
    parse_benchmark_args,
    publish,
    python_env,
    run_python,
    versions_line,
)

COMMANDS = {
    "report": ["-m", "gradstat", "report", "--no-plots", "--out", "report"],
    "summary": ["-m", "gradstat"],
    "import": ["-c", "import gradstat"],
}
"""Each command's arguments to ``python``, run in a temporary working folder."""

PROFILE = """
import collections, sys, time
from numba.core import event

own = collections.Counter()
stack = []

class Timer(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        stack.append([f"{f.__module__}.{f.__qualname__}", time.thread_time(), 0.0])

    def on_end(self, ev):
        name, start, inner = stack.pop()
        spent = time.thread_time() - start
        own[name] += spent - inner
        if stack:
            stack[-1][2] += spent

event.register("numba:compile", Timer())
from gradstat.cli import main
main(sys.argv[1:])
print(f"TOTAL {sum(own.values()):.2f} {len(own)}")
for name, seconds in own.most_common():
    print(f"{seconds:.2f} {name}")
"""


def run(
    args: Sequence[str], cache: str, cwd: str, extra: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Wall and CPU seconds (children's user + system, with their worker processes) of
    ``python ARGS`` (environment ``extra`` added) and its stdout."""
    return run_python(args, python_env(NUMBA_CACHE_DIR=cache, **(extra or {})), cwd)


def cold_and_warm(
    args: Sequence[str],
    repeat: int,
    prepare: Sequence[str] = (),
    extra: dict[str, str] | None = None,
) -> list[float]:
    """Cold wall, cold CPU and best warm wall of ``python ARGS`` (after ``python PREPARE``
    on the empty cache, if given, whose wall time comes first; ``extra`` environment
    variables for the cold run)."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as cwd:
        first = run(prepare, cache, cwd)[0] if prepare else None
        wall, cpu, _ = run(args, cache, cwd, extra)
        warm = min(run(args, cache, cwd)[0] for _ in range(repeat))
    return [wall, cpu, warm] if first is None else [first, wall, cpu, warm]


def child_threading_layer() -> str:
    """numba's threading layer in a process that imported gradstat (its defaults applied)."""
    code = (
        "import gradstat, numba, os\n"
        "from numba.np.ufunc.parallel import _launch_threads\n"
        "_launch_threads()\n"
        "print(numba.threading_layer(), numba.get_num_threads(), "
        "os.environ.get('OMP_WAIT_POLICY'))"
    )
    layer, threads, policy = run_python(["-c", code])[2].split()
    return f"{layer} threading layer, {threads} threads, OMP_WAIT_POLICY={policy}"


def profile(top: int) -> list[str]:
    """The report's compilations in a fresh process with an empty cache, longest first."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as cwd:
        extra = {"GRADSTAT_COMPILE_AHEAD": "0"}
        _, _, out = run(["-c", PROFILE, *COMMANDS["report"][2:]], cache, cwd, extra)
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("TOTAL "))
    _, total, count = lines[head].split()
    rows = [line.split(" ", 1) for line in lines[head + 1 :]]
    table = [
        "",
        f"Compilation of `gradstat report --no-plots` with an empty cache: {count} functions, "
        f"{float(total):.1f} s of CPU in all; the {top} longest (own CPU time, without the "
        "functions compiled inside them):",
        "",
        "| function | seconds |",
        "| --- | ---: |",
    ]
    table += [f"| `{name}` | {float(sec):.2f} |" for sec, name in rows[:top]]
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, quick="import and the summary only, no report")
    parser.add_argument("--warmup", action="store_true", help="also time `gradstat warmup`")
    parser.add_argument(
        "--serial", action="store_true", help="also the report compiled in one process"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="list the N longest compilations"
    )
    args = parse_benchmark_args(parser, argv)
    load_start = load_average()
    names = ["import", "summary"] if args.quick else ["import", "summary", "report"]
    lines = [
        "# Start-up: cold (empty numba cache) and warm",
        "",
        "| command | cold | cold CPU | warm | cold / warm |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        wall, cpu, warm = cold_and_warm(COMMANDS[name], args.repeat)
        label = " ".join(["python", *COMMANDS[name]]).replace(" --out report", "")
        lines.append(
            f"| `{label}` | {fmt_seconds(wall)} | {fmt_seconds(cpu)} | {fmt_seconds(warm)} "
            f"| {wall / warm:.1f} |"
        )
        print(lines[-1], f"(load average {load_average()})", file=sys.stderr, flush=True)
    if args.serial:
        wall, cpu, warm = cold_and_warm(
            COMMANDS["report"], args.repeat, extra={"GRADSTAT_COMPILE_AHEAD": "0"}
        )
        lines.append(
            f"| report compiled in one process | {fmt_seconds(wall)} | {fmt_seconds(cpu)} "
            f"| {fmt_seconds(warm)} | {wall / warm:.1f} |"
        )
    if args.warmup:
        first, wall, cpu, warm = cold_and_warm(
            COMMANDS["report"], args.repeat, prepare=["-m", "gradstat", "warmup"]
        )
        lines.append(f"| `python -m gradstat warmup` (empty cache) | {fmt_seconds(first)} | | | |")
        lines.append(
            f"| report after the warmup | {fmt_seconds(wall)} | {fmt_seconds(cpu)} | "
            f"{fmt_seconds(warm)} | {wall / warm:.1f} |"
        )
    if args.profile:
        lines += profile(args.profile)
    layer = child_threading_layer()
    machine = machine_line(load_start).replace("(threading layer not chosen yet)", f"({layer})")
    lines += ["", machine]
    lines.append(versions_line())
    publish(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
