"""Exact moments of an estimator on a validated problem, by the engine chosen for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstat.engines.baselines import kernel_options, workspace_for
from gradstat.engines.cells import cells_kernel
from gradstat.engines.choice import descent_labels
from gradstat.engines.factored import factored_moments_kernel
from gradstat.engines.gradient import problem_batch, reference_gradient
from gradstat.engines.joint import greedy_shift, moments_kernel, user_moments_kernel
from gradstat.engines.message_moments import layerwise_moments, layerwise_moments_cost
from gradstat.engines.quadrature import quadrature_kernel
from gradstat.engines.states import batched_moments
from gradstat.estimators.codes import REINFORCE, SURROGATES
from gradstat.estimators.registry import EstimatorBase
from gradstat.kernels.blocks import CHUNKS
from gradstat.problem import (
    Problem,
    expand_mean,
    expand_sign,
    expand_square,
    expansion_matrix,
    threads_for,
)

FACTORED = (REINFORCE, *SURROGATES)
"""Codes whose estimate factorises per unit (:func:`factored_moments_kernel`)."""


@dataclass(frozen=True, eq=False)
class EstimatorMoments:
    """Exact moments of an estimator's batch estimate (all arrays in gradstat's parameter order).

    Attributes
    ----------
    estimator : str
    options : dict
    gradient : ndarray (n_params,)
        Exact gradient of the batch objective.
    mean : ndarray (n_params,)
        ``E[g_hat]`` of the batch estimate (mean of the per-example means).
    var : ndarray (n_params,)
        Per-coordinate variance of the batch estimate, ``(1/B^2) sum_x var_x``.
    cov : ndarray (n_params, n_params) or None
        Covariance of the batch estimate (with ``full_cov=True``).
    example_gradient, example_mean, example_var : ndarray (B, n_params)
        The same per example.
    sign_probability : ndarray (B, n_params)
        Per example, ``P(sign g_hat_j = sign g_j)`` against that example's gradient.
    descent_probability : ndarray (B, L + 3)
        Per example, ``P(<g_hat, g> > 0)`` restricted to ``descent_labels``.
    descent_labels : tuple of str
        ``layer1..layerL, output, all, stochastic``.
    engine : str
        How the moments were computed: ``"joint"`` (all noise states), ``"cells"``
        (ARM/DisARM's cells of ``u``), ``"layerwise"`` (messages over adjacent layers;
        sign and descent probabilities are then NaN: they are not sums over adjacent
        layer states) or ``"quadrature"`` (states and per-unit quadrature for the Gumbel
        estimators; sign and descent probabilities NaN where the bits do not fix the
        sign, :mod:`gradstat.engines.quadrature`).
    """

    estimator: str
    options: dict[str, Any]
    gradient: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    var: np.ndarray = field(repr=False)
    cov: np.ndarray | None = field(repr=False)
    example_gradient: np.ndarray = field(repr=False)
    example_mean: np.ndarray = field(repr=False)
    example_var: np.ndarray = field(repr=False)
    sign_probability: np.ndarray = field(repr=False)
    descent_probability: np.ndarray = field(repr=False)
    descent_labels: tuple[str, ...] = field(repr=False)
    engine: str = "joint"

    @property
    def bias(self) -> np.ndarray:
        """``E[g_hat] - g``."""
        return self.mean - self.gradient

    @classmethod
    def from_examples(
        cls,
        estimator: str,
        options: dict[str, Any],
        ex_grad: np.ndarray,
        ex_mean: np.ndarray,
        ex_var: np.ndarray,
        sign: np.ndarray,
        descent: np.ndarray,
        labels: tuple[str, ...],
        engine: str,
        cov: np.ndarray | None = None,
    ) -> EstimatorMoments:
        """The batch moments from per-example ones: means averaged, variances summed
        over ``B^2`` (independent noise per example)."""
        B = ex_grad.shape[0]
        return cls(
            estimator=estimator,
            options=options,
            gradient=ex_grad.mean(axis=0),
            mean=ex_mean.mean(axis=0),
            var=ex_var.sum(axis=0) / B**2,
            cov=cov,
            example_gradient=ex_grad,
            example_mean=ex_mean,
            example_var=ex_var,
            sign_probability=sign,
            descent_probability=descent,
            descent_labels=labels,
            engine=engine,
        )


def _layerwise_pass(
    problem: Problem, spec: EstimatorBase, options: dict[str, Any]
) -> EstimatorMoments:
    """Exact means and variances by messages over adjacent layers (``layerwise_moments``)."""
    net = problem.net
    family = spec.layerwise_family()
    opts = np.ascontiguousarray(spec.encode(options), dtype=np.float64)
    work = problem.n_examples * layerwise_moments_cost(net.sizes, family)
    with threads_for(work):
        _, ex_grad, ex_mean, ex_var = layerwise_moments(
            problem.theta, problem.sizes, problem.A1, problem.X, problem.T, problem.loss_code,
            problem.low, family, spec.code, opts, options.get("baseline", "none"),
        )  # fmt: skip
    labels = descent_labels(net)
    nan_descent = np.full((problem.n_examples, len(labels)), np.nan)
    return EstimatorMoments.from_examples(
        spec.name, options, ex_grad, ex_mean, ex_var, np.full_like(ex_grad, np.nan),
        nan_descent, labels, "layerwise",
    )  # fmt: skip


def _quadrature_pass(
    problem: Problem, spec: EstimatorBase, options: dict[str, Any], max_states: int
) -> EstimatorMoments:
    """Exact means and variances of the Gumbel estimators by states and per-unit quadrature
    (:mod:`gradstat.engines.quadrature`)."""
    opts = np.ascontiguousarray(spec.encode(options), dtype=np.float64)
    _, ex_grad = reference_gradient(problem, max_states, f"exact moments of {spec.name!r}")
    G = np.ascontiguousarray(ex_grad[:, problem.net.n_params - problem.n_compressed :])
    batch, geo = problem_batch(problem, spec.unit_mode(problem.mode))
    with threads_for(problem.n_examples * problem.net.n_states * G.shape[1]):
        m, m2, sign, desc = quadrature_kernel(
            batch, geo, spec.code, opts, G, problem.descent_weights(G),
            problem.segment_starts(), workspace_for(problem, spec, options),
        )  # fmt: skip
    var = np.maximum(m2 - m**2, 0.0)
    return EstimatorMoments.from_examples(
        spec.name, options, ex_grad, ex_grad + expand_mean(problem, m),
        expand_square(problem, var), expand_sign(problem, sign), desc,
        descent_labels(problem.net), "quadrature",
    )  # fmt: skip


def _run_moments(
    problem: Problem,
    spec: EstimatorBase,
    options: dict[str, Any],
    opts: np.ndarray,
    baselines: np.ndarray,
    G: np.ndarray,
    dw: np.ndarray,
    seg: np.ndarray,
    rows: slice,
    want_cov: bool,
    engine: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One enumeration over the examples ``rows`` with the kernel that fits ``spec``."""
    batch, geo = problem_batch(problem, spec.unit_mode(problem.mode), rows)
    net = problem.net
    count = spec.exact_count(net.hidden_sizes, options)
    work = batch.L1.shape[0] * count * G.shape[1] * (G.shape[1] if want_cov else 1)
    common = (G[rows], dw[rows], seg, want_cov)  # exact gradients, descent weights, segments
    with threads_for(work):
        if engine == "cells":
            chunks = CHUNKS // 4 if want_cov else CHUNKS
            return cells_kernel(not spec.affine_in_cells, batch, geo, *common, chunks)
        if spec.batched:
            return batched_moments(problem, spec, *common[:3], want_cov, rows)
        if spec.jitted is None:
            n_bits = spec.noise_size(net.hidden_sizes, options)
            cols = workspace_for(problem, spec, options)
            if want_cov or n_bits != net.n_stochastic or spec.code not in FACTORED:
                return moments_kernel(
                    batch, geo, spec.code, n_bits, opts, baselines[rows], *common, cols
                )
            # One draw per state of an estimate that factorises per unit: the factored
            # kernel, with the same greedy-state centre as moments_kernel. Called from here
            # (not from inside moments_kernel), each kernel compiles on its own.
            base = baselines[rows]
            shift = greedy_shift(batch, geo, spec.code, n_bits, opts, base, G.shape[1], cols)
            return factored_moments_kernel(
                batch, geo, spec.code, opts, base, common[0], shift, common[1], seg
            )
        return user_moments_kernel(spec.jitted)(batch, geo, *common)


