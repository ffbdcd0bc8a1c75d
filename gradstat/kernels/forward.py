"""Jitted forward and backward pass of one hidden state.

These kernels take plain arrays and scalars, and the internal helpers the named tuples of
:mod:`gradstat.kernels.geometry`. They are shared by joint enumeration
(:mod:`gradstat.exact`) and Monte Carlo sampling (:mod:`gradstat.sampling`), so an
estimate is computed by the same code whether its moments are enumerated or sampled.

Layout conventions used by every kernel:

* ``sizes`` is the int64 array ``(n_in, n_1, ..., n_L, n_out)``.
* ``woff[l]``, ``boff[l]`` are the offsets of ``W_{l+1}`` and ``b_{l+1}`` in ``theta``
  (``l = L`` is the output layer); ``uoff[l]`` is the offset of layer ``l+1``'s units in
  the flat unit arrays ``a, p, bit, h`` of length ``N`` (``uoff[L] = N``). Internal code
  carries the four as one :class:`gradstat.kernels.geometry.Geometry` ``geo``; the
  building blocks users' estimators call (:func:`forward_state`, :func:`output_gradient`,
  :func:`backprop_surrogate`, :func:`score_vector`) take them one by one.
* Estimates are written in the *compressed* layout: ``theta``'s layout without the
  ``W_1`` block. For one example the input ``x`` is fixed, so every estimate of ``W_1``
  is ``outer(estimate of b_1, x)`` and is recovered outside the kernels
  (:func:`gradstat.problem.expand_mean`). This saves a factor ``n_in`` on layer 1.
"""

from __future__ import annotations

from math import exp, expm1, log, log1p
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

if TYPE_CHECKING:
    from gradstat.kernels.geometry import Example, Geometry

MSE, BCE, XENT, LINEAR = 0, 1, 2, 3

PRODUCT_CAP = 2.0**512
""":func:`forward_state` folds its running product of ``1 + exp(-|a|)`` factors into the
log-probability before it could overflow (each factor is at most 2)."""

BITS, SMOOTH, PM1 = 0, 1, 2
"""Unit modes of the forward pass: a unit fires with probability ``p`` and passes on
``h = b`` (``BITS``, the default ``values="01"``) or ``h = 2b - 1`` (``PM1``,
``values="pm1"``); with ``SMOOTH`` (STS) it fires with probability ``q = sqrt(p)`` and
passes on ``h = b q``."""


@njit(cache=True)
def log_sigmoid(a: float) -> float:
    """``log sigmoid(a)``, finite for every finite ``a``."""
    if a >= 0.0:
        return -log1p(exp(-a))
    return a - log1p(exp(a))


@njit(cache=True)
def sigmoid_logs(a: float) -> tuple[float, float, float]:
    """``(sigmoid(a), log sigmoid(a), log sigmoid(-a))`` from one ``exp`` and one ``log1p``.

    With ``z = exp(-|a|)``: ``log sigmoid(a) = -log1p(z)`` and ``sigmoid(a) = 1 / (1 + z)``
    for ``a >= 0``, mirrored for ``a < 0``; every value keeps full relative accuracy.
    """
    z = exp(-abs(a))
    sp = log1p(z)
    if a >= 0.0:
        return 1.0 / (1.0 + z), -sp, -a - sp
    return z / (1.0 + z), a - sp, -sp


@njit(cache=True)
def sigmoid_derivative(a: float) -> float:
    """``sigmoid'(a) = p (1 - p) = z / (1 + z)^2`` with ``z = exp(-|a|)`` (no cancellation)."""
    z = exp(-abs(a))
    d = 1.0 + z
    return z / (d * d)


@njit(cache=True)
def log1mexp(x: float) -> float:
    """``log(1 - exp(x))`` for ``x < 0``, accurate at both ends."""
    if x > -0.6931471805599453:
        return log(-expm1(x))
    return log1p(-exp(x))


COMPLEMENT_CUT = 4.0
"""Above this pre-activation, :func:`score_residual` forms ``1 - p`` as ``sigmoid(-a)``."""


@njit(cache=True)
def score_residual(bit: float, p: float, a: float) -> float:
    """``b - p``, the score ``d log P(b) / d a`` of a unit that fired (``b = 1``) or not.

    ``1 - p`` computed from a rounded ``p = sigmoid(a)`` has a relative error of about
    ``eps e^a / 2`` (all precision is lost by ``a = 37``): above ``a = 4`` (``p > 0.982``)
    it is formed as ``sigmoid(-a) = z / (1 + z)``, ``z = exp(-a)``, to full relative
    precision. Below, ``1 - p`` (exact given ``p``) costs at most 28 ulp and keeps every
    earlier number bit for bit.
    """
    if bit == 1.0 and a > COMPLEMENT_CUT:
        z = exp(-a)
        return z / (1.0 + z)
    return bit - p


