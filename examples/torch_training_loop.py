"""From a PyTorch training loop to the exact bias and variance of its gradient estimator.

The model below is what one writes to train a network with a stochastic binary layer:
a ``Bernoulli(sigmoid(a))`` unit whose backward pass is the logistic surrogate (the
detach trick, ``h = b + (p - p.detach())``). Its gradient estimator is the model itself,
so gradstat analyses the same ``forward``: ``torch.func.functional_call`` runs it with the
parameters cut from gradstat's flat ``theta``, and ``u`` is the noise the training loop
would draw with ``torch.rand``. The script trains a few steps, hands the trained layers to
gradstat as they are, prints the exact bias/variance table next to the built-in
estimators, and ends with unbiasedness tests.

Run from the repository root (needs PyTorch: ``pip install 'gradstat[torch]'``)::

    python examples/torch_training_loop.py
"""

from __future__ import annotations

import numpy as np
import torch

import gradstat as gs
from gradstat.testing import check_unbiased


class StochasticBinary(torch.nn.Module):
    """``b ~ Bernoulli(sigmoid(a))``, drawn as ``b = 1[u < p]``; backward as ``sigmoid``."""

    def forward(self, a: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(a)
        b = (u < p).to(a.dtype)
        return b + (p - p.detach())


class Model(torch.nn.Module):
    def __init__(self, n_in: int, n_hidden: int, n_out: int) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, n_hidden)
        self.binary = StochasticBinary()
        self.out = torch.nn.Linear(n_hidden, n_out)

    def forward(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.out(self.binary(self.hidden(x), u))


def loss_fn(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((y - t) ** 2).sum()  # gradstat's "mse"


def train(model: Model, X: torch.Tensor, T: torch.Tensor, steps: int) -> None:
    """The usual loop: fresh noise every step, backward through the surrogate."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        u = torch.rand(X.shape[0], model.hidden.out_features, dtype=X.dtype)
        loss = sum(loss_fn(model(x, ui), t) for x, t, ui in zip(X, T, u)) / X.shape[0]
        loss.backward()
        opt.step()


def as_estimator(model: Model) -> gs.FrameworkEstimator:
    """The model's own forward as ``fn(theta, x, t, u)``: its parameters, in order
    (``hidden.weight``, ``hidden.bias``, ``out.weight``, ``out.bias``), are gradstat's
    ``theta`` in SPEC order."""
    shapes = [(name, p.shape) for name, p in model.named_parameters()]

    def surrogate(theta: torch.Tensor, x: torch.Tensor, t: torch.Tensor, u: torch.Tensor):
        params, off = {}, 0
        for name, shape in shapes:
            size = int(np.prod(shape))
            params[name] = theta[off : off + size].reshape(shape)
            off += size
        return loss_fn(torch.func.functional_call(model, params, (x, u)), t)

    return gs.torch_estimator(surrogate, name="model_st_sigmoid")


def main() -> None:
    torch.manual_seed(0)
    X = torch.randn(4, 5, dtype=torch.float64)
    T = torch.randn(4, 2, dtype=torch.float64)
    model = Model(5, 8, 2).double()
    train(model, X, T, steps=50)

    net = gs.network_from_torch(model, loss="mse")  # the trained layers, as they are
    x, t = X.numpy(), T.numpy()
    ours = as_estimator(model)
    print(f"{net!r}: {net.n_stochastic} stochastic units, {2**net.n_stochastic} states")
    print(f"{ours.name}: {ours.basis}\n")
    print("| estimator | method | bias norm | relative bias | total variance | cosine | "
          "sign agreement | descent probability |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for est in (ours, "st_sigmoid", "st", "reinforce"):
        r = gs.analyze(net, x, t, est)
        print(f"| {r.estimator} | {r.method} ({r.engine}) | {r.bias_norm:.4g} | "
              f"{r.relative_bias:.3g} | {r.total_variance:.4g} | {r.cosine:.4f} | "
              f"{r.sign_agreement:.4f} | {r.descent_probability:.4f} |")  # fmt: skip

    print("\nIs the model's estimator unbiased? (exact check, no false alarms)")
    print("  ", check_unbiased(ours, (net, x, t)).describe())
    reinforce = gs.torch_estimator(
        lambda theta, x, t, u, net: _reinforce(theta, x, t, u, net), name="torch_reinforce"
    )
    verdict = check_unbiased(reinforce, (net, x, t))
    print(f"   {verdict.describe()}: unbiased = {verdict.unbiased}")


def _reinforce(theta: torch.Tensor, x: torch.Tensor, t: torch.Tensor, u: torch.Tensor, net):
    """REINFORCE for the same model: the loss, detached, times ``log P(b | x)``."""
    (W, b), (Wo, bo) = gs.layer_views(theta, net)
    a = W @ x + b
    bit = (u < torch.sigmoid(a)).to(a.dtype)
    log_p = (bit * torch.nn.functional.logsigmoid(a)
             + (1 - bit) * torch.nn.functional.logsigmoid(-a)).sum()  # fmt: skip
    C = loss_fn(Wo @ bit + bo, t)
    return C.detach() * log_p + C


if __name__ == "__main__":
    main()
