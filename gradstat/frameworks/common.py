"""What the PyTorch and JAX adapters share: the estimator object, its checks, layer views.

A user's function ``fn(theta, x, t, u)`` returns a scalar surrogate loss whose gradient
with respect to ``theta`` is the estimate (``output="surrogate"``, the detach trick of
training code), or the estimate itself (``output="estimate"``, shape ``(n_params,)``).
``theta`` is the flat parameter vector in parameter order (:func:`layer_views` cuts it into
per-layer ``(W, b)``), ``x`` one input, ``t`` its target (a vector, or the class index for
``xent``), and ``u`` the ``N`` uniforms of one draw: unit ``k`` (layer 1 first) fires when
``u[k] < p[k]``, as in gradstat's own estimators.

**Which path runs.** With ``noise="discrete"`` the estimate may depend on ``u`` only
through the state it selects: gradstat then enumerates the ``2^N`` states and passes each
as its forcing uniforms (the middle of its cell of ``u``,
:func:`gradstat.engines.states.forcing_uniforms`), so moments are exact. That rests on
the declaration, which is checked before anything runs (:func:`check_declared_noise`).
With ``noise="continuous"`` (Gumbel, Concrete, ARM-type estimators: anything reading
``u`` beyond the state) moments are Monte Carlo, on gradstat's Philox uniforms: draw
``n`` of an adapter and of a built-in estimator read the same numbers for the same seed.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstat._validation import check_choice, check_int
from gradstat.engines.states import forcing_uniforms, layer_pass
from gradstat.estimators.registry import NOISE_KINDS
from gradstat.estimators.user import BatchedEstimator, check_name_and_claim
from gradstat.network import BinaryNetwork
from gradstat.network import _layer_slices as layer_slices
from gradstat.problem import Problem

SIGNATURE = "fn(theta, x, t, u)"
SIGNATURE_NET = "fn(theta, x, t, u, net)"
"""An estimator written for any architecture also takes ``net``, the
:class:`~gradstat.BinaryNetwork` being analysed, to read its ``sizes``, ``loss`` and
``values`` (its parameters are ``theta``)."""
OUTPUTS = ("surrogate", "estimate")

DECLARATION_DRAWS = 16
"""Draws per example (at most :data:`DECLARATION_EXAMPLES` examples) on which a
``noise="discrete"`` declaration is checked, from ``numpy.random.default_rng(0)``."""
DECLARATION_EXAMPLES = 4
DECLARATION_RTOL = 1e-9
"""Relative change (to the largest estimate entry, at least 1) within a state's cell of
``u`` that refutes ``noise="discrete"``: far above rounding, far below any real effect."""


def layer_views(theta: Any, sizes: BinaryNetwork | Sequence[int]) -> list[tuple[Any, Any]]:
    """``(W, b)`` per layer (``W`` of shape ``(n_l, n_{l-1})``), output layer last.

    Works on NumPy arrays, PyTorch tensors and JAX arrays alike (slices and reshapes only),
    so an estimator can read its parameters as layers inside ``vmap`` and ``grad``.
    """
    sizes = sizes.sizes if isinstance(sizes, BinaryNetwork) else tuple(sizes)
    slices = layer_slices(sizes)
    return [
        (theta[w].reshape(fan_out, fan_in), theta[b])
        for (w, b), fan_in, fan_out in zip(slices, sizes[:-1], sizes[1:])
    ]


class Backend:
    """A framework, imported when used: ``module`` raises an ``ImportError`` saying how
    to install it. Subclasses run a user's function on it (``value``, ``batched``)."""

    framework: str
    title: str
    install: str

    def __init__(self) -> None:
        self.module  # noqa: B018 (refuse at once, saying how to install, without it)

    @property
    def module(self) -> Any:
        """The framework's module (not kept: backends stay picklable for process pools)."""
        try:
            return importlib.import_module(self.framework)
        except ImportError:
            raise ImportError(
                f"gradstat.{self.framework}_estimator needs {self.title}. {self.install}"
            ) from None


