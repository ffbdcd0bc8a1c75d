"""``analyze``: every metric of docs/model.md, section 3 for one estimator on one problem.

``method="exact"`` computes every metric without sampling error: by joint enumeration of
all noise states, or for REINFORCE and the straight-through-type estimators on deep
networks by messages over adjacent layers (mean and variance; sign agreement and descent
probability are then NaN). ``method="mc"`` draws ``n_samples`` batch estimates and reports
each scalar with a standard error from a grouped (delete-a-group) jackknife over 20
contiguous groups of draws, the non-linear metrics corrected for the noise of the
estimated mean, and ``result.uncalibrated`` naming the metrics for which no standard error
would cover (NaN there; :func:`gradstat.metrics.jackknife_metrics` gives the estimators
and the rules: ``bias_norm``, ``relative_bias`` and ``cosine`` are flagged on the first
ten groups and, where not flagged, reported from the other ten, so that whether a value
is reported is independent of its error); the exact gradient is the reference. ``method="auto"`` is
exact when some exact engine fits ``max_states``, Monte Carlo otherwise;
``result.engine`` says which engine ran.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from gradstat._validation import check_choice, check_n_samples, check_real, check_seed
from gradstat.analysis_result import AnalysisResult
from gradstat.engines.arm_descent import ARM_DESCENT_MAX_UNITS, arm_descent
from gradstat.engines.choice import ENGINES, descent_labels, moments_engine
from gradstat.engines.gradient import reference_gradient
from gradstat.engines.moments import moments_pass
from gradstat.engines.streaming import mc_group_sums
from gradstat.estimators.registry import EstimatorBase
from gradstat.estimators.user import guard_engines, resolve_estimator
from gradstat.exact import check_reference
from gradstat.metrics import (
    SNR_ROUNDING_FACTOR,
    Jackknife,
    ScopeMetrics,
    degenerate_variance,
    jackknife_metrics,
    scope_metrics,
)
from gradstat.network import BinaryNetwork
from gradstat.problem import (
    DEFAULT_MAX_STATES,
    Problem,
    check_max_states,
    expand_mean,
    expand_sign,
    expand_square,
    make_problem,
    states_advice,
)

EPS = float(np.finfo(np.float64).eps)
ROUNDING_FACTOR = SNR_ROUNDING_FACTOR
"""A Monte Carlo variance ``(sum d^2 - n mean(d)^2) / (n - 1)`` (``d = g_hat - g``) is 0
where the difference is at most ``1e3 eps sum d^2``, the rounding of the sums it subtracts."""

JACKKNIFE_GROUPS = 20
"""Number of contiguous groups of draws for Monte Carlo standard errors."""

DEFAULT_MC_SAMPLES = 10_000
"""Draws used by ``analyze(method="mc")`` when ``n_samples`` is not given."""

METHODS = ("auto", "exact", "mc")


def _scopes(
    problem: Problem,
    ex_grad: np.ndarray,
    ex_mean: np.ndarray,
    ex_var: np.ndarray,
    sign: np.ndarray,
    descent: np.ndarray,
    tol: float,
    n_samples: int | None,
    skip: frozenset[str] = frozenset(),
) -> dict[str, ScopeMetrics]:
    labels = descent_labels(problem.net)
    groups = {"all": slice(None), **problem.net.parameter_groups()}
    out = {}
    for name in ("all", "stochastic", *labels[:-2]):
        idx = groups[name]
        out[name] = scope_metrics(
            ex_grad[:, idx],
            ex_mean[:, idx],
            ex_var[:, idx],
            sign[:, idx],
            descent[:, labels.index(name)],
            tol=tol,
            n_samples=n_samples,
            skip=skip,
        )
    return out


def _exact(
    problem: Problem, spec: EstimatorBase, options: dict[str, Any], max_states: int, tol: float,
    engine: str,
) -> AnalysisResult:  # fmt: skip
    mom = moments_pass(problem, spec, options, full_cov=False, max_states=max_states,
                       engine=engine)  # fmt: skip
    if (
        mom.engine == "cells"
        and spec.affine_in_cells
        and problem.net.n_stochastic <= ARM_DESCENT_MAX_UNITS
    ):
        # The cells kernel sums estimates at cell midpoints; ARM is affine within a cell,
        # so its descent probability needs each cell's uniform-sum tail (engines.arm_descent).
        exact_descent = arm_descent(problem, spec, options, max_states)
        mom = replace(mom, descent_probability=exact_descent)
    scopes = _scopes(
        problem,
        mom.example_gradient,
        mom.example_mean,
        mom.example_var,
        mom.sign_probability,
        mom.descent_probability,
        tol,
        None,
    )
    return _result(spec.name, options, "exact", mom.engine, problem, None, None, mom.gradient,
                   mom.mean, mom.var, mom.sign_probability.mean(axis=0), scopes, None)  # fmt: skip


def _result(
    name: str,
    options: dict[str, Any],
    method: str,
    engine: str,
    problem: Problem,
    n_samples: int | None,
    seed: int | None,
    gradient: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    sign: np.ndarray,
    scopes: dict[str, ScopeMetrics],
    errors: dict[str, ScopeMetrics] | None,
    reference: str = "exact",
    uncalibrated: dict[str, tuple[str, ...]] | None = None,
) -> AnalysisResult:
    return AnalysisResult(
        estimator=name, options=options, method=method, engine=engine,
        n_examples=problem.n_examples, n_samples=n_samples, seed=seed,
        gradient=gradient, mean=mean, var=var, sign_probability=sign,
        overall=scopes["all"], stochastic=scopes["stochastic"],
        layers={k: v for k, v in scopes.items() if k not in ("all", "stochastic")},
        standard_errors=errors, reference=reference, uncalibrated=uncalibrated,
    )  # fmt: skip


def _monte_carlo(
    problem: Problem,
    spec: EstimatorBase,
    options: dict[str, Any],
    n_samples: int,
    seed: np.random.SeedSequence,
    max_states: int,
    tol: float,
) -> AnalysisResult:
    ex_grad, reference = _mc_reference(problem, spec, options, n_samples, seed, max_states)
    full = spec.full_layout
    s0 = problem.net.n_params - problem.n_compressed
    G = ex_grad if full else np.ascontiguousarray(ex_grad[:, s0:])
    seg = problem.segment_starts(full)
    dw = problem.descent_weights(G, full)
    n_groups = min(JACKKNIFE_GROUPS, n_samples)
    B = problem.n_examples
    counts, s1, s2, agree, desc = mc_group_sums(
        problem, spec, options, n_samples, seed, max_states, G, dw, seg, n_groups
    )

    def scopes_of(
        keep: np.ndarray, skip: frozenset[str] = frozenset()
    ) -> tuple[dict[str, ScopeMetrics], np.ndarray, np.ndarray]:
        n = counts[keep].sum()
        m1 = s1[keep].sum(axis=0) / n
        second = s2[keep].sum(axis=0)
        centred = second - n * m1**2
        # A centred sum below the rounding of the sums it is the difference of is zero:
        # the estimate is deterministic there (up to rounding), its variance 0, its SNR inf.
        var_c = np.where(centred > ROUNDING_FACTOR * EPS * second, centred / (n - 1), 0.0)
        ex_mean = ex_grad + expand_mean(problem, m1, full)
        ex_var = expand_square(problem, var_c, full)
        sign = expand_sign(problem, agree[keep].sum(axis=0) / n, full)
        descent = desc[keep].sum(axis=0) / n
        scopes = _scopes(problem, ex_grad, ex_mean, ex_var, sign, descent, tol, int(n), skip)
        return scopes, ex_mean, np.stack([ex_var.sum(axis=0) / B**2, sign.mean(axis=0)])

    def left_out(used: np.ndarray, skip: frozenset[str]) -> list[dict[str, ScopeMetrics]]:
        """The scopes of the groups ``used`` with each of them left out in turn."""
        replicates = []
        for k in np.flatnonzero(used):
            keep = used.copy()
            keep[k] = False
            replicates.append(scopes_of(keep, skip)[0])
        return replicates

    everything = np.ones(n_groups, dtype=bool)
    scopes, ex_mean, (var, sign) = scopes_of(everything)
    # No replicate's median_snr is read (its standard error is NaN), and the halves give
    # bias_norm and cosine only.
    replicates = left_out(everything, frozenset({"median_snr"}))
    half_only = frozenset({"median_snr", "sign_agreement", "descent_probability"})
    # bias_norm's and cosine's flags are decided on the first half of the groups, their
    # values reported from the second: independent draws (metrics.jackknife_metrics).
    # Halves of fewer than 2 groups (n_samples < 4) have no jackknife: both are flagged.
    first = np.arange(n_groups) < n_groups // 2
    halves = [(scopes_of(used, half_only)[0], left_out(used, half_only)) if n_groups >= 4
              else (scopes, [])
              for used in (first, ~first)]  # fmt: skip
    # The bias of the batch estimate in each group, for the second-order part of Q.
    group_bias = np.stack([expand_mean(problem, s1[k] / counts[k], full).mean(axis=0)
                           for k in range(n_groups)])  # fmt: skip
    parts = {"all": slice(None), **problem.net.parameter_groups()}
    errors, uncalibrated = {}, {}
    for scope in scopes:
        bias = group_bias[:, parts[scope]]
        split = tuple(
            Jackknife(h[0][scope], [r[scope] for r in h[1]], degenerate_variance(bias[used]))
            for h, used in zip(halves, (first, ~first))
        )
        scopes[scope], errors[scope], flagged = jackknife_metrics(
            scopes[scope], [r[scope] for r in replicates], split
        )
        uncalibrated[scope] = flagged
        if reference == "own-mean":
            scopes[scope], errors[scope], uncalibrated[scope] = _own_mean(
                scopes[scope], errors[scope], flagged
            )
    return _result(spec.name, options, "mc", "monte-carlo", problem, n_samples,
                   _recorded_seed(seed), ex_grad.mean(axis=0), ex_mean.mean(axis=0), var, sign,
                   scopes, errors, reference, uncalibrated)  # fmt: skip


def _own_mean(
    values: ScopeMetrics, errors: ScopeMetrics, flagged: tuple[str, ...]
) -> tuple[ScopeMetrics, ScopeMetrics, tuple[str, ...]]:
    """Metrics against the mean of the estimator's own draws: bias 0, MSE the total
    variance and cosine 1 by construction (not measured), with standard errors to match."""
    exact = {"bias_norm": 0.0, "relative_bias": 0.0, "mse": values.total_variance}
    errs = {"bias_norm": 0.0, "relative_bias": 0.0, "mse": errors.total_variance}
    if np.isfinite(values.cosine):
        exact["cosine"], errs["cosine"] = 1.0, 0.0
    kept = tuple(m for m in flagged if m not in errs)
    return replace(values, **exact), replace(errors, **errs), kept


def _mc_reference(
    problem: Problem, spec: EstimatorBase, options: dict[str, Any], n_samples: int,
    seed: np.random.SeedSequence, max_states: int,
) -> tuple[np.ndarray, str]:  # fmt: skip
    """Per-example reference gradients ``(B, n_params)`` of a Monte Carlo analysis.

    The binary network's exact gradient, except for the noisy rectifier, a different
    model: its closed-form gradient where one exists, else the mean of its own draws.
    """
    if not spec.own_model:
        advice = (
            f"analyze(method='mc') measures bias against this exact gradient, which Monte "
            f"Carlo draws of {spec.name!r} do not replace. What works: raise max_states if "
            f"you can afford the enumeration; or, with no exact reference, test "
            f"{spec.name!r} against an unbiased estimator on draws alone, "
            f"gradstat.stats.compare_estimators({spec.name!r}, 'reinforce', net, x, t, "
            f"n_samples=..., seed=...) (networks of several stochastic layers get the "
            f"exact gradient by messages over adjacent layers, when each pair of layers "
            f"fits max_states)"
        )
        with states_advice(advice):
            _, ex_grad = reference_gradient(
                problem, max_states, "the exact gradient (the reference of a Monte Carlo analysis)"
            )
        check_reference(None, ex_grad)
        return ex_grad, "exact"
    ex_grad = spec.own_gradient(problem, options)
    if ex_grad is not None:
        return ex_grad, "rectifier-exact"
    # The sum of the draws: the first sum of one group of draws against a zero reference.
    zero = np.zeros((problem.n_examples, problem.n_compressed))
    sums = mc_group_sums(problem, spec, options, n_samples, seed, max_states, zero, zero,
                         problem.segment_starts(), 1)  # fmt: skip
    return expand_mean(problem, sums.s1[0] / n_samples), "own-mean"


def _recorded_seed(seed: np.random.SeedSequence) -> int | None:
    """The int that reproduces ``seed``'s draws (None for a spawned child sequence)."""
    return None if seed.spawn_key else int(seed.entropy)


