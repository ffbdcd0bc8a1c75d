"""Estimator objects and the registry of built-in estimators.

The engines ask an estimator object what they need (its exact engine, how many noise
states it has, what noise it reads, its unit mode, its kernel options, the reference its
bias is measured against) instead of branching on its kind. :class:`EstimatorBase` holds
the answers for user estimators (:mod:`gradstat.estimators.user`); :class:`Estimator`, a
registered built-in, overrides them from its registry entry. Each family module
(``straight_through``, ``score_function``, ...) defines its entries beside its kernels;
:mod:`gradstat.estimators` registers them in the order reports list them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstat._registry import add_unique
from gradstat._validation import MAX_PARAMS, describe_power
from gradstat.estimators.codes import REINFORCE, SCORE, SURROGATE, SURROGATES
from gradstat.kernels.forward import SMOOTH
from gradstat.network import BinaryNetwork
from gradstat.problem import Problem, check_magnitudes

MAX_NOISE = MAX_PARAMS
"""The most numbers one draw may read per example (67,108,864): the sampling kernels hold
them in every thread's scratch."""

NORMAL_LIMIT = 40.0
"""The largest ``|z|`` accepted as a standard-normal draw (probability below 1e-340), and
the bound the magnitude checks assume for the noisy rectifier's noise."""


class StateCount(int):
    """A number of states ``base ** exponent``, written as a power when it is long.

    Above ``2^1024`` the int value is capped at ``2^1024`` (far above any ``max_states``,
    so comparisons still refuse), and nothing of the size of the true count is built.
    """

    base: int
    exponent: int

    def __new__(cls, base: int, exponent: int) -> StateCount:
        exact = exponent * math.log2(base) <= 1024
        self = super().__new__(cls, base**exponent if exact else 2**1024)
        self.base, self.exponent = base, exponent
        return self

    def __format__(self, spec: str) -> str:
        if self.exponent * math.log10(self.base) <= 30:
            return int.__format__(int(self), spec)
        return describe_power(self.base, self.exponent)

    def __str__(self) -> str:
        return format(self, "")

    __repr__ = __str__


NOISE_KINDS = ("discrete", "continuous")
"""``"discrete"``: the estimate depends on the sampled states only (exact moments by
enumeration); ``"continuous"``: it reads the uniforms themselves (Monte Carlo)."""


