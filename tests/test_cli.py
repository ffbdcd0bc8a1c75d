"""The command line: ``gradstat`` / ``python -m gradstat``."""

from __future__ import annotations

import numpy as np
import pytest

import gradstat as gs
from gradstat.cli import main


def test_default_summary_prints_every_estimator(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "(4, 3, 3, 2)" in out and "method exact" in out
    for name in gs.available_estimators():
        assert f"| {name}" in out
    # The numbers are analyze's, to the printed precision.
    net = gs.BinaryNetwork.random((4, 3, 3, 2), loss="mse", seed=0)
    r = gs.analyze(net, np.ones(4), np.zeros(2), "st_sigmoid")
    assert f"| st_sigmoid | {r.bias_norm:.4g} | {r.relative_bias:.4g} |" in out


def test_summary_options_and_monte_carlo(capsys):
    argv = ["summary", "--sizes", "2,3,3", "--loss", "xent", "--estimators", "st", "sts",
            "--method", "mc", "--n-samples", "200"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "±" in out and "| sts |" in out and "| reinforce" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "--sizes", "4,x,2"], "comma-separated integers"),
        (["summary", "--sizes", "4,0,2"], "stochastic layer of width 0"),
        (["summary", "--estimators", "nope"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
