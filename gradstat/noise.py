"""``noise_decomposition``: an estimator's covariance split by the layer whose sampling causes it.

With ``F_l`` the states of layers ``1..l`` (``F_0`` nothing), the conditional means
``M_l = E[g_hat | F_l]`` are a martingale from ``M_0 = E[g_hat]`` to ``M_L = E[g_hat | h]``,
and the law of total covariance splits

    Cov(g_hat) = sum_l E[ Cov( E[g_hat | F_l] | F_{l-1} ) ] + E[ Cov(g_hat | h) ]
               = sum_l E[ D_l D_l^T ] + E[ Cov(g_hat | h) ],     D_l = M_l - M_{l-1},

into one positive semi-definite part per stochastic layer, the noise that layer ``l``'s
sampling adds given the layers below it, and the *residual*: the noise beyond the states.
An estimate that is a function of its noise states (every discrete-noise estimator, the
built-in ones and users' alike) has no residual; ARM and DisARM, which read the uniforms
``u`` that drew the state, have one (:mod:`gradstat.engines.cell_states`). Each part is
an exact finite sum over the noise states (or ARM's cells of ``u``). For a batch each
example has independent noise, so the parts add over examples with weight ``1/B^2`` as
the variance does (docs/model.md, section 3).

**Messages.** REINFORCE (every baseline) and the straight-through-type estimators
(``st``, ``st_sigmoid``, ``st_tempered``, ``reinmax``) on networks too wide for joint
enumeration are split by messages over adjacent layers
(:mod:`gradstat.engines.message_noise`: given the input the layers are a Markov chain,
so each conditional mean above a coordinate's own layer is a function of one layer's
state, and the parts are sums over adjacent layer pairs): the same per-coordinate parts,
traces and shares, not the matrices (``full_cov``). Other estimators, and networks whose
adjacent layers' pairs of states exceed ``max_states`` too, are refused with their state
count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstat._validation import check_choice, check_size, describe_power
from gradstat.engines.baselines import kernel_options, workspace_for
from gradstat.engines.cell_states import cell_estimates_kernel, cell_parts
from gradstat.engines.choice import layerwise_bits
from gradstat.engines.gradient import problem_batch
from gradstat.engines.message_noise import largest_functions, message_noise_parts, score_noise_cost
from gradstat.engines.state_estimates import (
    batched_state_estimates,
    state_estimates_kernel,
    user_state_estimates,
)
from gradstat.estimators.registry import EstimatorBase
from gradstat.estimators.user import guard_engines
from gradstat.exact import check_reference, exact_inputs
from gradstat.network import BinaryNetwork
from gradstat.problem import (
    DEFAULT_MAX_STATES,
    Problem,
    expand_mean,
    expand_square,
    expansion_matrix,
    states_error,
    threads_for,
)

__all__ = ["NoiseDecomposition", "noise_decomposition"]

MAX_KEPT_VALUES = 2**26
"""The most float64 values (512 MiB) of per-state estimates kept at once for one example
(the split makes two temporaries of that size as well; ARM's cells four)."""

RESIDUAL = "residual"
"""The name of the source beyond the states (:data:`NoiseDecomposition.sources`)."""

_ADVICE = (
    "Monte Carlo draws cannot split a covariance by source exactly (the conditional means "
    "E[g_hat | h_1..h_l] would need nested sampling); use a network with fewer stochastic "
    "units, or raise max_states if you can afford the enumeration"
)

ENGINES = ("auto", "joint", "cells", "layerwise")
"""``noise_decomposition``'s engines: ``"auto"`` enumerates (joint states, or ARM's and
DisARM's cells) when the count fits ``max_states``, else passes messages where they apply."""


@dataclass(frozen=True, eq=False)
class NoiseDecomposition:
    """An estimator's exact covariance, split by the layer whose sampling causes it.

    Attributes
    ----------
    sources : tuple of str
        ``layer1..layerL``, the layers whose sampling the parts are charged to, then
        ``residual`` for an estimator with noise beyond the states (ARM, DisARM).
    parts : ndarray (n_sources, n_params)
        Per source, the diagonal of its part (``E[D_l D_l^T]`` for layer ``l``,
        ``E[Cov(g_hat | h)]`` for the residual; see the module docstring).
    var : ndarray (n_params,)
        The total per-coordinate variance of the batch estimate (the sum of the parts).
    mean : ndarray (n_params,)
        ``E[g_hat]`` of the batch estimate.
    cov : ndarray (n_sources, n_params, n_params) or None
        The parts as matrices (with ``full_cov=True``).
    groups : dict[str, slice]
        The parameter groups of :meth:`BinaryNetwork.parameter_groups`, plus ``all``.
    estimator, options, n_examples
        The estimator's name and resolved options, and the batch size.
    engine : {"joint", "cells", "layerwise"}
        ``"joint"``: every noise state kept (layer ``l``'s source is its bits, in every
        draw for ``reinforce_loo``); ``"cells"``: ARM/DisARM on one stochastic layer by
        their ``3^N`` cells of ``u``, whose state ``h = 1[u < p]`` is layer 1's source and
        the rest of ``u`` the residual; ``"layerwise"``: REINFORCE or a
        straight-through-type estimator by messages over adjacent layers
        (:mod:`gradstat.engines.message_noise`; ``cov`` is then None).
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
        layers = [k for k, s in enumerate(self.sources) if s != RESIDUAL]
        return float(self.shares("all")[layers[-1]])

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
    if spec.draws_own_noise:
        raise ValueError(
            f"the covariance of user estimator {spec.name!r} cannot be split by source: it "
            "draws its own noise, which gradstat cannot enumerate; write it as a jitted "
            "per-state function (gradstat.per_state_estimator) if its estimate is a "
            "function of the hidden states"
        )
    engine = spec.exact_engine(net.n_layers)
    if engine is None:
        raise ValueError(
            f"the covariance of estimator {spec.name!r} cannot be split by source exactly "
            f"({spec.exact_refusal()}); {_ADVICE.split(';')[0]}"
        )
    return engine


def noise_decomposition(
    net: BinaryNetwork, x: Any, t: Any, estimator: str | EstimatorBase, *,
    full_cov: bool = False, max_states: int = DEFAULT_MAX_STATES, engine: str = "auto",
    **options: Any,
) -> NoiseDecomposition:  # fmt: skip
    """Split an estimator's exact covariance by the stochastic layer whose sampling causes it.

    By the law of total covariance over the layers' states ``F_l = (h_1, ..., h_l)``,

    ``Cov(g_hat) = sum_l E[ Cov( E[g_hat | F_l] | F_{l-1} ) ] + E[ Cov(g_hat | h) ]``,

    each part positive semi-definite: the noise layer ``l``'s sampling adds, given the
    layers below (for ``sts`` the bits ``b_l``, for ``reinforce_loo`` layer ``l`` of all
    ``k`` draws), and the residual noise beyond the states (ARM's and DisARM's uniforms
    given ``h = 1[u < p]``; zero, and not listed, for an estimate that is a function of
    the states). Every part is an exact sum over the ``2^N`` noise states (ARM and
    DisARM on one stochastic layer: over their ``3^N`` cells of ``u``), or, for
    REINFORCE and the straight-through-type estimators on a network whose states are too
    many, over adjacent layers' pairs of states by messages
    (:mod:`gradstat.engines.message_noise`; per-coordinate parts only, no ``full_cov``).
    For a batch the parts are ``(1/B^2) sum_x`` of the examples' parts.

    Parameters
    ----------
    net, x, t
        Network, one example ``(n_in,)`` or a batch ``(B, n_in)``, and targets.
    estimator : str or EstimatorBase
        A registered estimator whose moments can be enumerated, a user's jitted per-state
        function (:func:`gradstat.per_state_estimator`, ``noise="discrete"``) or an
        estimator written in PyTorch or JAX.
    full_cov : bool
        Also return each part as a matrix ``(n_params, n_params)`` (enumeration only).
    max_states : int
        Refuse to enumerate more than this many noise states (or cells) per example; by
        messages, more than this many pairs of adjacent layers' states.
    engine : {"auto", "joint", "cells", "layerwise"}
        ``"auto"`` enumerates when the states fit ``max_states`` and passes messages
        otherwise (where they apply); ``"layerwise"`` passes messages whatever the count.
    **options
        Estimator options, e.g. ``baseline="optimal"`` for ``reinforce``.

    Returns
    -------
    NoiseDecomposition

    Raises
    ------
    ValueError
        Estimators with continuous noise (other than ARM/DisARM on one layer), plain
        Python estimators, more noise states than ``max_states`` where messages do not
        apply (with the count, and why messages do not), more kept estimates than fit in
        memory, and non-finite results.
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
    engine = check_choice(engine, "engine", ENGINES)
    spec, opts, problem, full_cov, max_states = exact_inputs(
        net, x, t, estimator, options, full_cov, max_states
    )
    spec.check_values(net)
    found = _check_source_split(spec, net)
    count = spec.exact_count(net.hidden_sizes, opts)
    if engine == "layerwise" or (engine == "auto" and count > max_states):
        messages = _messages_refusal(spec, net, full_cov, max_states)
        if messages is None:
            with guard_engines(spec):
                return _result(problem, spec, opts, "layerwise", net.n_layers,
                               _layerwise_parts(problem, spec, opts), False, True)  # fmt: skip
        if engine == "layerwise":
            raise ValueError(
                f"the noise decomposition of {spec.name!r} by messages is not available: "
                f"{messages}; use engine='auto'"
            )
    elif engine != "auto" and engine != found:
        raise ValueError(
            f"the noise decomposition of {spec.name!r} on this network uses engine "
            f"{found!r}, not {engine!r}; pass engine='auto' or engine={found!r}"
        )
    what = "cells of u" if found == "cells" else "noise states"
    if count > max_states:
        raise states_error(
            f"the noise decomposition of {spec.name!r} enumerates {count:,} {what} per "
            f"example, more than max_states = {max_states:,}",
            _ADVICE + "." + _messages_advice(spec, net, full_cov, max_states),
        )
    width = problem.n_compressed if not spec.full_layout else net.n_params
    check_size(int(count) * width, "noise_decomposition",
               f"the {count:,} estimates of one example kept at once", MAX_KEPT_VALUES)  # fmt: skip
    n_sources = net.n_layers + (found == "cells")
    if full_cov:
        what = f"{n_sources} covariance matrices of {net.n_params:,} parameters"
        check_size(n_sources * net.n_params**2, "full_cov", what)
    if found == "cells":
        example_parts = _cells_parts(problem, spec, full_cov)
    else:
        example_parts = _joint_parts(problem, spec, opts, full_cov, max_states)
    with guard_engines(spec):
        return _result(problem, spec, opts, found, n_sources, example_parts, full_cov)


def _messages_refusal(
    spec: EstimatorBase, net: BinaryNetwork, full_cov: bool, max_states: int
) -> str | None:
    """Why the split by messages does not apply, or None when it does."""
    family = spec.layerwise_family()
    if family is None:
        return spec.layerwise_refusal()
    if full_cov:
        return "full_cov needs joint enumeration (messages give the parts' diagonals)"
    bits = layerwise_bits(net)
    if bits > 62 or 2**bits > max_states:
        return (
            f"they enumerate {describe_power(2, bits)} pairs of adjacent layer states, more "
            f"than max_states = {max_states:,}"
        )
    check_size(largest_functions(net.sizes), "noise_decomposition",
               "the per-coordinate conditional means of one layer", MAX_KEPT_VALUES)  # fmt: skip
    return None


def _messages_advice(
    spec: EstimatorBase, net: BinaryNetwork, full_cov: bool, max_states: int
) -> str:
    """What messages offer where enumeration is refused."""
    family = spec.layerwise_family()
    if net.n_layers == 1 or family is None:
        return ""
    why = _messages_refusal(spec, net, full_cov, max_states)
    if why is None:
        return " Pass engine='auto' or engine='layerwise' to split it by messages."
    return f" The split by messages does not apply either: {why}."


def _layerwise_parts(
    problem: Problem, spec: EstimatorBase, opts: dict[str, Any]
) -> Callable[[int], ExampleParts]:
    """Per example, the split by messages (:mod:`gradstat.engines.message_noise`), in the
    full layout, all examples in one pass."""
    with threads_for(problem.n_examples * score_noise_cost(problem.net.sizes)):
        means, parts = message_noise_parts(
            problem, spec.layerwise_family(), spec.code,
            np.ascontiguousarray(spec.encode(opts), dtype=np.float64), opts.get("baseline", "none"),
        )  # fmt: skip
    return lambda b: (means[b], parts[:, b], None)


ExampleParts = tuple[np.ndarray, np.ndarray, list[np.ndarray] | None]
"""One example's ``E[g_hat]``, per-source diagonals and (``full_cov``) matrices, in the
layout its estimates come in."""


def _joint_parts(
    problem: Problem, spec: EstimatorBase, opts: dict[str, Any], full_cov: bool, max_states: int
) -> Callable[[int], ExampleParts]:
    """Per example, the split from every noise state's estimate
    (:mod:`gradstat.engines.state_estimates`)."""
    net = problem.net
    k = spec.draws_per_estimate(opts)
    n_bits = spec.noise_size(net.hidden_sizes, opts)
    width = net.n_params if spec.full_layout else problem.n_compressed
    batch, geo = problem_batch(problem, spec.unit_mode(problem.mode))
    kopts, baselines = kernel_options(spec, opts, problem, max_states)
    cols = workspace_for(problem, spec, opts)

    def parts(b: int) -> ExampleParts:
        logp = np.empty(1 << n_bits)
        est = np.empty((1 << n_bits, width))
        with threads_for(est.size):
            if spec.batched:
                batched_state_estimates(problem, spec, b, logp, est)
            elif spec.jitted is not None:
                user_state_estimates(spec.jitted)(batch, geo, b, logp, est)
            else:
                one = slice(b, b + 1)
                state_estimates_kernel(
                    problem_batch(problem, spec.unit_mode(problem.mode), one)[0], geo,
                    spec.code, n_bits, kopts, baselines[one], cols, logp[None], est[None],
                )  # fmt: skip
        prob, grouped, bits = _grouped_states(logp, est, net.hidden_sizes, k)
        return source_parts(prob, grouped, bits, full_cov)

    return parts


def _cells_parts(
    problem: Problem, spec: EstimatorBase, full_cov: bool
) -> Callable[[int], ExampleParts]:
    """Per example, ARM's/DisARM's split on one stochastic layer from their cells
    (:mod:`gradstat.engines.cell_states`): layer 1's state, then the residual."""
    n1 = problem.net.hidden_sizes[0]
    S = 3**n1
    batch, geo = problem_batch(problem, spec.unit_mode(problem.mode))
    arm = spec.affine_in_cells

    def parts(b: int) -> ExampleParts:
        w, diff = np.empty(S), np.empty(S)
        est = np.empty((S, problem.n_compressed))
        width, state = np.empty((n1, 3)), np.empty((n1, 3))
        with threads_for(est.size):
            cell_estimates_kernel(not arm, batch, geo, b, w, diff, est, width, state)
        return cell_parts(w, diff, est, width, state, arm, full_cov)

    return parts


def _result(
    problem: Problem, spec: EstimatorBase, opts: dict[str, Any], engine: str, n_sources: int,
    example_parts: Callable[[int], ExampleParts], full_cov: bool, full: bool | None = None,
) -> NoiseDecomposition:  # fmt: skip
    """The batch's decomposition from its examples' parts (``1/B^2`` each), in the full
    layout (``full``; by default the estimator's own) or the compressed one."""
    net = problem.net
    full = spec.full_layout if full is None else full
    B = problem.n_examples
    width = net.n_params if full else problem.n_compressed
    means = np.zeros((B, width))
    diags = np.zeros((n_sources, B, width))
    cov = np.zeros((n_sources, net.n_params, net.n_params)) if full_cov else None
    for b in range(B):
        means[b], diags[:, b], mats = example_parts(b)
        if cov is not None and mats is not None:
            M = expansion_matrix(problem, b, full)
            for level, mat in enumerate(mats):
                cov[level] += M @ mat @ M.T
    mean = expand_mean(problem, means, full).mean(axis=0)
    parts = np.stack([expand_square(problem, d, full).sum(axis=0) for d in diags]) / B**2
    if cov is not None:
        cov /= B**2
    var = parts.sum(axis=0)
    check_reference(None, mean)
    spec.check_result(mean=mean, var=var, cov=cov)
    groups = {"all": slice(0, net.n_params), **net.parameter_groups()}
    sources = tuple(f"layer{l}" for l in range(1, net.n_layers + 1))
    if engine == "cells":
        sources += (RESIDUAL,)
    return NoiseDecomposition(
        estimator=spec.name, options=opts, engine=engine, n_examples=B, sources=sources,
        mean=mean, var=var, parts=parts, cov=cov, groups=groups,
    )  # fmt: skip
