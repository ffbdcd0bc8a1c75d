"""Shared by the claims tests: the registry's results, run once, and closed-form helpers.

Every kept counterexample is checked with plain asserts against closed forms written out
by hand, independently of the search that found it. The registry's own searches run with
the active Hypothesis profile's ``max_examples`` (25 under ``CI=true``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from math import exp

import pytest
from hypothesis import settings

import gradstat as gs
import gradstat.claims as gc


@pytest.fixture(scope="session")
def results() -> dict[str, gc.ClaimResult]:
    """Every registered claim's result, with the profile's ``max_examples``."""
    return {r.key: r for r in gc.check_claims(max_examples=settings.default.max_examples)}


@pytest.fixture
def empty_registry() -> Iterator[dict[str, gc.Claim]]:
    """:data:`gradstat.claims.CLAIMS` emptied for one test (in place), then restored."""
    saved = dict(gc.CLAIMS)
    gc.CLAIMS.clear()
    yield gc.CLAIMS
    gc.CLAIMS.clear()
    gc.CLAIMS.update(saved)


def _sigmoid(a: float) -> float:
    return 1.0 / (1.0 + exp(-a))


@pytest.fixture
def sigmoid() -> Callable[[float], float]:
    return _sigmoid


@pytest.fixture
def dsigmoid() -> Callable[[float], float]:
    def dsigmoid(a: float) -> float:
        return _sigmoid(a) * _sigmoid(-a)

    return dsigmoid


@pytest.fixture
def moments() -> Callable[..., gs.EstimatorMoments]:
    """Exact moments of a counterexample for its estimator (or another one)."""

    def moments(cx: gc.Counterexample, estimator: str | None = None) -> gs.EstimatorMoments:
        return gs.estimator_moments(cx.network(), cx.x, cx.t, estimator or cx.estimator)

    return moments
