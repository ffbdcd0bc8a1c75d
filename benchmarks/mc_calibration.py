"""Coverage of the Monte Carlo standard errors of ``analyze(method="mc")``.

For networks whose moments are known exactly, runs ``analyze(method="mc")`` with many
seeds and prints, per estimator, network, scope and metric, the distribution of
``z = (Monte Carlo value - exact value) / reported standard error``: its standard
deviation, mean, the share of ``|z| > 2``, and how often the metric was flagged as not
calibrated (NaN standard error). A calibrated metric has sd(z) near 1, mean near 0 and
about 6% beyond 2 (a jackknife over 20 groups: Student's t with 19 degrees of freedom;
``bias_norm``, ``relative_bias`` and ``cosine``, flagged on the first half of the draws
and reported from the second, are widened to match). The flag reads other draws than the
value, so rows reported in few seeds are not selected, only noisy: compare them pooled.

    python benchmarks/mc_calibration.py --seeds 120 --n-samples 10000
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

import gradstat as gs
from gradstat.metrics import METRICS
from gradstat.sweep.config import default_target

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_mc_calibration import CASES as TEST_CASES  # noqa: E402  (the suite's cases, once)

CASES = [*TEST_CASES, ("reinforce", (4, 3, 3, 2), "mse")]
"""The calibration test's cases (``tests/test_mc_calibration.py``) and one more."""


def problem(sizes: tuple[int, ...], loss: str, seed: int = 0):
    """The report's convention: ``x = 1`` and its default target (:func:`default_target`)."""
    net = gs.BinaryNetwork.random(sizes, loss=loss, seed=seed)
    return net, np.ones(sizes[0]), default_target(net)


def z_scores(name, sizes, loss, seeds, n_samples):
    """``{(scope, metric): (z values, number flagged)}`` over ``seeds``."""
    net, x, t = problem(sizes, loss)
    exact = gs.analyze(net, x, t, name, method="exact").scopes()
    out: dict = {}
    for seed in seeds:
        r = gs.analyze(net, x, t, name, method="mc", n_samples=n_samples, seed=seed)
        for scope, values in r.scopes().items():
            for metric in METRICS:
                zs, flagged = out.setdefault((scope, metric), ([], [0]))
                se = getattr(r.standard_errors[scope], metric)
                diff = getattr(values, metric) - getattr(exact[scope], metric)
                if math.isnan(se):
                    flagged[0] += 1
                elif se > 0:
                    zs.append(diff / se)
                elif abs(diff) > 1e-12:
                    zs.append(math.copysign(math.inf, diff))
    return {k: (np.array(v[0]), v[1][0]) for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=120)
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--scopes", default="all,stochastic")
    ap.add_argument("--cases", default="", help="comma-separated case numbers (default all)")
    args = ap.parse_args(argv)
    scopes = args.scopes.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"{args.seeds} seeds, n_samples = {args.n_samples}")
    print("| estimator, network | scope | metric | sd(z) | share abs(z) > 2 | mean(z) | flagged |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    bad = 0
    start = time.perf_counter()
    chosen = [CASES[int(i)] for i in args.cases.split(",")] if args.cases else CASES
    for name, sizes, loss in chosen:
        table = z_scores(name, sizes, loss, seeds, args.n_samples)
        for (scope, metric), (z, flagged) in table.items():
            if scope not in scopes:
                continue
            if z.size < 2:
                sd = mean = share = float("nan")
            else:
                sd, mean, share = float(z.std(ddof=1)), float(z.mean()), float(np.mean(abs(z) > 2))
            off = z.size >= 2 and not (0.8 <= sd <= 1.25 and abs(mean) <= 0.35 and share <= 0.1)
            bad += off
            print(f"| {name} {sizes} {loss} | {scope} | {metric} | {sd:.2f} | {100 * share:.1f}% "
                  f"| {mean:+.2f} | {flagged} |{' OFF' if off else ''}")  # fmt: skip
        sys.stdout.flush()
    print(f"\nrows off: {bad}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
