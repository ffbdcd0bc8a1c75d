"""The noisy rectifier unit, a different model trained by the pathwise gradient.

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

from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit

from gradstat.estimators.codes import NOISY_RECTIFIER
from gradstat.estimators.options import check_positive, noise_shifted_units
from gradstat.estimators.registry import NORMAL_LIMIT, Estimator
from gradstat.estimators.relaxed import backprop_values
from gradstat.kernels.forward import preactivation
from gradstat.kernels.geometry import Example
from gradstat.kernels.workspace import state_rows
from gradstat.problem import Problem


@njit(cache=True)
def rectifier_draw(sigma: float, ex: Example, z: np.ndarray, ws: np.ndarray, e: np.ndarray) -> None:
    """One pathwise estimate of the noisy-rectifier network for standard normals ``z``."""
    theta, geo, tab1, _, _, _ = ex
    sizes, uoff = geo.sizes, geo.uoff
    _, _, _, h, jac, _, _, _, _ = state_rows(ws, geo)
    for l in range(sizes.shape[0] - 2):
        for i in range(sizes[l + 1]):
            k = uoff[l] + i
            r = preactivation(theta, geo, tab1, h, l, i) + sigma * z[k]
            h[k] = r if r > 0.0 else 0.0
            jac[k] = 1.0 if r > 0.0 else 0.0
    backprop_values(ex, ws, e)


def _normal_pdf(s: np.ndarray) -> np.ndarray:
    """The standard normal density, computed as ``scipy.stats.norm.pdf`` computes it."""
    return np.exp(-(s**2) / 2.0) / np.sqrt(2 * np.pi)


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
    from scipy.special import ndtr  # scipy.special costs 0.5 s to import: only here

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
        phi = _normal_pdf(s)
        mu = a * Phi + sigma * phi
        m2 = (a * a + sigma * sigma) * Phi + a * sigma * phi
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


def _own_gradient(problem: Problem, options: Mapping[str, Any]) -> np.ndarray | None:
    net = problem.net
    if not has_exact_reference(net.sizes, net.loss):
        return None
    _, grads = rectifier_gradient(
        net.sizes, problem.theta, problem.X, problem.T, net.loss, options["sigma"]
    )
    return grads


ENTRIES = (
    Estimator(
        name="noisy_rectifier",
        code=NOISY_RECTIFIER,
        summary="noisy rectifier unit h = max(0, a + sigma z), pathwise gradient "
        "(a different model)",
        reference="Bengio, Léonard & Courville (2013), arXiv:1308.3432",
        unbiased=True,
        noise="continuous",
        options={"sigma": 1.0},
        validators={"sigma": check_positive("sigma")},
        encode=lambda options: np.array([options["sigma"]]),
        values=("01",),
        normal_noise=True,
        own_model_gradient=_own_gradient,
        unit_bound=noise_shifted_units("sigma", NORMAL_LIMIT),
    ),
)
