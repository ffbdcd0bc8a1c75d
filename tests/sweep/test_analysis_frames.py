"""One analysis, a sweep and a report as DataFrames; ``gs.read_results`` (skipped without
pandas)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import gradstat as gs
from gradstat.analysis_result import ROW_COLUMNS
from gradstat.metrics import METRICS
from gradstat.sweep import FRAME_DTYPES, PANDAS_HINT, load_results

pd = pytest.importorskip("pandas")

GRID = {
    "plots": False,
    "n_samples": 400,  # concrete's noise is continuous: Monte Carlo, with standard errors
    "estimators": ["st", "reinforce:baseline=optimal", "concrete"],
    "networks": [{"sizes": [2, 2, 2, 1], "loss": "bce", "seeds": [1]}],
}


def test_an_analysis_frame_is_its_rows_of_the_results_folder(swept):
    out, result = swept
    folder = load_results(out)
    methods = set()
    for task, analysis in result.results.items():
        frame = analysis.to_frame()
        assert tuple(frame.columns) == ROW_COLUMNS
        assert {c: str(frame[c].dtype) for c in ROW_COLUMNS} == {
            c: FRAME_DTYPES[c] for c in ROW_COLUMNS
        }
        # One row per scope and metric, each the result's own number, bit for bit.
        scopes = analysis.scopes()
        assert len(frame) == len(scopes) * len(METRICS)
        assert not frame.duplicated(["scope", "metric"]).any()
        for row in frame.itertuples():
            expected = getattr(scopes[row.scope], row.metric)
            assert row.value == expected or (np.isnan(row.value) and np.isnan(expected))
        # The same table as the sweep's folder gives for this task, dtypes included.
        on_disk = folder[folder["task"] == task][list(ROW_COLUMNS)].reset_index(drop=True)
        pd.testing.assert_frame_equal(frame, on_disk)
        methods.add(analysis.method)
    assert methods == {"exact", "mc"}


def test_missing_values_are_na_and_counts_integers():
    net = gs.BinaryNetwork.random((2, 3, 1), seed=0)
    x, t = np.ones(2), np.zeros(1)
    exact = gs.analyze(net, x, t, "st").to_frame()
    assert exact["standard_error"].isna().all() and exact["n_samples"].isna().all()
    mc = gs.analyze(net, x, t, "st", method="mc", n_samples=500, seed=3)
    frame = mc.to_frame(metrics=("mse", "bias_norm"))
    assert set(frame["metric"]) == {"mse", "bias_norm"} and set(frame["n_samples"]) == {500}
    mse = frame[(frame["scope"] == "all") & (frame["metric"] == "mse")]
    assert mse["standard_error"].iloc[0] == mc.standard_errors["all"].mse
    # A standard error that would not cover is NaN on the result and NA in the frame.
    for scope, names in mc.uncalibrated.items():
        for name in set(names) & {"mse", "bias_norm"}:
            cell = frame[(frame["scope"] == scope) & (frame["metric"] == name)]
            assert cell["standard_error"].isna().all()


def test_report_frame_equals_its_folder(tmp_path):
    report = gs.run_report(gs.ReportConfig.from_mapping({**GRID, "estimators": ["st"]}), tmp_path)
    keys = ["task", "scope", "metric"]
    in_memory = report.to_frame().sort_values(keys, ignore_index=True)
    on_disk = gs.read_results(tmp_path).sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(in_memory, on_disk)


def test_read_results_is_load_results():
    assert gs.read_results is load_results
    assert "read_results" in gs.__all__ and "read_results" in dir(gs)


def test_without_pandas_the_error_names_the_extra(monkeypatch):
    result = gs.analyze(gs.BinaryNetwork.random((1, 1, 1), seed=0), [1.0], [0.0], "st")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError) as info:
        result.to_frame()
    assert str(info.value) == PANDAS_HINT and 'pip install "gradstat[pandas]"' in PANDAS_HINT
