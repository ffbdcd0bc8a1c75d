"""The report's panels drawn into a caller's own matplotlib axes."""

from __future__ import annotations

import numpy as np
import pytest
from shared import exact_config

from gradstat.report import (
    ReportConfig,
    plot_bias_variance,
    plot_metric_vs_depth,
    plot_versus_samples,
    run_report,
)
from gradstat.report.plots import draw_figures

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    config = ReportConfig.from_mapping(
        exact_config(
            ["st", "reinforce:baseline=mean", "reinforce:baseline=optimal"],
            [{"sizes": [2, 2, 1], "seeds": [0]}, {"sizes": [2, 2, 2, 1], "seeds": [1]}],
        )
    )
    return run_report(config, tmp_path_factory.mktemp("axes")).records


def _lines(ax):
    return [(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ax.get_lines()]


def test_panels_draw_into_the_callers_axes_as_in_the_report(records):
    fig = Figure()
    left, middle, right = fig.subplots(1, 3)
    assert plot_bias_variance(records, "stochastic", ax=left) is left
    assert plot_metric_vs_depth(records, "cosine", ax=middle) is middle
    assert plot_versus_samples(records, "2-2-1_mse_seed0", "rmse", ax=right) is right
    labels = {"st", "reinforce baseline=mean", "reinforce baseline=optimal"}
    for ax in (left, middle, right):
        assert {t.get_text() for t in ax.get_legend().get_texts()} == labels
    # The same points as the report's own figures.
    figures = draw_figures(records, ["mse", "cosine"])
    report_bv = figures["bias_variance.png"].axes[1]
    ours = sorted(tuple(map(tuple, c.get_offsets())) for c in left.collections)
    theirs = sorted(tuple(map(tuple, c.get_offsets())) for c in report_bv.collections)
    assert ours == theirs and len(ours) == 3
    assert _lines(middle) == _lines(figures["metrics_vs_depth.png"].axes[1])
    assert _lines(right) == _lines(figures["rmse_vs_samples.png"].axes[0])
    assert right.get_title() == "2-2-1_mse_seed0"
    fig.savefig(__import__("io").BytesIO(), format="png")


def test_without_ax_a_new_figure(records):
    ax = plot_versus_samples(records, "2-2-2-1_mse_seed1", "cosine")
    assert isinstance(ax.figure, Figure) and len(ax.get_lines()) > 0
    assert np.all(np.isfinite(ax.get_lines()[0].get_ydata()))


def test_bad_arguments(records):
    with pytest.raises(ValueError, match="scope must be one of"):
        plot_bias_variance(records, "layer1")
    with pytest.raises(ValueError, match="metric must be one of"):
        plot_metric_vs_depth(records, "accuracy")
    with pytest.raises(ValueError, match="network must be one of"):
        plot_versus_samples(records, "nope")
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plot_bias_variance(records, ax="left")
