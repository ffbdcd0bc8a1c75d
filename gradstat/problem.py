"""A validated problem (network, inputs, targets) in the plain arrays the kernels take.

Kernels write estimates in the *compressed* layout (``theta``'s layout without the
``W_1`` block, see :mod:`gradstat.kernels.forward`); this module expands per-example compressed
quantities back to the full parameter layout (docs/model.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from gradstat._validation import MAGNITUDE_LIMIT, MAX_STATES_LIMIT, check_int, describe_power
from gradstat.kernels.forward import (
    BITS,
    PM1,
    forward_state,
    layer1_table,
    loss_and_grad,
    offsets,
)
from gradstat.network import LOSSES, BinaryNetwork, as_batch, layer_bounds, refuse_bounds

DEFAULT_MAX_STATES = 2**24
"""Default cap on the number ``2^N`` of joint hidden states enumerated per example."""


@dataclass(frozen=True, eq=False)
class Problem:
    """A network with a validated batch, as kernel-ready arrays."""

    net: BinaryNetwork
    X: np.ndarray
    T: np.ndarray
    theta: np.ndarray
    sizes: np.ndarray
    loss_code: int
    A1: np.ndarray

    @property
    def n_examples(self) -> int:
        return self.X.shape[0]

    @property
    def mode(self) -> int:
        """The forward pass's unit mode: ``PM1`` for ``values="pm1"``, else ``BITS``."""
        return PM1 if self.net.values == "pm1" else BITS

    @property
    def low(self) -> float:
        """The value a unit passes on when it does not fire: 0, or -1 for ``"pm1"``."""
        return -1.0 if self.net.values == "pm1" else 0.0

    @property
    def n_compressed(self) -> int:
        """Length of the compressed layout: ``n_params - n_1 * n_in``."""
        return self.net.n_params - self.net.sizes[0] * self.net.sizes[1]

    def work(self) -> int:
        """State-coordinate updates of one enumeration: ``B * 2^N * n_compressed``."""
        return self.n_examples * 2**self.net.n_stochastic * self.n_compressed

    def segment_starts(self, full: bool = False) -> np.ndarray:
        """Start of layers ``1..L`` and the output layer, then the end, in the layout."""
        s0 = 0 if full else self.net.sizes[0] * self.net.sizes[1]
        starts = [0]
        for w, _ in self.net.layer_slices()[1:]:
            starts.append(w.start - s0)
        starts.append(self.net.n_params - s0)
        return np.asarray(starts, dtype=np.int64)

    def descent_weights(self, gradient: np.ndarray, full: bool = False) -> np.ndarray:
        """Weights ``w`` with ``<g_hat, g> = <e, w>`` for estimates ``e`` in the layout.

        In the compressed layout the weight on ``b_1`` is ``G_i (1 + ||x||^2)`` because
        ``W_1``'s estimate and gradient are ``outer(., x)`` of those of ``b_1``.
        """
        w = gradient.copy()
        if not full:
            n1 = self.net.sizes[1]
            w[:, :n1] *= 1.0 + np.sum(self.X**2, axis=1)[:, None]
        return w


def check_network(net: Any) -> BinaryNetwork:
    """``net`` if it is a :class:`~gradstat.BinaryNetwork`, else a TypeError naming it."""
    if not isinstance(net, BinaryNetwork):
        raise TypeError(f"net must be a gradstat.BinaryNetwork, got {type(net).__name__}")
    return net


def make_problem(net: BinaryNetwork, x: Any, t: Any) -> Problem:
    """Validate ``net``, ``x`` and ``t`` and precompute layer 1's pre-activations.

    Besides shapes and finiteness, the magnitudes are bounded (:func:`check_magnitudes`),
    so that no pre-activation, output or loss of any state overflows float64.
    """
    check_network(net)
    X, T = as_batch(net, x, t)
    W1, b1 = net.layers()[0]
    A1 = np.ascontiguousarray(X @ W1.T + b1) if net.n_in else np.tile(b1, (X.shape[0], 1))
    problem = Problem(
        net=net,
        X=X,
        T=T,
        theta=np.ascontiguousarray(net.params),
        sizes=np.asarray(net.sizes, dtype=np.int64),
        loss_code=LOSSES[net.loss],
        A1=np.ascontiguousarray(A1),
    )
    check_magnitudes(problem)
    return problem


LOSS_LIMIT = MAGNITUDE_LIMIT**2
"""The largest loss bound accepted (1e300): losses, their differences and the weighted
sums of the exact engines stay finite."""