def network_from_arrays(
    layers: Sequence[tuple[Any, Any]], *, loss: str, values: str
) -> BinaryNetwork:
    """A network from ``(W, b)`` per layer, ``W`` of shape ``(fan_out, fan_in)``, in order;
    the last pair is the deterministic output layer."""
    if len(layers) < 2:
        raise ValueError(
            f"a BinaryNetwork needs at least two linear layers (one stochastic layer and the "
            f"output layer), got {len(layers)}"
        )
    sizes = [int(np.shape(layers[0][0])[1])]
    parts = []
    for k, (W, b) in enumerate(layers):
        W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if W.ndim != 2 or W.shape[1] != sizes[-1] or b.shape != (W.shape[0],):
            raise ValueError(
                f"layer {k} has weight shape {W.shape} and bias shape {b.shape}; expected "
                f"({'n_out'}, {sizes[-1]}) and (n_out,): consecutive layers must chain"
            )
        sizes.append(W.shape[0])
        parts += [W.ravel(), b]
    return BinaryNetwork(tuple(sizes), np.concatenate(parts), loss=loss, values=values)


def check_signature(fn: Any, name: str) -> None:
    """Refuse a function that cannot be called as ``fn(theta, x, t, u)``."""
    if not callable(fn):
        raise TypeError(f"fn must be callable {SIGNATURE}, got {type(fn).__name__}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins and some wrappers have no signature: the probe call checks them
    for n_args in (4, 5):
        try:
            signature.bind(*range(n_args))
            return
        except TypeError:
            pass
    raise TypeError(
        f"estimator {name!r} must take the 4 arguments {SIGNATURE} (or 5, {SIGNATURE_NET}); "
        f"{getattr(fn, '__name__', 'fn')}{signature} does not"
    )


def takes_network(fn: Any) -> bool:
    """Whether ``fn`` takes a fifth argument, the network (:data:`SIGNATURE_NET`)."""
    try:
        signature = inspect.signature(fn)
        signature.bind(*range(5))
    except (TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True, eq=False)
class FrameworkEstimator(BatchedEstimator):
    """A user estimator written in PyTorch or JAX (:func:`gradstat.torch_estimator`,
    :func:`gradstat.jax_estimator`); see the module docstring."""

    function: Callable[..., Any] = field(repr=False)
    backend: Any = field(repr=False)
    name: str = ""
    unbiased: bool | None = None
    noise: str = "discrete"
    output: str = "surrogate"
    block_size: int | None = None
    vectorize: bool | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_name_and_claim(self.name, self.unbiased)
        if not self.name:
            object.__setattr__(self, "name", getattr(self.function, "__name__", "user"))
        check_signature(self.function, self.name)
        check_choice(self.noise, "noise", NOISE_KINDS)
        check_choice(self.output, "output", OUTPUTS)
        if self.block_size is not None:
            check_int(self.block_size, "block_size", minimum=1, maximum=2**30)
        if self.vectorize is not None and not isinstance(self.vectorize, bool):
            raise TypeError(f"vectorize must be True, False or None, got {self.vectorize!r}")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}  # compiled functions stay in their process
        return state

    @property
    def basis(self) -> str:
        """What the exact moments of this estimator rest on, in words."""
        if self.noise == "continuous":
            return (
                f"Monte Carlo on gradstat's Philox uniforms (declared noise='continuous'); "
                f"{self.backend.framework} draws pair with the built-ins' for the same seed"
            )
        return (
            "exact: every hidden state is passed to fn as its forcing uniforms (the middle "
            "of its cell of u); this rests on the declaration noise='discrete', checked on "
            f"{DECLARATION_DRAWS} draws per example before each run"
        )

    def _target(self, problem: Problem, example: int) -> Any:
        t = problem.T[example]
        return int(t[0]) if problem.net.loss == "xent" else t

    def _bound(self, net: BinaryNetwork) -> tuple[Any, Callable[..., Any]]:
        """A cache key and ``fn`` with the network bound (for :data:`SIGNATURE_NET`)."""
        if not takes_network(self.function):
            return None, self.function
        fn = self.function
        return (net.sizes, net.loss, net.values), lambda th, x, t, u: fn(th, x, t, u, net)

    def _compiled(self, net: BinaryNetwork, vectorize: bool | None = None) -> Callable[..., Any]:
        """The batched function ``(theta, x, t, U) -> (m, n_params)``, built once per
        architecture (``vectorize``: as the probe of :meth:`check_problem` decided)."""
        key, fn = self._bound(net)
        if vectorize is not None or key not in self._cache:
            if vectorize is None:
                vectorize = self.vectorize is not False
            self._cache[key] = (self.backend.batched(fn, self.output, vectorize), vectorize)
        return self._cache[key][0]

    def estimate_block(self, problem: Problem, example: int, U: np.ndarray) -> np.ndarray:
        """Estimates ``(m, n_params)`` of example ``example`` for uniforms ``U`` ``(m, N)``."""
        x, t = problem.X[example], self._target(problem, example)
        E = np.asarray(self._compiled(problem.net)(problem.theta, x, t, U), dtype=np.float64)
        P = problem.net.n_params
        if E.shape != (U.shape[0], P):
            raise ValueError(
                f"estimator {self.name!r} gave estimates of shape {E.shape[1:]} per draw; "
                f"they must have shape ({P},), the length of theta"
            )
        bad = ~np.all(np.isfinite(E), axis=1)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(
                f"estimator {self.name!r} returned NaN or infinite values (example {example}, "
                f"u = {np.array2string(U[i], precision=4)}); gradstat does not return "
                "non-finite results: fix fn (check logs and divisions at this u)"
            )
        return E

    def check_problem(self, problem: Problem, options: Any) -> None:
        """Probe ``fn`` on example 0's likelier state, then check a discrete declaration.

        The probe calls ``fn`` once unbatched and names the problem (it raised, its output
        has the wrong shape, or is not finite) before any enumeration; then it calls the
        batched form, falling back to a loop over draws where ``vmap`` cannot trace ``fn``
        (``vectorize=None``).
        """
        super().check_problem(problem, options)
        P = problem.net.n_params
        likely = layer_pass(problem, 0, u=np.full((1, problem.net.n_stochastic), 0.5))
        u = forcing_uniforms(likely.bits, likely.p)
        x, t = problem.X[0], self._target(problem, 0)
        where = f"estimator {self.name!r} ({SIGNATURE})"
        key, fn = self._bound(problem.net)
        try:
            value = np.asarray(self.backend.value(fn, problem.theta, x, t, u[0]))
        except Exception as err:
            raise ValueError(
                f"{where} raised {type(err).__name__}: {err} when called on a probe state "
                f"(example 0, every unit at its likelier value, u = {u[0]})"
            ) from None
        want = () if self.output == "surrogate" else (P,)
        if value.shape != want and not (self.output == "surrogate" and value.size == 1):
            what = "a scalar surrogate loss" if want == () else f"an estimate of shape ({P},)"
            raise ValueError(
                f"{where} returned shape {value.shape}; with output={self.output!r} it must "
                f"return {what}" + ("" if want == () else " (the length of theta)")
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{where} returned NaN or infinite values on a probe state")
        if key not in self._cache:
            self._probe_batched(problem, u)
        if self.noise == "discrete":
            check_declared_noise(self, problem)

    def _probe_batched(self, problem: Problem, u: np.ndarray) -> None:
        """Build the batched form, falling back to a loop where ``vmap`` fails."""
        try:
            self.estimate_block(problem, 0, np.repeat(u, 2, axis=0))
        except Exception:
            if self.vectorize is not None:
                raise
            self._compiled(problem.net, vectorize=False)
            self.estimate_block(problem, 0, np.repeat(u, 2, axis=0))

    def vectorized(self, net: BinaryNetwork) -> bool | None:
        """Whether the estimates on ``net``'s architecture run vectorised (``vmap``) or
        draw by draw; None before the first run."""
        entry = self._cache.get(self._bound(net)[0])
        return None if entry is None else entry[1]


def check_declared_noise(spec: FrameworkEstimator, problem: Problem) -> None:
    """Refuse ``noise="discrete"`` for an estimator that changes within a state's cell of ``u``.

    On :data:`DECLARATION_DRAWS` draws of random uniforms per example (seeded), compare
    the estimate with that at the forcing uniforms of the state they select; exact moments
    by enumeration are right only if the two agree.
    """
    rng = np.random.default_rng(0)
    N = problem.net.n_stochastic
    for b in range(min(problem.n_examples, DECLARATION_EXAMPLES)):
        U = rng.uniform(size=(DECLARATION_DRAWS, N))
        states = layer_pass(problem, b, u=U)
        U0 = forcing_uniforms(states.bits, states.p)
        E, E0 = spec.estimate_block(problem, b, U), spec.estimate_block(problem, b, U0)
        scale = max(1.0, float(np.max(np.abs(E0))))
        diff = np.abs(E - E0)
        if np.max(diff) > DECLARATION_RTOL * scale:
            i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
            raise ValueError(
                f"estimator {spec.name!r} is declared noise='discrete', but its estimate "
                f"changes within a state's cell of u: at u = {np.array2string(U[i], precision=4)}"
                f" (example {b}) parameter {j} is {E[i, j]:.6g}, and {E0[i, j]:.6g} at the "
                f"middle of the same state's cell, u = {np.array2string(U0[i], precision=4)}. "
                "Exact enumeration would be wrong: declare noise='continuous' (Monte Carlo), "
                "or let the estimate depend on u only through the state (u < p)"
            )
