"""Wording the claims share: the papers they cite and the phrases of their conditions.

A paper that defines an estimator is cited once, in the estimator's registry entry;
:func:`paper` reads it from there. The tolerance phrases spell out :data:`TOL` the same
way in every claim.
"""

from __future__ import annotations

from gradstat.claims.registry import TOL
from gradstat.estimators import get_estimator


def paper(estimator: str) -> str:
    """The paper of a registered estimator, as its registry entry cites it."""
    return get_estimator(estimator).reference


BENGIO = paper("st")
"""Bengio, Léonard & Courville (2013): straight-through, STS and REINFORCE's baselines."""

HINTON = "Hinton (2012), Neural Networks for Machine Learning, lecture 9c"
"""Sigmoid straight-through (the registry entry writes the year last)."""

LARGEST = f"{TOL:g} (1 + largest magnitude)"
"""Agreement of two exact quantities, relative to the larger of them."""

UNBIASED = f"|E g_hat - g| <= {TOL:g} (1 + max |g|, |E g_hat|)"
"""Unbiasedness, checked exactly."""

BOTH_VALUES = "units in {0, 1} or {-1, +1}"

INPUTS = "parameters and inputs in [-2, 2]"

ONE_EXAMPLE = "one example, parameters, inputs and targets in [-2, 2]"
