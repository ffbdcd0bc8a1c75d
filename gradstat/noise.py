"""``noise_decomposition``: an estimator's covariance split by the layer whose sampling causes it.

With ``F_l`` the states of layers ``1..l`` (``F_0`` nothing), the conditional means
``M_l = E[g_hat | F_l]`` are a martingale from ``M_0 = E[g_hat]`` to ``M_L = g_hat`` (every
enumerable estimate is a function of its layers' noise), and the law of total covariance
splits

    Cov(g_hat) = sum_l E[ Cov( E[g_hat | F_l] | F_{l-1} ) ] = sum_l E[ D_l D_l^T ],
    D_l = M_l - M_{l-1},

into one positive semi-definite part per stochastic layer: the noise that layer ``l``'s
sampling adds given the layers below it. Each part is an exact finite sum over the noise
states. For a batch each example has independent noise, so the parts add over examples
with weight ``1/B^2`` as the variance does (docs/model.md, section 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstat._validation import check_bool, check_size
from gradstat.engines.baselines import kernel_options, workspace_for
from gradstat.engines.gradient import problem_batch
from gradstat.engines.state_estimates import state_estimates_kernel
from gradstat.estimators.registry import EstimatorBase
from gradstat.estimators.user import guard_engines, resolve_estimator
from gradstat.exact import check_reference, estimator_moments
from gradstat.network import BinaryNetwork
from gradstat.problem import (
    DEFAULT_MAX_STATES,
    Problem,
    check_max_states,
    expand_mean,
    expand_square,
    expansion_matrix,
    make_problem,
    states_error,
    threads_for,
)

__all__ = ["NoiseDecomposition", "noise_decomposition"]

MAX_KEPT_VALUES = 2**26
"""The most float64 values (512 MiB) of per-state estimates kept at once for one example
(the split makes two temporaries of that size as well)."""

_ADVICE = (
    "Monte Carlo draws cannot split a covariance by source exactly (the conditional means "
    "E[g_hat | h_1..h_l] would need nested sampling); use a network with fewer stochastic "
    "units, or raise max_states if you can afford the enumeration"
)


@dataclass(frozen=True, eq=False)
class NoiseDecomposition:
    """An estimator's exact covariance, split by the layer whose sampling causes it.

    Attributes
    ----------
    estimator : str
    options : dict
        The estimator's resolved options.
    engine : {"joint", "cells"}
        ``"joint"``: every noise state kept (layer ``l``'s source is its bits, in every
        draw for ``reinforce_loo``); ``"cells"``: ARM/DisARM on one stochastic layer, whose
        one source is that layer's uniforms (its cells and the position within them).
    n_examples : int
    sources : tuple of str
        ``layer1..layerL``, the layers whose sampling the parts are charged to.
    mean : ndarray (n_params,)
        ``E[g_hat]`` of the batch estimate.
    var : ndarray (n_params,)
        The total per-coordinate variance of the batch estimate (the sum of the parts).
    parts : ndarray (n_sources, n_params)
        Per source ``l``, the diagonal of ``E[D_l D_l^T]`` (see the module docstring).
    cov : ndarray (n_sources, n_params, n_params) or None
        The parts as matrices (with ``full_cov=True``).
    groups : dict[str, slice]
        The parameter groups of :meth:`BinaryNetwork.parameter_groups`, plus ``all``.
    """

    estimator: str
    options: dict[str, Any]
    engine: str
    n_examples: int
    sources: tuple[str, ...]
    mean: np.ndarray = field(repr=False)
    var: np.ndarray = field(repr=False)
    parts: np.ndarray = field(repr=False)
    cov: np.ndarray | None = field(repr=False)
    groups: dict[str, slice] = field(repr=False)

    def traces(self, group: str = "all") -> np.ndarray:
        """Per source, the trace of its part over ``group``'s parameters."""
        return self.parts[:, self._group(group)].sum(axis=1)

    def shares(self, group: str = "all") -> np.ndarray:
        """Per source, its fraction of the total variance over ``group`` (NaN when that
        total is 0)."""
        traces = self.traces(group)
        total = traces.sum()
        return traces / total if total > 0.0 else np.full_like(traces, np.nan)

    @property
    def top_share(self) -> float:
        """The top stochastic layer's share of the total variance over all parameters."""
        return float(self.shares("all")[-1])

    def _group(self, group: str) -> slice:
        if group not in self.groups:
            raise ValueError(f"group must be one of {sorted(self.groups)}; got {group!r}")
        return self.groups[group]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: traces and shares per group and source, and the per-coordinate
        parts (the matrices are left out)."""
        return {
            "estimator": self.estimator,
            "options": dict(self.options),
            "engine": self.engine,
            "n_examples": self.n_examples,
            "sources": list(self.sources),
            "traces": {g: self.traces(g).tolist() for g in self.groups},
            "shares": {g: self.shares(g).tolist() for g in self.groups},
            "var": self.var.tolist(),
            "parts": self.parts.tolist(),
        }

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        head = f"NoiseDecomposition(estimator={self.estimator!r}{', ' + opts if opts else ''}, "
        head += f"engine={self.engine!r}, examples={self.n_examples})"
        lines = [
            head,
            f"  {'group':<12}{'total var':>14}" + "".join(f"{s:>10}" for s in self.sources),
        ]
        for g in self.groups:
            shares = "".join(f"{v:>10.3f}" for v in self.shares(g))
            lines.append(f"  {g:<12}{self.traces(g).sum():>14.6g}{shares}")
        return "\n".join(lines)


def source_parts(
    prob: np.ndarray, est: np.ndarray, bits: list[int], full_cov: bool
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray] | None]:
    """The parts ``E[D_l D_l^T]`` of one example from its enumerated states.

    ``prob`` (S,) and ``est`` (S, n) are indexed by states whose bits are grouped by
    source, source 1 lowest (``bits[l]`` bits each). Returns ``E[g_hat]``, the diagonals
    ``(n_sources, n)`` and (``full_cov``) the matrices.
    """
    n = est.shape[1]
    # Axes: the last source outermost, so that summing axis 0 forgets it.
    shape = [1 << b for b in reversed(bits)]
    P = prob.reshape(shape)
    M = est.reshape([*shape, n])
    diag = np.zeros((len(bits), n))
    mats: list[np.ndarray] | None = [] if full_cov else None
    for level in range(len(bits), 0, -1):
        P_low = P.sum(axis=0)
        Q_low = (P[..., None] * M).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            M_low = np.where(P_low[..., None] > 0.0, Q_low / P_low[..., None], 0.0)
        D = (M - M_low[None]).reshape(-1, n)
        w = P.reshape(-1)
        diag[level - 1] = w @ (D * D)
        if mats is not None:
            mats.insert(0, (D * w[:, None]).T @ D)
        P, M = P_low, M_low
    return M.reshape(n), diag, mats


def _grouped_states(
    logp: np.ndarray, est: np.ndarray, hidden: tuple[int, ...], k: int
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """States reordered so that each layer's bits of all ``k`` draws are contiguous."""
    n = est.shape[1]
    # State bits: draw j's unit of layer l is bit j N + uoff[l] + i; reshape with the
    # highest bits first, then bring each layer's axes of all draws together.
    axes = [1 << h for _ in range(k) for h in reversed(hidden)]
    L = len(hidden)
    order = [j * L + (L - 1 - l) for l in reversed(range(L)) for j in range(k)]
    prob = np.exp(logp).reshape(axes).transpose(order).reshape(-1)
    est = est.reshape([*axes, n]).transpose([*order, len(axes)]).reshape(-1, n)
    return prob, est, [k * h for h in hidden]


