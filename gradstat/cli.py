"""Command line: ``gradstat`` or ``python -m gradstat`` (:func:`main`).

``gradstat summary`` (the default) prints the bias/variance table of every registered
estimator on one network (by default the built-in ``(4, 3, 3, 2)`` mse network with seed
0, input ``x = 1`` and the target of :func:`gradstat.report.default_target`): exact where
the moments can be enumerated, Monte Carlo otherwise (``--method auto``), with a column
saying which.
``gradstat report`` compares every estimator on a suite of networks and writes tables,
CSV/JSON results and plots into a folder (:mod:`gradstat.report`). ``gradstat sweep`` runs
the same grid on a process pool over every core or a Dask cluster and writes the results
only (:mod:`gradstat.sweep`); ``gradstat report --resume`` on its folder then writes the
tables and plots without recomputing. ``gradstat claims`` checks the claims registry.
``gradstat warmup`` compiles every kernel ahead of time (:mod:`gradstat.compilation`).

Every error ends with one line on stderr and exit status 2 (a bad option, config or
network file, a file that cannot be read or written, memory, an output folder another run
holds); ``gradstat report`` and ``gradstat sweep`` exit with status 1 when an analysis
failed (after writing everything else), and 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

import numpy as np

from gradstat._validation import check_int
from gradstat.analysis import DEFAULT_MC_SAMPLES, METHODS, AnalysisResult, analyze
from gradstat.compilation import compile_ahead_for
from gradstat.estimators import available_estimators
from gradstat.metrics import METRICS
from gradstat.network import LOSSES, BinaryNetwork
from gradstat.report import (
    ESTIMATOR_VARIANTS,
    SEEDINGS,
    EstimatorSpec,
    ReportConfig,
    ReportInterrupted,
    default_target,
    format_table,
    run_report,
)
from gradstat.sweep import (
    DEFAULT_RETRIES,
    LostRowsError,
    SweepInterrupted,
    counted,
    dask_client,
    sweep,
)

DEFAULT_SIZES = (4, 3, 3, 2)

USER_ERRORS = (ValueError, TypeError, OSError, ImportError, MemoryError, LostRowsError)
"""What a command line meets from its input and its machine: one line, exit status 2."""


def one_line(text: str) -> str:
    """``text`` on one line (every run of white space, newlines included, one space)."""
    return " ".join(str(text).split())


def _fail(message: str) -> NoReturn:
    print(one_line(message), file=sys.stderr)
    raise SystemExit(2)


def _error_text(err: BaseException) -> str:
    """The message of an error, naming its type where the message alone would not do."""
    text = one_line(str(err))
    if isinstance(err, MemoryError):
        return "out of memory" + (f": {text}" if text else "")
    if isinstance(err, (ValueError, TypeError, LostRowsError)) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (with where to find help), status 2."""

    def error(self, message: str) -> NoReturn:
        _fail(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes comma-separated integers like 4,3,3,2, got {text!r}"
        ) from None


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
    kw = {"n_samples": n_samples, "seed": seed} if method != "exact" else {}
    for name in estimators:
        for options in ESTIMATOR_VARIANTS.get(name, [{}]):
            spec = EstimatorSpec(name, options)
            rows.append((spec.label, analyze(net, x, t, name, method=method, **kw, **options)))
    return rows


def _target_text(t: np.ndarray | int) -> str:
    if isinstance(t, int):
        return f"class {t}"
    return f"{t[0]:g}" if np.all(t == t[0]) else str(t.tolist())


def _summary(args: argparse.Namespace) -> int:
    net = BinaryNetwork.random(args.sizes, loss=args.loss, scale=args.scale, seed=args.seed)
    x = np.ones(net.n_in)
    t = default_target(net)
    estimators = args.estimators or available_estimators()
    compile_ahead_for("summary")  # input checked: a cold cache compiles on every core
    rows = summary_rows(
        net, x, t, estimators, method=args.method, n_samples=args.n_samples, seed=args.mc_seed
    )
    print(
        f"# gradstat summary: {net!r}, seed {args.seed}, x = 1, t = {_target_text(t)}\n\n"
        f"{_methods_text(args, [r for _label, r in rows])}\n"
    )
    print("## All parameters\n")
    print(format_table(rows, ("all",), method_column=True))
    print("\n## Stochastic-layer parameters\n")
    print(format_table(rows, ("stochastic",), method_column=True))
    return 0


