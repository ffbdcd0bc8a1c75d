"""Statistical tests and confidence intervals for Monte Carlo gradient studies.

This package implements docs/model.md, section 4 with numpy and scipy only (no other part of
gradstat but its argument checks). A Monte Carlo check that "the estimator is unbiased"
compares ``n`` independent draws ``g_hat_1, ..., g_hat_n`` (each a vector the size of
``theta``) with the exact gradient ``g``:

- :func:`unbiasedness_test` (:mod:`gradstat.stats.unbiasedness`) picks the strongest
  valid test: a chi-square test when the exact covariance of one draw is known from
  enumeration, Hotelling's T^2 when ``n > n_params``, and otherwise per-coordinate
  t-tests with Holm's correction (:func:`holm_adjust`). Its result says how large a bias
  the test could have detected (``detectable_bias``); the module describes how
  zero-variance directions are handled.
- :func:`compare_estimators` (:mod:`gradstat.comparison`) runs the same machinery on
  paired differences of two estimators, for networks too wide to enumerate.
- :func:`variance_interval` (chi-square or bootstrap) and :func:`wilson_interval` (Wilson
  score interval for probabilities), in :mod:`gradstat.stats.intervals`, and
  :func:`required_samples` (sample-size planning, :mod:`gradstat.stats.power`) give the
  error bars every Monte Carlo number must carry.

The result objects live in :mod:`gradstat.stats.results`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradstat.stats.intervals import variance_interval, wilson_interval
from gradstat.stats.power import required_samples
from gradstat.stats.results import (
    METHOD_CHI2,
    METHOD_HOLM,
    METHOD_HOTELLING,
    ZERO_VARIANCE_SUFFIX,
    ComparisonResult,
    ConfidenceInterval,
    ProportionInterval,
    UnbiasednessResult,
    VarianceInterval,
)
from gradstat.stats.unbiasedness import holm_adjust, unbiasedness_test

if TYPE_CHECKING:
    from gradstat.comparison import compare_estimators

__all__ = [
    "METHOD_CHI2",
    "METHOD_HOLM",
    "METHOD_HOTELLING",
    "ZERO_VARIANCE_SUFFIX",
    "ComparisonResult",
    "ConfidenceInterval",
    "ProportionInterval",
    "UnbiasednessResult",
    "VarianceInterval",
    "compare_estimators",
    "holm_adjust",
    "required_samples",
    "unbiasedness_test",
    "variance_interval",
    "wilson_interval",
]


def __getattr__(name: str) -> Any:
    # compare_estimators draws samples through gradstat.sampling, so it lives in
    # gradstat.comparison, outside this numpy/scipy-only package; it stays importable from
    # here under its former name. The import waits for the first use because
    # gradstat.comparison imports this package: an import at the top would be circular.
    if name == "compare_estimators":
        from gradstat.comparison import compare_estimators

        return compare_estimators
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
