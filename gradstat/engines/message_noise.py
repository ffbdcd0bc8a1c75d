"""An estimator's covariance split by source layer, by messages over adjacent layers.

The split of :mod:`gradstat.noise` (the law of total covariance over the layers' states
``F_l = (h_1, ..., h_l)``: ``Var(g_j) = sum_l E[D_l^2]``, ``D_l = M_l - M_{l-1}``,
``M_l = E[g_j | F_l]``) needs, per source ``l``, conditional means given a prefix of
layers. Given the input the layers form a Markov chain, so each ``M_l`` is a function of
``h_l`` alone above the estimate's own layers, and the parts are sums over adjacent layer
pairs, as in :mod:`gradstat.engines.message_moments` (the forward-backward recursion of
:mod:`gradstat.engines.messages`, whose notation this follows: ``alpha_l`` the forward
messages, ``T_l(s, s') = P(h_l = s' | h_{l-1} = s)``, ``beta_l(s) = E[C | h_l = s]``
centred on ``E[C]``).

REINFORCE's coordinate ``j = (i, m)`` of layer ``k`` is ``g = (C - c) sigma_i u_m`` with
``sigma_i = b_{k,i} - p_{k,i}(h_{k-1})``, ``u_m`` unit ``m`` of ``h_{k-1}`` (1 for the
bias, ``x_m`` for layer 1) and ``c`` the coordinate's baseline (a constant). Then:

* **Sources above** (``l > k``): ``M_l = sigma_i u_m (beta_l(h_l) - c)``, so
  ``E[D_l^2] = E[sigma_i^2 u_m^2 delta_l(h_{l-1})]`` with
  ``delta_l(s) = Var(beta_l | h_{l-1} = s) = sum_{s'} T_l(s, s') (beta_l(s') -
  beta_{l-1}(s))^2`` (summed about its mean). Pushed down by backward messages,
  ``gamma_l(h_k) = E[delta_l | h_k]``, it is
  ``sum_s alpha_{k-1}(s) u_m^2 E[sigma_i^2 gamma_l | h_{k-1} = s]``: one more column per
  source in layer ``k``'s sums, like REINFORCE's ``E[C^2 | h_k]``.
* **Its own layer** (``l = k``): ``M_k = sigma_i u_m (beta_k - c)`` and
  ``M_{k-1} = u_m G_i(h_{k-1})``, ``G_i(s) = E[sigma_i beta_k | s]`` (the exact
  gradient's term; ``E[sigma_i | s] = 0`` removes ``c``), so
  ``E[D_k^2] = sum_s alpha u_m^2 (E[sigma_i^2 (beta_k - c)^2 | s] - G_i(s)^2)``.
* **Sources below** (``l < k``; the output layer's ``dC/dy_o h_{L,m}`` has every source
  below it): ``M_{k-1} = u_m G_i`` is a function of ``h_{k-1}``; ``M_{l-1} =
  sum_{s'} T_l M_l`` down to ``M_0 = E[g]``, and ``E[D_l^2] = sum_s alpha_{l-1}(s)
  sum_{s'} T_l(s, s') (M_l(s') - M_{l-1}(s))^2`` (:func:`gradstat.engines.messages.spread`,
  about the mean): one function per coordinate pushed through the layers below.

**Straight-through-type estimators** (``st``, ``st_sigmoid``, ``st_tempered``,
``reinmax``): ``g = u_m e_{k,i}``, ``e_k = D_k * r_k``, ``r_k = W_{k+1}^T e_{k+1}`` (``D``
the surrogate ``dh/da`` of layer ``k``'s pre-activations, a function of ``h_{k-1}`` and,
for ReinMax, of the unit's own bit). The message engine carries, per state, the mean
signal ``rbar`` and its covariance ``V``; by the law of total covariance ``V`` is a sum
over the sources above, so carrying one ``V_l`` per source splits it: layer ``k``'s own
part is ``sum_s alpha u_m^2 Var(D_i rbar_i | h_{k-1} = s)``, source ``l > k``'s is
``sum_s alpha u_m^2 E[D_i^2 V_l,ii | s]``, and ``V_l`` passes down as
``W_k^T E[(D D^T) * V_l | s] W_k`` (the engine's own recursion, once per source). The
sources below are REINFORCE's, with ``m_i(s) = E[e_{k,i} | s]`` in place of ``G_i``.

The parts add up, by the same law, to the variance
:func:`gradstat.engines.message_moments.layerwise_moments` computes. The score's moments
use ``sigmoid(-a)`` for ``1 - p`` (:func:`gradstat.engines.messages.score_moments`).
Cost per example (REINFORCE): layer ``k``'s pairs ``2^{n_{k-1} + n_k}`` times
``(2 + L - k)(1 + n_k/2)`` for the sums above and own layer, plus, for the sources below,
``2 n_k (n_{k-1} + 1)`` per pair of every layer under ``k`` (``2 n_out (n_L + 1)`` for
the output layer): the per-coordinate functions make it about ``n_params`` times a
gradient pass where the widths are equal. The surrogates add the engine's covariance
recursion once per source above each layer. Only per-coordinate parts (the diagonals)
are computed, not the ``n_params x n_params`` matrices.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from gradstat.engines.message_moments import (
    centred_baseline,
    centred_moments,
    example_messages,
    layer_tables,
    place_layer,
    surrogate_jacobians_table,
    surrogate_moments,
    surrogate_stats,
    unit_pairs,
)
from gradstat.engines.messages import expect, expect_bits, spread, top_layer
from gradstat.estimators.codes import REINMAX, SCORE
from gradstat.kernels.forward import offsets
from gradstat.problem import Problem


def score_noise_cost(sizes: tuple[int, ...]) -> int:
    """Pair updates of one example's split (the module docstring's count)."""
    hidden = sizes[1:-1]
    L = len(hidden)
    pairs = [2 ** (hidden[0])] + [2 ** (a + b) for a, b in zip(hidden[:-1], hidden[1:])]
    cost = 0
    for k in range(1, L + 2):
        if k <= L:
            cost += pairs[k - 1] * (2 + L - k) * (1 + hidden[k - 1] // 2)
        n = hidden[k - 1] if k <= L else sizes[-1]
        cost += 2 * n * (hidden[k - 2] + 1 if k > 1 else 0) * sum(pairs[: k - 1])
    return cost


def largest_functions(sizes: tuple[int, ...]) -> int:
    """The most float64 values one call holds in the per-coordinate functions of the
    sources below a layer (``2^{n_{k-1}}`` states by ``n_k (n_{k-1} + 1)``)."""
    hidden = sizes[1:-1]
    tops = [*hidden[1:], sizes[-1]]
    return max(2**below * n * (below + 1) for below, n in zip(hidden, tops))


def message_noise_parts(
    problem: Problem, family: str, code: int, opts: np.ndarray, baseline: str | float
) -> tuple[np.ndarray, np.ndarray]:
    """Per example, the estimator's mean ``(B, n_params)`` and its variance's parts by
    source ``(L, B, n_params)`` (full layout; the module docstring's formulas).

    ``family`` is ``"score"`` (REINFORCE with ``baseline`` ``"none"``, ``"mean"``,
    ``"optimal"`` or a float) or ``"surrogate"`` (straight-through-type estimator
    ``code`` with option array ``opts``), as for
    :func:`gradstat.engines.message_moments.layerwise_moments`.
    """
    theta, sizes, T = problem.theta, problem.sizes, problem.T
    loss, low = problem.loss_code, problem.low
    sizes_t = tuple(int(v) for v in sizes)
    L = len(sizes_t) - 2
    woff, boff, _ = offsets(sizes)
    B, n_params = problem.n_examples, theta.shape[0]
    means = np.zeros((B, n_params))
    parts = np.zeros((L, B, n_params))
    As, tables = layer_tables(theta, sizes_t, low)
    nL, n_out = sizes_t[L], sizes_t[L + 1]
    for b in range(B):
        alphas = example_messages(As, tables, problem.A1[b])
        C, dY, expected, out = top_layer(theta, sizes, T[b], loss, low, alphas[L])
        U = _unit_matrix(nL, low)
        place_layer(means[b], out[:, :, 0], L + 1, woff, boff)
        F = (dY[:, :, None] * U[:, None, :]).reshape(U.shape[0], -1)
        below = _parts_below(F, L, tables, alphas)
        for l in range(L):
            place_layer(parts[l, b], below[l].reshape(n_out, nL + 1), L + 1, woff, boff)
        if family == SCORE:
            step: _ScoreLayers | _SurrogateLayers = _ScoreLayers(C - expected, expected, baseline)
        else:
            Wo = theta[woff[L] : boff[L]].reshape(n_out, nL)
            step = _SurrogateLayers(np.einsum("so,oj->sj", dY, Wo), theta, sizes_t, code, opts)
        for k in range(L, 0, -1):
            n, n_prev = sizes_t[k], (sizes_t[k - 1] if k > 1 else 0)
            G, own, above, mean = step.layer(k, As[k], tables[k], alphas, low)
            x = problem.X[b] if k == 1 else None
            place_layer(means[b], _first(mean, x), k, woff, boff)
            place_layer(parts[k - 1, b], _first(own, x, 2), k, woff, boff)
            for q, part in enumerate(above):
                place_layer(parts[k + q, b], _first(part, x, 2), k, woff, boff)
            if k > 1:
                U = _unit_matrix(n_prev, low)
                F = (G[:, :, None] * U[:, None, :]).reshape(U.shape[0], -1)
                below = _parts_below(F, k - 1, tables, alphas)
                for l in range(k - 1):
                    place_layer(parts[l, b], below[l].reshape(n, n_prev + 1), k, woff, boff)
    return means, parts


class _ScoreLayers:
    """REINFORCE's messages from one layer to the next below: ``beta_k`` and the
    ``gamma_l`` of the sources above (``E[delta_l | h_k]``, sources ``k + 1 .. L``)."""

    def __init__(self, beta: np.ndarray, expected: float, baseline: str | float) -> None:
        self.beta = beta
        self.gammas: list[np.ndarray] = []
        self.expected, self.baseline = expected, baseline

    def layer(
        self, k: int, A: np.ndarray, tables: tuple, alphas: list, low: float
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
        """:func:`_own_layer` of layer ``k``, then the messages one layer down."""
        TL, TH = tables
        n, gammas = A.shape[1], self.gammas
        F = np.ascontiguousarray(np.stack([self.beta, self.beta**2, *gammas], axis=1))
        Yb = expect_bits(TL, TH, F, n)
        n_prev = (alphas[k - 1].shape[0] - 1).bit_length()
        out = _own_layer(Yb, A, alphas[k - 1], n_prev, low, self.expected, self.baseline)
        if k > 1:
            # beta_{k-1} = E[beta_k | h_{k-1}], the new source k's delta_k, and the sources
            # above pushed down (the totals of their columns).
            totals = np.ascontiguousarray(Yb[:, : 2 + len(gammas)])
            centres = np.ascontiguousarray(totals[:, :1])
            delta = spread(TL, TH, np.ascontiguousarray(self.beta[:, None]), centres)
            self.gammas = [
                delta[:, 0].copy(),
                *(totals[:, 2 + q].copy() for q in range(len(gammas))),
            ]
            self.beta = totals[:, 0].copy()
        return out


class _SurrogateLayers:
    """A straight-through-type estimator's messages from one layer to the next below: the
    mean signal ``rbar`` from above and, per source above, its covariance ``V``."""

    def __init__(
        self, rbar: np.ndarray, theta: np.ndarray, sizes: tuple[int, ...], code: int,
        opts: np.ndarray,
    ) -> None:  # fmt: skip
        self.rbar = rbar
        self.Vs: list[np.ndarray] = []
        self.theta, self.sizes, self.code, self.opts = theta, sizes, code, opts

    def layer(
        self, k: int, A: np.ndarray, tables: tuple, alphas: list, low: float
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
        """Layer ``k``'s mean signal ``m(s)`` per state below, its own part, the parts of
        the sources above and the mean (``surrogate_parts``), then the messages down."""
        TL, TH = tables
        woff, boff, _ = offsets(np.asarray(self.sizes, dtype=np.int64))
        n = self.sizes[k]
        W = self.theta[woff[k - 1] : boff[k - 1]].reshape(n, -1) if k > 1 else np.zeros((n, 0))
        W = np.ascontiguousarray(W)
        D0, D1 = surrogate_jacobians_table(A, self.code, self.opts, 1.0 - low)
        pi, pk, pidx, diag = unit_pairs(n, diagonal=k == 1)
        bitdep = self.code == REINMAX

        def moments(rbar: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            if bitdep:
                return surrogate_moments(TL, TH, D0, D1, rbar, V, pi, pk, pidx)
            return centred_moments(TL, TH, D0, rbar, V, alphas[k], pi, pk, pidx)

        def stats(m: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, ...]:
            return surrogate_stats(m, cov, diag, alphas[k - 1], W, low, k > 1)

        # The source k itself: Var(D * rbar | h_{k-1}); each source above: its V pushed
        # through this layer's Jacobians, E[(D D^T) * V_l | h_{k-1}]. With a zero mean
        # signal surrogate_stats sums the covariances alone.
        m, cov = moments(self.rbar, np.zeros((0, 0)))
        zero = np.zeros_like(m)
        mean, _, rbar, _ = stats(m, np.zeros_like(cov))
        _, own, _, V_own = stats(zero, cov)
        above, Vs = [], [V_own]
        for V in self.Vs:
            cov_l = moments(np.zeros_like(self.rbar), V)[1]
            _, part, _, V_l = stats(zero, cov_l)
            above.append(part)
            Vs.append(V_l)
        self.rbar, self.Vs = rbar, Vs
        return m, own, above, mean


def _unit_matrix(n: int, low: float) -> np.ndarray:
    """Every state's unit values and a last column of ones (the bias): ``(2^n, n + 1)``."""
    s = np.arange(1 << n)[:, None]
    U = np.ones(((1 << n), n + 1))
    U[:, :n] = np.where((s >> np.arange(n)) & 1, 1.0, low)
    return U


def _first(V: np.ndarray, x: np.ndarray | None, power: int = 1) -> np.ndarray:
    """Layer 1's ``(n, 1)`` bias values expanded to ``W_1`` by ``x`` (means) or ``x^2``
    (variances); other layers' values as they are."""
    if x is None:
        return V
    return np.concatenate([np.outer(V[:, 0], x**power), V], axis=1)


def _own_layer(
    Yb: np.ndarray, A: np.ndarray, alpha: np.ndarray, n_prev: int, low: float,
    expected: float, baseline: str | float,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:  # fmt: skip
    """Layer ``k``'s ``G_i(s)`` per state below ``(S, n)``, and per coordinate
    ``(n, n_prev + 1)`` its own part, the parts of the sources above and the mean.

    ``Yb`` is :func:`expect_bits` of the columns ``beta_k, beta_k^2, gamma_{k+1}, ...``.
    Weighted sums over the states below use NumPy's own loops (``einsum``, no BLAS): a
    fixed order for any thread count.
    """
    S, n = A.shape
    Q = Yb.shape[1] // (1 + 2 * n)
    p, r = expit(A), expit(-A)  # each to full relative precision; r = 1 - p
    Z1 = Yb[:, Q : Q * (1 + n)].reshape(S, n, Q)
    Z0 = Yb[:, Q * (1 + n) :].reshape(S, n, Q)
    G = r * Z1[:, :, 0] - p * Z0[:, :, 0]
    second = (r * r)[:, :, None] * Z1 + (p * p)[:, :, None] * Z0  # E[sigma^2 F_q | s]
    U = _unit_matrix(n_prev, low)
    w1 = alpha[:, None] * U
    w2 = w1 * U

    def total(w: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.einsum("sm,si->im", w, v)

    P0, P1, P2 = total(w2, p * r), total(w2, second[:, :, 0]), total(w2, second[:, :, 1])
    c = centred_baseline(P0, P1, expected, baseline)
    own = P2 - 2.0 * c * P1 + c * c * P0 - total(w2, G * G)
    above = [total(w2, second[:, :, q]) for q in range(2, Q)]
    return G, own, above, total(w1, G)


def _parts_below(F: np.ndarray, m: int, tables: list, alphas: list) -> np.ndarray:
    """``E[(M_l - M_{l-1})^2]`` for ``l = 1..m`` ``(m, Q)`` of the functions ``M_m = F``
    ``(2^{n_m}, Q)`` of layer ``m``'s state, ``M_{l-1} = E[M_l | h_{l-1}]``."""
    out = np.zeros((m, F.shape[1]))
    M = np.ascontiguousarray(F)
    for l in range(m, 0, -1):
        TL, TH = tables[l]
        down = expect(TL, TH, M)
        out[l - 1] = (alphas[l - 1][:, None] * spread(TL, TH, M, down)).sum(axis=0)
        M = down
    return out
