"""Sharing the cores: a computation alone, then beside other busy gradstat processes.

A fresh process times the exact gradient of an ``(8, 20, 1)`` network (``N = 20``) and the
exact moments of ``st_sigmoid`` on ``(8, 10, 10, 1)`` (median of ``--repeat`` calls after
one untimed call), first alone and then while ``--busy`` other gradstat processes (default
2) compute the same moments in a loop. On ``c`` cores a fair share slows a process that
uses every core by about ``(busy + 1)`` when each busy process also uses every core (3x
on 2 cores beside 2 others); threads that spin while they wait for a descheduled
teammate slow it far more. ``--env NAME=VALUE`` (repeatable) sets a variable in every
process, e.g. ``OMP_WAIT_POLICY=ACTIVE`` to see spinning threads.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence

import _timing

SETUP = """
import statistics, sys, time
import numpy as np
import gradstat as gs

grad_net = gs.BinaryNetwork.random((8, 20, 1), seed=0)
deep_net = gs.BinaryNetwork.random((8, 10, 10, 1), seed=0)
x, t = np.ones(8), np.zeros(1)
work = {
    "exact_gradient (8, 20, 1)": lambda: gs.exact_gradient(grad_net, x, t),
    "st_sigmoid exact moments (8, 10, 10, 1)": lambda: gs.estimator_moments(
        deep_net, x, t, "st_sigmoid"
    ),
}
for fn in work.values():
    fn()
"""

MEASURE = (
    SETUP
    + """
import numba
repeat = int(sys.argv[1])
for name, fn in work.items():
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    print(f"{statistics.median(times)}\\t{name}")
print(f"LAYER\\t{numba.threading_layer()}")
"""
)

BUSY = (
    SETUP
    + """
print("ready", flush=True)
while True:
    work["st_sigmoid exact moments (8, 10, 10, 1)"]()
"""
)


def _env(extra: Sequence[str]) -> dict[str, str]:
    """The fresh processes' environment with the ``NAME=VALUE`` settings of ``--env``."""
    return _timing.python_env(**dict(item.partition("=")[::2] for item in extra))


def measure(repeat: int, env: dict[str, str]) -> tuple[dict[str, float], str]:
    """Median seconds per workload in a fresh process, and its threading layer."""
    out = _timing.run_python(["-c", MEASURE, str(repeat)], env)[2]
    times, layer = {}, ""
    for line in out.splitlines():
        value, name = line.split("\t")
        if value == "LAYER":
            layer = name
        else:
            times[name] = float(value)
    return times, layer


def beside_busy(n_busy: int, repeat: int, env: dict[str, str]) -> dict[str, float]:
    """:func:`measure` while ``n_busy`` other processes compute (started and warm first)."""
    procs = [
        subprocess.Popen([sys.executable, "-c", BUSY], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(n_busy)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a busy process failed to start")
        time.sleep(1.0)
        return measure(repeat, env)[0]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _timing.benchmark_parser(__doc__, quick="fewer timed calls")
    parser.add_argument("--busy", type=int, default=2, help="other busy processes (default 2)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.set_defaults(repeat=20)
    args = _timing.parse_benchmark_args(parser, argv)
    repeat = 5 if args.quick else args.repeat
    env = _env(args.env)
    load_start = _timing.load_average()
    measure(1, env)  # fills the numba cache, so that every process below loads it
    alone, layer = measure(repeat, env)
    busy = beside_busy(args.busy, repeat, env)
    settings = ", ".join(args.env) or "gradstat's defaults"
    lines = [
        f"# Contention: alone and beside {args.busy} busy gradstat processes ({settings})",
        "",
        f"| computation (median of {repeat}) | alone | beside {args.busy} busy | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, seconds in alone.items():
        lines.append(
            f"| {name} | {_timing.fmt_seconds(seconds)} | {_timing.fmt_seconds(busy[name])} | "
            f"{busy[name] / seconds:.1f}x |"
        )
    fair = args.busy + 1
    lines += [
        "",
        f"A fair share on every core is about {fair}x when each busy process also uses every core.",
        "",
        _timing.machine_line(load_start).replace(
            "threading layer not chosen yet", f"{layer} layer"
        ),
        _timing.versions_line(),
    ]
    _timing.publish(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
