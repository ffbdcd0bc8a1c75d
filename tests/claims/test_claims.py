"""The claims registry: verdicts, the kept counterexamples (exact numbers), table and CLI.

Every kept counterexample is checked here with plain asserts against closed forms written
out by hand, independently of the search that found it. The registry's own searches run
with the active Hypothesis profile's ``max_examples`` (25 under ``CI=true``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from math import exp, log, sqrt

import numpy as np
import pytest
from hypothesis import settings
from scipy.integrate import quad
from scipy.special import expit

import gradstat as gs
import gradstat.claims as gc
from gradstat.__main__ import main

EXPECTED = {
    "reinforce_unbiased": "proved",
    "optimal_baseline": "proved",
    "st_linear_one_layer": "proved",
    "st_sigmoid_mse_bias": "proved",
    "st_right_sign": "holds only under conditions",
    "sts": "proved",
    "mse_decomposition": "proved",
    "disarm_le_arm": "proved",
    "leg_le_reinforce": "holds only under conditions",
    "reinmax_zgr": "holds only under conditions",
    "gumbel_st_limit": "proved",
    "muprop_unbiased": "proved",
}

N_EXAMPLES = settings.default.max_examples


def sigmoid(a: float) -> float:
    return 1.0 / (1.0 + exp(-a))


def dsigmoid(a: float) -> float:
    return sigmoid(a) * sigmoid(-a)


def moments(cx: gc.Counterexample, estimator: str | None = None) -> gs.EstimatorMoments:
    return gs.estimator_moments(cx.network(), cx.x, cx.t, estimator or cx.estimator)


@pytest.fixture(scope="module")
def results() -> dict[str, gc.ClaimResult]:
    return {r.key: r for r in gc.check_claims(max_examples=N_EXAMPLES)}


# --------------------------------------------------------------------------- verdicts


def test_registry_holds_the_issue_claims():
    assert set(EXPECTED) <= set(gc.CLAIMS)
    for claim in gc.CLAIMS.values():
        assert claim.statement and claim.conditions and claim.source
        assert "(" in claim.source  # a year or an arXiv number


@pytest.mark.parametrize("key", list(EXPECTED))
def test_claim_verdict(results, key):
    r = results[key]
    assert r.verdict == EXPECTED[key], r.evidence
    assert r.n_examples >= N_EXAMPLES
    if r.verdict == "proved":
        assert r.counterexamples == () and r.counterexample is None
        assert "VIOLATED" not in r.evidence and "no violation" in r.evidence
    else:
        assert r.counterexample is r.counterexamples[0]


def test_every_reported_counterexample_has_the_wrong_sign(results):
    # Whatever the searches found (it depends on max_examples), each one must reproduce.
    r = results["st_right_sign"]
    assert len(r.counterexamples) >= len(gc.KEPT_SIGN_COUNTEREXAMPLES)
    for cx in r.counterexamples:
        m = moments(cx)
        layer1 = cx.network().parameter_groups()["layer1"]
        g, mean = m.gradient[layer1], m.mean[layer1]
        assert np.any((np.abs(g) > gc.SIGN_TOL) & (np.sign(g) * mean < -gc.SIGN_TOL)), cx


def test_every_reported_leg_counterexample_is_beaten_by_a_baseline(results):
    r = results["leg_le_reinforce"]
    assert set(gc.KEPT_LEG_COUNTEREXAMPLES) <= set(r.counterexamples)
    assert len(r.counterexamples) >= len(gc.KEPT_LEG_COUNTEREXAMPLES)
    for cx in r.counterexamples:
        net = cx.network()
        assert net.n_layers >= 2 and cx.estimator == "leg"
        gaps = gc.leg_variance_gaps(net, cx.x, cx.t, gc.LEG_DEEP_BASELINES)
        assert max(gap for gap, *_ in gaps.values()) > 1e-6, cx
        # ... while REINFORCE without a baseline never beats LEG.
        assert gc.leg_variance_gaps(net, cx.x, cx.t, ["none"])["none"][0] <= gc.TOL


def test_every_reported_reinmax_counterexample_is_biased(results):
    r = results["reinmax_zgr"]
    assert gc.REINMAX_BCE_MINIMAL in r.counterexamples
    for cx in r.counterexamples:
        assert cx.loss == "bce" and cx.network().n_layers == 1
        m = moments(cx)
        assert np.max(np.abs(m.bias)) > gc.REINMAX_BIAS_TOL


def test_new_claims_evidence_numbers(results):
    r = results["gumbel_st_limit"]
    assert "(holds:" in r.evidence and "last slope 1.00" in r.evidence
    assert "last slope 2.00" in r.evidence  # a = 0: sigmoid''(0) = 0, second order
    assert "biased at every a" in results["reinmax_zgr"].evidence
    assert "bias -0.01323" in results["reinmax_zgr"].evidence  # a = 0
    assert "Kept counterexamples confirmed exactly (2 of 2)" in results["leg_le_reinforce"].evidence
    assert "DisARM / ARM: median" in results["disarm_le_arm"].evidence


def test_checks_are_deterministic(results):
    keys = ["st_sigmoid_mse_bias", "st_right_sign", "reinmax_zgr"]
    again = gc.check_claims(keys, max_examples=N_EXAMPLES)
    assert [r.to_dict() for r in again] == [results[k].to_dict() for k in keys]


# --------------------------------------------------------------------------- kept counterexamples


def test_one_unit_quadratic_counterexample():
    # C = 0.5 (h - t)^2, t = 0.45, a = -2: g = s'(a)(1/2 - t) > 0, E[st_sigmoid] = s'(a)(p - t).
    cx = gc.ST_SIGN_ONE_UNIT
    a, t = -2.0, 0.45
    p = sigmoid(a)
    sig, ident = moments(cx, "st_sigmoid"), moments(cx, "st")
    assert sig.gradient[0] == pytest.approx(dsigmoid(a) * (0.5 - t), rel=1e-12)
    assert sig.gradient[0] == pytest.approx(0.0052497, abs=1e-7)
    assert sig.mean[0] == pytest.approx(dsigmoid(a) * (p - t), rel=1e-12)
    assert sig.mean[0] == pytest.approx(-0.0347316, abs=1e-7)
    assert ident.mean[0] == pytest.approx(p - t, rel=1e-12)
    assert ident.mean[0] == pytest.approx(-0.3307971, abs=1e-7)
    assert sig.gradient[0] > 0 > sig.mean[0] and ident.mean[0] < 0


def test_one_layer_minimal_counterexample():
    # C = 0.5 (h2 - h1/2)^2, p1 = 1/2, p2 = s(-2): on b_1[1] the secant (1 - h1)/2 has mean
    # 1/4 but the slope h2 - h1/2 has mean p2 - 1/4 < 0.
    cx = gc.ST_SIGN_ONE_LAYER_MINIMAL
    m = moments(cx)
    p2 = sigmoid(-2.0)
    assert m.gradient[1] == pytest.approx(dsigmoid(-2.0) * 0.25, rel=1e-12)
    assert m.gradient[1] == pytest.approx(0.0262484, abs=1e-7)
    assert m.mean[1] == pytest.approx(dsigmoid(-2.0) * (p2 - 0.25), rel=1e-12)
    assert m.mean[1] == pytest.approx(-0.0137328, abs=1e-7)


def test_two_layer_linear_counterexample():
    # h1 ~ B(s(a)), a = 0; h2 ~ B(s(8 h1 - 4)), B(s(-h1)); f = h2a + h2b.
    cx = gc.ST_SIGN_TWO_LAYERS
    g_want = dsigmoid(0.0) * ((sigmoid(4) - sigmoid(-4)) + (sigmoid(-1) - sigmoid(0)))
    st_sig_want = dsigmoid(0.0) * (8 * dsigmoid(4) - 0.5 * (dsigmoid(0) + dsigmoid(-1)))
    sig, ident = moments(cx, "st_sigmoid"), moments(cx, "st")
    assert sig.gradient[0] == pytest.approx(g_want, rel=1e-12)
    assert sig.gradient[0] == pytest.approx(0.1832423, abs=1e-7)
    assert sig.mean[0] == pytest.approx(st_sig_want, rel=1e-12)
    assert sig.mean[0] == pytest.approx(-0.0205011, abs=1e-7)
    assert ident.mean[0] == pytest.approx(7.0, rel=1e-12)  # identity ST is right here


def test_two_layer_minimal_counterexamples():
    # a = -1; h2 ~ B(s(2 h1)), B(s(-2 h1 + 1)); f = h2a + h2b.
    cx = gc.ST_SIGN_TWO_LAYERS_MINIMAL
    p = sigmoid(-1.0)
    g_want = dsigmoid(-1.0) * ((sigmoid(2) - sigmoid(0)) + (sigmoid(-1) - sigmoid(1)))

    def slope(h1: float) -> float:
        return 2 * dsigmoid(2 * h1) - 2 * dsigmoid(-2 * h1 + 1)

    m = moments(cx)
    assert m.gradient[0] == pytest.approx(g_want, rel=1e-12)
    assert m.gradient[0] == pytest.approx(-0.0159885, abs=1e-7)
    assert m.mean[0] == pytest.approx(dsigmoid(-1.0) * (p * slope(1) + (1 - p) * slope(0)))
    assert m.mean[0] == pytest.approx(0.0056584, abs=1e-7)
    # Identity ST: a = 0; h2 ~ B(s(h1)), B(s(3 h1)); f = -2 h2a + h2b. ST sums -2*1 + 1*3.
    cx = gc.ST_SIGN_TWO_LAYERS_IDENTITY
    m = moments(cx)
    g_want = dsigmoid(0.0) * (-2 * (sigmoid(1) - sigmoid(0)) + (sigmoid(3) - sigmoid(0)))
    assert m.gradient[0] == pytest.approx(g_want, rel=1e-12)
    assert m.gradient[0] == pytest.approx(-0.0023858, abs=1e-7)
    assert m.mean[0] == pytest.approx(1.0, rel=1e-12)


def test_kept_counterexamples_round_trip():
    kept = (
        *gc.KEPT_SIGN_COUNTEREXAMPLES,
        gc.STS_RATIO_EXAMPLE,
        *gc.KEPT_LEG_COUNTEREXAMPLES,
        gc.REINMAX_PROBE,
        gc.REINMAX_BCE_MINIMAL,
        gc.GUMBEL_TOY,
    )
    for cx in kept:
        d = json.loads(json.dumps(cx.to_dict()))
        again = gs.BinaryNetwork(d["sizes"], d["params"], loss=d["loss"], values=d["values"])
        np.testing.assert_array_equal(again.params, cx.network().params)
        assert d["x"] == list(cx.x) and d["estimator"] == cx.estimator
        assert d["values"] == cx.values == again.values == "01"


def test_counterexample_keeps_unit_values():
    net = gs.BinaryNetwork.random((1, 2, 1), loss="mse", seed=3, values="pm1")
    cx = gc.Counterexample.from_problem("pm1 network", net, [0.5], [0.2], "leg")
    assert cx.values == "pm1" and cx.network().values == "pm1"
    d = json.loads(json.dumps(cx.to_dict()))
    assert d["values"] == "pm1"
    again = gs.BinaryNetwork(d["sizes"], d["params"], loss=d["loss"], values=d["values"])
    want = gs.estimator_moments(net, [0.5], [0.2], "leg").var
    np.testing.assert_array_equal(gs.estimator_moments(again, d["x"], d["t"], "leg").var, want)
    assert "values='pm1'" in gc.counterexample_list([gc.ClaimResult("k", "refuted", "", 1, (cx,))])
    assert gc.Counterexample("d", (0, 1, 1), (0.0, 1.0, 0.0), (), (0.0,), "mse").values == "01"


def test_sts_ratio_sequence():
    # One unit, C = 0.5 (1.5 h - 0.45)^2: |E_sts C - C(p)| / p = 0.5 * 1.5^2 (sqrt(p) - p).
    cx = gc.STS_RATIO_EXAMPLE
    ratios = []
    for a in gc.STS_LOGITS:
        net = cx.network().with_params([a, 1.5, 0.0])
        p, q = sigmoid(a), sqrt(sigmoid(a))

        def loss(h: float) -> float:
            return 0.5 * (1.5 * h - 0.45) ** 2

        e_sts = gc.sts_expected_loss(net, [], [0.45])
        assert e_sts == pytest.approx(q * loss(q) + (1 - q) * loss(0.0), rel=1e-13)
        ratios.append(abs(e_sts - loss(p)) / p)
        assert ratios[-1] == pytest.approx(0.5 * 2.25 * (q - p), rel=1e-6)
    assert np.all(np.diff(ratios) < 0)
    assert ratios[0] == pytest.approx(0.2543, abs=1e-4)
    assert ratios[-1] < 3e-3


def test_disarm_and_arm_one_unit_closed_forms():
    # One unit, C = w h, a = -1 (p < 1/2): Delta = w; ARM's squared estimate integrates
    # (u - 1/2)^2 over the two outer cells of width p; DisARM is +-w (1 - p)/2 there.
    w, a = 1.5, -1.0
    p = sigmoid(a)
    net = gs.BinaryNetwork((0, 1, 1), [a, w, 0.0], loss="linear")
    g = p * (1 - p) * w
    arm, dis = (
        gs.estimator_moments(net, [], [1.0], "arm"),
        gs.estimator_moments(net, [], [1.0], "disarm"),
    )
    assert arm.mean[0] == pytest.approx(g, rel=1e-12) and dis.mean[0] == pytest.approx(g, rel=1e-12)
    arm_var = w**2 * 2 * (0.125 - (0.5 - p) ** 3) / 3 - g**2
    dis_var = p * (1 - p) ** 2 * w**2 * (0.5 - p)
    assert arm.var[0] == pytest.approx(arm_var, rel=1e-10)
    assert dis.var[0] == pytest.approx(dis_var, rel=1e-10)
    assert dis.var[0] < arm.var[0]


def test_leg_constant_loss_counterexample():
    # C = log 2 for every state; h1 ~ B(1/2), h2 ~ B(s(h1)). LEG on b_1 is C (w1(h2) - 1/2)
    # with w1(h2) = P(h1 = 1 | h2); REINFORCE with the mean baseline is (C - C)(h1 - 1/2) = 0.
    cx = gc.LEG_CONSTANT_LOSS
    q1 = 0.5 * (sigmoid(1.0) + sigmoid(0.0))  # P(h2 = 1)
    w_on = 0.5 * sigmoid(1.0) / q1
    w_off = 0.5 * sigmoid(-1.0) / (1 - q1)
    var = log(2) ** 2 * (q1 * (w_on - 0.5) ** 2 + (1 - q1) * (w_off - 0.5) ** 2)
    leg = moments(cx, "leg")
    assert leg.var[0] == pytest.approx(var, rel=1e-12)
    assert leg.var[0] == pytest.approx(0.0067743, abs=1e-7)
    assert leg.mean[0] == pytest.approx(0.0, abs=1e-15) and leg.gradient[0] == 0.0
    ref = gs.estimator_moments(cx.network(), cx.x, cx.t, "reinforce", baseline="mean")
    assert ref.var[0] == pytest.approx(0.0, abs=1e-15)


def test_leg_two_layer_mse_counterexample():
    # h1 ~ B(1/2), h2 ~ B(s(h1)), C = 0.5 (h2 / 8 - 1)^2: enumerate the four states.
    cx = gc.LEG_TWO_LAYERS_MSE

    def loss(h2: int) -> float:
        return 0.5 * (h2 / 8 - 1) ** 2

    states = [
        (h1, h2, 0.5 * (sigmoid(h1) if h2 else sigmoid(-h1))) for h1 in (0, 1) for h2 in (0, 1)
    ]
    q1 = sum(w for _, h2, w in states if h2 == 1)
    post = {1: 0.5 * sigmoid(1.0) / q1, 0: 0.5 * sigmoid(-1.0) / (1 - q1)}
    mean_c = sum(w * loss(h2) for _, h2, w in states)

    def variance(values: list[float]) -> float:
        m = sum(w * v for (_, _, w), v in zip(states, values))
        return sum(w * (v - m) ** 2 for (_, _, w), v in zip(states, values))

    leg_var = variance([loss(h2) * (post[h2] - 0.5) for _, h2, _ in states])
    ref_var = variance([(loss(h2) - mean_c) * (h1 - 0.5) for h1, h2, _ in states])
    assert moments(cx, "leg").var[0] == pytest.approx(leg_var, rel=1e-12)
    assert leg_var == pytest.approx(0.0029183, abs=1e-7)
    for baseline in ("mean", "optimal"):  # s^2 = 1/4 constant: optimal = mean on b_1
        ref = gs.estimator_moments(cx.network(), cx.x, cx.t, "reinforce", baseline=baseline)
        assert ref.var[0] == pytest.approx(ref_var, rel=1e-12)
    assert ref_var == pytest.approx(0.0007667, abs=1e-7)
    none = gs.estimator_moments(cx.network(), cx.x, cx.t, "reinforce", baseline="none")
    assert none.var[0] > leg_var


def test_reinmax_is_zgr_on_fixed_networks():
    # One unit: the surrogate is (1 - p)/2 when the unit fires, p/2 otherwise (doubled for pm1).
    a = 0.7
    p = sigmoid(a)
    for values, kappa in (("01", 1.0), ("pm1", 2.0)):
        net = gs.BinaryNetwork((0, 1, 1), [a, 1.0, 0.0], loss="linear", values=values)
        on = gs.estimate_from_noise(net, [], [1.0], "reinmax", [p / 2], tau=1.0)
        off = gs.estimate_from_noise(net, [], [1.0], "reinmax", [(1 + p) / 2], tau=1.0)
        assert on[0] == pytest.approx(kappa * (1 - p) / 2, rel=1e-13)
        assert off[0] == pytest.approx(kappa * p / 2, rel=1e-13)
        assert gc.zgr_estimate(net, [], [1.0], [p / 2])[0] == pytest.approx(on[0], rel=1e-13)
    net = gs.BinaryNetwork.random((2, 3, 2, 2), loss="bce", seed=7, values="pm1")
    x, t = np.array([0.4, -1.2]), np.array([0.3, 0.9])
    for u in np.random.default_rng(0).random((5, net.n_stochastic)):
        got = gs.estimate_from_noise(net, x, t, "reinmax", u, tau=1.0)
        np.testing.assert_allclose(got, gc.zgr_estimate(net, x, t, u), rtol=1e-12, atol=1e-14)


def test_reinmax_bce_minimal_counterexample():
    # C = softplus(h), a = 0: g = s'(0)(softplus(1) - log 2), E = s'(0)(s(1) + s(0))/2.
    m = moments(gc.REINMAX_BCE_MINIMAL)
    assert m.gradient[0] == pytest.approx(0.25 * (log(1 + exp(1.0)) - log(2)), rel=1e-12)
    assert m.mean[0] == pytest.approx(0.25 * (sigmoid(1.0) + 0.5) / 2, rel=1e-12)
    assert m.gradient[0] == pytest.approx(0.155029, abs=1e-6)
    assert m.mean[0] == pytest.approx(0.153882, abs=1e-6)


@pytest.mark.parametrize("a", [-2.0, 0.0, 2.0])
def test_reinmax_power_loss_bias(a):
    # f(h) = |h - 0.45|^1.5: E = s'(a) 0.75 (sqrt(0.55) - sqrt(0.45)), g = s'(a)(f(1) - f(0)).
    mean, g = gc.reinmax_power_bias(a)
    assert mean == pytest.approx(dsigmoid(a) * 0.75 * (sqrt(0.55) - sqrt(0.45)), rel=1e-12)
    assert g == pytest.approx(dsigmoid(a) * (0.55**1.5 - 0.45**1.5), rel=1e-12)
    assert mean / g == pytest.approx(0.5009, abs=1e-4)
    assert mean - g == pytest.approx(-0.0132305 if a == 0 else -0.0055565, abs=1e-6)


@pytest.mark.parametrize("a, tau", [(2.0, 0.1), (0.0, 0.03), (-2.0, 0.01)])
def test_gumbel_st_toy_moments_match_the_closed_form_integral(a, tau):
    # z = a + L, w = z / tau: E[g^k] = int f'(1[w > 0])^k s'(w)^k tau^(1-k) s'(tau w - a) dw,
    # f'(1) = 1.5, f'(0) = -0.5 for C = (h - 0.25)^2.
    def ds(w: float) -> float:
        return float(expit(w) * expit(-w))

    def moment(k: int) -> float:
        def side(slope: float) -> Callable[[float], float]:
            return lambda w: slope**k * ds(w) ** k * tau ** (1 - k) * ds(tau * w - a)

        hi = quad(side(1.5), 0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
        lo = quad(side(-0.5), -np.inf, 0, epsabs=1e-13, epsrel=1e-12)[0]
        return hi + lo

    mean, var, err = gc.gumbel_st_toy_moments(a, tau)
    assert err < 1e-8
    assert mean == pytest.approx(moment(1), abs=1e-9)
    assert var == pytest.approx(moment(2) - moment(1) ** 2, rel=1e-8)
    trap = dsigmoid(a) * (1.5 - 0.5) / 2
    # First order: E - trapezoid = -log(2) tau s''(a)(f'(1) - f'(0)), s'' = s'(1 - 2p).
    if a != 0.0:
        first = -log(2) * tau * dsigmoid(a) * (1 - 2 * sigmoid(a)) * 2.0
        assert mean - trap == pytest.approx(first, rel=0.1)
    # tau Var -> s'(a)(f'(0)^2 + f'(1)^2)/12.
    assert tau * var == pytest.approx(dsigmoid(a) * 2.5 / 12, rel=0.2)


def test_muprop_unbiased_on_a_fixed_pm1_network():
    net = gs.BinaryNetwork.random((2, 2, 3, 2), loss="xent", seed=11, values="pm1")
    x = np.array([[0.3, -1.0], [1.5, 0.2]])
    for expansion in ("mean_field", 1.5, -2.0):
        m = gs.estimator_moments(net, x, [1, 0], "muprop", expansion=expansion)
        np.testing.assert_allclose(m.example_mean, m.example_gradient, rtol=1e-10, atol=1e-13)


def test_sts_expected_loss_needs_mse():
    with pytest.raises(ValueError, match="mse"):
        gc.sts_expected_loss(gs.BinaryNetwork((0, 1, 1), loss="linear"), [], [1.0])


def test_st_sigmoid_mse_bias_formula_on_a_fixed_network():
    # One example written out: bias(b_1[i]) = s'(a_i)(p_i - 1/2) sum_k W_o[k, i]^2.
    net = gs.BinaryNetwork.random((2, 3, 2), loss="mse", seed=4)
    x, t = np.array([0.5, -1.5]), np.array([0.3, -0.2])
    (W1, b1), (W_o, _) = net.layers()
    a = W1 @ x + b1
    p = 1 / (1 + np.exp(-a))
    want = p * (1 - p) * (p - 0.5) * (W_o**2).sum(axis=0)
    bias = gs.estimator_moments(net, x, t, "st_sigmoid").bias
    np.testing.assert_allclose(bias[net.layer_slices()[0][1]], want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bias[: W1.size], np.outer(want, x).ravel(), atol=1e-15)


# --------------------------------------------------------------------------- table and API


def test_claims_table_renders(results):
    ordered = [results[k] for k in EXPECTED]
    table = gc.claims_table(ordered)
    lines = table.splitlines()
    assert lines[0] == "| claim | source | conditions | verdict | evidence |"
    assert len(lines) == 2 + len(ordered)
    for line, r in zip(lines[2:], ordered):
        cells = [c for c in line.replace("\\|", "").split("|")[1:-1]]
        assert len(cells) == 5
        assert f"**{r.key}**" in cells[0] and f"**{r.verdict}**" in cells[3]
        assert "\n" not in line
    assert "arXiv:1308.3432" in table
    listed = gc.counterexample_list(ordered)
    assert listed.count("- `st_right_sign`") == len(results["st_right_sign"].counterexamples)


def test_table_escapes_pipes_and_rejects_unknown_results():
    claim = gc.Claim("k", "|x| <= 1\nalways", "A (2000)", "none", check=lambda **_: None)
    r = gc.ClaimResult("k", "proved", "ok | fine", 3)
    table = gc.claims_table([r], {"k": claim})
    assert "\\|x\\| <= 1 always" in table and "ok \\| fine (3 examples)" in table
    with pytest.raises(ValueError, match="unknown claim"):
        gc.claims_table([r])


def test_results_serialise(results):
    text = json.dumps([r.to_dict() for r in results.values()])
    back = json.loads(text)
    assert {d["key"] for d in back} == set(results)


def test_register_and_check_a_new_claim(monkeypatch):
    monkeypatch.setattr(gc, "CLAIMS", {})

    def check(*, max_examples: int) -> gc.ClaimResult:
        return gc.ClaimResult("mine", "proved", f"{max_examples} examples", max_examples)

    claim = gc.register_claim(gc.Claim("mine", "s", "A (2000)", "c", check=check))
    assert gc.CLAIMS == {"mine": claim}
    (r,) = gc.check_claims("mine", max_examples=3)
    assert r.n_examples == 3
    with pytest.raises(ValueError, match="already registered"):
        gc.register_claim(claim)
    with pytest.raises(TypeError, match="takes a Claim"):
        gc.register_claim("mine")
    gc.register_claim(gc.Claim("bad", "s", "A (2000)", "c", check=lambda **_: "yes"))
    with pytest.raises(TypeError, match="must return a ClaimResult"):
        gc.check_claims(["bad"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown claim"):
        gc.check_claims(["no_such_claim"])
    with pytest.raises(ValueError, match=">= 1"):
        gc.check_claims(max_examples=0)
    with pytest.raises(TypeError, match="int"):
        gc.check_claims(max_examples=2.5)
    with pytest.raises(ValueError, match="verdict must be one of"):
        gc.ClaimResult("k", "maybe", "", 0)


# --------------------------------------------------------------------------- CLI


def test_cli_prints_the_table(capsys):
    assert main(["claims", "--max-examples", "5"]) == 0
    out = capsys.readouterr().out
    assert "| claim | source | conditions | verdict | evidence |" in out
    rows = {line.split("**")[1]: line for line in out.splitlines() if line.startswith("| **")}
    assert list(rows) == list(gc.CLAIMS)
    for key, verdict in EXPECTED.items():
        assert f"| **{verdict}** |" in rows[key]
    assert "## Counterexamples" in out and "sizes=[0, 1, 2, 1]" in out


def test_cli_selects_claims(capsys):
    assert (
        main(["claims", "--max-examples", "5", "--claim", "sts", "--claim", "st_linear_one_layer"])
        == 0
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| **")]
    assert [r.split("**")[1] for r in rows] == ["sts", "st_linear_one_layer"]
    assert "## Counterexamples" not in out


@pytest.mark.parametrize("argv", [["claims", "--claim", "nope"], ["claims", "--max-examples", "0"]])
def test_cli_rejects_bad_options(argv, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    assert "error" in capsys.readouterr().err
