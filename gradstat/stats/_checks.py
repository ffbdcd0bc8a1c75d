"""Argument checks of the statistics layer, on top of :mod:`gradstat._validation`."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradstat._validation import check_array, check_real

STATS_LIMIT = 1e100
"""The largest magnitude of a draw, target or mean accepted by the statistics: sums of
squares over any feasible number of draws then stay finite in float64."""


def check_open_unit(value: Any, name: str) -> float:
    """``value`` as a float strictly inside (0, 1): a level, a power or a coverage."""
    return check_real(value, name, minimum=0.0, maximum=1.0, open_min=True, open_max=True)


def check_draws(
    samples: Any, name: str = "samples", magnitude: float | None = STATS_LIMIT
) -> np.ndarray:
    """Validate an ``(n, d)`` array of draws with ``n >= 2`` and ``d >= 1``.

    Entries must be finite and, unless ``magnitude`` is None (for computations that
    rescale the draws first), at most ``magnitude`` in absolute value.
    """
    draws = check_array(samples, name, magnitude=magnitude)
    if draws.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n, d) (one draw per row), got shape {draws.shape}; "
            f"for a single coordinate pass {name}[:, None]"
        )
    n, d = draws.shape
    if n < 2:
        raise ValueError(f"{name} needs at least 2 draws (rows), got {n}")
    if d < 1:
        raise ValueError(f"{name} needs at least one coordinate (column), got shape {draws.shape}")
    return draws
