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

from gradstat._validation import check_bool, check_choice, check_size
from gradstat.engines.choice import ENGINES, JOINT_PREFERRED_WORK, moments_engine
from gradstat.engines.gradient import reference_gradient
from gradstat.engines.moments import EstimatorMoments, moments_pass
from gradstat.estimators.registry import EstimatorBase
from gradstat.estimators.user import guard_engines, resolve_estimator
from gradstat.kernels.blocks import CHUNKS
from gradstat.network import BinaryNetwork
from gradstat.problem import (
    DEFAULT_MAX_STATES,
    Problem,
    check_max_states,
    make_problem,
    states_advice,
)

__all__ = [
    "JOINT_PREFERRED_WORK",
    "EstimatorMoments",
    "estimator_moments",
    "exact_gradient",
    "expected_loss",
]

_NO_FALLBACK = (
    "Raise max_states if you can afford the enumeration; without it there is no exact "
    "value, only Monte Carlo estimates (the mean of gradstat.sample_gradients(net, x, t, "
    "'reinforce', n_samples, seed=...) is unbiased). gradstat.analyze(..., method='mc') "
    "needs this exact gradient too, as its reference."
)


def exact_reference(problem: Problem, max_states: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-example exact losses and gradients, refused with the right advice when they
    cannot be enumerated, and checked to be finite."""
    with states_advice(_NO_FALLBACK), np.errstate(over="ignore", invalid="ignore"):
        losses, grads = reference_gradient(problem, max_states, what)  # checked just below
    check_reference(losses, grads)
    return losses, grads


def check_reference(losses: np.ndarray | None, grads: np.ndarray) -> None:
    """Refuse a non-finite exact loss or gradient (the problem is then too large)."""
    for name, values in (("expected loss", losses), ("exact gradient", grads)):
        if values is not None and not np.all(np.isfinite(values)):
            raise ValueError(
                f"the {name} has NaN or infinite entries on this problem: its terms (the "
                "losses of the states times their scores and the inputs x) overflow "
                "float64; scale the parameters, inputs or targets down"
            )


def expected_loss(
    net: BinaryNetwork, x: Any, t: Any, *, max_states: int = DEFAULT_MAX_STATES
) -> float:
    """Exact objective ``J = (1/B) sum_x E_{h ~ P(h | x)}[C(y(h), t)]`` (docs/model.md, section 1).

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
    max_states = check_max_states(max_states)
    problem = make_problem(net, x, t)
    losses, _ = exact_reference(problem, max_states, "expected_loss")
    return float(np.mean(losses))


def exact_gradient(
    net: BinaryNetwork, x: Any, t: Any, *, max_states: int = DEFAULT_MAX_STATES
) -> np.ndarray:
    """Exact gradient ``g = grad_theta J`` by enumerating the ``2^N`` hidden states.

    Uses the score-function identity ``g = E[C(h) grad log P(h | x) + grad C(y(h), t)]``,
    summed exactly over all joint states, or, for deep networks where that is cheaper,
    the same sums by messages over adjacent layers (:mod:`gradstat.engines.message_moments`; see
    :func:`gradient_engine`). No sampling either way. Returns shape ``(n_params,)`` in
    the parameter order of docs/model.md; for a batch, the mean over examples.
    """
    max_states = check_max_states(max_states)
    problem = make_problem(net, x, t)
    _, grads = exact_reference(problem, max_states, "exact_gradient")
    return grads.mean(axis=0)


def exact_inputs(
    net: BinaryNetwork, x: Any, t: Any, estimator: Any, options: dict[str, Any],
    full_cov: Any, max_states: Any,
) -> tuple[EstimatorBase, dict[str, Any], Problem, bool, int]:  # fmt: skip
    """The checked inputs of an exact computation on an estimator: its object and
    resolved options, the validated problem (the estimator's own checks passed),
    ``full_cov`` and ``max_states``."""
    spec, opts = resolve_estimator(estimator, options)
    full_cov = check_bool(full_cov, "full_cov")
    max_states = check_max_states(max_states)
    problem = make_problem(net, x, t)
    spec.check_problem(problem, opts)
    return spec, opts, problem, full_cov, max_states


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
    means and the variance is ``(1/B^2) sum_x var_x`` (docs/model.md, section 3).

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
    engine : {"auto", "joint", "cells", "layerwise", "quadrature"}
        ``"joint"`` enumerates all noise states; ``"layerwise"`` passes messages over
        adjacent layers (REINFORCE and straight-through-type estimators; mean and variance
        only, ``sign_probability`` and ``descent_probability`` are NaN); ``"quadrature"``
        enumerates the states with one integral per unit (``gumbel_st``, ``gumbel_rao``;
        sign and descent probabilities only where the bits fix the sign, else NaN);
        ``"auto"`` picks by cost (see :func:`moments_engine`; ``"quadrature"`` for the
        Gumbel estimators when affordable) and ``result.engine`` says which ran.
    **options
        Estimator options, e.g. ``baseline="optimal"`` for ``reinforce``.

    Raises
    ------
    ValueError
        Unknown estimator, an estimator with continuous noise, too many states, options
        or magnitudes out of range, and NaN or infinite moments (an estimator that
        overflows, or whose estimates are too large to square).
    TypeError
        Unknown option names, arguments of the wrong type, a per-state function that does
        not compile for its arguments.
    """
    engine = check_choice(engine, "engine", ENGINES)
    spec, opts, problem, full_cov, max_states = exact_inputs(
        net, x, t, estimator, options, full_cov, max_states
    )
    if full_cov:
        # The covariance, and one accumulator of it per chunk of the joint kernels.
        copies = CHUNKS // 4 + 1
        check_size(copies * net.n_params**2, "full_cov",
                   f"{copies} copies of the covariance of {net.n_params:,} parameters")  # fmt: skip
    engine = moments_engine(spec, net, opts, max_states, engine=engine, full_cov=full_cov)
    with guard_engines(spec):
        moments = moments_pass(
            problem, spec, opts, full_cov=full_cov, max_states=max_states, engine=engine
        )
    check_reference(None, moments.gradient)
    spec.check_result(mean=moments.mean, var=moments.var, cov=moments.cov)
    return moments
