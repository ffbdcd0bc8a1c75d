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
from math import exp
from typing import Any

import numpy as np
from numba import njit, prange

from gradstat.estimators import Estimator, get_estimator
from gradstat.estimators.per_state import estimate_state
from gradstat.forward import forward_state, loss_and_grad, offsets, output_gradient, score_vector
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
    A1: np.ndarray,
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
    B = A1.shape[0]
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
        ga = np.empty(n_units)
        gp = np.empty(n_units)
        gbit = np.empty(n_units)
        gh = np.empty(n_units)
        gy = np.empty(n_out)
        gdy = np.empty(n_out)
        forward_state(theta, sizes, woff, boff, uoff, A1[b], 0, half, False, ga, gp, gbit, gh, gy)
        ref = loss_and_grad(loss, gy, T[b], gdy)
        for c in prange(nc):
            a = np.empty(n_units)
            p = np.empty(n_units)
            bit = np.empty(n_units)
            h = np.empty(n_units)
            y = np.empty(n_out)
            dy = np.empty(n_out)
            s = np.empty(Pc)
            for state in range(c * S // nc, (c + 1) * S // nc):
                logp = forward_state(
                    theta, sizes, woff, boff, uoff, A1[b], state, no_u, False, a, p, bit, h, y
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


@njit(parallel=True, cache=True)
def _moments_kernel(
    theta: np.ndarray,
    sizes: np.ndarray,
    A1: np.ndarray,
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
    """Exact moments of estimator ``code``, per example, in the compressed layout.

    Returns ``E[d]``, ``E[d^2]`` with ``d = g_hat - g`` (shifting by the exact gradient
    ``G`` keeps the variance free of cancellation), ``P(sign g_hat_j = sign g_j)``,
    descent probabilities ``P(<g_hat, g> > 0)`` per segment (layers, output), over all
    parameters and over the stochastic layers, and (``want_cov``) ``sum_x E[d d^T]``.
    """
    woff, boff, uoff = offsets(sizes)
    n_units = uoff[uoff.shape[0] - 1]
    B = A1.shape[0]
    n_out = sizes[sizes.shape[0] - 1]
    Pc = theta.shape[0] - sizes[0] * sizes[1]
    n_seg = seg.shape[0] - 1
    width = 1
    for l in range(1, sizes.shape[0] - 1):
        if sizes[l] > width:
            width = sizes[l]
    S = np.int64(1) << n_units
    nc = _n_chunks(S, CHUNKS // 4 if want_cov else CHUNKS)
    n_cov = Pc if want_cov else 0
    acc_m = np.zeros((B, nc, Pc))
    acc_m2 = np.zeros((B, nc, Pc))
    acc_sign = np.zeros((B, nc, Pc))
    acc_desc = np.zeros((B, nc, n_seg + 2))
    acc_cov = np.zeros((nc, n_cov, n_cov))
    no_u = np.empty(0)
    for b in range(B):
        for c in prange(nc):
            a = np.empty(n_units)
            p = np.empty(n_units)
            bit = np.empty(n_units)
            h = np.empty(n_units)
            jac = np.empty(n_units)
            y = np.empty(n_out)
            dy = np.empty(n_out)
            work = np.empty((2, width))
            e = np.empty(Pc)
            d = np.empty(Pc)
            dots = np.empty(n_seg)
            for state in range(c * S // nc, (c + 1) * S // nc):
                logp = forward_state(
                    theta, sizes, woff, boff, uoff, A1[b], state, no_u, smooth, a, p, bit, h, y
                )
                w = exp(logp)
                C = loss_and_grad(loss, y, T[b], dy)
                estimate_state(
                    code, opts, theta, sizes, woff, boff, uoff, a, p, bit, h, dy, C,
                    baselines[b], jac, work, e,
                )  # fmt: skip
                for k in range(Pc):
                    dk = e[k] - G[b, k]
                    d[k] = dk
                    acc_m[b, c, k] += w * dk
                    acc_m2[b, c, k] += w * dk * dk
                    if _sign(e[k]) == _sign(G[b, k]):
                        acc_sign[b, c, k] += w
                total = 0.0
                for q in range(n_seg):
                    v = 0.0
                    for k in range(seg[q], seg[q + 1]):
                        v += e[k] * DW[b, k]
                    dots[q] = v
                    total += v
                    if v > 0.0:
                        acc_desc[b, c, q] += w
                if total > 0.0:
                    acc_desc[b, c, n_seg] += w
                if total - dots[n_seg - 1] > 0.0:
                    acc_desc[b, c, n_seg + 1] += w
                if want_cov:
                    for i in range(Pc):
                        wd = w * d[i]
                        for j in range(Pc):
                            acc_cov[c, i, j] += wd * d[j]
    m = np.zeros((B, Pc))
    m2 = np.zeros((B, Pc))
    sign = np.zeros((B, Pc))
    desc = np.zeros((B, n_seg + 2))
    cov = np.zeros((n_cov, n_cov))
    for b in range(B):
        for c in range(nc):
            m[b] += acc_m[b, c]
            m2[b] += acc_m2[b, c]
            sign[b] += acc_sign[b, c]
            desc[b] += acc_desc[b, c]
    for c in range(nc):
        cov += acc_cov[c]
    return m, m2, sign, desc, cov


def gradient_pass(
    problem: Problem, want_stats: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-example ``E[C]``, compressed exact gradient, and optimal-baseline sums."""
    with threads_for(problem.work()):
        return _gradient_kernel(
            problem.theta, problem.sizes, problem.A1, problem.T, problem.loss_code, want_stats
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
        Refuse to enumerate more than this many joint states ``2^N`` per example.

    Raises
    ------
    ValueError
        For malformed input, or when ``2^N > max_states`` (the message says what to use).
    """
    problem = make_problem(net, x, t)
    check_states(net, max_states, "expected_loss")
    losses, _, _, _ = gradient_pass(problem)
    return float(np.mean(losses))


def exact_gradient(
    net: BinaryNetwork, x: Any, t: Any, *, max_states: int = DEFAULT_MAX_STATES
) -> np.ndarray:
    """Exact gradient ``g = grad_theta J`` by enumerating the ``2^N`` hidden states.

    Uses the score-function identity ``g = E[C(h) grad log P(h | x) + grad C(y(h), t)]``,
    summed exactly over all states (no sampling). Returns shape ``(n_params,)`` in SPEC
    order; for a batch, the mean over examples.
    """
    problem = make_problem(net, x, t)
    check_states(net, max_states, "exact_gradient")
    _, grads, _, _ = gradient_pass(problem)
    return expand_mean(problem, grads).mean(axis=0)


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
    spec: Estimator, options: dict[str, Any], problem: Problem, max_states: int
) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's option array and per-example baseline rows for the kernels."""
    B, Pc = problem.n_examples, problem.n_compressed
    opts = np.zeros(0)
    baseline = options.get("baseline", "none")
    if spec.name != "reinforce" or baseline == "none":
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


def moments_pass(
    problem: Problem,
    spec: Estimator,
    options: dict[str, Any],
    *,
    full_cov: bool,
    max_states: int,
) -> EstimatorMoments:
    """Exact moments of a registered estimator on a validated problem."""
    if spec.noise != "discrete":
        raise ValueError(
            f"estimator {spec.name!r} has continuous noise: its moments cannot be enumerated; "
            f"use gradstat.analyze(..., method='mc') or gradstat.sample_gradients"
        )
    check_states(problem.net, max_states, f"exact moments of {spec.name!r}")
    opts, baselines = kernel_options(spec, options, problem, max_states)
    _, grads_c, _, _ = gradient_pass(problem)
    seg = problem.segment_starts()
    dw = problem.descent_weights(grads_c)
    args = (problem.theta, problem.sizes)
    kernel_tail = (problem.loss_code, spec.code, spec.smooth, opts)
    with threads_for(problem.work()):
        m, m2, sign, desc, _ = _moments_kernel(
            *args, problem.A1, problem.T, *kernel_tail, baselines, grads_c, dw, seg, False
        )
    var_c = np.maximum(m2 - m**2, 0.0)
    ex_grad = expand_mean(problem, grads_c)
    ex_mean = ex_grad + expand_mean(problem, m)
    ex_var = expand_square(problem, var_c)
    B = problem.n_examples
    cov = None
    if full_cov:
        cov = np.zeros((problem.net.n_params, problem.net.n_params))
        for b in range(B):
            one = slice(b, b + 1)
            with threads_for(problem.work() * problem.n_compressed // B):
                _, _, _, _, cov_b = _moments_kernel(
                    *args, problem.A1[one], problem.T[one], *kernel_tail,
                    baselines[one], grads_c[one], dw[one], seg, True,
                )  # fmt: skip
            cov_b -= np.outer(m[b], m[b])
            M = expansion_matrix(problem, b)
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
        sign_probability=expand_sign(problem, sign),
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
    estimator : str
        A registered name (:func:`gradstat.available_estimators`).
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
    spec = get_estimator(estimator)
    opts = spec.resolve_options(options)
    problem = make_problem(net, x, t)
    return moments_pass(problem, spec, opts, full_cov=bool(full_cov), max_states=max_states)
