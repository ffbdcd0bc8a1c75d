"""The adapters' checks, helpers and packaging: errors, layer maps, states, reinmax."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from reference_states import naive_state_log_probs

import gradstat as gs
from gradstat.frameworks import layer_views

NET = gs.BinaryNetwork.random((3, 3, 2, 2), seed=1)
X = np.array([0.5, -1.0, 2.0])
T = np.array([0.3, -0.2])


def test_importing_gradstat_imports_no_framework() -> None:
    code = "import sys, gradstat; print('torch' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_without_the_framework_the_adapter_says_how_to_install(
    framework: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, framework, None)  # import now raises ImportError
    make = gs.torch_estimator if framework == "torch" else gs.jax_estimator
    with pytest.raises(ImportError, match=rf"pip install 'gradstat\[{framework}\]'"):
        make(lambda theta, x, t, u: theta.sum())


@pytest.mark.parametrize("values", ["01", "pm1"])
@pytest.mark.parametrize("block_size", [1, 5, None])
def test_enumerate_states_matches_the_definition(values: str, block_size: int | None) -> None:
    net = gs.BinaryNetwork.random((3, 3, 2, 2), seed=4, values=values)
    blocks = list(gs.enumerate_states(net, X, block_size=block_size))
    bits = np.concatenate([b.bits for b in blocks])
    log_prob = np.concatenate([b.log_prob for b in blocks])
    assert bits.shape == (32, 5)
    assert np.array_equal(bits[:, 0] + 2 * bits[:, 1], np.arange(32) % 4)
    assert np.allclose(log_prob, naive_state_log_probs(net, X, bits), rtol=0, atol=1e-13)
    p1 = np.concatenate([b.probabilities[0] for b in blocks])
    assert np.allclose(p1, 1 / (1 + np.exp(-(net.layers()[0][0] @ X + net.layers()[0][1]))))
    low = -1.0 if values == "pm1" else 0.0
    assert np.array_equal(np.concatenate([b.h for b in blocks]), np.where(bits > 0, 1.0, low))
    for block in blocks:  # the forcing uniforms select exactly these states
        assert np.array_equal(block.uniforms < block.p, block.bits > 0)


def test_enumerate_states_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="one input"):
        gs.enumerate_states(NET, np.ones((2, 3)))
    with pytest.raises(ValueError, match="max_states"):
        gs.enumerate_states(NET, X, max_states=16)
    with pytest.raises(ValueError, match="block_size"):
        gs.enumerate_states(NET, X, block_size=0)


def test_layer_views_cut_theta_in_spec_order() -> None:
    views = layer_views(NET.params, NET)
    for (W, b), (W0, b0) in zip(views, NET.layers()):
        assert np.array_equal(W, W0) and np.array_equal(b, b0)


def test_torch_layers_round_trip() -> None:
    torch = pytest.importorskip("torch")
    layers = gs.torch_layers(NET)
    assert [type(m) for m in layers] == [torch.nn.Linear] * 3
    assert np.array_equal(gs.network_from_torch(torch.nn.Sequential(*layers)).params, NET.params)
    from gradstat.frameworks import flat_parameters

    assert np.array_equal(flat_parameters(layers).detach().numpy(), NET.params)
    with pytest.raises(TypeError, match="layer 1 must be a torch.nn.Linear"):
        gs.network_from_torch([layers[0], torch.nn.ReLU()])


@pytest.mark.parametrize("style", ["flax", "equinox"])
def test_jax_layers_round_trip(style: str) -> None:
    pytest.importorskip("jax")
    layers = gs.jax_layers(NET, style=style)
    assert np.array_equal(gs.network_from_jax(layers, loss="mse").params, NET.params)
    with pytest.raises(ValueError, match="consecutive layers must chain"):
        gs.network_from_jax([layers[1], layers[0]])


@pytest.fixture(params=["torch", "jax"])
def make(request: pytest.FixtureRequest):  # noqa: ANN201
    pytest.importorskip(request.param)
    return gs.torch_estimator if request.param == "torch" else gs.jax_estimator


def test_wrong_signature_is_named(make) -> None:  # noqa: ANN001
    with pytest.raises(TypeError, match=r"must take the 4 arguments fn\(theta, x, t, u\)"):
        make(lambda theta, x: theta.sum())


def test_wrong_output_shape_is_named(make) -> None:  # noqa: ANN001
    est = make(lambda theta, x, t, u: theta * 2.0, name="vector")
    with pytest.raises(ValueError, match=r"'vector'.*returned shape \(26,\).*scalar surrogate"):
        gs.estimator_moments(NET, X, T, est)
    est = make(lambda theta, x, t, u: theta.sum(), output="estimate", name="scalar")
    with pytest.raises(ValueError, match=r"returned shape \(\).*estimate of shape \(26,\)"):
        gs.sample_gradients(NET, X, T, est, 4, seed=0)


def test_non_finite_output_is_named(make) -> None:  # noqa: ANN001
    # Finite on the probe state, infinite where unit 0 does not fire: found while enumerating.
    est = make(lambda theta, x, t, u: (theta / (u[0] < 0.3)).sum(), name="blows_up")
    with pytest.raises(ValueError, match="'blows_up' returned NaN or infinite values"):
        gs.estimator_moments(NET, X, T, est)


def test_an_exception_in_fn_is_named(make) -> None:  # noqa: ANN001
    def broken(theta, x, t, u):  # noqa: ANN001, ANN202
        raise RuntimeError("no such layer")

    with pytest.raises(ValueError, match="'broken'.*raised RuntimeError: no such layer"):
        gs.analyze(NET, X, T, make(broken))


def test_options_and_settings_are_checked(make) -> None:  # noqa: ANN001
    est = make(lambda theta, x, t, u: theta.sum())
    with pytest.raises(TypeError, match="takes no options"):
        gs.estimator_moments(NET, X, T, est, tau=2.0)
    with pytest.raises(ValueError, match="noise"):
        make(lambda theta, x, t, u: theta.sum(), noise="gaussian")
    with pytest.raises(ValueError, match="output"):
        make(lambda theta, x, t, u: theta.sum(), output="gradient")


def test_an_estimator_by_import_path() -> None:
    pytest.importorskip("jax")
    moments = gs.estimator_moments(NET, X, T, "named:st_sigmoid_jax")
    assert np.allclose(moments.mean, gs.estimator_moments(NET, X, T, "st_sigmoid").mean,
                       rtol=0, atol=1e-12)  # fmt: skip
    with pytest.raises(ValueError, match="cannot be imported"):
        gs.estimator_moments(NET, X, T, "named:nothing_here")
    from gradstat.sweep.config import EstimatorSpec

    assert EstimatorSpec.parse("named:st_sigmoid_jax").name == "named:st_sigmoid_jax"
    spec = EstimatorSpec.parse("reinforce:baseline=optimal")
    assert (spec.name, spec.options) == ("reinforce", {"baseline": "optimal"})
    with pytest.raises(TypeError, match="takes no options"):
        EstimatorSpec.parse("named:st_sigmoid_jax:tau=2")


def test_a_sweep_runs_an_estimator_named_by_import_path(tmp_path) -> None:  # noqa: ANN001
    """A whole grid, end to end: the user's estimator's rows equal the built-in's."""
    pytest.importorskip("jax")
    grid = {
        "method": "exact",
        "plots": False,
        "estimators": ["st_sigmoid", "named:st_sigmoid_jax"],
        "networks": [{"sizes": [3, 3, 2, 2], "seeds": [1]}],
    }
    result = gs.sweep(grid, executor="serial", out=tmp_path)
    assert all(o.status == "ok" for o in result.outcomes)
    by_estimator = {t.estimator.name: o.result for t, o in zip(result.tasks, result.outcomes)}
    ours, builtin = by_estimator["named:st_sigmoid_jax"], by_estimator["st_sigmoid"]
    np.testing.assert_allclose(ours.mean, builtin.mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.var, builtin.var, rtol=0, atol=1e-12)
    assert "named:st_sigmoid_jax" in (tmp_path / "results.csv").read_text()


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_the_reinmax_package_equals_the_builtin(tau: float) -> None:
    """The published ReinMax backward (``reinmax.reinmax.ReinMax_Auto``), fed the sampled
    one-hot pair ``(b, 1 - b)`` of each binary unit with logits ``(a, 0)``, analysed through
    the torch adapter (a custom autograd.Function: run draw by draw), is the built-in."""
    torch = pytest.importorskip("torch")
    package = pytest.importorskip("reinmax.reinmax")

    class Forced(torch.autograd.Function):
        """ReinMax_Auto with the sample given instead of drawn by torch.multinomial."""

        @staticmethod
        def forward(ctx, logits, tau, one_hot):  # noqa: ANN001, ANN205
            y_soft = logits.softmax(dim=-1)
            ctx.save_for_backward(one_hot, logits, y_soft, tau)
            return one_hot.clone(), y_soft

        @staticmethod
        def backward(ctx, grad_sample, grad_p):  # noqa: ANN001, ANN205
            grad, _ = package.ReinMax_Auto.backward(ctx, grad_sample, grad_p)
            return grad, None, None

    def reinmax_fn(theta, x, t, u, net):  # noqa: ANN001, ANN202
        *hidden, (Wo, bo) = layer_views(theta, net)
        h, off = x, 0
        for W, b in hidden:
            a = W @ h + b
            bit = (u[off : off + W.shape[0]] < torch.sigmoid(a)).to(torch.float64)
            logits = torch.stack([a, torch.zeros_like(a)], dim=-1)
            sample, _ = Forced.apply(logits, torch.tensor([tau], dtype=torch.float64),
                                     torch.stack([bit, 1 - bit], dim=-1))  # fmt: skip
            h = sample[:, 0]
            off += W.shape[0]
        return 0.5 * ((Wo @ h + bo - t) ** 2).sum()

    est = gs.torch_estimator(reinmax_fn)
    ours = gs.estimator_moments(NET, X, T, est)
    theirs = gs.estimator_moments(NET, X, T, "reinmax", tau=tau, engine="joint")
    assert est.vectorized(NET) is False  # the autograd.Function has no vmap rule
    for field in ("mean", "var", "sign_probability", "descent_probability"):
        a, b = getattr(ours, field), getattr(theirs, field)
        assert np.max(np.abs(a - b)) <= 1e-12 * max(1.0, np.max(np.abs(b))), field


def test_the_claims_search_measures_a_framework_estimator() -> None:
    """The claims machinery measures an estimator written in JAX as it measures the
    built-in: the same bias ratio on the same problem, and a Hypothesis search over
    networks finds no deviation from the built-in's."""
    pytest.importorskip("jax")
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from named import st_sigmoid_jax

    from gradstat.claims.search import bias_ratio

    problem = (NET, X[None, :], T[None, :])
    assert bias_ratio(problem, st_sigmoid_jax) == pytest.approx(
        bias_ratio(problem, "st_sigmoid"), rel=1e-9, abs=1e-14
    )

    @settings(max_examples=5, deadline=None, derandomize=True)
    @given(st.integers(0, 10**6))
    def same_as_builtin(seed: int) -> None:
        net = gs.BinaryNetwork.random((2, 2, 1), seed=seed)
        problem = (net, np.ones((1, 2)), np.zeros((1, 1)))
        assert bias_ratio(problem, st_sigmoid_jax) == pytest.approx(
            bias_ratio(problem, "st_sigmoid"), rel=1e-9, abs=1e-14
        )

    same_as_builtin()
