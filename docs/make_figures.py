"""Draw the figures the documentation shows: ``python docs/make_figures.py``.

``_static/composed.png``: two panels of a report drawn into one matplotlib figure of
the caller's (the reports guide's example), on a small exact grid.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from matplotlib.figure import Figure

import gradstat as gs
from gradstat.report import plot_bias_variance, plot_versus_samples

GRID = {
    "method": "exact",
    "plots": False,
    "estimators": [
        "st",
        "st_sigmoid",
        "sts",
        "reinforce:baseline=mean",
        "reinforce:baseline=optimal",
    ],
    "networks": [{"sizes": [4, 3, 1], "seeds": [0, 1]}, {"sizes": [4, 3, 3, 2], "seeds": [0, 1]}],
}


def main() -> Path:
    with tempfile.TemporaryDirectory() as out:
        report = gs.run_report(gs.ReportConfig.from_mapping(GRID), out)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot_bias_variance(report.records, "stochastic", ax=left)
    plot_versus_samples(report.records, "4-3-3-2_mse_seed0", "rmse", ax=right)
    path = Path(__file__).resolve().parent / "_static" / "composed.png"
    fig.savefig(path, dpi=90)
    return path


if __name__ == "__main__":
    print(main())
