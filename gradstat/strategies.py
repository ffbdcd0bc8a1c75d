"""Hypothesis strategies for networks and problems.

Like ``hypothesis.extra.numpy``, the factories are keyword-only and check their arguments
at once, raising ``hypothesis.errors.InvalidArgument`` with the argument's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from gradstat._validation import check_int, check_real
from gradstat.network import LOSSES, VALUES, BinaryNetwork

STRATEGY_LIMIT = 1e50
"""The largest ``max_weight``, ``max_input`` and ``max_magnitude``: networks and inputs
drawn within it are far inside what gradstat accepts
(:data:`gradstat._validation.MAGNITUDE_LIMIT`)."""

_T = TypeVar("_T")


def _argument(check: Callable[..., _T], value: Any, name: str, **bounds: Any) -> _T:
    """``check(value, name, **bounds)`` of :mod:`gradstat._validation`, its ``TypeError`` or
    ``ValueError`` raised as the ``InvalidArgument`` that Hypothesis strategies raise."""
    try:
        return check(value, name, **bounds)
    except (TypeError, ValueError) as err:
        raise InvalidArgument(str(err)) from None


def _check_int_range(name: str, lo: Any, hi: Any, least: int) -> None:
    for label, v in ((f"min_{name}", lo), (f"max_{name}", hi)):
        _argument(check_int, v, label, minimum=least)
    if lo > hi:
        raise InvalidArgument(f"min_{name}={lo} is larger than max_{name}={hi}")


def _check_subset(value: Any, name: str, choices: Sequence[str]) -> tuple[str, ...]:
    """A non-empty tuple of names from ``choices``, as ``InvalidArgument`` otherwise."""
    try:
        items = tuple(value)
    except TypeError:
        items = None
    if not items or any(not isinstance(v, str) or v not in choices for v in items):
        raise InvalidArgument(
            f"{name} must be a non-empty subset of {sorted(choices)}, got {value!r}"
        )
    return items


def networks(
    *,
    min_depth: int = 1,
    max_depth: int = 3,
    min_width: int = 1,
    max_width: int = 3,
    max_inputs: int = 3,
    max_outputs: int = 3,
    losses: tuple[str, ...] = tuple(LOSSES),
    max_weight: float = 2.0,
    max_stochastic: int = 8,
    values: tuple[str, ...] = ("01",),
) -> st.SearchStrategy[BinaryNetwork]:
    """Strategy for :class:`BinaryNetwork` with small, enumerable hidden layers.

    Parameters
    ----------
    min_depth, max_depth : int
        Number ``L`` of stochastic layers.
    min_width, max_width : int
        Width of each stochastic layer.
    max_inputs, max_outputs : int
        ``n_in`` is drawn from ``[0, max_inputs]``, ``n_out`` from ``[1, max_outputs]``
        (``[2, max(2, max_outputs)]`` for ``xent``).
    losses : tuple of str
        Losses to draw from.
    max_weight : float
        Every parameter is drawn uniformly from ``[-max_weight, max_weight]``; at most
        :data:`STRATEGY_LIMIT`.
    max_stochastic : int
        Cap on ``N = n_1 + ... + n_L`` (so ``2^N`` states stay cheap to enumerate).
    values : tuple of str
        Unit values to draw from (``"01"``, ``"pm1"``).
    """
    _check_int_range("depth", min_depth, max_depth, 1)
    _check_int_range("width", min_width, max_width, 1)
    _check_int_range("inputs", 0, max_inputs, 0)
    _check_int_range("outputs", 1, max_outputs, 1)
    _argument(check_int, max_stochastic, "max_stochastic", minimum=1, maximum=2**16)
    if max_stochastic < min_depth * min_width:
        raise InvalidArgument(
            f"max_stochastic={max_stochastic} is below min_depth * min_width = "
            f"{min_depth * min_width}: no network qualifies"
        )
    losses = _check_subset(losses, "losses", tuple(LOSSES))
    _argument(check_real, max_weight, "max_weight", minimum=0.0, maximum=STRATEGY_LIMIT)
    values = _check_subset(values, "values", VALUES)

    @st.composite
    def build(draw: st.DrawFn) -> BinaryNetwork:
        loss = draw(st.sampled_from(losses))
        unit_values = draw(st.sampled_from(values))
        depth = draw(st.integers(min_depth, max_depth))
        widths = []
        for k in range(depth):
            room = max_stochastic - sum(widths) - (depth - k - 1) * min_width
            if room < min_width:
                break
            widths.append(draw(st.integers(min_width, min(max_width, room))))
        n_in = draw(st.integers(0, max_inputs))
        lo_out = 2 if loss == "xent" else 1
        n_out = draw(st.integers(lo_out, max(lo_out, max_outputs)))
        sizes = (n_in, *widths, n_out)
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        theta = draw(
            st.lists(
                st.floats(-max_weight, max_weight, allow_nan=False, allow_infinity=False),
                min_size=n_params,
                max_size=n_params,
            )
        )
        return BinaryNetwork(sizes, np.array(theta), loss=loss, values=unit_values)

    return build()


def targets(net: BinaryNetwork, batch: int) -> st.SearchStrategy[np.ndarray]:
    """Strategy for targets of ``batch`` examples matching the network's loss."""
    if not isinstance(net, BinaryNetwork):
        raise InvalidArgument(f"net must be a gradstat.BinaryNetwork, got {type(net).__name__}")
    _argument(check_int, batch, "batch", minimum=1, maximum=2**16)
    if net.loss == "xent":
        return st.lists(st.integers(0, net.n_out - 1), min_size=batch, max_size=batch).map(np.array)
    lo, hi = (0.0, 1.0) if net.loss == "bce" else (-2.0, 2.0)
    elems = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return st.lists(elems, min_size=batch * net.n_out, max_size=batch * net.n_out).map(
        lambda v: np.array(v).reshape(batch, net.n_out)
    )


