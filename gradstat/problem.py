"""A validated problem (network, inputs, targets) in the plain arrays the kernels take.

Kernels write estimates in the *compressed* layout (``theta``'s layout without the
``W_1`` block, see :mod:`gradstat.kernels.forward`); this module expands per-example compressed
quantities back to the full SPEC layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from gradstat.kernels.forward import BITS, PM1
from gradstat.network import LOSSES, BinaryNetwork, as_batch

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
    """Validate ``net``, ``x`` and ``t`` and precompute layer 1's pre-activations."""
    check_network(net)
    X, T = as_batch(net, x, t)
    W1, b1 = net.layers()[0]
    A1 = np.ascontiguousarray(X @ W1.T + b1) if net.n_in else np.tile(b1, (X.shape[0], 1))
    return Problem(
        net=net,
        X=X,
        T=T,
        theta=np.ascontiguousarray(net.params),
        sizes=np.asarray(net.sizes, dtype=np.int64),
        loss_code=LOSSES[net.loss],
        A1=np.ascontiguousarray(A1),
    )


def check_states(net: BinaryNetwork, max_states: int, what: str) -> None:
    """Refuse an enumeration of more than ``max_states`` joint states, saying what to do."""
    if isinstance(max_states, bool) or not isinstance(max_states, (int, np.integer)):
        raise TypeError(f"max_states must be an int, got {max_states!r}")
    n = net.n_stochastic
    if n > 62 or 2**n > max_states:
        raise ValueError(
            f"{what} enumerates all 2^{n} = {2**n:,} joint hidden states per example, more "
            f"than max_states = {max_states:,}. Use method='mc' (Monte Carlo: "
            f"gradstat.analyze(..., method='mc', n_samples=..., seed=...) or "
            f"gradstat.sample_gradients) or raise max_states if you can afford it."
        )


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
