"""The mean-field network: stochastic units replaced by their means, and its gradient.

Above a layer ``l`` whose values ``m_l`` are given, each unit passes on its mean given the
layer below, ``m_k = kappa sigmoid(a_k) + low`` with ``a_k = W_k m_{k-1} + b_k``
(``kappa = 1 - low``: ``low`` is 0 for units in ``{0, 1}``, -1 for ``{-1, +1}``), up to
``ybar = W_o m_L + b_o`` and ``fbar = C(ybar, t)``; ``d fbar / d m_l`` is backpropagated
through the slopes ``dm_k / da_k = kappa sigmoid'(a_k)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gradstat.kernels.forward import (
    log_sigmoid,
    loss_and_grad,
    output_layer,
    preactivation,
    transposed_product,
)
from gradstat.kernels.geometry import Example


@njit(cache=True)
def mean_field_above(
    ex: Example, l: int, m: np.ndarray, jm: np.ndarray, ybar: np.ndarray, dybar: np.ndarray,
    work: np.ndarray,
) -> tuple[float, int]:  # fmt: skip
    """The mean-field network above layer ``l`` (0-based) from the values ``m`` of layers
    ``<= l``.

    Fills ``m`` and the slopes ``jm`` of layers ``l + 1`` up, the output ``ybar`` and its
    ``dC/dy`` in ``dybar``. Returns ``fbar`` and the row of ``work`` (two rows) holding
    ``d fbar / d m_l``.
    """
    theta, geo, tab1, t, loss, _ = ex
    sizes, woff, _, uoff = geo
    L = sizes.shape[0] - 2
    low = tab1[6, 0]
    kappa = 1.0 - low
    for k in range(l + 1, L):
        for i in range(sizes[k + 1]):
            ab = preactivation(theta, geo, tab1, m, k, i)
            ls1 = log_sigmoid(ab)
            ls0 = log_sigmoid(-ab)
            m[uoff[k] + i] = kappa * np.exp(ls1) + low
            jm[uoff[k] + i] = kappa * np.exp(ls1 + ls0)
    output_layer(theta, geo, m, ybar)
    fbar = loss_and_grad(loss, ybar, t, dybar)
    # d fbar / d h_L, then down to layer l through the mean-field slopes.
    cur = 0
    transposed_product(theta, woff[L], sizes[L + 1], sizes[L], dybar, work[cur])
    for k in range(L - 1, l, -1):
        nk, nprev = sizes[k + 1], sizes[k]
        nxt = 1 - cur
        for j in range(nprev):
            v = 0.0
            for i in range(nk):
                v += theta[woff[k] + i * nprev + j] * work[cur, i] * jm[uoff[k] + i]
            work[nxt, j] = v
        cur = nxt
    return fbar, cur
