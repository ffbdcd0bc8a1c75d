"""Every argument check, written once.

Each function takes the value and the name the user knows it by, and returns the value
normalised (an ``int``, a ``float``, a contiguous float64 array) or raises ``TypeError``
(wrong kind) or ``ValueError`` (right kind, bad value) naming the argument and what to pass
instead. Nothing here imports the rest of gradstat: every layer may use it.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "INT64_MAX",
    "MAGNITUDE_LIMIT",
    "MAX_PARAMS",
    "MAX_STATES_LIMIT",
    "MAX_VALUES",
    "check_array",
    "check_bool",
    "check_choice",
    "check_generator",
    "check_int",
    "check_items",
    "check_n_samples",
    "check_path",
    "check_real",
    "check_seed",
    "check_size",
    "check_sizes",
    "describe_power",
    "is_int",
    "is_real",
    "parameter_count",
]

MAGNITUDE_LIMIT = 1e150
"""The largest magnitude gradstat accepts for an input, a target, a pre-activation or an
output (bounded before anything runs) and for a real estimator option: its square, 1e300,
is still a finite float64, so the model's products and squares cannot overflow. Scale-like
options (temperatures, noise scales) lie in ``[1 / MAGNITUDE_LIMIT, MAGNITUDE_LIMIT]``."""

MAX_PARAMS = 2**26
"""The most parameters a network may have (67,108,864: 512 MiB per float64 vector).
Larger ones are refused before anything is allocated."""

INT64_MAX = 2**63 - 1
"""The largest count the compiled kernels (and scipy's counting routines) hold."""

MAX_STATES_LIMIT = 2**62
"""The largest ``max_states``: the kernels index joint states with int64."""

MAX_VALUES = 2**31
"""The most float64 values one call allocates for its result (16 GiB): a larger request
(``n_samples`` times ``n_params``, say) is refused before any allocation."""


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
        return f" >= {minimum} and <= {maximum}"
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
    bounds = " and ".join(b for b in (lo, hi) if b)
    want = "a finite number" + (f" {bounds}" if bounds else "")
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


def check_n_samples(value: Any, name: str = "n_samples", minimum: int = 2) -> int:
    """A sample count: an int >= ``minimum`` that int64 counters hold (the default 2 is for
    statistics, since a variance needs two draws; drawing alone needs one)."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        why = " (a variance needs two draws)" if minimum == 2 else ""
        raise ValueError(f"{name} must be >= {minimum}{why}, got {value}")
    if value > INT64_MAX:
        raise ValueError(f"{name} must be at most 2^63 - 1 (an int64 counter), got {value}")
    return int(value)


def check_seed(
    seed: Any, name: str = "seed", *, allow_none: bool = True, generator: bool = False
) -> Any:
    """A ``SeedSequence`` from an int >= 0, a sequence of such ints or a ``SeedSequence``.

    ``None`` (fresh entropy) is accepted with ``allow_none``; a ``numpy.random.Generator``
    is passed through with ``generator``. Wrong kinds raise ``TypeError``, negative
    integers ``ValueError``.
    """
    want = (
        "a non-negative int, a sequence of them, a numpy.random.SeedSequence"
        + (", a numpy.random.Generator" if generator else "")
        + (" or None" if allow_none else "")
    )
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if generator and isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        if not allow_none:
            raise ValueError(f"{name} must be given ({want}) so that the result is reproducible")
        return np.random.SeedSequence()
    if is_int(seed):
        entropy: Any = int(seed)
        if entropy < 0:
            raise ValueError(f"{name} must be {want}, got the negative int {entropy}")
        return np.random.SeedSequence(entropy)
    if isinstance(seed, (list, tuple)) and seed:
        if not all(is_int(v) for v in seed):
            raise TypeError(f"{name} must be {want}, got {type(seed).__name__} {seed!r}")
        if any(v < 0 for v in seed):
            raise ValueError(f"{name} must be {want}, got negative entries in {seed!r}")
        return np.random.SeedSequence([int(v) for v in seed])
    raise TypeError(f"{name} must be {want}, got {type(seed).__name__} {seed!r}")


def check_generator(value: Any, name: str = "rng") -> np.random.Generator:
    """``value`` if it is a ``numpy.random.Generator``."""
    if not isinstance(value, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
            f"got {type(value).__name__}"
        )
    return value


def check_path(value: Any, name: str = "path") -> str | os.PathLike[str]:
    """``value`` if it is a ``str`` or an ``os.PathLike`` (a file or folder name)."""
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        return value
    raise TypeError(f"{name} must be a file path (str or os.PathLike), got {type(value).__name__}")


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a ``bool`` (Python or numpy booleans only)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def describe_power(base: int, exponent: int) -> str:
    """``base^exponent`` for a message, written out (with commas) only when short."""
    if exponent * math.log10(base) <= 30:
        return f"{base}^{exponent} = {base**exponent:,}"
    return f"{base}^{exponent} (about 10^{exponent * math.log10(base):,.0f})"


def parameter_count(sizes: Sequence[int]) -> int:
    """Parameters of a network of ``sizes``: ``sum over consecutive (a, b) of a*b + b``."""
    return int(sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])))


def check_sizes(value: Any, name: str = "sizes") -> tuple[int, ...]:
    """Layer sizes ``(n_in, n_1, ..., n_L, n_out)`` as a tuple of ints.

    A list, tuple, range or 1-d array of integers (whole floats are accepted); strings,
    mappings, sets and scalars are refused. ``n_in >= 0``, every stochastic width and
    ``n_out >= 1``, at least one stochastic layer, and at most :data:`MAX_PARAMS`
    parameters (checked before anything is allocated).
    """
    expected = "a sequence of integers (n_in, n_1, ..., n_L, n_out)"
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise TypeError(f"{name} must be {expected}, got an array of shape {value.shape}")
        items = list(value)
    elif isinstance(value, (list, tuple, range)):
        items = list(value)
    else:
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    out = []
    for k, s in enumerate(items):
        if is_int(s):
            out.append(int(s))
        elif is_real(s) and math.isfinite(s) and float(s).is_integer():
            out.append(int(s))
        else:
            raise TypeError(
                f"{name} must hold integers, got {name}[{k}] = {s!r} in {tuple(items)!r}"
            )
    sizes = tuple(out)
    if len(sizes) < 3:
        raise ValueError(
            f"{name} must be (n_in, n_1, ..., n_L, n_out) with at least one stochastic "
            f"layer, got {sizes!r}"
        )
    if sizes[0] < 0:
        raise ValueError(f"{name}[0] (n_in) must be >= 0, got {sizes[0]}")
    for k, s in enumerate(sizes[1:-1], start=1):
        if s < 1:
            raise ValueError(
                f"{name}[{k}] is a stochastic layer of width {s}: every stochastic layer "
                f"needs at least one unit (remove the layer instead)"
            )
    if sizes[-1] < 1:
        raise ValueError(f"{name}[-1] (n_out) must be >= 1, got {sizes[-1]}")
    n_params = parameter_count(sizes)
    if n_params > MAX_PARAMS:
        raise ValueError(
            f"{name} {sizes!r} give {n_params:,} parameters, more than the {MAX_PARAMS:,} "
            f"(2^26, 512 MiB per float64 vector) gradstat holds; use narrower layers"
        )
    return sizes


def check_size(count: int, name: str, what: str, limit: int = MAX_VALUES) -> int:
    """Refuse a result of ``count`` values (``what`` says of what) above ``limit``."""
    if count > limit:
        raise ValueError(
            f"{name}: {what} is {count:,} float64 values ({count * 8 / 2**30:,.1f} GiB), "
            f"more than the {limit:,} ({limit * 8 / 2**30:,.0f} GiB) one call allocates"
        )
    return count


def check_array(
    value: Any, name: str, *, finite: bool = True, magnitude: float | None = None
) -> np.ndarray:
    """``value`` as a C-contiguous, writable float64 array of real numbers.

    Complex, object and string arrays are refused (``TypeError``), as are NaN and infinite
    entries unless ``finite=False`` and, with ``magnitude``, entries larger than it in
    absolute value (``ValueError``). A copy is made only when needed.
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__} "
                        f"{value!r}")  # fmt: skip
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers, got {value!r}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be an array of real numbers, got an array of dtype {array.dtype}"
            + ("; pass its real part (np.real) if that is what you mean"
               if array.dtype.kind == "c" else "")
        )  # fmt: skip
    array = np.require(array, dtype=np.float64, requirements=("C", "W"))
    if finite and not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); they must be finite")
    if magnitude is not None and array.size:
        largest = float(np.max(np.abs(array)))
        if largest > magnitude:
            raise ValueError(
                f"{name} holds values up to {largest:.3g} in magnitude; they must lie within "
                f"+-{magnitude:g} (larger values overflow float64 in gradstat's computations)"
            )
    return array
