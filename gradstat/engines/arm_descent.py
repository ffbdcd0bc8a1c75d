"""ARM's exact descent probabilities on one stochastic layer, cell by cell of ``u``.

Within one of the ``3^N`` cell combinations of ``u`` (:mod:`gradstat.estimators.arm`) both
losses are fixed and ARM's estimate is affine in ``u``, so on each scope ``<g_hat(u), g> = d +
sum_i s_i (u_i - m_i)`` with ``m_i`` the cell's midpoint and ``d = <g_hat(m), g>``. Writing
``u_i = m_i + h_i (2 U_i - 1)`` (``h_i`` the half-width, ``U_i ~ U(0, 1)`` independent), the
cell contributes its probability times ``P(sum_i 2 s_i h_i U_i > sum_i s_i h_i - d)``, the tail
of a weighted sum of independent uniforms (:func:`uniform_sum_above`, exact in rationals).
"""

from __future__ import annotations

from fractions import Fraction
from itertools import product
from math import factorial
from typing import Any

import numpy as np

from gradstat.engines.choice import descent_labels
from gradstat.engines.gradient import reference_gradient
from gradstat.engines.sampling import make_sampler
from gradstat.estimators.registry import EstimatorBase
from gradstat.problem import Problem

ARM_DESCENT_MAX_UNITS = 6
"""Largest layer for which ``analyze`` computes ARM's exact descent probability: ``3^N (N +
1)`` estimates and ``3^N`` rational Irwin-Hall tails of up to ``2^N`` terms per example and
scope (N = 6: 5,103 estimates and about 10^5 rational terms, a second or two)."""


def uniform_sum_above(weights: list[Fraction], threshold: Fraction) -> Fraction:
    """``P(sum_i w_i U_i > threshold)`` for independent ``U_i ~ U(0, 1)``, exactly.

    Negative weights become positive by ``U -> 1 - U``; with positive ``a_1..a_n`` the CDF
    of ``S = sum a_i U_i`` is ``F(s) = sum_{A subset of [n]} (-1)^|A| (s - sum_A a_i)_+^n /
    (n! prod a_i)`` (the Irwin-Hall formula with unequal weights), evaluated in rationals.
    """
    shift = sum((w for w in weights if w < 0), Fraction(0))
    a = [abs(w) for w in weights if w != 0]
    s = threshold - shift
    if not a:
        return Fraction(1 if s < 0 else 0)
    n = len(a)
    total = Fraction(0)
    for mask in range(1 << n):
        corner = sum((a[i] for i in range(n) if mask >> i & 1), Fraction(0))
        if s > corner:
            sign = -1 if bin(mask).count("1") % 2 else 1
            total += sign * (s - corner) ** n
    denominator = Fraction(factorial(n))
    for ai in a:
        denominator *= ai
    cdf = min(max(total / denominator, Fraction(0)), Fraction(1))
    return 1 - cdf


def _cell_points(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every cell combination of one example (unit ``i``'s cells ``[0, m)``, ``[m, 1 -
    m)``, ``[1 - m, 1]``, ``m = min(p_i, 1 - p_i)``): its probability, half-widths, and the
    ``N + 1`` points where the estimate is read (the midpoint, then the midpoint moved by a
    quarter width along each unit), shape ``(3^N, N + 1, N)``."""
    m = np.minimum(p, 1.0 - p)
    edges = [((0.0, mi), (mi, 1.0 - mi), (1.0 - mi, 1.0)) for mi in m]
    combos = np.array([list(c) for c in product(*edges)])  # (3^N, N, 2)
    lo, hi = combos[..., 0], combos[..., 1]
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    N = p.shape[0]
    points = np.repeat(mid[:, None, :], N + 1, axis=1)
    for i in range(N):
        points[:, i + 1, i] += half[:, i] / 2
    return np.prod(hi - lo, axis=1), half, points


def _cell_tail(dots: np.ndarray, half: np.ndarray) -> Fraction:
    """``P(d + sum_i s_i (u_i - m_i) > 0)`` in one cell from the dot products at its ``N + 1``
    points (``dots[0] = d``; ``s_i`` from the quarter-width steps, exact up to rounding as
    the estimate is affine in the cell)."""
    d = float(dots[0])
    slopes = (dots[1:] - d) / (half / 2)
    weights = [Fraction(float(2.0 * s * h)) for s, h in zip(slopes, half, strict=True)]
    threshold = Fraction(float(np.sum(slopes * half))) - Fraction(d)
    return uniform_sum_above(weights, threshold)


def arm_descent(
    problem: Problem, spec: EstimatorBase, options: dict[str, Any], max_states: int
) -> np.ndarray:
    """Per example, ARM's exact ``P(<g_hat, g> > 0)`` on every scope of ``descent_labels``
    (``layer1, output, all, stochastic``), for one stochastic layer of at most
    :data:`ARM_DESCENT_MAX_UNITS` units; shape ``(B, 4)``.

    The estimates come from the sampling kernel (:func:`gradstat.engines.sampling.
    make_sampler`) at ``3^N (N + 1)`` given noises per example, the tails in rationals.
    """
    net = problem.net
    N = net.n_stochastic
    if net.n_layers != 1 or N > ARM_DESCENT_MAX_UNITS:
        raise ValueError(
            f"ARM's exact descent probability takes one stochastic layer of at most "
            f"{ARM_DESCENT_MAX_UNITS} units, got sizes {net.sizes}"
        )
    _, ex_grad = reference_gradient(problem, max_states, "ARM's exact descent probability")
    s0 = net.n_params - problem.n_compressed
    dw = problem.descent_weights(np.ascontiguousarray(ex_grad[:, s0:]))
    seg = problem.segment_starts()
    B = problem.n_examples
    p = 1.0 / (1.0 + np.exp(-problem.A1))  # (B, N): layer 1 is the only stochastic layer
    cells = [_cell_points(p[b]) for b in range(B)]
    noise = np.stack([c[2].reshape(-1, N) for c in cells], axis=1)  # (3^N (N+1), B, N)
    sampler = make_sampler(problem, spec, options, np.random.SeedSequence(0), max_states)
    out = np.empty((noise.shape[0], B * sampler.width))
    sampler.fill(out, per_example=True, noise=np.ascontiguousarray(noise))
    est = out.reshape(3**N, N + 1, B, sampler.width)
    result = np.empty((B, len(descent_labels(net))))
    for b in range(B):
        weight, half, _ = cells[b]
        prod_ = est[:, :, b, :] * dw[b]
        layer = prod_[..., seg[0] : seg[1]].sum(axis=-1)
        output = prod_[..., seg[1] : seg[2]].sum(axis=-1)
        for col, dots in enumerate((layer, output, layer + output)):
            total = Fraction(0)
            for c in range(3**N):
                if weight[c] > 0.0:
                    total += Fraction(float(weight[c])) * _cell_tail(dots[c], half[c])
            result[b, col] = float(total)
        result[b, 3] = result[b, 0]  # one stochastic layer: "stochastic" is layer 1
    return result
