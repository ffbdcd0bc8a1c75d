"""A public harness that property-tests any gradient estimator.

A researcher's new estimator gets exactly the scrutiny gradstat applies to its own::

    from hypothesis import given
    import gradstat as gs
    from gradstat.strategies import problems
    from gradstat.testing import assert_unbiased, check_estimator_contract

    def test_contract():
        check_estimator_contract(my_estimator, unbiased=True)

    @given(problems(max_stochastic=6))
    def test_unbiased(problem):
        assert_unbiased(my_estimator, problem)

Checks are **exact** whenever the estimator's noise is discrete and the network is small
enough to enumerate (registered estimators and :func:`gradstat.per_state_estimator`
functions): the mean is compared with the exact gradient to a relative tolerance of
``1e-9``, with no false alarms at all. Otherwise they are **Monte Carlo** tests
(:func:`gradstat.stats.unbiasedness_test` on seeded draws) at level ``alpha``: the
probability that a correct estimator fails one check is at most ``alpha``
(default ``1e-4``), and the same seed always gives the same verdict. A failure message
says what was seen, the smallest bias the check could detect, and how many draws a
decision would need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstat._validation import check_bool, check_choice, check_n_samples, check_seed
from gradstat.estimators.user import resolve_estimator
from gradstat.exact import estimator_moments, exact_gradient
from gradstat.network import BinaryNetwork
from gradstat.problem import DEFAULT_MAX_STATES, check_max_states, make_problem
from gradstat.sampling import sample_gradients
from gradstat.stats import UnbiasednessResult, required_samples, unbiasedness_test
from gradstat.stats._checks import check_open_unit

EXACT_RTOL = 1e-9
"""Relative tolerance (to the largest gradient entry, at least 1) of the exact checks, to
which the rounding of the sums compared is added (:func:`check_unbiased`)."""

ROUNDING_PROBE_FACTOR = 16.0
"""Multiple of the measured rounding (the change of the bias under a ``2^-40`` relative
change of the parameters) allowed in an exact check; see :func:`check_unbiased`."""

DEFAULT_ALPHA = 1e-4
"""Default false-alarm rate of a Monte Carlo check."""

CONTRACT_MC_SAMPLES = 4000
"""Default draws of a Monte Carlo check of this harness (:func:`check_unbiased`, and through
it the contract's check on a constant loss). A default of its own, deliberately smaller than
``gradstat.analysis.DEFAULT_MC_SAMPLES`` (the 10,000 draws of ``analyze(method="mc")``)."""

DEFAULT_MC_SAMPLES = CONTRACT_MC_SAMPLES
"""Former name of :data:`CONTRACT_MC_SAMPLES`, kept for code that imports it."""


@dataclass(frozen=True, eq=False)
class UnbiasedCheck:
    """Outcome of :func:`check_unbiased`.

    Attributes
    ----------
    estimator : str
    method : {"exact", "mc"}
    unbiased : bool
        The verdict: ``True`` when no bias was found (exact: every ``|bias_j| <= tolerance``;
        Monte Carlo: the test did not reject at level ``alpha``).
    bias : ndarray (n_params,)
        Exact bias, or the Monte Carlo estimate ``mean - g``.
    bias_norm : float
    tolerance : ndarray (n_params,) or float
        Exact checks: the per-coordinate tolerance (``EXACT_RTOL max(1, max|g|)`` plus the
        rounding error of the sums compared, see :func:`check_unbiased`). Monte Carlo: 0.
    alpha : float or None
        False-alarm rate of a Monte Carlo check (None when exact).
    test : UnbiasednessResult or None
        The Monte Carlo test with statistic, p-value, method and ``detectable_bias``.
    n_samples : int or None
    samples_for_decision : int or None
        Monte Carlo: draws needed to detect a bias as large as the one estimated (at the
        same ``alpha`` and 80% power), per coordinate, worst coordinate.
    """

    estimator: str
    method: str
    unbiased: bool
    bias: np.ndarray = field(repr=False)
    bias_norm: float
    tolerance: np.ndarray | float
    alpha: float | None
    test: UnbiasednessResult | None = field(repr=False)
    n_samples: int | None
    samples_for_decision: int | None

    def describe(self) -> str:
        """A sentence with what was seen and what it would take to decide."""
        worst = int(np.argmax(np.abs(self.bias))) if self.bias.size else 0
        seen = (
            f"{self.estimator}: bias norm {self.bias_norm:.3g} (largest |bias| "
            f"{abs(self.bias[worst]) if self.bias.size else 0.0:.3g} at parameter {worst})"
        )
        if self.method == "exact":
            tol = float(np.max(self.tolerance, initial=0.0))
            return f"{seen}, computed exactly; tolerance up to {tol:.3g} per coordinate"
        t = self.test
        assert t is not None
        return (
            f"{seen}; {t.method}: statistic {t.statistic:.4g}, p-value {t.pvalue:.3g} "
            f"at alpha {self.alpha:g} with n = {self.n_samples} draws; smallest detectable "
            f"bias norm {t.detectable_bias:.3g}; about {self.samples_for_decision} draws "
            f"would detect a bias the size of the one estimated"
        )


def _norm(v: np.ndarray) -> float:
    """``||v||_2`` without underflow or overflow of the squares (tiny or huge biases)."""
    size = float(np.max(np.abs(v), initial=0.0))
    return size * float(np.linalg.norm(v / size)) if size > 0 else 0.0


def _unpack(problem: Any) -> tuple[BinaryNetwork, Any, Any]:
    try:
        net, x, t = problem
    except (TypeError, ValueError):
        raise TypeError(
            "problem must be a tuple (net, x, t), as gradstat.strategies.problems draws"
        ) from None
    return net, x, t


def _reference(
    net: BinaryNetwork, x: Any, t: Any, spec: Any, options: dict[str, Any], max_states: int
) -> np.ndarray:
    """The gradient an unbiased ``spec`` must match: the binary network's exact gradient,
    or for the noisy rectifier (a different model) its own closed-form gradient."""
    if not spec.own_model:
        return exact_gradient(net, x, t, max_states=max_states)
    grads = spec.own_gradient(make_problem(net, x, t), options)
    if grads is None:
        raise ValueError(
            "the noisy rectifier is unbiased for its own model, whose exact gradient is known "
            "for one stochastic layer with loss 'mse' or 'linear' only; check it on such a "
            f"network (got sizes {net.sizes}, loss {net.loss!r})"
        )
    return grads.mean(axis=0)


def _exact_tolerance(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    spec: Any,
    options: dict[str, Any],
    max_states: int,
    g: np.ndarray,
    moments: Any,
    n_states: int,
) -> np.ndarray:
    """Per-coordinate tolerance of an exact check: what rounding alone can make of a bias.

    The exact mean is a sum over ``S`` states of ``p_s g_hat_s``, and each ``g_hat_s`` may
    itself be a difference of large terms (REINFORCE's ``(L - b) score`` with a large
    baseline ``b``, MuProp's control variate at a distant expansion point). Three parts:

    - ``EXACT_RTOL max(1, max_j |g_j|)``: the tolerance of ordinary sums;
    - ``S eps sqrt(E[g_hat_j^2])``: the rounding bound of a sum of ``S`` terms, with the
      root mean square ``sqrt(Var + mean^2) >= E|g_hat_j|`` bounding their absolute sum;
    - ``ROUNDING_PROBE_FACTOR`` times the rounding measured: the bias recomputed with
      every parameter multiplied by ``1 +- 2^-40`` changes, beyond the smooth change of
      the bias, by the difference of two rounding errors, which reveals terms far larger
      than the estimate itself (MuProp's cancel before the estimate is formed).
    """
    eps = np.finfo(np.float64).eps
    base = EXACT_RTOL * max(1.0, float(np.max(np.abs(g), initial=0.0)))
    rms = np.sqrt(moments.var + moments.mean**2)
    bias = moments.mean - g
    probe = np.zeros_like(bias)
    for step in (2.0**-40, -(2.0**-40)):
        other = net.with_params(net.params * (1.0 + step))
        g_other = _reference(other, x, t, spec, options, max_states)
        m_other = estimator_moments(other, x, t, spec, max_states=max_states, **options).mean
        probe = np.maximum(probe, np.abs((m_other - g_other) - bias))
    return base + n_states * eps * rms + ROUNDING_PROBE_FACTOR * probe


def check_unbiased(
    estimator: Any,
    problem: Any,
    *,
    method: str = "auto",
    alpha: float = DEFAULT_ALPHA,
    n_samples: int = CONTRACT_MC_SAMPLES,
    seed: int = 0,
    max_states: int = DEFAULT_MAX_STATES,
    **options: Any,
) -> UnbiasedCheck:
    """Is ``E[g_hat] = g`` on this problem? Exact when possible, else a calibrated test.

    The exact check passes when every ``|E[g_hat_j] - g_j|`` is within a tolerance that
    scales with the rounding error of the sums compared: ``EXACT_RTOL max(1, max|g|)``,
    plus ``S eps sqrt(E[g_hat_j^2])`` for a sum over ``S`` states, plus 16 times the
    rounding measured by recomputing the bias with the parameters scaled by
    ``1 +- 2^-40`` (terms that cancel inside one estimate, such as MuProp's control
    variate at a distant expansion point, show there). It has no false alarms from
    rounding at any scale of the terms.

    Parameters
    ----------
    estimator
        A registered name, a :func:`gradstat.per_state_estimator`, or a callable
        ``f(net, x, t, rng, **options)``.
    problem : tuple (net, x, t)
    method : {"auto", "exact", "mc"}
        ``"auto"`` is exact for discrete noise when ``2^N <= max_states``.
    alpha : float
        Monte Carlo false-alarm rate (probability that a correct estimator fails).
    n_samples, seed : int
        Monte Carlo draws and their seed (the verdict is reproducible).
    """
    net, x, t = _unpack(problem)
    spec, opts = resolve_estimator(estimator, options)
    check_choice(method, "method", ("auto", "exact", "mc"))
    alpha = check_open_unit(alpha, "alpha")
    n_samples = check_n_samples(n_samples)
    check_seed(seed, allow_none=False)
    max_states = check_max_states(max_states)
    g = _reference(net, x, t, spec, opts, max_states)
    enumerable = spec.exact_engine(net.n_layers) is not None
    if enumerable and method == "auto":
        enumerable = spec.exact_count(net.hidden_sizes, opts) <= max_states
    if method == "exact" or (method == "auto" and enumerable):
        moments = estimator_moments(net, x, t, spec, max_states=max_states, **opts)
        bias = moments.mean - g
        n_states = int(spec.exact_count(net.hidden_sizes, opts))
        tol = _exact_tolerance(net, x, t, spec, opts, max_states, g, moments, n_states)
        return UnbiasedCheck(
            estimator=spec.name,
            method="exact",
            unbiased=bool(np.all(np.abs(bias) <= tol)),
            bias=bias,
            bias_norm=_norm(bias),
            tolerance=tol,
            alpha=None,
            test=None,
            n_samples=None,
            samples_for_decision=None,
        )
    draws = sample_gradients(net, x, t, spec, n_samples, seed=seed, max_states=max_states, **opts)
    test = unbiasedness_test(draws, g, alpha=alpha)
    sd = draws.std(axis=0, ddof=1)
    worst = int(np.argmax(np.abs(test.bias) / np.where(sd > 0, sd, np.inf)))
    if sd[worst] > 0 and test.bias[worst] != 0:
        needed = required_samples(abs(test.bias[worst]), sd[worst], alpha=alpha, n_params=g.size)
    else:
        needed = n_samples
    return UnbiasedCheck(
        estimator=spec.name,
        method="mc",
        unbiased=not test.rejected,
        bias=test.bias,
        bias_norm=_norm(test.bias),
        tolerance=0.0,
        alpha=alpha,
        test=test,
        n_samples=n_samples,
        samples_for_decision=needed,
    )


def assert_unbiased(estimator: Any, problem: Any, **kwargs: Any) -> UnbiasedCheck:
    """Fail (``AssertionError``) when :func:`check_unbiased` finds a bias.

    Exact checks never fail falsely; Monte Carlo checks fail falsely with probability at
    most ``alpha`` (default ``1e-4``), and always give the same verdict for one seed.
    """
    result = check_unbiased(estimator, problem, **kwargs)
    if not result.unbiased:
        raise AssertionError("expected an unbiased estimator, found a bias. " + result.describe())
    return result


def assert_biased(estimator: Any, problem: Any, **kwargs: Any) -> UnbiasedCheck:
    """Fail (``AssertionError``) unless :func:`check_unbiased` shows a bias.

    A Monte Carlo check that cannot show the bias says how many draws it would take.
    """
    result = check_unbiased(estimator, problem, **kwargs)
    if result.unbiased:
        raise AssertionError(
            "expected a biased estimator, but the check found no bias. " + result.describe()
        )
    return result


@dataclass(frozen=True)
class ContractReport:
    """What :func:`check_estimator_contract` verified (it raises on the first failure)."""

    estimator: str
    checks: tuple[str, ...]


def _contract_problems() -> list[tuple[BinaryNetwork, np.ndarray, Any]]:
    rng = np.random.default_rng(20131)
    nets = [
        BinaryNetwork.random((3, 2, 2), loss="mse", seed=1),
        BinaryNetwork.random((2, 3, 2, 3), loss="xent", seed=2),
        BinaryNetwork.random((0, 2, 1), loss="bce", seed=3),
    ]
    out: list[tuple[BinaryNetwork, np.ndarray, Any]] = []
    for net in nets:
        x = rng.normal(size=(2, net.n_in))
        if net.loss == "xent":
            t: Any = np.array([0, 2])
        elif net.loss == "bce":
            t = rng.uniform(size=(2, net.n_out))
        else:
            t = rng.normal(size=(2, net.n_out))
        out.append((net, x, t))
    return out


def _extreme_problem(magnitude: float) -> tuple[BinaryNetwork, np.ndarray, np.ndarray]:
    """Pre-activations of magnitude ``magnitude`` in every stochastic layer, both signs."""
    sizes = (2, 3, 3, 2)
    rng = np.random.default_rng(7)
    params = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        hidden = k < len(sizes) - 2
        params.append(rng.uniform(-0.1, 0.1, fan_in * fan_out))
        signs = np.where(np.arange(fan_out) % 2 == 0, 1.0, -1.0)
        params.append(signs * magnitude if hidden else rng.normal(size=fan_out))
    net = BinaryNetwork(sizes, np.concatenate(params), loss="mse")
    return net, np.ones(2), np.zeros(2)


def check_estimator_contract(
    estimator: Any,
    *,
    unbiased: bool | None = None,
    seed: int | None = 0,
    n_samples: int = 200,
    alpha: float = DEFAULT_ALPHA,
    **options: Any,
) -> ContractReport:
    """Check what every estimator must satisfy, raising ``AssertionError`` on a breach.

    1. ``sample_gradients`` returns float64 draws of shape ``(n_samples, n_params)``.
    2. The same seed gives identical draws. With ``seed=None`` one seed is drawn from
       fresh entropy (and named in any failure message), then reused for both runs.
    3. Draws are finite at pre-activations of magnitude 50 in every stochastic layer.
    4. If the estimator claims to be unbiased (``unbiased=True``, or its registered or
       declared ``unbiased`` attribute): on a constant loss (``W_o = 0``) its mean on the
       stochastic layers is zero, checked exactly when the noise is discrete and by a
       Monte Carlo test at level ``alpha`` otherwise.
    """
    spec, opts = resolve_estimator(estimator, options)
    if unbiased is not None:
        unbiased = check_bool(unbiased, "unbiased")
    check_seed(seed)
    if seed is None:
        # Fresh, independent entropy; one int drawn from it serves every run below, so
        # that the repeatability check compares two runs with the same seed.
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    n_samples = check_n_samples(n_samples)
    alpha = check_open_unit(alpha, "alpha")
    claims_unbiased = bool(spec.unbiased) if unbiased is None else bool(unbiased)
    done = []
    for net, x, t in _contract_problems():
        a = sample_gradients(net, x, t, spec, n_samples, seed=seed, **opts)
        if a.dtype != np.float64 or a.shape != (n_samples, net.n_params):
            raise AssertionError(
                f"{spec.name}: draws have dtype {a.dtype} and shape {a.shape}; expected "
                f"float64 ({n_samples}, {net.n_params}) for {net!r}"
            )
        b = sample_gradients(net, x, t, spec, n_samples, seed=seed, **opts)
        if not np.array_equal(a, b):
            raise AssertionError(f"{spec.name}: two runs with seed={seed} gave different draws")
    done += ["shape and dtype", "reproducible with a seed"]
    net, x, t = _extreme_problem(50.0)
    try:
        draws = sample_gradients(net, x, t, spec, n_samples, seed=seed, **opts)
    except ValueError as err:
        raise AssertionError(f"{spec.name}: failed at logits of magnitude 50: {err}") from err
    if not np.all(np.isfinite(draws)):
        raise AssertionError(f"{spec.name}: NaN or infinite draws at logits of magnitude 50")
    done.append("finite at logits of magnitude 50")
    if claims_unbiased:
        net, x, t = _contract_problems()[0]
        theta = net.params.copy()
        theta[net.parameter_groups()["output"]] = 0.0
        constant = net.with_params(theta)
        result = check_unbiased(spec, (constant, x, t), alpha=alpha, seed=seed, **opts)
        stochastic = net.parameter_groups()["stochastic"]
        tolerance = np.broadcast_to(result.tolerance, result.bias.shape)[stochastic]
        if not np.all(np.abs(result.bias[stochastic]) <= tolerance) and (
            result.method == "exact" or not result.unbiased
        ):
            raise AssertionError(
                f"{spec.name} claims to be unbiased but its mean on a constant loss is not "
                f"zero on the stochastic layers. " + result.describe()
            )
        done.append("mean zero on a constant loss")
    return ContractReport(estimator=spec.name, checks=tuple(done))
