"""The Markdown of a report: :func:`format_table` and ``report.md`` (:func:`format_report`).

A result measured against a reference other than the binary network's exact gradient
(``AnalysisResult.reference``: the noisy rectifier's ``"rectifier-exact"`` or
``"own-mean"``) is marked :data:`REFERENCE_MARK` wherever it appears, with a footnote
saying what it was compared with (:func:`reference_note`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from gradstat.analysis import DEFAULT_MC_SAMPLES, AnalysisResult
from gradstat.metrics import METRICS
from gradstat.report.noise_sources import noise_table
from gradstat.report.results import ReportResult
from gradstat.sweep.results import CSV_COLUMNS, counted

RELATIVE_METRICS = ("relative_bias", "cosine", "sign_agreement", "descent_probability")
"""Scale-free metrics, summarised over networks in the report's overview."""


REFERENCE_MARK = "†"
"""Marks a result whose reference is not the binary network's exact gradient."""

REFERENCE_TEXT = {
    "rectifier-exact": "the exact gradient of its own model, a network of noisy rectifiers "
    "(its bias and cosine measure that model, not the binary network)",
    "own-mean": "the Monte Carlo mean of its own draws (relative bias 0 and cosine 1 by "
    "construction, not measured)",
}
"""What each reference other than ``"exact"`` is, as written in footnotes."""


def marked(label: str, references: Iterable[str]) -> str:
    """``label``, followed by :data:`REFERENCE_MARK` unless every reference is exact."""
    return label + f" {REFERENCE_MARK}" if set(references) - {"exact"} else label


def reference_note(rows: Iterable[tuple[str, str]]) -> str | None:
    """The footnote of the marked labels, from ``(label, reference)`` pairs (None if none).

    E.g. ``† noisy_rectifier is compared not with the binary network's exact gradient but
    with `own-mean`, the Monte Carlo mean of its own draws (...); leave it out of any
    ranking.``
    """
    by_label: dict[str, list[str]] = {}
    for label, reference in rows:
        if reference != "exact" and reference not in by_label.setdefault(label, []):
            by_label[label].append(reference)
    parts = [
        f"{label} is compared not with the binary network's exact gradient but with "
        + " or with ".join(
            f"`{ref}`, {REFERENCE_TEXT.get(ref, 'another reference')}" for ref in refs
        )
        for label, refs in by_label.items()
        if refs
    ]
    if not parts:
        return None
    return f"{REFERENCE_MARK} " + "; ".join(parts) + "; leave it out of any ranking."


def format_table(
    rows: Sequence[tuple[str, AnalysisResult]],
    scopes: Sequence[str] = ("all",),
    metrics: Sequence[str] = METRICS,
    *,
    method_column: bool = False,
) -> str:
    """A Markdown table of ``metrics`` per labelled result (and per scope when several).

    Exact values print as ``0.1234``; Monte Carlo values as ``0.1234 ± 0.0012``. A result
    whose reference is not the exact gradient is marked :data:`REFERENCE_MARK`, with a
    footnote under the table (:func:`reference_note`).

    Parameters
    ----------
    rows : sequence of (str, AnalysisResult)
        Labelled results, one row each (per scope).
    scopes : sequence of str
        Scopes of :meth:`AnalysisResult.scopes`; a ``scope`` column when several.
    metrics : sequence of str
    method_column : bool
        Add a ``method`` column (``exact`` or ``mc``) after the label.
    """
    scope_column = len(scopes) > 1
    head = ["estimator", *(["method"] if method_column else []),
            *(["scope"] if scope_column else []), *metrics]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, result in rows:
        for scope in scopes:
            values = result.scopes()[scope]
            se = result.standard_errors[scope] if result.standard_errors else None
            cells = [marked(label, [result.reference])]
            cells += [result.method] if method_column else []
            cells += [scope] if scope_column else []
            for name in metrics:
                v = getattr(values, name)
                cells.append(f"{v:.4g}" if se is None else f"{v:.4g} ± {getattr(se, name):.2g}")
            lines.append("| " + " | ".join(cells) + " |")
    note = reference_note((label, result.reference) for label, result in rows)
    return "\n".join(lines + ([] if note is None else ["", note]))


