"""Claims about the form of straight-through's noise and where estimators' noise comes from.

One stochastic layer, sigmoid straight-through and a quadratic loss: the estimate is the
deterministic sigmoid network's gradient plus noise linear in ``epsilon = h - p``. Any loss:
the covariance is a Walsh (Fourier) sum over sets of units. Any depth: the law of total
covariance splits every enumerable estimator's covariance by source layer.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
from hypothesis import strategies as st
from scipy.special import expit

from gradstat.claims.registry import TOL, Counterexample, Part, claim
from gradstat.claims.search import (
    Search,
    confirmed,
    describe_as,
    dsigmoid,
    first_example,
    one_layer,
    relative,
    single,
)
from gradstat.claims.wording import BENGIO, HINTON, INPUTS, LARGEST, ONE_EXAMPLE
from gradstat.exact import estimator_moments
from gradstat.kernels.forward import loss_and_grad
from gradstat.network import LOSSES, BinaryNetwork, as_batch
from gradstat.noise import noise_decomposition
from gradstat.sampling import estimate_from_noise
from gradstat.strategies import problems

SOURCE_ESTIMATORS = ("st", "st_sigmoid", "sts", "reinforce", "leg", "muprop", "reinmax")
"""Estimators whose source split :func:`noise_sources_sum` checks (all enumerable)."""

ST_MEAN_BCE = Counterexample.one_unit(
    "one unit, bce, C = softplus(h), a = 0: E[st_sigmoid] on b_1 "
    "sigmoid'(0) (sigmoid(0) + sigmoid(1)) / 2 = 0.153882, deterministic gradient "
    "sigmoid'(0) sigmoid(1/2) = 0.155615",
    0.0, 0.0, "bce", "st_sigmoid",
)  # fmt: skip
"""Not quadratic in ``h``: the mean slope ``E[sigmoid(h)]`` is not the slope at ``p``."""

ST_MEAN_TWO_LAYERS = Counterexample.no_input(
    "two units in a chain, mse, C = h2^2 / 2, a1 = 0, a2 = h1: E[st_sigmoid] on "
    "b_2 (sigmoid'(0) sigmoid(0) + sigmoid'(1) sigmoid(1)) / 2 = 0.134367, deterministic "
    "gradient sigmoid'(1/2) sigmoid(1/2) = 0.146280",
    (0, 1, 1, 1), (0.0, 1.0, 0.0, 1.0, 0.0), 0.0, "mse", "st_sigmoid",
)  # fmt: skip
"""Quadratic in ``h_2``, but layer 2 sees ``h_1``, not ``p_1``, through a sigmoid."""


def _target(net: BinaryNetwork, x: Any, t: Any) -> np.ndarray:
    """The target row the kernels read for one example (the class as a float for xent)."""
    return as_batch(net, x, t)[1][0]


def deterministic_gradient(net: BinaryNetwork, x: np.ndarray, t: Any) -> np.ndarray:
    """The gradient of the deterministic sigmoid network (every ``h_l`` replaced by
    ``p_l = sigmoid(W_l p_{l-1} + b_l)``) at ``net``'s parameters, in docs/model.md order."""
    layers = net.layers()
    acts = [np.asarray(x, dtype=float)]
    for W, b in layers[:-1]:
        acts.append(expit(W @ acts[-1] + b))
    W_o, b_o = layers[-1]
    dy = np.empty(net.n_out)
    loss_and_grad(LOSSES[net.loss], W_o @ acts[-1] + b_o, _target(net, x, t), dy)
    grads = [(np.outer(dy, acts[-1]), dy.copy())]
    delta = W_o.T @ dy
    for k in range(len(layers) - 2, -1, -1):
        p = acts[k + 1]
        delta = delta * p * (1.0 - p)
        grads.insert(0, (np.outer(delta, acts[k]), delta.copy()))
        delta = layers[k][0].T @ delta
    return np.concatenate([np.concatenate([w.ravel(), b]) for w, b in grads])


def _state(n: int, s: int) -> np.ndarray:
    return np.array([(s >> k) & 1 for k in range(n)], dtype=np.float64)


