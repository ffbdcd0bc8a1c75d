"""Results as pandas DataFrames: ``load_results`` and ``to_frame`` (skipped without pandas)."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
from shared import exact_config

import gradstat as gs
from gradstat.sweep import (
    CSV_COLUMNS,
    FRAME_DTYPES,
    PANDAS_HINT,
    PER_PARAMETER_COLUMNS,
    load_results,
    parameter_names,
)

pd = pytest.importorskip("pandas")

GRID = exact_config(
    # The same estimator twice, with different options: the pivot must still work.
    ["reinforce:baseline=mean", "reinforce:baseline=optimal", "st"],
    [
        {"sizes": [2, 2, 1], "seeds": [0]},
        {"sizes": [1, 2, 2, 2], "loss": "xent", "seeds": [3], "label": "deep"},
        # Too wide to enumerate the exact reference gradient: every analysis fails.
        {"sizes": [2, 25, 1], "seeds": [0], "label": "huge"},
    ],
)


def test_load_results_pivots_on_network_and_estimator_label(swept):
    out, result = swept
    frame = load_results(out)
    assert tuple(frame.columns) == CSV_COLUMNS
    assert {c: str(frame[c].dtype) for c in frame.columns} == {
        c: ("string" if d == "string" else d) for c, d in FRAME_DTYPES.items()
    }
    ok = frame[frame["status"] == "ok"]
    table = ok.pivot(
        index=["network", "estimator_label"], columns=["scope", "metric"], values="value"
    )
    labels = {"reinforce baseline=mean", "reinforce baseline=optimal", "st"}
    assert set(table.index.get_level_values("estimator_label")) == labels
    assert table.shape[0] == 6  # 2 networks that can be enumerated x 3 estimators
    # Each number is the analysis's own, bit for bit.
    for (network, label), values in table.iterrows():
        analysis = result.results[f"{network}/{label}"]
        for (scope, metric), value in values.items():
            if not pd.isna(value):
                assert value == getattr(analysis.scopes()[scope], metric)
    # Exact results have no standard error and no draw count: NA, not a float NaN.
    assert ok["standard_error"].isna().all() and ok["n_samples"].isna().all()
    assert ok["error"].isna().all()
    failed = frame[frame["status"] == "error"]
    assert len(failed) == 3 and set(failed["network"]) == {"huge_seed0"}
    assert failed["error"].str.len().min() > 0
    assert set(failed["estimator_label"]) == labels
    # options: a stable string, the resolved options as JSON with sorted keys.
    for text in frame["options"]:
        assert text == json.dumps(json.loads(text), sort_keys=True)


def test_to_frame_equals_the_folder(swept):
    out, result = swept
    keys = ["task", "scope", "metric"]
    in_memory = result.to_frame().sort_values(keys, na_position="first", ignore_index=True)
    on_disk = load_results(out).sort_values(keys, na_position="first", ignore_index=True)
    pd.testing.assert_frame_equal(in_memory, on_disk)


def test_monte_carlo_counts_load_as_integers(tmp_path):
    grid = {**GRID, "method": "mc", "n_samples": 64, "networks": GRID["networks"][:1]}
    frame = load_results(gs.sweep(grid, executor="serial", out=tmp_path).out_dir)
    assert str(frame["n_samples"].dtype) == "Int64" and set(frame["n_samples"]) == {64}
    assert str(frame["seed"].dtype) == "Int64"
    assert frame["standard_error"].notna().any()


def test_per_parameter_arrays_are_the_analyses_arrays(swept):
    out, result = swept
    long = load_results(out, per_parameter=True)
    assert tuple(long.columns) == PER_PARAMETER_COLUMNS
    assert set(long["task"]) == set(result.results)
    assert not long.duplicated(["task", "parameter"]).any()
    for task, part in long.groupby("task"):
        analysis = result.results[task]
        for column in ("gradient", "mean", "var", "bias", "sign_probability"):
            np.testing.assert_array_equal(part[column].to_numpy(), getattr(analysis, column))
        assert part["parameter"].tolist() == list(range(analysis.gradient.size))
    deep = long[long["network"] == "deep_seed3"].drop_duplicates("parameter")
    sizes = (1, 2, 2, 2)
    assert list(zip(deep["name"], deep["group"], strict=True)) == parameter_names(sizes)


def test_parameter_names_follow_the_flat_layout():
    net = gs.BinaryNetwork.random((2, 3, 2), seed=1)
    names = parameter_names(net.sizes)
    assert len(names) == net.n_params
    (w1, b1), (wo, bo) = net.layers()
    flat = dict(zip((n for n, _ in names), net.params, strict=True))
    assert flat["W1[2,1]"] == w1[2, 1] and flat["b1[0]"] == b1[0]
    assert flat["Wo[1,2]"] == wo[1, 2] and flat["bo[1]"] == bo[1]
    groups = net.parameter_groups()
    for k, (_name, group) in enumerate(names):
        assert groups[group].start <= k < groups[group].stop


def test_a_table_without_estimator_label_gets_it_from_task(swept, tmp_path):
    out, _ = swept
    with (out / "results.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with (tmp_path / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS[:-1], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    old = load_results(tmp_path)
    assert old["estimator_label"].tolist() == [r["estimator_label"] for r in rows]


def test_bad_input_and_missing_pandas(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="holds no results.csv"):
        load_results(tmp_path)
    with pytest.raises(TypeError, match="folder must be a path"):
        load_results(3)
    (tmp_path / "results.csv").write_text(",".join(CSV_COLUMNS) + "\n")
    with pytest.raises(TypeError, match="per_parameter must be True or False"):
        load_results(tmp_path, per_parameter="yes")
    assert len(load_results(tmp_path)) == 0
    assert len(load_results(tmp_path, per_parameter=True)) == 0
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install \"gradstat\[pandas\]\"") as info:
        load_results(tmp_path)
    assert str(info.value) == PANDAS_HINT
