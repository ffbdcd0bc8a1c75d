"""Claims about straight-through estimators (identity and sigmoid), with the kept
counterexamples to "straight-through has the right sign"."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from scipy.special import expit

from gradstat.claims.registry import SIGN_TOL, Counterexample, Part, claim
from gradstat.claims.search import (
    Search,
    confirmed,
    describe_as,
    dsigmoid,
    one_layer,
    relative,
    single,
    variance_ratio,
)
from gradstat.claims.wording import BENGIO, HINTON, LARGEST, ONE_EXAMPLE
from gradstat.exact import estimator_moments
from gradstat.kernels.forward import loss_and_grad
from gradstat.network import LOSSES, BinaryNetwork, as_batch
from gradstat.strategies import networks, targets

ST_SIGN_ONE_UNIT = Counterexample.one_unit(
    "one unit, C = 0.5 (h - 0.45)^2, a = -2 (p = 0.119 < t): exact gradient on "
    "b_1 +0.00525, E[st_sigmoid] -0.0347 (E[st] -0.331)",
    -2.0, 0.45, "mse", "st_sigmoid",
)  # fmt: skip
"""A quadratic loss of one unit: ``g = sigmoid'(a)(1/2 - t) > 0`` for every ``a`` while
``E[st_sigmoid] = sigmoid'(a)(p - t) < 0`` whenever ``p < t``."""

ST_SIGN_ONE_LAYER_MINIMAL = Counterexample.no_input(
    "minimal one-layer mse counterexample (hypothesis.find): C = 0.5 (h2 - 0.5 "
    "h1)^2, a = (0, -2): exact gradient on b_1[1] +0.02625, E[st_sigmoid] -0.01373",
    (0, 2, 1), (0.0, -2.0, -0.5, 1.0, 0.0), 0.0, "mse", "st_sigmoid",
)  # fmt: skip
"""For unit 2 the secant ``C(h2 = 1) - C(h2 = 0) = (1 - h1) / 2`` has mean ``1/4 > 0`` but
the mean slope ``E[h2 - h1 / 2] = sigmoid(-2) - 1/4 < 0``."""

ST_SIGN_TWO_LAYERS = Counterexample.no_input(
    "two layers, linear loss f = h2a + h2b, a2 = (8 h1 - 4, -h1), a = 0: exact "
    "gradient on b_1 +0.1832, E[st_sigmoid] -0.0205",
    (0, 1, 2, 1), (0.0, 8.0, -1.0, -4.0, 0.0, 1.0, 1.0, 0.0), 1.0, "linear", "st_sigmoid",
)  # fmt: skip
"""A hand-built case: unit ``h2a`` is saturated at both values of ``h1`` (secant
``sigmoid(4) - sigmoid(-4) = 0.96``, tangent ``8 sigmoid'(4) = 0.14``), so the tangent of
``h2b`` decides the sign. Wrong for every ``a``; identity ST (``8 - 1 = 7``) is right."""

ST_SIGN_TWO_LAYERS_MINIMAL = Counterexample.no_input(
    "minimal two-layer counterexample (hypothesis.find): a = -1, "
    "a2 = (2 h1, -2 h1 + 1), f = h2a + h2b: exact gradient on b_1 -0.0160, E[st_sigmoid] "
    "+0.00566",
    (0, 1, 2, 1), (-1.0, 2.0, -2.0, 0.0, 1.0, 1.0, 1.0, 0.0), 1.0, "linear", "st_sigmoid",
)  # fmt: skip
"""Secants ``sigmoid(2) - sigmoid(0) = 0.381`` and ``sigmoid(-1) - sigmoid(1) = -0.462``;
the tangents, taken where the units are, weigh them the other way."""

ST_SIGN_TWO_LAYERS_IDENTITY = Counterexample.no_input(
    "minimal two-layer counterexample for identity ST (hypothesis.find): a = 0, "
    "a2 = (h1, 3 h1), f = -2 h2a + h2b: exact gradient on b_1 -0.00239, E[st] +1",
    (0, 1, 2, 1), (0.0, 1.0, 3.0, 0.0, 0.0, -2.0, 1.0, 0.0), 1.0, "linear", "st",
)  # fmt: skip
"""Identity straight-through sums weights (``-2 * 1 + 1 * 3 = 1``) whatever the units'
saturation; the secants give ``-2 * 0.231 + 0.453 < 0``."""

