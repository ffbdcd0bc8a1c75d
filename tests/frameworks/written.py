"""Built-in estimators written as a PyTorch or JAX user would write them.

Each maker takes the framework's operations (:func:`torch_ops`, :func:`jax_ops`) and
returns ``fn(theta, x, t, u, net)``: a scalar surrogate whose gradient is the estimate,
for units in ``{0, 1}`` and every loss, on any architecture (``net`` gives the sizes).
Unit ``k`` fires when ``u[k] < p[k]`` (the relaxations and DisARM read ``u`` as their
papers do). Forward values are formed as ``bit + (s - stop_gradient(s))`` so that they
equal ``bit`` exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from gradstat.frameworks import layer_views


def torch_ops() -> SimpleNamespace:
    import torch

    return SimpleNamespace(
        sg=lambda v: v.detach(),
        sigmoid=torch.sigmoid,
        log_sigmoid=torch.nn.functional.logsigmoid,
        softplus=torch.nn.functional.softplus,
        log_softmax=lambda y: torch.log_softmax(y, dim=-1),
        real=lambda c: c.to(torch.float64),
        log=torch.log,
        log1p=torch.log1p,
        abs=torch.abs,
    )


def jax_ops() -> SimpleNamespace:
    import jax
    import jax.numpy as jnp

    return SimpleNamespace(
        sg=jax.lax.stop_gradient,
        sigmoid=jax.nn.sigmoid,
        log_sigmoid=jax.nn.log_sigmoid,
        softplus=jax.nn.softplus,
        log_softmax=jax.nn.log_softmax,
        real=lambda c: c.astype(jnp.float64),
        log=jnp.log,
        log1p=jnp.log1p,
        abs=jnp.abs,
    )


def loss(ops: SimpleNamespace, net: Any, y: Any, t: Any) -> Any:
    """SPEC's losses: mse, bce (sigmoid cross-entropy), xent (``t`` a class), linear."""
    if net.loss == "mse":
        return 0.5 * ((y - t) ** 2).sum()
    if net.loss == "bce":
        return (ops.softplus(y) - t * y).sum()
    if net.loss == "xent":
        return -ops.log_softmax(y)[t]
    return (t * y).sum()


def surrogate_st(ops: SimpleNamespace, slope: str) -> Callable:
    """Straight-through: identity (``slope="one"``) or logistic (``"sigmoid"``) surrogate."""

    def fn(theta: Any, x: Any, t: Any, u: Any, net: Any) -> Any:
        *hidden, (Wo, bo) = layer_views(theta, net)
        h, off = x, 0
        for W, b in hidden:
            a = W @ h + b
            p = ops.sigmoid(a)
            bit = ops.real(u[off : off + W.shape[0]] < p)
            smooth = a if slope == "one" else p
            h = bit + (smooth - ops.sg(smooth))
            off += W.shape[0]
        return loss(ops, net, Wo @ h + bo, t)

    fn.__name__ = "st" if slope == "one" else "st_sigmoid"
    return fn


def reinforce(ops: SimpleNamespace, *, detach: bool = True, complete: bool = True) -> Callable:
    """REINFORCE without baseline: ``sg(C) log P(h) + C``. Two classic bugs: ``detach=False``
    leaves the loss attached in the score term (biased by ``log P grad C``);
    ``complete=False`` drops the units that did not fire from ``log P``."""

    def fn(theta: Any, x: Any, t: Any, u: Any, net: Any) -> Any:
        *hidden, (Wo, bo) = layer_views(theta, net)
        h, off, logp = x, 0, 0.0
        for W, b in hidden:
            a = W @ h + b
            bit = ops.real(u[off : off + W.shape[0]] < ops.sigmoid(a))
            off_term = (1 - bit) * ops.log_sigmoid(-a) if complete else 0.0
            logp = logp + (bit * ops.log_sigmoid(a) + off_term).sum()
            h = bit
            off += W.shape[0]
        C = loss(ops, net, Wo @ h + bo, t)
        return (ops.sg(C) if detach else C) * logp + C

    fn.__name__ = "reinforce" if detach and complete else "reinforce_wrong"
    return fn


def disarm(ops: SimpleNamespace) -> Callable:
    """DisARM on one stochastic layer: ``b1 = 1[u > 1 - p]``, ``b2 = 1[u < p]``."""

    def fn(theta: Any, x: Any, t: Any, u: Any, net: Any) -> Any:
        (W, b), (Wo, bo) = layer_views(theta, net)
        a = W @ x + b
        p = ops.sigmoid(a)
        b1, b2 = ops.real(u > 1 - p), ops.real(u < p)
        f1, f2 = loss(ops, net, Wo @ b1 + bo, t), loss(ops, net, Wo @ b2 + bo, t)
        coef = 0.5 * (f1 - f2) * ops.abs(b1 - b2) * (1 - 2 * b2) * ops.sigmoid(ops.abs(a))
        return (ops.sg(coef) * a).sum() + 0.5 * (f1 + f2)

    return fn


def gumbel_st(ops: SimpleNamespace, tau: float) -> Callable:
    """Straight-through Gumbel: ``h = 1[a + L > 0]``, slope ``sigmoid'((a + L)/tau)/tau``."""

    def fn(theta: Any, x: Any, t: Any, u: Any, net: Any) -> Any:
        *hidden, (Wo, bo) = layer_views(theta, net)
        h, off = x, 0
        for W, b in hidden:
            n = W.shape[0]
            z = W @ h + b + ops.log(u[off : off + n]) - ops.log1p(-u[off : off + n])
            soft = ops.sigmoid(z / tau)
            h = ops.real(z > 0) + (soft - ops.sg(soft))
            off += n
        return loss(ops, net, Wo @ h + bo, t)

    return fn