def moments_pass(
    problem: Problem,
    spec: EstimatorBase,
    options: dict[str, Any],
    *,
    full_cov: bool,
    max_states: int,
    engine: str,
) -> EstimatorMoments:
    """Exact moments of a registered or per-state user estimator on a validated problem.

    ``engine`` is the one :func:`gradstat.engines.choice.moments_engine` chose. Built-in
    estimators work in the compressed layout, per-state user functions in the full one
    (``spec.full_layout``); both are expanded to the full layout here.
    """
    spec.check_values(problem.net)
    if engine == "layerwise":
        return _layerwise_pass(problem, spec, options)
    if engine == "quadrature":
        return _quadrature_pass(problem, spec, options, max_states)
    full = spec.full_layout
    opts, baselines = kernel_options(spec, options, problem, max_states)
    _, ex_grad = reference_gradient(problem, max_states, f"exact moments of {spec.name!r}")
    s0 = problem.net.n_params - problem.n_compressed
    G = ex_grad if full else np.ascontiguousarray(ex_grad[:, s0:])
    seg = problem.segment_starts(full)
    dw = problem.descent_weights(G, full)
    B = problem.n_examples
    everything = slice(0, B)
    args = (problem, spec, options, opts, baselines, G, dw, seg)
    # The kernels return variances summed about a value of the estimate, never
    # E[e^2] - E[e]^2 (gradstat.kernels.accumulate.reduce_chunks).
    m, var, sign, desc, _ = _run_moments(*args, everything, False, engine)
    ex_mean = ex_grad + expand_mean(problem, m, full)
    ex_var = expand_square(problem, var, full)
    cov = None
    if full_cov:
        cov = np.zeros((problem.net.n_params, problem.net.n_params))
        for b in range(B):
            cov_b = _run_moments(*args, slice(b, b + 1), True, engine)[4]
            M = expansion_matrix(problem, b, full)
            cov += M @ cov_b @ M.T
        cov /= B**2
    return EstimatorMoments.from_examples(
        spec.name, options, ex_grad, ex_mean, ex_var, expand_sign(problem, sign, full), desc,
        descent_labels(problem.net), engine, cov,
    )  # fmt: skip