class EstimatorBase:
    """What every estimator answers to the engines; the defaults describe user estimators.

    A user estimator writes its estimate in the docs/model.md layout (``full_layout``), has no
    kernel code (``code = -1``) and no options beyond what its function takes.
    """

    name: str
    unbiased: bool | None
    noise: str
    code: int = -1
    """The integer the built-in kernels dispatch on (:mod:`gradstat.estimators.codes`)."""
    jitted: Any = None
    """A user's jitted per-state function (:func:`gradstat.per_state_estimator`), or None."""
    full_layout: bool = True
    """Estimates come in the docs/model.md layout (user estimators) rather than the kernels'
    compressed one (:mod:`gradstat.kernels.forward`)."""
    draws_own_noise: bool = False
    """A plain Python function drawing from the ``rng`` it is given: no seeded stream,
    no enumeration, no given noise."""
    normal_noise: bool = False
    smooth: bool = False
    affine_in_cells: bool = False
    """See :class:`Estimator`: only built-in estimators have cells."""
    quadrature: bool = False
    """Exact mean and variance by quadrature per unit (built-in Gumbel estimators only)."""
    values: tuple[str, ...] = ("01", "pm1")
    batched: bool = False
    """Computes blocks of estimates from blocks of uniforms in one call
    (:class:`gradstat.estimators.user.BatchedEstimator`: estimators written in PyTorch or
    JAX), which the engines enumerate and sample through :mod:`gradstat.engines.states`."""
    own_model: bool = False
    """Estimates the gradient of a different model (the noisy rectifier): its bias is
    measured against that model's own gradient (:meth:`own_gradient`)."""

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validated options with defaults filled in (a user function takes them as given)."""
        return dict(options)

    def check_values(self, net: BinaryNetwork) -> None:
        """Refuse a network whose unit values the estimator is not defined for."""
        if net.values not in self.values:
            raise ValueError(
                f"estimator {self.name!r} is not defined for units with "
                f"values={net.values!r}; it takes networks with values in {self.values} "
                f"(build the network with values='01')"
            )

    def encode(self, options: Mapping[str, Any]) -> np.ndarray:
        """Resolved options -> the float array the kernels read (``opts``)."""
        return np.zeros(1)

    def noise_size(self, hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
        """Numbers drawn per example and draw (one uniform per stochastic unit here)."""
        return int(sum(hidden))

    def draws_per_estimate(self, options: Mapping[str, Any]) -> int:
        """Independent states one estimate reads (``k`` of leave-one-out REINFORCE)."""
        return 1

    def exact_engine(self, n_layers: int) -> str | None:
        """``"joint"`` (noise states), ``"cells"`` (cells of ``u``) or None (Monte Carlo)."""
        return "joint" if self.noise == "discrete" and not self.draws_own_noise else None

    def exact_refusal(self) -> str:
        """Why :meth:`exact_engine` is None, in words."""
        return "it has continuous or undeclared noise"

    def exact_count(self, hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
        """Noise states (or cells) an exact computation sums over per example (a
        :class:`StateCount`, safe to compare and print however large)."""
        return StateCount(2, self.noise_size(hidden, options))

    def check_problem(self, problem: Problem, options: Mapping[str, Any]) -> None:
        """Refuse, before any kernel runs, a problem the estimator cannot run on.

        Checks the unit values (:meth:`check_values`) and that one draw reads at most
        :data:`MAX_NOISE` numbers per example; estimators add their own checks.
        """
        self.check_values(problem.net)
        size = self.noise_size(problem.net.hidden_sizes, options)
        if size > MAX_NOISE:
            per = self.draws_per_estimate(options)
            why = (
                f" ({per:,} draws of {problem.net.n_stochastic:,} units: option k)"
                if per > 1
                else ""
            )
            raise ValueError(
                f"estimator {self.name!r} reads {size:,} numbers per example and draw on this "
                f"network{why}, more than the {MAX_NOISE:,} the sampling kernels hold per "
                f"draw; use a smaller network" + (" or a smaller k" if per > 1 else "")
            )

    def layerwise_family(self) -> str | None:
        """``"score"``, ``"surrogate"`` or None: whether messages over adjacent layers give
        the exact moments (:mod:`gradstat.engines.messages`)."""
        return None

    def layerwise_refusal(self) -> str:
        """Why :meth:`layerwise_family` is None, in words."""
        return (
            "only REINFORCE and the straight-through-type estimators (st, st_sigmoid, "
            "st_tempered, reinmax) are sums over adjacent layers' states"
        )

    def state_cost(self, net: BinaryNetwork) -> int:
        """Work per enumerated state: a full estimate, ``n_params`` updates."""
        return net.n_params

    def unit_mode(self, mode: int) -> int:
        """The forward pass's unit mode: STS's smooth units, else the network's ``mode``."""
        return SMOOTH if self.smooth else mode

    def check_noise(self, u: np.ndarray) -> None:
        """Refuse given noise the estimator cannot read (here: uniforms outside [0, 1])."""
        if not np.all((u >= 0.0) & (u <= 1.0)):
            raise ValueError("u must hold uniforms in [0, 1]")

    def check_result(self, **values: np.ndarray | float) -> None:
        """Refuse non-finite results (means, variances, metrics) of this estimator.

        ``values`` maps a name (``mean``, ``var``, ``draws``, ...) to what was computed.
        Finite estimates whose squares overflow give a finite mean but a non-finite
        variance; the message then says that the estimates are too large for variances.
        """
        bad = [k for k, v in values.items() if v is not None and not np.all(np.isfinite(v))]
        if not bad:
            return
        means = [np.asarray(v) for k, v in values.items() if k in ("mean", "draws", "estimate")]
        finite = [m for m in means if m.size and np.all(np.isfinite(m))]
        largest = max((float(np.max(np.abs(m))) for m in finite), default=0.0)
        if finite and all(k not in ("mean", "draws", "estimate", "gradient") for k in bad):
            raise ValueError(
                f"estimator {self.name!r} produced estimates up to {largest:.3g} in magnitude: "
                f"their squares overflow float64 (beyond about 1.3e154), so their "
                f"{' and '.join(bad)} cannot be computed; keep the estimates below about "
                "1e154 (rescale the problem: smaller parameters, inputs or targets; or the "
                "estimator and its options)"
            )
        source = (
            "its per-state function wrote NaN or infinite values, or values that overflow"
            if self.jitted is not None
            else "some estimates overflow float64 or are undefined"
        )
        raise ValueError(
            f"estimator {self.name!r} produced NaN or infinite {' and '.join(bad)} on this "
            f"problem ({source}); gradstat does not return non-finite results: fix the "
            "estimator, or rescale the problem (smaller parameters, inputs or targets)"
        )

    def own_gradient(self, problem: Problem, options: Mapping[str, Any]) -> np.ndarray | None:
        """Per-example exact gradients of the estimator's own model (``own_model`` only),
        or None where no closed form exists."""
        return None


