"""Estimators written in PyTorch and JAX against the numba built-ins, as a Markdown table.

For ``st_sigmoid`` written as a user would (a surrogate loss with the detach trick,
``tests/frameworks/written.py``) on one-layer networks ``(8, N, 1)``, ``N = 10 .. 20``, it
measures

* the exact path: ``gradstat.estimator_moments`` (``2^N`` states, vectorised in blocks),
  as wall time and cost per state, against the built-in ``st_sigmoid`` on joint
  enumeration (``engine="joint"``);
* the Monte Carlo path: ``gradstat.sample_gradients`` draws per second on gradstat's
  Philox uniforms, against the built-in.

Every measurement warms up once (``vmap``/``jit`` tracing, numba compilation) and reports
the best of ``--repeat`` runs. The project's target: exact moments of a user's torch or JAX
``st_sigmoid`` on a one-layer ``N = 16`` network in under 2 s on 2 cores. Frameworks that
are not installed are skipped with a note.

Run from the repository root::

    python benchmarks/bench_frameworks.py            # N = 10, 12, ..., 20
    python benchmarks/bench_frameworks.py --quick    # N = 16 only, one repeat
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "frameworks"))

import _timing  # noqa: E402
import written  # noqa: E402

import gradstat as gs  # noqa: E402

TARGET_N = 16
TARGET_SECONDS = 2.0
DRAWS = 20_000


def estimators() -> dict[str, Any]:
    """The built-in and each installed framework's ``st_sigmoid``."""
    out: dict[str, Any] = {"numba built-in": "st_sigmoid"}
    if importlib.util.find_spec("torch"):
        out["torch"] = gs.torch_estimator(written.surrogate_st(written.torch_ops(), "sigmoid"))
    if importlib.util.find_spec("jax"):
        out["jax"] = gs.jax_estimator(written.surrogate_st(written.jax_ops(), "sigmoid"))
    return out


def measure(n: int, est: Any, repeat: int) -> tuple[float, float]:
    """Exact-moment wall time and Monte Carlo draws per second on ``(8, n, 1)``."""
    net = gs.BinaryNetwork.random((8, n, 1), seed=n)
    x, t = np.linspace(-1.0, 1.0, 8), np.array([0.5])
    options = {"engine": "joint"} if isinstance(est, str) else {}
    exact: Callable[[], object] = lambda: gs.estimator_moments(net, x, t, est, **options)  # noqa: E731
    draws: Callable[[], object] = lambda: gs.sample_gradients(net, x, t, est, DRAWS, seed=1)  # noqa: E731
    return _timing.warm_best_of(exact, repeat), DRAWS / _timing.warm_best_of(draws, repeat)


def main(argv: Sequence[str] | None = None) -> None:
    parser = _timing.benchmark_parser(__doc__, quick=f"N = {TARGET_N} only, one repeat")
    args = _timing.parse_benchmark_args(parser, argv)
    load = _timing.load_average()
    found = estimators()
    sizes = [TARGET_N] if args.quick else list(range(10, 21, 2))
    names = list(found)
    lines = [
        "| N | " + " | ".join(f"{k} exact (per state) | {k} draws/s" for k in names) + " |",
        "| --- |" + " --- | --- |" * len(names),
    ]
    verdicts = []
    for n in sizes:
        cells = []
        for name in names:
            seconds, rate = measure(n, found[name], args.repeat)
            per_state = seconds / 2**n
            cells.append(f"{_timing.fmt_seconds(seconds)} ({_timing.fmt_seconds(per_state)}) | "
                         f"{_timing.fmt_rate(rate)}")  # fmt: skip
            if n == TARGET_N and name != "numba built-in":
                ok = "met" if seconds < TARGET_SECONDS else "NOT met"
                verdicts.append(f"{name}: {_timing.fmt_seconds(seconds)} ({ok})")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    missing = [k for k in ("torch", "jax") if k not in found]
    header = [
        "# Framework estimators (st_sigmoid on (8, N, 1), one example)",
        "",
        _timing.machine_line(load),
        _timing.versions_line(),
        "",
        f"Target: exact moments of a torch or JAX st_sigmoid at N = {TARGET_N} in under "
        f"{TARGET_SECONDS:g} s on 2 cores: " + ("; ".join(verdicts) or "no framework installed"),
        "",
    ]
    if missing:
        header += [f"Not installed (skipped): {', '.join(missing)}.", ""]
    _timing.publish(header + lines, args.out)


if __name__ == "__main__":
    main()