@njit(cache=True)
def offsets(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parameter offsets ``woff, boff`` (per layer) and unit offsets ``uoff``."""
    n_layers = sizes.shape[0] - 1
    woff = np.zeros(n_layers, dtype=np.int64)
    boff = np.zeros(n_layers, dtype=np.int64)
    uoff = np.zeros(n_layers, dtype=np.int64)
    off = 0
    for l in range(n_layers):
        woff[l] = off
        off += sizes[l] * sizes[l + 1]
        boff[l] = off
        off += sizes[l + 1]
    u = 0
    for l in range(n_layers - 1):
        uoff[l] = u
        u += sizes[l + 1]
    uoff[n_layers - 1] = u
    return woff, boff, uoff


@njit(cache=True)
def state_buffers(
    n_units: int, n_out: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scratch for one state: ``a, p, bit, h`` (length ``N``) and ``y, dy`` (``n_out``)."""
    return (
        np.empty(n_units),
        np.empty(n_units),
        np.empty(n_units),
        np.empty(n_units),
        np.empty(n_out),
        np.empty(n_out),
    )


def layer1_table(A1: np.ndarray, mode: int) -> np.ndarray:
    """Per-example quantities of layer 1, fixed for a given input: shape ``(B, 7, n_1)``.

    Rows: ``a``, ``p = sigmoid(a)``, ``log P(fire)``, ``log P(not fire)``, the value
    passed on when the unit fires, ``P(fire)``, and the value passed on when it does not.
    A unit fires with probability ``p`` (values 1 and 0, or 1 and -1 for ``PM1``), or for
    ``SMOOTH`` (STS) with probability ``q = sqrt(p)`` (values ``q`` and 0). Layer 1 is
    about half of all the work in a one-layer network, so these logarithms are computed
    once per example instead of once per state.
    """
    ls_pos = -np.logaddexp(0.0, -A1)
    if mode == SMOOTH:
        l1 = 0.5 * ls_pos
        with np.errstate(divide="ignore"):
            l0 = np.where(l1 > -0.6931471805599453, np.log(-np.expm1(l1)), np.log1p(-np.exp(l1)))
        value = np.exp(l1)
    else:
        l1 = ls_pos
        l0 = -np.logaddexp(0.0, A1)
        value = np.ones_like(A1)
    off = np.full_like(A1, -1.0 if mode == PM1 else 0.0)
    table = np.stack([A1, np.exp(ls_pos), l1, l0, value, np.exp(l1), off], axis=1)
    return np.ascontiguousarray(table)


@njit(cache=True)
def forward_state(
    theta: np.ndarray,
    sizes: np.ndarray,
    woff: np.ndarray,
    boff: np.ndarray,
    uoff: np.ndarray,
    tab1: np.ndarray,
    state: int,
    u: np.ndarray,
    mode: int,
    a: np.ndarray,
    p: np.ndarray,
    bit: np.ndarray,
    h: np.ndarray,
    y: np.ndarray,
) -> float:
    """Run one hidden state forward and return the log-probability of its bits.

    The bit of unit ``k`` is ``(state >> k) & 1`` when ``u`` is empty (enumeration), else
    ``u[k] < P(bit = 1)`` (sampling). With ``mode == SMOOTH`` (STS), a unit fires with
    probability ``q = sqrt(p)`` and passes on ``h = bit * q``; otherwise it fires with
    probability ``p`` and passes on ``h = bit`` (``BITS``) or ``2 bit - 1`` (``PM1``).
    ``tab1`` is layer 1's :func:`layer1_table` for this example. Fills ``a``, ``p``,
    ``bit``, ``h`` (length ``N``) and ``y`` (``n_out``).
    """
    L = sizes.shape[0] - 2
    sampling = u.shape[0] > 0
    smooth = mode == SMOOTH
    low = -1.0 if mode == PM1 else 0.0
    logp = 0.0
    norm = 1.0
    for i in range(sizes[1]):
        a[i] = tab1[0, i]
        p[i] = tab1[1, i]
        fire = u[i] < tab1[5, i] if sampling else ((state >> i) & 1) == 1
        if fire:
            logp += tab1[2, i]
            bit[i] = 1.0
            h[i] = tab1[4, i]
        else:
            logp += tab1[3, i]
            bit[i] = 0.0
            h[i] = tab1[6, i]
    for l in range(1, L):
        n = sizes[l + 1]
        n_prev = sizes[l]
        base = uoff[l]
        # Slices with indices from range() compile without negative-index checks.
        h_prev = h[uoff[l - 1] : uoff[l - 1] + n_prev]
        for i in range(n):
            k = base + i
            w = theta[woff[l] + i * n_prev : woff[l] + (i + 1) * n_prev]
            ak = theta[boff[l] + i]
            for j in range(n_prev):
                ak += w[j] * h_prev[j]
            a[k] = ak
            if smooth:
                pk, ls_pos, _ = sigmoid_logs(ak)
                p[k] = pk
                l1 = 0.5 * ls_pos
                fire_p = exp(l1)
                fire = u[k] < fire_p if sampling else ((state >> k) & 1) == 1
                if fire:
                    logp += l1
                    bit[k] = 1.0
                    h[k] = fire_p
                else:
                    logp += log1mexp(l1) if l1 < 0.0 else -np.inf
                    bit[k] = 0.0
                    h[k] = 0.0
                continue
            # With z = exp(-|a|), log P(bit) = -log1p(z), minus |a| when the bit takes its
            # less likely value; the log1p terms are summed as the log of one product.
            z = exp(-abs(ak))
            pk = 1.0 / (1.0 + z) if ak >= 0.0 else z / (1.0 + z)
            p[k] = pk
            fire = u[k] < pk if sampling else ((state >> k) & 1) == 1
            if fire != (ak >= 0.0):
                logp -= abs(ak)
            norm *= 1.0 + z
            if norm > PRODUCT_CAP:
                logp -= log(norm)
                norm = 1.0
            bit[k] = 1.0 if fire else 0.0
            h[k] = 1.0 if fire else low
    n_last = sizes[L]
    h_last = h[uoff[L - 1] : uoff[L - 1] + n_last]
    for o in range(sizes[L + 1]):
        w = theta[woff[L] + o * n_last : woff[L] + (o + 1) * n_last]
        v = theta[boff[L] + o]
        for j in range(n_last):
            v += w[j] * h_last[j]
        y[o] = v
    return logp - log(norm)


# The small helpers below are inlined where they are called (``inline="always"``): numba
# compiles each function apart and calls it, so per-draw code that called them in its
# inner loops would otherwise be slower than the loops they replace.


@njit(cache=True, inline="always")
def preactivation(
    theta: np.ndarray, geo: Geometry, tab1: np.ndarray, h: np.ndarray, l: int, i: int
) -> float:
    """``a = b_l[i] + sum_j W_l[i, j] h_{l-1, j}`` of unit ``i`` of layer ``l`` (0-based).

    Layer 0's comes from ``tab1`` (:func:`layer1_table`); above it the values ``h`` of the
    layer below are read, summed in the order ``j = 0, 1, ...``.
    """
    if l == 0:
        return tab1[0, i]
    sizes, woff, boff, uoff = geo
    n_prev = sizes[l]
    ai = theta[boff[l] + i]
    for j in range(n_prev):
        ai += theta[woff[l] + i * n_prev + j] * h[uoff[l - 1] + j]
    return ai


@njit(cache=True, inline="always")
def output_layer(theta: np.ndarray, geo: Geometry, h: np.ndarray, y: np.ndarray) -> None:
    """``y = W_o h_L + b_o`` from the top layer's values in ``h``."""
    sizes, woff, boff, uoff = geo
    L = sizes.shape[0] - 2
    n_last = sizes[L]
    last = uoff[L - 1]
    for o in range(sizes[L + 1]):
        v = theta[boff[L] + o]
        for j in range(n_last):
            v += theta[woff[L] + o * n_last + j] * h[last + j]
        y[o] = v


@njit(cache=True, inline="always")
def write_unit(geo: Geometry, h: np.ndarray, l: int, i: int, g: float, e: np.ndarray) -> None:
    """Write ``e(b_l)_i = g`` and ``e(W_l)_ij = g h_{l-1, j}`` (compressed layout: layer 0's
    weights are ``outer(e(b_1), x)``, expanded later)."""
    sizes, woff, boff, uoff = geo
    s0 = sizes[0] * sizes[1]
    e[boff[l] - s0 + i] = g
    if l > 0:
        n_prev = sizes[l]
        row = woff[l] - s0 + i * n_prev
        prev = uoff[l - 1]
        for j in range(n_prev):
            e[row + j] = g * h[prev + j]


@njit(cache=True, inline="always")
def transposed_product(
    theta: np.ndarray, w0: int, n: int, n_prev: int, v: np.ndarray, out: np.ndarray
) -> None:
    """``out[j] = sum_i W[i, j] v[i]`` for the ``(n, n_prev)`` block ``W`` of ``theta`` at
    ``w0``: one step of backpropagation, ``dC/dh_{l-1} = W_l^T dC/da_l`` (or
    ``W_o^T dC/dy``).

    Every sum runs over ``i = 0, 1, ...`` in order from 0, so each caller gets the same
    values, bit for bit; rows of ``W`` are read contiguously, the inner loop over ``j``.
    """
    for j in range(n_prev):
        out[j] = 0.0
    for i in range(n):
        w = theta[w0 + i * n_prev : w0 + (i + 1) * n_prev]
        d = v[i]
        for j in range(n_prev):
            out[j] += w[j] * d


@njit(cache=True, inline="always")
def forward_loss(
    ex: Example, state: int, u: np.ndarray, a: np.ndarray, p: np.ndarray, bit: np.ndarray,
    h: np.ndarray, y: np.ndarray, dy: np.ndarray,
) -> tuple[float, float]:  # fmt: skip
    """:func:`forward_state` of example ``ex`` and then :func:`loss_and_grad`: returns
    ``log P`` of the state and its loss ``C``, with ``dC/dy`` in ``dy``."""
    theta, geo, tab1, t, loss, mode = ex
    sizes, woff, boff, uoff = geo
    logp = forward_state(theta, sizes, woff, boff, uoff, tab1, state, u, mode, a, p, bit, h, y)
    return logp, loss_and_grad(loss, y, t, dy)


@njit(cache=True, inline="always")
def bce_term(y: float, t: float) -> tuple[float, float]:
    """One output's ``bce`` loss ``softplus(y) - t y`` and its ``dC/dy = sigmoid(y) - t``,
    each to full relative precision.

    With ``z = exp(-|y|)``: ``softplus(y) - t y = (1 - t) max(y, 0) + t max(-y, 0) +
    log1p(z)``, a sum of terms that are non-negative for ``t`` in ``[0, 1]`` (a confident,
    right output keeps its tiny loss: ``log1p(exp(-40)) = 4.25e-18`` at ``y = 40``,
    ``t = 1``, not ``40 - 40 = 0``). ``sigmoid(y) - t`` is ``(1 - t) - sigmoid(-y)`` for
    ``t >= 1/2`` (``1 - t`` is then exact) and ``sigmoid(y) - t`` below, with
    ``sigmoid(|y|) = 1 / (1 + z)`` and ``sigmoid(-|y|) = z / (1 + z)``.
    """
    z = exp(-abs(y))
    big = 1.0 / (1.0 + z)
    small = z / (1.0 + z)
    if y >= 0.0:
        c = (1.0 - t) * y + log1p(z)
        up, down = big, small
    else:
        c = t * -y + log1p(z)
        up, down = small, big
    return c, ((1.0 - t) - down if t >= 0.5 else up - t)


@njit(cache=True, inline="always")
def xent_terms(top: float, y_cls: float, e_cls: float, others: float) -> tuple[float, float]:
    """``xent`` loss ``lse(y) - y_t`` and ``softmax(y)_t`` pieces, to full relative precision.

    ``top = max_k y_k``, ``e_cls = exp(y_t - top)`` and ``others = sum_{k != t}
    exp(y_k - top)``. Returns the loss and ``dC/dy_t = softmax(y)_t - 1``. The loss is
    ``log1p(others)`` when ``y_t`` is the largest output (its ``exp`` term is exactly 1),
    else ``(top - y_t) + log(e_cls + others)``, both sums of non-negative terms; ``dC/dy_t``
    is ``-others / s`` when ``softmax(y)_t >= 1/2`` (``s = e_cls + others``), so a
    confident, right output keeps its tiny gradient.
    """
    s = e_cls + others
    c = log1p(others) if y_cls >= top else (top - y_cls) + log(s)
    return c, (-others / s if e_cls >= others else e_cls / s - 1.0)


@njit(cache=True)
def loss_and_grad(loss: int, y: np.ndarray, t: np.ndarray, dy: np.ndarray) -> float:
    """Loss ``C(y, t)`` of docs/model.md; writes ``dC/dy`` into ``dy``.

    ``bce`` and ``xent`` keep full relative precision at confident outputs
    (:func:`bce_term`, :func:`xent_terms`).
    """
    n = y.shape[0]
    c = 0.0
    if loss == MSE:
        for k in range(n):
            r = y[k] - t[k]
            c += 0.5 * r * r
            dy[k] = r
    elif loss == BCE:
        for k in range(n):
            ck, dk = bce_term(y[k], t[k])
            c += ck
            dy[k] = dk
    elif loss == XENT:
        m = y[0]
        for k in range(1, n):
            if y[k] > m:
                m = y[k]
        cls = int(t[0])
        others = 0.0
        for k in range(n):
            ek = exp(y[k] - m)
            dy[k] = ek
            if k != cls:
                others += ek
        e_cls = dy[cls]
        s = e_cls + others
        for k in range(n):
            dy[k] /= s
        c, dy[cls] = xent_terms(m, y[cls], e_cls, others)
    else:
        for k in range(n):
            c += t[k] * y[k]
            dy[k] = t[k]
    return c


@njit(cache=True)
def output_gradient(
    sizes: np.ndarray, woff: np.ndarray, boff: np.ndarray, uoff: np.ndarray, h: np.ndarray,
    dy: np.ndarray, e: np.ndarray,
) -> None:  # fmt: skip
    """Write ``dC/dW_o = outer(dC/dy, h_L)`` and ``dC/db_o = dC/dy`` into ``e`` (compressed)."""
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    n_last = sizes[L]
    last = uoff[L - 1]
    for o in range(sizes[L + 1]):
        e[boff[L] - s0 + o] = dy[o]
        row = woff[L] - s0 + o * n_last
        for j in range(n_last):
            e[row + j] = dy[o] * h[last + j]


@njit(cache=True)
def backprop_surrogate(
    theta: np.ndarray, sizes: np.ndarray, woff: np.ndarray, boff: np.ndarray, uoff: np.ndarray,
    h: np.ndarray, dy: np.ndarray, jac: np.ndarray, work: np.ndarray, e: np.ndarray,
) -> None:  # fmt: skip
    """Backpropagate ``dC/dy`` replacing each ``dh/da`` by the surrogate ``jac`` (per unit).

    ``delta_l = (dC/dh_l) * jac_l``, ``dW_l = outer(delta_l, h_{l-1})``, ``db_l = delta_l``,
    ``dC/dh_{l-1} = W_l^T delta_l``, with every derivative at the sampled values.
    ``work`` is scratch of shape ``(2, max width)``. Writes the compressed estimate ``e``.
    """
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    output_gradient(sizes, woff, boff, uoff, h, dy, e)
    cur = 0
    transposed_product(theta, woff[L], sizes[L + 1], sizes[L], dy, work[cur])
    # Slices with indices from range() compile without negative-index checks; every sum
    # runs in the order i = 0, 1, ... as in the formulas.
    for l in range(L - 1, -1, -1):
        n = sizes[l + 1]
        n_prev = sizes[l]
        g = work[cur, :n]
        jac_l = jac[uoff[l] : uoff[l] + n]
        e_b = e[boff[l] - s0 : boff[l] - s0 + n]
        for i in range(n):
            delta = g[i] * jac_l[i]
            g[i] = delta
            e_b[i] = delta
        if l > 0:
            h_prev = h[uoff[l - 1] : uoff[l - 1] + n_prev]
            nxt = 1 - cur
            g_prev = work[nxt, :n_prev]
            for j in range(n_prev):
                g_prev[j] = 0.0
            for i in range(n):
                delta = g[i]
                e_w = e[woff[l] - s0 + i * n_prev : woff[l] - s0 + (i + 1) * n_prev]
                w = theta[woff[l] + i * n_prev : woff[l] + (i + 1) * n_prev]
                for j in range(n_prev):
                    e_w[j] = delta * h_prev[j]
                    g_prev[j] += w[j] * delta
            cur = nxt


@njit(cache=True)
def score_vector(
    sizes: np.ndarray,
    woff: np.ndarray,
    boff: np.ndarray,
    uoff: np.ndarray,
    bit: np.ndarray,
    p: np.ndarray,
    h: np.ndarray,
    s: np.ndarray,
    a: np.ndarray,
) -> None:
    """Score ``d log P(h | x) / d theta`` in the compressed layout (zero on the output layer).

    ``d/db_l = b_l - p_l`` and ``d/dW_l = outer(b_l - p_l, h_{l-1})``, ``b - p`` by
    :func:`score_residual` from the pre-activations ``a``.
    """
    L = sizes.shape[0] - 2
    s0 = sizes[0] * sizes[1]
    for l in range(L):
        n_prev = sizes[l]
        base = uoff[l]
        for i in range(sizes[l + 1]):
            r = score_residual(bit[base + i], p[base + i], a[base + i])
            s[boff[l] - s0 + i] = r
            if l > 0:
                row = woff[l] - s0 + i * n_prev
                prev = uoff[l - 1]
                for j in range(n_prev):
                    s[row + j] = r * h[prev + j]
    for k in range(woff[L] - s0, s.shape[0]):
        s[k] = 0.0
