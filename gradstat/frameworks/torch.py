"""Estimators written in PyTorch, analysed exactly or on gradstat's uniforms.

``torch_estimator(fn)`` differentiates ``fn(theta, x, t, u)`` with
``torch.func.vmap(torch.func.grad(fn))`` over a block of states (or draws) at once, in
float64; a function ``vmap`` cannot trace (a custom ``torch.autograd.Function`` without a
vmap rule, say) is run draw by draw with ``torch.autograd.grad`` instead. See
:mod:`gradstat.frameworks.common` for the contract and the checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradstat.frameworks.common import (
    Backend,
    FrameworkEstimator,
    layer_views,
    network_from_arrays,
)
from gradstat.network import BinaryNetwork


class TorchBackend(Backend):
    """Calls of a user's function on float64 tensors."""

    framework = "torch"
    title = "PyTorch"
    install = (
        "PyTorch is not installed: pip install 'gradstat[torch]' (or a CPU build of torch "
        "from https://download.pytorch.org/whl/cpu, which avoids the multi-gigabyte CUDA stack)"
    )

    def _inputs(self, theta: np.ndarray, x: np.ndarray, t: Any) -> tuple[Any, Any, Any]:
        torch = self.module
        th = torch.tensor(theta, dtype=torch.float64)
        xt = torch.tensor(x, dtype=torch.float64)
        tt = torch.tensor(t, dtype=torch.int64 if isinstance(t, int) else torch.float64)
        return th, xt, tt

    def value(self, fn: Callable[..., Any], theta: np.ndarray, x: np.ndarray, t: Any,
              u: np.ndarray) -> np.ndarray:  # fmt: skip
        """``fn``'s output for one draw, as an array (no gradient)."""
        th, xt, tt = self._inputs(theta, x, t)
        out = fn(th, xt, tt, self.module.tensor(u, dtype=self.module.float64))
        return out.detach().numpy() if hasattr(out, "detach") else np.asarray(out)

    def batched(self, fn: Callable[..., Any], output: str, vectorize: bool) -> Callable[..., Any]:
        """``(theta, x, t, U) -> (m, n_params)``: vmapped, or a loop over the draws."""
        torch = self.module
        func = torch.func
        inner = func.grad(fn) if output == "surrogate" else fn
        mapped = func.vmap(inner, in_dims=(None, None, None, 0))

        def loop(th: Any, xt: Any, tt: Any, U: Any) -> Any:
            rows = []
            for i in range(U.shape[0]):
                p = th.clone().requires_grad_(output == "surrogate")
                value = fn(p, xt, tt, U[i])
                if output == "surrogate":
                    (g,) = torch.autograd.grad(value, p, allow_unused=True)
                    value = torch.zeros_like(th) if g is None else g
                rows.append(value.detach())
            return torch.stack(rows)

        run = mapped if vectorize else loop

        def call(theta: np.ndarray, x: np.ndarray, t: Any, U: np.ndarray) -> np.ndarray:
            th, xt, tt = self._inputs(theta, x, t)
            out = run(th, xt, tt, torch.from_numpy(np.ascontiguousarray(U)))
            return out.detach().numpy()

        return call


