"""Monte Carlo draw rates of gradstat's sampling kernels, printed as a Markdown table.

For several estimators and networks (one example unless stated, mse loss; ``xent`` for
the ten-class network) it measures single-example draws per second of

* the kernel alone: :meth:`gradstat.sampling.Sampler.fill` writing into a preallocated
  array (noise generation, estimates, full-layout output);
* ``gradstat.sample_gradients`` end to end (validation, a fresh output array per call);
* ``gradstat.analyze(method="mc")`` end to end (the exact reference gradient, then draws
  whose sums are accumulated inside the sampling kernel: nothing is materialised), in
  calls of ``ANALYZE_DRAWS`` single-example draws.

Draws are made in calls of at most ``CALL_BYTES`` of output each, enough calls to take
about ``SECONDS`` per measurement; every measurement warms up once (compilation or the
on-disk cache) and reports the best of ``--repeat`` runs, with numba on one thread and on
all of its threads. Besides wall-clock rates it reports the process CPU time per draw,
which other processes on the machine disturb less. The header gives the core count,
numba's threads and threading layer and the load average; the project's targets for
``st_sigmoid`` on ``(8, 8, 8, 1)`` on 2 cores (at least 2 million single-example draws
per second through ``sample_gradients``, and 3 million through ``analyze(method="mc")``
with ``n_samples=10**6``) are checked against the measurements.

Run from the repository root::

    python benchmarks/bench_sampling.py            # every case (a few minutes)
    python benchmarks/bench_sampling.py --quick    # the target case only, one repeat
    python benchmarks/bench_sampling.py --out sampling.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout

import _timing  # noqa: E402

import gradstat as gs  # noqa: E402
from gradstat.engines.sampling import make_sampler  # noqa: E402
from gradstat.estimators.user import resolve_estimator  # noqa: E402
from gradstat.problem import make_problem  # noqa: E402

TARGET_SIZES = (8, 8, 8, 1)
TARGET_ESTIMATOR = "st_sigmoid"
TARGET_RATE = 2e6
TARGET = "sample_gradients st_sigmoid on (8, 8, 8, 1) >= 2 M draws/s on 2 cores"
ANALYZE_RATE = 3e6
ANALYZE_TARGET = 'analyze(method="mc") st_sigmoid on (8, 8, 8, 1) >= 3 M draws/s on 2 cores'
ANALYZE_DRAWS = 10**6
"""Draws per ``analyze`` call (``--quick``: a tenth)."""


@dataclass(frozen=True)
class Case:
    """One measured configuration."""

    sizes: tuple[int, ...]
    estimator: str
    options: dict[str, Any]
    n_examples: int = 1
    loss: str = "mse"

    @property
    def label(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        name = f"{self.estimator}({opts})" if opts else self.estimator
        batch = f", B={self.n_examples}" if self.n_examples > 1 else ""
        return f"{name} {self.sizes}{batch}"


CASES = (
    Case(TARGET_SIZES, TARGET_ESTIMATOR, {}),
    Case(TARGET_SIZES, "st", {}),
    Case(TARGET_SIZES, "sts", {}),
    Case(TARGET_SIZES, "reinforce", {}),
    Case(TARGET_SIZES, "reinmax", {}),
    Case(TARGET_SIZES, "disarm", {}),
    Case(TARGET_SIZES, "gumbel_st", {}),
    Case(TARGET_SIZES, "rebar", {}),
    Case(TARGET_SIZES, "noisy_rectifier", {}),
    Case((8, 20, 1), TARGET_ESTIMATOR, {}),
    Case((16, 32, 32, 10), TARGET_ESTIMATOR, {}, loss="xent"),
    Case(TARGET_SIZES, TARGET_ESTIMATOR, {}, n_examples=16),
)
"""Every case; the first is the target."""

CALL_BYTES = 16 * 2**20
"""Output bytes per call (the output is all the memory a call needs, besides a few KB of
scratch per chunk of draws)."""
SECONDS = 0.3
"""Target duration of one measurement."""


@dataclass
class Rate:
    """Single-example draws per second (wall clock) and process CPU nanoseconds per draw."""

    per_second: float
    cpu_ns: float


def problem_of(case: Case) -> tuple[gs.BinaryNetwork, np.ndarray, np.ndarray]:
    """The network, inputs and targets of a case (fixed seeds)."""
    net = gs.BinaryNetwork.random(case.sizes, loss=case.loss, seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((case.n_examples, case.sizes[0]))
    if case.loss == "xent":
        T: np.ndarray = rng.integers(0, case.sizes[-1], size=case.n_examples)
    else:
        T = rng.standard_normal((case.n_examples, case.sizes[-1]))
    if case.n_examples == 1:
        return net, X[0], T[0]
    return net, X, T


def measure(fn: Callable[[], object], draws: int, repeat: int) -> Rate:
    """Best wall time and CPU time over ``repeat`` runs of ``fn`` (which makes ``draws``)."""
    wall, cpu = _timing.best_wall_and_cpu(fn, repeat)
    return Rate(draws / wall, cpu / draws * 1e9)


def analyze_rate(case: Case, repeat: int, n_samples: int) -> Rate | None:
    """Single-example draws per second of ``analyze(method="mc")`` with ``n_samples``
    single-example draws (the exact reference gradient included) at the current thread
    count; ``None`` when the exact reference is out of reach."""
    net, x, t = problem_of(case)
    n_samples //= case.n_examples

    def run() -> None:
        gs.analyze(net, x, t, case.estimator, method="mc", n_samples=n_samples, seed=0,
                   **case.options)  # fmt: skip

    try:
        gs.analyze(net, x, t, case.estimator, method="mc", n_samples=100, seed=0,
                   **case.options)  # fmt: skip
    except ValueError:  # too many states for the exact reference gradient
        return None
    return measure(run, n_samples * case.n_examples, repeat)


def rates(case: Case, repeat: int) -> tuple[Rate, Rate]:
    """``(kernel, sample_gradients)`` rates of one case at the current thread count."""
    net, x, t = problem_of(case)
    spec, opts = resolve_estimator(case.estimator, case.options)
    sampler = make_sampler(make_problem(net, x, t), spec, opts, np.random.SeedSequence(0))
    size = max(2, CALL_BYTES // (8 * net.n_params))
    out = np.empty((size, net.n_params))
    sampler.fill(out)  # warm-up
    start = time.perf_counter()
    sampler.fill(out)
    calls = max(1, math.ceil(SECONDS / max(time.perf_counter() - start, 1e-6)))
    single = case.n_examples

    def kernel() -> None:
        for _ in range(calls):
            sampler.fill(out)

    def end_to_end() -> None:
        for seed in range(calls):
            gs.sample_gradients(net, x, t, case.estimator, size, seed=seed, **case.options)

    end_to_end()  # warm-up
    total = calls * size * single
    return measure(kernel, total, repeat), measure(end_to_end, total, repeat)


def fmt_rate_cpu(rate: Rate | None) -> str:
    """``1.23 M/s (812 ns)``: draws per second and CPU time per draw (``-`` for none)."""
    if rate is None:
        return "-"
    return f"{_timing.fmt_rate(rate.per_second)} ({rate.cpu_ns:.0f} ns)"


def _verdict(target: str, rate: float | None, wanted: float, threads: int) -> str:
    """``Target: ...: PASS (2.1 M/s with 2 threads)``, or FAIL."""
    verdict = "PASS" if rate is not None and rate >= wanted else "FAIL"
    return f"Target: {target}: {verdict} ({(rate or 0.0) / 1e6:.3g} M/s with {threads} threads)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return _timing.parse_benchmark_args(
        _timing.benchmark_parser(__doc__, quick="the target case, one repeat"), argv
    )


def main(argv: list[str] | None = None) -> None:
    """Measure every case on one thread and on all threads, print the report."""
    args = parse_args(argv)
    cases = CASES[:1] if args.quick else CASES
    most = numba.get_num_threads()
    thread_counts = sorted({1, most})
    load_start = _timing.load_average()
    n_analyze = ANALYZE_DRAWS // 10 if args.quick else ANALYZE_DRAWS
    rows = []
    target = analyzed = None
    for case in cases:
        print(f"measuring {case.label} ...", file=sys.stderr, flush=True)
        cells = []
        for threads in thread_counts:
            numba.set_num_threads(threads)
            try:
                kernel, end_to_end = rates(case, args.repeat)
                analysis = analyze_rate(case, args.repeat, n_analyze)
            finally:
                numba.set_num_threads(most)
            cells += [fmt_rate_cpu(kernel), fmt_rate_cpu(end_to_end), fmt_rate_cpu(analysis)]
            if case == CASES[0] and threads == most:
                target = end_to_end.per_second
                analyzed = None if analysis is None else analysis.per_second
        rows.append(f"| {case.label} | " + " | ".join(cells) + " |")
    head = ["case"]
    for threads in thread_counts:
        head += [f"kernel, {threads} thr", f"sample_gradients, {threads} thr",
                 f"analyze mc, {threads} thr"]  # fmt: skip
    report = [
        f"# gradstat {gs.__version__} sampling benchmark",
        "",
        _timing.machine_line(load_start),
        f"{_timing.versions_line()}; best of {args.repeat} after one warm-up; calls of at most "
        f"{CALL_BYTES // 2**20} MB of output.",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "--:|" * (len(head) - 1),
        *rows,
        "",
        "Single-example draws per second (a batch of B examples counts B); in parentheses, "
        "process CPU time per single-example draw over all threads.",
        "",
        f'`analyze mc`: `analyze(method="mc")` end to end, {n_analyze:,} single-example '
        "draws per call (`-`: no exact reference gradient within the default max_states).",
        "",
        _verdict(TARGET, target, TARGET_RATE, most),
        _verdict(ANALYZE_TARGET, analyzed, ANALYZE_RATE, most),
    ]
    _timing.publish(report, args.out)


if __name__ == "__main__":
    main()
