"""Command line: ``gradstat`` or ``python -m gradstat``.

``gradstat summary`` (the default) prints the exact bias/variance table of every
registered estimator on one network (by default the built-in ``(4, 3, 3, 2)`` mse network
with seed 0, input ``x = 1`` and target ``t = 0``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from gradstat.analysis import AnalysisResult, analyze
from gradstat.estimators import available_estimators
from gradstat.metrics import METRICS
from gradstat.network import LOSSES, BinaryNetwork

DEFAULT_SIZES = (4, 3, 3, 2)

ESTIMATOR_VARIANTS: dict[str, list[dict[str, object]]] = {
    "reinforce": [{"baseline": "none"}, {"baseline": "mean"}, {"baseline": "optimal"}],
}
"""Option sets shown per estimator in the summary (one row each)."""


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes comma-separated integers like 4,3,3,2, got {text!r}"
        ) from None


def _default_target(net: BinaryNetwork) -> np.ndarray | int:
    return 0 if net.loss == "xent" else np.zeros(net.n_out)


def summary_rows(
    net: BinaryNetwork,
    x: np.ndarray,
    t: np.ndarray | int,
    estimators: Sequence[str],
    *,
    method: str = "auto",
    n_samples: int | None = None,
    seed: int | None = None,
) -> list[tuple[str, AnalysisResult]]:
    """``analyze`` every estimator (and the listed option variants) on one problem."""
    rows = []
    for name in estimators:
        for options in ESTIMATOR_VARIANTS.get(name, [{}]):
            label = name + "".join(f" {k}={v}" for k, v in options.items())
            kw = {"n_samples": n_samples, "seed": seed} if method != "exact" else {}
            rows.append((label, analyze(net, x, t, name, method=method, **kw, **options)))
    return rows


def format_table(rows: list[tuple[str, AnalysisResult]], scope: str) -> str:
    """A Markdown table of the metrics of ``scope`` (``all`` or ``stochastic``) per row."""
    head = "| estimator | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 1)]
    for label, r in rows:
        m = r.scopes()[scope]
        se = r.standard_errors[scope] if r.standard_errors else None
        cells = []
        for name in METRICS:
            v = getattr(m, name)
            cells.append(f"{v:.4g}" if se is None else f"{v:.4g} ± {getattr(se, name):.2g}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _summary(args: argparse.Namespace) -> int:
    net = BinaryNetwork.random(args.sizes, loss=args.loss, scale=args.scale, seed=args.seed)
    x = np.ones(net.n_in)
    t = _default_target(net)
    estimators = args.estimators or available_estimators()
    rows = summary_rows(
        net, x, t, estimators, method=args.method, n_samples=args.n_samples, seed=args.mc_seed
    )
    method = rows[0][1].method if rows else args.method
    print(
        f"# gradstat summary: {net!r}, seed {args.seed}, x = 1, "
        f"t = {t if np.isscalar(t) else 0}, method {method}\n"
    )
    print("## All parameters\n")
    print(format_table(rows, "all"))
    print("\n## Stochastic-layer parameters\n")
    print(format_table(rows, "stochastic"))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _claims(args: argparse.Namespace) -> int:
    # Imported here: the registry runs Hypothesis, which ``gradstat summary`` does not need.
    from gradstat.claims import (
        DEFAULT_MAX_EXAMPLES,
        check_claims,
        claims_table,
        counterexample_list,
    )

    n = DEFAULT_MAX_EXAMPLES if args.max_examples is None else args.max_examples
    results = check_claims(args.claim, max_examples=n)
    print(f"# gradstat claims: exact checks, up to {n} Hypothesis examples per search\n")
    print(claims_table(results))
    listed = counterexample_list(results)
    if listed:
        print("\n## Counterexamples\n")
        print(listed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradstat",
        description="Exact bias/variance analysis of gradient estimators for stochastic "
        "binary neurons.",
    )
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("summary", help="bias/variance table of every estimator on one network")
    s.add_argument("--sizes", type=_sizes, default=DEFAULT_SIZES, help="n_in,n_1,...,n_L,n_out")
    s.add_argument("--loss", choices=sorted(LOSSES), default="mse")
    s.add_argument("--scale", type=float, default=1.0, help="weight scale of the random network")
    s.add_argument("--seed", type=int, default=0, help="seed of the random network")
    s.add_argument(
        "--estimators",
        nargs="+",
        choices=available_estimators(),
        help="estimators to compare (default: all registered)",
    )
    s.add_argument("--method", choices=["auto", "exact", "mc"], default="auto")
    s.add_argument("--n-samples", type=int, default=None, help="Monte Carlo draws")
    s.add_argument("--mc-seed", type=int, default=0, help="seed of the Monte Carlo draws")
    s.set_defaults(run=_summary)
    c = sub.add_parser("claims", help="check the claims registry and print its verdicts")
    c.add_argument(
        "--max-examples",
        type=_positive_int,
        default=None,
        help="Hypothesis examples per search (default: gradstat.claims.DEFAULT_MAX_EXAMPLES)",
    )
    c.add_argument(
        "--claim",
        action="append",
        metavar="KEY",
        help="check only this claim (repeatable; default: every registered claim)",
    )
    c.set_defaults(run=_claims)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gradstat`` command."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["summary", *argv]
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
