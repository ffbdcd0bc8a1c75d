"""The documentation's worked example (docs/guides/own-estimators.md): a REINFORCE variant
with a leave-one-out baseline.

The code below is the guide's, verbatim (checked below), plus an ``@example`` for each case
Hypothesis found outside CI (random seeds); these tests run it through the harness.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings

import gradstat as gs
from gradstat.strategies import problems
from gradstat.testing import assert_unbiased, check_estimator_contract


def reinforce_loo(net, x, t, rng, k=4):
    """k draws, each with the mean loss of the other k - 1 as its baseline."""
    us = rng.random((k, net.n_stochastic))
    losses = np.array([gs.forward_pass(net, x, t, u).loss for u in us])
    estimate = np.zeros(net.n_params)
    for i, u in enumerate(us):
        baseline = (losses.sum() - losses[i]) / (k - 1)
        estimate += gs.estimate_from_noise(net, x, t, "reinforce", u, baseline=baseline)
    return estimate / k


def test_contract():
    check_estimator_contract(reinforce_loo, unbiased=True, n_samples=50)


TINY_OUTPUT_WEIGHT = (
    gs.BinaryNetwork((0, 1, 1, 1, 1), params=np.eye(7)[5] * 1.91417429e-11, loss="mse"),
    np.zeros((1, 0)),
    np.array([[1.0]]),
)


@settings(max_examples=5)
@given(problems(max_stochastic=4, max_batch=1))
# Found by Hypothesis: a target of 4.6e-186 and zero parameters, so draws and bias of
# about 1e-187 (the test must judge them at their own scale, not as zero variance).
@example((gs.BinaryNetwork((0, 1, 1), loss="mse"), np.zeros((1, 0)), np.array([[4.6e-186]])))
# Found by Hypothesis: an output weight of 1.9e-11, so that the output bias's estimate is
# a function of the weight's up to terms of 1e-11 (rounding of the target must not count).
@example(TINY_OUTPUT_WEIGHT)
def test_unbiased(problem):
    # Monte Carlo (a Python estimator): false-alarm rate 1e-4 per example, seeded.
    assert_unbiased(reinforce_loo, problem, n_samples=600)


def test_forward_pass_matches_expected_loss():
    net = gs.BinaryNetwork.random((2, 2, 1), seed=3)
    x, t = np.array([0.3, -0.2]), np.array([0.5])
    total = 0.0
    for bits in range(4):
        u = np.array([0.0 if bits & 1 else 1.0, 0.0 if bits & 2 else 1.0])
        fp = gs.forward_pass(net, x, t, u)
        assert np.array_equal(fp.h, [bits & 1, (bits >> 1) & 1])
        total += np.exp(fp.log_prob) * fp.loss
    assert abs(total - gs.expected_loss(net, x, t)) < 1e-14


def test_leave_one_out_reduces_variance():
    """Seeded Monte Carlo comparison of total variances on one network (each estimate
    from 3000 draws has a relative standard error of a few percent)."""
    net = gs.BinaryNetwork.random((2, 3, 1), loss="mse", seed=2)
    x, t = np.array([1.0, -0.5]), np.array([2.0])
    loo = gs.analyze(net, x, t, reinforce_loo, n_samples=3000, seed=1)
    plain = gs.analyze(net, x, t, "reinforce")
    assert loo.total_variance < plain.total_variance / 4


def test_the_guide_shows_this_code_verbatim():
    guide = Path(__file__).resolve().parent.parent / "docs" / "guides" / "own-estimators.md"
    text = guide.read_text(encoding="utf-8")
    assert inspect.getsource(reinforce_loo) in text
    for test in (test_contract, test_unbiased):
        lines = inspect.getsource(test).splitlines()
        # The guide leaves out the comments and the kept @example of Hypothesis.
        shown = [line for line in lines if not line.lstrip().startswith(("#", "@example"))]
        assert "\n".join(shown) in text, test.__name__


def test_the_readme_tour_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    tour = readme.split("## A short tour", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)  # the tour writes its report to ./rep
    namespace: dict = {}
    exec(compile(tour, "README.md", "exec"), namespace)
    assert "relative_bias" in capsys.readouterr().out  # print(r): the result's table
    frame, report = namespace["frame"], namespace["report"]
    assert len(frame) == len(report.rows) and (frame["status"] == "ok").all()
    assert namespace["draws"].shape == (10_000, namespace["net"].n_params)