def _methods_text(args: argparse.Namespace, results: Sequence[AnalysisResult]) -> str:
    """What the summary's numbers are: exact, Monte Carlo, or each where it can be."""
    methods = {r.method for r in results}
    draws = args.n_samples or DEFAULT_MC_SAMPLES
    mc = f"Monte Carlo ({draws} draws, seed {args.mc_seed}; value ± standard error)"
    if methods == {"exact"}:
        return "Method: exact (every moment enumerated)."
    if methods == {"mc"}:
        return f"Method: {mc}."
    return (
        f"Method {args.method}: exact where the moments can be enumerated (discrete noise) "
        "or integrated per unit (Gumbel estimators), "
        f"{mc} otherwise; the method column says which."
    )


def _positive_int(text: str) -> int:
    try:
        value: Any = int(text)
    except ValueError:
        value = text
    try:
        return check_int(value, "N", minimum=1)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None


def _claims(args: argparse.Namespace) -> int:
    # Imported here: the registry runs Hypothesis, which ``gradstat summary`` does not need.
    from gradstat.claims import (
        DEFAULT_MAX_EXAMPLES,
        check_claims,
        claims_table,
        counterexample_list,
    )
    from gradstat.claims.registry import claim_keys, claims_text_table

    n = DEFAULT_MAX_EXAMPLES if args.max_examples is None else args.max_examples
    keys = claim_keys(args.claim)
    compile_ahead_for("claims")  # keys checked: a cold cache compiles on every core first
    results = check_claims(keys, max_examples=n)
    markdown = args.format == "md" or (args.format == "auto" and not sys.stdout.isatty())
    if not markdown:
        width = shutil.get_terminal_size().columns
        print(f"gradstat claims: exact checks, up to {n} Hypothesis examples per search")
        print(claims_text_table(results, width=width))
        return 0
    print(f"# gradstat claims: exact checks, up to {n} Hypothesis examples per search\n")
    print(claims_table(results))
    listed = counterexample_list(results)
    if listed:
        print("\n## Counterexamples\n")
        print(listed)
    return 0


def _warmup(args: argparse.Namespace) -> int:
    from gradstat.compilation import WARMUP_TASKS, cache_location, warmup

    jobs = min(len(WARMUP_TASKS), args.jobs or os.cpu_count() or 1)
    print(
        f"gradstat warmup: compiling every kernel in {counted(jobs, 'process', 'processes')} "
        f"into {cache_location()}",
        flush=True,
    )
    wall = warmup(jobs, report=lambda line: print(line, flush=True))
    print(f"gradstat warmup: done in {wall:.1f} s")
    return 0


def _grid(args: argparse.Namespace) -> ReportConfig:
    base = ReportConfig.from_toml(args.config) if args.config else None
    return ReportConfig.from_args(
        base=base,
        sizes=args.sizes,
        loss=args.loss,
        scale=args.scale,
        seeds=args.seeds,
        network_files=args.network,
        estimators=args.estimators,
        metrics=args.metrics,
        method=args.method,
        n_samples=args.n_samples,
        mc_seed=args.mc_seed,
        seeding=args.seeding,
        plots=False if getattr(args, "no_plots", False) else None,
        out=args.out,
    )


@contextlib.contextmanager
def _executor(args: argparse.Namespace, default: Any) -> Iterator[Any]:
    """The executor the flags ask for (a Dask client is closed on exit)."""
    if args.scheduler is not None:
        with dask_client(args.scheduler) as client:
            yield client
    elif args.dask_local is not None:
        with dask_client(n_workers=args.dask_local) as client:
            yield client
    else:
        yield default if args.workers is None else args.workers


def _report(args: argparse.Namespace) -> int:
    config = _grid(args)
    # Input checked: a cold cache compiles on every core first, unless the report has
    # workers of its own.
    own = [getattr(args, name, None) for name in ("workers", "scheduler", "dask_local")]
    compile_ahead_for("report", next((w for w in own if w is not None), None))
    try:
        with _executor(args, "serial") as executor:
            result = run_report(config, executor=executor, resume=args.resume, retries=args.retries)
    except ReportInterrupted as stop:
        print(f"gradstat report: {stop}", file=sys.stderr)
        return 130
    methods = ", ".join(sorted({r.result.method for r in result.records})) or config.method
    n_plots = sum(path.suffix == ".png" for path in result.files)
    extra = "".join(
        f", {n} {what}"
        for n, what in ((result.reused, "reused"), (len(result.failures), "failed"))
        if n
    )
    print(
        f"gradstat report: {counted(len(result.records), 'analysis', 'analyses')} "
        f"({_grid_text(len(result.cases), len(config.estimators))}, method {methods}{extra}) "
        f"in {result.wall_time:.1f} s"
    )
    print(
        f"wrote {result.out_dir}: report.md, results.csv, tasks.jsonl, results.json, "
        f"{counted(n_plots, 'plot')}, networks/ ({counted(len(result.cases), '.npz file')})"
    )
    if result.plots_note is not None:
        print(f"plots {result.plots_note}")
    if result.failures:
        done = counted(result.n_done, "analysis", "analyses")
        print(
            f"gradstat report: {len(result.failures)} of {done} failed (see report.md); "
            "--resume runs them again",
            file=sys.stderr,
        )
        return 1
    return 0


