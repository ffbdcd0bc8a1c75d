"""Exact numbers at the edges: confident outputs, nearly deterministic units, tiny outputs.

Every number is compared by relative tolerance with an independent computation: closed
forms for one-unit networks at extreme logits (evaluated in 400-digit arithmetic), and
the 400-digit enumeration of ``tests/reference/precise_enumerator.py``.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from reference import naive_enumerator as ne
from reference import precise_enumerator as pe

import gradstat as gs

mp = mpmath.mp.clone()
mp.dps = 400

RTOL = 1e-12
NO_INPUT = np.zeros((1, 0))


def _sigmoid(a: float) -> mpmath.mpf:
    return 1 / (1 + mp.exp(-mp.mpf(a)))


def _assert_relative(got: np.ndarray, want: list | np.ndarray, rtol: float = RTOL) -> None:
    """Each coordinate within ``rtol`` of the reference, relative to the reference itself
    (an exact zero must come out as zero)."""
    want = np.array([float(v) for v in want])
    got = np.asarray(got, dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0.0)


# --- one unit, closed forms -----------------------------------------------------------


@pytest.mark.parametrize(("y", "t"), [(40.0, 1.0), (100.0, 1.0), (700.0, 1.0), (-40.0, 0.0),
                                      (-300.0, 0.0), (40.0, 0.75), (-60.0, 0.25)])  # fmt: skip
def test_bce_confident_output(y, t):
    """``y`` fixed by ``b_o`` (``W_o = 0``): ``E[C] = softplus(y) - t y`` and
    ``dC/db_o = sigmoid(y) - t``, ``dC/dW_o = p (sigmoid(y) - t)`` at ``p = 1/2``."""
    net = gs.BinaryNetwork((0, 1, 1), [0.0, 0.0, y], loss="bce")
    T = np.array([[t]])
    yy = mp.mpf(y)
    loss = mp.log1p(mp.exp(-abs(yy))) + max(yy, 0) - t * yy
    dy = _sigmoid(y) - t
    assert gs.expected_loss(net, NO_INPUT, T) == pytest.approx(float(loss), rel=RTOL)
    _assert_relative(gs.exact_gradient(net, NO_INPUT, T), [0, dy / 2, dy])
    moments = gs.estimator_moments(net, NO_INPUT, T, "reinforce")
    _assert_relative(moments.mean, [0, dy / 2, dy])


def test_bce_issue_case():
    """``t = 1`` at ``y = 40``: loss ``4.25e-18``, ``dC/db_o = -4.25e-18`` (were both 0)."""
    net = gs.BinaryNetwork((0, 1, 1), [0.0, 0.0, 40.0], loss="bce")
    T = np.array([[1.0]])
    assert gs.expected_loss(net, NO_INPUT, T) == pytest.approx(4.248354255291589e-18, rel=1e-14)
    assert gs.exact_gradient(net, NO_INPUT, T)[2] == pytest.approx(
        -4.248354255291589e-18, rel=1e-14
    )


@pytest.mark.parametrize("gap", [37.0, 50.0, 200.0, 300.0, 400.0, 700.0])
def test_xent_confident_output(gap):
    """Class 0 ahead by ``gap``: loss ``log1p(e^-gap)``, ``dC/db_o = [-s, s]`` with
    ``s = sigmoid(-gap)``; REINFORCE's mean is that gradient, so its cosine is 1."""
    net = gs.BinaryNetwork((0, 1, 2), [0.0, 0.0, 0.0, gap, 0.0], loss="xent")
    T = np.array([0])
    s = _sigmoid(-gap)
    assert gs.expected_loss(net, NO_INPUT, T) == pytest.approx(float(mp.log1p(mp.exp(-gap))),
                                                               rel=RTOL)  # fmt: skip
    want = [0, -s / 2, s / 2, -s, s]
    _assert_relative(gs.exact_gradient(net, NO_INPUT, T), want)
    _assert_relative(gs.estimator_moments(net, NO_INPUT, T, "reinforce").mean, want)
    # |g|^2 underflows beyond a gap of about 350: the cosine is computed scale-safely.
    result = gs.analyze(net, NO_INPUT, T, "reinforce")
    assert result.cosine == pytest.approx(1.0, rel=1e-12)
    assert result.relative_bias == pytest.approx(0.0, abs=1e-12)