def _check_source_split(spec: EstimatorBase, net: BinaryNetwork) -> str:
    """The engine of the split for ``spec``, or a ValueError saying why there is none."""
    if spec.jitted is not None or spec.full_layout:
        raise ValueError(
            f"noise_decomposition takes built-in estimators; {spec.name!r} is a user "
            "estimator (its per-state function is compiled into the moment kernels only): "
            "register its formula as a built-in, or split its covariance from its per-state "
            "estimates yourself"
        )
    engine = spec.exact_engine(net.n_layers)
    if engine is None:
        raise ValueError(
            f"the covariance of estimator {spec.name!r} cannot be split by source exactly "
            f"({spec.exact_refusal()}); {_ADVICE.split(';')[0]}"
        )
    return engine


def noise_decomposition(
    net: BinaryNetwork,
    x: Any,
    t: Any,
    estimator: str,
    *,
    full_cov: bool = False,
    max_states: int = DEFAULT_MAX_STATES,
    **options: Any,
) -> NoiseDecomposition:
    """Split an estimator's exact covariance by the stochastic layer whose sampling causes it.

    By the law of total covariance over the layers' states ``F_l = (h_1, ..., h_l)``,

    ``Cov(g_hat) = sum_l E[ Cov( E[g_hat | F_l] | F_{l-1} ) ]``,

    each part positive semi-definite: the noise layer ``l``'s sampling adds, given the
    layers below (for ``sts`` the bits ``b_l``, for ``reinforce_loo`` layer ``l`` of all
    ``k`` draws). Every part is an exact sum over the ``2^N`` noise states (ARM and DisARM
    on one stochastic layer: one source, the layer's uniforms, by its ``3^N`` cells). For a
    batch the parts are ``(1/B^2) sum_x`` of the examples' parts.

    Parameters
    ----------
    net, x, t
        Network, one example ``(n_in,)`` or a batch ``(B, n_in)``, and targets.
    estimator : str
        A registered estimator whose moments can be enumerated.
    full_cov : bool
        Also return each part as a matrix ``(n_params, n_params)``.
    max_states : int
        Refuse to enumerate more than this many noise states per example.
    **options
        Estimator options, e.g. ``baseline="optimal"`` for ``reinforce``.

    Returns
    -------
    NoiseDecomposition

    Raises
    ------
    ValueError
        Estimators with continuous noise (other than ARM/DisARM on one layer), user
        estimators, more noise states than ``max_states`` (with the count), more kept
        estimates than fit in memory, and non-finite results.
    TypeError
        Unknown option names or arguments of the wrong type.

    Examples
    --------
    >>> import numpy as np, gradstat as gs
    >>> net = gs.BinaryNetwork.random((3, 3, 2, 2), loss="mse", seed=0)
    >>> d = gs.noise_decomposition(net, np.ones(3), np.zeros(2), "st_sigmoid")
    >>> d.sources
    ('layer1', 'layer2')
    >>> bool(np.allclose(d.parts.sum(axis=0), d.var))
    True
    """
    spec, opts = resolve_estimator(estimator, options)
    full_cov = check_bool(full_cov, "full_cov")
    max_states = check_max_states(max_states)
    problem = make_problem(net, x, t)
    spec.check_problem(problem, opts)
    spec.check_values(net)
    engine = _check_source_split(spec, net)
    count = spec.exact_count(net.hidden_sizes, opts)
    what = "cells of u" if engine == "cells" else "noise states"
    if count > max_states:
        raise states_error(
            f"the noise decomposition of {spec.name!r} enumerates {count:,} {what} per "
            f"example, more than max_states = {max_states:,}",
            _ADVICE + ".",
        )
    if engine == "cells":
        return _cells_split(problem, x, t, spec, opts, full_cov, max_states)
    check_size(int(count) * problem.n_compressed, "noise_decomposition",
               f"the {count:,} estimates of one example kept at once", MAX_KEPT_VALUES)  # fmt: skip
    if full_cov:
        what = f"{net.n_layers} covariance matrices of {net.n_params:,} parameters"
        check_size(net.n_layers * net.n_params**2, "full_cov", what)
    with guard_engines(spec):
        return _joint_split(problem, spec, opts, full_cov, max_states)


