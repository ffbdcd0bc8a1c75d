"""The claims registry: statements from the literature, checked exactly.

Each :class:`Claim` pairs a statement about gradient estimators for stochastic binary
neurons with the paper it comes from, the precise conditions under which it is checked,
and a ``check`` that decides a verdict by exact enumeration (no sampling):

``"proved"``
    No counterexample among every network that Hypothesis generated meeting the
    conditions (derandomized, so the check is deterministic), each compared with the
    prediction to a stated tolerance; the closed-form argument is in the docstring of
    the check.
``"refuted"``
    A counterexample meeting the stated conditions: the minimal one that
    :func:`hypothesis.find` shrinks to, confirmed by exact enumeration.
``"holds only under conditions"``
    True under the stated conditions (as for ``"proved"``), false outside them:
    counterexamples found by Hypothesis and kept as module constants are confirmed
    exactly on every run.

The kept counterexamples are module constants (:class:`Counterexample`, with sizes,
parameters, input and target as plain numbers) so that anyone can rebuild them::

    import gradstat as gs
    from gradstat.claims import ST_SIGN_ONE_UNIT as cx
    gs.estimator_moments(cx.network(), cx.x, cx.t, cx.estimator).mean

Usage: ``check_claims()`` runs every registered claim, ``claims_table`` renders the
results as Markdown, and ``python -m gradstat claims`` prints the table.

Layout: :mod:`~gradstat.claims.registry` holds the claim, result and counterexample types
and the registry; :mod:`~gradstat.claims.search` the Hypothesis searches the checks share;
one module per estimator family (as in :mod:`gradstat.estimators`) holds its claims, each
a check under the :func:`claim` decorator, which registers it under its function's name::

    @claim(statement="...", source="Author (year), venue", conditions="...")
    def my_claim(max_examples: int) -> Part:
        return Search(max_examples).holds(what, strategy, measure, label, describe)

Tolerances. Equalities hold to ``TOL = 1e-10`` relative to ``1 +`` the largest magnitude
compared; "zero variance" means ``Var_j <= TOL (1 + max_j |E g_hat_j|)^2`` (the engine's
variance of a biased but deterministic estimate keeps about ``eps * bias^2`` of rounding);
sign statements skip coordinates with ``|g_j| <= SIGN_TOL = 1e-9``. Every number a check
reports is an exact finite sum over the noise states: nothing is sampled.
"""

# The family modules register their claims as they are imported: this list's order is
# the order of CLAIMS, of check_claims() and of the table.
# isort: off
from gradstat.claims import (  # noqa: F401
    score_function,
    straight_through,
    stochastic_times_smooth,
    metrics,
    arm,
    local_expectation,
    reinmax,
    relaxed,
    muprop,
    noise_form,
    rebar,
    psa,
    gumbel_rao,
    relax,
)

# isort: on
from gradstat.claims.local_expectation import (
    KEPT_LEG_COUNTEREXAMPLES,
    LEG_CONSTANT_LOSS,
    LEG_DEEP_BASELINES,
    LEG_TWO_LAYERS_MSE,
    leg_variance_gaps,
)
from gradstat.claims.metrics import MSE_CASES
from gradstat.claims.noise_form import (
    ST_MEAN_BCE,
    ST_MEAN_TWO_LAYERS,
    deterministic_gradient,
    walsh_covariance,
)
from gradstat.claims.rebar import REBAR_TIED_MINIMAL, tied_bias
from gradstat.claims.registry import (
    CLAIMS,
    DEFAULT_MAX_EXAMPLES,
    SIGN_TOL,
    TOL,
    VERDICTS,
    Claim,
    ClaimResult,
    Counterexample,
    Part,
    check_claims,
    claim,
    claims_table,
    counterexample_list,
    register_claim,
)
from gradstat.claims.reinmax import (
    REINMAX_BCE_MINIMAL,
    REINMAX_BIAS_TOL,
    REINMAX_LOGITS,
    REINMAX_POWER_C,
    REINMAX_PROBE,
    reinmax_power_bias,
    zgr_estimate,
)
from gradstat.claims.relaxed import (
    GUMBEL_LOGITS,
    GUMBEL_TAUS,
    GUMBEL_TOY,
    GUMBEL_TOY_TARGET,
    gumbel_st_toy_moments,
)
from gradstat.claims.score_function import BASELINE_CASES
from gradstat.claims.search import Search
from gradstat.claims.stochastic_times_smooth import (
    STS_LOGITS,
    STS_RATIO_EXAMPLE,
    sts_expected_loss,
)
from gradstat.claims.straight_through import (
    KEPT_SIGN_COUNTEREXAMPLES,
    ST_SIGN_ONE_LAYER_MINIMAL,
    ST_SIGN_ONE_UNIT,
    ST_SIGN_TWO_LAYERS,
    ST_SIGN_TWO_LAYERS_IDENTITY,
    ST_SIGN_TWO_LAYERS_MINIMAL,
)

__all__ = [
    "BASELINE_CASES",
    "CLAIMS",
    "DEFAULT_MAX_EXAMPLES",
    "GUMBEL_LOGITS",
    "GUMBEL_TAUS",
    "GUMBEL_TOY",
    "GUMBEL_TOY_TARGET",
    "KEPT_LEG_COUNTEREXAMPLES",
    "KEPT_SIGN_COUNTEREXAMPLES",
    "LEG_CONSTANT_LOSS",
    "LEG_DEEP_BASELINES",
    "LEG_TWO_LAYERS_MSE",
    "MSE_CASES",
    "REBAR_TIED_MINIMAL",
    "REINMAX_BCE_MINIMAL",
    "REINMAX_BIAS_TOL",
    "REINMAX_LOGITS",
    "REINMAX_POWER_C",
    "REINMAX_PROBE",
    "SIGN_TOL",
    "STS_LOGITS",
    "ST_MEAN_BCE",
    "ST_MEAN_TWO_LAYERS",
    "STS_RATIO_EXAMPLE",
    "ST_SIGN_ONE_LAYER_MINIMAL",
    "ST_SIGN_ONE_UNIT",
    "ST_SIGN_TWO_LAYERS",
    "ST_SIGN_TWO_LAYERS_IDENTITY",
    "ST_SIGN_TWO_LAYERS_MINIMAL",
    "TOL",
    "VERDICTS",
    "Claim",
    "ClaimResult",
    "Counterexample",
    "Part",
    "Search",
    "check_claims",
    "claim",
    "claims_table",
    "counterexample_list",
    "deterministic_gradient",
    "gumbel_st_toy_moments",
    "leg_variance_gaps",
    "register_claim",
    "reinmax_power_bias",
    "sts_expected_loss",
    "walsh_covariance",
    "tied_bias",
    "zgr_estimate",
]
