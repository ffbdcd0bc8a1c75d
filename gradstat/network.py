"""The layered stochastic binary network and its flat parameter layout.

Model (docs/model.md, section 1), for one input ``x`` with ``h_0 = x``::

    a_l = W_l h_{l-1} + b_l,   p_l = sigmoid(a_l),   h_l ~ Bernoulli(p_l)   (l = 1..L)
    y   = W_o h_L + b_o,       C = loss(y, t)

All parameters live in one flat float64 vector ``theta`` ordered
``W_1, b_1, ..., W_L, b_L, W_o, b_o`` (weights row-major, shape ``(fan_out, fan_in)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradstat._validation import (
    MAGNITUDE_LIMIT,
    check_array,
    check_choice,
    check_real,
    check_seed,
    check_sizes,
    parameter_count,
)
from gradstat.network_io import read_network, write_network

LOSSES: dict[str, int] = {"mse": 0, "bce": 1, "xent": 2, "linear": 3}
"""Loss names and the integer codes the kernels use."""

LOSS_TARGETS: dict[str, str] = {
    "mse": "a real vector of length n_out",
    "bce": "a vector of length n_out with entries in [0, 1]",
    "xent": "an integer class index in [0, n_out)",
    "linear": "a real vector of length n_out",
}

VALUES = ("01", "pm1")
"""Unit values: ``"01"`` (``h = b``, the default) or ``"pm1"`` (``h = 2b - 1``)."""

RANDOM_SCALE_LIMIT = 1e100
"""The largest ``scale`` of :meth:`BinaryNetwork.random`: its pre-activations then stay far
below :data:`gradstat._validation.MAGNITUDE_LIMIT` for every width gradstat accepts."""


def _layer_slices(sizes: tuple[int, ...]) -> list[tuple[slice, slice]]:
    out = []
    off = 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = slice(off, off + fan_in * fan_out)
        off += fan_in * fan_out
        b = slice(off, off + fan_out)
        off += fan_out
        out.append((w, b))
    return out


def count_params(sizes: tuple[int, ...]) -> int:
    """Number of parameters: ``sum over consecutive (a, b) of a*b + b``."""
    return parameter_count(sizes)


def layer_bounds(
    layers: list[tuple[np.ndarray, np.ndarray]],
    first: np.ndarray,
    unit: Callable[[int, np.ndarray], np.ndarray | float] | None = None,
) -> list[np.ndarray]:
    """Bounds on ``|a_1|, ..., |a_L|`` and ``|y|``, each of shape ``(B, width)``.

    ``first`` bounds ``|a_1|``; each later layer is bounded by the triangle inequality,
    ``|W_l| h + |b_l|``, where ``h`` bounds the units below: 1 (units in ``{0, 1}`` or
    ``{-1, +1}``, and every relaxed or smooth value), or ``unit(l, a_l bound)`` for an
    estimator whose units pass on more (the noisy rectifier, MuProp's expansion point).
    Overflowing bounds come out infinite.
    """
    bounds = [np.asarray(first, dtype=np.float64)]
    with np.errstate(over="ignore", invalid="ignore"):
        for W, b in layers[1:]:
            h = np.ones_like(bounds[-1]) if unit is None else unit(len(bounds), bounds[-1])
            h = np.broadcast_to(np.asarray(h, dtype=np.float64), bounds[-1].shape)
            bounds.append(h @ np.abs(W).T + np.abs(b))
    return bounds


def refuse_bounds(
    bounds: list[np.ndarray],
    cause: str,
    fix: str,
    *,
    first: tuple[str, str] | None = None,
    skip_first: bool = False,
) -> None:
    """A ``ValueError`` naming ``cause`` and ``fix`` when a bound of :func:`layer_bounds`
    exceeds :data:`MAGNITUDE_LIMIT` (``first``: another cause and fix for layer 1)."""
    for k, bound in enumerate(bounds):
        if (skip_first and k == 0) or bound.size == 0:
            continue
        largest = float(np.max(bound))
        if not largest <= MAGNITUDE_LIMIT:
            what = "the outputs y" if k == len(bounds) - 1 else f"layer {k + 1}'s pre-activations"
            why, how = first if (first is not None and k == 0) else (cause, fix)
            raise ValueError(
                f"{why}: {what} can reach {largest:.3g} in magnitude (|W| times the largest "
                f"values below, plus |b|), more than {MAGNITUDE_LIMIT:g}, beyond which their "
                f"squares overflow float64; {how}"
            )


@dataclass(frozen=True, eq=False)
class BinaryNetwork:
    """A layered stochastic binary network (docs/model.md, section 1).

    Parameters
    ----------
    sizes : sequence of int
        ``(n_in, n_1, ..., n_L, n_out)``; ``n_in`` may be 0 (the first layer then sees only
        its bias), every stochastic width ``n_l >= 1``.
    params : array_like, shape (n_params,), optional
        Flat parameter vector in the order ``W_1, b_1, ..., W_L, b_L, W_o, b_o``.
        Defaults to all zeros (every unit fires with probability 1/2).
    loss : {"mse", "bce", "xent", "linear"}
        The loss ``C(y, t)`` of docs/model.md, section 1.
    values : {"01", "pm1"}
        What a unit passes on for its bit ``b ~ Bernoulli(p)``: ``h = b`` (default) or
        ``h = 2b - 1`` (units in ``{-1, +1}``, docs/model.md, section 1). With ``"pm1"`` the smooth
        proxy of ``E[h | a]`` is ``2 sigmoid(a) - 1``, so sigmoid-type surrogates double;
        identity straight-through stays 1.

    Attributes
    ----------
    sizes, params (read-only float64 copy), loss, values, n_params, n_stochastic (``N``).

    Raises
    ------
    ValueError, TypeError
        For malformed sizes (a string, non-integers, empty layers, more than
        :data:`gradstat._validation.MAX_PARAMS` parameters), a parameter vector of the
        wrong length, with NaN/inf or complex entries, or so large that a pre-activation or
        output could exceed :data:`gradstat._validation.MAGNITUDE_LIMIT` (``|W| 1 + |b|``
        per unit of layers 2..L and of the output, ``|params| <= 1e150`` everywhere), or an
        unknown loss.
    """

    sizes: tuple[int, ...]
    params: np.ndarray = field(repr=False)
    loss: str = "mse"
    values: str = "01"

    def __init__(
        self, sizes: Any, params: Any = None, *, loss: str = "mse", values: str = "01"
    ) -> None:
        sizes_t = check_sizes(sizes)
        loss = check_choice(loss, "loss", sorted(LOSSES))
        values = check_choice(values, "values", VALUES)
        if loss == "xent" and sizes_t[-1] < 2:
            raise ValueError(
                "loss='xent' (softmax cross-entropy) needs n_out >= 2 classes; "
                f"sizes[-1] is {sizes_t[-1]}"
            )
        n_params = count_params(sizes_t)
        if params is None:
            theta = np.zeros(n_params)
        else:
            theta = check_array(params, "params", finite=False)
            if isinstance(params, np.ndarray) and np.may_share_memory(theta, params):
                theta = theta.copy()  # the network keeps its own read-only copy
            if theta.shape != (n_params,):
                raise ValueError(
                    f"params must have shape ({n_params},) for sizes {sizes_t}, got {theta.shape}"
                )
            if not np.all(np.isfinite(theta)):
                raise ValueError("params contains NaN or infinite entries; all must be finite")
            check_array(theta, "params", magnitude=MAGNITUDE_LIMIT)
            slices = [
                (theta[w].reshape(fan_out, fan_in), theta[b])
                for (w, b), fan_in, fan_out in zip(
                    _layer_slices(sizes_t), sizes_t[:-1], sizes_t[1:]
                )
            ]
            refuse_bounds(
                layer_bounds(slices, np.zeros((1, sizes_t[1]))),
                "params are too large",
                "scale the parameters down",
                skip_first=True,
            )
        theta.setflags(write=False)
        object.__setattr__(self, "sizes", sizes_t)
        object.__setattr__(self, "params", theta)
        object.__setattr__(self, "loss", loss)
        object.__setattr__(self, "values", values)

    @classmethod
    def random(
        cls,
        sizes: Any,
        *,
        loss: str = "mse",
        scale: float = 1.0,
        seed: int | np.random.SeedSequence | None = None,
        values: str = "01",
    ) -> BinaryNetwork:
        """A network with Gaussian parameters.

        Weights of a layer with fan-in ``m`` are ``N(0, scale^2 / m)`` and biases
        ``N(0, scale^2)``, drawn in docs/model.md order from ``numpy.random.default_rng(seed)``.
        ``scale`` is a finite number in ``[0, 1e100]`` (:data:`RANDOM_SCALE_LIMIT`);
        ``seed`` an int >= 0, a ``SeedSequence``, a ``Generator`` or None.
        """
        sizes_t = check_sizes(sizes)
        scale = check_real(scale, "scale", minimum=0.0, maximum=RANDOM_SCALE_LIMIT)
        rng = np.random.default_rng(check_seed(seed, generator=True))
        parts = []
        for fan_in, fan_out in zip(sizes_t[:-1], sizes_t[1:]):
            w_std = scale / np.sqrt(max(fan_in, 1))
            parts.append(rng.normal(0.0, w_std, size=fan_in * fan_out))
            parts.append(rng.normal(0.0, scale, size=fan_out))
        return cls(sizes_t, np.concatenate(parts), loss=loss, values=values)

    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector."""
        return self.params.shape[0]

    @property
    def n_in(self) -> int:
        return self.sizes[0]

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """Widths ``(n_1, ..., n_L)`` of the stochastic layers."""
        return self.sizes[1:-1]

    @property
    def n_layers(self) -> int:
        """Number ``L`` of stochastic layers."""
        return len(self.sizes) - 2

    @property
    def n_stochastic(self) -> int:
        """Number ``N = n_1 + ... + n_L`` of stochastic units."""
        return int(sum(self.hidden_sizes))

    @property
    def n_states(self) -> int:
        """Number ``2^N`` of joint hidden states."""
        return 2**self.n_stochastic

    def layer_slices(self) -> list[tuple[slice, slice]]:
        """``(W slice, b slice)`` into ``params`` for layers ``1..L`` and the output layer."""
        return _layer_slices(self.sizes)

    def parameter_groups(self) -> dict[str, slice]:
        """Contiguous parameter ranges by layer: ``layer1..layerL``, ``output``, ``stochastic``."""
        groups: dict[str, slice] = {}
        slices = self.layer_slices()
        for k, (w, b) in enumerate(slices[:-1], start=1):
            groups[f"layer{k}"] = slice(w.start, b.stop)
        w, b = slices[-1]
        groups["output"] = slice(w.start, b.stop)
        groups["stochastic"] = slice(0, w.start)
        return groups

    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(W, b)`` read-only views for layers ``1..L`` and then the output layer."""
        out = []
        for (w, b), fan_in, fan_out in zip(self.layer_slices(), self.sizes[:-1], self.sizes[1:]):
            out.append((self.params[w].reshape(fan_out, fan_in), self.params[b]))
        return out

    def with_params(self, theta: Any) -> BinaryNetwork:
        """The same architecture, loss and unit values with parameters ``theta``."""
        return BinaryNetwork(self.sizes, theta, loss=self.loss, values=self.values)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write sizes, loss and parameters to an ``.npz`` file (see :mod:`gradstat.storage`)."""
        return write_network(
            path, sizes=self.sizes, loss=self.loss, params=self.params, values=self.values
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BinaryNetwork:
        """Read a network written by :meth:`save`; never unpickles (see :mod:`gradstat.storage`).

        Raises ``ValueError`` or ``TypeError`` naming the file and the problem for a
        truncated, malformed or inconsistent file.
        """
        return read_network(path, BinaryNetwork)

    def __repr__(self) -> str:
        return (
            f"BinaryNetwork(sizes={self.sizes}, loss={self.loss!r}, "
            + (f"values={self.values!r}, " if self.values != "01" else "")
            + f"n_params={self.n_params}, n_stochastic={self.n_stochastic})"
        )


def as_batch(net: BinaryNetwork, x: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate one example or a batch and return ``X (B, n_in)`` and ``T (B, n_t)``.

    ``x`` is ``(n_in,)`` or ``(B, n_in)``. ``t`` matches the loss: a length-``n_out`` vector
    (or ``(B, n_out)``) for ``mse``, ``bce`` and ``linear``; an integer class (or ``(B,)``
    integers) for ``xent``. Targets are returned as float64 with ``n_t = n_out`` (one column
    holding the class index for ``xent``).
    """
    if isinstance(x, BinaryNetwork) or isinstance(t, BinaryNetwork):
        raise TypeError("pass the network first: f(net, x, t, ...)")
    if not isinstance(net, BinaryNetwork):
        raise TypeError(f"net must be a gradstat.BinaryNetwork, got {type(net).__name__}")
    X = check_array(x, "x", finite=False)
    n_in = net.n_in
    single = X.ndim == 1
    if single:
        if X.shape[0] != n_in:
            raise ValueError(
                f"x must have shape ({n_in},) or (B, {n_in}) for this network, got {X.shape}"
            )
        X = X[None, :]
    elif X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(
            f"x must have shape ({n_in},) or (B, {n_in}) for this network, got {X.shape}"
        )
    if X.shape[0] < 1:
        raise ValueError("x holds no examples: a batch needs B >= 1 rows")
    if not np.all(np.isfinite(X)):
        raise ValueError("x contains NaN or infinite entries; inputs must be finite")
    check_array(X, "x", magnitude=MAGNITUDE_LIMIT)
    B = X.shape[0]
    if net.loss == "xent":
        T = _xent_targets(t, B, single, net.n_out)
    else:
        T = _vector_targets(t, B, single, net.n_out, net.loss)
    return np.ascontiguousarray(X), np.ascontiguousarray(T)


def _xent_targets(t: Any, B: int, single: bool, n_out: int) -> np.ndarray:
    expect = "an integer class index" if single else f"an integer array of shape ({B},)"
    if isinstance(t, (str, bytes)):
        raise TypeError(f"loss 'xent' needs t to be {expect}, got {type(t).__name__} {t!r}")
    try:
        arr = np.asarray(t)
    except (TypeError, ValueError):
        raise TypeError(f"loss 'xent' needs t to be {expect}, got {t!r}") from None
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"loss 'xent' needs t to be {expect}, got dtype {arr.dtype}")
    if single and arr.ndim == 1 and arr.shape == (1,):
        arr = arr.reshape(())
    want_shape = () if single else (B,)
    if arr.shape != want_shape:
        raise ValueError(f"loss 'xent' needs t to be {expect}, got shape {arr.shape}")
    flat = arr.reshape(-1).astype(np.float64)
    if not np.all(np.isfinite(flat)) or np.any(flat != np.round(flat)):
        raise TypeError(f"loss 'xent' needs t to be {expect} (whole numbers), got {t!r}")
    if np.any(flat < 0) or np.any(flat >= n_out):
        raise ValueError(f"loss 'xent' needs class indices in [0, {n_out}), got {t!r}")
    return flat.reshape(B, 1)


def _vector_targets(t: Any, B: int, single: bool, n_out: int, loss: str) -> np.ndarray:
    try:
        T = check_array(t, "t", finite=False)
    except TypeError as err:
        raise TypeError(f"loss {loss!r} needs t to be {LOSS_TARGETS[loss]}: {err}") from None
    want = (n_out,) if single else (B, n_out)
    if single and T.ndim == 0 and n_out == 1:
        T = T.reshape(1)
    if T.shape != want:
        raise ValueError(
            f"loss {loss!r} needs t of shape {want} ({LOSS_TARGETS[loss]} per example), "
            f"got {T.shape}"
        )
    if not np.all(np.isfinite(T)):
        raise ValueError("t contains NaN or infinite entries; targets must be finite")
    check_array(T, "t", magnitude=MAGNITUDE_LIMIT)
    if loss == "bce" and (np.any(T < 0) or np.any(T > 1)):
        raise ValueError("loss 'bce' needs targets in [0, 1]")
    return T.reshape(B, n_out)
