"""The PNG plots of ``gradstat report`` (needs matplotlib: ``pip install "gradstat[plot]"``).

Four figures, all over every analysis of a report, all parameters unless stated:

* ``bias_variance.png``: relative bias ``||E[g_hat] - g|| / ||g||`` against the relative
  spread of one draw ``sqrt(tr Var[g_hat]) / ||g||``, one point per network and
  estimator (all parameters, and the stochastic layers' parameters);
* ``metrics_vs_depth.png``: each selected metric against the number ``L`` of stochastic
  layers, the median over networks of that depth;
* ``cosine_vs_samples.png`` and ``rmse_vs_samples.png``: in the style of Shekhovtsov &
  Yanush (2021, "Reintroducing straight-through estimators as principled methods for
  stochastic binary networks"), the quality of the average ``g_M`` of ``M`` independent
  draws against ``M``, one panel per network: :func:`relative_rmse_curve` and, in place
  of the expected cosine (no closed form), the ``M -> infinity`` limit
  ``cos(E[g_hat], g)`` and the proxy :func:`cosine_proxy_curve`.

Every estimator variant keeps one style (colour, marker, line style) in every figure
(:func:`variant_styles`, a fixed table keyed by the variant's label), and a variant whose
reference is not the exact gradient (the noisy rectifier) is marked in the legends.
Figures are sized for their content: the legend sits below the panels with full labels,
in as many columns as fit, and titles wrap to the figure's width, whatever the number of
networks. They are drawn on :class:`matplotlib.figure.Figure` objects directly, never
through ``pyplot``, so the caller's backend and open figures are left alone. matplotlib
is imported only when a figure is drawn.

Each panel is also public, to draw into a caller's own :class:`matplotlib.axes.Axes`
and compose figures: :func:`plot_bias_variance`, :func:`plot_metric_vs_depth` and
:func:`plot_versus_samples` take ``ax=`` (a new figure's axes when omitted), keep the
variants' styles of the report, add a legend to the axes and return them.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradstat._validation import check_choice
from gradstat.metrics import METRICS
from gradstat.report.markdown import REFERENCE_MARK
from gradstat.report.results import Record
from gradstat.sweep.config import default_estimators

INSTALL_HINT = 'pip install "gradstat[plot]"'
"""How to get the plotting dependency."""

SAMPLE_COUNTS = np.logspace(0, 3, 61)
"""The values of ``M`` (1 to 1000) at which the curves against ``M`` are drawn."""

LOG_METRICS = ("bias_norm", "relative_bias", "total_variance", "mse", "median_snr")
"""Metrics drawn on a (symmetric-)logarithmic axis."""

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
"""matplotlib's tab10 colours, written out so that no style setting changes them."""

MARKERS = "osD^vP*Xph"
"""Markers of the variants: with :data:`COLOURS`, 100 distinct pairs."""

LINE_STYLES = ("-", "--", "-.")
"""Line styles of the variants, where a figure's lines do not already mean something."""

_INCH_PER_CHAR = 0.075
"""Width of a character of the legend's 9-point font, in inches (an upper estimate)."""