KEPT_SIGN_COUNTEREXAMPLES: tuple[Counterexample, ...] = (
    ST_SIGN_ONE_UNIT,
    ST_SIGN_ONE_LAYER_MINIMAL,
    ST_SIGN_TWO_LAYERS,
    ST_SIGN_TWO_LAYERS_MINIMAL,
    ST_SIGN_TWO_LAYERS_IDENTITY,
)
"""Counterexamples to "straight-through has the right sign", confirmed on every check."""


def _first_layer(net: BinaryNetwork, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pre-activations ``a_1`` and, per layer-1 coordinate, its unit and input factor.

    Layer-1 coordinates are ``W_1`` (row-major ``(n_1, n_in)``) then ``b_1``; the estimate
    of ``W_1[i, j]`` is ``x_j`` times that of ``b_1[i]`` for every estimator here.
    """
    W, b = net.layers()[0]
    n1, n_in = W.shape
    unit = np.concatenate([np.repeat(np.arange(n1), n_in), np.arange(n1)])
    factor = np.concatenate([np.tile(x, n1), np.ones(n1)])
    return W @ x + b, unit, factor


@claim(
    statement="With one stochastic layer and a loss linear in h, sigmoid straight-through "
    "is unbiased with zero variance on the stochastic layer (the output-layer estimate is "
    "the direct gradient, unbiased); identity straight-through is biased by the factor "
    "1/sigmoid'(a_i) per unit but has the right sign.",
    source=f"Derived here for the estimators of {BENGIO} and {HINTON}",
    conditions="One stochastic layer, N <= 4, the linear loss C = sum_k t_k y_k, "
    f"{ONE_EXAMPLE}; agreement to {LARGEST}.",
)
def st_linear_one_layer(max_examples: int) -> list[Part]:
    """Straight-through with one stochastic layer and the ``linear`` loss.

    Closed form: ``C = t^T (W_o h + b_o)`` gives ``dC/dh = w := W_o^T t``, the same for
    every state, and ``C(h_-i, 1) - C(h_-i, 0) = w_i``, so the exact gradient on ``a_i`` is
    ``g_i = sigmoid'(a_i) w_i``. Sigmoid straight-through estimates ``sigmoid'(a_i) w_i``
    for every draw: unbiased with zero variance (``W_1[i, j]`` multiplies both by ``x_j``).
    The output-layer estimate ``dC/dW_o = t h^T`` is the direct gradient, unbiased because
    ``W_o, b_o`` do not move ``P(h)``. Identity straight-through estimates ``w_i``: its mean
    is ``g_i / sigmoid'(a_i)`` (a factor ``>= 4``), so it has the sign of ``g_i``.
    """
    factors: list[float] = []

    def residual(problem: Any) -> float:
        net, x, t = single(problem)
        a, unit, _ = _first_layer(net, x)
        factors.extend(1.0 / dsigmoid(a))
        stoch = net.parameter_groups()["stochastic"]
        sig = estimator_moments(net, x, t, "st_sigmoid")
        ident = estimator_moments(net, x, t, "st")
        scaled = ident.mean[stoch] * dsigmoid(a)[unit]
        return max(
            relative(sig.mean, sig.gradient),
            variance_ratio(sig.var[stoch], sig.mean),
            relative(scaled, sig.gradient[stoch]),
            relative(ident.mean[stoch.stop :], sig.gradient[stoch.stop :]),
            variance_ratio(ident.var[stoch], ident.mean),
        )

    def describe(problem: Any) -> Counterexample:
        net, x, t = single(problem)
        return Counterexample.from_problem(
            "straight-through differs from the closed form for a linear loss", net, x, t, "st"
        )

    return [
        Search(max_examples).holds(
            "st_sigmoid: E[g_hat] = g on all coordinates and Var = 0 on layer 1; st: "
            "E[g_hat_j] sigmoid'(a_i) = g_j on layer 1, Var = 0 there, and E[g_hat] = g on "
            "the output layer",
            one_layer(("linear",), max_stochastic=4), residual, "largest relative deviation:",
            describe,
            lambda: f"st/g factor 1/sigmoid'(a) from {min(factors):.3g} to {max(factors):.3g}",
        )
    ]  # fmt: skip


@claim(
    statement="For one stochastic layer and mse, the bias of sigmoid straight-through on "
    "a_i (the b_1[i] coordinate) is sigmoid'(a_i)(p_i - 1/2) sum_k W_o[k,i]^2.",
    source=f"Derived here for the estimator of {HINTON}",
    conditions=f"One stochastic layer, N <= 4, loss mse (0.5 ||y - t||^2), {ONE_EXAMPLE}; "
    f"agreement to {LARGEST} on every coordinate.",
)
def st_sigmoid_mse_bias(max_examples: int) -> Part:
    """Exact bias of sigmoid straight-through for one stochastic layer and ``mse``.

    Closed form: write ``C`` as a function of ``h_i`` with the other units fixed. For
    ``C = 0.5 ||W_o h + b_o - t||^2`` it is a quadratic ``C = alpha + beta h_i + 0.5 kappa_i
    h_i^2`` with ``kappa_i = d^2 C / dh_i^2 = sum_k W_o[k, i]^2`` (``alpha, beta`` depend on
    the other units, which are independent of ``h_i`` in one layer). The estimator's mean
    on ``a_i`` is ``sigmoid'(a_i) E[beta + kappa_i h_i] = sigmoid'(a_i) (E beta + kappa_i
    p_i)``; the exact gradient is ``sigmoid'(a_i) E[C(1) - C(0)] = sigmoid'(a_i) (E beta +
    kappa_i / 2)``. Hence ``bias(b_1[i]) = sigmoid'(a_i) (p_i - 1/2) kappa_i`` and
    ``bias(W_1[i, j]) = x_j bias(b_1[i])``; the output layer is unbiased (direct gradient).
    The constant ``kappa_i`` is the second derivative, so for the unscaled squared error
    ``(w^T h - y)^2`` the same argument gives ``sigmoid'(a_i)(2 p_i - 1) w_i^2``.
    """
    largest = [0.0]

    def residual(problem: Any) -> float:
        net, x, t = single(problem)
        a, unit, factor = _first_layer(net, x)
        W_o = net.layers()[-1][0]
        kappa = np.sum(W_o**2, axis=0)
        per_unit = dsigmoid(a) * (expit(a) - 0.5) * kappa
        want = np.zeros(net.n_params)
        want[net.parameter_groups()["stochastic"]] = factor * per_unit[unit]
        bias = estimator_moments(net, x, t, "st_sigmoid").bias
        largest[0] = max(largest[0], float(np.abs(bias).max()))
        return relative(bias, want)

    return Search(max_examples).holds(
        "bias of b_1[i] = sigmoid'(a_i)(p_i - 1/2) sum_k W_o[k,i]^2 (x_j times it for "
        "W_1[i,j], 0 on the output layer; the constant is d^2C/dh_i^2, as derived)",
        one_layer(("mse",), max_stochastic=4), residual, "largest relative deviation:",
        describe_as(
            "st_sigmoid bias differs from sigmoid'(a)(p - 1/2) sum_k W_o[k,i]^2", "st_sigmoid"
        ),
        lambda: f"largest |bias| seen {largest[0]:.3g}",
    )  # fmt: skip


# --------------------------------------------------------------------------- right sign


def _sign_check(
    net: BinaryNetwork, x: Any, t: Any, estimator: str, *, opposite: bool
) -> tuple[bool, float]:
    """Compare signs of ``E[g_hat_j]`` and ``g_j`` on layer 1 where ``|g_j| > SIGN_TOL``.

    With ``opposite=False`` a coordinate fails unless ``sign(g_j) E[g_hat_j] > 0``; with
    ``opposite=True`` only a clearly opposite sign, ``sign(g_j) E[g_hat_j] < -SIGN_TOL``,
    counts. Returns ``(fails, min_j sign(g_j) E[g_hat_j])``.
    """
    j, g, mean = _worst_sign(net, x, t, estimator)
    if j < 0:
        return False, np.inf
    agree = np.sign(g) * mean
    return bool(agree < -SIGN_TOL if opposite else agree <= 0.0), float(agree)


def _worst_sign(net: BinaryNetwork, x: Any, t: Any, estimator: str) -> tuple[int, float, float]:
    """The layer-1 coordinate ``j`` with ``|g_j| > SIGN_TOL`` minimising ``sign(g_j)
    E[g_hat_j]``, with ``g_j`` and ``E[g_hat_j]`` (``(-1, 0, 0)`` when there is none)."""
    m = estimator_moments(net, x, t, estimator)
    layer1 = net.parameter_groups()["layer1"]
    g, mean = m.gradient[layer1], m.mean[layer1]
    agree = np.where(np.abs(g) > SIGN_TOL, np.sign(g) * mean, np.inf)
    if not np.isfinite(agree).any():
        return -1, 0.0, 0.0
    j = int(np.argmin(agree))
    return j, float(g[j]), float(mean[j])


def _is_monotone(net: BinaryNetwork, x: np.ndarray, t: Any) -> bool:
    """Whether ``C`` is monotone in each unit on ``[0, 1]``, one direction for all states.

    Every built-in loss is convex in ``y`` and ``y`` is affine in ``h``, so ``dC/dh_i`` is
    nondecreasing along ``h_i``: the slopes ``dC/dh_i`` at the ``2^N`` corners decide.
    """
    _, T = as_batch(net, x, t)
    (W_o, b_o) = net.layers()[-1]
    n = net.n_stochastic
    dy = np.empty(net.n_out)
    slopes = np.empty((2**n, n))
    for s in range(2**n):
        h = np.array([(s >> k) & 1 for k in range(n)], dtype=np.float64)
        loss_and_grad(LOSSES[net.loss], W_o @ h + b_o, T[0], dy)
        slopes[s] = W_o.T @ dy
    return bool(np.all(np.all(slopes >= 0, axis=0) | np.all(slopes <= 0, axis=0)))


@st.composite
def _monotone_problems(draw: st.DrawFn) -> tuple[BinaryNetwork, np.ndarray, Any]:
    """One-layer problems whose loss is linear or monotone in each unit.

    Linear loss; bce with one output and ``t`` in {0, 1}; xent with two classes; mse with
    one output and a target beyond every reachable output. Each non-linear case is
    ``C = phi(v^T h + c)`` with ``phi`` monotone on the reachable range.
    """
    kind = draw(st.sampled_from(("linear", "bce", "xent", "mse")))
    n_out = 2 if kind == "xent" else 3 if kind == "linear" else 1
    net = draw(
        networks(min_depth=1, max_depth=1, max_stochastic=4, losses=(kind,), max_outputs=n_out)
    )
    x = np.array(draw(st.lists(st.floats(-2.0, 2.0), min_size=net.n_in, max_size=net.n_in)))
    if kind == "linear":
        t = draw(targets(net, 1))[0]
    elif kind == "bce":
        t = np.array([float(draw(st.sampled_from((0, 1))))])
    elif kind == "xent":
        t = draw(st.sampled_from((0, 1)))
    else:
        W_o, b_o = net.layers()[-1]
        margin = draw(st.floats(0.0, 2.0))
        top = b_o[0] + W_o[0][W_o[0] > 0].sum() + margin
        bottom = b_o[0] + W_o[0][W_o[0] < 0].sum() - margin
        t = np.array([draw(st.sampled_from((top, bottom)))])
    return net, x, t


def _two_layer_chain() -> st.SearchStrategy[tuple[BinaryNetwork, np.ndarray, np.ndarray]]:
    """One unit feeding two, ``f = W_o h_2 + b_o`` (linear loss, ``t = 1``), parameters in
    ``[-8, 8]``: wide enough for the second layer to saturate."""
    params = st.lists(st.floats(-8.0, 8.0), min_size=8, max_size=8)
    return params.map(
        lambda v: (BinaryNetwork((0, 1, 2, 1), v, loss="linear"), np.zeros((1, 0)), np.ones((1, 1)))
    )


@claim(
    statement="Straight-through (identity or sigmoid), although biased, has the right "
    "sign for a single layer of stochastic units: sign E[g_hat_i] = sign g_i per unit.",
    source=f"{BENGIO} (a remark; not guaranteed through more layers)",
    conditions="One stochastic layer (N <= 4), one example, and a loss linear in h or "
    "monotone in each unit on [0, 1] in one direction for all states of the other units "
    "and convex (or concave) in each unit; monotone alone is not enough (a monotone f with "
    "f'(0) = f'(1) = 0 < f(1) - f(0) gives E[g_hat] = 0 while g > 0). Every built-in loss "
    "is convex in each unit (convex in y, y affine in h), so the search needs only "
    "monotonicity (generated: linear; bce, one output, t in {0, 1}; xent, two classes; "
    "mse, one output, target beyond reach; verified per example from dC/dh_i at all 2^N "
    "corners, which decide it for a convex loss). Compared on layer-1 coordinates with "
    "|g_j| > 1e-9; the sign must be strictly right. Outside: one-layer mse (one output); "
    "two layers, one unit feeding two, linear loss, parameters in [-8, 8].",
)
def st_right_sign(max_examples: int) -> list[Part]:
    """ "Straight-through has the right sign for a single layer": when it holds.

    Per unit ``i`` of one stochastic layer, ``E[st_sigmoid_i] = sigmoid'(a_i) E[dC/dh_i(h)]``
    and ``g_i = sigmoid'(a_i) E[C(h_-i, 1) - C(h_-i, 0)]``; identity straight-through is the
    first divided by ``sigmoid'(a_i) > 0``, so the two always share a sign. If ``C`` is
    multilinear (e.g. linear) the two expectations are equal; if ``C`` is monotone in
    ``h_i`` in one direction for every state of the other units and convex in ``h_i`` (as
    every built-in loss is: convex in ``y``, ``y`` affine in ``h``), ``dC/dh_i`` at every
    corner and every secant ``C(1) - C(0)`` share that direction, so the signs agree (and
    both vanish together, since a convex slope that is zero at both ends is zero between).
    Convexity (or concavity) is needed: a monotone ``f`` flat at both ends (``f'(0) = f'(1)
    = 0 < f(1) - f(0)``) has slope 0 at every corner while the secant is positive.
    Otherwise the tangent at the sampled value and the secant can disagree: a quadratic
    ``(h - t)^2`` with ``p < t < 1/2`` does it with one unit. Through two layers the
    surrogate replaces each layer's secant ``sigmoid(w + c) - sigmoid(c)`` by a tangent
    ``w sigmoid'(.)``, which fails even for a linear loss.
    """
    s = Search(max_examples)
    monotone = [0]

    def under_conditions(case: Any) -> tuple[bool, float] | None:
        (net, x, t), estimator = case
        if net.loss != "linear":
            if not _is_monotone(net, x, t):
                return None
            monotone[0] += 1
        return _sign_check(net, x, t, estimator, opposite=False)

    def describe(case: Any) -> Counterexample:
        (net, x, t), estimator = case
        return Counterexample.from_problem(
            f"{estimator} has the wrong sign on a linear or monotone loss", net, x, t, estimator
        )

    def confirm(cx: Counterexample) -> str | None:
        j, g, mean = _worst_sign(cx.network(), np.asarray(cx.x, dtype=float), cx.t, cx.estimator)
        if g * mean < 0 and abs(mean) > SIGN_TOL:
            return f"{cx.sizes} {cx.estimator}, coordinate {j}: g = {g:+.4g} vs E = {mean:+.4g}"
        return None

    def wrong_sign(strategy: st.SearchStrategy[Any], estimator: str, label: str) -> Part:
        def numbers(net: BinaryNetwork, x: Any, t: Any) -> str:
            j, g, mean = _worst_sign(net, x, t, estimator)
            return f"coordinate {j}: exact gradient {g:+.4g}, E[{estimator}] {mean:+.4g}"

        def opposite(net: BinaryNetwork, x: Any, t: Any) -> tuple[bool, float]:
            return _sign_check(net, x, t, estimator, opposite=True)

        return s.outside(label, strategy, opposite, estimator, numbers, loss=False)

    cases = st.tuples(_monotone_problems(), st.sampled_from(("st", "st_sigmoid")))
    return [
        s.holds(
            "one layer, linear or monotone loss: sign E[g_hat_j] = sign g_j for st and "
            "st_sigmoid on every layer-1 coordinate with |g_j| > 1e-9",
            cases, under_conditions, "smallest sign(g_j) E[g_hat_j]:", describe,
            lambda: f"{monotone[0]} of them with a non-linear monotone loss", smallest=True,
        ),
        confirmed(KEPT_SIGN_COUNTEREXAMPLES, confirm),
        wrong_sign(
            one_layer(("mse",), max_width=2, max_outputs=1), "st_sigmoid", "one layer, mse"
        ),
        wrong_sign(_two_layer_chain(), "st_sigmoid", "two layers, linear loss, st_sigmoid"),
        wrong_sign(_two_layer_chain(), "st", "two layers, linear loss, st"),
    ]  # fmt: skip
