"""Estimators written by users.

Two contracts, accepted everywhere an estimator name is (``analyze``,
``estimator_moments``, ``sample_gradients``, ``gradstat.stats``, ``gradstat.testing``):

**A plain Python callable** ``f(net, x, t, rng, **options) -> ndarray (n_params,)``: one
draw of the estimate for one example (``x`` of shape ``(n_in,)``, ``t`` that example's
target, ``rng`` a ``numpy.random.Generator``). Its noise is unknown to gradstat, so it is
measured by Monte Carlo. Pass the function itself, or wrap it with
:func:`python_estimator` to give it a name.

**A jitted per-state function**, wrapped with :func:`per_state_estimator`::

    @numba.njit
    def fn(theta, sizes, x, t, u, a, p, h, y, dy, loss_value, out):
        ...  # write the estimate for this state into out (n_params,), SPEC order

It receives the flat parameters ``theta``, ``sizes`` (int64), the example's input ``x``
and target row ``t`` (for ``xent`` a one-element array holding the class), and for the
sampled state: pre-activations ``a``, probabilities ``p = sigmoid(a)`` and unit values
``h`` (each of length ``N``, layer 1 first), the output ``y``, ``dy = dC/dy`` and the loss
``C``. It runs inside the jitted kernels at compiled speed. With ``noise="discrete"``
(the default) the estimate must be a function of the state alone: gradstat then
enumerates the ``2^N`` states for exact moments, and samples states for Monte Carlo. With
``noise="continuous"`` it may also use ``u``, the ``N`` uniforms that drew the state (unit
``k`` fires when ``u[k] < p[k]``); it is then measured by Monte Carlo only. ``u`` is
empty during enumeration. :mod:`gradstat.kernels.forward` has jitted building blocks
(``offsets``, ``forward_state``, ``loss_and_grad``, ``backprop_surrogate``) for
estimators that need the loss at other states.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gradstat.estimators.registry import NOISE_KINDS, EstimatorBase, get_estimator


@dataclass(frozen=True)
class PythonEstimator(EstimatorBase):
    """A user estimator given as ``f(net, x, t, rng, **options) -> (n_params,)``."""

    function: Callable[..., Any] = field(repr=False)
    name: str = ""
    unbiased: bool | None = None
    noise: str = "continuous"

    draws_own_noise = True

    def __post_init__(self) -> None:
        if not callable(self.function):
            raise TypeError(f"function must be callable, got {self.function!r}")
        if not self.name:
            object.__setattr__(self, "name", getattr(self.function, "__name__", "user"))


@dataclass(frozen=True)
class PerStateEstimator(EstimatorBase):
    """A user estimator given as a jitted per-state function (see the module docstring)."""

    function: Any = field(repr=False)
    name: str = ""
    unbiased: bool | None = None
    noise: str = "discrete"

    def __post_init__(self) -> None:
        if not hasattr(self.function, "py_func"):
            raise TypeError(
                "per_state_estimator needs a numba-jitted function (decorate it with "
                "@numba.njit); for a plain Python function pass it directly instead"
            )
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS}, got {self.noise!r}")
        if not self.name:
            object.__setattr__(self, "name", self.function.py_func.__name__)

    @property
    def jitted(self) -> Any:  # type: ignore[override]
        return self.function

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        if options:
            raise TypeError(
                f"per-state estimator {self.name!r} takes no options, got {sorted(options)}"
            )
        return {}


def python_estimator(
    function: Callable[..., Any], *, name: str = "", unbiased: bool | None = None
) -> PythonEstimator:
    """Wrap ``f(net, x, t, rng, **options)`` as a named user estimator (Monte Carlo)."""
    return PythonEstimator(function, name=name, unbiased=unbiased)


def per_state_estimator(
    function: Any, *, name: str = "", noise: str = "discrete", unbiased: bool | None = None
) -> PerStateEstimator:
    """Wrap a jitted per-state function ``fn(theta, sizes, x, t, u, a, p, h, y, dy, C, out)``.

    ``noise="discrete"`` promises that the estimate depends on the sampled state only, so
    its moments can be enumerated exactly; ``"continuous"`` allows it to use ``u`` and
    restricts it to Monte Carlo. ``unbiased`` records a claim that
    :func:`gradstat.testing.check_estimator_contract` will hold it to.
    """
    return PerStateEstimator(function, name=name, noise=noise, unbiased=unbiased)


def resolve_estimator(
    estimator: Any, options: Mapping[str, Any]
) -> tuple[EstimatorBase, dict[str, Any]]:
    """The estimator object and its validated options, for a name, object or callable."""
    if isinstance(estimator, str):
        estimator = get_estimator(estimator)
    if isinstance(estimator, EstimatorBase):
        return estimator, estimator.resolve_options(options)
    if hasattr(estimator, "py_func"):
        raise TypeError(
            "a numba-jitted estimator must be wrapped: "
            "gradstat.per_state_estimator(fn) (see its docstring for the signature)"
        )
    if callable(estimator):
        return PythonEstimator(estimator), dict(options)
    raise TypeError(
        "estimator must be a registered name, gradstat.per_state_estimator(fn), or a "
        f"callable f(net, x, t, rng) -> ndarray; got {type(estimator).__name__}"
    )
