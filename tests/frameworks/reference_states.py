"""State log-probabilities straight from the model's definition (plain NumPy, no gradstat
code), for :func:`gradstat.enumerate_states`."""

from __future__ import annotations

import numpy as np


def naive_state_log_probs(net, x: np.ndarray, bits: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """``log P(h | x)`` of each row of ``bits``, one unit at a time."""
    layers = net.layers()[:-1]
    low = -1.0 if net.values == "pm1" else 0.0
    out = np.zeros(bits.shape[0])
    for s, row in enumerate(bits):
        h, k = np.asarray(x, dtype=float), 0
        for W, b in layers:
            nxt = []
            for i in range(W.shape[0]):
                a = float(W[i] @ h + b[i])
                p = 1.0 / (1.0 + np.exp(-a))
                out[s] += np.log(p) if row[k] else np.log1p(-p)
                nxt.append(1.0 if row[k] else low)
                k += 1
            h = np.array(nxt)

    return out
