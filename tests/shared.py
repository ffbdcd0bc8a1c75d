"""What several test modules share: estimator cases and report configurations.

Plain Python, importing nothing from gradstat, so that the tests of the independent
reference implementations can use it too.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any


def cases(specs: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, options)`` for each whitespace-separated ``name`` or
    ``name:key=value,key=value`` in ``specs``, as a report's ``estimators`` entries read:
    each value an int, else a float, else a string."""
    out = []
    for spec in specs.split():
        name, _, rest = spec.partition(":")
        options = dict(item.split("=") for item in rest.split(",") if item)
        out.append((name, {key: _value(value) for key, value in options.items()}))
    return out


def _value(text: str) -> int | float | str:
    for kind in (int, float):
        with suppress(ValueError):
            return kind(text)
    return text


def exact_config(estimators: list[str], networks: list[dict[str, Any]]) -> dict[str, Any]:
    """A report's configuration: exact analyses of ``estimators`` on ``networks``, no plots."""
    return {"method": "exact", "plots": False, "estimators": estimators, "networks": networks}