def _joint_split(
    problem: Problem, spec: EstimatorBase, opts: dict[str, Any], full_cov: bool, max_states: int
) -> NoiseDecomposition:
    """The split from every noise state's estimate (:mod:`gradstat.engines.state_estimates`)."""
    net = problem.net
    k = spec.draws_per_estimate(opts)
    n_bits = spec.noise_size(net.hidden_sizes, opts)
    kopts, baselines = kernel_options(spec, opts, problem, max_states)
    cols = workspace_for(problem, spec, opts)
    B, Pc, P = problem.n_examples, problem.n_compressed, net.n_params
    means = np.zeros((B, Pc))
    diags = np.zeros((net.n_layers, B, Pc))
    cov = np.zeros((net.n_layers, P, P)) if full_cov else None
    for b in range(B):
        logp = np.empty((1, 1 << n_bits))
        est = np.empty((1, 1 << n_bits, Pc))
        batch, geo = problem_batch(problem, spec.unit_mode(problem.mode), slice(b, b + 1))
        with threads_for(est.size):
            state_estimates_kernel(
                batch, geo, spec.code, n_bits, kopts, baselines[b : b + 1], cols, logp, est
            )
        prob, grouped, bits = _grouped_states(logp[0], est[0], net.hidden_sizes, k)
        means[b], diags[:, b], mats = source_parts(prob, grouped, bits, full_cov)
        if cov is not None and mats is not None:
            M = expansion_matrix(problem, b)
            for level, mat in enumerate(mats):
                cov[level] += M @ mat @ M.T
    mean = expand_mean(problem, means).mean(axis=0)
    parts = np.stack([expand_square(problem, d).sum(axis=0) for d in diags]) / B**2
    if cov is not None:
        cov /= B**2
    return _result(spec, opts, "joint", problem, mean, parts, cov)


def _cells_split(
    problem: Problem, x: Any, t: Any, spec: EstimatorBase, opts: dict[str, Any],
    full_cov: bool, max_states: int,
) -> NoiseDecomposition:  # fmt: skip
    """ARM/DisARM on one stochastic layer: one source, the cells engine's exact moments."""
    moments = estimator_moments(
        problem.net, x, t, spec, full_cov=full_cov, max_states=max_states, **opts
    )
    cov = None if moments.cov is None else moments.cov[None]
    return _result(spec, opts, "cells", problem, moments.mean, moments.var[None], cov)


def _result(
    spec: EstimatorBase, opts: dict[str, Any], engine: str, problem: Problem, mean: np.ndarray,
    parts: np.ndarray, cov: np.ndarray | None,
) -> NoiseDecomposition:  # fmt: skip
    net = problem.net
    var = parts.sum(axis=0)
    check_reference(None, mean)
    spec.check_result(mean=mean, var=var, cov=cov)
    groups = {"all": slice(0, net.n_params), **net.parameter_groups()}
    return NoiseDecomposition(
        estimator=spec.name, options=opts, engine=engine, n_examples=problem.n_examples,
        sources=tuple(f"layer{l}" for l in range(1, net.n_layers + 1)), mean=mean, var=var,
        parts=parts, cov=cov, groups=groups,
    )  # fmt: skip
