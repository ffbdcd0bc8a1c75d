"""Wall-time benchmark of gradstat's core kernels, printed as a Markdown table.

For the one-layer networks ``(8, N, 1)`` with ``N = 12, 14, ..., 22``, the two-layer
network ``(8, 10, 10, 1)`` (``N = 20``) and the three-layer network ``(8, 6, 6, 6, 1)``
(``N = 18``), on one example with the mse loss, it measures

* the wall time of ``exact_gradient`` (enumeration of all ``2^N`` hidden states);
* the wall time of ``estimator_moments`` for every estimator (``reinforce`` with
  ``baseline="none"`` and ``baseline="optimal"``), with the exact engine of ``--engine``
  (default ``auto``; ``joint`` times the enumeration of all noise states even where
  messages over layers are cheaper); skipped for ``N > 20`` unless ``--full``;
* the Monte Carlo rate of ``sample_gradients``, in single-example draws per second, for
  the same estimators. Each measurement draws enough to take about 0.5 s, in calls of at
  most 12 MB of output so that memory stays bounded; the draws are discarded.

Every timing warms up once (the first call compiles the numba kernels, or loads them from
the on-disk cache) and reports the best of ``--repeat`` runs timed with
``time.perf_counter``. The header gives the core count and numba's thread count, and the
project's target (one-layer ``N = 20`` ``exact_gradient`` under 0.2 s on 2 cores) is
checked against the measurement.

Run from the repository root::

    python benchmarks/bench_core.py            # all sizes (a few minutes on 2 cores)
    python benchmarks/bench_core.py --quick    # N <= 16, one repeat: a smoke test
    python benchmarks/bench_core.py --full --out bench.md
    python benchmarks/bench_core.py --max-n 20 --engine joint   # joint enumeration
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout

import _timing  # noqa: E402

import gradstat as gs  # noqa: E402

ONE_LAYER_N = (12, 14, 16, 18, 20, 22)
"""Widths ``N`` of the one-layer networks ``(8, N, 1)``."""
TWO_LAYER = (8, 10, 10, 1)
THREE_LAYER = (8, 6, 6, 6, 1)
N_IN = 8
QUICK_MAX_N = 16
MOMENTS_MAX_N = 20
"""Above this ``N`` the moments are skipped unless ``--full``."""
VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("st", "st", {}),
    ("st_sigmoid", "st_sigmoid", {}),
    ("sts", "sts", {}),
    ("reinforce", "reinforce", {"baseline": "none"}),
    ("reinforce(opt)", "reinforce", {"baseline": "optimal"}),
)
"""Column label, estimator name and options of every estimator measured."""
MC_SECONDS = 0.5
"""Target duration of one Monte Carlo measurement."""
PROBE_DRAWS = 20_000
"""Draws of the untimed calibration run that sizes a Monte Carlo measurement."""
CALL_BYTES = 12 * 2**20
"""Output bytes per ``sample_gradients`` call: a call holds its output and a few KB of
scratch per chunk of draws, so about 12 MB in all."""
TARGET_N = 20
TARGET_SECONDS = 0.2
TARGET = f"one-layer N = {TARGET_N} exact_gradient < {TARGET_SECONDS} s on 2 cores"


@dataclass
class Row:
    """The measurements of one network (``None``: skipped)."""

    sizes: tuple[int, ...]
    n_params: int
    gradient_s: float
    moments_s: dict[str, float | None] = field(default_factory=dict)
    draws_per_s: dict[str, float] = field(default_factory=dict)

    @property
    def n_hidden(self) -> int:
        """``N``, the number of stochastic units."""
        return sum(self.sizes[1:-1])


def plan(n_params: int, n_draws: int) -> tuple[int, int]:
    """``(calls, size)``: equal ``sample_gradients`` calls covering at least ``n_draws``."""
    per_call = max(2, CALL_BYTES // (8 * n_params))
    calls = -(-n_draws // per_call)
    return calls, max(2, -(-n_draws // calls))


def draw(
    net: gs.BinaryNetwork,
    x: np.ndarray,
    t: np.ndarray,
    estimator: str,
    options: dict[str, Any],
    calls: int,
    size: int,
) -> None:
    """Draw ``calls * size`` estimates, ``size`` per call, and discard them."""
    for seed in range(calls):
        gs.sample_gradients(net, x, t, estimator, size, seed=seed, **options)


def draw_rate(
    net: gs.BinaryNetwork,
    x: np.ndarray,
    t: np.ndarray,
    estimator: str,
    options: dict[str, Any],
    repeat: int,
) -> float:
    """Single-example draws per second of ``sample_gradients``, over about ``MC_SECONDS``.

    A warm-up call, then a probe call of at most ``PROBE_DRAWS`` draws whose time sizes the
    measured run.
    """
    probe = plan(net.n_params, PROBE_DRAWS)[1]  # one call
    draw(net, x, t, estimator, options, 1, probe)
    probe_s = _timing.best_of(lambda: draw(net, x, t, estimator, options, 1, probe), 1)
    calls, size = plan(net.n_params, max(probe, math.ceil(MC_SECONDS * probe / probe_s)))
    return (
        calls
        * size
        / _timing.best_of(lambda: draw(net, x, t, estimator, options, calls, size), repeat)
    )


def measure(sizes: tuple[int, ...], *, repeat: int, full: bool, engine: str) -> Row:
    """All the timings of the network ``sizes`` on one fixed random example."""
    net = gs.BinaryNetwork.random(sizes, loss="mse", seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(sizes[0])
    t = rng.standard_normal(sizes[-1])
    row = Row(
        sizes, net.n_params, _timing.warm_best_of(lambda: gs.exact_gradient(net, x, t), repeat)
    )
    for label, name, options in VARIANTS:
        if row.n_hidden > MOMENTS_MAX_N and not full:
            row.moments_s[label] = None
        else:
            row.moments_s[label] = _timing.warm_best_of(
                lambda name=name, options=options: gs.estimator_moments(
                    net, x, t, name, engine=engine, **options
                ),
                repeat,
            )
        row.draws_per_s[label] = draw_rate(net, x, t, name, options, repeat)
        print(f"  {sizes} {label} done", file=sys.stderr, flush=True)
    return row


def table(rows: list[Row]) -> list[str]:
    """The Markdown table, one row per network."""
    labels = [label for label, _, _ in VARIANTS]
    head = (
        ["net", "N", "params", "exact_gradient"]
        + [f"moments {label}" for label in labels]
        + [f"MC {label}" for label in labels]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["--:"] * 11) + "|"]
    for row in rows:
        cells = (
            [
                str(row.sizes),
                str(row.n_hidden),
                str(row.n_params),
                _timing.fmt_seconds(row.gradient_s, "skipped"),
            ]
            + [_timing.fmt_seconds(row.moments_s[label], "skipped") for label in labels]
            + [_timing.fmt_rate(row.draws_per_s[label]) for label in labels]
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def target_line(rows: list[Row]) -> str:
    """PASS/FAIL of the project's target, or why it was not measured."""
    sizes = (N_IN, TARGET_N, 1)
    measured = [row.gradient_s for row in rows if row.sizes == sizes]
    if not measured:
        return f"Target: {TARGET}: not measured (N = {TARGET_N} excluded by --quick/--max-n)"
    verdict = "PASS" if measured[0] < TARGET_SECONDS else "FAIL"
    threads = numba.get_num_threads()
    return (
        f"Target: {TARGET}: {verdict} ({_timing.fmt_seconds(measured[0])} with {threads} threads)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options (``--quick`` caps ``--max-n`` and sets one repeat)."""
    parser = _timing.benchmark_parser(__doc__, quick="N <= 16 and one repeat")
    parser.add_argument("--max-n", type=int, help="skip networks with more hidden units")
    parser.add_argument(
        "--full", action="store_true", help=f"also time the moments for N > {MOMENTS_MAX_N}"
    )
    parser.add_argument(
        "--engine",
        choices=("auto", "joint"),
        default="auto",
        help="exact engine of estimator_moments (joint: enumerate every noise state)",
    )
    args = _timing.parse_benchmark_args(parser, argv)
    if args.quick:
        args.max_n = QUICK_MAX_N if args.max_n is None else min(args.max_n, QUICK_MAX_N)
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure every network, print the report and optionally write it to ``--out``."""
    args = parse_args(argv)
    networks = [(N_IN, n, 1) for n in ONE_LAYER_N] + [TWO_LAYER, THREE_LAYER]
    if args.max_n is not None:
        networks = [s for s in networks if sum(s[1:-1]) <= args.max_n]
    load_start = _timing.load_average()
    rows = []
    for sizes in networks:
        print(f"measuring {sizes} ...", file=sys.stderr, flush=True)
        rows.append(measure(sizes, repeat=args.repeat, full=args.full, engine=args.engine))
    header = [
        f"# gradstat {gs.__version__} core benchmark",
        "",
        _timing.machine_line(load_start),
        f"{_timing.versions_line()}; one example, mse loss; best of {args.repeat} after one "
        f"warm-up; moments engine {args.engine!r}.",
        "",
    ]
    skipped = any(s is None for row in rows for s in row.moments_s.values())
    notes = [
        "",
        "moments: wall time of `estimator_moments`; MC: single-example draws per second of "
        f"`sample_gradients`, in calls of at most {CALL_BYTES // 2**20} MB of output each.",
        "MC reinforce(opt) includes the exact O(2^N) optimal-baseline oracle that every "
        "`sample_gradients` call recomputes.",
    ]
    if skipped:
        notes.append(f"Moments for N > {MOMENTS_MAX_N} skipped (pass --full to time them).")
    report = header + table(rows) + notes + ["", target_line(rows)]
    _timing.publish(report, args.out)


if __name__ == "__main__":
    main()