def _grid_text(n_networks: int, n_estimators: int) -> str:
    return f"{counted(n_networks, 'network')} x {counted(n_estimators, 'estimator')}"


def _sweep(args: argparse.Namespace) -> int:
    config = _grid(args)
    try:
        with _executor(args, None) as executor:
            result = sweep(config, executor=executor, resume=args.resume, retries=args.retries)
    except SweepInterrupted as stop:
        print(f"gradstat sweep: {stop}", file=sys.stderr)
        return 130
    failed = len(result.failed)
    print(
        f"gradstat sweep: {counted(len(result.outcomes), 'task')} "
        f"({_grid_text(len(result.cases), len(config.estimators))}; {result.reused} reused, "
        f"{failed} failed, {result.retried} rerun after a lost worker) on {result.executor} "
        f"in {result.wall_time:.1f} s"
    )
    print(
        f"wrote {result.out_dir}: results.csv, tasks.jsonl, results.json, networks/; "
        f"`gradstat report --resume --out {result.out_dir}` (with the same grid) adds the "
        "tables and plots"
    )
    if failed:
        print(
            f"gradstat sweep: {failed} of {counted(len(result.outcomes), 'task')} failed "
            "(status 'error' in results.csv); --resume runs them again",
            file=sys.stderr,
        )
        return 1
    return 0


def _grid_arguments(r: argparse.ArgumentParser, *, plots: bool) -> None:
    r.add_argument(
        "--config",
        metavar="FILE",
        help="a TOML config (see the reports guide, docs/guides/reports.md)",
    )
    r.add_argument("--out", metavar="DIR", help="output folder (default: gradstat-report)")
    r.add_argument(
        "--sizes",
        type=_sizes,
        action="append",
        metavar="N_IN,N_1,...,N_OUT",
        help="a random network's architecture (repeatable); replaces the default suite",
    )
    r.add_argument(
        "--network",
        action="append",
        metavar="FILE",
        help="a network saved as .npz (repeatable; e.g. DIR/networks/*.npz of a report)",
    )
    r.add_argument("--loss", choices=sorted(LOSSES), help="loss of every random network")
    r.add_argument("--scale", type=float, help="weight scale of every random network")
    r.add_argument("--seeds", type=int, nargs="+", help="seeds of every random network")
    r.add_argument(
        "--estimators",
        nargs="+",
        metavar="NAME[:KEY=VALUE,...]",
        help="estimators with options, e.g. st reinforce:baseline=optimal "
        f"(default: all registered: {', '.join(available_estimators())})",
    )
    r.add_argument(
        "--metrics",
        nargs="+",
        choices=METRICS,
        metavar="METRIC",
        help=f"metrics to report (default: all): {', '.join(METRICS)}",
    )
    r.add_argument("--method", choices=METHODS, help="auto (default), exact or mc")
    r.add_argument(
        "--n-samples",
        type=int,
        help=f"Monte Carlo draws per analysis (default {DEFAULT_MC_SAMPLES}; not with --method "
        "exact)",
    )
    r.add_argument("--mc-seed", type=int, help="seed of the Monte Carlo draws (default 0)")
    r.add_argument(
        "--seeding",
        choices=SEEDINGS,
        help="task (default): each Monte Carlo analysis its own seed, derived from "
        "--mc-seed and the analysis's identity; common: every analysis uses --mc-seed",
    )
    if plots:
        r.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def _execution_arguments(r: argparse.ArgumentParser, *, default: str) -> None:
    where = r.add_argument_group(f"where the analyses run (default: {default})")
    choice = where.add_mutually_exclusive_group()
    choice.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="a pool of N worker processes on this machine",
    )
    choice.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help='a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (pip install "gradstat[dask]")',
    )
    choice.add_argument(
        "--dask-local",
        type=_positive_int,
        metavar="N",
        help="a Dask LocalCluster of N worker processes on this machine",
    )
    where.add_argument(
        "--resume",
        action="store_true",
        help="keep the analyses that succeeded in an earlier run into --out (tasks.jsonl) "
        "and run the others, failed ones included",
    )
    where.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        metavar="N",
        help="reruns of a lost analysis, the same on every executor: one whose worker "
        "process died, or whose run raised outside the analysis (an analysis that raises "
        "fails at once); after N+1 losses it is recorded as failed. Serially nothing is "
        "lost; a Dask scheduler given with --scheduler first reschedules the analyses of "
        "a dead worker itself (its allowed-failures setting), --dask-local does not "
        f"(default {DEFAULT_RETRIES})",
    )


