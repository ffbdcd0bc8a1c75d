"""Exact quantities by joint enumeration of the ``2^N`` hidden states.

For one example the expected loss is ``E[C] = sum_h P(h | x) C(y(h), t)``, and every
estimator whose noise is discrete has exact moments ``E[g_hat] = sum_h P(h) g_hat(h)``,
``Var[g_hat_j] = sum_h P(h) (g_hat_j(h) - E g_hat_j)^2``. States are never materialised:
state ``s`` sets unit ``k`` to bit ``k`` of ``s``, and the ``2^N`` states are split into a
fixed number of chunks (independent of the thread count), each with private
accumulators reduced in a fixed order, so results are bit-identical on any number of
threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from math import exp
from typing import Any

import numpy as np
from numba import njit, prange

from gradstat.estimators import Estimator
from gradstat.estimators.per_state import estimate_state
from gradstat.estimators.user import AnyEstimator, PythonEstimator, resolve_estimator
from gradstat.forward import (
    forward_state,
    layer1_table,
    loss_and_grad,
    offsets,
    output_gradient,
    score_vector,
    state_buffers,
)
from gradstat.layerwise import layerwise_cost, layerwise_gradient
from gradstat.layout import (
    DEFAULT_MAX_STATES,
    Problem,
    check_states,
    expand_mean,
    expand_sign,
    expand_square,
    expansion_matrix,
    make_problem,
    threads_for,
)
from gradstat.network import BinaryNetwork

CHUNKS = 64
"""Number of state chunks (fixed: results do not depend on the number of threads)."""


@njit(cache=True)
def _n_chunks(n_states: int, cap: int) -> int:
    return n_states if n_states < cap else cap


@njit(cache=True)
def _sign(v: float) -> int:
    if v > 0.0:
        return 1
    if v < 0.0:
        return -1
    return 0


@njit(parallel=True, cache=True)
def _gradient_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    want_stats: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per example: ``E[C]``, the exact gradient, and (``want_stats``) ``E[s^2 C]``, ``E[s^2]``.

    The gradient is the score-function identity ``E[(C - r) s + grad C]`` with the
    reference ``r`` the loss of the greedy state (every unit at its likelier value):
    exact for any ``r`` because ``E[s] = 0``, and ``r`` removes a loss offset that would
    otherwise cost precision.
    """
    woff, boff, uoff = offsets(sizes)
    n_units = uoff[uoff.shape[0] - 1]
    B = L1.shape[0]
    n_out = sizes[sizes.shape[0] - 1]
    Pc = theta.shape[0] - sizes[0] * sizes[1]
    n_hidden_c = woff[woff.shape[0] - 1] - sizes[0] * sizes[1]
    S = np.int64(1) << n_units
    nc = _n_chunks(S, CHUNKS)
    n_stat = Pc if want_stats else 0
    acc_loss = np.zeros((B, nc))
    acc_g = np.zeros((B, nc, Pc))
    acc_s2c = np.zeros((B, nc, n_stat))
    acc_s2 = np.zeros((B, nc, n_stat))
    no_u = np.empty(0)
    half = np.full(n_units, 0.5)
    for b in range(B):
        ga, gp, gbit, gh, gy, gdy = state_buffers(n_units, n_out)
        forward_state(theta, sizes, woff, boff, uoff, L1[b], 0, half, False, ga, gp, gbit, gh, gy)
        ref = loss_and_grad(loss, gy, T[b], gdy)
        for c in prange(nc):
            a, p, bit, h, y, dy = state_buffers(n_units, n_out)
            s = np.empty(Pc)
            for state in range(c * S // nc, (c + 1) * S // nc):
                logp = forward_state(
                    theta, sizes, woff, boff, uoff, L1[b], state, no_u, False, a, p, bit, h, y
                )
                w = exp(logp)
                C = loss_and_grad(loss, y, T[b], dy)
                score_vector(sizes, woff, boff, uoff, bit, p, h, s)
                acc_loss[b, c] += w * C
                r = w * (C - ref)
                for k in range(n_hidden_c):
                    acc_g[b, c, k] += r * s[k]
                if want_stats:
                    for k in range(n_hidden_c):
                        s2 = s[k] * s[k] * w
                        acc_s2c[b, c, k] += s2 * C
                        acc_s2[b, c, k] += s2
                output_gradient(sizes, woff, boff, uoff, h, dy, s)
                for k in range(n_hidden_c, Pc):
                    acc_g[b, c, k] += w * s[k]
    losses = np.zeros(B)
    grads = np.zeros((B, Pc))
    s2c = np.zeros((B, n_stat))
    s2 = np.zeros((B, n_stat))
    for b in range(B):
        for c in range(nc):
            losses[b] += acc_loss[b, c]
            grads[b] += acc_g[b, c]
            s2c[b] += acc_s2c[b, c]
            s2[b] += acc_s2[b, c]
    return losses, grads, s2c, s2


RESYNC = 4096
"""Gray-code steps between exact recomputations of ``log P`` and ``y`` (bounds drift)."""


@njit(cache=True)
def _one_layer_start(
    theta: np.ndarray, tab: np.ndarray, s: int, n1: int, n_out: int, woff: int, boff: int,
    y: np.ndarray,
) -> float:  # fmt: skip
    """``log P(s)`` and ``y(s)`` (into ``y``) of state ``s`` of a one-layer network."""
    logp = 0.0
    for i in range(n1):
        logp += tab[2, i] if (s >> i) & 1 else tab[3, i]
    for o in range(n_out):
        v = theta[boff + o]
        for i in range(n1):
            if (s >> i) & 1:
                v += theta[woff + o * n1 + i]
        y[o] = v
    return logp


@njit(parallel=True, cache=True)
def _one_layer_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    want_stats: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_gradient_kernel` for one stochastic layer, visiting states in Gray-code order.

    Consecutive states differ in one unit ``k``, so ``log P`` changes by
    ``+-(log p_k - log(1 - p_k))`` and ``y`` by ``+-W_o[:, k]``: ``O(n_out)`` per state
    instead of a forward pass (both are recomputed exactly every :data:`RESYNC` states).
    Because ``p`` does not depend on the state, ``sum_h r (h_i - p_i)`` is accumulated as
    the sum of ``r`` over states with ``h_i = 1`` minus ``p_i sum_h r``.
    """
    n1, n_out = sizes[1], sizes[2]
    B = L1.shape[0]
    S = np.int64(1) << n1
    nc = _n_chunks(S, CHUNKS)
    Pc = n1 + n_out * n1 + n_out
    woff = sizes[0] * n1 + n1
    boff = woff + n_out * n1
    n_stat = n1 if want_stats else 0
    acc = np.zeros((B, nc, Pc + 3))
    acc_stats = np.zeros((B, nc, 2, n_stat))
    for b in range(B):
        tab = L1[b]
        greedy = 0
        for i in range(n1):
            if tab[1, i] > 0.5:
                greedy |= 1 << i
        gy = np.empty(n_out)
        _one_layer_start(theta, tab, greedy, n1, n_out, woff, boff, gy)
        ref = loss_and_grad(loss, gy, T[b], np.empty(n_out))
        for c in prange(nc):
            y = np.empty(n_out)
            dy = np.empty(n_out)
            logp = 0.0
            a = acc[b, c]
            st = acc_stats[b, c]
            start = c * S // nc
            stop = (c + 1) * S // nc
            for g in range(start, stop):
                s = g ^ (g >> 1)
                if (g - start) % RESYNC == 0:
                    logp = _one_layer_start(theta, tab, s, n1, n_out, woff, boff, y)
                w = exp(logp)
                C = loss_and_grad(loss, y, T[b], dy)
                r = w * (C - ref)
                a[Pc] += r
                a[Pc + 1] += w * C
                a[Pc + 2] += w
                for i in range(n1):
                    if (s >> i) & 1:
                        a[i] += r
                        if want_stats:
                            st[0, i] += w * C
                            st[1, i] += w
                for o in range(n_out):
                    wd = w * dy[o]
                    a[boff - sizes[0] * n1 + o] += wd
                    row = n1 + o * n1
                    for i in range(n1):
                        if (s >> i) & 1:
                            a[row + i] += wd
                # The next Gray-code state flips the lowest set bit of g + 1.
                k = 0
                m = g + 1
                while (m & 1) == 0:
                    m >>= 1
                    k += 1
                if k < n1:
                    sign = -1.0 if (s >> k) & 1 else 1.0
                    logp += sign * (tab[2, k] - tab[3, k])
                    for o in range(n_out):
                        y[o] += sign * theta[woff + o * n1 + k]
    losses = np.zeros(B)
    grads = np.zeros((B, Pc))
    s2c = np.zeros((B, n_stat))
    s2 = np.zeros((B, n_stat))
    for b in range(B):
        R = 0.0
        W = 0.0
        for c in range(nc):
            losses[b] += acc[b, c, Pc + 1]
            R += acc[b, c, Pc]
            W += acc[b, c, Pc + 2]
            for k in range(Pc):
                grads[b, k] += acc[b, c, k]
            for i in range(n_stat):
                s2c[b, i] += acc_stats[b, c, 0, i]
                s2[b, i] += acc_stats[b, c, 1, i]
        for i in range(n1):
            p1 = L1[b, 1, i]
            grads[b, i] -= p1 * R
            if want_stats:
                # (h - p)^2 = h (1 - 2p) + p^2 for h in {0, 1}.
                s2c[b, i] = (1.0 - 2.0 * p1) * s2c[b, i] + p1 * p1 * losses[b]
                s2[b, i] = (1.0 - 2.0 * p1) * s2[b, i] + p1 * p1 * W
    return losses, grads, s2c, s2


@njit(cache=True)
def _accumulate(
    w: float,
    e: np.ndarray,
    g: np.ndarray,
    dw: np.ndarray,
    seg: np.ndarray,
    m: np.ndarray,
    m2: np.ndarray,
    sign: np.ndarray,
    desc: np.ndarray,
    d: np.ndarray,
    dots: np.ndarray,
    cov: np.ndarray,
) -> None:
    """Add the estimate ``e`` of one state with probability ``w`` to the accumulators.

    ``d = e - g`` (shifting by the exact gradient keeps the variance free of
    cancellation); ``sign`` counts ``sign e_j = sign g_j``; ``desc`` counts
    ``<e, dw> > 0`` per segment (layers, output), then over all parameters and over the
    stochastic layers; ``cov`` (empty unless wanted) accumulates ``d d^T``.
    """
    n = e.shape[0]
    for k in range(n):
        dk = e[k] - g[k]
        d[k] = dk
        m[k] += w * dk
        m2[k] += w * dk * dk
        if _sign(e[k]) == _sign(g[k]):
            sign[k] += w
    n_seg = seg.shape[0] - 1
    total = 0.0
    for q in range(n_seg):
        v = 0.0
        for k in range(seg[q], seg[q + 1]):
            v += e[k] * dw[k]
        dots[q] = v
        total += v
        if v > 0.0:
            desc[q] += w
    if total > 0.0:
        desc[n_seg] += w
    if total - dots[n_seg - 1] > 0.0:
        desc[n_seg + 1] += w
    for i in range(cov.shape[0]):
        wd = w * d[i]
        for j in range(n):
            cov[i, j] += wd * d[j]


@njit(cache=True)
def _new_accumulators(
    B: int, nc: int, n: int, n_seg: int, want_cov: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_cov = n if want_cov else 0
    return (
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n)),
        np.zeros((B, nc, n_seg + 2)),
        np.zeros((nc, n_cov, n_cov)),
    )


@njit(cache=True)
def _reduce(
    acc_m: np.ndarray,
    acc_m2: np.ndarray,
    acc_sign: np.ndarray,
    acc_desc: np.ndarray,
    acc_cov: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sum the per-chunk accumulators in chunk order (bit-identical for any thread count)."""
    B, nc, n = acc_m.shape
    m = np.zeros((B, n))
    m2 = np.zeros((B, n))
    sign = np.zeros((B, n))
    desc = np.zeros((B, acc_desc.shape[2]))
    cov = np.zeros((acc_cov.shape[1], acc_cov.shape[2]))
    for b in range(B):
        for c in range(nc):
            m[b] += acc_m[b, c]
            m2[b] += acc_m2[b, c]
            sign[b] += acc_sign[b, c]
            desc[b] += acc_desc[b, c]
    for c in range(nc):
        cov += acc_cov[c]
    return m, m2, sign, desc, cov


@njit(cache=True)
def _max_width(sizes: np.ndarray) -> int:
    width = 1
    for l in range(1, sizes.shape[0] - 1):
        if sizes[l] > width:
            width = sizes[l]
    return width


@njit(parallel=True, cache=True)
def _moments_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    code: int,
    smooth: bool,
    opts: np.ndarray,
    baselines: np.ndarray,
    G: np.ndarray,
    DW: np.ndarray,
    seg: np.ndarray,
    want_cov: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact moments of built-in estimator ``code``, per example, in the compressed layout.

    Returns ``E[d]``, ``E[d^2]`` with ``d = g_hat - g``, ``P(sign g_hat_j = sign g_j)``,
    descent probabilities (see :func:`_accumulate`) and (``want_cov``) ``sum_x E[d d^T]``.
    """
    woff, boff, uoff = offsets(sizes)
    n_units = uoff[uoff.shape[0] - 1]
    B, n = G.shape
    n_out = sizes[sizes.shape[0] - 1]
    n_seg = seg.shape[0] - 1
    width = _max_width(sizes)
    S = np.int64(1) << n_units
    nc = _n_chunks(S, CHUNKS // 4 if want_cov else CHUNKS)
    acc_m, acc_m2, acc_sign, acc_desc, acc_cov = _new_accumulators(B, nc, n, n_seg, want_cov)
    no_u = np.empty(0)
    for b in range(B):
        for c in prange(nc):
            a, p, bit, h, y, dy = state_buffers(n_units, n_out)
            jac = np.empty(n_units)
            work = np.empty((2, width))
            e = np.empty(n)
            d = np.empty(n)
            dots = np.empty(n_seg)
            for state in range(c * S // nc, (c + 1) * S // nc):
                logp = forward_state(
                    theta, sizes, woff, boff, uoff, L1[b], state, no_u, smooth, a, p, bit, h, y
                )
                C = loss_and_grad(loss, y, T[b], dy)
                estimate_state(
                    code, opts, theta, sizes, woff, boff, uoff, a, p, bit, h, dy, C,
                    baselines[b], jac, work, e,
                )  # fmt: skip
                _accumulate(
                    exp(logp), e, G[b], DW[b], seg, acc_m[b, c], acc_m2[b, c],
                    acc_sign[b, c], acc_desc[b, c], d, dots, acc_cov[c],
                )  # fmt: skip
    return _reduce(acc_m, acc_m2, acc_sign, acc_desc, acc_cov)


@cache
def user_moments_kernel(fn: Any) -> Any:
    """The enumeration kernel for a user's jitted per-state function (full layout).

    Compiled once per function and process (a kernel that calls a user function cannot be
    cached on disk); it shares the forward pass and :func:`_accumulate` with the built-in
    kernel, so only the estimate differs.
    """

    @njit(parallel=True)
    def kernel(theta, sizes, X, L1, T, loss, G, DW, seg, want_cov):  # noqa: ANN001, ANN202
        woff, boff, uoff = offsets(sizes)
        n_units = uoff[uoff.shape[0] - 1]
        B, n = G.shape
        n_out = sizes[sizes.shape[0] - 1]
        n_seg = seg.shape[0] - 1
        S = np.int64(1) << n_units
        nc = _n_chunks(S, CHUNKS // 4 if want_cov else CHUNKS)
        acc_m, acc_m2, acc_sign, acc_desc, acc_cov = _new_accumulators(B, nc, n, n_seg, want_cov)
        no_u = np.empty(0)
        for b in range(B):
            for c in prange(nc):
                a, p, bit, h, y, dy = state_buffers(n_units, n_out)
                e = np.empty(n)
                d = np.empty(n)
                dots = np.empty(n_seg)
                for state in range(c * S // nc, (c + 1) * S // nc):
                    logp = forward_state(
                        theta, sizes, woff, boff, uoff, L1[b], state, no_u, False, a, p, bit,
                        h, y,
                    )  # fmt: skip
                    C = loss_and_grad(loss, y, T[b], dy)
                    e[:] = 0.0
                    fn(theta, sizes, X[b], T[b], no_u, a, p, h, y, dy, C, e)
                    _accumulate(
                        exp(logp), e, G[b], DW[b], seg, acc_m[b, c], acc_m2[b, c],
                        acc_sign[b, c], acc_desc[b, c], d, dots, acc_cov[c],
                    )  # fmt: skip
        return _reduce(acc_m, acc_m2, acc_sign, acc_desc, acc_cov)

    return kernel


def gradient_pass(
    problem: Problem, want_stats: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-example ``E[C]``, compressed exact gradient, and optimal-baseline sums."""
    with threads_for(problem.work()):
        kernel = _one_layer_kernel if problem.net.n_layers == 1 else _gradient_kernel
        return kernel(
            problem.theta,
            problem.sizes,
            layer1_table(problem.A1, False),
            problem.T,
            problem.loss_code,
            want_stats,
        )


def gradient_engine(net: BinaryNetwork) -> str:
    """The cheaper exact engine for the loss and gradient: ``"joint"`` or ``"layerwise"``.

    Joint enumeration costs about ``2^N n_params``; messages over adjacent layers cost
    about ``sum_l 2^{n_{l-1} + n_l} n_l`` (:mod:`gradstat.layerwise`). One stochastic
    layer always uses joint enumeration (the two coincide and it is the tuned path).
    """
    if net.n_layers == 1:
        return "joint"
    return "joint" if net.n_states * net.n_params <= layerwise_cost(net.sizes) else "layerwise"


def reference_gradient(
    problem: Problem, max_states: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example ``E[C]`` ``(B,)`` and exact gradients ``(B, n_params)``, cheaper engine.

    ``max_states`` caps the states one engine enumerates at once: ``2^N`` joint states, or
    ``2^{n_{l-1} + n_l}`` pairs of adjacent layer states for the layer-wise engine.
    """
    net = problem.net
    if gradient_engine(net) == "joint":
        check_states(net, max_states, what)
        losses, grads_c, _, _ = gradient_pass(problem)
        return losses, expand_mean(problem, grads_c)
    hidden = net.hidden_sizes
    widest = max(a + b for a, b in zip(hidden[:-1], hidden[1:]))
    if 2**widest > max_states:
        raise ValueError(
            f"{what} by layer-wise messages enumerates 2^{widest} = {2**widest:,} pairs of "
            f"adjacent layer states, more than max_states = {max_states:,}; the network is "
            f"too wide to compute exactly: use Monte Carlo draws (gradstat.sample_gradients, "
            f"gradstat.stats.compare_estimators)"
        )
    tab = layer1_table(problem.A1, False)
    with threads_for(problem.n_examples * layerwise_cost(net.sizes)):
        return layerwise_gradient(
            problem.theta, problem.sizes, tab, problem.X, problem.T, problem.loss_code
        )


def expected_loss(
    net: BinaryNetwork, x: Any, t: Any, *, max_states: int = DEFAULT_MAX_STATES
) -> float:
    """Exact objective ``J = (1/B) sum_x E_{h ~ P(h | x)}[C(y(h), t)]`` (SPEC section 1).

    Parameters
    ----------
    net : BinaryNetwork
    x : array_like, shape (n_in,) or (B, n_in)
    t : array_like
        Targets matching the loss (see :class:`BinaryNetwork`).
    max_states : int
        Refuse to enumerate more than this many states at once per example (``2^N``
        joint states, or ``2^{n_{l-1} + n_l}`` for the layer-wise engine).

    Raises
    ------
    ValueError
        For malformed input, or when ``2^N > max_states`` (the message says what to use).
    """
    problem = make_problem(net, x, t)
    losses, _ = reference_gradient(problem, max_states, "expected_loss")
    return float(np.mean(losses))


def exact_gradient(
    net: BinaryNetwork, x: Any, t: Any, *, max_states: int = DEFAULT_MAX_STATES
) -> np.ndarray:
    """Exact gradient ``g = grad_theta J`` by enumerating the ``2^N`` hidden states.

    Uses the score-function identity ``g = E[C(h) grad log P(h | x) + grad C(y(h), t)]``,
    summed exactly over all joint states, or, for deep networks where that is cheaper,
    the same sums by messages over adjacent layers (:mod:`gradstat.layerwise`; see
    :func:`gradient_engine`). No sampling either way. Returns shape ``(n_params,)`` in
    SPEC order; for a batch, the mean over examples.
    """
    problem = make_problem(net, x, t)
    _, grads = reference_gradient(problem, max_states, "exact_gradient")
    return grads.mean(axis=0)


@dataclass(frozen=True, eq=False)
class EstimatorMoments:
    """Exact moments of an estimator's batch estimate (all arrays in SPEC order).

    Attributes
    ----------
    estimator : str
    options : dict
    gradient : ndarray (n_params,)
        Exact gradient of the batch objective.
    mean : ndarray (n_params,)
        ``E[g_hat]`` of the batch estimate (mean of the per-example means).
    var : ndarray (n_params,)
        Per-coordinate variance of the batch estimate, ``(1/B^2) sum_x var_x``.
    cov : ndarray (n_params, n_params) or None
        Covariance of the batch estimate (with ``full_cov=True``).
    example_gradient, example_mean, example_var : ndarray (B, n_params)
        The same per example.
    sign_probability : ndarray (B, n_params)
        Per example, ``P(sign g_hat_j = sign g_j)`` against that example's gradient.
    descent_probability : ndarray (B, L + 3)
        Per example, ``P(<g_hat, g> > 0)`` restricted to ``descent_labels``.
    descent_labels : tuple of str
        ``layer1..layerL, output, all, stochastic``.
    """

    estimator: str
    options: dict[str, Any]
    gradient: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    var: np.ndarray = field(repr=False)
    cov: np.ndarray | None = field(repr=False)
    example_gradient: np.ndarray = field(repr=False)
    example_mean: np.ndarray = field(repr=False)
    example_var: np.ndarray = field(repr=False)
    sign_probability: np.ndarray = field(repr=False)
    descent_probability: np.ndarray = field(repr=False)
    descent_labels: tuple[str, ...] = field(repr=False)

    @property
    def bias(self) -> np.ndarray:
        """``E[g_hat] - g``."""
        return self.mean - self.gradient


def descent_labels(net: BinaryNetwork) -> tuple[str, ...]:
    """Names of the descent-probability columns: per layer, then ``all``, ``stochastic``."""
    return tuple(f"layer{k}" for k in range(1, net.n_layers + 1)) + (
        "output",
        "all",
        "stochastic",
    )


def kernel_options(
    spec: AnyEstimator, options: dict[str, Any], problem: Problem, max_states: int
) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's option array and per-example baseline rows for the kernels."""
    B, Pc = problem.n_examples, problem.n_compressed
    opts = np.zeros(0)
    baseline = options.get("baseline", "none")
    if not isinstance(spec, Estimator) or spec.name != "reinforce" or baseline == "none":
        return opts, np.zeros((B, Pc))
    if isinstance(baseline, float):
        return opts, np.full((B, Pc), baseline)
    check_states(problem.net, max_states, f"the {baseline!r} baseline (an exact oracle)")
    losses, _, s2c, s2 = gradient_pass(problem, want_stats=True)
    if baseline == "mean":
        return opts, np.repeat(losses[:, None], Pc, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(s2 > 0.0, s2c / np.where(s2 > 0.0, s2, 1.0), 0.0)
    return opts, np.ascontiguousarray(np.pad(c, ((0, 0), (0, Pc - c.shape[1]))))


def _run_moments(
    problem: Problem,
    spec: AnyEstimator,
    opts: np.ndarray,
    baselines: np.ndarray,
    G: np.ndarray,
    dw: np.ndarray,
    seg: np.ndarray,
    rows: slice,
    want_cov: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One enumeration over the examples ``rows`` with the kernel that fits ``spec``."""
    smooth = isinstance(spec, Estimator) and spec.smooth
    L1, T = layer1_table(problem.A1[rows], smooth), problem.T[rows]
    work = L1.shape[0] * 2**problem.net.n_stochastic * G.shape[1] * (G.shape[1] if want_cov else 1)
    with threads_for(work):
        if isinstance(spec, Estimator):
            return _moments_kernel(
                problem.theta, problem.sizes, L1, T, problem.loss_code, spec.code, spec.smooth,
                opts, baselines[rows], G[rows], dw[rows], seg, want_cov,
            )  # fmt: skip
        kernel = user_moments_kernel(spec.function)
        return kernel(
            problem.theta, problem.sizes, problem.X[rows], L1, T, problem.loss_code,
            G[rows], dw[rows], seg, want_cov,
        )  # fmt: skip


def moments_pass(
    problem: Problem,
    spec: AnyEstimator,
    options: dict[str, Any],
    *,
    full_cov: bool,
    max_states: int,
) -> EstimatorMoments:
    """Exact moments of a registered or per-state user estimator on a validated problem.

    Built-in estimators work in the compressed layout, per-state user functions in the
    full one (``full``); both are expanded to the full layout here.
    """
    if spec.noise != "discrete" or isinstance(spec, PythonEstimator):
        raise ValueError(
            f"estimator {spec.name!r} has continuous or undeclared noise: its moments cannot "
            f"be enumerated; use gradstat.analyze(..., method='mc') or "
            f"gradstat.sample_gradients (or declare a discrete one with "
            f"gradstat.per_state_estimator)"
        )
    check_states(problem.net, max_states, f"exact moments of {spec.name!r}")
    full = not isinstance(spec, Estimator)
    opts, baselines = kernel_options(spec, options, problem, max_states)
    _, ex_grad = reference_gradient(problem, max_states, f"exact moments of {spec.name!r}")
    s0 = problem.net.n_params - problem.n_compressed
    G = ex_grad if full else np.ascontiguousarray(ex_grad[:, s0:])
    seg = problem.segment_starts(full)
    dw = problem.descent_weights(G, full)
    B = problem.n_examples
    everything = slice(0, B)
    m, m2, sign, desc, _ = _run_moments(
        problem, spec, opts, baselines, G, dw, seg, everything, False
    )
    var = np.maximum(m2 - m**2, 0.0)
    ex_mean = ex_grad + expand_mean(problem, m, full)
    ex_var = expand_square(problem, var, full)
    cov = None
    if full_cov:
        cov = np.zeros((problem.net.n_params, problem.net.n_params))
        for b in range(B):
            one = slice(b, b + 1)
            cov_b = _run_moments(problem, spec, opts, baselines, G, dw, seg, one, True)[4]
            cov_b -= np.outer(m[b], m[b])
            M = expansion_matrix(problem, b, full)
            cov += M @ cov_b @ M.T
        cov /= B**2
    return EstimatorMoments(
        estimator=spec.name,
        options=options,
        gradient=ex_grad.mean(axis=0),
        mean=ex_mean.mean(axis=0),
        var=ex_var.sum(axis=0) / B**2,
        cov=cov,
        example_gradient=ex_grad,
        example_mean=ex_mean,
        example_var=ex_var,
        sign_probability=expand_sign(problem, sign, full),
        descent_probability=desc,
        descent_labels=descent_labels(problem.net),
    )


def estimator_moments(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    *,
    full_cov: bool = False,
    max_states: int = DEFAULT_MAX_STATES,
    **options: Any,
) -> EstimatorMoments:
    """Exact mean and variance of an estimator's batch estimate, by enumerating its noise.

    For one example, ``E[g_hat] = sum_h P(h) g_hat(h)`` and ``Var[g_hat_j] =
    sum_h P(h) (g_hat_j(h) - E g_hat_j)^2`` over all ``2^N`` noise states (for ``sts``
    the states of the bits ``b ~ Bernoulli(sqrt(p))``). For a batch, each example has
    independent noise: the mean is the mean of the per-example means and the variance is
    ``(1/B^2) sum_x var_x`` (SPEC section 3).

    Parameters
    ----------
    net, x, t
        Network, one example ``(n_in,)`` or a batch ``(B, n_in)``, and targets.
    estimator : str or PerStateEstimator
        A registered name (:func:`gradstat.available_estimators`) or a user's jitted
        per-state function wrapped by :func:`gradstat.per_state_estimator`.
    full_cov : bool
        Also return the full covariance matrix (costs ``O(n_params^2)`` per state).
    max_states : int
        Refuse to enumerate more than this many states per example.
    **options
        Estimator options, e.g. ``baseline="optimal"`` for ``reinforce``.

    Raises
    ------
    ValueError
        Unknown estimator, an estimator with continuous noise, too many states.
    TypeError
        Unknown option names.
    """
    spec, opts = resolve_estimator(estimator, options)
    problem = make_problem(net, x, t)
    return moments_pass(problem, spec, opts, full_cov=bool(full_cov), max_states=max_states)
