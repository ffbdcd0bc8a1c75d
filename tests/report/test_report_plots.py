"""The report's plots: the curves against the number of draws, and no matplotlib."""

from __future__ import annotations

import math
import re
import sys

import numpy as np
import pytest

import gradstat as gs
from gradstat.cli import main
from gradstat.report import (
    ReportConfig,
    default_estimators,
    format_report,
    format_table,
    run_report,
)
from gradstat.report.plots import (
    INSTALL_HINT,
    MARKERS,
    cosine_proxy_curve,
    draw_figures,
    relative_rmse_curve,
    variant_style,
    variant_styles,
)

PNGS = ("bias_variance.png", "metrics_vs_depth.png", "cosine_vs_samples.png", "rmse_vs_samples.png")


def test_plots_skipped_without_matplotlib(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    argv = ["report", "--sizes", "2,2,1", "--estimators", "st", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert INSTALL_HINT in capsys.readouterr().out
    report = (tmp_path / "report.md").read_text()
    assert "matplotlib is not installed" in report and INSTALL_HINT in report
    assert not list(tmp_path.glob("*.png"))


def test_curves_against_the_number_of_averaged_draws():
    net = gs.BinaryNetwork.random((3, 3, 2, 1), seed=2)
    r = gs.analyze(net, np.ones(3), np.zeros(1), "st")
    g_norm = np.linalg.norm(r.gradient)
    m = np.array([1.0, 10.0, 1e12])
    rmse = relative_rmse_curve(r.bias_norm, r.total_variance, g_norm, m)
    assert rmse[0] == pytest.approx(math.sqrt(r.mse) / g_norm, rel=1e-12)
    assert rmse[2] == pytest.approx(r.relative_bias, rel=1e-9)
    cos = cosine_proxy_curve(r.mean, r.gradient, r.var, m)
    assert cos[0] < cos[1] < cos[2] == pytest.approx(r.cosine, rel=1e-9)
    assert cos[0] == pytest.approx(
        r.mean @ r.gradient / (g_norm * math.sqrt(r.mean @ r.mean + r.total_variance)), rel=1e-12
    )


# ------------------------------------------------------------- styles, sizes, references


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """A report with a one-layer and a two-layer network and five estimators, among them
    the noisy rectifier (its own reference) and two Monte Carlo ones."""
    pytest.importorskip("matplotlib")
    config = ReportConfig.from_args(
        sizes=[(2, 2, 1), (2, 2, 2, 1)],
        estimators=["st", "sts", "reinforce_loo", "gumbel_st", "noisy_rectifier"],
        n_samples=400,
        plots=False,
    )
    return run_report(config, tmp_path_factory.mktemp("small"))


def _legend_styles(fig) -> dict[str, tuple[str, str]]:
    """Legend text -> (colour, marker) of its handle."""
    from matplotlib.colors import to_hex

    legend = fig.legends[0]
    styles = {}
    for text, handle in zip(legend.get_texts(), legend.legend_handles):
        if hasattr(handle, "get_marker"):
            colour, marker = to_hex(handle.get_color()), handle.get_marker()
        else:  # a scatter's handle
            colour = to_hex(handle.get_facecolor()[0])
            marker = next(k for k, v in MARKER_PATHS().items() if _same_path(v, handle))
        styles[text.get_text()] = (colour, marker)
    return styles


def MARKER_PATHS() -> dict[str, object]:
    from matplotlib.markers import MarkerStyle

    return {m: MarkerStyle(m).get_path().transformed(MarkerStyle(m).get_transform())
            for m in MARKERS}  # fmt: skip


def _same_path(path, handle) -> bool:
    (mine,) = handle.get_paths()
    return mine.vertices.shape == path.vertices.shape and np.allclose(mine.vertices, path.vertices)


def test_every_variant_keeps_its_own_style():
    defaults = [spec.label for spec in default_estimators()]
    labels = defaults + [f"reinforce baseline={k / 10}" for k in range(20)]
    styles = variant_styles(labels)
    pairs = [(s["color"], s["marker"]) for s in styles.values()]
    assert len(set(pairs)) == len(labels) >= 30  # colour and marker tell every one apart
    assert len({(s["color"], s["marker"], s["linestyle"]) for s in styles.values()}) == len(labels)
    # A table keyed by the label: the same style whatever else a report shows, in any order.
    assert variant_styles(["reinforce_loo", "st"]) == {
        "reinforce_loo": styles["reinforce_loo"],
        "st": styles["st"],
    }
    assert variant_styles(reversed(labels)) == styles
    assert styles["st"] != styles["reinforce_loo"]  # once both blue circles
    assert [variant_style(k) for k in range(3)] == [styles[label] for label in defaults[:3]]


def test_figures_share_one_style_per_variant_and_mark_the_rectifier(small_report):
    figures = draw_figures(small_report.records, small_report.config.metrics)
    assert set(figures) == set(PNGS)
    seen = [_legend_styles(fig) for fig in figures.values()]
    assert all(styles == seen[0] for styles in seen)  # the same legend, the same styles
    assert len(set(seen[0].values())) == len(seen[0]) == 5
    labels = list(seen[0])
    assert labels[:4] == ["st", "sts", "reinforce_loo", "gumbel_st"]
    assert re.fullmatch(r"noisy_rectifier † \(reference: (own-mean|rectifier-exact)(, \w+-\w+)?\)",
                        labels[4])  # fmt: skip


@pytest.mark.parametrize("n_networks", [1, 2])
def test_figures_are_sized_for_their_content(small_report, n_networks):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    cases = small_report.cases[:n_networks]
    records = [r for r in small_report.records if r.case in cases]
    for name, fig in draw_figures(records, small_report.config.metrics).items():
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        box = fig.bbox
        assert box.width >= 8 * fig.dpi  # was 3.4 inches for one network: title and legend cut
        legend = fig.legends[0].get_window_extent(renderer)
        assert box.x0 <= legend.x0 and legend.x1 <= box.x1 and box.y0 <= legend.y0, name
        texts = [t.get_text() for t in fig.legends[0].get_texts()]
        assert all("..." not in t for t in texts) and "st" in texts
        if fig._suptitle is not None:
            title = fig._suptitle.get_window_extent(renderer)
            assert box.x0 <= title.x0 and title.x1 <= box.x1 and title.y1 <= box.y1, name
        for ax in fig.axes:
            if ax.get_visible():  # the panels sit above the legend
                assert ax.get_tightbbox(renderer).y0 >= legend.y1 - 1, name


def test_tables_mark_results_with_another_reference(small_report):
    rows = [(r.estimator.label, r.result) for r in small_report.records]
    table = format_table(rows)
    lines = table.splitlines()
    assert sum("| noisy_rectifier † |" in line for line in lines) == 2
    assert lines[-1].startswith("† noisy_rectifier is compared not with the binary network's")
    assert lines[-1].endswith("leave it out of any ranking.")
    exact = [(label, r) for label, r in rows if r.reference == "exact"]
    assert "†" not in format_table(exact) and len(format_table(exact).splitlines()) == 2 + len(
        exact
    )
    report = format_report(small_report)
    assert "| noisy_rectifier † | 2 |" in report  # the overview
    assert report.count("† noisy_rectifier is compared") == 1 + 2 * 2  # overview, per network
    assert {
        r.result.reference for r in small_report.records if r.estimator.name != "noisy_rectifier"
    } == {"exact"}
