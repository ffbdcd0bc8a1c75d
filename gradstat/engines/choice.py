"""The choice of engine for an estimator's exact moments, made once per call."""

from __future__ import annotations

from typing import Any

from gradstat._validation import check_choice, describe_power
from gradstat.engines.message_moments import layerwise_moments_cost
from gradstat.estimators.registry import EstimatorBase
from gradstat.network import BinaryNetwork
from gradstat.problem import check_states


def descent_labels(net: BinaryNetwork) -> tuple[str, ...]:
    """Names of the descent-probability columns: per layer, then ``all``, ``stochastic``."""
    return tuple(f"layer{k}" for k in range(1, net.n_layers + 1)) + (
        "output",
        "all",
        "stochastic",
    )


def check_exact(
    spec: EstimatorBase, net: BinaryNetwork, options: dict[str, Any], max_states: int
) -> str:
    """The exact engine for ``spec``'s moments, or a ValueError saying what to use instead."""
    engine = spec.exact_engine(net.n_layers)
    if engine is None:
        why = spec.exact_refusal()
        raise ValueError(
            f"the moments of estimator {spec.name!r} cannot be enumerated ({why}); use "
            f"gradstat.analyze(..., method='mc') or gradstat.sample_gradients (or declare a "
            f"discrete one with gradstat.per_state_estimator)"
        )
    check_states(net, max_states, f"exact moments of {spec.name!r}")
    count = spec.exact_count(net.hidden_sizes, options)
    if count > max_states:
        what = "cells of u" if engine == "cells" else "noise states"
        raise ValueError(
            f"exact moments of {spec.name!r} sum over {count:,} {what} per example, more than "
            f"max_states = {max_states:,}. Use method='mc' (gradstat.analyze(..., method='mc', "
            f"n_samples=..., seed=...)) or raise max_states if you can afford it."
        )
    return engine


def _check_quadrature(
    spec: EstimatorBase, net: BinaryNetwork, max_states: int, full_cov: bool
) -> str:
    """``"quadrature"`` if ``spec`` has per-unit quadrature moments, else a ValueError."""
    if not spec.quadrature:
        raise ValueError(
            f"exact moments of {spec.name!r} by quadrature are not available: only "
            "'gumbel_st' and 'gumbel_rao' have slopes that depend on each unit's own noise "
            "given the bits; use engine='auto' or method='mc'"
        )
    if full_cov:
        raise ValueError(
            "full_cov needs joint enumeration; engine='quadrature' gives variances only"
        )
    check_states(net, max_states, f"exact moments of {spec.name!r}")
    return "quadrature"


ENGINES = ("auto", "joint", "cells", "layerwise", "quadrature")
"""Exact-moment engines a caller may ask for (``"auto"`` chooses by cost)."""

QUADRATURE_UNIT_WORK = 84 * 8
"""Work of one unit's conditional slope moments in :mod:`gradstat.engines.quadrature`: at
most 84 panels of 8 Gauss-Legendre nodes
(:func:`gradstat.estimators.gumbel_rao.surrogate_moments`)."""


def quadrature_work(net: BinaryNetwork) -> int:
    """Work of the quadrature engine per example: ``2^N`` states, each ``N`` unit integrals
    and the second-moment recursion (about ``n_params`` times the widest layer)."""
    per_state = QUADRATURE_UNIT_WORK * net.n_stochastic + net.n_params * max(net.hidden_sizes)
    return 2**net.n_stochastic * per_state


JOINT_PREFERRED_WORK = 2**26
"""``"auto"`` keeps joint enumeration up to this many state-coordinate updates per example
(a fraction of a second) even where messages are cheaper: it alone also gives exact sign
agreement and descent probabilities."""


def layerwise_bits(net: BinaryNetwork) -> int:
    """Bits of the largest set of (pairs of) layer states one message enumerates at once."""
    hidden = net.hidden_sizes
    return max([hidden[0], *(a + b for a, b in zip(hidden[:-1], hidden[1:]))])


def moments_engine(
    spec: EstimatorBase,
    net: BinaryNetwork,
    options: dict[str, Any],
    max_states: int,
    *,
    engine: str = "auto",
    full_cov: bool = False,
) -> str:
    """The engine for ``spec``'s exact moments, or a ValueError saying what to use instead.

    ``"joint"`` sums over all noise states (``"cells"`` for ARM/DisARM on one layer);
    ``"layerwise"`` passes messages over adjacent layers
    (:mod:`gradstat.engines.message_moments`; mean and variance only, REINFORCE and
    straight-through-type estimators); ``"quadrature"`` sums states and one integral per
    unit (``gumbel_st``, ``gumbel_rao``). ``"auto"`` takes
    the cheaper of joint and layerwise that fit ``max_states``, keeping joint enumeration
    when its work is below :data:`JOINT_PREFERRED_WORK` (it also gives sign agreement and
    descent probability); for the Gumbel estimators it takes quadrature when ``2^N`` fits
    ``max_states`` and :func:`quadrature_work` is at most :data:`JOINT_PREFERRED_WORK`.
    Work: the noise states times the estimator's ``state_cost`` for joint enumeration,
    :func:`gradstat.engines.message_moments.layerwise_moments_cost` for messages.
    """
    engine = check_choice(engine, "engine", ENGINES)
    spec.check_values(net)
    if engine == "quadrature":
        return _check_quadrature(spec, net, max_states, full_cov)
    if engine == "auto" and spec.quadrature and not full_cov:
        # Gumbel-ST and Gumbel-Rao have no other exact engine: quadrature when the states
        # fit max_states and the work stays under JOINT_PREFERRED_WORK (a fraction of a
        # second per example), else Monte Carlo under method="auto".
        fits = net.n_stochastic <= 62 and 2**net.n_stochastic <= max_states
        if fits and quadrature_work(net) <= JOINT_PREFERRED_WORK:
            return "quadrature"
    family = spec.layerwise_family()
    name = spec.name
    if engine == "layerwise" or (engine == "auto" and family is not None and not full_cov):
        problems = []
        if family is None:
            problems.append(spec.layerwise_refusal())
        elif full_cov:
            problems.append("full_cov needs joint enumeration (messages give variances only)")
        elif layerwise_bits(net) > 62 or 2 ** layerwise_bits(net) > max_states:
            problems.append(
                f"it enumerates {describe_power(2, layerwise_bits(net))} pairs of adjacent "
                f"layer states, "
                f"more than max_states = {max_states:,}"
            )
        if engine == "layerwise":
            if problems:
                raise ValueError(
                    f"exact moments of {name!r} by layer-wise messages are not available: "
                    f"{problems[0]}; use engine='joint' (or 'auto') or method='mc'"
                )
            return "layerwise"
        if not problems:
            try:
                joint = check_exact(spec, net, options, max_states)
            except ValueError:
                return "layerwise"
            joint_work = spec.exact_count(net.hidden_sizes, options) * spec.state_cost(net)
            messages = layerwise_moments_cost(net.sizes, family)
            return joint if joint_work <= max(messages, JOINT_PREFERRED_WORK) else "layerwise"
    found = check_exact(spec, net, options, max_states)
    if engine != "auto" and engine != found:
        raise ValueError(
            f"exact moments of {name!r} on this network use engine {found!r}, not "
            f"{engine!r}; pass engine='auto' or engine={found!r}"
        )
    return found
