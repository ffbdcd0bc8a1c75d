"""The noisy rectifier unit (Bengio, Léonard & Courville 2013, arXiv:1308.3432).

The seed paper's fourth approach replaces the binary unit by a noisy, non-binary one,
``h = max(0, a + sigma z)`` with ``z ~ N(0, 1)``, and trains it with ordinary backprop
through the noise (the pathwise estimator), ``dh/da = 1[a + sigma z > 0]``. With the same
parameters ``theta``, the network becomes a different model, and the pathwise gradient
is unbiased for *that* model's expected loss, not for the binary network's. So its
reference gradient is the rectifier model's own:

* one stochastic layer with loss ``mse`` or ``linear``: exact, in closed form
  (:func:`rectifier_gradient`), from the rectified-Gaussian moments
  ``E[h] = a Phi(a/sigma) + sigma phi(a/sigma)``, ``dE[h]/da = Phi(a/sigma)`` and
  ``dE[h^2]/da = 2 E[h]``;
* otherwise no exact value is available, and :func:`gradstat.analyze` takes the Monte
  Carlo mean of the draws themselves as the reference (bias zero by construction,
  variance and agreement metrics against that mean).

Units in ``{-1, +1}`` are not defined for this unit.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.special import ndtr
from scipy.stats import norm

from gradstat.kernels.forward import backprop_surrogate, loss_and_grad

NOISY_RECTIFIER = 12


@njit(cache=True)
def rectifier_draw(
    sigma: float,
    theta: np.ndarray,
    sizes: np.ndarray,
    woff: np.ndarray,
    boff: np.ndarray,
    uoff: np.ndarray,
    tab1: np.ndarray,
    t: np.ndarray,
    loss: int,
    z: np.ndarray,
    h: np.ndarray,
    jac: np.ndarray,
    y: np.ndarray,
    dy: np.ndarray,
    work: np.ndarray,
    e: np.ndarray,
) -> None:
    """One pathwise estimate of the noisy-rectifier network for standard normals ``z``."""
    L = sizes.shape[0] - 2
    for l in range(L):
        n_prev = sizes[l]
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            if l == 0:
                ai = tab1[0, i]
            else:
                ai = theta[boff[l] + i]
                for j in range(n_prev):
                    ai += theta[woff[l] + i * n_prev + j] * h[uoff[l - 1] + j]
            r = ai + sigma * z[k]
            h[k] = r if r > 0.0 else 0.0
            jac[k] = 1.0 if r > 0.0 else 0.0
    n_last = sizes[L]
    last = uoff[L - 1]
    for o in range(sizes[L + 1]):
        v = theta[boff[L] + o]
        for j in range(n_last):
            v += theta[woff[L] + o * n_last + j] * h[last + j]
        y[o] = v
    loss_and_grad(loss, y, t, dy)
    backprop_surrogate(theta, sizes, woff, boff, uoff, h, dy, jac, work, e)


def has_exact_reference(sizes: tuple[int, ...], loss: str) -> bool:
    """Whether :func:`rectifier_gradient` applies: one stochastic layer, ``mse``/``linear``."""
    return len(sizes) == 3 and loss in ("mse", "linear")


def rectifier_gradient(
    sizes: tuple[int, ...], theta: np.ndarray, X: np.ndarray, T: np.ndarray, loss: str,
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Exact expected loss ``(B,)`` and gradient ``(B, n_params)`` of the rectifier model.

    One stochastic layer, loss ``mse`` or ``linear``; the units are independent given
    ``x``, so with ``mu = E[h]``, ``v = Var[h]`` and ``res = W_o mu + b_o - t``:
    ``mse``: ``E[C] = |res|^2 / 2 + sum_i |W_o[:, i]|^2 v_i / 2``,
    ``dE/da_i = (W_o^T res)_i Phi_i + |W_o[:, i]|^2 mu_i (1 - Phi_i)``,
    ``dE/dW_o = outer(res, mu) + W_o diag(v)``; ``linear``: ``E[C] = t . (W_o mu + b_o)``,
    ``dE/da_i = (W_o^T t)_i Phi_i``, ``dE/dW_o = outer(t, mu)``.
    """
    if not has_exact_reference(sizes, loss):
        raise ValueError(
            "the noisy rectifier's exact gradient is available for one stochastic layer "
            f"with loss 'mse' or 'linear' only, got sizes {sizes} and loss {loss!r}"
        )
    n_in, n1, n_out = sizes
    W1 = theta[: n1 * n_in].reshape(n1, n_in)
    b1 = theta[n1 * n_in : n1 * n_in + n1]
    off = n1 * n_in + n1
    Wo = theta[off : off + n_out * n1].reshape(n_out, n1)
    bo = theta[off + n_out * n1 :]
    losses = np.empty(X.shape[0])
    grads = np.empty((X.shape[0], theta.shape[0]))
    for b, (x, t) in enumerate(zip(X, T)):
        a = W1 @ x + b1
        s = a / sigma
        Phi = ndtr(s)
        mu = a * Phi + sigma * norm.pdf(s)
        m2 = (a * a + sigma * sigma) * Phi + a * sigma * norm.pdf(s)
        var = np.maximum(m2 - mu * mu, 0.0)
        if loss == "mse":
            res = Wo @ mu + bo - t
            col = np.sum(Wo * Wo, axis=0)
            losses[b] = 0.5 * res @ res + 0.5 * col @ var
            da = (Wo.T @ res) * Phi + col * mu * (1.0 - Phi)
            dWo = np.outer(res, mu) + Wo * var[None, :]
            dbo = res
        else:
            losses[b] = t @ (Wo @ mu + bo)
            da = (Wo.T @ t) * Phi
            dWo = np.outer(t, mu)
            dbo = t.copy()
        grads[b] = np.concatenate([np.outer(da, x).ravel(), da, dWo.ravel(), dbo])
    return losses, grads
