"""The per-state estimate of every built-in estimator, dispatched by integer code.

Joint enumeration and Monte Carlo sampling both call :func:`estimate_state` after
:func:`gradstat.forward.forward_state`, so an estimator's exact moments and its samples
come from one piece of code.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gradstat.estimators.score_function import REINFORCE, reinforce_estimate
from gradstat.estimators.stochastic_times_smooth import STS, sts_jacobian
from gradstat.estimators.straight_through import (
    ST,
    ST_SIGMOID,
    st_jacobian,
    st_sigmoid_jacobian,
)
from gradstat.forward import backprop_surrogate


@njit(cache=True)
def surrogate_jacobian(code: int, a: float, bit: float, opts: np.ndarray) -> float:
    """The surrogate ``dh/da`` of a straight-through-type estimator for one unit."""
    if code == ST:
        return st_jacobian(a, bit)
    if code == ST_SIGMOID:
        return st_sigmoid_jacobian(a, bit)
    if code == STS:
        return sts_jacobian(a, bit)
    return np.nan


@njit(cache=True)
def estimate_state(
    code: int,
    opts: np.ndarray,
    theta: np.ndarray,
    sizes: np.ndarray,
    woff: np.ndarray,
    boff: np.ndarray,
    uoff: np.ndarray,
    a: np.ndarray,
    p: np.ndarray,
    bit: np.ndarray,
    h: np.ndarray,
    dy: np.ndarray,
    loss_value: float,
    baseline: np.ndarray,
    jac: np.ndarray,
    work: np.ndarray,
    e: np.ndarray,
) -> None:
    """Write the estimate of estimator ``code`` for the current state into ``e`` (compressed)."""
    if code == REINFORCE:
        reinforce_estimate(sizes, woff, boff, uoff, bit, p, h, dy, loss_value, baseline, e)
        return
    for k in range(a.shape[0]):
        jac[k] = surrogate_jacobian(code, a[k], bit[k], opts)
    backprop_surrogate(theta, sizes, woff, boff, uoff, h, dy, jac, work, e)
