"""Monte Carlo draws per second of ``analyze(method="mc")`` and ``sample_gradients``, with
the cost of each part of one draw.

The case is the project's target: ``st_sigmoid`` on ``(8, 8, 8, 1)``, one example, mse
loss, ``analyze(..., method="mc", n_samples=10**6)`` (target: 3 M draws/s on 2 cores) and
``sample_gradients`` in calls of 100,000 draws (target: 2 M draws/s). Each is measured
with the straight-through fast path (:func:`gradstat.engines.sampling.surrogate_estimate`)
and with the general per-draw code it replaces (``draw_estimate``; the same numbers, bit
for bit, which the script checks), on one numba thread and on all of them, by wall clock
and by process CPU time (user + system, all threads), which other processes on the
machine disturb less than the wall clock.

The breakdown times, on one thread, loops over ``10**6`` draws that each do one part
of a draw: the Philox uniforms alone, then with the general forward pass and loss, with
the general straight-through estimate (forward and backward), with the fast estimate,
and the accumulation of one estimate into the streaming sums alone; the rest of the
end-to-end CPU time per draw is the kernel's loops and the analysis around them.

Run from the repository root::

    python benchmarks/bench_streaming.py            # best of 3
    python benchmarks/bench_streaming.py --quick    # one run, a tenth of the draws
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout

import _timing  # noqa: E402

import gradstat as gs  # noqa: E402
from gradstat.engines import sampling  # noqa: E402
from gradstat.engines.gradient import problem_batch  # noqa: E402
from gradstat.engines.lanes import LANE_ROWS, LANES, lane_noise, surrogate_lanes  # noqa: E402
from gradstat.engines.streaming import Partials, Targets, _add_draws  # noqa: E402
from gradstat.estimators.codes import ST_SIGMOID  # noqa: E402
from gradstat.estimators.dispatch import _surrogate_draw  # noqa: E402
from gradstat.kernels.forward import forward_loss  # noqa: E402
from gradstat.kernels.geometry import example  # noqa: E402
from gradstat.kernels.philox import fill_noise, stream_key  # noqa: E402
from gradstat.kernels.workspace import WS_ROWS, state_rows  # noqa: E402
from gradstat.problem import make_problem  # noqa: E402

SIZES = (8, 8, 8, 1)
ESTIMATOR = "st_sigmoid"
ANALYZE_DRAWS = 10**6
SAMPLE_DRAWS = 100_000
SAMPLE_CALLS = 10
PART_DRAWS = 10**6


@njit(cache=True)
def _noise(key, m, u):  # noqa: ANN001, ANN202
    s = 0.0
    for i in range(m):
        fill_noise(key, i, 0, False, u)
        s += u[0]
    return s


@njit(cache=True)
def _forward(key, m, u, batch, geo, ws):  # noqa: ANN001, ANN202
    ex = example(batch, geo, 0)
    a, p, bit, h, _, y, dy, _, _ = state_rows(ws, geo)
    s = 0.0
    for i in range(m):
        fill_noise(key, i, 0, False, u)
        s += forward_loss(ex, np.int64(0), u, a, p, bit, h, y, dy)[1]
    return s


@njit(cache=True)
def _general(key, m, u, batch, geo, ws, opts, e):  # noqa: ANN001, ANN202
    ex = example(batch, geo, 0)
    s = 0.0
    for i in range(m):
        fill_noise(key, i, 0, False, u)
        _surrogate_draw(ST_SIGMOID, opts, ex, np.int64(0), u, ws, e)
        s += e[0]
    return s


@njit(cache=True)
def _fast(key, m, u, batch, geo, jac1, ws, opts, e):  # noqa: ANN001, ANN202
    theta, L1, _, T, loss, _ = batch
    sizes, woff, boff, uoff = geo
    y, dy, t = ws[5, : sizes[-1]], ws[6, : sizes[-1]], T[0]
    s = 0.0
    for i in range(m):
        fill_noise(key, i, 0, False, u)
        sampling.surrogate_estimate(ST_SIGMOID, opts, theta, sizes, woff, boff, uoff, L1, jac1,
                                    0, t, loss, u, ws, y, dy, e)  # fmt: skip
        s += e[0]
    return s


@njit(cache=True)
def _lanes(key, m, u, U, batch, geo, jac1, S, ws, opts, E):  # noqa: ANN001, ANN202
    theta, L1, _, T, loss, _ = batch
    sizes, woff, boff, uoff = geo
    y, dy, t = ws[5, : sizes[-1]], ws[6, : sizes[-1]], T[0]
    s = 0.0
    for i in range(0, m, LANES):
        lane_noise(key, i, LANES, 0, False, sampling.NO_NOISE, u, U)
        surrogate_lanes(ST_SIGMOID, opts, theta, geo, L1, jac1, 0, t, loss, U,
                        S, y, dy, E)  # fmt: skip
        s += E[0, 0]
    return s


@njit(cache=True, inline="always")
def _rows(tg, part):  # noqa: ANN001, ANN202
    """Example 0's targets and span 0's sums, as the streaming kernel takes them."""
    return tg.G[0], tg.sign[0], tg.dw[0], tg.seg, part.sums[0, 0], part.desc[0, 0]


@njit(cache=True)
def _accumulate_lanes(m, E, tg, prod, dots, part):  # noqa: ANN001, ANN202
    G, sign, dw, seg, sums, desc = _rows(tg, part)
    for i in range(0, m, LANES):
        E[0, 0] = i * 1e-9
        _add_draws(E, LANES, G, sign, dw, seg, prod, dots, sums, desc)


@njit(cache=True)
def _accumulate(m, e, tg, prod, dots, part):  # noqa: ANN001, ANN202
    G, sign, dw, seg, sums, desc = _rows(tg, part)
    one = e.reshape((1, e.shape[0]))
    for i in range(m):
        e[0] = i * 1e-9
        _add_draws(one, 1, G, sign, dw, seg, prod, dots, sums, desc)


def cpu_ns(fn: Callable[[], object], draws: int, repeat: int) -> float:
    """Best process CPU time per draw over ``repeat`` calls, after one warm-up."""
    fn()
    return _timing.best_wall_and_cpu(fn, repeat)[1] / draws * 1e9


def breakdown(repeat: int, draws: int) -> list[tuple[str, float]]:
    """CPU nanoseconds per draw of each part, on one thread (module docstring)."""
    net = gs.BinaryNetwork.random(SIZES, loss="mse", seed=0)
    rng = np.random.default_rng(1)
    problem = make_problem(net, rng.standard_normal(SIZES[0]), rng.standard_normal(SIZES[-1]))
    batch, geo = problem_batch(problem, problem.mode)
    key = stream_key(np.random.SeedSequence(0))
    n = problem.n_compressed
    u, ws, e, opts = (np.empty(net.n_stochastic), np.zeros((WS_ROWS, n)), np.zeros(n),
                      np.zeros(1))  # fmt: skip
    jac1 = sampling._jacobian_table(ST_SIGMOID, opts, batch.L1)
    seg = problem.segment_starts()
    G = rng.normal(scale=0.1, size=(1, n))
    tg = Targets(G, np.sign(G), problem.descent_weights(G), seg)
    part = Partials(np.zeros((1, 1, 3, n)), np.zeros((1, 1, seg.shape[0] + 1)))
    prod, dots = np.empty(n), np.empty(seg.shape[0] - 1)
    S, U, E = np.zeros((LANE_ROWS, n, LANES)), np.zeros((u.shape[0], LANES)), np.zeros((LANES, n))
    return [
        ("Philox uniforms (16 per draw)", cpu_ns(lambda: _noise(key, draws, u), draws, repeat)),
        ("uniforms + general forward pass and loss",
         cpu_ns(lambda: _forward(key, draws, u, batch, geo, ws), draws, repeat)),
        ("uniforms + general estimate (forward, backward)",
         cpu_ns(lambda: _general(key, draws, u, batch, geo, ws, opts, e), draws, repeat)),
        ("uniforms + fast estimate (forward, backward)",
         cpu_ns(lambda: _fast(key, draws, u, batch, geo, jac1, ws, opts, e), draws, repeat)),
        (f"uniforms + fast estimate, {LANES} draws at a time (lanes)",
         cpu_ns(lambda: _lanes(key, draws, u, U, batch, geo, jac1, S, ws, opts, E), draws,
                repeat)),
        ("accumulation of one estimate (streaming sums)",
         cpu_ns(lambda: _accumulate(draws, e, tg, prod, dots, part), draws, repeat)),
        (f"accumulation, {LANES} estimates per call (lanes)",
         cpu_ns(lambda: _accumulate_lanes(draws, E, tg, prod, dots, part), draws, repeat)),
    ]  # fmt: skip


def rates(repeat: int, n_analyze: int) -> dict[tuple[str, str, int], tuple[float, float]]:
    """``(what, path, threads) -> (draws per second, CPU ns per draw)``, and a check that
    both paths give the same numbers."""
    net = gs.BinaryNetwork.random(SIZES, loss="mse", seed=0)
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal(SIZES[0]), rng.standard_normal(SIZES[-1])

    def analyze() -> object:
        return gs.analyze(net, x, t, ESTIMATOR, method="mc", n_samples=n_analyze, seed=0)

    def sample() -> None:
        for seed in range(SAMPLE_CALLS):
            gs.sample_gradients(net, x, t, ESTIMATOR, SAMPLE_DRAWS, seed=seed)

    fast_codes = sampling.FAST_SURROGATES
    out: dict[tuple[str, str, int], tuple[float, float]] = {}
    results = {}
    most = numba.get_num_threads()
    for path, codes in (("fast", fast_codes), ("general", ())):
        sampling.FAST_SURROGATES = codes
        try:
            drawn = gs.sample_gradients(net, x, t, ESTIMATOR, SAMPLE_DRAWS, seed=0)
            results[path] = (drawn, analyze().mean)
            for threads in sorted({1, most}):
                numba.set_num_threads(threads)
                for what, fn, draws in (("analyze mc", analyze, n_analyze),
                                        ("sample_gradients", sample,
                                         SAMPLE_DRAWS * SAMPLE_CALLS)):  # fmt: skip
                    wall, cpu = _timing.best_wall_and_cpu(fn, repeat)
                    out[what, path, threads] = draws / wall, cpu / draws * 1e9
                numba.set_num_threads(most)
        finally:
            sampling.FAST_SURROGATES = fast_codes
    same = all(np.array_equal(a, b) for a, b in zip(results["fast"], results["general"]))
    print(f"fast and general paths give the same numbers: {same}", file=sys.stderr)
    if not same:
        raise SystemExit("the fast path changed the draws")
    return out


def main(argv: list[str] | None = None) -> None:
    args = _timing.parse_benchmark_args(
        _timing.benchmark_parser(__doc__, quick="one run, a tenth of the draws"), argv
    )
    load_start = _timing.load_average()
    n_analyze = ANALYZE_DRAWS // 10 if args.quick else ANALYZE_DRAWS
    part_draws = PART_DRAWS // 10 if args.quick else PART_DRAWS
    print("measuring draw rates ...", file=sys.stderr, flush=True)
    measured = rates(args.repeat, n_analyze)
    print("measuring the parts of a draw ...", file=sys.stderr, flush=True)
    most = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        parts = breakdown(args.repeat, part_draws)
    finally:
        numba.set_num_threads(most)
    lines = [
        f"# gradstat {gs.__version__} streaming Monte Carlo benchmark",
        "",
        _timing.machine_line(load_start),
        f"{_timing.versions_line()}; best of {args.repeat}.",
        "",
        f'`{ESTIMATOR}` on `{SIZES}`, one example: `analyze(method="mc", '
        f"n_samples={n_analyze:,})` and `sample_gradients` ({SAMPLE_CALLS} calls of "
        f"{SAMPLE_DRAWS:,} draws); draws per second (wall) and process CPU ns per draw.",
        "",
        "| what | path | threads | draws/s (wall) | CPU ns/draw |",
        "|---|---|--:|--:|--:|",
    ]
    for (what, path, threads), (rate, ns) in measured.items():
        lines.append(f"| {what} | {path} | {threads} | {_timing.fmt_rate(rate)} | {ns:.0f} |")
    lines += ["", "Parts of one draw, one thread, CPU ns per draw:", "",
              "| part | CPU ns/draw |", "|---|--:|"]  # fmt: skip
    lines += [f"| {name} | {ns:.0f} |" for name, ns in parts]
    fast_analyze = measured["analyze mc", "fast", most]
    fast_sample = measured["sample_gradients", "fast", most]
    lines += [
        "",
        f"Target: analyze mc >= 3 M draws/s on 2 cores: "
        f"{'PASS' if fast_analyze[0] >= 3e6 else 'FAIL'} ({fast_analyze[0] / 1e6:.3g} M/s wall; "
        f"{1e3 / fast_analyze[1]:.3g} M/s per core of CPU time, with {most} threads)",
        f"Target: sample_gradients >= 2 M draws/s on 2 cores: "
        f"{'PASS' if fast_sample[0] >= 2e6 else 'FAIL'} ({fast_sample[0] / 1e6:.3g} M/s wall; "
        f"{1e3 / fast_sample[1]:.3g} M/s per core of CPU time, with {most} threads)",
        f"Load average at the end: {os.getloadavg()[0]:.2f} (1 min).",
    ]
    _timing.publish(lines, args.out)


if __name__ == "__main__":
    main()
