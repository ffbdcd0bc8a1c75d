"""Wall time of gradstat's exact gradient against dense enumeration, printed as a Markdown table.

What a researcher would otherwise write is dense enumeration: build the ``(2^N, N)`` matrix
of all joint hidden states, compute ``log P(h | x)`` and the loss ``C(h)`` of every state,
and differentiate the expected loss ``J = sum_h exp(log P(h | x)) C(h)``. This script times,
in one process and on one fixed random example with the mse loss,

* **gradstat**: ``gradstat.exact_gradient(net, x, t)``, which picks joint enumeration or
  the layer-by-layer message engine by itself (``gradstat.exact.gradient_engine``, shown
  in the table);
* **torch**: dense PyTorch enumeration with autograd (CPU, float64): the state matrix, then
  ``log P = sum_l sum_i h_li a_li - softplus(a_li)`` (the Bernoulli log-likelihood,
  ``a_l = W_l h_{l-1} + b_l``), ``C = 0.5 ||W_o h_L + b_o - t||^2``, ``J`` as above and
  ``J.backward()``. Multi-layer networks enumerate all layers' bits jointly. Skipped with a
  note when ``import torch`` fails (torch is a benchmark-only optional dependency);
* **numpy**: the same dense formulation in vectorised NumPy, gradient by the
  score-function identity ``g = sum_h P(h) [C(h) d log P(h)/d theta + dC(h)/d theta]``,
  each sum over states done as one matrix product per layer.

Each dense call builds its state matrix inside the timed region (gradstat gets nothing
precomputed either). Before timing, every baseline's gradient is checked against
gradstat's (the largest absolute difference is printed), and the peak resident memory of
that call is measured (``VmHWM`` of ``/proc/self/status``, reset through
``/proc/self/clear_refs``, minus the resident size before the call). A baseline whose
estimated peak exceeds ``--max-gb`` is not run ("out of memory (needs X GB)").

Networks: one-layer ``(8, N, 1)`` for ``N = 10, 12, ..., 24``, and depth sweeps at fixed
width ``(8, w, ..., w, 1)`` for ``w = 5`` (depth 1..10; dense baselines while
``5 * depth <= 22``) and ``w = 10`` (depth 1..10; dense baselines at depth 1-2). Every
timing warms up once (numba compilation or cache load, torch initialisation) and reports the
best of ``--repeat`` runs timed with ``time.perf_counter``. Two PNG scaling plots (time
against N for one layer, time against depth) go to ``--plots``.

Run from the repository root::

    python benchmarks/bench_dense.py                 # everything (a few minutes on 2 cores)
    python benchmarks/bench_dense.py --quick         # N <= 14, depth <= 3, one repeat
    python benchmarks/bench_dense.py --out dense.md --plots /tmp/plots
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout

import _timing  # noqa: E402

import gradstat as gs  # noqa: E402
from gradstat.engines.gradient import gradient_engine  # noqa: E402

try:
    import torch
except ImportError as exc:  # torch is optional: the torch column is skipped
    torch = None
    TORCH_ERROR = f"{type(exc).__name__}: {exc}"
else:
    TORCH_ERROR = ""

try:
    LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    LIBC.malloc_trim  # noqa: B018  (glibc only)
except (OSError, AttributeError):
    LIBC = None

N_IN = 8
N_OUT = 1
ONE_LAYER_N = (10, 12, 14, 16, 18, 20, 22, 24)
"""Widths ``N`` of the one-layer networks ``(8, N, 1)``."""
DEPTH_WIDTHS = (5, 10)
"""Widths ``w`` of the depth sweeps ``(8, w, ..., w, 1)``."""
MAX_DEPTH = 10
DENSE_MAX_N = {5: 22, 10: 20}
"""Per sweep width: the dense baselines run only while ``N = w * depth`` is at most this."""
QUICK_MAX_N = 14
QUICK_MAX_DEPTH = 3
MAX_GB = 4.0
"""Default memory cap of one dense call, in GB (1e9 bytes)."""
LONG_CALL_S = 20.0
"""A measurement whose warm-up call took longer than this is timed once, not ``--repeat``
times, to keep the full run short (marked in the table)."""
ISSUE_TORCH_N20_S = 3.6
"""The project's issue: dense torch enumeration takes about 3.6 s at one-layer N = 20."""
TARGET_SPEEDUP = 50
"""The project's performance target: at one-layer N = 20, gradstat's exact gradient at
least this many times faster than the dense torch enumeration."""
METHODS = ("torch", "numpy")


# --------------------------------------------------------------------------- dense baselines