def _slopes(net: BinaryNetwork, x: Any, t: Any) -> np.ndarray:
    """``dC/dh`` at every one of the ``2^N`` states of one stochastic layer (rows)."""
    W_o, b_o = net.layers()[-1]
    n = net.n_stochastic
    dy = np.empty(net.n_out)
    target = _target(net, x, t)
    out = np.empty((2**n, n))
    for s in range(2**n):
        loss_and_grad(LOSSES[net.loss], W_o @ _state(n, s) + b_o, target, dy)
        out[s] = W_o.T @ dy
    return out


def _layer1_order(net: BinaryNetwork) -> np.ndarray:
    """Layer-1 parameter indices unit by unit, ``(W_1[i, :], b_1[i])``: the order in
    which its covariance is the Kronecker product ``C (x) x~ x~^T``."""
    n_in, n1 = net.sizes[0], net.sizes[1]
    return np.concatenate(
        [[i * n_in + j for j in range(n_in)] + [n1 * n_in + i] for i in range(n1)]
    )


@claim(
    statement="With one stochastic layer and mse, sigmoid straight-through is the "
    "deterministic sigmoid network's gradient plus noise linear in epsilon = h - p: on the "
    "logits a (the b_1 coordinates) g_hat = g_det + D H epsilon for every state, with "
    "D = diag(p(1-p)) and H = W_o^T W_o, so its covariance is D H D H D on b_1 and "
    "(D H D H D) (x) x~ x~^T on layer 1 (x~ = [x; 1], unit by unit), of rank at most "
    "min(n_out, N); the output layer's noise is r epsilon^T + W_o epsilon p^T + "
    "W_o (epsilon epsilon^T - D), r = W_o p + b_o - t.",
    source=f"Derived here for the estimator of {HINTON}",
    conditions=f"One stochastic layer, N <= 4, mse, {ONE_EXAMPLE}; every state and "
    f"coordinate agrees to {LARGEST}, the covariance likewise, and eigenvalues past "
    "min(n_out, N) of the layer-1 covariance are below TOL times the largest.",
)
def st_sigmoid_noise_form(max_examples: int) -> Part:
    """Straight-through's noise is linear in ``epsilon`` for one layer and ``mse``.

    Closed form: ``C = 0.5 ||W_o h + b_o - t||^2`` has ``dC/dh(h) = W_o^T (W_o h + b_o - t)
    = dC/dh(p) + H epsilon``, exactly, because ``C`` is quadratic. Sigmoid straight-through
    multiplies by ``D``: ``g_hat_a = D dC/dh(p) + D H epsilon``, and ``D dC/dh(p)`` is the
    gradient of the deterministic network ``C(W_o p + b_o)`` with respect to ``a``. The
    ``epsilon_j`` are independent with variance ``D_jj``, so ``Cov = D H D H D``; ``W_1[i, j]``
    is ``x_j`` times ``b_1[i]``. ``H`` has rank at most ``n_out``. The output estimate
    ``(W_o h + b_o - t) h^T`` with ``h = p + epsilon`` expands to its mean ``r p^T + W_o D``
    plus the stated noise.
    """
    largest_rank = [0]

    def residual(problem: Any) -> float:
        net, x, t = single(problem)
        (W1, b1), (W_o, b_o) = net.layers()
        n, n_in = net.n_stochastic, net.n_in
        p = expit(W1 @ x + b1)
        D = np.diag(p * (1.0 - p))
        H = W_o.T @ W_o
        det = deterministic_gradient(net, x, t)
        stoch = net.parameter_groups()["stochastic"]
        r = W_o @ p + b_o - np.asarray(t, dtype=float)
        worst = 0.0
        for s in range(2**n):
            h = _state(n, s)
            eps = h - p
            e = estimate_from_noise(net, x, t, "st_sigmoid", np.where(h == 1.0, 0.0, 1.0))
            a_part = det[n_in * n : stoch.stop] + D @ H @ eps
            want = np.concatenate([np.outer(a_part, x).ravel(), a_part])
            noise = np.outer(r, eps) + np.outer(W_o @ eps, p) + W_o @ (np.outer(eps, eps) - D)
            out = np.outer(r, p) + W_o @ D + noise
            w_o = e[stoch.stop : stoch.stop + net.n_out * n].reshape(net.n_out, n)
            worst = max(
                worst,
                relative(e[stoch], want),
                relative(w_o, out),
                relative(e[stoch.stop + net.n_out * n :], r + W_o @ eps),
            )
        cov = estimator_moments(net, x, t, "st_sigmoid", full_cov=True).cov
        C = D @ H @ D @ H @ D
        xt = np.append(x, 1.0)
        order = _layer1_order(net)
        worst = max(worst, relative(cov[np.ix_(order, order)], np.kron(C, np.outer(xt, xt))))
        ev = np.linalg.eigvalsh(cov[stoch, stoch])[::-1]
        bound = min(net.n_out, n)
        largest_rank[0] = max(largest_rank[0], int(np.sum(ev > TOL * max(ev[0], 1e-300))))
        if ev[0] > 0.0:
            worst = max(worst, float(ev[bound:].max(initial=0.0)) / ev[0])
        return worst

    return Search(max_examples).holds(
        "per state: g_hat = g_det + D H epsilon on layer 1 and the output noise as stated; "
        "Cov = (D H D H D) (x) x~ x~^T on layer 1, rank <= min(n_out, N)",
        one_layer(("mse",), max_stochastic=4), residual, "largest relative deviation:",
        describe_as("st_sigmoid's noise is not g_det + D H epsilon", "st_sigmoid"),
        lambda: f"largest numerical rank seen {largest_rank[0]}",
    )  # fmt: skip