def _grid_command(
    sub: Any,
    name: str,
    *,
    help: str,
    description: str,
    plots: bool,
    default: str,
    run: Callable[[argparse.Namespace], int],
) -> None:
    """A subcommand that runs a grid (``report``, ``sweep``): its options and its run."""
    command = sub.add_parser(name, help=help, description=description + _EXIT_TEXT)
    _grid_arguments(command, plots=plots)
    _execution_arguments(command, default=default)
    command.set_defaults(run=run)


_EXIT_TEXT = (
    " Exit status: 0 when every analysis succeeded, 1 when one failed (everything else is "
    "written), 2 on an error (one line on stderr), 130 after Ctrl-C. The output folder is "
    "locked while it runs: a second run into it is refused."
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``gradstat`` and its subcommands (errors: one line, status 2)."""
    from gradstat import __version__

    parser = _Parser(
        prog="gradstat",
        description="Exact bias/variance analysis of gradient estimators for stochastic "
        "binary neurons.",
    )
    parser.add_argument("--version", action="version", version=f"gradstat {__version__}")
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser(
        "summary",
        help="bias/variance table of every estimator on one network: exact where the "
        "moments can be enumerated, Monte Carlo otherwise",
    )
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
    s.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help=f"Monte Carlo draws per estimator that is not exact (default {DEFAULT_MC_SAMPLES})",
    )
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
    c.add_argument(
        "--format",
        choices=("auto", "text", "md"),
        default="auto",
        help="text: a compact table (claim, verdict, examples, the statement cut to the "
        "terminal's width); md: the full Markdown table (source, conditions, evidence) "
        "and the counterexamples; auto (default): text on a terminal, md otherwise",
    )
    c.set_defaults(run=_claims)
    w = sub.add_parser(
        "warmup",
        help="compile every kernel into numba's on-disk cache ahead of time (for clusters, "
        "CI and container images)",
        description="Compile every kernel into numba's on-disk cache (NUMBA_CACHE_DIR, or "
        "the package's __pycache__ folders) in several processes at once, so that later "
        "runs on this CPU type start at once.",
    )
    w.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="processes compiling at once (default: one per core)",
    )
    w.set_defaults(run=_warmup)
    _grid_command(
        sub,
        "report",
        help="compare every estimator on a suite of networks; write tables, CSV/JSON, plots",
        description="Analyse every network of a suite (default: the built-in suite of "
        "gradstat.report) with every estimator and write report.md, results.csv, "
        "results.json, the networks and PNG plots into the output folder. Options given "
        "here replace those of --config.",
        plots=True,
        default="one after the other in this process",
        run=_report,
    )
    _grid_command(
        sub,
        "sweep",
        help="run a report's grid on a process pool or a Dask cluster; write the results only",
        description="Run every analysis of a grid (the options and TOML config of `gradstat "
        "report`) on a pool of worker processes over every core, or on a Dask cluster, "
        "writing results.csv and tasks.jsonl as analyses complete, then results.json. "
        "`gradstat report --resume` with the same grid and --out adds the tables and plots.",
        plots=False,
        default="a pool of worker processes over every core",
        run=_sweep,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gradstat`` command; returns its exit status.

    0: done; 1: ``report`` or ``sweep`` wrote everything but an analysis failed; 130:
    Ctrl-C. Errors (bad options, configs or files, memory, an output folder another run
    holds) print one line on stderr and raise ``SystemExit(2)``, never a traceback;
    ``--help`` and ``--version`` raise ``SystemExit(0)``.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["summary", *argv]
    args = parser.parse_args(argv)
    prog = f"gradstat {args.command}"
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        _fail(f"{prog}: error: {_error_text(err)}")
    except Exception as err:  # anything else still ends with one line, never a traceback
        _fail(f"{prog}: unexpected error: {type(err).__name__}: {one_line(str(err))}")
