"""The exact expected loss, gradient and estimator moments: the public API.

For one example the expected loss is ``E[C] = sum_h P(h | x) C(y(h), t)`` over all ``2^N``
hidden states, and every estimator whose noise is discrete has exact moments
``E[g_hat] = sum_h P(h) g_hat(h)``, ``Var[g_hat_j] = sum_h P(h) (g_hat_j(h) - E g_hat_j)^2``.
These functions validate their input, choose an engine once (:mod:`gradstat.engines.choice`)
and run it (:mod:`gradstat.engines`); nothing is sampled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradstat.engines.choice import JOINT_PREFERRED_WORK, moments_engine
from gradstat.engines.gradient import reference_gradient
from gradstat.engines.moments import EstimatorMoments, moments_pass
from gradstat.estimators.user import resolve_estimator
from gradstat.network import BinaryNetwork
from gradstat.problem import DEFAULT_MAX_STATES, make_problem

__all__ = [
    "JOINT_PREFERRED_WORK",
    "EstimatorMoments",
    "estimator_moments",
    "exact_gradient",
    "expected_loss",
]


def expected_loss(
    net: BinaryNetwork, x: Any, t: Any, *, max_states: int = DEFAULT_MAX_STATES
) -> float:
    """Exact objective ``J = (1/B) sum_x E_{h ~ P(h | x)}[C(y(h), t)]`` (SPEC section 1).

    Parameters
    ----------
    net : BinaryNetwork
    x : array_like, shape (n_in,) or (B, n_in)
    t : array_like
        Targets matching the loss (see :class:`BinaryNetwork`).
    max_states : int
        Refuse to enumerate more than this many states at once per example (``2^N``
        joint states, or ``2^{n_{l-1} + n_l}`` for the layer-wise engine).

    Raises
    ------
    ValueError
        For malformed input, or when ``2^N > max_states`` (the message says what to use).
    """
    problem = make_problem(net, x, t)
    losses, _ = reference_gradient(problem, max_states, "expected_loss")
    return float(np.mean(losses))


def exact_gradient(
    net: BinaryNetwork, x: Any, t: Any, *, max_states: int = DEFAULT_MAX_STATES
) -> np.ndarray:
    """Exact gradient ``g = grad_theta J`` by enumerating the ``2^N`` hidden states.

    Uses the score-function identity ``g = E[C(h) grad log P(h | x) + grad C(y(h), t)]``,
    summed exactly over all joint states, or, for deep networks where that is cheaper,
    the same sums by messages over adjacent layers (:mod:`gradstat.engines.message_moments`; see
    :func:`gradient_engine`). No sampling either way. Returns shape ``(n_params,)`` in
    SPEC order; for a batch, the mean over examples.
    """
    problem = make_problem(net, x, t)
    _, grads = reference_gradient(problem, max_states, "exact_gradient")
    return grads.mean(axis=0)


def estimator_moments(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    *,
    full_cov: bool = False,
    max_states: int = DEFAULT_MAX_STATES,
    engine: str = "auto",
    **options: Any,
) -> EstimatorMoments:
    """Exact mean and variance of an estimator's batch estimate, by enumerating its noise.

    For one example, ``E[g_hat] = sum_h P(h) g_hat(h)`` and ``Var[g_hat_j] =
    sum_h P(h) (g_hat_j(h) - E g_hat_j)^2`` over all ``2^N`` noise states (for ``sts``
    the states of the bits ``b ~ Bernoulli(sqrt(p))``), or, for REINFORCE and the
    straight-through-type estimators on deep networks, the same sums by messages over
    adjacent layers (:mod:`gradstat.engines.message_moments`, linear in depth). For a
    batch, each example has independent noise: the mean is the mean of the per-example
    means and the variance is ``(1/B^2) sum_x var_x`` (SPEC section 3).

    Parameters
    ----------
    net, x, t
        Network, one example ``(n_in,)`` or a batch ``(B, n_in)``, and targets.
    estimator : str or PerStateEstimator
        A registered name (:func:`gradstat.available_estimators`) or a user's jitted
        per-state function wrapped by :func:`gradstat.per_state_estimator`.
    full_cov : bool
        Also return the full covariance matrix (costs ``O(n_params^2)`` per state).
    max_states : int
        Refuse to enumerate more than this many states per example (joint states, or
        pairs of adjacent layer states for ``engine="layerwise"``).
    engine : {"auto", "joint", "cells", "layerwise"}
        ``"joint"`` enumerates all noise states; ``"layerwise"`` passes messages over
        adjacent layers (REINFORCE and straight-through-type estimators; mean and variance
        only, ``sign_probability`` and ``descent_probability`` are NaN); ``"auto"`` picks by
        cost (see :func:`moments_engine`) and ``result.engine`` says which ran.
    **options
        Estimator options, e.g. ``baseline="optimal"`` for ``reinforce``.

    Raises
    ------
    ValueError
        Unknown estimator, an estimator with continuous noise, too many states.
    TypeError
        Unknown option names.
    """
    spec, opts = resolve_estimator(estimator, options)
    problem = make_problem(net, x, t)
    engine = moments_engine(spec, net, opts, max_states, engine=engine, full_cov=bool(full_cov))
    return moments_pass(
        problem, spec, opts, full_cov=bool(full_cov), max_states=max_states, engine=engine
    )
