"""The estimator registry.

Each family lives in its own module (``straight_through``, ``reinmax``,
``stochastic_times_smooth``, ``score_function``, ``local_expectation``, ``muprop``, ``arm``,
``relaxed``, ``rebar``, ``noisy_rectifier``) with its jitted code; this module records, for
every name a user may pass, what the estimator is, where it comes from, whether it is
unbiased, what noise it consumes, how its exact moments are computed, and its options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstat.estimators.arm import ARM, DISARM, arm_noise_size
from gradstat.estimators.local_expectation import LEG
from gradstat.estimators.muprop import MUPROP, check_expansion
from gradstat.estimators.noisy_rectifier import NOISY_RECTIFIER
from gradstat.estimators.options import check_count, check_finite, check_positive
from gradstat.estimators.rebar import REBAR
from gradstat.estimators.reinmax import REINMAX, check_reinmax_tau
from gradstat.estimators.relaxed import CONCRETE, GUMBEL_ST
from gradstat.estimators.score_function import REINFORCE, REINFORCE_LOO, check_baseline
from gradstat.estimators.stochastic_times_smooth import STS
from gradstat.estimators.straight_through import ST, ST_SIGMOID, ST_TEMPERED


def _no_options(options: Mapping[str, Any]) -> np.ndarray:
    return np.zeros(1)


def _one_draw(hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
    return int(sum(hidden))


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
        Discrete noise allows exact moments by enumerating the noise states.
    smooth : bool
        True for the STS forward pass (``h = b sqrt(p)``, ``b ~ Bernoulli(sqrt(p))``).
    options : mapping
        Option names and their defaults.
    validators : mapping
        Per option, a function that checks a value and returns it normalised.
    encode : callable
        Resolved options -> the float array the kernels read (``opts``).
    noise_size : callable
        ``(hidden_sizes, options)`` -> numbers drawn per example and draw (uniforms, or
        standard normals when ``normal_noise``); for discrete noise also the number of
        enumerated bits.
    values : tuple of str
        Unit values the estimator is defined for (``"01"``, ``"pm1"``).
    cells : bool
        Exact moments for one stochastic layer by enumerating ``3^N`` cells of ``u``
        (ARM, DisARM), although the noise is continuous.
    normal_noise : bool
        Draws standard normals instead of uniforms.
    layerwise : bool
        Its exact mean and variance can be computed by messages over adjacent layers'
        states (:mod:`gradstat.layerwise`): the estimate is a sum over layers of terms that
        depend on the layer states only through adjacent pairs, and the next layer sees
        only the current layer's state (straight-through-type surrogates, REINFORCE).
        False for STS, whose real-valued outputs ``b sqrt(p(a))`` carry the layer below.
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
    encode: Callable[[Mapping[str, Any]], np.ndarray] = field(default=_no_options, repr=False)
    noise_size: Callable[[tuple[int, ...], Mapping[str, Any]], int] = field(
        default=_one_draw, repr=False
    )
    values: tuple[str, ...] = ("01", "pm1")
    cells: bool = False
    normal_noise: bool = False
    layerwise: bool = False

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

    def exact_engine(self, n_layers: int) -> str | None:
        """How exact moments are computed: ``"joint"`` states, ``"cells"``, or None (MC)."""
        if self.noise == "discrete":
            return "joint"
        if self.cells and n_layers == 1:
            return "cells"
        return None

    def exact_count(self, hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
        """Number of noise states (or cells) an exact computation sums over per example."""
        if self.cells:
            return 3 ** int(sum(hidden))
        return 2 ** self.noise_size(hidden, options)


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
        layerwise=True,
    )
)
register(
    Estimator(
        name="st_sigmoid",
        code=ST_SIGMOID,
        summary="sigmoid straight-through: h ~ Bernoulli(p), surrogate dh/da = p(1-p)",
        reference="Hinton, Neural Networks for Machine Learning, lecture 9c (2012)",
        unbiased=False,
        layerwise=True,
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
        values=("01",),
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
        layerwise=True,
    )
)


def _tau(options: Mapping[str, Any]) -> np.ndarray:
    return np.array([options["tau"]])


register(
    Estimator(
        name="st_tempered",
        code=ST_TEMPERED,
        summary="tempered straight-through: h ~ Bernoulli(p), surrogate sigmoid'(a/tau)/tau",
        reference="Liu, Dong, Liu, Yu & Gao (2023), arXiv:2304.08612 (temperature ST)",
        unbiased=False,
        options={"tau": 1.0},
        validators={"tau": check_positive("tau")},
        encode=_tau,
        layerwise=True,
    )
)
register(
    Estimator(
        name="reinmax",
        code=REINMAX,
        summary="ReinMax: surrogate 2q(1-q) - p(1-p)/2, q = (sigmoid(a/tau) + b)/2, tau >= 1",
        reference="Liu, Dong, Liu, Yu & Gao (2023), NeurIPS, arXiv:2304.08612",
        unbiased=False,
        options={"tau": 1.0},
        validators={"tau": check_reinmax_tau},
        encode=_tau,
        layerwise=True,
    )
)
register(
    Estimator(
        name="leg",
        code=LEG,
        summary="local expectation: each unit's REINFORCE term summed over its two values",
        reference="Titsias & Lázaro-Gredilla (2015), NeurIPS, arXiv:1503.01494",
        unbiased=True,
    )
)


def _expansion(options: Mapping[str, Any]) -> np.ndarray:
    point = options["expansion"]
    return np.array([np.nan if point == "mean_field" else point])


register(
    Estimator(
        name="muprop",
        code=MUPROP,
        summary="MuProp: REINFORCE with a first-order Taylor control variate, per layer",
        reference="Gu, Levine, Sutskever & Mnih (2016), ICLR, arXiv:1511.05176",
        unbiased=True,
        options={"expansion": "mean_field"},
        validators={"expansion": check_expansion},
        encode=_expansion,
    )
)


def _loo_draws(hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
    return int(sum(hidden)) * options["k"]


register(
    Estimator(
        name="reinforce_loo",
        code=REINFORCE_LOO,
        summary="REINFORCE over k draws, each with the others' mean loss as baseline",
        reference="Kool, van Hoof & Welling (2019), ICLR workshop",
        unbiased=True,
        options={"k": 2},
        validators={"k": check_count("k", 2)},
        encode=lambda options: np.array([float(options["k"])]),
        noise_size=_loo_draws,
    )
)


def _arm_noise(hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
    return arm_noise_size(hidden)


register(
    Estimator(
        name="arm",
        code=ARM,
        summary="ARM: (C(b1) - C(b2)) (u - 1/2), b1 = 1[u > 1-p], b2 = 1[u < p]",
        reference="Yin & Zhou (2019), ICLR, arXiv:1807.11143",
        unbiased=True,
        noise="continuous",
        noise_size=_arm_noise,
        cells=True,
    )
)
register(
    Estimator(
        name="disarm",
        code=DISARM,
        summary="DisARM: 1/2 (C(b1) - C(b2)) 1[b1 != b2] (-1)^b2 sigmoid(|a|)",
        reference="Dong, Mnih & Tucker (2020), NeurIPS, arXiv:2006.10680",
        unbiased=True,
        noise="continuous",
        noise_size=_arm_noise,
        cells=True,
    )
)
register(
    Estimator(
        name="gumbel_st",
        code=GUMBEL_ST,
        summary="straight-through Gumbel: h = 1[a + L > 0], surrogate sigmoid'((a+L)/tau)/tau",
        reference="Jang, Gu & Poole (2017), ICLR, arXiv:1611.01144",
        unbiased=False,
        noise="continuous",
        options={"tau": 1.0},
        validators={"tau": check_positive("tau")},
        encode=_tau,
    )
)
register(
    Estimator(
        name="concrete",
        code=CONCRETE,
        summary="binary Concrete: relaxed h = sigmoid((a + L)/tau) passed on, backprop",
        reference="Maddison, Mnih & Teh (2017), ICLR, arXiv:1611.00712",
        unbiased=False,
        noise="continuous",
        options={"tau": 1.0},
        validators={"tau": check_positive("tau")},
        encode=_tau,
    )
)


def _two_draws(hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
    return 2 * int(sum(hidden))


register(
    Estimator(
        name="rebar",
        code=REBAR,
        summary="REBAR: REINFORCE with a conditional Concrete control variate (eta, tau)",
        reference="Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), NeurIPS, "
        "arXiv:1703.07370",
        unbiased=True,
        noise="continuous",
        options={"eta": 1.0, "tau": 0.5},
        validators={"eta": check_finite("eta"), "tau": check_positive("tau")},
        encode=lambda options: np.array([options["eta"], options["tau"]]),
        noise_size=_two_draws,
    )
)
register(
    Estimator(
        name="noisy_rectifier",
        code=NOISY_RECTIFIER,
        summary="noisy rectifier unit h = max(0, a + sigma z), pathwise gradient "
        "(a different model)",
        reference="Bengio, Léonard & Courville (2013), arXiv:1308.3432",
        unbiased=True,
        noise="continuous",
        options={"sigma": 1.0},
        validators={"sigma": check_positive("sigma")},
        encode=lambda options: np.array([options["sigma"]]),
        values=("01",),
        normal_noise=True,
    )
)