def _median(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.median(kept)) if kept else float("nan")


def _overview(result: ReportResult) -> str:
    metrics = [m for m in (*RELATIVE_METRICS, "median_snr") if m in result.config.metrics]
    if not metrics:
        return "No scale-free metric was selected."
    lines = [
        "| estimator | networks | " + " | ".join(metrics) + " |",
        "|" + "---|" * (len(metrics) + 2),
    ]
    references = []
    for spec in result.config.estimators:
        done = [r.result for r in result.records if r.estimator == spec]
        if not done:
            continue
        references += [(spec.label, r.reference) for r in done]
        cells = [f"{_median([getattr(r.overall, m) for r in done]):.4g}" for m in metrics]
        label = marked(spec.label, [r.reference for r in done])
        lines.append(f"| {label} | {len(done)} | " + " | ".join(cells) + " |")
    note = reference_note(references)
    return "\n".join(lines + ([] if note is None else ["", note]))


PLOT_TEXT = {
    "bias_variance.png": (
        "Bias against spread, one point per network and estimator: x is "
        "`sqrt(tr Var[g_hat]) / ||g||` (the spread of one draw), y is the relative bias "
        "`||E[g_hat] - g|| / ||g||` (symmetric-log axis, so unbiased estimators sit on 0); "
        "left all parameters, right the stochastic layers'."
    ),
    "metrics_vs_depth.png": (
        "Each selected metric (all parameters) against the number L of stochastic layers: "
        "the median over the networks of that depth, one line per estimator."
    ),
    "cosine_vs_samples.png": (
        "Cosine similarity against the number M of independent draws averaged, one panel "
        "per network. Dotted lines: `cos(E[g_hat], g)`, the M -> infinity limit, for every "
        "estimator. Solid curves (exact-moment results only): the proxy "
        "`cos_M = <E g_hat, g> / (||g|| sqrt(||E g_hat||^2 + tr Var[g_hat] / M))`, i.e. "
        "`E<g_M, g> / (||g|| sqrt(E||g_M||^2))` for the M-sample average `g_M`: the cosine "
        "of g with the root-mean-square M-average. It is **not** `E[cos(g_M, g)]`, which "
        "has no closed form; it tends to the dotted limit as M grows."
    ),
    "rmse_vs_samples.png": (
        "Relative RMSE of the M-sample average against M, one panel per network: "
        "`sqrt((||bias||^2 + tr Var[g_hat] / M) / ||g||^2) = sqrt(E||g_M - g||^2) / ||g||`. "
        "Exact for exact-moment results (solid); for Monte Carlo results (dashed) a "
        "plug-in estimate with the debiased `||bias||^2`."
    ),
}
"""What each plot shows, as written into ``report.md``."""


