"""One estimate of any built-in estimator, dispatched by integer code.

Joint enumeration (:mod:`gradstat.exact`) and Monte Carlo sampling
(:mod:`gradstat.sampling`) both call :func:`draw_estimate`, so an estimator's exact moments
and its samples come from one piece of code. A draw is described either by an enumerated
``state`` (its bits; ``noise`` empty) or by its ``noise`` (uniforms, or standard normals
for the noisy rectifier). Scratch comes in one ``(WS_ROWS, cols)`` array with named rows
(:mod:`gradstat.kernels.workspace`) allocated once per chunk, so nothing is allocated per
draw.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gradstat.estimators.arm import arm_draw
from gradstat.estimators.codes import (
    ARM,
    CONCRETE,
    DISARM,
    GUMBEL_RAO,
    GUMBEL_ST,
    LEG,
    MUPROP,
    PSA,
    REBAR,
    REINFORCE,
    REINFORCE_LOO,
    REINMAX,
    ST,
    ST_SIGMOID,
    ST_TEMPERED,
    STS,
)
from gradstat.estimators.gumbel_rao import gumbel_rao_draw
from gradstat.estimators.local_expectation import leg_estimate
from gradstat.estimators.muprop import muprop_estimate
from gradstat.estimators.noisy_rectifier import rectifier_draw
from gradstat.estimators.psa import psa_draw
from gradstat.estimators.rebar import rebar_draw
from gradstat.estimators.reinmax import reinmax_jacobian
from gradstat.estimators.relaxed import relaxed_draw
from gradstat.estimators.score_function import reinforce_estimate
from gradstat.estimators.stochastic_times_smooth import sts_jacobian
from gradstat.estimators.straight_through import (
    st_jacobian,
    st_sigmoid_jacobian,
    st_tempered_jacobian,
)
from gradstat.kernels.forward import (
    backprop_surrogate,
    forward_loss,
    forward_state,
    loss_and_grad,
    output_gradient,
    score_vector,
)
from gradstat.kernels.geometry import Batch, Example, Geometry, example
from gradstat.kernels.linking import outlined
from gradstat.kernels.workspace import DRAWS, PARAMS, WORK, state_rows


@njit(cache=True)
def surrogate_jacobian(code: int, a: float, bit: float, opts: np.ndarray, kappa: float) -> float:
    """The surrogate ``dh/da`` of a straight-through-type estimator for one unit.

    ``kappa`` is 1 for units in ``{0, 1}`` and 2 for ``values="pm1"``: sigmoid-type
    surrogates double, the identity stays 1 (docs/model.md, section 1).
    """
    if code == ST:
        return st_jacobian(a, bit)
    if code == ST_SIGMOID:
        return kappa * st_sigmoid_jacobian(a, bit)
    if code == STS:
        return sts_jacobian(a, bit)
    if code == ST_TEMPERED:
        return kappa * st_tempered_jacobian(a, opts[0])
    if code == REINMAX:
        return kappa * reinmax_jacobian(a, bit, opts[0])
    return np.nan


@njit(cache=True)
def _loo_draw(
    k: int, ex: Example, state: int, noise: np.ndarray, ws: np.ndarray, e: np.ndarray
) -> float:
    """REINFORCE with leave-one-out baselines over ``k`` independent states.

    Draw ``j`` is bits ``j N .. (j+1) N - 1`` of ``state``, or uniforms
    ``noise[j N : (j+1) N]``. Each state is run forward twice (once for the losses, once
    for its score), so no per-draw storage beyond ``k`` losses is needed.
    """
    # Fields are read once, outside the loops: reading a tuple's array costs a reference
    # count update.
    theta, geo, tab1, t, loss, mode = ex
    sizes, woff, boff, uoff = geo
    L = sizes.shape[0] - 2
    N = uoff[L]
    n = e.shape[0]
    hidden = woff[L] - sizes[0] * sizes[1]
    a, p, bit, h, _, y, dy, _, _ = state_rows(ws, geo)
    s = ws[PARAMS, :n]
    losses = ws[DRAWS, :k]
    sampling = noise.shape[0] > 0
    mask = (np.int64(1) << N) - 1
    logp = 0.0
    total = 0.0
    for j in range(k):
        sub = (state >> (j * N)) & mask
        u = noise[j * N : (j + 1) * N] if sampling else noise
        logp += forward_state(theta, sizes, woff, boff, uoff, tab1, sub, u, mode, a, p, bit, h, y)
        losses[j] = loss_and_grad(loss, y, t, dy)
        total += losses[j]
    for q in range(n):
        e[q] = 0.0
    for j in range(k):
        sub = (state >> (j * N)) & mask
        u = noise[j * N : (j + 1) * N] if sampling else noise
        forward_state(theta, sizes, woff, boff, uoff, tab1, sub, u, mode, a, p, bit, h, y)
        loss_and_grad(loss, y, t, dy)
        coef = (losses[j] - (total - losses[j]) / (k - 1)) / k
        score_vector(sizes, woff, boff, uoff, bit, p, h, s, a)
        for q in range(hidden):
            e[q] += coef * s[q]
        output_gradient(sizes, woff, boff, uoff, h, dy, s)
        for q in range(hidden, n):
            e[q] += s[q] / k
    return logp


@njit(cache=True)
def _surrogate_draw(
    code: int, opts: np.ndarray, ex: Example, state: int, noise: np.ndarray, ws: np.ndarray,
    e: np.ndarray,
) -> float:  # fmt: skip
    """A straight-through-type estimate: backprop with the surrogate ``dh/da`` of ``code``."""
    theta, geo, tab1, _, _, _ = ex
    sizes, woff, boff, uoff = geo
    a, p, bit, h, jac, y, dy, _, _ = state_rows(ws, geo)
    N = a.shape[0]
    logp, _ = forward_loss(ex, state, noise[:N], a, p, bit, h, y, dy)
    kappa = 1.0 - tab1[6, 0]
    for q in range(N):
        jac[q] = surrogate_jacobian(code, a[q], bit[q], opts, kappa)
    backprop_surrogate(theta, sizes, woff, boff, uoff, h, dy, jac, ws[WORK : WORK + 2], e)
    return logp


@njit(cache=True)
def _score_draw(
    code: int, opts: np.ndarray, ex: Example, state: int, noise: np.ndarray,
    baseline: np.ndarray, ws: np.ndarray, e: np.ndarray,
) -> float:  # fmt: skip
    """A REINFORCE, LEG or MuProp estimate: each reads one sampled state and its loss."""
    a, p, bit, h, _, y, dy, _, _ = state_rows(ws, ex.geo)
    logp, C = forward_loss(ex, state, noise[: a.shape[0]], a, p, bit, h, y, dy)
    if code == REINFORCE:
        reinforce_estimate(ex.geo, C, baseline, ws, e)
    elif code == LEG:
        leg_estimate(ex, C, ws, e)
    else:
        muprop_estimate(opts[0], ex, C, ws, e)
    return logp


@njit(cache=True)
def _noise_draw(
    code: int, opts: np.ndarray, ex: Example, noise: np.ndarray, ws: np.ndarray, e: np.ndarray
) -> float:
    """An estimate that reads continuous noise: ARM/DisARM, Gumbel/concrete, REBAR, Gumbel-Rao,
    rectifier."""
    if code == ARM or code == DISARM:
        return arm_draw(code == DISARM, ex, noise, ws, e)
    if code == GUMBEL_ST or code == CONCRETE:
        relaxed_draw(code == CONCRETE, opts[0], ex, noise, ws, e)
    elif code == REBAR:
        rebar_draw(opts[0], opts[1], opts[2] != 0.0, ex, noise, ws, e)
    elif code == GUMBEL_RAO:
        gumbel_rao_draw(int(opts[0]), opts[1], ex, noise, ws, e)
    else:
        rectifier_draw(opts[0], ex, noise, ws, e)
    return 0.0


@njit(cache=True, inline="always")
def draw_estimate(
    code: int, opts: np.ndarray, ex: Example, state: int, noise: np.ndarray,
    baseline: np.ndarray, ws: np.ndarray, e: np.ndarray,
) -> float:  # fmt: skip
    """Write the estimate of estimator ``code`` for one draw of example ``ex`` into ``e``
    (compressed layout).

    Returns the log-probability of the draw's discrete state (used by enumeration; 0 for
    estimators whose noise is continuous). It calls the one compiled copy of every
    estimator's code (:func:`_draw_any`, through :func:`gradstat.kernels.linking.outlined`):
    linked into each kernel, that code was optimised and compiled again in each, most of a
    cold start's compile time. Inlined, so that each kernel makes the call itself (and its
    cached code records it); ``state`` is made an int64, one signature for every caller.
    """
    return _call_draw_any(code, opts, ex, np.int64(state), noise, baseline, ws, e)


@njit(cache=True)
def _draw_any(
    code: int, opts: np.ndarray, ex: Example, state: int, noise: np.ndarray,
    baseline: np.ndarray, ws: np.ndarray, e: np.ndarray,
) -> float:  # fmt: skip
    """:func:`draw_estimate`. A thin dispatcher: each family's function reads only the
    rows of ``ws`` it uses, which keeps the common paths short (a single function holding
    every estimator compiles to markedly slower code for each of them).
    """
    if code == ST or code == ST_SIGMOID or code == STS or code == ST_TEMPERED or code == REINMAX:
        return _surrogate_draw(code, opts, ex, state, noise, ws, e)
    if code == REINFORCE or code == LEG or code == MUPROP:
        return _score_draw(code, opts, ex, state, noise, baseline, ws, e)
    if code == REINFORCE_LOO:
        return _loo_draw(int(opts[0]), ex, state, noise, ws, e)
    if code == PSA:
        return psa_draw(ex, state, noise, ws, e)
    return _noise_draw(code, opts, ex, noise, ws, e)


_call_draw_any = outlined(f"{__name__}:_draw_any")


def compile_draw_any(batch: Batch, geo: Geometry) -> None:
    """Compile (or load from numba's cache) the one shared copy of every estimator's code,
    :func:`_draw_any`, for the argument types every kernel passes with the examples of
    ``batch``, without running it.

    ``gradstat warmup`` does this first, alone, so that its other processes load that copy
    from the cache instead of each compiling it (about half a minute of one core).
    """
    from numba import typeof

    ex = example.py_func(batch, geo, 0)  # the kernels' Example, built without compiling
    vec = np.empty(1)
    args = (0, vec, ex, 0, vec, vec, np.empty((1, 1)), vec)
    _draw_any.compile(tuple(typeof(a) for a in args))
