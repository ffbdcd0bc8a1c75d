"""Claims about RELAX: unbiased for every control variate."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from hypothesis import strategies as st
from scipy.special import expit

from gradstat.claims.registry import Counterexample, Part, claim
from gradstat.claims.relaxed import GUMBEL_TOY
from gradstat.claims.search import Search, first_example, relative
from gradstat.estimators.relax import Control, linear_control, relax_from_noise
from gradstat.exact import exact_gradient
from gradstat.network import VALUES, BinaryNetwork
from gradstat.sampling import estimate_from_noise
from gradstat.strategies import problems

RELAX_TOL = 1e-9
"""Quadrature tolerance of the RELAX check, relative to ``1 + |g|``."""

RELAX_LOGITS: tuple[float, ...] = (-2.0, 0.0, 1.5)
"""Logits of the one-unit toy."""

RELAX_TOY = replace(
    GUMBEL_TOY,
    description="one unit, C = (h - 0.25)^2 (the Gumbel claim's toy); the logit b_1 is "
    "replaced by each of RELAX_LOGITS",
    estimator="relax",
)
"""The network of the check (not a counterexample, recorded in the same form)."""


def _sine(t: int, z: np.ndarray) -> tuple[float, np.ndarray]:
    return float(2.0 * np.sum(np.sin(z))), 2.0 * np.cos(z)


RELAX_CONTROLS: tuple[tuple[str, Control], ...] = (
    ("linear w = -1, tau = 0.3", linear_control(-1.0, 0.3)),
    ("linear w = 0.5, tau = 1", linear_control(0.5, 1.0)),
    ("linear w = 3, tau = 1", linear_control(3.0, 1.0)),
    ("c = 2 sum sin(z)", _sine),
)
"""Control variates of the check: the built-in linear one and a nonlinear one."""


def _nodes(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Composite 8-point Gauss-Legendre nodes and weights on ``[lo, hi]``, panels <= 0.5."""
    x, w = np.polynomial.legendre.leggauss(8)
    n = max(1, int(np.ceil((hi - lo) / 0.5)))
    edges = np.linspace(lo, hi, n + 1)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    return (mid[:, None] + half[:, None] * x).ravel(), (half[:, None] * w).ravel()


def relax_toy_mean(net: BinaryNetwork, control: Control) -> np.ndarray:
    """``E[g_hat]`` of RELAX on a one-unit network by quadrature over ``(u, v)``.

    For one unit the estimate is ``A(b, v) + B(u)``: ``A`` holds the score term and the
    correction at ``ztilde`` (it sees ``u`` only through the bit ``b``), ``B = dc/dz(z(u))``
    and the direct path. So ``E = sum_b [P(b) E_v g(u_b, v) + E_u[g(u, v_b) 1(b)] - P(b)
    g(u_b, v_b)]`` with a reference draw ``(u_b, v_b)`` per bit: two one-dimensional
    integrals, each by composite Gauss-Legendre in the logistic variable (``u =
    sigmoid(L)``, ``v = sigmoid(s)``, ``L, s`` in ``[-36, 36]``, beyond which the mass is
    below 5e-16; ``L`` split at the threshold)."""
    x, t = RELAX_TOY.x, RELAX_TOY.t
    a = float(net.params[0])
    p = float(expit(a))

    def g(u: float, v: float) -> np.ndarray:
        return relax_from_noise(net, x, t, np.array([u, v]), control)

    s, ws = _nodes(-36.0, 36.0)
    v_nodes, v_weights = expit(s), ws * expit(s) * expit(-s)
    total = np.zeros(net.n_params)
    for lo, hi, mass in ((-36.0, -a, 1.0 - p), (-a, 36.0, p)):
        L, wl = _nodes(lo, hi)
        u_nodes, u_weights = expit(L), wl * expit(L) * expit(-L)
        u_ref, v_ref = expit((lo + hi) / 2), 0.5
        total += mass * sum(w * g(u_ref, v) for v, w in zip(v_nodes, v_weights, strict=True))
        total += sum(w * g(u, v_ref) for u, w in zip(u_nodes, u_weights, strict=True))
        total -= mass * g(u_ref, v_ref)
    return total


