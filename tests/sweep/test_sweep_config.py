"""The grid's configuration (:mod:`gradstat.sweep.config`): defaults, TOML files, command
lines and their error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

import gradstat as gs
from gradstat.cli import main
from gradstat.report import EstimatorSpec, NetworkFile, RandomNetworks, ReportConfig


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
         "networks[0]: 'sizes' must be a list of integers, got str '4,3,1'"),
        ("[[networks]]\nsizes = [2, 2, 1]\nseeds = [0.5]", TypeError, "'seeds' must be an int"),
        ("[[networks]]\nsizes = [2, 2, 1]\nscale = 'big'", TypeError,
         "'scale' must be a finite number"),
        ("[[networks]]\nsizes = [2, 2, 1]\nloss = 'hinge'", ValueError, "'loss' must be one of"),
        ("[[networks]]\nsizes = [2, 0, 1]", ValueError, "stochastic layer of width 0"),
        ("[[networks]]\nloss = 'mse'", ValueError, "missing key 'sizes'"),
        ("networks = 3", TypeError, "'networks' must be an array of network tables"),
        ("n_samples = 'ten'", TypeError, "'n_samples' must be an int >= 2, got str 'ten'"),
        ("method = 'exact'\nn_samples = 10", ValueError, "'n_samples' is only used"),
        ("plots = 'yes'", TypeError, "'plots' must be true or false"),
        ("method = 'fast'", ValueError, "'method' must be one of ['auto', 'exact', 'mc']"),
        ("metrics = ['speed']", ValueError, "'metrics' must be one of"),
        ("mc_seed = -1", ValueError, "'mc_seed' must be an int >= 0"),
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
        (["--n-samples", "1"], "'n_samples' must be >= 2"),
    ],
)
def test_bad_command_lines_exit_with_a_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(["report", *argv, "--out", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_documented_config_example_is_valid(tmp_path):
    guide = Path(__file__).resolve().parents[2] / "docs" / "guides" / "reports.md"
    block = guide.read_text(encoding="utf-8").split("```toml\n", 1)[1].split("```", 1)[0]
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