def torch_estimator(
    fn: Callable[..., Any],
    *,
    noise: str = "discrete",
    output: str = "surrogate",
    name: str = "",
    unbiased: bool | None = None,
    block_size: int | None = None,
    vectorize: bool | None = None,
) -> FrameworkEstimator:
    """An estimator written in PyTorch, accepted wherever an estimator name is.

    ``fn(theta, x, t, u)`` takes float64 tensors: ``theta`` the flat parameters in the
    parameter order of docs/model.md (:func:`gradstat.frameworks.layer_views` cuts it
    into ``(W, b)`` per layer),
    ``x`` one input ``(n_in,)``, ``t`` its target (``(n_out,)``, or an int64 class for
    ``xent``) and ``u`` the ``N`` uniforms of one draw; unit ``k`` (layer 1 first) must
    fire when ``u[k] < p[k]``. It returns a scalar surrogate loss whose gradient in
    ``theta`` is the estimate (``output="surrogate"``), or the estimate itself
    (``output="estimate"``, shape ``(n_params,)``).

    Parameters
    ----------
    fn : callable
        The estimator, written with torch operations (no ``.item()`` or Python branches
        on tensor values if it is to be vectorised with ``torch.func.vmap``).
    noise : {"discrete", "continuous"}
        ``"discrete"``: the estimate depends on ``u`` only through the sampled state;
        moments are then exact, by enumerating the ``2^N`` states (checked before every
        run, see :func:`gradstat.frameworks.common.check_declared_noise`).
        ``"continuous"``: it reads ``u`` itself (Gumbel, Concrete, ARM); Monte Carlo on
        gradstat's Philox uniforms, paired with the built-in estimators' draws.
    output : {"surrogate", "estimate"}
    name : str
        Shown in results (default: the function's name).
    unbiased : bool or None
        A claim :func:`gradstat.testing.check_estimator_contract` holds it to.
    block_size : int or None
        States or draws per vectorised call (default: about two million numbers).
    vectorize : bool or None
        ``None`` tries ``torch.func.vmap`` and falls back to a loop over draws where it
        cannot trace ``fn``; ``True`` or ``False`` forces one.

    Returns
    -------
    FrameworkEstimator
        Pass it to :func:`gradstat.analyze`, :func:`gradstat.estimator_moments`,
        :func:`gradstat.sample_gradients`, :mod:`gradstat.testing`, ...

    Raises
    ------
    ImportError
        Without PyTorch (the message says how to install it).
    TypeError, ValueError
        For a function that does not take four arguments, or a bad option.
    """
    return FrameworkEstimator(
        fn, TorchBackend(), name=name, unbiased=unbiased, noise=noise, output=output,
        block_size=block_size, vectorize=vectorize,
    )  # fmt: skip


def network_from_torch(layers: Any, *, loss: str = "mse", values: str = "01") -> BinaryNetwork:
    """A :class:`BinaryNetwork` from a stack of ``torch.nn.Linear`` layers, as they are.

    ``layers`` is a sequence of ``torch.nn.Linear`` (or a module, whose ``Linear``
    submodules are taken in order): every layer but the last is a stochastic layer, the
    last is the linear output layer. ``Linear.weight`` has shape ``(out, in)``, gradstat's
    ``W_l``; layers without a bias get zeros.
    """
    torch = TorchBackend().module
    if isinstance(layers, torch.nn.Module):
        layers = [m for m in layers.modules() if isinstance(m, torch.nn.Linear)]
    pairs = []
    for k, layer in enumerate(layers):
        if not isinstance(layer, torch.nn.Linear):
            raise TypeError(f"layer {k} must be a torch.nn.Linear, got {type(layer).__name__}")
        W = layer.weight.detach().cpu().double().numpy()
        b = layer.bias.detach().cpu().double().numpy() if layer.bias is not None else None
        pairs.append((W, np.zeros(W.shape[0]) if b is None else b))
    return network_from_arrays(pairs, loss=loss, values=values)


def torch_layers(net: BinaryNetwork, *, dtype: Any = None) -> list[Any]:
    """``torch.nn.Linear`` layers (float64 by default) holding ``net``'s parameters."""
    torch = TorchBackend().module
    dtype = torch.float64 if dtype is None else dtype
    out = []
    for W, b in layer_views(net.params, net):
        layer = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(W))
            layer.bias.copy_(torch.tensor(b))
        out.append(layer)
    return out


def flat_parameters(layers: Sequence[Any]) -> Any:
    """The flat ``theta`` (parameter order) of ``torch.nn.Linear`` layers, as one tensor that
    keeps their autograd history: ``W_1``, ``b_1``, ..., ``W_o``, ``b_o``."""
    torch = TorchBackend().module
    return torch.cat([p for layer in layers for p in (layer.weight.reshape(-1), layer.bias)])