def _no_options(options: Mapping[str, Any]) -> np.ndarray:
    return np.zeros(1)


def _one_draw(hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
    return int(sum(hidden))


@dataclass(frozen=True)
class Estimator(EstimatorBase):
    """A registered gradient estimator.

    Attributes
    ----------
    name : str
        The name accepted by :func:`gradstat.analyze` and friends.
    code : int
        The integer the jitted kernels dispatch on (:mod:`gradstat.estimators.codes`).
    summary : str
        One line: what the estimator does, in the model's notation.
    reference : str
        The paper it comes from (cited here only).
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
    affine_in_cells : bool
        With ``cells``: the estimate is affine in ``u`` within a cell (ARM), not constant
        (DisARM). The cells engine evaluates it at the cell midpoints; its descent
        probability needs each cell's uniform-sum tail
        (:mod:`gradstat.engines.arm_descent`) and its noise split a within-cell residual.
    normal_noise : bool
        Draws standard normals instead of uniforms.
    quadrature : bool
        Given the sampled bits, each unit's surrogate depends on its own logistic noise
        only, so exact means and variances follow from the ``2^N`` states and one
        one-dimensional integral per unit (``engine="quadrature"``,
        :mod:`gradstat.engines.quadrature`): ``gumbel_st`` and ``gumbel_rao``.
    layerwise : bool
        Its exact mean and variance can be computed by messages over adjacent layers'
        states: the estimate is a sum over layers of terms that depend on the layer
        states only through adjacent pairs, and the next layer sees only the current
        layer's state (straight-through-type surrogates, REINFORCE). False for STS, whose
        real-valued outputs ``b sqrt(p(a))`` carry the layer below.
    own_model_gradient : callable or None
        For an estimator of a different model (the noisy rectifier):
        ``(problem, options) -> (B, n_params)`` exact gradients of that model, or None
        where no closed form exists.
    unit_bound : callable or None
        For an estimator whose units pass on values outside ``[-1, 1]`` (the noisy
        rectifier, MuProp's expansion point): ``(a_bound, options) -> h_bound``, a bound
        on the values a layer passes on given a bound on its ``|a|``; the forward pass is
        then bounded with it (:func:`gradstat.problem.check_magnitudes`) before anything
        runs.
    """

    name: str
    code: int = field()  # required: field() hides the base class's default
    summary: str = field()
    reference: str = field()
    unbiased: bool = field()
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
    affine_in_cells: bool = False
    normal_noise: bool = False
    quadrature: bool = False
    layerwise: bool = False
    own_model_gradient: Callable[[Problem, Mapping[str, Any]], np.ndarray | None] | None = field(
        default=None, repr=False
    )
    unit_bound: Callable[[np.ndarray, Mapping[str, Any]], np.ndarray | float] | None = field(
        default=None, repr=False
    )

    full_layout = False

    @property
    def own_model(self) -> bool:  # type: ignore[override]
        return self.own_model_gradient is not None

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

    def draws_per_estimate(self, options: Mapping[str, Any]) -> int:
        return int(options.get("k", 1))

    def exact_engine(self, n_layers: int) -> str | None:
        if self.noise == "discrete":
            return "joint"
        if self.cells and n_layers == 1:
            return "cells"
        return None

    def exact_refusal(self) -> str:
        if self.cells:
            return "its ARM cells are enumerated for one stochastic layer only"
        return super().exact_refusal()

    def exact_count(self, hidden: tuple[int, ...], options: Mapping[str, Any]) -> int:
        if self.cells:
            return StateCount(3, int(sum(hidden)))
        return StateCount(2, self.noise_size(hidden, options))

    def check_problem(self, problem: Problem, options: Mapping[str, Any]) -> None:
        super().check_problem(problem, options)
        if self.unit_bound is None:
            return
        bound = self.unit_bound
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
        check_magnitudes(
            problem,
            unit=lambda layer, a_bound: bound(a_bound, options),
            cause=f"estimator {self.name!r} with {shown} is out of range for this problem",
            fix="use an option closer to 1 or smaller parameters",
        )

    def layerwise_family(self) -> str | None:
        if not self.layerwise:
            return None
        return SCORE if self.code == REINFORCE else SURROGATE

    def layerwise_refusal(self) -> str:
        if self.smooth:
            return (
                "STS passes on h = b sqrt(p(a)), which depends on the layer below, so its "
                "estimate is not a function of adjacent layers' states (not Markov)"
            )
        return super().layerwise_refusal()

    def state_cost(self, net: BinaryNetwork) -> int:
        """About ``N + n_out n_L`` for REINFORCE and the straight-through-type estimators
        (per-unit sums, :mod:`gradstat.engines.factored`), ``n_params`` for the others."""
        if self.code == REINFORCE or self.code in SURROGATES:
            return net.n_stochastic + net.n_out * (net.hidden_sizes[-1] + 1)
        return net.n_params

    def check_noise(self, u: np.ndarray) -> None:
        if self.normal_noise:
            if not np.all(np.isfinite(u)) or not np.all(np.abs(u) <= NORMAL_LIMIT):
                raise ValueError(
                    f"u must hold finite standard-normal draws, within +-{NORMAL_LIMIT:g} "
                    "(a larger draw has probability below 1e-340)"
                )
        elif self.noise == "continuous":
            if not np.all((u > 0.0) & (u < 1.0)):
                raise ValueError(
                    f"u must hold uniforms strictly inside (0, 1) for {self.name!r} (its "
                    "logistic noise log u - log1p(-u) is infinite at 0 and 1)"
                )
        else:
            super().check_noise(u)

    def own_gradient(self, problem: Problem, options: Mapping[str, Any]) -> np.ndarray | None:
        if self.own_model_gradient is None:
            return None
        return self.own_model_gradient(problem, options)


_REGISTRY: dict[str, Estimator] = {}


def register(estimator: Estimator) -> Estimator:
    """Add an estimator to the registry (its name must be new)."""
    name = getattr(estimator, "name", None)
    return add_unique(_REGISTRY, name, estimator, Estimator, "register",
                      f"an estimator named {name!r}")  # fmt: skip


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
