"""Do two estimators have the same mean? A paired test on draws of both.

:func:`compare_estimators` draws batch estimates of two estimators with
:func:`gradstat.sampling.sample_gradients` and tests that their mean difference is zero
with the machinery of :func:`gradstat.stats.unbiasedness_test`. As it draws samples, it
lives here rather than in the pure statistics of :mod:`gradstat.stats`, which re-exports
it under its former name ``gradstat.stats.compare_estimators``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradstat._validation import check_n_samples, check_seed
from gradstat.sampling import sample_gradients
from gradstat.stats._checks import check_draws, check_open_unit
from gradstat.stats.results import ComparisonResult
from gradstat.stats.unbiasedness import mean_test

__all__ = ["compare_estimators"]


def compare_estimators(
    a: Any,
    b: Any,
    net: Any,
    x: Any,
    t: Any,
    *,
    n_samples: int,
    seed: Any,
    alpha: float = 0.01,
    power: float = 0.8,
    options_a: dict[str, Any] | None = None,
    options_b: dict[str, Any] | None = None,
) -> ComparisonResult:
    """Test whether two estimators have the same mean on a batch (no enumeration needed).

    Draws ``n_samples`` batch estimates ``a_i`` and ``b_i`` of each estimator with
    ``gradstat.sampling.sample_gradients(net, x, t, estimator, n_samples, seed=...)``
    and tests ``E[a - b] = 0`` on the differences ``a_i - b_i`` exactly as
    :func:`gradstat.stats.unbiasedness_test` does without a known covariance (Hotelling's
    T^2 when ``n_samples`` exceeds the number of noisy coordinates, Holm-corrected t-tests
    otherwise). This is how a biased estimator is caught on networks too wide for
    exact enumeration: compare it with an unbiased one (``reinforce``, ``arm``, ...).

    The pairing is by example: both estimators see the same inputs ``x`` and targets
    ``t``, but their noise is independent (the seeds of ``a`` and ``b`` are two
    children of ``numpy.random.SeedSequence(seed)``), so ``Cov(a - b) = Cov(a) +
    Cov(b)``; the test needs no assumption about how the two estimators correlate.

    Parameters
    ----------
    a, b : str or estimator
        The two estimators, as ``sample_gradients`` accepts them.
    net, x, t
        Network, batch of inputs (``(B, n_in)``) and targets, passed through.
    n_samples : int
        Number of batch estimates of each estimator, ``>= 2``.
    seed : int or sequence of int
        Entropy for ``numpy.random.SeedSequence``; the result is reproducible with it.
    alpha, power : float
        Level of the test and power for ``detectable_bias``, in (0, 1).
    options_a, options_b : dict, optional
        Keyword options for each estimator (e.g. ``{"tau": 0.5}``).

    Returns
    -------
    ComparisonResult

    Raises
    ------
    ValueError, TypeError
        Bad ``n_samples``, ``alpha``, ``power``, options, or draws of the wrong shape or
        with NaN/inf.
    """
    n_samples = check_n_samples(n_samples)
    alpha = check_open_unit(alpha, "alpha")
    power = check_open_unit(power, "power")
    for name, options in (("options_a", options_a), ("options_b", options_b)):
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"{name} must be a dict of keyword options or None")
    if seed is None:
        raise ValueError("seed must be given (an int) so that the comparison is reproducible")
    child_a, child_b = check_seed(seed, allow_none=False).spawn(2)
    seed_a = int(child_a.generate_state(1, dtype=np.uint64)[0])
    seed_b = int(child_b.generate_state(1, dtype=np.uint64)[0])
    draws_a = check_draws(
        sample_gradients(net, x, t, a, n_samples, seed=seed_a, **(options_a or {})),
        "draws of estimator a",
    )
    draws_b = check_draws(
        sample_gradients(net, x, t, b, n_samples, seed=seed_b, **(options_b or {})),
        "draws of estimator b",
    )
    if draws_a.shape != draws_b.shape or draws_a.shape[0] != n_samples:
        raise ValueError(
            f"sample_gradients returned shapes {draws_a.shape} and {draws_b.shape}; "
            f"expected ({n_samples}, n_params) for both"
        )
    scale = max(float(np.max(np.abs(draws_a))), float(np.max(np.abs(draws_b))))
    difference = draws_a - draws_b
    fields = mean_test(difference, np.zeros(difference.shape[1]), None, alpha, power, scale)
    return ComparisonResult(
        **fields,
        mean_difference=fields["bias"].copy(),
        estimators=(_estimator_name(a), _estimator_name(b)),
    )


def _estimator_name(estimator: Any) -> str:
    if isinstance(estimator, str):
        return estimator
    return str(getattr(estimator, "name", getattr(estimator, "__name__", repr(estimator))))
