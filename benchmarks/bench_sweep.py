"""Wall time of a sweep on each executor, printed as a Markdown table.

Runs the same grid with :func:`gradstat.sweep` serially in this process, on a pool of
``--workers`` worker processes that the sweep starts, and on a Dask ``LocalCluster`` of
``--workers`` worker processes (one thread each, 127.0.0.1), and checks that every run
writes the same rows. Grids:

* ``default``: the report's default grid (:class:`gradstat.ReportConfig`: 10 small
  networks x every registered estimator, exact where the noise is discrete, Monte Carlo
  otherwise): from a millisecond to a few hundred milliseconds per analysis;
* ``large``: wider networks, ``(8, 16, 1)`` mse, ``(8, 8, 8, 1)`` mse and
  ``(6, 5, 5, 5, 2)`` bce with seeds 0-3, and the straight-through, STS and REINFORCE
  estimators (three baselines), all exact: tens to hundreds of milliseconds each.

The numba kernels are compiled (or loaded from the on-disk cache) by an untimed serial
run first. The pool's time includes starting its processes (each imports gradstat and
loads the cached kernels); the Dask column gives the sweep on a running cluster (whose
workers hold the kernels after the first run), and the cluster's start-up separately.
Serial runs use numba's threads (every core) inside each analysis; workers use one thread
each, so the comparison is between parallelism inside an analysis and across analyses; a
serial run on one numba thread gives the work of one core. Best of ``--repeat`` runs.

Run from the repository root (needs ``pip install "gradstat[dask]"`` for the Dask
column; without it the column is skipped)::

    python benchmarks/bench_sweep.py                 # both grids, 2 workers
    python benchmarks/bench_sweep.py --grid default --repeat 1
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numba

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout

import _timing  # noqa: E402

import gradstat as gs  # noqa: E402
from gradstat.report import (  # noqa: E402
    ESTIMATOR_VARIANTS,
    EstimatorSpec,
    RandomNetworks,
    ReportConfig,
)
from gradstat.sweep import dask_client, grid_tasks  # noqa: E402

GRIDS = {
    "default": ReportConfig(plots=False),
    "large": ReportConfig(
        networks=(
            RandomNetworks((8, 16, 1), "mse", seeds=(0, 1, 2, 3)),
            RandomNetworks((8, 8, 8, 1), "mse", seeds=(0, 1, 2, 3)),
            RandomNetworks((6, 5, 5, 5, 2), "bce", seeds=(0, 1, 2, 3)),
        ),
        estimators=tuple(
            EstimatorSpec(name, options)
            for name in ("st", "st_sigmoid", "sts", "reinforce")
            for options in ESTIMATOR_VARIANTS.get(name, [{}])
        ),
        plots=False,
    ),
}


def rows(out: Path) -> list[tuple[str, ...]]:
    """The rows of ``results.csv``, sorted (the order of completion differs)."""
    with (out / "results.csv").open(newline="", encoding="utf-8") as fh:
        return sorted(tuple(row.values()) for row in csv.DictReader(fh))


def timed(config: ReportConfig, executor: Any, repeat: int, tmp: Path, name: str) -> tuple:
    """Best wall time of ``repeat`` sweeps, each into a folder of its own, and the rows of
    the last one."""
    outs: list[Path] = []

    def run() -> None:
        outs.append(tmp / f"{name}-{len(outs)}")
        gs.sweep(config, executor=executor, out=outs[-1], progress=False)

    return _timing.best_of(run, repeat), rows(outs[-1])


def bench(name: str, workers: int, repeat: int, tmp: Path) -> list[str]:
    config = GRIDS[name]
    n_tasks = len(grid_tasks(config))
    gs.sweep(config, executor="serial", out=tmp / f"{name}-warm", progress=False)
    serial, reference = timed(config, "serial", repeat, tmp, f"{name}-serial")
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one, one_rows = timed(config, "serial", repeat, tmp, f"{name}-one")
    finally:
        numba.set_num_threads(threads)
    pool, pool_rows = timed(config, workers, repeat, tmp, f"{name}-pool")
    assert one_rows == pool_rows == reference, "runs wrote other rows"
    cells = [
        f"{name} ({n_tasks} analyses)",
        f"{serial:.2f} s",
        f"{one:.2f} s",
        f"{pool:.2f} s ({serial / pool:.2f}x, {one / pool:.2f}x)",
    ]
    try:
        start = time.perf_counter()
        with dask_client(n_workers=workers) as client:
            started = time.perf_counter() - start
            dask, dask_rows = timed(config, client, repeat, tmp, f"{name}-dask")
        assert dask_rows == reference, "Dask wrote other rows"
        cells.append(
            f"{dask:.2f} s ({serial / dask:.2f}x, {one / dask:.2f}x) + {started:.1f} s to start"
        )
    except ImportError as err:
        cells.append(f"skipped: {err}")
    return cells


def main(argv: list[str] | None = None) -> None:
    parser = _timing.benchmark_parser(__doc__)
    parser.add_argument("--grid", choices=[*GRIDS, "all"], default="all")
    parser.add_argument("--workers", type=int, default=2, help="pool and Dask workers")
    args = _timing.parse_benchmark_args(parser, argv)
    names = list(GRIDS) if args.grid == "all" else [args.grid]
    load_start = _timing.load_average()
    table = [
        f"| grid | serial | serial, 1 thread | process pool ({args.workers}) | "
        f"Dask LocalCluster ({args.workers}) |",
        "| --- | --: | --: | --: | --: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            cells = bench(name, args.workers, args.repeat, Path(tmp))
            table.append("| " + " | ".join(cells) + " |")
    report = [
        _timing.machine_line(load_start, " in serial runs, 1 per worker"),
        f"{_timing.versions_line()}. Best of {args.repeat}; speed-ups against serial and "
        "serial on 1 thread; rows identical on every executor.",
        "",
        *table,
    ]
    _timing.publish(report, args.out)


if __name__ == "__main__":
    main()
