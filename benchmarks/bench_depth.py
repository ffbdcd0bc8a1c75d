"""Exact gradient and exact estimator moments against depth, printed as a Markdown table.

For networks ``(8, w, ..., w, 1)`` with ``depth`` stochastic layers of ``w`` units
(default ``w = 10``, depth 1..10; ``2^(w depth)`` joint states), on one example with the
mse loss, it times

* ``exact_gradient`` (the engine ``gradstat.exact.gradient_engine`` picks);
* ``estimator_moments`` with ``engine="layerwise"`` (messages over adjacent layers) for
  ``st_sigmoid``, ``st``, ``reinmax``, ``reinforce`` and ``reinforce`` with the exact
  optimal baseline;
* the same with ``engine="joint"`` (all ``2^N`` joint states) while ``N <= --joint-max``
  (default 20), and the two engines' largest disagreement (relative to the largest
  ``|mean|`` and ``E[g_hat^2]``).

Every timing warms up once (numba compilation or cache load) and reports the best of
``--repeat`` runs. The header gives the core count, numba's thread count and the load
average; the project's target (10 layers of 10 units: exact gradient and exact moments of
``st_sigmoid`` and ``reinforce`` under 2 s on 2 cores, and ``(8, 10, 10, 1)`` exact mean
and variance of ``st_sigmoid`` under 0.5 s) is checked. With matplotlib installed, a PNG of
time against depth goes to ``--plots`` (default ``benchmarks/results/``).

Run from the repository root::

    python benchmarks/bench_depth.py                 # depth 1..10 (about a minute)
    python benchmarks/bench_depth.py --quick         # depth <= 3, one repeat
    python benchmarks/bench_depth.py --width 6 --max-depth 10 --out depth.md
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout

import _timing  # noqa: E402

import gradstat as gs  # noqa: E402
from gradstat.engines.gradient import gradient_engine  # noqa: E402

ESTIMATORS: tuple[tuple[str, dict], ...] = (
    ("st_sigmoid", {}),
    ("st", {}),
    ("reinmax", {}),
    ("reinforce", {}),
    ("reinforce", {"baseline": "optimal"}),
)


def label(name: str, options: dict) -> str:
    return name + ("(opt)" if options.get("baseline") == "optimal" else "")


def disagreement(a: gs.EstimatorMoments, b: gs.EstimatorMoments) -> float:
    """Largest difference of mean and variance, relative to max |mean| and max E[g^2]."""
    scale_m = np.abs(b.mean).max()
    scale_v = (b.var + b.mean**2).max()
    return max(np.abs(a.mean - b.mean).max() / scale_m, np.abs(a.var - b.var).max() / scale_v)


def measure(sizes: tuple[int, ...], repeat: int, joint_max: int) -> dict:
    net = gs.BinaryNetwork.random(sizes, loss="mse", seed=0)
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=sizes[0]), rng.normal(size=sizes[-1])
    row: dict = {"sizes": sizes, "N": net.n_stochastic}
    row["gradient"] = _timing.warm_best_of(lambda: gs.exact_gradient(net, x, t), repeat)
    row["gradient_engine"] = gradient_engine(net)
    joint_ok = net.n_stochastic <= joint_max
    worst = 0.0
    for name, options in ESTIMATORS:
        key = label(name, options)

        def layerwise(name: str = name, options: dict = options) -> gs.EstimatorMoments:
            return gs.estimator_moments(net, x, t, name, engine="layerwise", **options)

        row[key] = _timing.warm_best_of(layerwise, repeat)
        if joint_ok:

            def joint(name: str = name, options: dict = options) -> gs.EstimatorMoments:
                return gs.estimator_moments(net, x, t, name, engine="joint", **options)

            row[key + " joint"] = _timing.warm_best_of(joint, repeat)
            worst = max(worst, disagreement(layerwise(), joint()))
    row["agreement"] = worst if joint_ok else None
    return row


def table(rows: list[dict]) -> list[str]:
    keys = [label(n, o) for n, o in ESTIMATORS]
    head = ["net", "N", "exact_gradient"] + [f"moments {k}" for k in keys]
    head += ["joint st_sigmoid", "joint reinforce", "max rel. diff."]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "--:|" * (len(head) - 2)]
    for r in rows:
        depth = len(r["sizes"]) - 2
        w = r["sizes"][1]
        net = f"(8, {w} x {depth}, 1)" if depth > 2 else str(r["sizes"])
        cells = [net, str(r["N"]), f"{_timing.fmt_seconds(r['gradient'])} ({r['gradient_engine']})"]
        cells += [_timing.fmt_seconds(r[k]) for k in keys]
        cells += [
            _timing.fmt_seconds(r.get("st_sigmoid joint")),
            _timing.fmt_seconds(r.get("reinforce joint")),
        ]
        cells.append("-" if r["agreement"] is None else f"{r['agreement']:.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(rows: list[dict]) -> list[str]:
    out = []
    deep = [r for r in rows if r["sizes"] == (8,) + (10,) * 10 + (1,)]
    if deep:
        r = deep[0]
        worst = max(r["gradient"], r["st_sigmoid"], r["reinforce"])
        verdict = "PASS" if worst < 2.0 else "FAIL"
        out.append(
            f"Target: 10 layers of 10 units, exact gradient and moments of st_sigmoid and "
            f"reinforce each under 2 s: {verdict} (gradient {_timing.fmt_seconds(r['gradient'])}, "
            f"st_sigmoid {_timing.fmt_seconds(r['st_sigmoid'])}, "
            f"reinforce {_timing.fmt_seconds(r['reinforce'])})"
        )
    two = [r for r in rows if r["sizes"] == (8, 10, 10, 1)]
    if two:
        r = two[0]
        verdict = "PASS" if r["st_sigmoid"] < 0.5 else "FAIL"
        out.append(
            f"Target: (8, 10, 10, 1) exact mean and variance of st_sigmoid under 0.5 s: "
            f"{verdict} (messages {_timing.fmt_seconds(r['st_sigmoid'])}; joint enumeration "
            f"{_timing.fmt_seconds(r.get('st_sigmoid joint'))})"
        )
    return out


def plot(rows: list[dict], directory: Path, width: int) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    depth = [len(r["sizes"]) - 2 for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(depth, [r["gradient"] for r in rows], "o-", label="exact_gradient")
    for name, options in ESTIMATORS:
        key = label(name, options)
        ax.plot(depth, [r[key] for r in rows], ".-", label=f"moments {key} (messages)")
    joint = [(d, r["st_sigmoid joint"]) for d, r in zip(depth, rows) if "st_sigmoid joint" in r]
    if joint:
        ax.plot(*zip(*joint), "s--", label="moments st_sigmoid (joint)")
    ax.set_yscale("log")
    ax.set_xlabel(f"stochastic layers of {width} units")
    ax.set_ylabel("wall time (s)")
    ax.set_title(f"Exact quantities against depth ({os.cpu_count()} cores)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = directory / "moments_time_vs_depth.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = _timing.benchmark_parser(__doc__, quick="depth <= 3, one repeat")
    parser.add_argument("--width", type=int, default=10, help="units per layer")
    parser.add_argument("--max-depth", type=int, default=10)
    parser.add_argument("--joint-max", type=int, default=20, help="largest N for joint")
    parser.add_argument("--plots", type=Path, default=Path(__file__).parent / "results")
    args = _timing.parse_benchmark_args(parser, argv)
    if args.quick:
        args.max_depth = min(args.max_depth, 3)
    load_start = _timing.load_average()
    rows = []
    for depth in range(1, args.max_depth + 1):
        sizes = (8,) + (args.width,) * depth + (1,)
        print(f"measuring {sizes} ...", file=sys.stderr, flush=True)
        rows.append(measure(sizes, args.repeat, args.joint_max))
    report = [
        f"# gradstat {gs.__version__}: exact quantities against depth",
        "",
        _timing.machine_line(load_start),
        f"{_timing.versions_line()}; one example, mse loss; best of {args.repeat} after a warm-up.",
        "",
        *table(rows),
        "",
        'moments: `estimator_moments(..., engine="layerwise")` (mean and variance by '
        'messages); joint: `engine="joint"` (all 2^N states, also sign agreement and descent '
        "probability); max rel. diff.: the engines' largest disagreement over the five "
        "estimators, relative to max |mean| and max E[g^2].",
        "",
        *targets(rows),
    ]
    path = plot(rows, args.plots, args.width)
    if path is not None:
        report.append(f"\nPlot: {path.name}")
    _timing.publish(report, args.out)


if __name__ == "__main__":
    main()
