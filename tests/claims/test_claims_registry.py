"""The registry: verdicts, the claim decorator, counterexamples, table, errors and CLI."""

from __future__ import annotations

import json

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
    "disarm_le_arm": "proved",
    "disarm_le_arm_any_depth": "proved",
    "leg_le_reinforce": "holds only under conditions",
    "reinmax_zgr": "holds only under conditions",
    "gumbel_st_limit": "proved",
    "muprop_unbiased": "proved",
    "st_sigmoid_noise_form": "proved",
    "st_sigmoid_mean_is_deterministic": "holds only under conditions",
    "surrogate_walsh_covariance": "proved",
    "noise_sources_sum": "proved",
    "rebar_unbiased": "proved",
    "rebar_tied_biased": "proved",
    "psa_exact_cases": "proved",
    "gumbel_rao_rao_blackwell": "proved",
    "gumbel_rao_zero_temperature": "proved",
    "relax_unbiased": "proved",
}

N_EXAMPLES = settings.default.max_examples

PUBLIC_NAMES = (
    "BASELINE_CASES", "CLAIMS", "DEFAULT_MAX_EXAMPLES", "GUMBEL_LOGITS", "GUMBEL_TAUS",
    "GUMBEL_TOY", "GUMBEL_TOY_TARGET", "KEPT_LEG_COUNTEREXAMPLES", "KEPT_SIGN_COUNTEREXAMPLES",
    "LEG_CONSTANT_LOSS", "LEG_DEEP_BASELINES", "LEG_TWO_LAYERS_MSE", "MSE_CASES",
    "REBAR_TIED_MINIMAL", "tied_bias",
    "REINMAX_BCE_MINIMAL", "REINMAX_BIAS_TOL", "REINMAX_LOGITS", "REINMAX_POWER_C",
    "REINMAX_PROBE", "SIGN_TOL", "STS_LOGITS", "STS_RATIO_EXAMPLE", "ST_MEAN_BCE",
    "ST_MEAN_TWO_LAYERS", "ST_SIGN_ONE_LAYER_MINIMAL", "ST_SIGN_ONE_UNIT", "ST_SIGN_TWO_LAYERS",
    "ST_SIGN_TWO_LAYERS_IDENTITY", "ST_SIGN_TWO_LAYERS_MINIMAL", "TOL", "VERDICTS", "Claim",
    "ClaimResult", "Counterexample", "Part", "Search", "check_claims", "claim",
    "claims_table", "counterexample_list", "deterministic_gradient", "gumbel_st_toy_moments",
    "leg_variance_gaps", "register_claim", "reinmax_power_bias", "sts_expected_loss",
    "walsh_covariance", "zgr_estimate",
)  # fmt: skip


# --------------------------------------------------------------------------- verdicts


def test_registry_holds_the_issue_claims():
    assert set(EXPECTED) <= set(gc.CLAIMS)
    for claim in gc.CLAIMS.values():
        assert claim.statement and claim.conditions and claim.source
        assert "(" in claim.source  # a year or an arXiv number


def test_registry_order_is_the_family_order():
    assert list(gc.CLAIMS) == list(EXPECTED)


def test_public_names():
    assert sorted(gc.__all__) == sorted(PUBLIC_NAMES)
    for name in PUBLIC_NAMES:
        assert getattr(gc, name) is not None


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


def test_checks_are_deterministic(results):
    keys = ["st_sigmoid_mse_bias", "st_right_sign", "reinmax_zgr"]
    again = gc.check_claims(keys, max_examples=N_EXAMPLES)
    assert [r.to_dict() for r in again] == [results[k].to_dict() for k in keys]


# --------------------------------------------------------------------------- counterexamples


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


def test_register_and_check_a_new_claim(empty_registry):
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


def test_claim_decorator_registers_under_the_function_name(empty_registry):
    cx = gc.Counterexample("fails", (0, 1, 1), (0.0, 1.0, 0.0), (), (0.0,), "mse")

    @gc.claim(statement="s", source="A (2000)", conditions="c")
    def my_claim(max_examples: int) -> list[gc.Part]:
        """The closed form."""
        return [gc.Part(f"{max_examples} examples", max_examples)]

    @gc.claim(statement="s", source="A (2000)", conditions="c", key="other_key")
    def outside(max_examples: int) -> list[gc.Part]:
        return [gc.Part("outside", 0, (cx,), outside=True), gc.Part("inside", max_examples)]

    @gc.claim(statement="s", source="A (2000)", conditions="c")
    def refuted(max_examples: int) -> list[gc.Part]:
        return [gc.Part("fails", 1, (cx,)), gc.Part("again", 0, (cx,), outside=True)]

    assert isinstance(my_claim, gc.Claim) and list(gc.CLAIMS) == [
        "my_claim",
        "other_key",
        "refuted",
    ]
    assert my_claim.check.__doc__ == "The closed form."
    (r,) = gc.check_claims("my_claim", max_examples=4)
    assert (r.key, r.verdict, r.evidence, r.n_examples) == ("my_claim", "proved", "4 examples", 4)
    (r,) = gc.check_claims("other_key", max_examples=4)
    assert r.verdict == "holds only under conditions" and r.counterexamples == (cx,)
    assert r.evidence == "inside outside" and r.n_examples == 4
    (r,) = gc.check_claims("refuted", max_examples=4)
    assert r.verdict == "refuted" and r.counterexamples == (cx,)
    with pytest.raises(ValueError, match="already registered"):
        gc.claim(statement="s", source="A (2000)", conditions="c")(refuted.check)


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