def variant_style(index: int) -> dict[str, str]:
    """The style of the ``index``-th variant of :func:`variant_styles`' table.

    Colour ``index mod 10``, marker ``(index + index // 10) mod 10`` (so that the 100
    first pairs of colour and marker differ) and line style ``index // 10 mod 3``.
    """
    return {
        "color": COLOURS[index % len(COLOURS)],
        "marker": MARKERS[(index + index // len(COLOURS)) % len(MARKERS)],
        "linestyle": LINE_STYLES[(index // len(COLOURS)) % len(LINE_STYLES)],
    }


def variant_styles(labels: Iterable[str]) -> dict[str, dict[str, str]]:
    """One style per estimator variant, the same in every plot and every report.

    The table is keyed by the variant's label: the default variants
    (:func:`gradstat.report.default_estimators`) take the first entries in registry
    order, other labels the next ones in alphabetical order (so that the order in which
    they are given does not matter).
    """
    labels = list(dict.fromkeys(labels))
    order = [spec.label for spec in default_estimators()]
    order += sorted(label for label in labels if label not in order)
    index = {label: k for k, label in enumerate(order)}
    return {label: variant_style(index[label]) for label in labels}


def legend_label(label: str, references: Iterable[str]) -> str:
    """The legend's label of a variant: marked when its reference is not the exact gradient."""
    others = sorted(set(references) - {"exact"})
    if not others:
        return label
    return f"{label} {REFERENCE_MARK} (reference: {', '.join(others)})"


def relative_rmse_curve(
    bias_norm: float, total_variance: float, gradient_norm: float, m: np.ndarray
) -> np.ndarray:
    """Relative RMSE of the average ``g_M`` of ``M`` independent draws.

    ``sqrt(E||g_M - g||^2) / ||g|| = sqrt((||bias||^2 + tr Var[g_hat] / M) / ||g||^2)``,
    exact when the bias and variance are.

    Parameters
    ----------
    bias_norm, total_variance : float
        ``||E[g_hat] - g||`` and ``tr Var[g_hat]`` of one draw.
    gradient_norm : float
        ``||g||`` (> 0).
    m : ndarray
        Numbers of averaged draws.
    """
    return np.sqrt(bias_norm**2 + total_variance / m) / gradient_norm


def cosine_proxy_curve(
    mean: np.ndarray, gradient: np.ndarray, var: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """The "SNR-style" cosine proxy of an ``M``-sample average (a proxy, not ``E[cos]``).

    ``cos_M = <E g_hat, g> / (||g|| sqrt(||E g_hat||^2 + tr Var[g_hat] / M))``. Since
    ``E<g_M, g> = <E g_hat, g>`` and ``E||g_M||^2 = ||E g_hat||^2 + tr Var[g_hat] / M``,
    this is the cosine between ``g`` and the root-mean-square ``M``-average: a ratio of
    expectations, not the expected cosine ``E[cos(g_M, g)]``, which has no closed form.
    As ``M -> infinity`` it tends to ``cos(E[g_hat], g)``.

    Parameters
    ----------
    mean, gradient, var : ndarray (n_params,)
        ``E[g_hat]``, the exact gradient ``g`` and ``Var[g_hat]`` per coordinate.
    m : ndarray
        Numbers of averaged draws.
    """
    return float(mean @ gradient) / (
        np.linalg.norm(gradient) * np.sqrt(float(mean @ mean) + float(var.sum()) / m)
    )


def write_plots(records: Sequence[Record], out_dir: Path, metrics: Sequence[str]) -> list[Path]:
    """Draw the four figures of :func:`draw_figures` into ``out_dir``; their paths.

    ``records`` are the analyses (network case, estimator, result), ``metrics`` the
    metrics drawn against depth; raises ImportError, saying how to install it, without
    matplotlib.
    """
    paths = []
    for name, fig in draw_figures(records, metrics).items():
        fig.savefig(out_dir / name, dpi=110)
        paths.append(out_dir / name)
    return paths


def draw_figures(records: Sequence[Record], metrics: Sequence[str]) -> dict[str, Any]:
    """The four figures of a report, by file name (:class:`matplotlib.figure.Figure`).

    Parameters
    ----------
    records : sequence of Record
    metrics : sequence of str
        The metrics drawn against depth.

    Raises
    ------
    ImportError
        When matplotlib is not installed (the message says how to install it).
    """
    look = _look(records)
    return {
        "bias_variance.png": _bias_variance(look, records),
        "metrics_vs_depth.png": _metrics_vs_depth(look, records, metrics),
        "cosine_vs_samples.png": _versus_samples(look, records, "cosine"),
        "rmse_vs_samples.png": _versus_samples(look, records, "rmse"),
    }


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(f"the report's plots need matplotlib: {INSTALL_HINT}") from err
    return Figure


def _look(records: Sequence[Record]) -> _Look:
    styles = variant_styles(rec.estimator.label for rec in records)
    names = {
        label: legend_label(
            label, [rec.result.reference for rec in records if rec.estimator.label == label]
        )
        for label in styles
    }
    return _Look(_figure_class(), styles, names)


def _into(ax: Any, look: _Look, handles: dict[str, Any]) -> Any:
    """``ax`` with a legend of ``handles`` in the order of the variants' table."""
    labels = [label for label in look.styles if label in handles]
    ax.legend([handles[k] for k in labels], [look.names[k] for k in labels], fontsize=8)
    return ax


def _axes(ax: Any, look: _Look) -> Any:
    if ax is None:
        return look.Figure(figsize=(6.4, 4.8), layout="constrained").subplots()
    if not callable(getattr(ax, "plot", None)) or not hasattr(ax, "figure"):
        raise TypeError(f"ax must be a matplotlib Axes (or None), got {type(ax).__name__}")
    return ax


def plot_bias_variance(records: Sequence[Record], scope: str = "all", *, ax: Any = None) -> Any:
    """Relative bias against the relative spread of one draw, one point per network.

    The panel of ``bias_variance.png``: ``||E[g_hat] - g|| / ||g||`` against
    ``sqrt(tr Var[g_hat]) / ||g||`` over the parameters of ``scope``.

    Parameters
    ----------
    records : sequence of Record
        The analyses (``ReportResult.records``).
    scope : {"all", "stochastic"}
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: the axes of a new :class:`matplotlib.figure.Figure`).

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``, with a legend.

    Examples
    --------
    >>> fig, (left, right) = plt.subplots(1, 2)  # doctest: +SKIP
    >>> plot_bias_variance(report.records, "stochastic", ax=right)  # doctest: +SKIP
    """
    scope = check_choice(scope, "scope", ("all", "stochastic"))
    look = _look(records)
    ax = _axes(ax, look)
    return _into(ax, look, _bias_variance_panel(ax, look, records, scope))


def plot_metric_vs_depth(records: Sequence[Record], metric: str = "mse", *, ax: Any = None) -> Any:
    """A metric (all parameters) against the number ``L`` of stochastic layers.

    The median over the networks of each depth, one line per estimator variant: a panel
    of ``metrics_vs_depth.png``. Parameters as :func:`plot_bias_variance`, with
    ``metric`` one of :data:`gradstat.METRICS`; returns ``ax``.
    """
    metric = check_choice(metric, "metric", METRICS)
    look = _look(records)
    ax = _axes(ax, look)
    return _into(ax, look, _depth_panel(ax, look, records, metric))


def plot_versus_samples(
    records: Sequence[Record], network: str, kind: str = "rmse", *, ax: Any = None
) -> Any:
    """The quality of the average of ``M`` draws against ``M`` on one network.

    ``kind="rmse"``: :func:`relative_rmse_curve`; ``kind="cosine"``: the limit
    ``cos(E[g_hat], g)`` (dotted) and :func:`cosine_proxy_curve` (solid, exact moments
    only): a panel of ``rmse_vs_samples.png`` or ``cosine_vs_samples.png``.
    ``network`` is the network's label (e.g. ``"4-3-1_mse_seed0"``); other parameters
    as :func:`plot_bias_variance`; returns ``ax``.
    """
    kind = check_choice(kind, "kind", ("rmse", "cosine"))
    cases = {rec.case.label: rec.case for rec in records}
    network = check_choice(network, "network", list(cases))
    look = _look(records)
    ax = _axes(ax, look)
    return _into(ax, look, _samples_panel(ax, look, records, cases[network], kind))


class _Look:
    """What every figure of a report shares: the variants' styles and legend labels."""

    def __init__(self, figure: Any, styles: dict[str, dict], names: dict[str, str]) -> None:
        self.Figure = figure
        self.styles = styles
        self.names = names

    def figure(self, width: float, height: float) -> tuple[Any, int]:
        """A figure ``width`` inches wide, ``height`` inches tall above its legend, and
        the number of columns of that legend (full labels, as many columns as fit)."""
        names = list(self.names.values())
        ncols = 1
        for n in range(len(names), 1, -1):
            rows = math.ceil(len(names) / n)
            columns = [names[k : k + rows] for k in range(0, len(names), rows)]
            need = sum(0.8 + _INCH_PER_CHAR * max(map(len, c)) for c in columns)
            if need <= width - 0.3:
                ncols = n
                break
        rows = math.ceil(len(names) / ncols)
        fig = self.Figure(figsize=(width, height + 0.25 * rows + 0.2), layout="constrained")
        return fig, ncols

    def legend(self, fig: Any, handles: dict[str, Any], ncols: int) -> None:
        """The legend below the panels, in the order of the variants' table."""
        labels = [label for label in self.styles if label in handles]
        fig.legend(
            [handles[label] for label in labels],
            [self.names[label] for label in labels],
            loc="outside lower center",
            ncols=ncols,
            fontsize=9,
            frameon=False,
        )


def _title(text: str, width: float, fontsize: float) -> str:
    """``text`` wrapped to a figure ``width`` inches wide (each line of it separately)."""
    chars = max(20, int(width * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.splitlines())


def _bias_variance(look: _Look, records: Sequence[Record]) -> Any:
    fig, ncols = look.figure(11, 4.8)
    axes = fig.subplots(1, 2)
    handles: dict[str, Any] = {}
    for ax, scope in zip(axes, ("all", "stochastic")):
        handles.update(_bias_variance_panel(ax, look, records, scope))
    look.legend(fig, handles, ncols)
    return fig


def _bias_variance_panel(ax: Any, look: _Look, records: Sequence[Record], scope: str) -> dict:
    title = "all parameters" if scope == "all" else "stochastic layers"
    handles: dict[str, Any] = {}
    spreads, biases = [], []
    for label, style in look.styles.items():
        points = []
        for rec in records:
            if rec.estimator.label != label:
                continue
            where = slice(None) if scope == "all" else rec.case.net.parameter_groups()[scope]
            g_norm = float(np.linalg.norm(rec.result.gradient[where]))
            values = rec.result.scopes()[scope]
            if g_norm > 0:
                points.append((math.sqrt(values.total_variance) / g_norm, values.relative_bias))
        if points:
            x, y = np.array(points).T
            spreads += list(x)
            biases += list(y)
            handles[label] = ax.scatter(
                x, y, s=30, alpha=0.85, color=style["color"], marker=style["marker"]
            )
    _nonnegative_axis(ax, "x", spreads)
    _nonnegative_axis(ax, "y", biases)
    ax.set_xlabel("relative spread of one draw  sqrt(tr Var) / ||g||")
    ax.set_ylabel("relative bias  ||E g_hat - g|| / ||g||")
    ax.set_title(f"Bias vs spread, {title} (one point per network)", fontsize=10)
    ax.grid(alpha=0.3)
    return handles


def _nonnegative_axis(ax: Any, which: str, values: Sequence[float]) -> None:
    """A log axis for values >= 0 spanning orders of magnitude; exact zeros stay visible.

    Symmetric-log, linear below a thousandth of the largest value, so that an unbiased
    estimator (bias exactly 0) or a deterministic one (variance 0) sits on 0.
    """
    top = max((v for v in values if math.isfinite(v)), default=0.0)
    linthresh = 1e-3 * top if top > 0 else 1.0
    # Room above the largest value, so that its marker is drawn whole.
    high = 1.6 * top if top > 0 else None
    if which == "x":
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.set_xlim(left=-0.3 * linthresh, right=high)
    else:
        ax.set_yscale("symlog", linthresh=linthresh)
        ax.set_ylim(bottom=-0.3 * linthresh, top=high)


def _metrics_vs_depth(look: _Look, records: Sequence[Record], metrics: Sequence[str]) -> Any:
    ncols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    width = max(3.6 * ncols, 8.0)
    fig, legend_columns = look.figure(width, 2.9 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    handles: dict[str, Any] = {}
    for ax, metric in zip(axes, metrics):
        handles.update(_depth_panel(ax, look, records, metric))
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    title = "Metrics (all parameters) against depth: median over networks"
    fig.suptitle(_title(title, width, 11), fontsize=11)
    look.legend(fig, handles, legend_columns)
    return fig


def _depth_panel(ax: Any, look: _Look, records: Sequence[Record], metric: str) -> dict:
    depths = sorted({rec.case.net.n_layers for rec in records})
    handles: dict[str, Any] = {}
    shown = []
    for label, style in look.styles.items():
        x, y = [], []
        for depth in depths:
            values = [
                getattr(rec.result.overall, metric)
                for rec in records
                if rec.estimator.label == label and rec.case.net.n_layers == depth
            ]
            values = [v for v in values if math.isfinite(v)]
            if values:
                x.append(depth)
                y.append(float(np.median(values)))
        if x:
            shown += y
            (handles[label],) = ax.plot(x, y, markersize=5, **style)
    if metric in LOG_METRICS:
        _nonnegative_axis(ax, "y", shown)
    ax.set_xticks(depths)
    ax.set_xlabel("stochastic layers L")
    ax.set_title(metric, fontsize=10)
    ax.grid(alpha=0.3)
    return handles


def _versus_samples(look: _Look, records: Sequence[Record], kind: str) -> Any:
    cases = list(dict.fromkeys(rec.case for rec in records))
    ncols = min(5, len(cases))
    nrows = math.ceil(len(cases) / ncols)
    width = max(3.4 * ncols, 8.0)
    if kind == "rmse":
        title = (
            "Relative RMSE of the M-draw average: sqrt((||bias||^2 + tr Var / M) / ||g||^2)\n"
            "solid: exact moments; dashed: Monte Carlo plug-in"
        )
    else:
        title = (
            "Cosine with g of the M-draw average. Dotted: cos(E g_hat, g) (M -> infinity).\n"
            "Solid (exact moments): proxy <E g_hat, g> / (||g|| sqrt(||E g_hat||^2 + tr Var / M)),"
            " not E[cos]"
        )
    title = _title(title, width, 10)
    fig, legend_columns = look.figure(width, 2.8 * nrows + 0.25 * (title.count("\n") + 1))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    handles: dict[str, Any] = {}
    for ax, case in zip(axes, cases):
        handles.update(_samples_panel(ax, look, records, case, kind))
    for ax in axes[len(cases) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    look.legend(fig, handles, legend_columns)
    return fig


def _samples_panel(ax: Any, look: _Look, records: Sequence[Record], case: Any, kind: str) -> dict:
    handles: dict[str, Any] = {}
    m = SAMPLE_COUNTS
    for rec in records:
        if rec.case is not case:
            continue
        r = rec.result
        label = rec.estimator.label
        style = look.styles[label]
        # Line styles mean something here: the variants differ by colour and marker.
        mark = {"color": style["color"], "marker": style["marker"], "markersize": 4}
        g_norm = float(np.linalg.norm(r.gradient))
        if g_norm == 0:
            continue
        if kind == "rmse":
            curve = relative_rmse_curve(r.overall.bias_norm, r.overall.total_variance, g_norm, m)
            line = "-" if r.method == "exact" else "--"
            (handles[label],) = ax.plot(m, curve, line, markevery=(0, 12), **mark)
            continue
        (limit,) = ax.plot(m, np.full_like(m, r.overall.cosine), ":", markevery=(6, 12), **mark)
        handles.setdefault(label, limit)
        if r.method == "exact" and np.any(r.mean):
            proxy = cosine_proxy_curve(r.mean, r.gradient, r.var, m)
            (handles[label],) = ax.plot(m, proxy, "-", markevery=(0, 12), **mark)
    ax.set_xscale("log")
    if kind == "rmse":
        ax.set_yscale("log")
    ax.set_title(case.label, fontsize=9)
    ax.set_xlabel("M (draws averaged)")
    ax.grid(alpha=0.3)
    return handles