@claim(
    statement="RELAX is unbiased for every control variate c(z) of the relaxed noise.",
    source="Grathwohl, Choi, Wu, Roeder & Duvenaud (2018), ICLR, arXiv:1711.00123",
    conditions="One unit, C = (h - 0.25)^2, a in {-2, 0, 1.5}; controls: the built-in "
    "linear_control (w = -1, tau = 0.3; w = 0.5, 1 and 3, tau = 1) and c = 2 sum sin(z); "
    f"E g_hat by quadrature over (u, v) to {RELAX_TOL:g} (1 + |g|). Any depth (N <= 6): "
    "with c = 0 it is REINFORCE draw by draw (to 1e-10 relative); deeper networks with "
    "other controls are checked by seeded Monte Carlo in the tests.",
)
def relax_unbiased(max_examples: int) -> list[Part]:
    """``E[c(ztilde) d log P(b)/dtheta] = E[dc(z)/dtheta] - E[dc(ztilde)/dtheta]``.

    Closed form: ``E[c(z)] = E_b[E[c(ztilde) | b]]`` because ``ztilde`` given ``b`` has the
    law of ``z`` given ``b``; differentiating both sides in ``theta``, the left by the
    reparameterisation ``z = a + L`` and the right by the product rule over ``P(b)`` and
    the conditional reparameterisation of ``ztilde``, gives the identity, so the control
    terms of RELAX have mean zero and REINFORCE's unbiasedness carries over.
    """
    rows, bad = [], []
    for a in RELAX_LOGITS:
        net = RELAX_TOY.network().with_params([a, *RELAX_TOY.params[1:]])
        g = exact_gradient(net, RELAX_TOY.x, RELAX_TOY.t)
        worst = 0.0
        for label, control in RELAX_CONTROLS:
            dev = float(np.max(np.abs(relax_toy_mean(net, control) - g))) / (
                1.0 + float(np.max(np.abs(g)))
            )
            worst = max(worst, dev)
            if dev > RELAX_TOL:
                bad.append(
                    Counterexample.from_problem(
                        f"a = {a:g}, control {label}: |E g_hat - g| = {dev:.3g}",
                        net,
                        RELAX_TOY.x,
                        RELAX_TOY.t,
                        "relax",
                    )  # fmt: skip
                )
        rows.append(f"a = {a:g}: largest relative deviation {worst:.2g}")
    verdict = "VIOLATED" if bad else "holds"

    def zero_control(case: Any) -> float:
        (net, X, T), seed = case
        rng = np.random.default_rng(seed)
        worst = 0.0
        for _ in range(3):
            noise = rng.uniform(1e-6, 1.0 - 1e-6, 2 * net.n_stochastic)
            got = relax_from_noise(net, X[0], T[0], noise, linear_control(0.0))
            # REINFORCE fires when u < p; RELAX when a + logit(u) > 0, i.e. 1 - u < p.
            u = 1.0 - noise[: net.n_stochastic]
            want = estimate_from_noise(net, X[0], T[0], "reinforce", u)
            worst = max(worst, relative(got, want))
        return worst

    return [
        Part(
            f"One unit, {len(RELAX_CONTROLS)} controls ({verdict}): " + "; ".join(rows) + ".",
            0,
            tuple(bad),
        ),
        Search(max_examples).holds(
            "with the zero control RELAX is REINFORCE without a baseline, draw by draw (any "
            "depth, N <= 6, every loss, both unit values, 3 draws per network)",
            st.tuples(
                problems(max_batch=1, max_stochastic=6, values=VALUES), st.integers(0, 2**32 - 1)
            ),  # fmt: skip
            zero_control,
            "largest relative deviation:",
            lambda case: first_example("RELAX with c = 0 differs from REINFORCE", case[0], "relax"),
        ),
    ]
