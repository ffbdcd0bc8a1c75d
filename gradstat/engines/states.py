"""Hidden states in blocks, vectorised over states, and the engines of batched estimators.

The jitted engines run one state at a time through :func:`gradstat.kernels.forward.forward_state`.
Estimators written in PyTorch or JAX (:mod:`gradstat.frameworks`) instead take a whole
block of states at once (one ``vmap``-ed call), so the states are built here in blocks
with NumPy: state ``s`` sets unit ``k`` (layer 1 first) to ``(s >> k) & 1``, as the
jitted enumeration does, and layer ``l`` sees ``a_l = W_l h_{l-1} + b_l`` computed for
the whole block in one matrix product.

A state reaches a batched estimator as its *forcing uniforms*: ``u_k = p_k / 2`` for a
unit that fires and ``(1 + p_k) / 2`` for one that does not, the middle of the cell of
``u`` that selects the state under the rule ``fire = u_k < p_k`` gradstat's estimators
follow. An estimator whose estimate depends on ``u`` only through the state it selects
(``noise="discrete"``) therefore has exact moments ``E[g_hat] = sum_s P(s) g_hat(u(s))``
(:func:`batched_moments`); Monte Carlo draws read gradstat's Philox uniforms
(:func:`batched_draws`), the numbers the built-in estimators read for the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from gradstat._validation import check_array, check_int
from gradstat.estimators.registry import EstimatorBase
from gradstat.kernels.accumulate import accumulate, new_accumulators, reduce_chunks
from gradstat.kernels.philox import fill_noise
from gradstat.network import BinaryNetwork
from gradstat.problem import (
    DEFAULT_MAX_STATES,
    Problem,
    check_max_states,
    check_network,
    check_states,
    make_problem,
)

BLOCK_VALUES = 2**21
"""Numbers per block of states (its estimates or its units, whichever is larger): bounds
the memory of an enumeration whatever the number of states."""

MAX_BLOCK = 2**14
"""The most states per block (a larger ``vmap`` gains nothing and holds more memory)."""


def default_block(problem: Problem) -> int:
    """States per block: :data:`BLOCK_VALUES` numbers, at most :data:`MAX_BLOCK` states."""
    width = max(problem.net.n_params, problem.net.n_stochastic, 1)
    return int(max(1, min(MAX_BLOCK, BLOCK_VALUES // width)))


@dataclass(frozen=True, eq=False)
class StateBlock:
    """Consecutive hidden states ``start .. start + m - 1`` of one example.

    Attributes
    ----------
    start : int
        Index of the first state (unit ``k`` of state ``s`` is ``(s >> k) & 1``).
    bits : ndarray (m, N)
        Which units fire (0 or 1), layer 1 first.
    h : ndarray (m, N)
        The values the units pass on (``bits``, or ``2 bits - 1`` for ``values="pm1"``).
    log_prob : ndarray (m,)
        ``log P(state | x)``.
    probabilities : tuple of ndarray (m, n_l)
        Per stochastic layer, ``p_l = sigmoid(a_l)`` given the layer below.
    """

    start: int
    bits: np.ndarray
    h: np.ndarray
    log_prob: np.ndarray
    probabilities: tuple[np.ndarray, ...]

    @property
    def p(self) -> np.ndarray:
        """All units' probabilities ``(m, N)``, layer 1 first."""
        return np.concatenate(self.probabilities, axis=1)

    @property
    def uniforms(self) -> np.ndarray:
        """Forcing uniforms ``(m, N)``: ``p / 2`` where a unit fires, ``(1 + p) / 2``
        where it does not, so that ``u < p`` gives back exactly these states."""
        return forcing_uniforms(self.bits, self.p)


