"""The report's plots: the curves against the number of draws, and no matplotlib."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import gradstat as gs
from gradstat.cli import main
from gradstat.report.plots import INSTALL_HINT, cosine_proxy_curve, relative_rmse_curve


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