def _mean_gap(net: BinaryNetwork, x: Any, t: Any) -> float:
    """:func:`relative` gap between ``E[st_sigmoid]`` and the deterministic network's
    gradient on the stochastic layers' coordinates."""
    stoch = net.parameter_groups()["stochastic"]
    mean = estimator_moments(net, x, t, "st_sigmoid").mean[stoch]
    return relative(mean, deterministic_gradient(net, np.asarray(x, dtype=float), t)[stoch])


def _numbers(net: BinaryNetwork, x: Any, t: Any) -> str:
    stoch = net.parameter_groups()["stochastic"]
    mean = estimator_moments(net, x, t, "st_sigmoid").mean[stoch]
    det = deterministic_gradient(net, np.asarray(x, dtype=float), t)[stoch]
    j = int(np.argmax(np.abs(mean - det)))
    return f"coordinate {j}: E[st_sigmoid] {mean[j]:+.6g}, deterministic gradient {det[j]:+.6g}"


@claim(
    statement="With one stochastic layer and mse, the mean of sigmoid straight-through on "
    "the stochastic layer is exactly the gradient of the deterministic sigmoid network "
    "(h replaced by p) at the same parameters, and the true gradient on the logits is "
    "g_det - D diag(H) (p - 1/2) (H = W_o^T W_o): the curvature that makes the noise makes "
    "the bias through its diagonal.",
    source=f"Derived here for the estimator of {HINTON}",
    conditions=f"One stochastic layer, N <= 4, mse, {ONE_EXAMPLE}; agreement to {LARGEST} "
    "on the stochastic layer's coordinates. Outside: one layer with bce; two stochastic "
    "layers with mse.",
)
def st_sigmoid_mean_is_deterministic(max_examples: int) -> list[Part]:
    """The mean of ``st_sigmoid`` is the deterministic network's gradient (one layer, mse).

    Closed form: by :func:`st_sigmoid_noise_form`, ``E[g_hat_a] = D dC/dh(p)``, the
    deterministic gradient. The exact gradient is ``D_i E[C(h_-i, 1) - C(h_-i, 0)]``; for a
    quadratic ``C`` the secant is the slope at ``h_i = 1/2``, ``dC/dh_i(p) + H_ii (1/2 -
    p_i)`` after averaging the other (independent) units. For a loss that is not quadratic
    in ``h`` the mean slope ``E[dC/dh(h)]`` differs from ``dC/dh(p)``; deeper, the layer
    above sees ``h_1``, not ``p_1``, and is not linear in it.
    """
    s = Search(max_examples)

    def confirm(cx: Counterexample) -> str | None:
        net, x = cx.network(), np.asarray(cx.x, dtype=float)
        if _mean_gap(net, x, cx.t) > TOL:
            return f"{cx.sizes} {cx.loss}, {_numbers(net, x, cx.t)}"
        return None

    def under_conditions(problem: Any) -> float:
        net, x, t = single(problem)
        (W1, b1), (W_o, _) = net.layers()
        p = expit(W1 @ x + b1)
        H = W_o.T @ W_o
        stoch = net.parameter_groups()["stochastic"]
        det = deterministic_gradient(net, x, t)[stoch]
        m = estimator_moments(net, x, t, "st_sigmoid")
        n = net.n_stochastic
        g_a = det[-n:] - p * (1.0 - p) * np.diag(H) * (p - 0.5)
        want = np.concatenate([np.outer(g_a, x).ravel(), g_a])
        return max(relative(m.mean[stoch], det), relative(m.gradient[stoch], want))

    def describe(problem: Any) -> Counterexample:
        what = "E[st_sigmoid] differs from the deterministic gradient"
        return first_example(what, problem, "st_sigmoid")

    return [
        s.holds(
            "E[g_hat] = g_det on layer 1 and g = g_det - D diag(H)(p - 1/2) on the logits",
            one_layer(("mse",), max_stochastic=4), under_conditions,
            "largest relative deviation:", describe,
        ),
        confirmed((ST_MEAN_BCE, ST_MEAN_TWO_LAYERS), confirm),
        s.outside("one layer, bce", one_layer(("bce",), max_stochastic=3), _mean_gap,
                  "st_sigmoid", _numbers),
        s.outside("two layers, mse",
                  problems(max_batch=1, min_depth=2, max_depth=2, losses=("mse",),
                           max_stochastic=4),
                  _mean_gap, "st_sigmoid", _numbers),
    ]  # fmt: skip


