"""Claims about Gumbel-Rao: its mean, its variance in ``k``, its zero-temperature limit."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from scipy.special import expit

from gradstat.claims.registry import TOL, Counterexample, Part, claim
from gradstat.claims.search import Search, describe_as, first_example, relative
from gradstat.claims.wording import paper
from gradstat.estimators.gumbel_rao import surrogate_moments
from gradstat.exact import estimator_moments
from gradstat.network import VALUES
from gradstat.sampling import estimate_from_noise, forward_pass
from gradstat.strategies import problems

GUMBEL_RAO_KS: tuple[int, ...] = (1, 2, 4, 16)
"""Numbers of conditional draws along which the variance must not increase."""

GUMBEL_RAO_COLD_TAUS: tuple[float, ...] = (1e-2, 1e-3)
"""Temperatures at which Gumbel-Rao's mean is compared with ZGR's (first-order error)."""

GUMBEL_RAO_LOGITS: tuple[float, ...] = (-4.0, -1.0, 0.0, 0.5, 3.0)
"""Logits at which the conditional mean slope is compared with ZGR's."""


def _same_as_gumbel_st(case: Any) -> float:
    """Gumbel-Rao with ``k = 1`` and the conditional uniform ``v`` that reproduces ``u``'s
    own logistic noise against Gumbel straight-through at ``u``, on 3 draws."""
    (net, X, T), seed, tau = case
    x, t = X[0], T[0]
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(3):
        u = rng.uniform(1e-6, 1.0 - 1e-6, net.n_stochastic)
        # The state Gumbel-ST draws at u: unit k fires when u > 1 - p, i.e. 1 - u < p.
        p = forward_pass(net, x, t, 1.0 - u).p
        fire = u > 1.0 - p
        v = np.where(fire, 1.0 - (1.0 - u) / p, u / (1.0 - p))
        v = np.clip(v, 1e-300, 1.0 - 1e-16)
        gr = estimate_from_noise(net, x, t, "gumbel_rao", np.concatenate([u, v]), k=1, tau=tau)
        gst = estimate_from_noise(net, x, t, "gumbel_st", u, tau=tau)
        worst = max(worst, relative(gr, gst))
    return worst


def _variance_in_k(case: Any) -> float:
    """Largest violation of ``mean(gumbel_rao) = mean(gumbel_st)``, ``Var(k=1) =
    Var(gumbel_st)`` and ``Var`` non-increasing along :data:`GUMBEL_RAO_KS`."""
    (net, X, T), tau = case
    ref = estimator_moments(net, X, T, "gumbel_st", engine="quadrature", tau=tau)
    gaps = []
    previous = None
    for k in GUMBEL_RAO_KS:
        m = estimator_moments(net, X, T, "gumbel_rao", engine="quadrature", k=k, tau=tau)
        gaps.append(relative(m.mean, ref.mean))
        if k == 1:
            gaps.append(relative(m.var, ref.var))
        if previous is not None:
            scale = 1.0 + float(np.max(previous))
            gaps.append(float(np.max(m.var - previous)) / scale)
        previous = m.var
    return max(gaps)


@claim(
    statement="Gumbel-Rao (the Gumbel straight-through surrogate averaged over k draws of "
    "the logistic noise given the sampled bit) has the mean of Gumbel straight-through for "
    "every k and tau, the same distribution at k = 1, and a variance that does not "
    "increase with k.",
    source=f"{paper('gumbel_rao')} (one stochastic layer); the multi-layer argument is "
    "derived here",
    conditions="Sample by sample: any depth (N <= 6), every loss, both unit values, tau in "
    f"[0.05, 3], 3 draws per network, to {TOL:g} (1 + largest). Moments: exact by states "
    "and per-unit quadrature (engine='quadrature'), any depth (N <= 4), batches of 1-2, "
    f"tau in [0.1, 3], k in {GUMBEL_RAO_KS}, to {TOL:g} relative.",
)
def gumbel_rao_rao_blackwell(max_examples: int) -> list[Part]:
    """Gumbel-Rao is Gumbel straight-through conditioned on the bits, one unit at a time.

    Closed form: given the bits ``h``, each unit's logistic noise is independent of the
    others' with the conditional law ``L | 1[a + L > 0] = b``, and the backpropagated
    estimate is a sum of products holding at most one slope per layer. So ``E[g_hat | h]``
    replaces every slope by its conditional mean, the same for one draw (Gumbel-ST) or the
    mean of ``k`` (Gumbel-Rao): equal means. Drawing ``L`` given ``b`` by inversion from
    ``v`` and choosing ``v`` as the position of ``u`` within the bit's interval reproduces
    ``L`` itself, so ``k = 1`` is Gumbel-ST draw for draw. The estimate is multilinear in
    the per-unit averages ``J_bar_i`` (independent given ``h``, variances ``v_i / k``),
    so ``Var(g_hat | h) = sum_{A != {}} prod_{i in A} (v_i / k) (d_A f)^2`` falls with
    ``k``, and so does ``Var g_hat = Var E[g_hat | h] + E Var(g_hat | h)``.
    """
    s = Search(max_examples)

    draws = st.tuples(
        problems(max_batch=1, max_stochastic=6, values=VALUES),
        st.integers(0, 2**32 - 1),
        st.floats(0.05, 3.0),
    )
    moments = st.tuples(problems(max_batch=2, max_stochastic=4, values=VALUES), st.floats(0.1, 3.0))
    return [
        s.holds(
            "k = 1 with v placed as u within the bit's interval is gumbel_st sample by sample",
            draws, _same_as_gumbel_st, "largest relative deviation:",
            describe_as("gumbel_rao (k = 1) differs from gumbel_st", "gumbel_rao"),
        ),
        s.holds(
            f"exact moments: equal means, Var(k = 1) = Var(gumbel_st), Var non-increasing "
            f"along k = {', '.join(map(str, GUMBEL_RAO_KS))}",
            moments, _variance_in_k, "largest relative violation:",
            describe_as(
                "Gumbel-Rao's mean or variance breaks the Rao-Blackwell ordering", "gumbel_rao"
            ),
        ),
    ]  # fmt: skip


