"""Monte Carlo draws of gradient estimates.

**Streams.** The noise of built-in estimators and of :func:`gradstat.per_state_estimator`
functions is counter-based: number ``k`` of example ``b`` in draw ``n`` (``n = 0, 1, ...``
over one call's ``n_samples``) is word ``k mod 4`` of Philox4x64-10
(:mod:`gradstat.kernels.philox`) with counter ``(n, b, k div 4, 0)`` and key
``seed.generate_state(2, numpy.uint64)``, turned into a uniform strictly inside ``(0, 1)``
(or, for the noisy rectifier, a standard normal by Box-Muller). Each draw is therefore its
own stream, a pure function of ``(seed, n, b)``. The kernels split the draws into chunks of
``CHUNK_DRAWS`` that threads take in parallel with no shared state; the numbers do not
depend on the chunk size, the thread count or, for :func:`draw_blocks`, the block size.

A plain Python estimator draws its own noise from the ``rng`` it is given: draws
``c PYTHON_CHUNK .. (c + 1) PYTHON_CHUNK - 1`` (examples in order within a draw) share the
generator ``numpy.random.default_rng(child)``, where ``child`` is the ``SeedSequence``
with the seed's entropy and spawn key ``seed.spawn_key + (c,)`` (what ``seed.spawn``
would give as its ``c``-th child); the chunks run one after the other.

**Reproducibility.** For one seed, the draws are the same bits for any number of threads,
chunk size or block size, and from one run to the next. The uniforms are exact integer
functions of ``(seed, n, b, k)`` on every machine; the estimates computed from them use
the platform's ``exp`` and ``log``, so on other hardware or library versions they may differ
in the last bits. The per-example estimates of :func:`draw_blocks`, and those that
:func:`gradstat.analyze` sums inside its kernel (:mod:`gradstat.engines.streaming`), use
the same noise as :func:`sample_gradients`: for a single example they are its batch
estimates exactly. These streams are not those of
gradstat versions that drew all uniforms from one ``default_rng(seed)``.

**Memory.** Each parallel chunk builds a few rows in about 16 KB of scratch (the batch
estimate in the docs/model.md layout, with ``W_1``'s block expanded from ``b_1``'s in the
kernel, or the per-example estimates) and copies them to the caller's array in one go, so
a call needs its output and a few KB per chunk, never a copy of the output.
``analyze(method="mc")`` stores no draw at all: it keeps per-group sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradstat._validation import (
    MAX_VALUES,
    check_array,
    check_generator,
    check_int,
    check_n_samples,
    check_seed,
    check_size,
)
from gradstat.engines.sampling import Sampler, draw_noise, make_sampler
from gradstat.estimators.registry import EstimatorBase
from gradstat.estimators.user import guard_engines, resolve_estimator
from gradstat.network import BinaryNetwork
from gradstat.problem import (
    DEFAULT_MAX_STATES,
    Problem,
    check_max_states,
    check_network,
    make_problem,
    sample_state,
    states_advice,
)


def _sampler(
    problem: Problem,
    spec: EstimatorBase,
    options: dict[str, Any],
    seed: np.random.SeedSequence,
    max_states: int,
) -> Sampler:
    """:func:`make_sampler`, with advice that fits sampling when an oracle baseline cannot
    be enumerated."""
    advice = (
        "The 'mean' and 'optimal' baselines are exact oracles: use baseline='none' or a "
        "constant, or raise max_states if you can afford the enumeration."
    )
    with states_advice(advice):
        return make_sampler(problem, spec, options, seed, max_states)


def sample_gradients(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    n_samples: int,
    *,
    seed: int | np.random.SeedSequence | None,
    max_states: int = DEFAULT_MAX_STATES,
    **options: Any,
) -> np.ndarray:
    """Independent batch estimates of the gradient by Monte Carlo.

    Each draw samples fresh noise for every example and returns the batch estimate, the
    mean over the ``B`` examples of the per-example estimates (docs/model.md, section 2).

    Parameters
    ----------
    net, x, t
        Network, one example ``(n_in,)`` or a batch ``(B, n_in)``, and targets.
    estimator : str or user estimator
        A registered name, a :func:`gradstat.per_state_estimator` or a callable
        ``f(net, x, t, rng, **options)``.
    n_samples : int
        Number of independent draws (>= 1).
    seed : int, SeedSequence or None
        The draws are a function of the seed alone, bit for bit, whatever the number of
        threads: draw ``n`` reads its own Philox stream (see the module docstring).
        ``None`` uses fresh entropy.
    max_states : int
        Only for the oracle baselines ``"mean"`` and ``"optimal"`` of ``reinforce``,
        which are computed exactly by enumeration.
    **options
        Estimator options.

    Returns
    -------
    ndarray, shape (n_samples, n_params)

    Raises
    ------
    ValueError, TypeError
        For bad arguments (before anything is drawn; ``n_samples * n_params`` may not
        exceed 2^31 values), and when the estimator produces NaN or infinite draws.
    """
    spec, opts = resolve_estimator(estimator, options)
    n = check_n_samples(n_samples, minimum=1)
    ss = check_seed(seed)
    max_states = check_max_states(max_states)
    problem = make_problem(net, x, t)
    spec.check_problem(problem, opts)
    check_size(n * net.n_params, "n_samples", f"{n:,} draws of {net.n_params:,} parameters")
    sampler = _sampler(problem, spec, opts, ss, max_states)
    out = np.empty((n, net.n_params))
    with guard_engines(spec):
        sampler.fill(out)
    spec.check_result(draws=out)
    return out


def estimate_from_noise(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    u: Any,
    *,
    max_states: int = DEFAULT_MAX_STATES,
    **options: Any,
) -> np.ndarray:
    """The estimate for one given noise draw: a deterministic function of ``u``.

    Unit ``k`` (layer 1 first) fires when ``u[k] < P(fire)`` (``p``, or ``sqrt(p)`` for
    ``sts``), so ``u`` pins down the sampled state. Useful to check an estimator sample by
    sample against a hand-derived value. Estimators that draw more than one number per
    unit read them in the order their docstrings give: ``reinforce_loo`` takes ``k N``
    uniforms (draw ``j`` is ``u[j N:(j+1) N]``), ``arm``/``disarm`` take ``N`` plus, for each
    layer ``t < L``, one per unit above it, ``rebar`` takes ``2N`` (``u`` then ``v``),
    ``gumbel_st``/``concrete`` read ``u`` as logistic noise ``log u - log1p(-u)`` (so ``u``
    must lie strictly inside ``(0, 1)``), and ``noisy_rectifier`` takes ``N`` standard
    normals (within ``+-40``: a larger draw has probability below ``1e-340``).

    Parameters
    ----------
    u : array_like, shape (M,) for one example or (B, M) for a batch
        The draw's noise, ``M`` numbers per example (``M = N`` for most estimators).

    Returns
    -------
    ndarray, shape (n_params,)
        The batch estimate (mean over examples).
    """
    spec, opts = resolve_estimator(estimator, options)
    if spec.draws_own_noise:
        raise TypeError(
            "estimate_from_noise needs a registered estimator or a per_state_estimator; a "
            "plain Python estimator draws its own noise from rng"
        )
    max_states = check_max_states(max_states)
    problem = make_problem(net, x, t)
    spec.check_problem(problem, opts)
    B, N = problem.n_examples, spec.noise_size(net.hidden_sizes, opts)
    U = check_array(u, "u", finite=False)
    if U.shape == (N,) and B == 1:
        U = U[None, :]
    if U.shape != (B, N):
        raise ValueError(f"u must have shape ({N},) for one example or ({B}, {N}), got {U.shape}")
    spec.check_noise(U)
    unused = np.random.SeedSequence(0)  # the noise is given: no stream is read
    out = np.empty((1, net.n_params))
    with guard_engines(spec):
        _sampler(problem, spec, opts, unused, max_states).fill(
            out, noise=np.ascontiguousarray(U[None])
        )
    spec.check_result(estimate=out[0])
    return out[0]


def sample_noise(
    net: BinaryNetwork,
    estimator: str,
    rng: np.random.Generator,
    *,
    n_examples: int = 1,
    **options: Any,
) -> np.ndarray:
    """Fresh noise for :func:`estimate_from_noise`: shape ``(n_examples, M)``.

    ``M`` numbers per example, of the kind ``estimator`` reads (uniforms strictly inside
    ``(0, 1)``, or standard normals for ``noisy_rectifier``); see
    :func:`estimate_from_noise` for the layout.
    """
    check_network(net)
    spec, opts = resolve_estimator(estimator, options)
    if spec.draws_own_noise:
        raise TypeError("a plain Python estimator draws its own noise from rng")
    check_generator(rng, "rng")
    n_examples = check_int(n_examples, "n_examples", minimum=1, maximum=MAX_VALUES)
    size = spec.noise_size(net.hidden_sizes, opts)
    check_size(n_examples * size, "n_examples", f"{n_examples:,} examples of {size:,} numbers")
    return draw_noise(spec, rng, (1, n_examples, size))[0]


@dataclass(frozen=True, eq=False)
class ForwardPass:
    """One sampled state of a network on one example (see :func:`forward_pass`).

    Attributes
    ----------
    a, p, h : ndarray (N,)
        Pre-activations, ``p = sigmoid(a)`` and unit values, layer 1 first.
    y : ndarray (n_out,)
        Output.
    loss : float
        ``C(y, t)``.
    dloss_dy : ndarray (n_out,)
        ``dC/dy``.
    log_prob : float
        ``log P(h | x)``.
    """

    a: np.ndarray
    p: np.ndarray
    h: np.ndarray
    y: np.ndarray
    loss: float
    dloss_dy: np.ndarray
    log_prob: float


def forward_pass(net: BinaryNetwork, x: Any, t: Any, u: Any) -> ForwardPass:
    """Sample the state drawn by uniforms ``u`` (unit ``k`` fires when ``u[k] < p[k]``).

    A building block for Python estimators: the same jitted forward pass the engine
    uses, for one example ``x`` of shape ``(n_in,)``.
    """
    problem = make_problem(net, x, t)
    if problem.n_examples != 1:
        raise ValueError("forward_pass takes one example: x of shape (n_in,)")
    N = net.n_stochastic
    U = check_array(u, "u")
    if U.shape != (N,) or not np.all((U >= 0.0) & (U <= 1.0)):
        raise ValueError(f"u must hold {N} uniforms in [0, 1], got shape {U.shape}")
    state = sample_state(problem, 0, U)
    return ForwardPass(state.a, state.p, state.h, state.y, state.loss, state.dy, state.log_prob)