def forcing_uniforms(bits: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The middle of each unit's cell of ``u``: ``p / 2`` if it fires, else ``(1 + p) / 2``."""
    return np.where(bits > 0.5, 0.5 * p, 0.5 * (1.0 + p))


def state_bits(start: int, stop: int, n_units: int) -> np.ndarray:
    """Bits ``(stop - start, n_units)`` of states ``start .. stop - 1`` (unit ``k``:
    bit ``k`` of the state's index)."""
    index = np.arange(start, stop, dtype=np.uint64)[:, None]
    shifts = np.arange(n_units, dtype=np.uint64)[None, :]
    return ((index >> shifts) & np.uint64(1)).astype(np.float64)


def layer_pass(
    problem: Problem, example: int, *, bits: np.ndarray | None = None, u: np.ndarray | None = None
) -> StateBlock:
    """Run a block of states of one example forward, vectorised over the block.

    The states are given by their ``bits`` ``(m, N)``, or drawn by uniforms ``u``
    ``(m, N)`` (unit ``k`` fires when ``u[k] < p[k]``). ``log P`` sums
    ``log sigmoid(a)`` over the units that fire and ``log sigmoid(-a)`` over the others.
    """
    net = problem.net
    low = problem.low
    given = bits if bits is not None else u
    assert given is not None
    m = given.shape[0]
    out_bits = np.empty((m, net.n_stochastic))
    log_prob = np.zeros(m)
    probabilities = []
    h_prev = None
    start = 0
    for layer, (W, b) in enumerate(net.layers()[:-1]):
        n = W.shape[0]
        if layer == 0:
            a = np.broadcast_to(problem.A1[example], (m, n))
        else:
            a = h_prev @ W.T + b
        p = 1.0 / (1.0 + np.exp(-a))
        if bits is not None:
            fire = bits[:, start : start + n] > 0.5
        else:
            fire = u[:, start : start + n] < p
        log_prob -= np.where(fire, np.logaddexp(0.0, -a), np.logaddexp(0.0, a)).sum(axis=1)
        out_bits[:, start : start + n] = fire
        probabilities.append(p)
        h_prev = np.where(fire, 1.0, low)
        start += n
    h = out_bits if low == 0.0 else 2.0 * out_bits - 1.0
    return StateBlock(0, out_bits, h, log_prob, tuple(probabilities))


def state_blocks(problem: Problem, example: int, block: int) -> Iterator[StateBlock]:
    """All ``2^N`` states of one example, ``block`` at a time, in index order."""
    N = problem.net.n_stochastic
    total = 1 << N
    for start in range(0, total, block):
        stop = min(total, start + block)
        states = layer_pass(problem, example, bits=state_bits(start, stop, N))
        yield StateBlock(start, states.bits, states.h, states.log_prob, states.probabilities)


def enumerate_states(
    net: BinaryNetwork,
    x: Any,
    *,
    block_size: int | None = None,
    max_states: int = DEFAULT_MAX_STATES,
) -> Iterator[StateBlock]:
    """The ``2^N`` hidden states of a network on one input, in blocks, vectorised.

    State ``s`` sets unit ``k`` (layer 1 first, in parameter order) to ``(s >> k) & 1``; its
    probability is ``P(s | x) = prod_l prod_i p_{l,i}^{h_{l,i}} (1 - p_{l,i})^{1 - h_{l,i}}``
    with ``p_l = sigmoid(W_l h_{l-1} + b_l)`` (docs/model.md), returned as a
    log-probability. Each block's :attr:`StateBlock.uniforms` are uniforms that select
    exactly its states under the rule ``fire = u < p``, ready for an estimator's ``u``.

    Parameters
    ----------
    net : BinaryNetwork
    x : array_like, shape (n_in,)
        One input.
    block_size : int, optional
        States per block (default: about two million numbers per block, at most 16,384
        states). Memory is bounded by the block, not by ``2^N``.
    max_states : int
        Refuse networks with more than this many states.

    Yields
    ------
    StateBlock
        ``start``, ``bits``, ``h``, ``log_prob`` and per-layer ``probabilities``.

    Examples
    --------
    >>> net = BinaryNetwork.random((3, 4, 2), seed=0)
    >>> total = sum(np.exp(b.log_prob).sum() for b in enumerate_states(net, np.ones(3)))
    >>> bool(abs(total - 1.0) < 1e-12)
    True
    """
    max_states = check_max_states(max_states)
    net = check_network(net)
    X = check_array(x, "x")
    if X.shape != (net.n_in,):
        raise ValueError(
            f"enumerate_states takes one input: x of shape ({net.n_in},), got {X.shape}"
        )
    problem = make_problem(net, X, np.zeros(net.n_out) if net.loss != "xent" else 0)
    check_states(net, max_states, "enumerate_states")
    if block_size is None:
        block = default_block(problem)
    else:
        block = check_int(block_size, "block_size", minimum=1, maximum=2**30)
    return state_blocks(problem, 0, block)


@njit(cache=True)
def _accumulate_block(
    w: np.ndarray, E: np.ndarray, g: np.ndarray, c: np.ndarray, dw: np.ndarray,
    seg: np.ndarray, acc: tuple[np.ndarray, ...],
) -> None:  # fmt: skip
    """Add the estimates ``E[i]`` with probabilities ``w[i]`` to one example's accumulators
    ``acc = (m, s1, m2, sign, desc, cov)``, with squares summed about the shift ``c``
    (:func:`gradstat.kernels.accumulate.accumulate`)."""
    m, s1, m2, sign, desc, cov = acc
    n = E.shape[1]
    d = np.empty(n)
    dots = np.empty(seg.shape[0] - 1)
    for i in range(E.shape[0]):
        accumulate(w[i], E[i], g, c, dw, seg, m, s1, m2, sign, desc, d, dots, cov)


def batched_moments(
    problem: Problem,
    spec: EstimatorBase,
    G: np.ndarray,
    DW: np.ndarray,
    seg: np.ndarray,
    want_cov: bool,
    rows: slice,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact moments of a batched estimator over all states, per example (full layout).

    Returns what :func:`gradstat.engines.joint.moments_kernel` returns: ``E[g_hat - g]``,
    the variances (sums of squares about the estimate at the likeliest state of the first
    block, a value the estimate takes), sign agreements, descent probabilities and
    (``want_cov``) ``sum_x Cov_x``, for the examples ``rows``; ``G``, ``DW`` are already
    restricted to them.
    """
    B, n = G.shape
    acc = new_accumulators(B, 1, n, seg.shape[0] - 1, want_cov)
    acc_m, acc_s1, acc_m2, acc_sign, acc_desc, acc_cov = acc
    block = spec.block_size or default_block(problem)
    for i, b in enumerate(range(rows.start, rows.stop)):
        example = (acc_m[i, 0], acc_s1[i, 0], acc_m2[i, 0], acc_sign[i, 0], acc_desc[i, 0],
                   acc_cov[0])  # fmt: skip
        shift = None
        for states in state_blocks(problem, b, block):
            E = spec.estimate_block(problem, b, states.uniforms)
            if shift is None:
                shift = np.ascontiguousarray(E[np.argmax(states.log_prob)])
            _accumulate_block(np.exp(states.log_prob), E, G[i], shift, DW[i], seg, example)
    return reduce_chunks(acc)


@njit(cache=True)
def philox_uniforms(key: np.ndarray, first: int, m: int, B: int, N: int) -> np.ndarray:
    """Uniforms ``(m, B, N)`` of draws ``first .. first + m - 1``: the numbers the sampling
    kernels read for the same key (:func:`gradstat.kernels.philox.fill_noise`)."""
    out = np.empty((m, B, N))
    for i in range(m):
        for b in range(B):
            fill_noise(key, first + i, b, False, out[i, b])
    return out


def batched_draws(
    problem: Problem,
    spec: EstimatorBase,
    key: np.ndarray,
    first: int,
    per_example: bool,
    noise: np.ndarray | None,
    out: np.ndarray,
) -> None:
    """Draws ``first ..`` of a batched estimator into ``out``, as
    :meth:`gradstat.engines.sampling.Sampler.fill` lays them out (full layout).

    Draw ``i`` of example ``b`` reads the uniforms ``noise[i, b]`` when given, else those
    of Philox counter ``(first + i, b, .)`` under ``key``: the uniforms the built-in
    estimators read for the same seed, so the two can be compared draw by draw.
    """
    B, P = problem.n_examples, problem.net.n_params
    N = spec.noise_size(problem.net.hidden_sizes, {})
    block = spec.block_size or default_block(problem)
    for lo in range(0, out.shape[0], block):
        hi = min(out.shape[0], lo + block)
        if noise is None:
            U = philox_uniforms(key, first + lo, hi - lo, B, N)
        else:
            U = noise[lo:hi]
        for b in range(B):
            E = spec.estimate_block(problem, b, np.ascontiguousarray(U[:, b, :]))
            if per_example:
                out[lo:hi, b * P : (b + 1) * P] = E
            elif b == 0:
                out[lo:hi] = E
            else:
                out[lo:hi] += E
        if not per_example and B > 1:
            out[lo:hi] /= B
