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

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly, never through
``pyplot``, so the caller's backend and open figures are left alone. matplotlib is
imported only when :func:`write_plots` runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradstat.report.results import Record

INSTALL_HINT = 'pip install "gradstat[plot]"'
"""How to get the plotting dependency."""

SAMPLE_COUNTS = np.logspace(0, 3, 61)
"""The values of ``M`` (1 to 1000) at which the curves against ``M`` are drawn."""

LOG_METRICS = ("bias_norm", "relative_bias", "total_variance", "mse", "median_snr")
"""Metrics drawn on a (symmetric-)logarithmic axis."""

MARKERS = "osD^vP*Xph"


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
    """Draw the four figures of a report into ``out_dir`` and return their paths.

    Parameters
    ----------
    records : sequence of Record
        The analyses (network case, estimator, result).
    out_dir : Path
    metrics : sequence of str
        The metrics drawn against depth.

    Raises
    ------
    ImportError
        When matplotlib is not installed (the message says how to install it).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(f"the report's plots need matplotlib: {INSTALL_HINT}") from err
    labels = list(dict.fromkeys(rec.estimator.label for rec in records))
    styles = {
        label: {"color": f"C{k % 10}", "marker": MARKERS[k % len(MARKERS)]}
        for k, label in enumerate(labels)
    }
    figures = {
        "bias_variance.png": _bias_variance(Figure, records, styles),
        "metrics_vs_depth.png": _metrics_vs_depth(Figure, records, styles, metrics),
        "cosine_vs_samples.png": _versus_samples(Figure, records, styles, "cosine"),
        "rmse_vs_samples.png": _versus_samples(Figure, records, styles, "rmse"),
    }
    paths = []
    for name, fig in figures.items():
        fig.savefig(out_dir / name, dpi=110)
        paths.append(out_dir / name)
    return paths


def _legend(fig: Any, handles: dict[str, Any]) -> None:
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=min(len(handles), 4),
        fontsize=9,
        frameon=False,
    )


def _bias_variance(Figure: Any, records: Sequence[Record], styles: dict[str, dict]) -> Any:
    fig = Figure(figsize=(11, 5.2), layout="constrained")
    axes = fig.subplots(1, 2)
    handles: dict[str, Any] = {}
    for ax, scope, title in zip(
        axes, ("all", "stochastic"), ("all parameters", "stochastic layers")
    ):
        spreads, biases = [], []
        for label, style in styles.items():
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
                handles[label] = ax.scatter(x, y, s=28, alpha=0.8, label=label, **style)
        _nonnegative_axis(ax, "x", spreads)
        _nonnegative_axis(ax, "y", biases)
        ax.set_xlabel("relative spread of one draw  sqrt(tr Var) / ||g||")
        ax.set_ylabel("relative bias  ||E g_hat - g|| / ||g||")
        ax.set_title(f"Bias vs spread, {title} (one point per network)", fontsize=10)
        ax.grid(alpha=0.3)
    _legend(fig, handles)
    return fig


def _nonnegative_axis(ax: Any, which: str, values: Sequence[float]) -> None:
    """A log axis for values >= 0 spanning orders of magnitude; exact zeros stay visible.

    Symmetric-log, linear below a thousandth of the largest value, so that an unbiased
    estimator (bias exactly 0) or a deterministic one (variance 0) sits on 0.
    """
    top = max((v for v in values if math.isfinite(v)), default=0.0)
    linthresh = 1e-3 * top if top > 0 else 1.0
    if which == "x":
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.set_xlim(left=-0.3 * linthresh)
    else:
        ax.set_yscale("symlog", linthresh=linthresh)
        ax.set_ylim(bottom=-0.3 * linthresh)


def _metrics_vs_depth(
    Figure: Any, records: Sequence[Record], styles: dict[str, dict], metrics: Sequence[str]
) -> Any:
    ncols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    depths = sorted({rec.case.net.n_layers for rec in records})
    handles: dict[str, Any] = {}
    for ax, metric in zip(axes, metrics):
        shown = []
        for label, style in styles.items():
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
                (handles[label],) = ax.plot(x, y, label=label, **style)
        if metric in LOG_METRICS:
            _nonnegative_axis(ax, "y", shown)
        ax.set_xticks(depths)
        ax.set_xlabel("stochastic layers L")
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle("Metrics (all parameters) against depth: median over networks", fontsize=11)
    _legend(fig, handles)
    return fig


def _versus_samples(
    Figure: Any, records: Sequence[Record], styles: dict[str, dict], kind: str
) -> Any:
    cases = list(dict.fromkeys(rec.case for rec in records))
    ncols = min(5, len(cases))
    nrows = math.ceil(len(cases) / ncols)
    fig = Figure(figsize=(3.4 * ncols, 2.8 * nrows + 1.1), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    handles: dict[str, Any] = {}
    m = SAMPLE_COUNTS
    for ax, case in zip(axes, cases):
        for rec in records:
            if rec.case is not case:
                continue
            r = rec.result
            style = {"color": styles[rec.estimator.label]["color"], "label": rec.estimator.label}
            g_norm = float(np.linalg.norm(r.gradient))
            if g_norm == 0:
                continue
            if kind == "rmse":
                curve = relative_rmse_curve(
                    r.overall.bias_norm, r.overall.total_variance, g_norm, m
                )
                line = "-" if r.method == "exact" else "--"
                (handles[rec.estimator.label],) = ax.plot(m, curve, line, **style)
                continue
            limit = ax.axhline(r.overall.cosine, linestyle=":", **style)
            handles.setdefault(rec.estimator.label, limit)
            if r.method == "exact" and np.any(r.mean):
                (handles[rec.estimator.label],) = ax.plot(
                    m, cosine_proxy_curve(r.mean, r.gradient, r.var, m), "-", **style
                )
        ax.set_xscale("log")
        if kind == "rmse":
            ax.set_yscale("log")
        ax.set_title(case.label, fontsize=9)
        ax.set_xlabel("M (draws averaged)")
        ax.grid(alpha=0.3)
    for ax in axes[len(cases) :]:
        ax.set_visible(False)
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
    fig.suptitle(title, fontsize=10)
    _legend(fig, handles)
    return fig