def zgr_slope_gaps(tau: float) -> list[float]:
    """Per logit of :data:`GUMBEL_RAO_LOGITS` and bit, ``|E[J | b] - ZGR(b)|`` with ZGR's
    slope ``(1 - p)/2`` for ``b = 1`` and ``p/2`` for ``b = 0``."""
    gaps = []
    for a in GUMBEL_RAO_LOGITS:
        p = float(expit(a))
        for bit, zgr in ((1.0, (1.0 - p) / 2.0), (0.0, p / 2.0)):
            gaps.append(abs(surrogate_moments(a, bit, tau)[0] - zgr))
    return gaps


def _cold_ratio(problem: Any) -> tuple[bool, float]:
    """Gumbel-Rao's exact mean against ReinMax's (``tau = 1``, ZGR) at the two temperatures
    of :data:`GUMBEL_RAO_COLD_TAUS`: a violation unless the deviation falls at least
    five-fold for a ten-fold colder temperature (first order: ten-fold)."""
    net, X, T = problem
    zgr = estimator_moments(net, X, T, "reinmax", tau=1.0).mean
    warm, cold = (
        relative(
            estimator_moments(net, X, T, "gumbel_rao", engine="quadrature", tau=tau).mean, zgr
        )  # fmt: skip
        for tau in GUMBEL_RAO_COLD_TAUS
    )
    return cold > 0.2 * warm + TOL, cold


@claim(
    statement="As tau -> 0 the Rao-Blackwellised Gumbel straight-through slope E[J | b] "
    "tends to ZGR's ((1 - p)/2 when the unit fires, p/2 otherwise; doubled for units in "
    "{-1, +1}), so Gumbel-Rao with k -> infinity tends to ReinMax at tau = 1 sample by "
    "sample, and the mean of Gumbel-Rao (and of Gumbel straight-through) tends to ZGR's "
    "with an O(tau) error; for finite k the variance still grows like 1/(k tau).",
    source="Shekhovtsov (2023), ICML, 'Cold analysis of Rao-Blackwellized straight-through "
    "Gumbel-softmax gradient estimator' (ZGR as the zero-temperature limit of Gumbel-Rao)",
    conditions=f"Slopes: a in {GUMBEL_RAO_LOGITS}, both bits, tau = 0.1, 0.01, 0.001 (the "
    "gap must fall at least five-fold per ten-fold tau). Means: exact (quadrature for "
    "Gumbel-Rao, joint enumeration for ReinMax), any depth (N <= 4), every loss, both "
    f"unit values, batches of 1-2, tau = {GUMBEL_RAO_COLD_TAUS[0]:g} then "
    f"{GUMBEL_RAO_COLD_TAUS[1]:g}: the relative deviation must fall at least five-fold.",
)
def gumbel_rao_zero_temperature(max_examples: int) -> list[Part]:
    """ZGR is Gumbel-Rao at zero temperature.

    Closed form: ``E[J | b = 1] = int_0^inf sigmoid'(z/tau)/tau sigmoid'(z - a) dz / p``.
    ``sigmoid'(z/tau)/tau`` is a density of mass 1 and width ``tau`` centred at 0, of which
    the half-line ``z > 0`` holds ``1/2``, so the integral tends to ``sigmoid'(-a)/(2 p) =
    (1 - p)/2`` with a first-order error ``tau log 2 sigmoid''(-a)/p`` (``int_0^inf w
    sigmoid'(w) dw = log 2``); by symmetry ``E[J | b = 0] -> p/2``. Those are the binary
    ZGR slopes, ReinMax's at ``tau = 1``. Each state's conditional mean estimate is the
    backprop with these slopes, so the exact mean tends to ZGR's at rate ``tau``. With
    finite ``k`` the average of ``k`` spikes of height ``1/(4 tau)`` keeps a variance of
    order ``1/(k tau)`` (the ``gumbel_st_limit`` claim follows ``k = 1``).
    """
    gaps = [zgr_slope_gaps(tau) for tau in (0.1, 0.01, 0.001)]
    falls = all(
        g2 <= 0.2 * g1 + TOL for row1, row2 in zip(gaps, gaps[1:]) for g1, g2 in zip(row1, row2)
    )
    text = (
        f"Slopes ({'holds' if falls else 'VIOLATED'}): largest |E[J | b] - ZGR| "
        + ", ".join(f"{max(row):.3g}" for row in gaps)
        + " at tau = 0.1, 0.01, 0.001."
    )
    bad = () if falls else (
        Counterexample.one_unit(
            "the conditional slope does not approach ZGR's", 0.0, 1.0, "linear", "gumbel_rao"
        ),
    )  # fmt: skip
    return [
        Part(text, 0, bad),
        Search(max_examples).holds(
            "exact means: |E gumbel_rao - E zgr| falls at least five-fold from tau = "
            f"{GUMBEL_RAO_COLD_TAUS[0]:g} to {GUMBEL_RAO_COLD_TAUS[1]:g}",
            problems(max_batch=2, max_stochastic=4, values=VALUES),
            _cold_ratio,
            f"largest deviation at tau = {GUMBEL_RAO_COLD_TAUS[1]:g}:",
            lambda problem: first_example(
                "Gumbel-Rao's mean does not approach ZGR's as tau -> 0", problem, "gumbel_rao"
            ),
        ),
    ]