def analyze(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    *,
    method: str = "auto",
    n_samples: int | None = None,
    seed: int | np.random.SeedSequence | None = None,
    max_states: int = DEFAULT_MAX_STATES,
    tol: float = 1e-12,
    engine: str = "auto",
    **options: Any,
) -> AnalysisResult:
    """Bias, variance, MSE, cosine, sign agreement and descent probability of an estimator.

    Every metric of docs/model.md, section 3, over all parameters, over the stochastic layers'
    parameters and per layer. For a batch, ``mean``, ``bias`` and ``cosine`` are those of
    the batch estimate, ``var = (1/B^2) sum_x var_x``, and ``sign_agreement`` and
    ``descent_probability`` average the per-example values (each against that example's
    exact gradient).

    Parameters
    ----------
    net, x, t
        Network, one example ``(n_in,)`` or a batch ``(B, n_in)``, and targets.
    estimator : str or user estimator
        A registered name, a callable ``f(net, x, t, rng, **options)`` (Monte Carlo) or a
        :func:`gradstat.per_state_estimator` (see :mod:`gradstat.estimators.user`).
    method : {"auto", "exact", "mc"}
        ``"exact"`` computes the moments without sampling (see ``engine``); ``"mc"``
        samples ``n_samples`` draws and reports a jackknife standard error on every scalar;
        ``"auto"`` is exact when an exact engine fits ``max_states`` (discrete noise,
        ARM/DisARM's cells on one stochastic layer, or messages over adjacent layers),
        Monte Carlo otherwise.
    n_samples : int, optional
        Monte Carlo draws (default 10,000); with ``method="auto"`` used only when it falls
        back to Monte Carlo.
    seed : int, SeedSequence or None
        Seed of the Monte Carlo draws; ``None`` draws fresh entropy, recorded in
        ``result.seed`` so the run can be repeated.
    max_states : int
        Cap on the states one exact engine enumerates at once: ``2^N`` joint states, or
        ``2^{n_{l-1} + n_l}`` pairs of adjacent layer states (also for the exact gradient,
        the reference of a Monte Carlo analysis).
    tol : float
        Coordinates with ``|g_j| <= tol`` are left out of ``sign_agreement``.
    engine : {"auto", "joint", "cells", "layerwise", "quadrature"}
        The exact engine (``"quadrature"``: ``gumbel_st`` and ``gumbel_rao`` by states and
        one integral per unit; ``"auto"`` takes it for them when ``2^N`` fits
        ``max_states`` and :func:`gradstat.engines.choice.quadrature_work` is at most
        ``JOINT_PREFERRED_WORK``). ``"auto"`` chooses by cost: joint
        enumeration (it alone gives exact sign agreement and descent probability) while it
        costs at most as much as messages or under
        :data:`gradstat.exact.JOINT_PREFERRED_WORK` state-coordinate updates per example,
        else messages over adjacent layers for REINFORCE and the
        straight-through-type estimators (exact mean, variance, bias, MSE, cosine and SNR;
        sign agreement and descent probability NaN), else Monte Carlo under
        ``method="auto"``. ``result.engine`` records the choice.
    **options
        Estimator options (``baseline=...`` for ``reinforce``).

    Raises
    ------
    ValueError, TypeError
        Before anything runs, for any bad argument (each message names it and says what
        to pass): malformed or out-of-range networks, inputs, targets, options and
        counts, too many states, per-state functions that do not compile or raise. After
        running, rather than returning NaN or infinite moments or metrics (an estimator
        that overflows, or whose estimates are too large to square).
    """
    spec, opts = resolve_estimator(estimator, options)
    method = check_choice(method, "method", METHODS)
    tol = check_real(tol, "tol", minimum=0)
    engine = check_choice(engine, "engine", ENGINES)
    max_states = check_max_states(max_states)
    if n_samples is not None:
        n_samples = check_n_samples(n_samples)
    ss = check_seed(seed)
    problem = make_problem(net, x, t)
    spec.check_problem(problem, opts)
    if method == "exact" and n_samples is not None:
        raise ValueError("n_samples is only used with method='mc'; drop it for 'exact'")
    if method != "mc":
        # The engine is chosen here, once. Under method="auto" only the automatic choice
        # falls back to Monte Carlo: an engine the caller named must run or say why not.
        try:
            engine = moments_engine(spec, net, opts, max_states, engine=engine)
            method, n_samples = "exact", None
        except ValueError:
            if method == "exact" or engine != "auto":
                raise
            method = "mc"
    with guard_engines(spec):
        if method == "exact":
            result = _exact(problem, spec, opts, max_states, tol, engine)
        else:
            n = DEFAULT_MC_SAMPLES if n_samples is None else n_samples
            result = _monte_carlo(problem, spec, opts, n, ss, max_states, tol)
    _check_result(spec, result)
    return result


def _check_result(spec: EstimatorBase, result: AnalysisResult) -> None:
    """Refuse NaN or infinite moments and metrics, except those NaN or infinite by
    definition (sign agreement and descent probability of the layer-wise engine, relative
    bias and cosine against a zero gradient, the SNR of a coordinate without variance)."""
    check_reference(None, result.gradient)
    spec.check_result(mean=result.mean, var=result.var)
    for scope, metrics in result.scopes().items():
        values = {"bias_norm": metrics.bias_norm, "total_variance": metrics.total_variance,
                  "mse": metrics.mse}  # fmt: skip
        bad = {f"{k} ({scope})": v for k, v in values.items() if not np.isfinite(v)}
        if bad:
            spec.check_result(mean=result.mean, **bad)