def format_report(result: ReportResult) -> str:
    """The Markdown text of ``report.md``."""
    config = result.config
    done = result.n_done
    methods = sorted({r.result.method for r in result.records}) or [config.method]
    method = ", ".join(methods)
    if "mc" in methods:
        draws = config.n_samples or DEFAULT_MC_SAMPLES
        method += f" ({draws} draws per Monte Carlo analysis, seed {config.mc_seed})"
    planned = counted(result.n_planned, "analysis", "analyses")
    lines = [
        "# gradstat report",
        "",
        f"{counted(len(result.cases), 'network')} x {counted(len(config.estimators), 'estimator')}"
        f"; {done} of {planned} in {result.wall_time:.1f} s; method: {method}.",
        "",
    ]
    if result.reused:
        reused = counted(result.reused, "analysis was", "analyses were")
        lines += [
            f"{reused} read back from an earlier run (`--resume`); the others ran "
            f"{result.executor}.",
            "",
        ]
    if result.failures:
        failed = counted(len(result.failures), "analysis", "analyses")
        lines += [
            f"**{failed} failed**: listed under [Failed analyses](#failed-analyses); "
            "`--resume` runs them again.",
            "",
        ]
    if result.interrupted:
        lines += [
            f"**Interrupted** after {done} of {planned}: the tables and files below cover "
            "only what was done.",
            "",
        ]
    lines += [
        "Each network sees one example: input `x = 1` (all ones) and target 0 (mse), 0.5 "
        "(bce), class 0 (xent) or 1 (linear). Metrics as in docs/model.md, section 3: `bias_norm = "
        "||E[g_hat] - g||`, `relative_bias = bias_norm / ||g||`, `total_variance = tr Var`, "
        "`mse = bias_norm^2 + total_variance`, `cosine = cos(E[g_hat], g)`, "
        "`sign_agreement`, `descent_probability = P(<g_hat, g> > 0)` and `median_snr` (the "
        "median over coordinates of `|E g_hat_j| / sd g_hat_j`). Monte Carlo values read "
        "`value ± standard error`.",
        "",
        "## Overview",
        "",
        "Median over the networks analysed, all parameters:",
        "",
        _overview(result),
        "",
        "## Plots",
        "",
    ]
    if result.plots_note is not None:
        lines += [f"Plots {result.plots_note}.", ""]
    else:
        for name, text in PLOT_TEXT.items():
            lines += [f"![{name}]({name})", "", text, ""]
        note = reference_note((r.estimator.label, r.result.reference) for r in result.records)
        if note is not None:
            lines += [f"Marked in the plots' legends too: {note}", ""]
    lines += ["## Networks", ""]
    for case in result.cases:
        rows = [(r.estimator.label, r.result) for r in result.records if r.case is case]
        if not rows:
            continue
        source = (
            f"read from `{case.file}`" if case.file else f"seed {case.seed}, scale {case.scale:g}"
        )
        g_norm = float(np.linalg.norm(rows[0][1].gradient))
        lines += [
            f"### {case.label}",
            "",
            f"`{case.net!r}`, {source}; `||g|| = {g_norm:.4g}`. Saved as "
            f"`networks/{case.label}.npz` (rerun: `gradstat report --network "
            f"{result.out_dir / 'networks' / (case.label + '.npz')}`).",
            "",
            "All parameters:",
            "",
            format_table(rows, ("all",), config.metrics),
            "",
            "Per layer (`stochastic` is every stochastic layer together):",
            "",
            format_table(rows, tuple(rows[0][1].scopes())[1:], config.metrics),
            "",
        ]
        sources = noise_table([r for r in result.records if r.case is case])
        if sources is not None:
            lines += [
                "Where the noise comes from: the share of the stochastic layers' total "
                "variance caused by each layer's sampling (`gradstat.noise_decomposition`, "
                "exact analyses only):",
                "",
                sources,
                "",
            ]
    if result.failures:
        lines += ["## Failed analyses", "", "| network | estimator | error |", "|---|---|---|"]
        for case, spec, error in result.failures:
            message = " ".join(str(error).split()).replace("|", "\\|")
            lines.append(f"| {case.label} | {spec.label} | {message} |")
        lines.append("")
    lines += ["## Files", ""]
    for path in result.files:
        lines.append(f"* `{path.relative_to(result.out_dir).as_posix()}`")
    lines += [
        "",
        "`results.csv` has one row per network x estimator x scope x metric (columns "
        f"{', '.join(f'`{c}`' for c in CSV_COLUMNS)}); `standard_error` and `n_samples` "
        "are empty for exact values. `results.json` holds the same rows (NaN and infinity "
        "as the strings `nan`, `inf`), the config and the networks.",
        "",
    ]
    return "\n".join(lines)
