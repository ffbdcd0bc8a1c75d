"""PyTorch and JAX estimators against the built-ins: exact moments and draw by draw.

Each test runs once per framework and is skipped where that framework is not installed.
The framework versions (``written.py``) are independent re-implementations of the
built-in estimators in the framework's own operations, so agreement to 1e-12 checks the
adapter's enumeration (forcing uniforms, state probabilities, accumulation) and its
pairing with the built-ins' Philox uniforms.
"""

from __future__ import annotations

import numpy as np
import pytest
import written

import gradstat as gs
from gradstat.testing import assert_unbiased, check_estimator_contract

FRAMEWORKS = ("torch", "jax")


def adapter(framework: str):  # noqa: ANN201
    """The framework's ``(make_estimator, ops)``, or a skip without it."""
    pytest.importorskip(framework)
    if framework == "torch":
        return gs.torch_estimator, written.torch_ops()
    return gs.jax_estimator, written.jax_ops()


DEEP = gs.BinaryNetwork.random((3, 3, 2, 2), seed=1)
ONE = gs.BinaryNetwork.random((3, 4, 2), seed=2)
X = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.7]])
T = np.array([[0.3, -0.2], [1.0, 0.5]])


def close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    """``|a - b| <= tol`` relative to the largest entry (at least 1)."""
    return bool(np.max(np.abs(a - b)) <= tol * max(1.0, float(np.max(np.abs(b)))))


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["st", "st_sigmoid", "reinforce"])
def test_exact_moments_equal_the_builtins(framework: str, name: str) -> None:
    make, ops = adapter(framework)
    fn = (
        written.reinforce(ops)
        if name == "reinforce"
        else written.surrogate_st(ops, "one" if name == "st" else "sigmoid")
    )
    est = make(fn)
    for net in (DEEP, ONE):
        ours = gs.estimator_moments(net, X, T, est)
        theirs = gs.estimator_moments(net, X, T, name, engine="joint")
        assert ours.engine == "joint"
        for field in ("gradient", "mean", "var", "sign_probability", "descent_probability"):
            assert close(getattr(ours, field), getattr(theirs, field), 1e-12), field
    result = gs.analyze(DEEP, X, T, est)
    assert (result.method, result.engine) == ("exact", "joint")
    assert est.vectorized(DEEP) is True
    assert "exact" in est.basis and "noise='discrete'" in est.basis


def _draw_cases(ops):  # noqa: ANN001, ANN202
    return {
        "st": (written.surrogate_st(ops, "one"), DEEP, {}),
        "st_sigmoid": (written.surrogate_st(ops, "sigmoid"), DEEP, {}),
        "reinforce": (written.reinforce(ops), DEEP, {}),
        "disarm": (written.disarm(ops), ONE, {}),
        "gumbel_st": (written.gumbel_st(ops, 0.5), DEEP, {"tau": 0.5}),
    }


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", ["st", "st_sigmoid", "reinforce", "disarm", "gumbel_st"])
def test_draws_equal_the_builtins_on_the_same_uniforms(framework: str, name: str) -> None:
    make, ops = adapter(framework)
    fn, net, options = _draw_cases(ops)[name]
    noise = "discrete" if name in ("st", "st_sigmoid", "reinforce") else "continuous"
    est = make(fn, noise=noise)
    ours = gs.sample_gradients(net, X, T, est, 64, seed=5)
    theirs = gs.sample_gradients(net, X, T, name, 64, seed=5, **options)
    assert close(ours, theirs, 1e-13)
    u = gs.sample_noise(net, name, np.random.default_rng(3), n_examples=2, **options)
    one = gs.estimate_from_noise(net, X, T, est, u)
    assert close(one, gs.estimate_from_noise(net, X, T, name, u, **options), 1e-13)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_monte_carlo_pairs_with_the_builtin(framework: str) -> None:
    make, ops = adapter(framework)
    est = make(written.gumbel_st(ops, 0.5), noise="continuous")
    ours = gs.analyze(DEEP, X, T, est, n_samples=400, seed=11)
    # method="mc": engine="auto" would give the built-in its exact moments by quadrature.
    theirs = gs.analyze(DEEP, X, T, "gumbel_st", method="mc", n_samples=400, seed=11, tau=0.5)
    assert (ours.method, ours.engine) == ("mc", "monte-carlo")
    assert "Monte Carlo" in est.basis
    assert close(ours.mean, theirs.mean, 1e-12)
    assert close(ours.var, theirs.var, 1e-12)
    assert ours.standard_errors is not None


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_wrong_noise_declaration_is_caught(framework: str) -> None:
    make, ops = adapter(framework)
    est = make(written.gumbel_st(ops, 0.5), noise="discrete", name="gumbel_declared_discrete")
    with pytest.raises(ValueError, match="declared noise='discrete'.*changes within a state's"):
        gs.estimator_moments(ONE, X, T, est)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_contract_and_unbiasedness_of_a_right_estimator(framework: str) -> None:
    make, ops = adapter(framework)
    est = make(written.reinforce(ops), unbiased=True)
    report = check_estimator_contract(est, n_samples=20)
    assert "mean zero on a constant loss" in str(report)
    check = assert_unbiased(est, (DEEP, X, T))
    assert check.method == "exact"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_detach_trick_on_the_wrong_tensor_is_caught(framework: str) -> None:
    make, ops = adapter(framework)
    est = make(written.reinforce(ops, detach=False), unbiased=True)
    with pytest.raises(AssertionError, match=r"found a bias.*bias norm .* at parameter \d+"):
        assert_unbiased(est, (DEEP, X, T))
    half = make(written.reinforce(ops, complete=False), unbiased=True)
    with pytest.raises(AssertionError, match="claims to be unbiased but its mean.*bias norm"):
        check_estimator_contract(half, n_samples=20)
