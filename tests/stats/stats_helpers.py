"""Draws and bands shared by the tests of gradstat.stats.

Every random input is drawn from a fixed seed, so each fast test is deterministic: a
statistical assertion can fail only if the code changes, never by chance. Where an
assertion is about a decision (rejected or not), the comment states the false-alarm
rate it would have had over random seeds, to show that the fixed seed is not a lucky
pick. Calibration over many seeds lives in the ``slow`` tests, whose binomial bands
(:func:`_band`) have a false-alarm rate of 1e-6 each.
"""

from __future__ import annotations

import numpy as np
import scipy.stats


def _gaussian_draws(seed: int, n: int, cov: np.ndarray, mean: np.ndarray | None = None):
    rng = np.random.default_rng(seed)
    d = cov.shape[0]
    mean = np.zeros(d) if mean is None else mean
    return rng.multivariate_normal(mean, cov, size=n, method="eigh")


def _random_cov(seed: int, d: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _good():
    return np.random.default_rng(0).normal(size=(10, 2))


N_SEEDS = 400


def _band(p: float) -> tuple[int, int]:
    """Central binomial(400, p) interval with total false-alarm probability <= 1e-6."""
    lo, hi = scipy.stats.binom.interval(1 - 1e-6, N_SEEDS, p)
    return int(lo), int(hi)
