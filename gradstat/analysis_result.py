"""``AnalysisResult``: what :func:`gradstat.analysis.analyze` returns, the metrics of
docs/model.md, section 3 for one estimator on one problem, with their standard errors
when sampled, as a table, a dictionary, JSON or rows of ``results.csv``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstat._frames import frame_of
from gradstat.metrics import METRICS, ScopeMetrics, snr

ROW_COLUMNS = (
    "estimator",
    "options",
    "method",
    "engine",
    "scope",
    "metric",
    "value",
    "standard_error",
    "n_samples",
)
"""The keys of :meth:`AnalysisResult.rows`: the columns of ``results.csv`` that describe one
analysis (a sweep adds the network's and the task's)."""


def _overall(name: str) -> property:
    """A metric over all parameters, read from ``result.overall``."""
    return property(
        lambda self: getattr(self.overall, name),
        doc=f"``{name}`` over all parameters (``overall.{name}``).",
    )


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Bias, variance and agreement metrics of one estimator on one problem.

    Returned by :func:`analyze`: exact values, or Monte Carlo estimates with standard errors.

    Attributes
    ----------
    estimator : str
        The estimator's name.
    options : dict
        The estimator's resolved options.
    method : {"exact", "mc"}
    engine : str
        ``"joint"`` (enumeration of all noise states), ``"cells"`` (ARM/DisARM's ``3^N``
        cells of ``u``), ``"layerwise"`` (messages over adjacent layers: exact mean and
        variance, NaN sign agreement and descent probability) or ``"monte-carlo"``.
    n_examples : int
    n_samples : int or None
        Monte Carlo draws (None when exact).
    seed : int or None
        The int that reproduces the draws (None when exact, or for a spawned SeedSequence).
    gradient, mean, var : ndarray (n_params,)
        Exact gradient, estimator mean and per-coordinate variance of the batch estimate
        (Monte Carlo estimates of the last two when ``method="mc"``).
    sign_probability : ndarray (n_params,)
        ``P(sign g_hat_j = sign g_j)`` averaged over examples.
    overall, stochastic : ScopeMetrics
        Metrics over all parameters and over the stochastic layers' parameters.
    layers : dict[str, ScopeMetrics]
        Per layer: ``layer1..layerL`` and ``output``.
    standard_errors : dict[str, ScopeMetrics] or None
        Monte Carlo standard errors of every scalar, keyed ``all``, ``stochastic`` and
        the layer names (None when exact).
    reference : str
        What ``gradient`` is: ``"exact"`` (the binary network's exact gradient), or for
        the noisy rectifier, a different model, ``"rectifier-exact"`` (its closed form) or
        ``"own-mean"`` (the Monte Carlo mean of its own draws: bias zero by construction).
    uncalibrated : dict[str, tuple[str, ...]] or None
        Monte Carlo only, keyed as ``standard_errors``: the metrics of each scope whose
        value is reported but whose standard error is NaN, because at this ``n_samples``
        no standard error would cover (``bias_norm`` and ``relative_bias`` of an
        estimator whose bias is not clearly above its noise, a ``cosine`` of almost
        exactly +-1, decided on the first half of the draws; see
        :func:`gradstat.metrics.jackknife_metrics`). More draws usually calibrate them.
    """

    estimator: str
    options: dict[str, Any]
    method: str
    engine: str
    n_examples: int
    n_samples: int | None
    seed: int | None
    gradient: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    var: np.ndarray = field(repr=False)
    sign_probability: np.ndarray = field(repr=False)
    overall: ScopeMetrics = field(repr=False)
    stochastic: ScopeMetrics = field(repr=False)
    layers: dict[str, ScopeMetrics] = field(repr=False)
    standard_errors: dict[str, ScopeMetrics] | None = field(repr=False)
    reference: str = "exact"
    uncalibrated: dict[str, tuple[str, ...]] | None = None

    @property
    def bias(self) -> np.ndarray:
        """``E[g_hat] - g`` (vector)."""
        return self.mean - self.gradient

    @property
    def snr(self) -> np.ndarray:
        """Per-coordinate ``|E g_hat_j| / sqrt(Var g_hat_j)``."""
        return snr(self.mean, self.var)

    bias_norm = _overall("bias_norm")
    relative_bias = _overall("relative_bias")
    total_variance = _overall("total_variance")
    mse = _overall("mse")
    cosine = _overall("cosine")
    sign_agreement = _overall("sign_agreement")
    descent_probability = _overall("descent_probability")
    median_snr = _overall("median_snr")

    def scopes(self) -> dict[str, ScopeMetrics]:
        """All scopes: ``all``, ``stochastic``, then each layer."""
        return {"all": self.overall, "stochastic": self.stochastic, **self.layers}

    def rows(self, metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
        """One dict per scope and metric: the per-analysis columns of ``results.csv``.

        Keys ``estimator``, ``options`` (JSON, sorted keys), ``method``, ``engine``,
        ``scope``, ``metric``, ``value``, ``standard_error`` and ``n_samples`` (None for an
        exact result), in that order; scopes as :meth:`scopes`.
        """
        options = json.dumps(self.options, sort_keys=True)
        errors = self.standard_errors
        return [
            {
                "estimator": self.estimator,
                "options": options,
                "method": self.method,
                "engine": self.engine,
                "scope": scope,
                "metric": metric,
                "value": getattr(values, metric),
                "standard_error": None if errors is None else getattr(errors[scope], metric),
                "n_samples": self.n_samples,
            }
            for scope, values in self.scopes().items()
            for metric in metrics
        ]

    def to_frame(self, metrics: Sequence[str] = METRICS) -> Any:
        """This result as a tidy :class:`pandas.DataFrame`, one row per scope and metric.

        The columns of :meth:`rows`, with the dtypes of
        :func:`gradstat.sweep.load_results` (``Int64``, ``Float64`` and ``string``, a
        missing value as ``pd.NA``; ``value`` a plain float, NaN where a metric is
        undefined), so that frames of single analyses and of sweeps concatenate.

        Raises
        ------
        ImportError
            Without pandas (``pip install "gradstat[pandas]"``).

        Examples
        --------
        >>> import numpy as np, gradstat as gs
        >>> net = gs.BinaryNetwork.random((2, 3, 1), seed=0)
        >>> frame = gs.analyze(net, np.ones(2), np.zeros(1), "st").to_frame()
        >>> frame.pivot(index="scope", columns="metric", values="value")  # doctest: +SKIP
        """
        return frame_of(self.rows(metrics), ROW_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict.

        Top-level metric keys are the metric names over all parameters; ``"stochastic"`` and
        ``"layers"`` hold the restrictions; ``"standard_errors"`` (Monte Carlo only) mirrors
        ``{"all": ..., "stochastic": ..., "<layer>": ...}``.
        """
        out: dict[str, Any] = {
            "estimator": self.estimator,
            "options": dict(self.options),
            "method": self.method,
            "engine": self.engine,
            "n_examples": self.n_examples,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "reference": self.reference,
        }
        out.update(self.overall.to_dict())
        out["stochastic"] = self.stochastic.to_dict()
        out["layers"] = {k: v.to_dict() for k, v in self.layers.items()}
        out["standard_errors"] = (
            None
            if self.standard_errors is None
            else {k: v.to_dict() for k, v in self.standard_errors.items()}
        )
        flagged = self.uncalibrated
        out["uncalibrated"] = None if flagged is None else {k: list(v) for k, v in flagged.items()}
        return out

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        head = f"AnalysisResult(estimator={self.estimator!r}{', ' + opts if opts else ''}, "
        head += f"method={self.method!r}, engine={self.engine!r}, examples={self.n_examples}"
        if self.n_samples is not None:
            head += f", n_samples={self.n_samples}, seed={self.seed}"
        if self.reference != "exact":
            head += f", reference={self.reference!r}"
        lines = [head + ")", f"  {'metric':<22}{'all params':>24}{'stochastic layers':>24}"]
        se = self.standard_errors
        for name in METRICS:
            cells = []
            for scope, metrics in (("all", self.overall), ("stochastic", self.stochastic)):
                value = getattr(metrics, name)
                if se is None:
                    cells.append(f"{value:>24.6g}")
                else:
                    cells.append(f"{value:>13.6g} ± {getattr(se[scope], name):<8.2g}")
            lines.append(f"  {name:<22}" + "".join(cells))
        return "\n".join(lines)