def problems(
    *,
    max_batch: int = 2,
    max_input: float = 2.0,
    **network_kwargs: Any,
) -> st.SearchStrategy[tuple[BinaryNetwork, np.ndarray, np.ndarray]]:
    """Strategy for ``(net, X, T)``: a network, a batch ``(B, n_in)`` and matching targets.

    ``network_kwargs`` go to :func:`networks`; inputs are uniform in
    ``[-max_input, max_input]`` and ``B`` is drawn from ``[1, max_batch]``.
    """
    _check_int_range("batch", 1, max_batch, 1)
    _argument(check_real, max_input, "max_input", minimum=0.0, maximum=STRATEGY_LIMIT)
    nets = networks(**network_kwargs)

    @st.composite
    def build(draw: st.DrawFn) -> tuple[BinaryNetwork, np.ndarray, np.ndarray]:
        net = draw(nets)
        B = draw(st.integers(1, max_batch))
        elems = st.floats(-max_input, max_input, allow_nan=False, allow_infinity=False)
        x = draw(st.lists(elems, min_size=B * net.n_in, max_size=B * net.n_in))
        return net, np.array(x).reshape(B, net.n_in), draw(targets(net, B))

    return build()


def extreme_logit_networks(
    *, min_magnitude: float = 20.0, max_magnitude: float = 60.0, **network_kwargs: Any
) -> st.SearchStrategy[BinaryNetwork]:
    """Networks whose stochastic units all have pre-activations of large magnitude.

    Every hidden bias is set to ``+-m`` with ``m`` in ``[min_magnitude, max_magnitude]``
    and a sign drawn per unit, so (with ``max_weight`` small against ``m``) every unit
    fires with probability within ``exp(-m)`` of 0 or 1: the regime where naive
    ``log(sigmoid)`` and ``log(1 - sigmoid)`` overflow.
    """
    for label, v in (("min_magnitude", min_magnitude), ("max_magnitude", max_magnitude)):
        _argument(check_real, v, label, minimum=0.0, maximum=STRATEGY_LIMIT)
    if min_magnitude > max_magnitude:
        raise InvalidArgument(
            f"min_magnitude={min_magnitude} is larger than max_magnitude={max_magnitude}"
        )
    network_kwargs.setdefault("max_weight", 1.0)
    nets = networks(**network_kwargs)

    @st.composite
    def build(draw: st.DrawFn) -> BinaryNetwork:
        net = draw(nets)
        theta = net.params.copy()
        for _, b in net.layer_slices()[:-1]:
            n = b.stop - b.start
            m = draw(st.floats(min_magnitude, max_magnitude))
            signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n))
            theta[b] = m * np.array(signs)
        return net.with_params(theta)

    return build()
