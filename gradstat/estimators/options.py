"""Validators of estimator options, built on :mod:`gradstat._validation`.

Each returns a one-argument function for the registry's ``validators`` table, naming the
option in its messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradstat._validation import check_int, check_real, is_real


def check_positive(name: str) -> Callable[[Any], float]:
    """A validator for an option that must be a finite number > 0."""
    return lambda value: check_real(value, name, minimum=0, open_min=True)


def check_finite(name: str) -> Callable[[Any], float]:
    """A validator for an option that must be a finite number."""
    return lambda value: check_real(value, name)


def check_count(name: str, minimum: int) -> Callable[[Any], int]:
    """A validator for an integer option ``>= minimum``."""
    return lambda value: check_int(value, name, minimum=minimum)


def check_keyword_or_real(name: str, keywords: Sequence[str]) -> Callable[[Any], str | float]:
    """A validator for an option that is one of the strings ``keywords`` or a finite float."""
    want = f"one of {tuple(keywords)} or a finite float"

    def check(value: Any) -> str | float:
        if isinstance(value, str):
            if value not in keywords:
                raise ValueError(f"{name} must be {want}, got {value!r}")
            return value
        if not is_real(value):
            raise TypeError(f"{name} must be {want}, got {type(value).__name__} {value!r}")
        return check_real(value, name)

    return check


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