def walsh_covariance(net: BinaryNetwork, x: Any, t: Any, surrogate: np.ndarray) -> np.ndarray:
    """``Cov(g_i, g_k) = s_i s_k sum_{S nonempty} c_{i,S} c_{k,S} prod_{j in S} p_j (1 - p_j)``
    on the logits of one stochastic layer, from the Walsh coefficients ``c_{i,S} =
    E[dC/dh_i prod_{j in S} epsilon_j] / prod_{j in S} p_j (1 - p_j)`` of the slopes.

    ``surrogate`` is ``s``, the straight-through factor per unit (``p(1-p)`` or 1).
    """
    W1, b1 = net.layers()[0]
    p = expit(W1 @ np.asarray(x, dtype=float) + b1)
    n = net.n_stochastic
    v = p * (1.0 - p)
    slopes = _slopes(net, x, t)
    states = np.array([_state(n, s) for s in range(2**n)])
    prob = np.prod(np.where(states == 1.0, p, 1.0 - p), axis=1)
    eps = states - p
    cov = np.zeros((n, n))
    for size in range(1, n + 1):
        for S in combinations(range(n), size):
            chi = np.prod(eps[:, S], axis=1)
            weight = np.prod(v[list(S)])
            c = (prob * chi) @ slopes / weight
            cov += np.outer(c, c) * weight
    return np.outer(surrogate, surrogate) * cov