def _one_unit_estimates(estimator: str, a: float, w: float, b: float, t: float, loss: str):
    """Estimates ``(e(h=0), e(h=1))`` of a one-unit network ``y = w h + b`` in SPEC order
    ``(b_1, W_o, b_o)``, and ``p``, in 400-digit arithmetic."""
    p = _sigmoid(a)
    out = []
    for h in (0, 1):
        y = mp.mpf(w) * h + mp.mpf(b)
        if loss == "mse":
            C, dy = (y - t) ** 2 / 2, y - t
        else:
            C, dy = mp.log1p(mp.exp(y)) - t * y, _sigmoid(y) - t
        if estimator == "reinforce":
            first = C * (h - p)
        else:
            first = mp.mpf(w) * dy * (1 if estimator == "st" else p * (1 - p))
        out.append([first, dy * h, dy])
    return out, p


@pytest.mark.parametrize(
    ("estimator", "a"),
    [(name, a) for name in ("st", "st_sigmoid") for a in (30.0, -30.0, 100.0, 700.0, -700.0)]
    # REINFORCE's score 1 - p of a unit that fires is sigmoid(-a): exact as p nears 1.
    + [("reinforce", a) for a in (3.0, 5.0, 30.0, 40.0, 100.0, 700.0, -30.0, -100.0, -700.0)],
)
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_one_unit_variance_at_extreme_logits(estimator, a, loss):
    """Two states: ``Var e_j = p (1 - p) (e_j(1) - e_j(0))^2`` for every coordinate, tiny
    (``p (1 - p) = 9.36e-14`` at ``a = 30``, ``9.9e-305`` at ``a = 700``) but exact."""
    t = 0.3
    net = gs.BinaryNetwork((0, 1, 1), [a, 1.0, 0.0], loss=loss)
    T = np.array([[t]])
    (e0, e1), p = _one_unit_estimates(estimator, a, 1.0, 0.0, t, loss)
    want_mean = [p * v1 + (1 - p) * v0 for v0, v1 in zip(e0, e1)]
    want_var = [p * (1 - p) * (v1 - v0) ** 2 for v0, v1 in zip(e0, e1)]
    for full_cov in (False, True):
        got = gs.estimator_moments(net, NO_INPUT, T, estimator, full_cov=full_cov)
        _assert_relative(got.mean, want_mean)
        _assert_relative(got.var, want_var)
        if full_cov:
            _assert_relative(np.diag(got.cov), want_var)


@pytest.mark.parametrize("a", [4.5, 40.0, 100.0, 300.0, 700.0])
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_reinforce_score_near_certain_unit(a, loss):
    """A unit that fires with ``p = sigmoid(a)`` near 1: the score ``1 - p = sigmoid(-a)``
    keeps its relative precision in the exact gradient (score-function sums), in
    REINFORCE's exact moments and in each of its draws."""
    t = 0.3
    net = gs.BinaryNetwork((0, 1, 1), [a, 1.0, 0.0], loss=loss)
    T = np.array([[t]])
    (e0, e1), p = _one_unit_estimates("reinforce", a, 1.0, 0.0, t, loss)
    # The gradient by the score-function identity: p (1 - p) (C(1) - C(0)) for b_1.
    want_grad = [p * v1 + (1 - p) * v0 for v0, v1 in zip(e0, e1)]
    _assert_relative(gs.exact_gradient(net, NO_INPUT, T), want_grad)
    _assert_relative(gs.analyze(net, NO_INPUT, T, "reinforce").mean, want_grad)
    # A draw that fires the unit (u < p): the estimate e(1) = (C(1) (1 - p), ...).
    got = gs.estimate_from_noise(net, NO_INPUT[0], T[0], "reinforce", np.array([0.5]))
    _assert_relative(got, e1)


def test_one_unit_variance_issue_value():
    """The issue's numbers: ``st`` at ``a = 30`` has variance ``p (1 - p) = 9.3576e-14``."""
    net = gs.BinaryNetwork((0, 1, 1), [30.0, 1.0, 0.0], loss="mse")
    var = gs.estimator_moments(net, NO_INPUT, np.array([[0.3]]), "st").var
    assert var[0] == pytest.approx(float(_sigmoid(30) * _sigmoid(-30)), rel=1e-13)


# --- a tiny output next to large terms (Gray-code walk) ------------------------------