def split_params(net: gs.BinaryNetwork) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` of layers ``1..L`` and the output layer, ``W`` of shape ``(fan_out, fan_in)``."""
    out = []
    for (w, b), fan_in, fan_out in zip(net.layer_slices(), net.sizes[:-1], net.sizes[1:]):
        out.append((net.params[w].reshape(fan_out, fan_in), net.params[b]))
    return out


def numpy_states(n: int) -> np.ndarray:
    """The ``(2^n, n)`` float64 matrix of all states: entry ``(s, i)`` is bit ``i`` of ``s``."""
    codes = np.arange(2**n, dtype=np.uint32).astype("<u4", copy=False).view(np.uint8)
    bits = np.unpackbits(codes.reshape(2**n, 4), axis=1, bitorder="little", count=n)
    return bits.astype(np.float64)


def numpy_dense_gradient(net: gs.BinaryNetwork, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Exact gradient by dense joint enumeration in NumPy (score-function identity)."""
    hidden = net.hidden_sizes
    layers = split_params(net)
    w_o, b_o = layers[-1]
    h = numpy_states(net.n_stochastic)
    hs = np.split(h, np.cumsum(hidden)[:-1], axis=1)
    w1, b1 = layers[0]
    a1 = w1 @ x + b1
    p1 = 1.0 / (1.0 + np.exp(-a1))
    logp = hs[0] @ a1 - np.logaddexp(0.0, a1).sum()  # log P(h_1 | x) = h.a - softplus(a)
    probs = []  # p_l for l >= 2, shape (S, n_l)
    for (w, b), h_prev, h_l in zip(layers[1:-1], hs[:-1], hs[1:]):
        a = h_prev @ w.T + b
        logp += np.einsum("si,si->s", h_l, a) - np.logaddexp(0.0, a).sum(axis=1)
        probs.append(1.0 / (1.0 + np.exp(-a)))
        del a
    resid = hs[-1] @ w_o.T + (b_o - t)  # y - t, shape (S, n_out)
    cost = 0.5 * np.einsum("sk,sk->s", resid, resid)
    prob = np.exp(logp)
    weight = prob * cost  # P(h) C(h)
    grads = []
    d1 = weight @ hs[0] - weight.sum() * p1  # sum_h P C (h_1 - p_1)
    grads += [np.outer(d1, x).ravel(), d1]
    for p_l, h_prev, h_l in zip(probs, hs[:-1], hs[1:]):
        d = (h_l - p_l) * weight[:, None]  # P C d log P / d a_l
        grads += [(d.T @ h_prev).ravel(), d.sum(axis=0)]
        del d
    resid *= prob[:, None]  # P dC/dy: the direct path of the output layer
    grads += [(resid.T @ hs[-1]).ravel(), resid.sum(axis=0)]
    return np.concatenate(grads)


def torch_dense_gradient(net: gs.BinaryNetwork, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Exact gradient by dense joint enumeration in PyTorch, differentiated by autograd."""
    f64 = torch.float64
    n = net.n_stochastic
    theta = torch.tensor(net.params, dtype=f64, requires_grad=True)
    layers = []
    for (w, b), fan_in, fan_out in zip(net.layer_slices(), net.sizes[:-1], net.sizes[1:]):
        layers.append((theta[w].view(fan_out, fan_in), theta[b]))
    bits = torch.arange(n, dtype=torch.int32)
    h = ((torch.arange(2**n, dtype=torch.int32)[:, None] >> bits) & 1).to(f64)
    hs = torch.split(h, list(net.hidden_sizes), dim=1)
    xt = torch.as_tensor(x, dtype=f64)
    tt = torch.as_tensor(t, dtype=f64)
    softplus = torch.nn.functional.softplus
    w1, b1 = layers[0]
    a1 = w1 @ xt + b1
    logp = hs[0] @ a1 - softplus(a1).sum()
    for (w, b), h_prev, h_l in zip(layers[1:-1], hs[:-1], hs[1:]):
        a = h_prev @ w.T + b
        logp = logp + (h_l * a).sum(dim=1) - softplus(a).sum(dim=1)
    w_o, b_o = layers[-1]
    y = hs[-1] @ w_o.T + b_o
    cost = 0.5 * ((y - tt) ** 2).sum(dim=1)
    loss = (torch.exp(logp) * cost).sum()
    loss.backward()
    return theta.grad.numpy().copy()


def dense_bytes(method: str, sizes: tuple[int, ...]) -> int:
    """Estimated peak bytes of one dense call (calibrated on measured peaks, a little high).

    The float64 state matrix ``(S, N)``, ``S = 2^N``, is the floor; building it needs an
    extra ``4 S N`` bytes (torch: int32 codes) or ``S N`` bytes (numpy: unpacked bits).
    Per-state vectors (log P, loss, weights) add a few ``8 S``; every stochastic unit beyond
    the first layer adds several ``(S,)`` float64 columns: pre-activations, probabilities
    and temporaries in NumPy; saved tensors, copies of strided views and their gradients
    under autograd.
    """
    hidden = sizes[1:-1]
    n = sum(hidden)
    s = 2**n
    deep = n - hidden[0]
    col = 8 * s  # one float64 column of S entries
    if method == "torch":
        return 8 * n * s + max(4 * n * s + 8 * col, col * (6 * deep + 3 * sizes[-1] + 5))
    return 9 * n * s + col * (4 * deep + 3 * sizes[-1] + 3)


# --------------------------------------------------------------------------------- measuring


def rss_bytes(field_name: str) -> int:
    """A ``Vm*`` field of ``/proc/self/status`` in bytes (0 where unavailable)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_call(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float | None]:
    """``(result, seconds, peak bytes above the resident size before the call or None)``."""
    if LIBC is not None:
        LIBC.malloc_trim(0)  # hand freed heap pages back, so that reuse does not hide a peak
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current resident size
        before = rss_bytes("VmRSS")
    except OSError:
        before = 0
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    peak = rss_bytes("VmHWM")
    return out, seconds, (max(0, peak - before) if before and peak else None)


@dataclass
class Timing:
    """One method on one network: time, memory and agreement with gradstat."""

    seconds: float | None = None
    peak_bytes: float | None = None
    max_diff: float | None = None
    runs: int = 0
    cut: bool = False
    """Timed fewer than ``--repeat`` times (the warm-up call was slow)."""
    skipped: str = ""
    """Why the method was not run ('' when it was)."""


@dataclass
class Row:
    """The measurements of one network."""

    sizes: tuple[int, ...]
    sweep: str
    n_params: int
    engine: str
    grad_norm: float
    gradstat: Timing
    dense: dict[str, Timing] = field(default_factory=dict)

    @property
    def n_hidden(self) -> int:
        return sum(self.sizes[1:-1])

    @property
    def depth(self) -> int:
        return len(self.sizes) - 2


def time_method(fn: Callable[[], np.ndarray], repeat: int) -> tuple[np.ndarray, Timing]:
    """Warm-up call (result, peak memory), then the best of ``repeat`` timed calls."""
    out, warm_s, peak = peak_call(fn)
    runs = 1 if warm_s > LONG_CALL_S else repeat
    return out, Timing(_timing.best_of(fn, runs), peak, runs=runs, cut=runs < repeat)


def measure(
    sizes: tuple[int, ...], sweep: str, *, repeat: int, dense_max_n: int, max_bytes: float
) -> Row:
    """All timings of the network ``sizes`` on one fixed random example."""
    net = gs.BinaryNetwork.random(sizes, loss="mse", seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(sizes[0])
    t = rng.standard_normal(sizes[-1])
    gs.exact_gradient(net, x, t)  # compile or load the numba kernels first
    ref, gradstat = time_method(lambda: gs.exact_gradient(net, x, t), repeat)
    row = Row(
        sizes, sweep, net.n_params, gradient_engine(net), float(np.linalg.norm(ref)), gradstat
    )
    fns = {"torch": torch_dense_gradient, "numpy": numpy_dense_gradient}
    for method in METHODS:
        need = dense_bytes(method, sizes)
        if method == "torch" and torch is None:
            row.dense[method] = Timing(skipped="torch not installed")
        elif row.n_hidden > dense_max_n:
            row.dense[method] = Timing(peak_bytes=need, skipped=f"N > {dense_max_n}")
        elif need > max_bytes:
            row.dense[method] = Timing(peak_bytes=need, skipped="out of memory")
        else:
            fn = fns[method]
            grad, timing = time_method(lambda fn=fn: fn(net, x, t), repeat)
            timing.max_diff = float(np.max(np.abs(grad - ref)))
            row.dense[method] = timing
        print(f"  {sizes} {method} done", file=sys.stderr, flush=True)
    return row


# ---------------------------------------------------------------------------------- report


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    if n >= 1e15:
        return f"{n / 1e9:.1e} GB"
    if n >= 1e12:
        return f"{n / 1e12:.3g} TB"
    if n >= 1e9:
        return f"{n / 1e9:.3g} GB"
    if n >= 1e6:
        return f"{n / 1e6:.3g} MB"
    return f"{n / 1e3:.3g} kB"


def fmt_time_cell(timing: Timing) -> str:
    if timing.skipped == "out of memory":
        return f"out of memory (needs {fmt_bytes(timing.peak_bytes)})"
    if timing.skipped:
        return f"skipped ({timing.skipped})"
    mark = " *" if timing.cut else ""
    return _timing.fmt_seconds(timing.seconds) + mark


def fmt_ratio(timing: Timing, base: Timing) -> str:
    if timing.seconds is None or not base.seconds:
        return "-"
    ratio = timing.seconds / base.seconds
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.3g}x"


def fmt_memory(timing: Timing) -> str:
    """Measured peak of a run baseline, the estimate ('est.') of a skipped one."""
    if timing.skipped == "torch not installed":
        return "-"
    if timing.skipped:
        return f"{fmt_bytes(timing.peak_bytes)} est."
    return fmt_bytes(timing.peak_bytes)


def fmt_diff(timing: Timing, grad_norm: float) -> str:
    if timing.max_diff is None:
        return "-"
    flag = "" if timing.max_diff <= 1e-9 * max(1.0, grad_norm) else " MISMATCH"
    return f"{timing.max_diff:.1e}{flag}"


def table(rows: list[Row]) -> list[str]:
    """The Markdown table, one row per network."""
    head = ["sweep", "net", "N", "params", "engine", "gradstat", "gradstat mem"]
    for method in METHODS:
        head += [method, f"{method}/gradstat", f"{method} max abs diff", f"{method} mem"]
    align = ["---"] * 5 + ["--:"] * (len(head) - 5)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        sizes = f"({row.sizes[0]}, {row.sizes[1]} x {row.depth}, {row.sizes[-1]})"
        if row.depth == 1:
            sizes = str(row.sizes)
        cells = [row.sweep, sizes, str(row.n_hidden), str(row.n_params), row.engine]
        cells += [fmt_time_cell(row.gradstat), fmt_bytes(row.gradstat.peak_bytes)]
        for method in METHODS:
            timing = row.dense[method]
            cells += [
                fmt_time_cell(timing),
                fmt_ratio(timing, row.gradstat),
                fmt_diff(timing, row.grad_norm),
                fmt_memory(timing),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def headline(rows: list[Row]) -> list[str]:
    """The one-layer N = 20 comparison and the largest networks each method handled."""
    lines = []
    n20 = [r for r in rows if r.sweep == "one-layer" and r.n_hidden == 20]
    if n20:
        row = n20[0]
        parts = [f"gradstat {_timing.fmt_seconds(row.gradstat.seconds)}"]
        for method in METHODS:
            timing = row.dense[method]
            if timing.seconds is not None:
                parts.append(
                    f"{method} {_timing.fmt_seconds(timing.seconds)} "
                    f"({fmt_ratio(timing, row.gradstat)})"
                )
            else:
                parts.append(f"{method} {fmt_time_cell(timing)}")
        lines.append("Headline, one-layer N = 20: " + ", ".join(parts) + ".")
        torch_s = row.dense["torch"].seconds
        if torch_s is not None:
            lines.append(
                f"(The issue quotes about {ISSUE_TORCH_N20_S} s for a researcher's dense torch "
                f"enumeration at N = 20; this script's vectorised torch baseline took "
                f"{_timing.fmt_seconds(torch_s)}.)"
            )
            speedup = torch_s / row.gradstat.seconds
            verdict = "met" if speedup >= TARGET_SPEEDUP else "NOT met"
            lines.append(
                f"Target: one-layer N = 20 exact gradient at least {TARGET_SPEEDUP}x faster "
                f"than dense torch: {verdict} ({speedup:,.0f}x)."
            )
    for method in ("gradstat", *METHODS):
        done = [
            r.n_hidden
            for r in rows
            if (r.gradstat if method == "gradstat" else r.dense[method]).seconds is not None
        ]
        if done:
            lines.append(f"Largest N computed by {method}: {max(done)}.")
    return lines


def plot(rows: list[Row], directory: Path) -> list[Path]:
    """Two PNG scaling plots (log time against N, and against depth); their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    styles = {"gradstat": "-", "torch": "--", "numpy": ":"}

    def series(sel: list[Row], method: str, key: Callable[[Row], int]) -> tuple[list, list]:
        pts = [
            (key(r), (r.gradstat if method == "gradstat" else r.dense[method]).seconds) for r in sel
        ]
        pts = [(k, s) for k, s in pts if s is not None]
        return [k for k, _ in pts], [s for _, s in pts]

    paths = []
    one = [r for r in rows if r.sweep == "one-layer"]
    if one:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for method, style in styles.items():
            xs, ys = series(one, method, lambda r: r.n_hidden)
            if xs:
                ax.plot(xs, ys, style, marker="o", label=method)
        ax.set_yscale("log")
        ax.set_xlabel("N (stochastic units), network (8, N, 1)")
        ax.set_ylabel("wall time of one exact gradient (s)")
        ax.set_title("One layer: exact gradient vs dense enumeration")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        paths.append(directory / "dense_time_vs_n.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    deep = [r for r in rows if r.sweep.startswith("w =")]
    if deep:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for k, width in enumerate(DEPTH_WIDTHS):
            sel = [r for r in deep if r.sweep == f"w = {width}"]
            for method, style in styles.items():
                xs, ys = series(sel, method, lambda r: r.depth)
                if xs:
                    ax.plot(
                        xs,
                        ys,
                        style,
                        marker="os"[k % 2],
                        color=f"C{k}",
                        label=f"{method}, w={width}",
                    )
        ax.set_yscale("log")
        ax.set_xlabel("depth L, network (8, w x L, 1)")
        ax.set_ylabel("wall time of one exact gradient (s)")
        ax.set_title("Depth sweeps: exact gradient vs dense enumeration")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        paths.append(directory / "dense_time_vs_depth.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _timing.benchmark_parser(__doc__, quick="N <= 14, depth <= 3, one repeat")
    parser.add_argument(
        "--max-gb", type=float, default=MAX_GB, help="skip dense calls needing more (GB)"
    )
    parser.add_argument(
        "--plots",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="directory of the PNG plots (default benchmarks/results/)",
    )
    return _timing.parse_benchmark_args(parser, argv)


def networks(quick: bool) -> list[tuple[tuple[int, ...], str, int]]:
    """``(sizes, sweep label, largest N for the dense baselines)`` of every network."""
    max_n = QUICK_MAX_N if quick else max(ONE_LAYER_N)
    max_depth = QUICK_MAX_DEPTH if quick else MAX_DEPTH
    nets = [((N_IN, n, N_OUT), "one-layer", max(ONE_LAYER_N)) for n in ONE_LAYER_N if n <= max_n]
    for width in DEPTH_WIDTHS:
        for depth in range(1, max_depth + 1):
            nets.append(((N_IN, *[width] * depth, N_OUT), f"w = {width}", DENSE_MAX_N[width]))
    return nets


def main(argv: list[str] | None = None) -> None:
    """Measure every network, print the report, write the plots and optionally ``--out``."""
    args = parse_args(argv)
    load_start = _timing.load_average()
    start = time.perf_counter()
    rows = []
    for sizes, sweep, dense_max_n in networks(args.quick):
        print(f"measuring {sizes} ...", file=sys.stderr, flush=True)
        rows.append(
            measure(
                sizes,
                sweep,
                repeat=args.repeat,
                dense_max_n=dense_max_n,
                max_bytes=args.max_gb * 1e9,
            )
        )
    elapsed = time.perf_counter() - start
    torch_line = (
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
        if torch is not None
        else f"torch not available ({TORCH_ERROR}): torch column skipped"
    )
    header = [
        f"# gradstat {gs.__version__}: exact gradient vs dense enumeration",
        "",
        _timing.machine_line(load_start),
        f"{_timing.versions_line()}, {torch_line}; one example, mse loss; best of "
        f"{args.repeat} after one warm-up; run took {elapsed:.0f} s.",
        "",
    ]
    notes = [
        "",
        "Times: one exact gradient of one example; dense times include building the state "
        "matrix. x/gradstat: baseline time over gradstat's (higher is better for gradstat). "
        "engine: `gradstat.exact.gradient_engine`. max abs diff: largest |g_baseline - "
        "g_gradstat| (MISMATCH if above 1e-9 max(1, ||g||)).",
        "mem: peak resident memory of one call above the resident size before it "
        "(VmHWM); 'est.': the estimate for a baseline that was not run. "
        f"Dense calls estimated above {args.max_gb:g} GB are not run.",
    ]
    if any(t.cut for r in rows for t in (r.gradstat, *r.dense.values())):
        notes.append(f"`*`: timed once (the warm-up call took over {LONG_CALL_S:g} s).")
    if torch is None:
        notes.append(f"torch column skipped: `import torch` failed ({TORCH_ERROR}).")
    report = header + table(rows) + notes + [""] + headline(rows)
    _timing.publish(report, args.out)
    paths = plot(rows, args.plots)
    print("\nPlots: " + ", ".join(str(p) for p in paths), file=sys.stderr)


if __name__ == "__main__":
    main()
