"""Tests of gradstat.comparison: compare_estimators on fake draws.

Real draws are compared in tests/test_testing.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradstat.comparison
from gradstat.comparison import compare_estimators
from gradstat.stats import ComparisonResult

# These tests replace the sample_gradients that gradstat.comparison imported from
# gradstat.sampling with a fake that draws Gaussian "batch estimates" whose mean depends
# on the estimator.


class _FakeNet:
    def __init__(self, means: dict[str, np.ndarray]):
        self.means = means


@pytest.fixture
def fake_sampling(monkeypatch):
    calls = []

    def sample_gradients(net, x, t, estimator, n_samples, *, seed, **options):
        calls.append({"estimator": estimator, "seed": seed, "options": options})
        rng = np.random.default_rng(seed)
        mean = net.means[estimator] + options.get("shift", 0.0)
        draws = mean + rng.normal(size=(n_samples, mean.size))
        draws[:, -1] = mean[-1]  # a deterministic coordinate, equal for both estimators
        return draws

    monkeypatch.setattr(gradstat.comparison, "sample_gradients", sample_gradients)
    return calls


def test_compare_estimators_with_fake_sample_gradients_equal_means(fake_sampling):
    net = _FakeNet({"a": np.array([0.0, 1.0, 2.0, 3.0]), "b": np.array([0.0, 1.0, 2.0, 3.0])})
    res = compare_estimators("a", "b", net, None, None, n_samples=100, seed=7)
    assert isinstance(res, ComparisonResult)
    assert res.method == "hotelling-t2" and res.df == (3.0, 97.0) and res.n_zero_variance == 1
    # Equal means: a false alarm has probability alpha = 0.01 over seeds; seed fixed.
    assert not res.rejected
    assert res.estimators == ("a", "b")
    np.testing.assert_array_equal(res.mean_difference, res.bias)
    child_a, child_b = np.random.SeedSequence(7).spawn(2)
    assert fake_sampling[0]["seed"] == int(child_a.generate_state(1, dtype=np.uint64)[0])
    assert fake_sampling[1]["seed"] == int(child_b.generate_state(1, dtype=np.uint64)[0])
    again = compare_estimators("a", "b", net, None, None, n_samples=100, seed=7)
    assert again.statistic == res.statistic


def test_compare_estimators_with_fake_sample_gradients_detects_shift(fake_sampling):
    net = _FakeNet({"a": np.zeros(4), "b": np.zeros(4)})
    res = compare_estimators(
        "a", "b", net, None, None, n_samples=100, seed=8, options_a={"shift": 0.8}
    )
    # A shift of 0.8 per coordinate against sd sqrt(2)/sqrt(100) per mean difference:
    # missed with probability < 1e-12 over seeds; seed fixed.
    assert res.rejected and res.pvalue < 1e-6
    assert fake_sampling[0]["options"] == {"shift": 0.8} and fake_sampling[1]["options"] == {}
    holm = compare_estimators("a", "b", net, None, None, n_samples=3, seed=8)
    assert holm.method == "holm-t"


def test_compare_estimators_with_fake_sample_gradients_bad_inputs(fake_sampling):
    net = _FakeNet({"a": np.zeros(2), "b": np.zeros(2)})
    with pytest.raises(ValueError, match="n_samples"):
        compare_estimators("a", "b", net, None, None, n_samples=1, seed=0)
    with pytest.raises(TypeError, match="options_a"):
        compare_estimators("a", "b", net, None, None, n_samples=5, seed=0, options_a=[1])
    with pytest.raises(ValueError, match="seed"):
        compare_estimators("a", "b", net, None, None, n_samples=5, seed=None)


def test_compare_estimators_importable_from_gradstat_stats():
    import gradstat.stats
    from gradstat.stats import compare_estimators as former

    assert former is compare_estimators is gradstat.stats.compare_estimators
    assert "compare_estimators" in gradstat.stats.__all__