@claim(
    statement="With one stochastic layer and any loss, straight-through's covariance on the "
    "logits is a Walsh sum: Cov(g_i, g_k) = s_i s_k sum_{S nonempty} c_{i,S} c_{k,S} "
    "prod_{j in S} p_j (1 - p_j), where dC/dh_i(h) = sum_S c_{i,S} prod_{j in S} "
    "epsilon_j and s = sigmoid'(a) (st_sigmoid) or 1 (st).",
    source=f"Derived here for the estimators of {HINTON} and {BENGIO}",
    conditions=f"One stochastic layer, N <= 4, losses mse, bce, xent and linear, {ONE_EXAMPLE}; "
    f"agreement to {LARGEST} with the enumerated covariance on b_1.",
)
def surrogate_walsh_covariance(max_examples: int) -> Part:
    """The covariance of a one-layer straight-through estimate as a Walsh sum.

    Closed form: the products ``chi_S = prod_{j in S} epsilon_j`` over subsets ``S`` are
    orthogonal under the product Bernoulli law with ``E[chi_S^2] = prod_{j in S} p_j(1-p_j)``
    (independent units, ``E epsilon_j = 0``), and the ``2^N`` of them span every function of
    ``h``. Expanding ``dC/dh_i`` in them, the covariance of ``s_i dC/dh_i`` and ``s_k dC/dh_k``
    is the sum over nonempty ``S`` of the coefficient products times ``E[chi_S^2]``
    (Parseval); the surrogate factors do not depend on ``h`` for one layer.
    """
    losses = ("mse", "bce", "xent", "linear")
    cases = st.tuples(one_layer(losses, max_stochastic=4), st.sampled_from(("st_sigmoid", "st")))

    def residual(case: Any) -> float:
        problem, estimator = case
        net, x, t = single(problem)
        W1, b1 = net.layers()[0]
        a = W1 @ x + b1
        s = dsigmoid(a) if estimator == "st_sigmoid" else np.ones_like(a)
        b_1 = slice(net.n_in * net.n_stochastic, net.parameter_groups()["stochastic"].stop)
        cov = estimator_moments(net, x, t, estimator, full_cov=True).cov[b_1, b_1]
        return relative(cov, walsh_covariance(net, x, t, s))

    return Search(max_examples).holds(
        "Cov on b_1 = the Walsh sum of the slopes' coefficients, st and st_sigmoid",
        cases, residual, "largest relative deviation:",
        describe_as("the covariance differs from the Walsh sum"),
    )  # fmt: skip


@claim(
    statement="For every enumerable estimator and any depth, the covariance splits by the "
    "layer whose sampling causes it: Cov(g_hat) = sum_l E[Cov(E[g_hat | h_1..h_l] | "
    "h_1..h_{l-1})], each part positive semi-definite (gradstat.noise_decomposition).",
    source="Derived here from the law of total covariance (Eve's law: Blitzstein & Hwang "
    "(2019), Introduction to Probability, ch. 9) for the estimators of docs/model.md, section 2",
    conditions="1 to 3 stochastic layers, N <= 5, every loss, one example, "
    f"{INPUTS}, estimators {', '.join(SOURCE_ESTIMATORS)}; the "
    f"parts sum to the enumerated covariance to {LARGEST} and "
    f"their smallest eigenvalues are above -{TOL:g} times that scale.",
)
def noise_sources_sum(max_examples: int) -> Part:
    """The source split sums to the total covariance.

    Closed form: with ``M_l = E[g_hat | h_1..h_l]`` (``M_0 = E g_hat``, ``M_L = g_hat``),
    ``g_hat - E g_hat = sum_l (M_l - M_{l-1})`` and the increments are uncorrelated
    (``E[M_l - M_{l-1} | h_1..h_{l-1}] = 0``), so the covariance is the sum of theirs, and
    ``E[(M_l - M_{l-1})(M_l - M_{l-1})^T] = E[Cov(M_l | h_1..h_{l-1})]``.
    """
    cases = st.tuples(
        problems(max_batch=1, min_depth=1, max_depth=3, max_stochastic=5),
        st.sampled_from(SOURCE_ESTIMATORS),
    )
    depths: set[int] = set()

    def residual(case: Any) -> float:
        (net, X, T), estimator = case
        d = noise_decomposition(net, X, T, estimator, full_cov=True)
        cov = estimator_moments(net, X, T, estimator, full_cov=True).cov
        depths.add(net.n_layers)
        scale = 1.0 + float(np.abs(cov).max())
        lowest = min(float(np.linalg.eigvalsh(c).min()) for c in d.cov)
        return max(
            relative(d.cov.sum(axis=0), cov),
            relative(d.parts, np.diagonal(d.cov, axis1=1, axis2=2)),
            max(0.0, -lowest) / scale,
        )

    return Search(max_examples).holds(
        "sum of the source parts = the enumerated covariance, each part PSD", cases, residual,
        "largest relative deviation:",
        describe_as("the source parts do not sum to the covariance"),
        lambda: f"depths {sorted(depths)}",
    )  # fmt: skip
