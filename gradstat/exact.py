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

from gradstat.accumulate import accumulate, new_accumulators, reduce_chunks
from gradstat.estimators import Estimator
from gradstat.estimators.arm import cells_kernel
from gradstat.estimators.per_state import WS_ROWS, draw_estimate, workspace_columns
from gradstat.estimators.score_function import REINFORCE
from gradstat.estimators.user import AnyEstimator, PythonEstimator, resolve_estimator
from gradstat.forward import (
    PM1,
    SMOOTH,
    forward_state,
    layer1_table,
    loss_and_grad,
    offsets,
    output_gradient,
    score_vector,
    state_buffers,
)
from gradstat.layerwise import (
    SCORE,
    SURROGATE,
    layerwise_cost,
    layerwise_gradient,
    layerwise_moments,
    layerwise_moments_cost,
)
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


@njit(parallel=True, cache=True)
def _gradient_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    mode: int,
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
        forward_state(theta, sizes, woff, boff, uoff, L1[b], 0, half, mode, ga, gp, gbit, gh, gy)
        ref = loss_and_grad(loss, gy, T[b], gdy)
        for c in prange(nc):
            a, p, bit, h, y, dy = state_buffers(n_units, n_out)
            s = np.empty(Pc)
            for state in range(c * S // nc, (c + 1) * S // nc):
                logp = forward_state(
                    theta, sizes, woff, boff, uoff, L1[b], state, no_u, mode, a, p, bit, h, y
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
    low: float, y: np.ndarray,
) -> float:  # fmt: skip
    """``log P(s)`` and ``y(s)`` (into ``y``) of state ``s`` of a one-layer network."""
    logp = 0.0
    for i in range(n1):
        logp += tab[2, i] if (s >> i) & 1 else tab[3, i]
    for o in range(n_out):
        v = theta[boff + o]
        for i in range(n1):
            v += theta[woff + o * n1 + i] * (1.0 if (s >> i) & 1 else low)
        y[o] = v
    return logp


@njit(parallel=True, cache=True)
def _one_layer_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    mode: int,
    want_stats: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_gradient_kernel` for one stochastic layer, visiting states in Gray-code order.

    Consecutive states differ in one unit ``k``, so ``log P`` changes by
    ``+-(log p_k - log(1 - p_k))`` and ``y`` by ``+-(1 - low) W_o[:, k]`` (``low`` the value
    of a unit that does not fire): ``O(n_out)`` per state instead of a forward pass (both
    are recomputed exactly every :data:`RESYNC` states). Because ``p`` does not depend on
    the state, ``sum_h r (b_i - p_i)`` is accumulated as the sum of ``r`` over states with
    ``b_i = 1`` minus ``p_i sum_h r``; likewise ``dC/dW_o`` sums ``w dC/dy`` over states
    where the unit fires and adds ``low`` times the rest.
    """
    low = -1.0 if mode == PM1 else 0.0
    step = 1.0 - low
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
        _one_layer_start(theta, tab, greedy, n1, n_out, woff, boff, low, gy)
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
                    logp = _one_layer_start(theta, tab, s, n1, n_out, woff, boff, low, y)
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
                        y[o] += sign * step * theta[woff + o * n1 + k]
    losses = np.zeros(B)
    grads = np.zeros((B, Pc))
    s2c = np.zeros((B, n_stat))
    s2 = np.zeros((B, n_stat))
    for b in range(B):
        R = 0.0
        W = 0.0
        for cc in range(nc):
            losses[b] += acc[b, cc, Pc + 1]
            R += acc[b, cc, Pc]
            W += acc[b, cc, Pc + 2]
            for k in range(Pc):
                grads[b, k] += acc[b, cc, k]
            for i in range(n_stat):
                s2c[b, i] += acc_stats[b, cc, 0, i]
                s2[b, i] += acc_stats[b, cc, 1, i]
        if low != 0.0:
            for o in range(n_out):
                total = grads[b, boff - sizes[0] * n1 + o]
                for i in range(n1):
                    on = grads[b, n1 + o * n1 + i]
                    grads[b, n1 + o * n1 + i] = on + low * (total - on)
        for i in range(n1):
            p1 = L1[b, 1, i]
            grads[b, i] -= p1 * R
            if want_stats:
                # (h - p)^2 = h (1 - 2p) + p^2 for h in {0, 1}.
                s2c[b, i] = (1.0 - 2.0 * p1) * s2c[b, i] + p1 * p1 * losses[b]
                s2[b, i] = (1.0 - 2.0 * p1) * s2[b, i] + p1 * p1 * W
    return losses, grads, s2c, s2


@njit(parallel=True, cache=True)
def _moments_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    L1: np.ndarray,
    T: np.ndarray,
    loss: int,
    code: int,
    mode: int,
    n_bits: int,
    opts: np.ndarray,
    baselines: np.ndarray,
    G: np.ndarray,
    DW: np.ndarray,
    seg: np.ndarray,
    want_cov: bool,
    cols: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact moments of built-in estimator ``code``, per example, in the compressed layout.

    Sums over the ``2^n_bits`` noise states (``n_bits = N``, or ``N k`` for ``k`` draws).
    Returns ``E[d]``, ``E[d^2]`` with ``d = g_hat - g``, ``P(sign g_hat_j = sign g_j)``,
    descent probabilities (see :func:`gradstat.accumulate.accumulate`) and (``want_cov``)
    ``sum_x E[d d^T]``.
    """
    woff, boff, uoff = offsets(sizes)
    B, n = G.shape
    n_seg = seg.shape[0] - 1
    S = np.int64(1) << n_bits
    nc = _n_chunks(S, CHUNKS // 4 if want_cov else CHUNKS)
    acc_m, acc_m2, acc_sign, acc_desc, acc_cov = new_accumulators(B, nc, n, n_seg, want_cov)
    no_u = np.empty(0)
    for b in range(B):
        for c in prange(nc):
            ws = np.empty((WS_ROWS, cols))
            e = np.empty(n)
            d = np.empty(n)
            dots = np.empty(n_seg)
            for state in range(c * S // nc, (c + 1) * S // nc):
                logp = draw_estimate(
                    code, opts, theta, sizes, woff, boff, uoff, L1[b], T[b], loss, mode, state,
                    no_u, baselines[b], ws, e,
                )  # fmt: skip
                accumulate(
                    exp(logp), e, G[b], DW[b], seg, acc_m[b, c], acc_m2[b, c],
                    acc_sign[b, c], acc_desc[b, c], d, dots, acc_cov[c],
                )  # fmt: skip
    return reduce_chunks(acc_m, acc_m2, acc_sign, acc_desc, acc_cov)


@cache
def user_moments_kernel(fn: Any) -> Any:
    """The enumeration kernel for a user's jitted per-state function (full layout).

    Compiled once per function and process (a kernel that calls a user function cannot be
    cached on disk); it shares the forward pass and :func:`gradstat.accumulate.accumulate`
    with the built-in kernel, so only the estimate differs.
    """

    @njit(parallel=True)
    def kernel(theta, sizes, X, L1, T, loss, mode, G, DW, seg, want_cov):  # noqa: ANN001, ANN202
        woff, boff, uoff = offsets(sizes)
        n_units = uoff[uoff.shape[0] - 1]
        B, n = G.shape
        n_out = sizes[sizes.shape[0] - 1]
        n_seg = seg.shape[0] - 1
        S = np.int64(1) << n_units
        nc = _n_chunks(S, CHUNKS // 4 if want_cov else CHUNKS)
        acc_m, acc_m2, acc_sign, acc_desc, acc_cov = new_accumulators(B, nc, n, n_seg, want_cov)
        no_u = np.empty(0)
        for b in range(B):
            for c in prange(nc):
                a, p, bit, h, y, dy = state_buffers(n_units, n_out)
                e = np.empty(n)
                d = np.empty(n)
                dots = np.empty(n_seg)
                for state in range(c * S // nc, (c + 1) * S // nc):
                    logp = forward_state(
                        theta, sizes, woff, boff, uoff, L1[b], state, no_u, mode, a, p, bit,
                        h, y,
                    )  # fmt: skip
                    C = loss_and_grad(loss, y, T[b], dy)
                    e[:] = 0.0
                    fn(theta, sizes, X[b], T[b], no_u, a, p, h, y, dy, C, e)
                    accumulate(
                        exp(logp), e, G[b], DW[b], seg, acc_m[b, c], acc_m2[b, c],
                        acc_sign[b, c], acc_desc[b, c], d, dots, acc_cov[c],
                    )  # fmt: skip
        return reduce_chunks(acc_m, acc_m2, acc_sign, acc_desc, acc_cov)

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
            layer1_table(problem.A1, problem.mode),
            problem.T,
            problem.loss_code,
            problem.mode,
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


def check_layerwise_states(net: BinaryNetwork, max_states: int, what: str) -> None:
    """Refuse a message pass whose widest pair of adjacent layers exceeds ``max_states``."""
    hidden = net.hidden_sizes
    widest = max(a + b for a, b in zip(hidden[:-1], hidden[1:]))
    if 2**widest > max_states:
        raise ValueError(
            f"{what} by layer-wise messages enumerates 2^{widest} = {2**widest:,} pairs of "
            f"adjacent layer states, more than max_states = {max_states:,}; the network is "
            f"too wide to compute exactly: use Monte Carlo draws (gradstat.sample_gradients, "
            f"gradstat.stats.compare_estimators)"
        )


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
    check_layerwise_states(net, max_states, what)
    tab = layer1_table(problem.A1, problem.mode)
    with threads_for(problem.n_examples * layerwise_cost(net.sizes)):
        return layerwise_gradient(
            problem.theta, problem.sizes, tab, problem.X, problem.T, problem.loss_code, problem.low
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
    engine : str
        How the moments were computed: ``"joint"`` (all noise states), ``"cells"``
        (ARM/DisARM's cells of ``u``) or ``"layerwise"`` (messages over adjacent layers;
        sign and descent probabilities are then NaN: they are not sums over adjacent
        layer states).
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
    engine: str = "joint"

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


def check_values(spec: AnyEstimator, net: BinaryNetwork) -> None:
    """Refuse an estimator on unit values it is not defined for (``sts``, rectifier: 0/1)."""
    if isinstance(spec, Estimator) and net.values not in spec.values:
        raise ValueError(
            f"estimator {spec.name!r} is not defined for units with values={net.values!r}; "
            f"it takes networks with values in {spec.values} (build the network with "
            f"values='01')"
        )


def kernel_options(
    spec: AnyEstimator, options: dict[str, Any], problem: Problem, max_states: int
) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's option array and per-example baseline rows for the kernels."""
    B, Pc = problem.n_examples, problem.n_compressed
    if not isinstance(spec, Estimator):
        return np.zeros(1), np.zeros((B, Pc))
    opts = np.ascontiguousarray(spec.encode(options), dtype=np.float64)
    baseline = options.get("baseline", "none")
    if spec.name != "reinforce" or baseline == "none":
        return opts, np.zeros((B, Pc))
    if isinstance(baseline, float):
        return opts, np.full((B, Pc), baseline)
    what = f"the {baseline!r} baseline (an exact oracle)"
    if baseline == "mean":
        losses, _ = reference_gradient(problem, max_states, what)
        return opts, np.repeat(losses[:, None], Pc, axis=1)
    if gradient_engine(problem.net) == "layerwise":
        check_layerwise_states(problem.net, max_states, what)
        used = np.zeros((B, problem.net.n_params))
        with threads_for(B * layerwise_moments_cost(problem.net.sizes, SCORE)):
            layerwise_moments(
                problem.theta, problem.sizes, problem.A1, problem.X, problem.T,
                problem.loss_code, problem.low, SCORE, REINFORCE, opts, "optimal", used,
            )  # fmt: skip
        return opts, np.ascontiguousarray(used[:, problem.net.n_params - Pc :])
    check_states(problem.net, max_states, what)
    losses, _, s2c, s2 = gradient_pass(problem, want_stats=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(s2 > 0.0, s2c / np.where(s2 > 0.0, s2, 1.0), 0.0)
    return opts, np.ascontiguousarray(np.pad(c, ((0, 0), (0, Pc - c.shape[1]))))


def workspace_for(problem: Problem, spec: AnyEstimator, options: dict[str, Any]) -> int:
    """Columns of the kernels' scratch array for ``spec`` on ``problem``."""
    net = problem.net
    k = int(options.get("k", 1)) if isinstance(spec, Estimator) else 1
    return workspace_columns(
        net.n_stochastic, net.n_out, problem.n_compressed, max(net.hidden_sizes), k
    )


def unit_mode(problem: Problem, spec: AnyEstimator) -> int:
    """The forward pass's unit mode for ``spec``: STS's smooth units, else the network's."""
    return SMOOTH if isinstance(spec, Estimator) and spec.smooth else problem.mode


def exact_engine(spec: AnyEstimator, net: BinaryNetwork) -> str | None:
    """``"joint"`` (noise states), ``"cells"`` (ARM/DisARM, one layer) or None (Monte Carlo)."""
    if isinstance(spec, Estimator):
        return spec.exact_engine(net.n_layers)
    if isinstance(spec, PythonEstimator) or spec.noise != "discrete":
        return None
    return "joint"


def exact_count(spec: AnyEstimator, net: BinaryNetwork, options: dict[str, Any]) -> int:
    """Noise states (or cells) an exact computation of ``spec``'s moments sums over."""
    if isinstance(spec, Estimator):
        return spec.exact_count(net.hidden_sizes, options)
    return net.n_states


def check_exact(
    spec: AnyEstimator, net: BinaryNetwork, options: dict[str, Any], max_states: int
) -> str:
    """The exact engine for ``spec``'s moments, or a ValueError saying what to use instead."""
    engine = exact_engine(spec, net)
    if engine is None:
        why = (
            "its ARM cells are enumerated for one stochastic layer only"
            if isinstance(spec, Estimator) and spec.cells
            else "it has continuous or undeclared noise"
        )
        raise ValueError(
            f"the moments of estimator {spec.name!r} cannot be enumerated ({why}); use "
            f"gradstat.analyze(..., method='mc') or gradstat.sample_gradients (or declare a "
            f"discrete one with gradstat.per_state_estimator)"
        )
    check_states(net, max_states, f"exact moments of {spec.name!r}")
    count = exact_count(spec, net, options)
    if count > max_states:
        what = "cells of u" if engine == "cells" else "noise states"
        raise ValueError(
            f"exact moments of {spec.name!r} sum over {count:,} {what} per example, more than "
            f"max_states = {max_states:,}. Use method='mc' (gradstat.analyze(..., method='mc', "
            f"n_samples=..., seed=...)) or raise max_states if you can afford it."
        )
    return engine


ENGINES = ("auto", "joint", "cells", "layerwise")
"""Exact-moment engines a caller may ask for (``"auto"`` chooses by cost)."""

JOINT_PREFERRED_WORK = 2**26
"""``"auto"`` keeps joint enumeration up to this many state-coordinate updates per example
(a fraction of a second) even where messages are cheaper: it alone also gives exact sign
agreement and descent probabilities."""


def layerwise_family(spec: AnyEstimator) -> str | None:
    """``"score"`` (REINFORCE), ``"surrogate"`` (straight-through type) or None: whether
    ``spec``'s exact moments can be computed by messages over adjacent layers."""
    if not (isinstance(spec, Estimator) and spec.layerwise):
        return None
    return SCORE if spec.code == REINFORCE else SURROGATE


def layerwise_states(net: BinaryNetwork) -> int:
    """Largest number of (pairs of) layer states one message enumerates at once."""
    hidden = net.hidden_sizes
    return 2 ** max([hidden[0], *(a + b for a, b in zip(hidden[:-1], hidden[1:]))])


def _layerwise_refusal(spec: AnyEstimator) -> str:
    if isinstance(spec, Estimator) and spec.smooth:
        return (
            "STS passes on h = b sqrt(p(a)), which depends on the layer below, so its "
            "estimate is not a function of adjacent layers' states (not Markov)"
        )
    return (
        "only REINFORCE and the straight-through-type estimators (st, st_sigmoid, "
        "st_tempered, reinmax) are sums over adjacent layers' states"
    )


def moments_engine(
    spec: AnyEstimator,
    net: BinaryNetwork,
    options: dict[str, Any],
    max_states: int,
    *,
    engine: str = "auto",
    full_cov: bool = False,
) -> str:
    """The engine for ``spec``'s exact moments, or a ValueError saying what to use instead.

    ``"joint"`` sums over all noise states (``"cells"`` for ARM/DisARM on one layer);
    ``"layerwise"`` passes messages over adjacent layers (:mod:`gradstat.layerwise`; mean
    and variance only, REINFORCE and straight-through-type estimators). ``"auto"`` takes
    the cheaper of the two that fit ``max_states``, keeping joint enumeration when its
    work is below :data:`JOINT_PREFERRED_WORK` (it also gives sign agreement and descent
    probability). Work: ``count x n_params`` for joint enumeration,
    :func:`gradstat.layerwise.layerwise_moments_cost` for messages.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    family = layerwise_family(spec)
    name = spec.name
    if engine == "layerwise" or (engine == "auto" and family is not None and not full_cov):
        problems = []
        if family is None:
            problems.append(_layerwise_refusal(spec))
        elif full_cov:
            problems.append("full_cov needs joint enumeration (messages give variances only)")
        elif layerwise_states(net) > max_states:
            problems.append(
                f"it enumerates {layerwise_states(net):,} pairs of adjacent layer states, "
                f"more than max_states = {max_states:,}"
            )
        if engine == "layerwise":
            if problems:
                raise ValueError(
                    f"exact moments of {name!r} by layer-wise messages are not available: "
                    f"{problems[0]}; use engine='joint' (or 'auto') or method='mc'"
                )
            return "layerwise"
        if not problems:
            try:
                joint = check_exact(spec, net, options, max_states)
            except ValueError:
                return "layerwise"
            joint_work = exact_count(spec, net, options) * net.n_params
            messages = layerwise_moments_cost(net.sizes, family)
            return joint if joint_work <= max(messages, JOINT_PREFERRED_WORK) else "layerwise"
    found = check_exact(spec, net, options, max_states)
    if engine != "auto" and engine != found:
        raise ValueError(
            f"exact moments of {name!r} on this network use engine {found!r}, not "
            f"{engine!r}; pass engine='auto' or engine={found!r}"
        )
    return found


def _layerwise_pass(
    problem: Problem, spec: AnyEstimator, options: dict[str, Any]
) -> EstimatorMoments:
    """Exact means and variances by messages (:func:`gradstat.layerwise.layerwise_moments`)."""
    net = problem.net
    family = layerwise_family(spec)
    opts = np.ascontiguousarray(spec.encode(options), dtype=np.float64)
    work = problem.n_examples * layerwise_moments_cost(net.sizes, family)
    with threads_for(work):
        _, ex_grad, ex_mean, ex_var = layerwise_moments(
            problem.theta, problem.sizes, problem.A1, problem.X, problem.T, problem.loss_code,
            problem.low, family, spec.code, opts, options.get("baseline", "none"),
        )  # fmt: skip
    B = problem.n_examples
    labels = descent_labels(net)
    return EstimatorMoments(
        estimator=spec.name,
        options=options,
        gradient=ex_grad.mean(axis=0),
        mean=ex_mean.mean(axis=0),
        var=ex_var.sum(axis=0) / B**2,
        cov=None,
        example_gradient=ex_grad,
        example_mean=ex_mean,
        example_var=ex_var,
        sign_probability=np.full_like(ex_grad, np.nan),
        descent_probability=np.full((B, len(labels)), np.nan),
        descent_labels=labels,
        engine="layerwise",
    )


def _run_moments(
    problem: Problem,
    spec: AnyEstimator,
    options: dict[str, Any],
    opts: np.ndarray,
    baselines: np.ndarray,
    G: np.ndarray,
    dw: np.ndarray,
    seg: np.ndarray,
    rows: slice,
    want_cov: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One enumeration over the examples ``rows`` with the kernel that fits ``spec``."""
    mode = unit_mode(problem, spec)
    L1, T = layer1_table(problem.A1[rows], mode), problem.T[rows]
    net = problem.net
    count = exact_count(spec, net, options)
    work = L1.shape[0] * count * G.shape[1] * (G.shape[1] if want_cov else 1)
    with threads_for(work):
        if isinstance(spec, Estimator) and exact_engine(spec, net) == "cells":
            return cells_kernel(
                spec.name == "disarm", problem.theta, problem.sizes, L1, T, problem.loss_code,
                G[rows], dw[rows], seg, want_cov, CHUNKS // 4 if want_cov else CHUNKS,
            )  # fmt: skip
        if isinstance(spec, Estimator):
            return _moments_kernel(
                problem.theta, problem.sizes, L1, T, problem.loss_code, spec.code, mode,
                spec.noise_size(net.hidden_sizes, options), opts, baselines[rows], G[rows],
                dw[rows], seg, want_cov, workspace_for(problem, spec, options),
            )  # fmt: skip
        kernel = user_moments_kernel(spec.function)
        return kernel(
            problem.theta, problem.sizes, problem.X[rows], L1, T, problem.loss_code, mode,
            G[rows], dw[rows], seg, want_cov,
        )  # fmt: skip


def moments_pass(
    problem: Problem,
    spec: AnyEstimator,
    options: dict[str, Any],
    *,
    full_cov: bool,
    max_states: int,
    engine: str = "auto",
) -> EstimatorMoments:
    """Exact moments of a registered or per-state user estimator on a validated problem.

    ``engine`` is resolved by :func:`moments_engine`. Built-in estimators work in the
    compressed layout, per-state user functions in the full one (``full``); both are
    expanded to the full layout here.
    """
    check_values(spec, problem.net)
    engine = moments_engine(
        spec, problem.net, options, max_states, engine=engine, full_cov=full_cov
    )
    if engine == "layerwise":
        return _layerwise_pass(problem, spec, options)
    full = not isinstance(spec, Estimator)
    opts, baselines = kernel_options(spec, options, problem, max_states)
    _, ex_grad = reference_gradient(problem, max_states, f"exact moments of {spec.name!r}")
    s0 = problem.net.n_params - problem.n_compressed
    G = ex_grad if full else np.ascontiguousarray(ex_grad[:, s0:])
    seg = problem.segment_starts(full)
    dw = problem.descent_weights(G, full)
    B = problem.n_examples
    everything = slice(0, B)
    args = (problem, spec, options, opts, baselines, G, dw, seg)
    m, m2, sign, desc, _ = _run_moments(*args, everything, False)
    var = np.maximum(m2 - m**2, 0.0)
    ex_mean = ex_grad + expand_mean(problem, m, full)
    ex_var = expand_square(problem, var, full)
    cov = None
    if full_cov:
        cov = np.zeros((problem.net.n_params, problem.net.n_params))
        for b in range(B):
            cov_b = _run_moments(*args, slice(b, b + 1), True)[4]
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
        engine=engine,
    )


def estimator_moments(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    *,
    full_cov: bool = False,
    max_states: int = DEFAULT_MAX_STATES,
    engine: str = "auto",
    **options: Any,
) -> EstimatorMoments:
    """Exact mean and variance of an estimator's batch estimate, by enumerating its noise.

    For one example, ``E[g_hat] = sum_h P(h) g_hat(h)`` and ``Var[g_hat_j] =
    sum_h P(h) (g_hat_j(h) - E g_hat_j)^2`` over all ``2^N`` noise states (for ``sts``
    the states of the bits ``b ~ Bernoulli(sqrt(p))``), or, for REINFORCE and the
    straight-through-type estimators on deep networks, the same sums by messages over
    adjacent layers (:func:`gradstat.layerwise.layerwise_moments`, linear in depth). For a
    batch, each example has independent noise: the mean is the mean of the per-example
    means and the variance is ``(1/B^2) sum_x var_x`` (SPEC section 3).

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
        Refuse to enumerate more than this many states per example (joint states, or
        pairs of adjacent layer states for ``engine="layerwise"``).
    engine : {"auto", "joint", "cells", "layerwise"}
        ``"joint"`` enumerates all noise states; ``"layerwise"`` passes messages over
        adjacent layers (REINFORCE and straight-through-type estimators; mean and variance
        only, ``sign_probability`` and ``descent_probability`` are NaN); ``"auto"`` picks by
        cost (see :func:`moments_engine`) and ``result.engine`` says which ran.
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
    return moments_pass(
        problem, spec, opts, full_cov=bool(full_cov), max_states=max_states, engine=engine
    )
