"""The estimator registry.

Each family lives in its own module (``straight_through``, ``stochastic_times_smooth``,
``score_function``) with its jitted per-state code; this module records, for every name a
user may pass, what the estimator is, where it comes from, whether it is unbiased, what
kind of noise it consumes, and which options it takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gradstat.estimators.score_function import REINFORCE, check_baseline
from gradstat.estimators.stochastic_times_smooth import STS
from gradstat.estimators.straight_through import ST, ST_SIGMOID


@dataclass(frozen=True)
class Estimator:
    """A registered gradient estimator.

    Attributes
    ----------
    name : str
        The name accepted by :func:`gradstat.analyze` and friends.
    code : int
        The integer the jitted kernels dispatch on.
    summary : str
        One line: what the estimator does, in SPEC notation.
    reference : str
        The paper it comes from.
    unbiased : bool
        Whether its mean is the exact gradient for every network.
    noise : {"discrete", "continuous"}
        Discrete noise allows exact moments by enumeration.
    smooth : bool
        True for the STS forward pass (``h = b sqrt(p)``, ``b ~ Bernoulli(sqrt(p))``).
    options : mapping
        Option names and their defaults.
    """

    name: str
    code: int
    summary: str
    reference: str
    unbiased: bool
    noise: str = "discrete"
    smooth: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    validators: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict, repr=False)

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate user options and fill in defaults."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise TypeError(
                f"estimator {self.name!r} got unknown option(s) {unknown}; "
                f"its options are: {allowed}"
            )
        out = dict(self.options)
        for key, value in options.items():
            out[key] = self.validators[key](value)
        return out


_REGISTRY: dict[str, Estimator] = {}


def register(estimator: Estimator) -> Estimator:
    """Add an estimator to the registry (its name must be new)."""
    if estimator.name in _REGISTRY:
        raise ValueError(f"an estimator named {estimator.name!r} is already registered")
    _REGISTRY[estimator.name] = estimator
    return estimator


def get_estimator(name: str) -> Estimator:
    """The registered estimator called ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"estimator must be a registered name (str), got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown estimator {name!r}; registered estimators: {', '.join(_REGISTRY)}"
        ) from None


def available_estimators() -> list[str]:
    """Names of all registered estimators, in registration order."""
    return list(_REGISTRY)


register(
    Estimator(
        name="st",
        code=ST,
        summary="straight-through: h ~ Bernoulli(p), surrogate dh/da = 1",
        reference="Bengio, Léonard & Courville (2013), arXiv:1308.3432",
        unbiased=False,
    )
)
register(
    Estimator(
        name="st_sigmoid",
        code=ST_SIGMOID,
        summary="sigmoid straight-through: h ~ Bernoulli(p), surrogate dh/da = p(1-p)",
        reference="Hinton, Neural Networks for Machine Learning, lecture 9c (2012)",
        unbiased=False,
    )
)
register(
    Estimator(
        name="sts",
        code=STS,
        summary="stochastic times smooth: h = b sqrt(p), b ~ Bernoulli(sqrt(p)), "
        "surrogate b sqrt(p)(1-p)/2",
        reference="Bengio, Léonard & Courville (2013), arXiv:1308.3432",
        unbiased=False,
        smooth=True,
    )
)
register(
    Estimator(
        name="reinforce",
        code=REINFORCE,
        summary="score function: (C - c) grad log P(h) + direct path",
        reference="Williams (1992); Bengio, Léonard & Courville (2013)",
        unbiased=True,
        options={"baseline": "none"},
        validators={"baseline": check_baseline},
    )
)