def first_layer_bound(problem: Problem) -> np.ndarray:
    """``|W_1| |x| + |b_1|`` per example ``(B, n_1)``: a bound on ``|a_1|``."""
    W1, b1 = problem.net.layers()[0]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.abs(problem.X) @ np.abs(W1).T + np.abs(b1)


def loss_bound(problem: Problem, y_bound: np.ndarray) -> np.ndarray:
    """A bound ``(B,)`` on the loss of every state, given bounds ``(B, n_out)`` on ``|y|``."""
    T = problem.T
    loss = problem.net.loss
    with np.errstate(over="ignore", invalid="ignore"):
        if loss == "mse":
            return 0.5 * np.sum((y_bound + np.abs(T)) ** 2, axis=1)
        if loss == "linear":
            return np.sum(np.abs(T) * y_bound, axis=1)
        if loss == "bce":  # softplus(y) - t y <= (1 + |t|) |y| + log 2
            return np.sum(y_bound * (1.0 + np.abs(T)) + np.log(2.0), axis=1)
        # xent: logsumexp(y) - y_t <= 2 max |y| + log n_out
        return 2.0 * np.max(y_bound, axis=1) + np.log(y_bound.shape[1])


def check_magnitudes(
    problem: Problem,
    unit: Callable[[int, np.ndarray], np.ndarray | float] | None = None,
    cause: str = "",
    fix: str = "",
) -> None:
    """Refuse a problem whose pre-activations, outputs or loss could overflow float64.

    Bounds by the triangle inequality (:func:`gradstat.network.layer_bounds`): every
    ``|a_l|`` and ``|y|`` must stay within :data:`MAGNITUDE_LIMIT` (1e150, so that their
    squares are finite) and the loss within :data:`LOSS_LIMIT` (1e300). ``unit`` bounds
    the values an estimator's units pass on when they are not within ``[-1, 1]`` (the
    noisy rectifier, MuProp's expansion point); ``cause`` and ``fix`` then name the
    option in the message.
    """
    bounds = layer_bounds(problem.net.layers(), first_layer_bound(problem), unit)
    if unit is None:
        first = ("x is too large for this network's first layer", "scale x (or W_1 and b_1) down")
        refuse_bounds(bounds, "params are too large", "scale the parameters down", first=first)
        cause = "the targets t or the output layer are too large"
        fix = "scale t or the output layer's parameters down"
    else:
        refuse_bounds(bounds, cause, fix)
    largest = float(np.max(loss_bound(problem, bounds[-1])))
    if not largest <= LOSS_LIMIT:
        raise ValueError(
            f"{cause}: the {problem.net.loss!r} loss can reach {largest:.3g} (outputs up to "
            f"{float(np.max(bounds[-1])):.3g}, targets up to "
            f"{float(np.max(np.abs(problem.T))):.3g}), more than {LOSS_LIMIT:g}, beyond "
            f"which its sums overflow float64; {fix}"
        )


def states_error(reason: str, advice: str) -> ValueError:
    """The ``ValueError`` of an enumeration past ``max_states``: ``reason`` (kept as its
    ``states_reason`` attribute, so that a caller can give other advice), then ``advice``."""
    err = ValueError(f"{reason}. {advice}")
    err.states_reason = reason  # type: ignore[attr-defined]
    return err


@contextmanager
def states_advice(advice: str) -> Iterator[None]:
    """Give an enumeration refused past ``max_states`` (:func:`states_error`) inside the
    block ``advice`` that fits the caller instead of the generic one."""
    try:
        yield
    except ValueError as err:
        reason = getattr(err, "states_reason", None)
        if reason is None:
            raise
        raise states_error(reason, advice) from None


def check_max_states(max_states: Any) -> int:
    """``max_states`` as an int in ``[1, 2^62]`` (the kernels index states with int64)."""
    return check_int(max_states, "max_states", minimum=1, maximum=MAX_STATES_LIMIT)


def check_states(net: BinaryNetwork, max_states: int, what: str) -> None:
    """Refuse an enumeration of more than ``max_states`` joint states, saying what to do.

    Raises :func:`states_error`, to which a caller may give other advice
    (:func:`states_advice`).
    """
    max_states = check_max_states(max_states)
    n = net.n_stochastic
    if n > 62 or 2**n > max_states:
        raise states_error(
            f"{what} enumerates all {describe_power(2, n)} joint hidden states per example, "
            f"more than max_states = {max_states:,}",
            "Use method='mc' (Monte Carlo: gradstat.analyze(..., method='mc', n_samples=..., "
            "seed=...) or gradstat.sample_gradients) or raise max_states if you can afford it.",
        )