@pytest.mark.parametrize("x", [0.0, 1.0])
def test_tiny_output_keeps_its_sign(x):
    """``y_0 = -h_0 - h_1 / 2 - 1.84e-138``: where both top units are off, ``y_0`` is the
    tiny bias, negative; the block walk's updates of ``y`` must not lose it, so the
    sign probabilities of ``W_o[0, 2]`` and ``b_o[0]`` are ``0.707`` and 1."""
    params = np.zeros(29)
    params[17], params[18], params[26] = -1.0, -0.5, -1.84e-138
    net = gs.BinaryNetwork((3, 2, 3, 3), params, loss="mse")
    X, T = np.full((1, 3), x), np.zeros((1, 3))
    got = gs.estimator_moments(net, X, T, "sts")
    want = pe.example_moments(net.sizes, params, "mse", X[0], T[0], "sts")
    clear = np.array([float(abs(v)) > 0 for v in want["gradient"]])
    np.testing.assert_allclose(
        got.sign_probability[0][clear], pe.to_float(want["sign_probability"])[clear], atol=1e-12
    )
    assert got.sign_probability[0][[19, 26]] == pytest.approx([2**-0.5, 1.0], abs=1e-12)
    naive = ne.example_moments(net.sizes, params, "mse", X[0], T[0], "sts")
    np.testing.assert_allclose(got.sign_probability[0][[19, 26]],
                               naive["sign_probability"][[19, 26]], atol=1e-12)  # fmt: skip


# --- small networks at the edges against the 400-digit enumeration --------------------


CASES = [
    ((2, 2, 2), "bce"),
    ((2, 2, 2), "xent"),
    ((1, 2, 1, 2), "bce"),
    ((1, 2, 1, 2), "xent"),
    ((0, 2, 3), "mse"),
    ((1, 1, 2, 2), "linear"),
]


def _edge_network(sizes, loss, seed):  # noqa: ANN001, ANN202
    """Dyadic parameters (so that every ``a`` and ``y`` is exact in float64), the output
    layer's scaled to confident outputs (``|y|`` up to a few hundred); targets at the edges
    too. Hidden units stay within ``|a| <= 8`` or so: here the subject is the output."""
    rng = np.random.default_rng(seed)
    n = ne.n_params(sizes)
    n_out_layer = sizes[-1] * sizes[-2] + sizes[-1]
    scale = np.ones(n)
    scale[n - n_out_layer :] = rng.choice([1.0, 8.0, 32.0, 64.0], size=n_out_layer)
    params = rng.integers(-8, 9, size=n) / 8.0 * scale
    x = rng.integers(-4, 5, size=sizes[0]) / 4.0
    if loss == "xent":
        t = np.array([int(rng.integers(sizes[-1]))])
    elif loss == "bce":
        t = rng.choice([0.0, 1.0, 0.5], size=sizes[-1])
    else:
        t = rng.integers(-4, 5, size=sizes[-1]) / 4.0
    return gs.BinaryNetwork(sizes, params, loss=loss), x, t


def _close(got: np.ndarray, want: np.ndarray, rtol: float, atol: np.ndarray | float) -> None:
    """``|got - want| <= rtol |want| + atol`` coordinate-wise."""
    bad = np.abs(got - want) > rtol * np.abs(want) + atol
    assert not np.any(bad), (np.flatnonzero(bad), got[bad], want[bad])


@pytest.mark.parametrize(("sizes", "loss"), CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_edges_match_high_precision_enumeration(sizes, loss, seed):
    net, x, t = _edge_network(sizes, loss, seed)
    X, T = x[None, :], (t if loss == "xent" else t[None, :])
    loss_ref, grad_ref = pe.expected_loss_and_gradient(sizes, net.params, loss, x, t)
    got_loss = gs.expected_loss(net, X, T)
    if loss == "linear":
        assert got_loss == pytest.approx(float(loss_ref), rel=1e-12, abs=1e-12)
    else:
        assert got_loss == pytest.approx(float(loss_ref), rel=1e-10)
    # A sum over states carries absolute errors of about eps times its largest terms: a
    # coordinate far below the others (a unit whose effect is swamped by another's) is
    # checked to that absolute level, every other one relatively.
    grad = pe.to_float(grad_ref)
    _close(gs.exact_gradient(net, X, T), grad, 1e-9, 1e-14 * np.max(np.abs(grad)))
    for estimator in ("st", "st_sigmoid", "reinforce"):
        want = pe.example_moments(sizes, net.params, loss, x, t, estimator)
        got = gs.estimator_moments(net, X, T, estimator)
        mean, var = pe.to_float(want["mean"]), pe.to_float(want["var"])
        _close(got.mean, mean, 1e-9, 1e-14 * np.max(np.abs(mean)))
        # Per-state estimates are float64: their spread is resolved down to about
        # 1e-13 of their size, so a variance is exact relative to itself above that.
        resolution = (1e-13 * (np.abs(mean) + np.sqrt(var))) ** 2
        _close(got.var, var, 1e-8, resolution)
