"""The one way a registry (estimators, claims) adds an item: typed, under a new key."""

from __future__ import annotations

from typing import Any


def add_unique(table: dict[str, Any], key: str, item: Any, kind: type, caller: str,
               taken: str) -> Any:  # fmt: skip
    """Add ``item`` to ``table`` under ``key`` and return it.

    ``caller`` names the registering function and ``taken`` says what is already
    registered when ``key`` is (``"an estimator named 'st'"``), in the errors it raises.
    """
    if not isinstance(item, kind):
        article = "an" if kind.__name__[0] in "AEIOU" else "a"
        raise TypeError(f"{caller} takes {article} {kind.__name__}, got {type(item).__name__}")
    if key in table:
        raise ValueError(f"{taken} is already registered")
    table[key] = item
    return item
