"""``analyze``: exact metrics against the naive enumerator, Monte Carlo against exact."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import example, given
from reference import naive_enumerator as ne

import gradstat as gs
from gradstat.strategies import problems


def _naive_scope(net, X, T, name, baseline, idx, tol=1e-12):
    """SPEC section 3 metrics written out directly from the naive enumerator."""
    batch = ne.batch_moments(net.sizes, net.params, net.loss, X, list(T), name, baseline)
    g, mean, var = batch["gradient"][idx], batch["mean"][idx], batch["var"][idx]
    bias = mean - g
    per_example_sign = []
    for ex in batch["examples"]:
        keep = np.abs(ex["gradient"][idx]) > tol
        if keep.any():
            per_example_sign.append(ex["sign_probability"][idx][keep].mean())
    descent = []
    for ex in batch["examples"]:
        gx = ex["gradient"][idx]
        descent.append(np.sum(ex["probs"] * (ex["estimates"][:, idx] @ gx > 0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = mean @ g / (np.linalg.norm(mean) * np.linalg.norm(g))
    return {
        "bias_norm": np.linalg.norm(bias),
        "total_variance": var.sum(),
        "mse": bias @ bias + var.sum(),
        "cosine": cosine,
        "sign_agreement": np.mean(per_example_sign) if per_example_sign else np.nan,
        "descent_probability": np.mean(descent),
    }


@pytest.mark.parametrize(
    ("name", "baseline"), [("st", "none"), ("st_sigmoid", "none"), ("sts", "none"),
                           ("reinforce", "optimal")]
)  # fmt: skip
@given(problem=problems(max_stochastic=6, max_batch=2, min_width=1, max_width=3))
# Found by Hypothesis: a gradient below the loss's rounding (W_o = 1.3e-106) is 0 in one
# computation and 1e-17 in another, so its sign, and sign-based metrics, are rounding.
@example(
    problem=(
        gs.BinaryNetwork((0, 1, 1), [1.0, 1.30307556e-106, 0.0]),
        np.zeros((1, 0)),
        np.array([[1.0]]),
    )
)
# Found by Hypothesis: the same with the roles swapped (g_j is exactly 0 in the naive
# computation, 7e-18 in the library's), against an estimate of 2e-91 (W_o = 1.4e-45).
@example(
    problem=(
        gs.BinaryNetwork(
            (0, 1, 3, 1), [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -2.0, -1.0, 1.40129846e-45, 0.0]
        ),
        np.zeros((1, 0)),
        np.array([[0.0]]),
    )
)
def test_exact_metrics_match_naive(name, baseline, problem):
    net, X, T = problem
    options = {"baseline": baseline} if name == "reinforce" else {}
    r = gs.analyze(net, X, T, name, **options)
    assert r.method == "exact" and r.engine == "joint"
    groups = net.parameter_groups()
    for scope, idx in (("all", slice(None)), ("stochastic", groups["stochastic"])):
        want = _naive_scope(net, X, T, name, baseline, idx)
        got = r.scopes()[scope]
        # Sign-based metrics and ratios are discontinuous at g_j = 0: where some g_j is 0
        # only up to rounding, its sign (and so the metric) is itself a rounding artefact.
        gx = np.array([ne.example_gradient(net.sizes, net.params, net.loss, x, t)
                       for x, t in zip(X, T)])[:, idx]  # fmt: skip
        gl = np.array([gs.exact_gradient(net, x, t) for x, t in zip(X, T)])[:, idx]
        fragile = any(np.any((np.abs(g) > 0) & (np.abs(g) < 1e-9)) for g in (gx, gl))
        for metric, value in want.items():
            if fragile and metric in ("sign_agreement", "descent_probability", "cosine"):
                continue
            assert getattr(got, metric) == pytest.approx(value, rel=1e-9, abs=1e-10, nan_ok=True)


@given(problems(max_stochastic=6))
def test_mse_is_bias_squared_plus_variance(problem):
    net, X, T = problem
    for name in gs.available_estimators():
        if gs.get_estimator(name).exact_engine(net.n_layers) is None:
            continue
        r = gs.analyze(net, X, T, name)
        for m in r.scopes().values():
            assert m.mse == pytest.approx(m.bias_norm**2 + m.total_variance, rel=1e-12, abs=1e-15)
        direct = np.sum(r.bias**2) + np.sum(r.var)
        assert r.mse == pytest.approx(direct, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", ["st_sigmoid", "reinforce"])
def test_monte_carlo_metrics_within_standard_errors(name):
    """Each Monte Carlo scalar within 5 jackknife standard errors of the exact value
    (seeded; about 6e-7 false alarms per scalar under normality, and 24 scalars)."""
    net = gs.BinaryNetwork.random((3, 3, 2, 2), loss="bce", seed=7)
    X = np.array([[1.0, -0.5, 0.3], [0.2, 0.4, -1.0]])
    T = np.array([[1.0, 0.0], [0.3, 0.8]])
    exact = gs.analyze(net, X, T, name)
    mc = gs.analyze(net, X, T, name, method="mc", n_samples=40_000, seed=2024)
    assert mc.method == "mc" and mc.n_samples == 40_000 and mc.seed == 2024
    for scope in ("all", "stochastic"):
        e, m, se = exact.scopes()[scope], mc.scopes()[scope], mc.standard_errors[scope]
        for metric in ("total_variance", "mse", "cosine", "sign_agreement",
                       "descent_probability"):  # fmt: skip
            if metric in mc.uncalibrated[scope]:
                # No calibrated error bar exists here (REINFORCE's cosine is exactly 1):
                # the result says so rather than giving a wrong one.
                assert math.isnan(getattr(se, metric))
                continue
            assert abs(getattr(m, metric) - getattr(e, metric)) <= 5 * getattr(se, metric) + 1e-12
    np.testing.assert_array_equal(mc.gradient, exact.gradient)


def test_monte_carlo_is_reproducible_and_records_fresh_seed():
    net = gs.BinaryNetwork.random((2, 3, 1), seed=1)
    x, t = np.ones(2), np.zeros(1)
    a = gs.analyze(net, x, t, "sts", method="mc", n_samples=300, seed=5)
    b = gs.analyze(net, x, t, "sts", method="mc", n_samples=300, seed=5)
    assert a.to_dict() == b.to_dict()
    fresh = gs.analyze(net, x, t, "sts", method="mc", n_samples=300)
    again = gs.analyze(net, x, t, "sts", method="mc", n_samples=300, seed=fresh.seed)
    assert fresh.to_dict() == again.to_dict()


def test_auto_method_and_result_interface():
    net = gs.BinaryNetwork.random((4, 3, 3, 2), loss="mse", seed=0)
    x, t = np.ones(4), np.zeros(2)
    r = gs.analyze(net, x, t, "st_sigmoid")
    assert r.method == "exact" and r.n_samples is None
    # Past max_states there is no exact reference gradient either: a clear error.
    with pytest.raises(ValueError, match="reference of a Monte Carlo analysis.*2\\^6"):
        gs.analyze(net, x, t, "st_sigmoid", max_states=32, n_samples=50, seed=0)
    small_cap = gs.analyze(net, x, t, "st_sigmoid", method="mc", n_samples=50, seed=0)
    d = r.to_dict()
    for key in gs.METRICS:
        assert d[key] == getattr(r, key)
        assert key in d["stochastic"]
    assert set(d["layers"]) == {"layer1", "layer2", "output"}
    json.dumps(d)
    text = repr(r)
    assert "st_sigmoid" in text and "bias_norm" in text and "stochastic" in text
    assert "±" in repr(small_cap)
    np.testing.assert_allclose(r.bias, r.mean - r.gradient)
    assert r.snr.shape == (net.n_params,)


def test_one_layer_linear_loss_sigmoid_st_is_exact():
    # A loss linear in h: sigmoid straight-through is unbiased with zero variance.
    net = gs.BinaryNetwork.random((3, 4, 2), loss="linear", seed=3)
    x, t = np.array([0.5, -1.0, 2.0]), np.array([1.0, -2.0])
    r = gs.analyze(net, x, t, "st_sigmoid")
    assert r.bias_norm == pytest.approx(0.0, abs=1e-14)
    assert r.stochastic.total_variance == pytest.approx(0.0, abs=1e-28)
    assert r.cosine == pytest.approx(1.0)
