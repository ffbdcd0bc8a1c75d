"""Validators of estimator options, built on :mod:`gradstat._validation`.

Each returns a one-argument function for the registry's ``validators`` table, naming the
option in its messages. Every option has a finite range in which the products it enters
cannot overflow float64 (:data:`gradstat._validation.MAGNITUDE_LIMIT`): real options
``|v| <= 1e150``; scale-like ones (temperatures, noise scales) in ``[1e-150, 1e150]``;
counts up to :data:`MAX_COUNT`, what the kernels hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradstat._validation import MAGNITUDE_LIMIT, check_int, check_real, is_real

MAX_COUNT = 2**16
"""The largest count option (65,536 draws of leave-one-out REINFORCE): each estimate runs
that many forward passes and holds that many numbers per unit in every thread's scratch."""

SCALE_MIN = 1.0 / MAGNITUDE_LIMIT
"""The smallest scale-like option (1e-150): a surrogate ``sigmoid'(a / tau) / tau`` then
stays below 1e150."""


def check_positive(name: str) -> Callable[[Any], float]:
    """A validator for a scale-like option: a finite number in ``[1e-150, 1e150]``."""

    def check(value: Any) -> float:
        value = check_real(value, name, minimum=0.0, open_min=True, maximum=MAGNITUDE_LIMIT)
        if value < SCALE_MIN:
            raise ValueError(
                f"{name} must be a finite number > 0 and at least {SCALE_MIN:g} (smaller "
                f"values overflow the terms divided by {name}), got {value!r}"
            )
        return value

    return check


def check_finite(name: str) -> Callable[[Any], float]:
    """A validator for a real option: a finite number with ``|value| <= 1e150``."""
    return lambda value: check_real(value, name, minimum=-MAGNITUDE_LIMIT, maximum=MAGNITUDE_LIMIT)


def check_count(name: str, minimum: int) -> Callable[[Any], int]:
    """A validator for an integer option in ``[minimum, MAX_COUNT]``."""
    return lambda value: check_int(value, name, minimum=minimum, maximum=MAX_COUNT)


def check_keyword_or_real(name: str, keywords: Sequence[str]) -> Callable[[Any], str | float]:
    """A validator for an option that is one of the strings ``keywords`` or a finite float
    with ``|value| <= 1e150``."""
    want = f"one of {tuple(keywords)} or a finite float"

    def check(value: Any) -> str | float:
        if isinstance(value, str):
            if value not in keywords:
                raise ValueError(f"{name} must be {want}, got {value!r}")
            return value
        if not is_real(value):
            raise TypeError(f"{name} must be {want}, got {type(value).__name__} {value!r}")
        return check_real(value, name, minimum=-MAGNITUDE_LIMIT, maximum=MAGNITUDE_LIMIT)

    return check


def noise_shifted_units(
    option: str, spread: float
) -> Callable[[np.ndarray, Mapping[str, Any]], np.ndarray]:
    """A unit bound for units ``h = max(0, a + s z)`` with ``|z| <= spread``: ``|a| + spread s``
    (``s`` the option ``option``)."""
    return lambda a_bound, options: a_bound + spread * options[option]


def expansion_units(option: str) -> Callable[[np.ndarray, Mapping[str, Any]], float]:
    """A unit bound for a layer expanded around the point ``options[option]`` (a number,
    or a keyword for a point inside ``[-1, 1]``): ``max(1, |point|)``."""

    def bound(a_bound: np.ndarray, options: Mapping[str, Any]) -> float:
        point = options[option]
        return 1.0 if isinstance(point, str) else max(1.0, abs(point))

    return bound


def encode_tau(options: Mapping[str, Any]) -> np.ndarray:
    """The kernels' option array of an estimator whose only option is ``tau``."""
    return np.array([options["tau"]])


def tau_option(check: Callable[[Any], float] | None = None) -> dict[str, Any]:
    """The registry fields of an estimator whose only option is a temperature ``tau``:
    default 1, validated by ``check`` (a finite number > 0 unless given), passed to the
    kernels by :func:`encode_tau`."""
    return {
        "options": {"tau": 1.0},
        "validators": {"tau": check_positive("tau") if check is None else check},
        "encode": encode_tau,
    }