@dataclass(frozen=True, eq=False)
class State:
    """One state of the network on one example, as the kernels see it (:func:`sample_state`)."""

    # the units (pre-activations, probabilities, bits, values) and the log-probability of
    # their bits, then the output, dC/dy and the loss
    a: np.ndarray
    p: np.ndarray
    bit: np.ndarray
    h: np.ndarray
    log_prob: float
    y: np.ndarray
    dy: np.ndarray
    loss: float


def sample_state(problem: Problem, example: int, u: np.ndarray) -> State:
    """The state drawn by uniforms ``u`` (unit ``k`` fires when ``u[k] < p[k]``) for one
    example, with the same jitted forward pass the engines use."""
    net = problem.net
    N = net.n_stochastic
    woff, boff, uoff = offsets(problem.sizes)
    a, p, bit, h = (np.empty(N) for _ in range(4))
    y, dy = np.empty(net.n_out), np.empty(net.n_out)
    tab = layer1_table(problem.A1[example : example + 1], problem.mode)[0]
    log_prob = forward_state(
        problem.theta, problem.sizes, woff, boff, uoff, tab, 0, u, problem.mode, a, p, bit, h, y
    )
    loss = loss_and_grad(problem.loss_code, y, problem.T[example], dy)
    return State(a, p, bit, h, float(log_prob), y, dy, float(loss))


def expand_mean(problem: Problem, c: np.ndarray, full: bool = False) -> np.ndarray:
    """Full-layout per-example vectors from compressed ones: ``W_1 = outer(b_1 part, x)``.

    With ``full`` the vectors are already in the full layout and are returned as they are.
    """
    if full:
        return c
    n_in, n1 = problem.net.sizes[0], problem.net.sizes[1]
    B = c.shape[0]
    w1 = c[:, :n1, None] * problem.X[:, None, :]
    return np.concatenate([w1.reshape(B, n1 * n_in), c], axis=1)


def expand_square(problem: Problem, c: np.ndarray, full: bool = False) -> np.ndarray:
    """As :func:`expand_mean` for second moments and variances: ``W_1 = outer(b_1, x^2)``."""
    if full:
        return c
    n_in, n1 = problem.net.sizes[0], problem.net.sizes[1]
    B = c.shape[0]
    w1 = c[:, :n1, None] * problem.X[:, None, :] ** 2
    return np.concatenate([w1.reshape(B, n1 * n_in), c], axis=1)


def expand_sign(problem: Problem, c: np.ndarray, full: bool = False) -> np.ndarray:
    """As :func:`expand_mean` for sign-agreement probabilities.

    ``sign(u x_j) = sign(G x_j)`` iff ``sign(u) = sign(G)`` when ``x_j != 0``; when
    ``x_j = 0`` both sides are 0 and agree with probability 1.
    """
    if full:
        return c
    n_in, n1 = problem.net.sizes[0], problem.net.sizes[1]
    B = c.shape[0]
    w1 = np.where(problem.X[:, None, :] != 0.0, c[:, :n1, None], 1.0)
    return np.concatenate([w1.reshape(B, n1 * n_in), c], axis=1)


def expansion_matrix(problem: Problem, example: int, full: bool = False) -> np.ndarray:
    """The matrix ``M`` with ``g_hat = M e`` for one example (used for full covariances)."""
    n_in, n1 = problem.net.sizes[0], problem.net.sizes[1]
    P, Pc = problem.net.n_params, problem.n_compressed
    if full:
        return np.eye(P)
    M = np.zeros((P, Pc))
    M[n1 * n_in :, :] = np.eye(Pc)
    x = problem.X[example]
    for i in range(n1):
        M[i * n_in : (i + 1) * n_in, i] = x
    return M


PARALLEL_MIN_WORK = 2**17
"""Below this many state-coordinate updates a kernel runs on one thread: starting the
thread team costs more than it saves, and far more on a machine shared with other busy
processes. Results do not depend on the thread count either way."""


@contextmanager
def threads_for(work: int) -> Iterator[None]:
    """Run the enclosed kernel call on one thread when ``work`` is small."""
    if work >= PARALLEL_MIN_WORK:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)
