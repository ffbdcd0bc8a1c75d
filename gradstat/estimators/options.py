"""Validators of estimator options (each names the option and the accepted values)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def check_positive(name: str) -> Callable[[Any], float]:
    """A validator for an option that must be a finite number > 0."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a finite number > 0, got {value!r}")
        value = float(value)
        if not (0.0 < value < float("inf")):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        return value

    return check


def check_finite(name: str) -> Callable[[Any], float]:
    """A validator for an option that must be a finite number."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a finite number, got {value!r}")
        value = float(value)
        if not abs(value) < float("inf"):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        return value

    return check


def check_count(name: str, minimum: int) -> Callable[[Any], int]:
    """A validator for an integer option ``>= minimum``."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
        if value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
        return int(value)

    return check
