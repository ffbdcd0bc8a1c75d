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
        ...  # write the estimate for this state into out (n_params,), docs/model.md order

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

**Checks.** A plain Python estimator's every return value must be an array of real
numbers (complex ones are refused, never truncated). A per-state function must take the
12 arguments above, and before any kernel calls it, it is called once on a probe state
(example 0, every unit at its likelier value) with exactly the argument types the kernels
pass: a function that does not compile for them is refused with a ``TypeError``, one that
raises with a ``ValueError``, each naming it and the signature. Results that are NaN or
infinite (or estimates too large to square) are refused after the run.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba.core.errors import NumbaError

from gradstat._validation import check_array, check_bool, check_choice
from gradstat.estimators.registry import NOISE_KINDS, EstimatorBase, get_estimator
from gradstat.problem import Problem, sample_state

SIGNATURE = "fn(theta, sizes, x, t, u, a, p, h, y, dy, C, out)"
"""The signature of a per-state estimator (see the module docstring)."""


@dataclass(frozen=True)
class CheckedCall:
    """A plain Python estimator's function, whose every return value is checked.

    The value must be an array of real numbers (complex ones are refused, not truncated);
    it is returned as float64. Shape and finiteness are checked by the sampler.
    """

    function: Callable[..., Any]
    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return check_array(
            self.function(*args, **kwargs),
            f"the estimate returned by estimator {self.name!r}",
            finite=False,
        )


def check_name_and_claim(name: Any, unbiased: Any) -> None:
    """A user estimator's ``name`` (a string) and ``unbiased`` claim (a bool or None)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__} {name!r}")
    if unbiased is not None:
        check_bool(unbiased, "unbiased")


def no_options(what: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse options for an estimator that takes none (its function holds them)."""
    if options:
        raise TypeError(f"{what} takes no options, got {sorted(options)}")
    return {}


class BatchedEstimator(EstimatorBase):
    """An estimator that computes a block of estimates from a block of uniforms at once.

    Estimators written in PyTorch or JAX (:mod:`gradstat.frameworks`) are of this kind:
    :meth:`estimate_block` maps uniforms ``U`` of shape ``(m, N)`` (row ``i`` one draw's
    uniforms for one example; unit ``k`` fires when ``U[i, k] < p[k]``) to the ``m``
    estimates in the full parameter layout. The engines enumerate states for it with forcing
    uniforms, or pass it gradstat's Philox uniforms (:mod:`gradstat.engines.states`).
    """

    batched = True
    block_size: int | None = None
    """States (or draws) per call of :meth:`estimate_block`; None: the engines' default."""

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return no_options(f"estimator {self.name!r}", options)

    def estimate_block(self, problem: Problem, example: int, U: np.ndarray) -> np.ndarray:
        """Estimates ``(m, n_params)`` of example ``example`` for uniforms ``U`` ``(m, N)``."""
        raise NotImplementedError


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
        check_name_and_claim(self.name, self.unbiased)
        if not self.name:
            object.__setattr__(self, "name", getattr(self.function, "__name__", "user"))
        if not isinstance(self.function, CheckedCall):
            object.__setattr__(self, "function", CheckedCall(self.function, self.name))


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
        check_choice(self.noise, "noise", NOISE_KINDS)
        check_name_and_claim(self.name, self.unbiased)
        if not self.name:
            object.__setattr__(self, "name", self.function.py_func.__name__)
        try:
            inspect.signature(self.function.py_func).bind(*range(12))
        except TypeError:
            raise TypeError(
                f"per-state estimator {self.name!r} must take the 12 arguments {SIGNATURE}; "
                f"{self.function.py_func.__name__}"
                f"{inspect.signature(self.function.py_func)} does not"
            ) from None

    @property
    def jitted(self) -> Any:  # type: ignore[override]
        return self.function

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return no_options(f"per-state estimator {self.name!r}", options)

    def check_problem(self, problem: Problem, options: Mapping[str, Any]) -> None:
        """Call the function once, on example 0's likelier state, before any kernel does.

        The call compiles it for exactly the argument types the kernels pass, so a
        function that does not compile for them, or that raises, is refused here with a
        ``TypeError`` or ``ValueError`` naming it and its expected signature, instead of
        failing inside the compiled loops.
        """
        super().check_problem(problem, options)
        net = problem.net
        u = np.full(net.n_stochastic, 0.5)  # every unit takes its likelier value
        state = sample_state(problem, 0, u)
        given = u if self.noise == "continuous" else np.empty(0)
        out = np.zeros(net.n_params)
        args = (problem.theta, problem.sizes, problem.X[0], problem.T[0], given, state.a,
                state.p, state.h, state.y, state.dy, state.loss, out)  # fmt: skip
        where = f"per-state estimator {self.name!r} ({SIGNATURE})"
        try:
            self.function(*args)
        except NumbaError as err:
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            cause = next((line for line in lines[1:] if not line.startswith("File")), "")
            place = next((line.rstrip(":") for line in lines if line.startswith("File")), "")
            raise TypeError(
                f"{where} does not compile for the arguments gradstat passes (float64 arrays "
                f"theta, x, t, u, a, p, h, y, dy and out, int64 array sizes, float C): "
                f"{cause or lines[0]}" + (f" ({place})" if place else "")
            ) from None
        except Exception as err:
            raise ValueError(
                f"{where} raised {type(err).__name__}: {err} when called on a probe state "
                f"(example 0, every unit at its likelier value); fix it (call "
                f"{self.function.py_func.__name__}.py_func with the same arguments to debug "
                f"it in plain Python)"
            ) from None


@contextmanager
def guard_engines(spec: EstimatorBase) -> Iterator[None]:
    """Run the engines for ``spec`` with numpy's overflow warnings off, and turn an
    exception a user's jitted function raised inside the parallel kernels (which numba
    reports as ``SystemError``) into a ``ValueError`` naming the estimator.

    Overflows are not hidden: every caller checks the results afterwards
    (:meth:`~gradstat.estimators.registry.EstimatorBase.check_result`) and refuses
    non-finite ones with a message saying why.
    """
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            yield
    except SystemError as err:
        if spec.jitted is None:
            raise
        raise ValueError(
            f"per-state estimator {spec.name!r} ({SIGNATURE}) raised an exception inside "
            f"gradstat's compiled loops on some state ({err}); call its .py_func on that "
            "state in plain Python to see it"
        ) from None


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


def import_estimator(path: str) -> EstimatorBase:
    """The estimator object named by ``"package.module:attribute"`` (for grids and the
    command line, which name estimators by strings)."""
    module, _, attribute = path.partition(":")
    if not module or not attribute.isidentifier():
        raise ValueError(
            f"estimator {path!r} is neither a registered name nor an importable one "
            "'package.module:attribute'"
        )
    try:
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"estimator {path!r} cannot be imported: {err}") from None
    if not isinstance(found, EstimatorBase):
        raise TypeError(
            f"estimator {path!r} is a {type(found).__name__}, not an estimator object (wrap "
            "the function: gradstat.torch_estimator, gradstat.jax_estimator or "
            "gradstat.per_state_estimator)"
        )
    return found


def resolve_estimator(
    estimator: Any, options: Mapping[str, Any]
) -> tuple[EstimatorBase, dict[str, Any]]:
    """The estimator object and its validated options, for a name, object or callable."""
    if isinstance(estimator, str):
        estimator = import_estimator(estimator) if ":" in estimator else get_estimator(estimator)
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
