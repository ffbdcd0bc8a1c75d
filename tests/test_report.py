"""``gradstat report``: configs, the output folder, network files, plots and Ctrl-C."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import gradstat as gs
import gradstat.report
from gradstat.__main__ import main
from gradstat.plots import INSTALL_HINT, cosine_proxy_curve, relative_rmse_curve
from gradstat.report import (
    CSV_COLUMNS,
    EstimatorSpec,
    NetworkFile,
    RandomNetworks,
    ReportConfig,
    ReportInterrupted,
    default_target,
    run_report,
)
from gradstat.sweep import task_seed

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
PNGS = ("bias_variance.png", "metrics_vs_depth.png", "cosine_vs_samples.png", "rmse_vs_samples.png")

TINY_TOML = """
method = "auto"
metrics = ["bias_norm", "relative_bias", "cosine", "median_snr"]
estimators = [
    "st",
    "reinforce:baseline=mean",
    {name = "reinforce", options = {baseline = "optimal"}},
]

[[networks]]
sizes = [2, 2, 1]
seeds = [0, 1]

[[networks]]
sizes = [2, 2, 2, 3]
loss = "xent"
scale = 1.5
seeds = [4]
label = "deep"
"""


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        return list(reader)


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_cli_end_to_end_on_a_tiny_config(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    out = tmp_path / "out"
    assert main(["report", "--config", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "9 analyses (3 networks x 3 estimators, method exact)" in printed

    rows = read_csv(out / "results.csv")
    # 2 networks with scopes all/stochastic/layer1/output, 1 with two layers: 4+4+5 scopes.
    assert len(rows) == 3 * 4 * (4 + 4 + 5)
    assert {r["network"] for r in rows} == {"2-2-1_mse_seed0", "2-2-1_mse_seed1", "deep_seed4"}
    nets = {
        "2-2-1_mse_seed0": gs.BinaryNetwork.random((2, 2, 1), seed=0),
        "2-2-1_mse_seed1": gs.BinaryNetwork.random((2, 2, 1), seed=1),
        "deep_seed4": gs.BinaryNetwork.random((2, 2, 2, 3), loss="xent", scale=1.5, seed=4),
    }
    for row in rows:
        net = nets[row["network"]]
        options = json.loads(row["options"])
        r = gs.analyze(net, np.ones(2), default_target(net), row["estimator"], **options)
        expected = getattr(r.scopes()[row["scope"]], row["metric"])
        assert same(float(row["value"]), expected), row
        assert row["method"] == "exact" and row["standard_error"] == row["n_samples"] == ""
    assert {r["options"] for r in rows} == {"{}", '{"baseline": "mean"}', '{"baseline": "optimal"}'}

    data = json.loads((out / "results.json").read_text())
    assert data["complete"] and data["analyses_done"] == data["analyses_planned"] == 9
    assert len(data["rows"]) == len(rows)
    expected = ReportConfig.from_args(base=ReportConfig.from_toml(config), out=str(out))
    assert ReportConfig.from_mapping(data["config"]) == expected
    report = (out / "report.md").read_text()
    assert "## Networks" in report and "### deep_seed4" in report and "| layer2 |" in report
    for name in ("2-2-1_mse_seed0", "2-2-1_mse_seed1", "deep_seed4"):
        saved = gs.BinaryNetwork.load(out / "networks" / f"{name}.npz")
        assert saved.params.tobytes() == nets[name].params.tobytes()
    if HAS_MATPLOTLIB:
        assert all((out / png).stat().st_size > 10_000 for png in PNGS)
        assert "cos_M" in report and "not** `E[cos(g_M, g)]`" in report
    else:
        assert INSTALL_HINT in report


def test_rerun_on_saved_network_gives_the_same_numbers(tmp_path, capsys):
    net = gs.BinaryNetwork.random((3, 2, 2), loss="bce", seed=9)
    net.save(tmp_path / "mine.npz")
    out = tmp_path / "out"
    argv = ["report", "--network", str(tmp_path / "mine.npz"), "--estimators", "sts",
            "--metrics", "mse", "--no-plots", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = read_csv(out / "results.csv")
    assert {r["network"] for r in rows} == {"mine"} and rows[0]["seed"] == ""
    r = gs.analyze(net, np.ones(3), np.full(2, 0.5), "sts")
    assert float(rows[0]["value"]) == r.mse
    assert "plots are switched off" in (out / "report.md").read_text()


def test_monte_carlo_rows_carry_standard_errors(tmp_path):
    config = ReportConfig.from_args(
        sizes=[(2, 2, 1)], estimators=["st_sigmoid"], method="mc", n_samples=200, plots=False
    )
    result = run_report(config, tmp_path)
    rows = read_csv(tmp_path / "results.csv")
    assert rows and all(r["method"] == "mc" and r["n_samples"] == "200" for r in rows)
    assert all(r["standard_error"] != "" for r in rows)
    net = gs.BinaryNetwork.random((2, 2, 1), seed=0)
    row = next(x for x in rows if x["scope"] == "all" and x["metric"] == "total_variance")
    seed = task_seed(0, row["task"])
    r = gs.analyze(net, np.ones(2), np.zeros(1), "st_sigmoid", method="mc", n_samples=200,
                   seed=seed)  # fmt: skip
    assert float(row["value"]) == r.total_variance
    assert float(row["standard_error"]) == r.standard_errors["all"].total_variance > 0
    assert "±" in (tmp_path / "report.md").read_text()
    assert result.records[0].result.method == "mc"


def test_keyboard_interrupt_leaves_rows_on_disk(tmp_path, monkeypatch, capsys):
    calls = []
    real = gradstat.report.analyze

    def interrupted_analyze(*args, **kwargs):
        calls.append(args[3])
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gradstat.report, "analyze", interrupted_analyze)
    out = tmp_path / "out"
    argv = ["report", "--sizes", "2,2,1", "--seeds", "0", "1", "--estimators", "st", "sts",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 130
    assert "interrupted after 2 of 4 analyses" in capsys.readouterr().err
    rows = read_csv(out / "results.csv")
    assert {(r["network"], r["estimator"]) for r in rows} == {
        ("2-2-1_mse_seed0", "st"),
        ("2-2-1_mse_seed0", "sts"),
    }
    data = json.loads((out / "results.json").read_text())
    assert not data["complete"] and len(data["rows"]) == len(rows)
    assert "**Interrupted** after 2 of 4" in (out / "report.md").read_text()
    with pytest.raises(ReportInterrupted) as stop:
        run_report(ReportConfig.from_args(sizes=[(2, 2, 1)], plots=False), tmp_path / "again")
    assert stop.value.result.interrupted and len(stop.value.result.records) == 0


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


def test_default_config_is_the_built_in_suite_with_every_estimator():
    config = ReportConfig()
    labels = [spec.label for spec in config.estimators]
    for name in gs.available_estimators():
        assert any(label.split()[0] == name for label in labels)
    assert {"reinforce baseline=none", "reinforce baseline=mean",
            "reinforce baseline=optimal"} <= set(labels)  # fmt: skip
    depths = {len(spec.sizes) - 2 for spec in config.networks}
    losses = {spec.loss for spec in config.networks}
    assert depths == {1, 2, 3} and losses == {"mse", "bce", "xent", "linear"}
    assert ReportConfig.from_mapping(config.to_dict()) == config


def test_command_line_options_replace_those_of_the_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("n_samples = 50\n[[networks]]\nsizes = [2, 2, 1]\nseeds = [0, 1]\n")
    base = ReportConfig.from_toml(path)
    config = ReportConfig.from_args(
        base=base, seeds=[7], estimators=["reinforce:baseline=0.5"], method="exact"
    )
    assert config.networks == (RandomNetworks((2, 2, 1), seeds=(7,)),)
    assert config.estimators == (EstimatorSpec("reinforce", {"baseline": 0.5}),)
    assert config.method == "exact" and config.n_samples is None
    assert base.out == "gradstat-report"  # not given: the working directory's
    path.write_text('out = "rep"\n')
    assert Path(ReportConfig.from_toml(path).out) == tmp_path / "rep"  # given: the file's


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("colour = 1", ValueError, "unknown key(s) ['colour'] in the config's top level; "
         "allowed keys: estimators, mc_seed, method, metrics, n_samples, networks, out, plots"),
        ("[[networks]]\nsizes = [2, 2, 1]\nwidth = 3", ValueError,
         "networks[0]: unknown key(s) ['width']"),
        ("[[networks]]\nfile = 'a.npz'\nseeds = [1]", ValueError,
         "allowed keys: file, label"),
        ("estimators = [{name = 'st', option = {}}]", ValueError,
         "estimators[0]: unknown key(s) ['option']"),
        ("[[networks]]\nsizes = '4,3,1'", TypeError,
         "networks[0]: 'sizes' must be a list of integers, got '4,3,1' (str)"),
        ("[[networks]]\nsizes = [2, 2, 1]\nseeds = [0.5]", TypeError, "'seeds' must be an integer"),
        ("[[networks]]\nsizes = [2, 2, 1]\nscale = 'big'", TypeError, "'scale' must be a number"),
        ("[[networks]]\nsizes = [2, 2, 1]\nloss = 'hinge'", ValueError, "'loss' must be one of"),
        ("[[networks]]\nsizes = [2, 0, 1]", ValueError, "stochastic layer of width 0"),
        ("[[networks]]\nloss = 'mse'", ValueError, "missing key 'sizes'"),
        ("networks = 3", TypeError, "'networks' must be an array of network tables"),
        ("n_samples = 'ten'", TypeError, "'n_samples' must be an integer >= 2, got 'ten' (str)"),
        ("method = 'exact'\nn_samples = 10", ValueError, "'n_samples' is only used"),
        ("plots = 'yes'", TypeError, "'plots' must be true or false"),
        ("method = 'fast'", ValueError, "'method' must be one of ['auto', 'exact', 'mc']"),
        ("metrics = ['speed']", ValueError, "'metrics' must be one of"),
        ("mc_seed = -1", ValueError, "'mc_seed' must be an integer >= 0"),
        ("estimators = ['nope']", ValueError, "unknown estimator 'nope'"),
        ("estimators = [{name = 'reinforce', options = {baseline = true}}]", TypeError,
         "baseline must be one of"),
        ("estimators = [{name = 'st', options = {tau = 1}}]", TypeError,
         "estimator 'st' got unknown option(s) ['tau']"),
        ("estimators = ['st', 'st']", ValueError, "the same estimator twice"),
        ("method = ", ValueError, "is not valid TOML"),
    ],
)  # fmt: skip
def test_bad_config_files_get_clear_errors(tmp_path, capsys, text, error, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(error) as exc:
        ReportConfig.from_toml(path)
    assert message in str(exc.value) and str(path) in str(exc.value)
    with pytest.raises(SystemExit) as stop:
        main(["report", "--config", str(path), "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--estimators", "reinforce:baseline"], "must be key=value"),
        (["--sizes", "2,2,1", "--loss", "xent"], "needs n_out >= 2"),
        (["--config", "missing.toml"], "missing.toml"),
        (["--network", "missing.npz"], "does not exist"),
        (["--n-samples", "1"], "'n_samples' must be an integer >= 2"),
    ],
)
def test_bad_command_lines_exit_with_a_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(["report", *argv, "--out", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_duplicate_network_labels_are_refused(tmp_path):
    config = ReportConfig(
        networks=(RandomNetworks((2, 2, 1), label="a"), RandomNetworks((2, 3, 1), label="a")),
        plots=False,
    )
    with pytest.raises(ValueError, match=r"label\(s\) \['a_seed0'\] occur more than once"):
        run_report(config, tmp_path)


def test_save_load_round_trip_is_bit_identical(tmp_path):
    net = gs.BinaryNetwork.random((3, 4, 2, 2), loss="xent", scale=2.5, seed=11)
    path = gs.save_network(net, tmp_path / "net.bin")  # used as given: no suffix appended
    assert path == tmp_path / "net.bin" and path.exists()
    back = gs.load_network(path)
    assert back.sizes == net.sizes and back.loss == net.loss
    assert back.params.tobytes() == net.params.tobytes()
    net.save(tmp_path / "again.npz")
    assert gs.BinaryNetwork.load(tmp_path / "again.npz").params.tobytes() == net.params.tobytes()
    assert NetworkFile(tmp_path / "again.npz").cases()[0].label == "again"


def _arrays(**changes):
    arrays = {
        "format": np.array("gradstat.network"),
        "version": np.array(1),
        "sizes": np.array([2, 2, 1]),
        "loss": np.array("mse"),
        "params": np.zeros(9),
    }
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


@pytest.mark.parametrize(
    ("arrays", "error", "message"),
    [
        (_arrays(params=None), ValueError, "missing key(s) ['params']"),
        (_arrays(extra=np.zeros(1)), ValueError, "unknown key(s) ['extra']"),
        (_arrays(params=np.zeros(8)), ValueError, "is inconsistent: params must have shape (9,)"),
        (_arrays(params=np.zeros((3, 3))), ValueError, "params must have shape (9,)"),
        (_arrays(sizes=np.array([2, 0, 1]), params=np.zeros(3)), ValueError,
         "stochastic layer of width 0"),
        (_arrays(sizes=np.array([2.0, 2.0, 1.0])), TypeError, "'sizes' must hold integers"),
        (_arrays(sizes=np.array([[2, 2, 1]])), ValueError, "'sizes' must be 1-d"),
        (_arrays(params=np.zeros(9, dtype=np.float32)), TypeError, "'params' must be float64"),
        (_arrays(params=np.full(9, np.nan)), ValueError, "NaN or infinite"),
        (_arrays(loss=np.array("hinge")), ValueError, "loss must be one of"),
        (_arrays(loss=np.array(3)), TypeError, "'loss' must be a string"),
        (_arrays(format=np.array("other")), ValueError, "'format' is 'other'"),
        (_arrays(version=np.array(2)), ValueError, "layout version 2 is not supported"),
        (_arrays(params=np.array([object()] * 9, dtype=object)), ValueError,
         "'params' is a pickled object array"),
    ],
)  # fmt: skip
def test_malformed_network_files_are_refused(tmp_path, arrays, error, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(error) as exc:
        gs.load_network(path)
    assert message in str(exc.value) and str(path) in str(exc.value)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    good = gs.BinaryNetwork.random((2, 2, 1), seed=0).save(tmp_path / "good.npz").read_bytes()
    path = tmp_path / "bad.npz"
    for n_bytes in (0, 10, len(good) // 2, len(good) - 1):
        path.write_bytes(good[:n_bytes])
        with pytest.raises(ValueError, match="truncated or not an .npz archive"):
            gs.load_network(path)
    np.save(tmp_path / "single.npy", np.zeros(9))
    with pytest.raises(ValueError, match="single .npy array"):
        gs.load_network(tmp_path / "single.npy")
    path.write_bytes(b"\x80\x04K\x01.")  # a pickle: never loaded
    with pytest.raises(ValueError, match="truncated or not an .npz archive"):
        gs.load_network(path)


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


def test_readme_config_example_is_valid(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "suite.toml"
    path.write_text(block)
    config = ReportConfig.from_toml(path)
    assert config.n_samples == 4000 and config.out == str(tmp_path / "rep")
    assert config.networks[1] == NetworkFile(str(tmp_path / "rep/networks/4-3-1_mse_seed0.npz"))
    assert [c.label for c in config.networks[0].cases()] == [
        "deep_seed0",
        "deep_seed1",
        "deep_seed2",
    ]
    assert config.estimators[-1] == EstimatorSpec("reinforce", {"baseline": 0.5})
