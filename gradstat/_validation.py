"""Every argument check, written once.

Each function takes the value and the name the user knows it by, and returns the value
normalised (an ``int``, a ``float``, a contiguous float64 array) or raises ``TypeError``
(wrong kind) or ``ValueError`` (right kind, bad value) naming the argument and what to pass
instead. Nothing here imports the rest of gradstat: every layer may use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_array",
    "check_choice",
    "check_int",
    "check_items",
    "check_n_samples",
    "check_real",
    "check_seed",
    "is_int",
    "is_real",
]


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy), booleans excluded."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (numbers.Integral, np.integer)
    )


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (Python or numpy), booleans excluded."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (numbers.Real, np.floating, np.integer)
    )


def _bounds(minimum: Any, maximum: Any) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as an ``int`` within ``[minimum, maximum]`` (either bound may be ``None``)."""
    want = f"an int{_bounds(minimum, maximum)}"
    if not is_int(value):
        raise TypeError(f"{name} must be {want}, got {type(value).__name__} {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {want}, got {value}")
    return value


def check_real(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_min: bool = False,
    open_max: bool = False,
) -> float:
    """``value`` as a finite ``float`` within its bounds (open with ``open_min``/``open_max``).

    Infinities and NaN are refused: every real option of gradstat is finite.
    """
    lo = "" if minimum is None else ("> " if open_min else ">= ") + repr(minimum)
    hi = "" if maximum is None else ("< " if open_max else "<= ") + repr(maximum)
    want = "a finite number" + (f" {lo}" if lo else "") + (f" and {hi}" if lo and hi else hi)
    if not is_real(value):
        raise TypeError(f"{name} must be {want}, got {type(value).__name__} {value!r}")
    value = float(value)
    bad = not math.isfinite(value)
    if minimum is not None:
        bad = bad or (value <= minimum if open_min else value < minimum)
    if maximum is not None:
        bad = bad or (value >= maximum if open_max else value > maximum)
    if bad:
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return value


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be one of {list(choices)}, got {type(value).__name__} {value!r}"
        )
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_items(value: Any, name: str, expected: str) -> tuple[Any, ...]:
    """A non-empty list or tuple as a tuple (strings and mappings are refused)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return tuple(value)


def check_n_samples(value: Any, name: str = "n_samples") -> int:
    """A sample count: an int >= 2 (a variance needs two draws)."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int >= 2, got {type(value).__name__} {value!r}")
    if value < 2:
        raise ValueError(f"{name} must be >= 2 (a variance needs two draws), got {value}")
    return int(value)


def check_seed(seed: Any) -> np.random.SeedSequence:
    """A ``SeedSequence`` from an int >= 0, a ``SeedSequence`` or ``None`` (fresh entropy)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if not is_int(seed) or seed < 0:
        raise TypeError(f"seed must be a non-negative int, a SeedSequence or None, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def check_array(value: Any, name: str, *, finite: bool = True) -> np.ndarray:
    """``value`` as a C-contiguous, writable float64 array of real numbers.

    Complex, object and string arrays are refused (``TypeError``), as are NaN and infinite
    entries unless ``finite=False`` (``ValueError``). A copy is made only when needed.
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers, got {value!r}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers, got an array of dtype {array.dtype}"
            + ("; pass its real part (np.real) if that is what you mean"
               if array.dtype.kind == "c" else "")
        )  # fmt: skip
    array = np.require(array, dtype=np.float64, requirements=("C", "W"))
    if finite and not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); they must be finite")
    return array
