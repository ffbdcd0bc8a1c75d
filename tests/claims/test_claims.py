"""The claims registry: verdicts, the kept counterexamples (exact numbers), table and CLI.

Every kept counterexample is checked here with plain asserts against closed forms written
out by hand, independently of the search that found it. The registry's own searches run
with the active Hypothesis profile's ``max_examples`` (25 under ``CI=true``).
"""

from __future__ import annotations

import json
from math import exp, sqrt

import numpy as np
import pytest
from hypothesis import settings

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


def test_checks_are_deterministic(results):
    keys = ["st_sigmoid_mse_bias", "st_right_sign"]
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
    for cx in (*gc.KEPT_SIGN_COUNTEREXAMPLES, gc.STS_RATIO_EXAMPLE):
        d = json.loads(json.dumps(cx.to_dict()))
        again = gs.BinaryNetwork(d["sizes"], d["params"], loss=d["loss"])
        np.testing.assert_array_equal(again.params, cx.network().params)
        assert d["x"] == list(cx.x) and d["estimator"] == cx.estimator


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
