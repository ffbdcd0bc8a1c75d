"""``gradstat report``: every registered estimator compared on a suite of networks.

A report analyses each network of a suite with each estimator (:func:`gradstat.analyze`)
and writes, into one output folder:

* ``results.csv``: one row per network x estimator x scope x metric, written
  incrementally (flushed after each analysis, so an interrupted run keeps what it did);
* ``tasks.jsonl``: one line per analysis with its whole result, which ``resume`` reads;
* ``results.json``: the same rows with the configuration and the networks;
* ``report.md``: Markdown tables of every metric, over all parameters and per layer;
* ``networks/<label>.npz``: every analysed network (:mod:`gradstat.storage`), so that a
  report can be rerun on the same network (``gradstat report --network FILE``);
* PNG plots (:mod:`gradstat.plots`, needs the ``plot`` extra).

The **default suite** is five architectures, each with seeds 0 and 1 and weight scale 1
(:meth:`gradstat.BinaryNetwork.random`): ``(4, 3, 1)`` mse, ``(4, 3, 3, 2)`` mse,
``(4, 3, 3, 3, 2)`` bce, ``(3, 4, 4, 3)`` xent and ``(4, 6, 1)`` linear. Every network
sees one example: the input ``x = 1`` (all ones) and the target of
:func:`default_target` (``0`` for mse, ``0.5`` for bce, class 0 for xent, ``1`` for
linear). The estimators are every registered one (:func:`gradstat.available_estimators`),
each with its default options, except ``reinforce``, which appears once per baseline
``none``, ``mean`` and ``optimal`` (:data:`ESTIMATOR_VARIANTS`). With ``method="auto"``
every metric is exact where the estimator's noise is discrete.

A configuration is a frozen :class:`ReportConfig`, built in Python, from a TOML file
(:meth:`ReportConfig.from_toml`) or from command-line options
(:meth:`ReportConfig.from_args`); :func:`run_report` runs it on :func:`gradstat.sweep`
(one task per network and estimator, serially by default, or on a process pool or a Dask
cluster), then writes the summary files and plots.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradstat import plots
from gradstat.analysis import DEFAULT_MC_SAMPLES, METHODS, AnalysisResult, analyze
from gradstat.estimators import available_estimators, get_estimator
from gradstat.metrics import METRICS
from gradstat.network import LOSSES, BinaryNetwork
from gradstat.storage import load_network

ESTIMATOR_VARIANTS: dict[str, list[dict[str, Any]]] = {
    "reinforce": [{"baseline": "none"}, {"baseline": "mean"}, {"baseline": "optimal"}],
}
"""Option sets compared per estimator by default (one row each); others use their defaults."""

CSV_COLUMNS: tuple[str, ...] = (
    "network",
    "sizes",
    "loss",
    "seed",
    "estimator",
    "options",
    "method",
    "engine",
    "scope",
    "metric",
    "value",
    "standard_error",
    "n_samples",
    "task",
    "status",
    "error",
)
"""Columns of ``results.csv`` (and keys of the rows of ``results.json``): ``engine`` is
how the analysis was computed (``joint``, ``cells``, ``layerwise`` or ``monte-carlo``;
``layerwise`` leaves sign agreement and descent probability NaN), ``task`` is the
analysis's identity (``"<network>/<estimator label>"``), ``status`` is ``ok`` or
``error``, and a failed analysis has one row, with its message in ``error``."""

SEEDINGS = ("common", "task")
"""Monte Carlo seeding of a report's analyses (:attr:`ReportConfig.seeding`)."""

RELATIVE_METRICS = ("relative_bias", "cosine", "sign_agreement", "descent_probability")
"""Scale-free metrics, summarised over networks in the report's overview."""

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def default_target(net: BinaryNetwork) -> np.ndarray | int:
    """The target a report uses: ``0`` (mse), ``0.5`` (bce), class 0 (xent), ``1`` (linear).

    The linear loss ``sum_k t_k y_k`` is identically zero at ``t = 0``, hence ``t = 1``.
    """
    if net.loss == "xent":
        return 0
    value = {"mse": 0.0, "bce": 0.5, "linear": 1.0}[net.loss]
    return np.full(net.n_out, value)


def _type_error(key: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"{key!r} must be {expected}, got {value!r} ({type(value).__name__})")


def _int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _type_error(key, f"an integer >= {minimum}", value)
    if value < minimum:
        raise ValueError(f"{key!r} must be an integer >= {minimum}, got {value}")
    return int(value)


def _str(value: Any, key: str, choices: Sequence[str] | None = None) -> str:
    if not isinstance(value, str):
        raise _type_error(key, "a string", value)
    if choices is not None and value not in choices:
        raise ValueError(f"{key!r} must be one of {list(choices)}, got {value!r}")
    return value


def _items(value: Any, key: str, expected: str) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise _type_error(key, expected, value)
    if not value:
        raise ValueError(f"{key!r} must not be empty")
    return tuple(value)


def _label(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise ValueError(
            f"{key!r} must be a string of letters, digits and _.+- (it names files), got {value!r}"
        )
    return value


@dataclass(frozen=True, eq=False)
class NetworkCase:
    """One analysed problem: a network, its input and target, and where it came from.

    Attributes
    ----------
    label : str
        Unique name (the ``network`` column, the file name under ``networks/``).
    net : BinaryNetwork
    x : ndarray (n_in,)
        The input, all ones.
    t : ndarray (n_out,) or int
        The target, :func:`default_target`.
    seed, scale : int or float, or None
        Of :meth:`BinaryNetwork.random`; None for a network read from a file.
    file : str or None
        The network file it was read from.
    """

    label: str
    net: BinaryNetwork
    x: np.ndarray = field(repr=False)
    t: np.ndarray | int = field(repr=False)
    seed: int | None = None
    scale: float | None = None
    file: str | None = None

    @classmethod
    def of(cls, label: str, net: BinaryNetwork, **source: Any) -> NetworkCase:
        """The case with the report's input ``x = 1`` and :func:`default_target`."""
        return cls(label, net, np.ones(net.n_in), default_target(net), **source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the network file path is relative to the output folder)."""
        return {
            "label": self.label,
            "sizes": list(self.net.sizes),
            "loss": self.net.loss,
            "seed": self.seed,
            "scale": self.scale,
            "file": self.file,
            "x": self.x.tolist(),
            "target": self.t if isinstance(self.t, int) else self.t.tolist(),
            "saved_as": f"networks/{self.label}.npz",
        }


@dataclass(frozen=True)
class RandomNetworks:
    """Random networks of one architecture, one per seed (:meth:`BinaryNetwork.random`).

    Attributes
    ----------
    sizes : tuple of int
        ``(n_in, n_1, ..., n_L, n_out)``.
    loss : {"mse", "bce", "xent", "linear"}
    scale : float
        Weight scale: weights ``N(0, scale^2 / fan_in)``, biases ``N(0, scale^2)``.
    seeds : tuple of int
        One network per seed.
    label : str, optional
        Prefix of the networks' labels (default ``"4-3-1_mse"`` style); each is
        ``<prefix>_seed<seed>``.
    """

    sizes: tuple[int, ...]
    loss: str = "mse"
    scale: float = 1.0
    seeds: tuple[int, ...] = (0,)
    label: str | None = None

    def __post_init__(self) -> None:
        sizes = _items(self.sizes, "sizes", "a list of integers")
        sizes = tuple(_int(s, "sizes", 0) for s in sizes)
        loss = _str(self.loss, "loss", sorted(LOSSES))
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)):
            raise _type_error("scale", "a number", self.scale)
        if not math.isfinite(self.scale) or self.scale < 0:
            raise ValueError(f"'scale' must be a finite number >= 0, got {self.scale}")
        seeds = _items(self.seeds, "seeds", "a list of integers")
        seeds = tuple(_int(s, "seeds", 0) for s in seeds)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"'seeds' repeats a seed: {list(seeds)}")
        BinaryNetwork(sizes, loss=loss)  # the architecture's own checks (widths, xent classes)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "label", _label(self.label, "label"))

    def cases(self) -> list[NetworkCase]:
        """One :class:`NetworkCase` per seed."""
        prefix = self.label or "-".join(map(str, self.sizes)) + f"_{self.loss}"
        return [
            NetworkCase.of(
                f"{prefix}_seed{seed}",
                BinaryNetwork.random(self.sizes, loss=self.loss, scale=self.scale, seed=seed),
                seed=seed,
                scale=self.scale,
            )
            for seed in self.seeds
        ]

    def to_dict(self) -> dict[str, Any]:
        """The TOML table of this entry."""
        out: dict[str, Any] = {
            "sizes": list(self.sizes),
            "loss": self.loss,
            "scale": self.scale,
            "seeds": list(self.seeds),
        }
        return out if self.label is None else {**out, "label": self.label}


@dataclass(frozen=True)
class NetworkFile:
    """A network saved with :meth:`BinaryNetwork.save` (read when the report runs).

    Attributes
    ----------
    file : str
        Path of the ``.npz`` file.
    label : str, optional
        The network's label (default: the file name without its suffix).
    """

    file: str
    label: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.file, os.PathLike):
            object.__setattr__(self, "file", os.fspath(self.file))
        _str(self.file, "file")
        object.__setattr__(self, "label", _label(self.label, "label"))

    def cases(self) -> list[NetworkCase]:
        """The one :class:`NetworkCase` of the file."""
        label = self.label or _label(Path(self.file).stem, f"label (from file {self.file!r})")
        return [NetworkCase.of(label, load_network(self.file), file=self.file)]

    def to_dict(self) -> dict[str, Any]:
        """The TOML table of this entry."""
        return (
            {"file": self.file} if self.label is None else {"file": self.file, "label": self.label}
        )


NetworkSpec = RandomNetworks | NetworkFile

DEFAULT_NETWORKS: tuple[NetworkSpec, ...] = (
    RandomNetworks((4, 3, 1), "mse", seeds=(0, 1)),
    RandomNetworks((4, 3, 3, 2), "mse", seeds=(0, 1)),
    RandomNetworks((4, 3, 3, 3, 2), "bce", seeds=(0, 1)),
    RandomNetworks((3, 4, 4, 3), "xent", seeds=(0, 1)),
    RandomNetworks((4, 6, 1), "linear", seeds=(0, 1)),
)
"""The built-in suite: several depths, widths and losses, seeds 0 and 1."""


@dataclass(frozen=True)
class EstimatorSpec:
    """A registered estimator with its options, as one row of the comparison.

    Attributes
    ----------
    name : str
        A name from :func:`gradstat.available_estimators`.
    options : mapping
        Options checked by the registry (e.g. ``{"baseline": "optimal"}``).
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = get_estimator(self.name)
        if not isinstance(self.options, Mapping):
            raise _type_error("options", "a table of estimator options", self.options)
        spec.resolve_options(self.options)
        object.__setattr__(self, "options", dict(self.options))

    @property
    def label(self) -> str:
        """``name`` followed by ``key=value`` per option, e.g. ``reinforce baseline=mean``."""
        return self.name + "".join(f" {k}={v}" for k, v in self.options.items())

    @classmethod
    def parse(cls, text: str) -> EstimatorSpec:
        """From ``"name"`` or ``"name:key=value,key=value"`` (values: numbers or strings)."""
        name, _, rest = _str(text, "estimators").partition(":")
        options: dict[str, Any] = {}
        for item in filter(None, rest.split(",")):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(
                    f"estimator option {item!r} in {text!r} must be key=value "
                    "(e.g. reinforce:baseline=optimal)"
                )
            options[key.strip()] = _number_or_text(value.strip())
        return cls(name.strip(), options)

    def to_dict(self) -> dict[str, Any]:
        """The TOML table of this entry."""
        return {"name": self.name, "options": dict(self.options)}


def _number_or_text(value: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def default_estimators() -> tuple[EstimatorSpec, ...]:
    """Every registered estimator, expanded by :data:`ESTIMATOR_VARIANTS`."""
    return tuple(
        EstimatorSpec(name, options)
        for name in available_estimators()
        for options in ESTIMATOR_VARIANTS.get(name, [{}])
    )


@dataclass(frozen=True)
class ReportConfig:
    """What a report analyses and where it writes; every field is checked on creation.

    Attributes
    ----------
    networks : tuple of RandomNetworks or NetworkFile
        Default :data:`DEFAULT_NETWORKS`.
    estimators : tuple of EstimatorSpec
        Default :func:`default_estimators` (the registry at the time the config is made).
    metrics : tuple of str
        Names from :data:`gradstat.METRICS` (default all of them).
    method : {"auto", "exact", "mc"}
        As in :func:`gradstat.analyze`.
    n_samples : int or None
        Monte Carlo draws per analysis (None: ``analyze``'s default); not allowed with
        ``method="exact"``.
    mc_seed : int
        Seed of the Monte Carlo analyses (the sweep seed).
    seeding : {"task", "common"}
        ``"task"`` (default): each analysis gets its own seed, derived from ``mc_seed`` and
        its identity (:func:`gradstat.sweep.task_seed`): independent draws across the
        grid, the same whatever the executor or the order of completion. ``"common"``:
        every Monte Carlo analysis uses ``mc_seed``, so estimators that read the same
        uniforms see common random numbers.
    plots : bool
        Draw the PNG plots (needs matplotlib).
    out : str
        Output folder used when :func:`run_report` is given none.

    Raises
    ------
    TypeError, ValueError
        Naming the field (``'n_samples' must be an integer >= 2, got ...``).
    """

    networks: tuple[NetworkSpec, ...] = DEFAULT_NETWORKS
    estimators: tuple[EstimatorSpec, ...] = field(default_factory=default_estimators)
    metrics: tuple[str, ...] = METRICS
    method: str = "auto"
    n_samples: int | None = None
    mc_seed: int = 0
    plots: bool = True
    out: str = "gradstat-report"
    seeding: str = "task"

    def __post_init__(self) -> None:
        networks = _items(self.networks, "networks", "a list of network tables")
        for k, spec in enumerate(networks):
            if not isinstance(spec, (RandomNetworks, NetworkFile)):
                raise _type_error(f"networks[{k}]", "RandomNetworks or NetworkFile", spec)
        estimators = _items(self.estimators, "estimators", "a list of estimators")
        for k, spec in enumerate(estimators):
            if not isinstance(spec, EstimatorSpec):
                raise _type_error(f"estimators[{k}]", "an EstimatorSpec", spec)
        labels = [spec.label for spec in estimators]
        if len(set(labels)) != len(labels):
            raise ValueError(f"'estimators' lists the same estimator twice: {labels}")
        metrics = tuple(
            _str(m, "metrics", METRICS)
            for m in _items(self.metrics, "metrics", "a list of metric names")
        )
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"'metrics' repeats a metric: {list(metrics)}")
        _str(self.method, "method", METHODS)
        if self.n_samples is not None:
            _int(self.n_samples, "n_samples", 2)
            if self.method == "exact":
                raise ValueError("'n_samples' is only used with method 'mc' or 'auto'")
        _int(self.mc_seed, "mc_seed", 0)
        _str(self.seeding, "seeding", SEEDINGS)
        if not isinstance(self.plots, bool):
            raise _type_error("plots", "true or false", self.plots)
        if isinstance(self.out, os.PathLike):
            object.__setattr__(self, "out", os.fspath(self.out))
        if not _str(self.out, "out"):
            raise ValueError("'out' must name a folder, got ''")
        object.__setattr__(self, "networks", networks)
        object.__setattr__(self, "estimators", estimators)
        object.__setattr__(self, "metrics", metrics)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, base_dir: str | os.PathLike[str] | None = None
    ) -> ReportConfig:
        """A config from the TOML schema (see :meth:`from_toml`) as a dict.

        Relative ``file`` and ``out`` paths are taken relative to ``base_dir`` when given.
        Errors name the key, e.g. ``networks[1]: 'sizes' must be a list of integers``.
        """
        if not isinstance(data, Mapping):
            raise _type_error("config", "a table", data)
        _check_keys(data, [f.name for f in dataclasses.fields(cls)], "the config's top level")
        kwargs = dict(data)
        if "networks" in data:
            items = _items(data["networks"], "networks", "an array of network tables")
            kwargs["networks"] = tuple(
                _network_spec(item, f"networks[{k}]", base_dir) for k, item in enumerate(items)
            )
        if "estimators" in data:
            items = _items(data["estimators"], "estimators", "an array of names or tables")
            kwargs["estimators"] = tuple(
                _estimator_spec(item, f"estimators[{k}]") for k, item in enumerate(items)
            )
        if "metrics" in data:
            kwargs["metrics"] = _items(data["metrics"], "metrics", "a list of metric names")
        if base_dir is not None and isinstance(data.get("out"), str):
            kwargs["out"] = os.fspath(Path(base_dir) / data["out"])
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> ReportConfig:
        """Read a TOML config; relative paths in it are relative to its folder.

        Top-level keys (all optional): ``method``, ``n_samples``, ``mc_seed``, ``seeding``,
        ``metrics``, ``plots``, ``out``, ``estimators`` (names, ``"name:key=value"`` strings
        or tables ``{name = ..., options = {...}}``) and ``[[networks]]`` tables with either
        ``sizes``, ``loss``, ``scale``, ``seeds`` (and optional ``label``) or ``file`` (and
        optional ``label``).

        Raises
        ------
        FileNotFoundError
            If there is no such file.
        ValueError, TypeError
            Invalid TOML, unknown keys (the message lists the allowed ones) or wrong types
            (the message names the key and the expected type), prefixed by the file name.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config {str(path)!r} is not valid TOML: {err}") from None
        try:
            return cls.from_mapping(data, base_dir=path.parent)
        except (TypeError, ValueError) as err:
            raise type(err)(f"config {str(path)!r}: {err}") from None

    @classmethod
    def from_args(
        cls,
        *,
        base: ReportConfig | None = None,
        sizes: Sequence[Sequence[int]] | None = None,
        loss: str | None = None,
        scale: float | None = None,
        seeds: Sequence[int] | None = None,
        network_files: Sequence[str] | None = None,
        estimators: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
        method: str | None = None,
        n_samples: int | None = None,
        mc_seed: int | None = None,
        plots: bool | None = None,
        out: str | None = None,
        seeding: str | None = None,
    ) -> ReportConfig:
        """A config from command-line values: each one given replaces that of ``base``.

        ``base`` defaults to ``ReportConfig()`` (the built-in suite). ``sizes`` (one
        architecture per entry) and ``network_files`` together replace the networks;
        ``loss``, ``scale`` and ``seeds`` then apply to every random network (of the new
        list, or of the base's). ``estimators`` are ``"name"`` or
        ``"name:key=value,..."`` strings (e.g. ``"reinforce:baseline=optimal"``).
        """
        config = ReportConfig() if base is None else base
        changes: dict[str, Any] = {}
        networks: tuple[NetworkSpec, ...] = config.networks
        if sizes is not None or network_files is not None:
            networks = tuple(RandomNetworks(tuple(s)) for s in sizes or ()) + tuple(
                NetworkFile(f) for f in network_files or ()
            )
        overrides = {
            k: v for k, v in (("loss", loss), ("scale", scale), ("seeds", seeds)) if v is not None
        }
        changes["networks"] = tuple(
            dataclasses.replace(spec, **overrides) if isinstance(spec, RandomNetworks) else spec
            for spec in networks
        )
        if estimators is not None:
            changes["estimators"] = tuple(EstimatorSpec.parse(e) for e in estimators)
        given = {"metrics": metrics, "method": method, "n_samples": n_samples,
                 "mc_seed": mc_seed, "plots": plots, "out": out, "seeding": seeding}  # fmt: skip
        changes.update({k: v for k, v in given.items() if v is not None})
        if method == "exact" and n_samples is None:
            changes["n_samples"] = None
        return dataclasses.replace(config, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The config in the TOML schema (``from_mapping(to_dict())`` gives it back)."""
        out: dict[str, Any] = {
            "networks": [spec.to_dict() for spec in self.networks],
            "estimators": [spec.to_dict() for spec in self.estimators],
            "metrics": list(self.metrics),
            "method": self.method,
            "mc_seed": self.mc_seed,
            "seeding": self.seeding,
            "plots": self.plots,
            "out": self.out,
        }
        return out if self.n_samples is None else {**out, "n_samples": self.n_samples}


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown} in {where}; allowed keys: {', '.join(sorted(allowed))}"
        )


def _network_spec(item: Any, where: str, base_dir: str | os.PathLike[str] | None) -> NetworkSpec:
    if not isinstance(item, Mapping):
        raise _type_error(where, "a table", item)
    try:
        if "file" in item:
            _check_keys(item, ["file", "label"], f"{where} (a network read from a file)")
            path = _str(item["file"], "file")
            if base_dir is not None:
                path = os.fspath(Path(base_dir) / path)
            return NetworkFile(path, item.get("label"))
        _check_keys(item, ["sizes", "loss", "scale", "seeds", "label"], where)
        if "sizes" not in item:
            raise ValueError("missing key 'sizes' (or give 'file' for a saved network)")
        return RandomNetworks(**item)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None


def _estimator_spec(item: Any, where: str) -> EstimatorSpec:
    try:
        if isinstance(item, str):
            return EstimatorSpec.parse(item)
        if not isinstance(item, Mapping):
            raise _type_error(where, "a name or a table {name = ..., options = {...}}", item)
        _check_keys(item, ["name", "options"], where)
        if "name" not in item:
            raise ValueError("missing key 'name'")
        return EstimatorSpec(_str(item["name"], "name"), item.get("options", {}))
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None


@dataclass(frozen=True)
class Record:
    """One analysis of a report: a network, an estimator and :func:`analyze`'s result."""

    case: NetworkCase
    estimator: EstimatorSpec
    result: AnalysisResult = field(repr=False)


@dataclass(frozen=True)
class ReportResult:
    """What :func:`run_report` did.

    Attributes
    ----------
    out_dir : Path
    config : ReportConfig
    cases : tuple of NetworkCase
        Every network of the suite (also those an interrupted run did not reach).
    records : tuple of Record
        The analyses that succeeded, in the order of the config (networks, then
        estimators), including those reused by ``resume``.
    rows : tuple of dict
        The rows of ``results.csv`` (keys :data:`CSV_COLUMNS`; None where empty), in the
        order of the config (``results.csv`` itself is in the order analyses finished).
    files : tuple of Path
        Everything written.
    plots_note : str or None
        Why the plots were not drawn (None when they were).
    interrupted : bool
        True when a ``KeyboardInterrupt`` stopped the analyses.
    wall_time : float
        Seconds from the start to the plots drawn (the two summary files take a moment
        more).
    failures : tuple of (NetworkCase, EstimatorSpec, str)
        The analyses that failed, with their error messages.
    reused : int
        Analyses read back from an earlier run (``resume``) instead of computed.
    executor : str
        Where the analyses ran, e.g. ``"serially in this process"``.
    """

    out_dir: Path
    config: ReportConfig = field(repr=False)
    cases: tuple[NetworkCase, ...] = field(repr=False)
    records: tuple[Record, ...] = field(repr=False)
    rows: tuple[dict[str, Any], ...] = field(repr=False)
    files: tuple[Path, ...] = field(repr=False)
    plots_note: str | None
    interrupted: bool
    wall_time: float
    failures: tuple[tuple[NetworkCase, EstimatorSpec, str], ...] = field(default=(), repr=False)
    reused: int = 0
    executor: str = "serially in this process"

    @property
    def n_planned(self) -> int:
        """Number of analyses the config asks for."""
        return len(self.cases) * len(self.config.estimators)


class ReportInterrupted(KeyboardInterrupt):
    """Raised by :func:`run_report` on Ctrl-C once the partial report is written.

    Attributes
    ----------
    result : ReportResult
        What was done (``result.interrupted`` is True).
    """

    def __init__(self, result: ReportResult) -> None:
        done = len(result.records) + len(result.failures)
        super().__init__(
            f"interrupted after {done} of {result.n_planned} analyses; "
            f"partial report in {result.out_dir} (finish it with --resume)"
        )
        self.result = result


def result_rows(
    case: NetworkCase, result: AnalysisResult, metrics: Sequence[str] = METRICS
) -> list[dict[str, Any]]:
    """The ``results.csv`` rows of one analysis: one per scope and metric.

    Scopes are ``all``, ``stochastic``, ``layer1..layerL`` and ``output``;
    ``standard_error`` and ``n_samples`` are None for exact results.
    """
    options = json.dumps(result.options, sort_keys=True)
    errors = result.standard_errors
    return [
        {
            "network": case.label,
            "sizes": ",".join(map(str, case.net.sizes)),
            "loss": case.net.loss,
            "seed": case.seed,
            "estimator": result.estimator,
            "options": options,
            "method": result.method,
            "engine": result.engine,
            "scope": scope,
            "metric": metric,
            "value": getattr(values, metric),
            "standard_error": None if errors is None else getattr(errors[scope], metric),
            "n_samples": result.n_samples,
        }
        for scope, values in result.scopes().items()
        for metric in metrics
    ]


def format_table(
    rows: Sequence[tuple[str, AnalysisResult]],
    scopes: Sequence[str] = ("all",),
    metrics: Sequence[str] = METRICS,
) -> str:
    """A Markdown table of ``metrics`` per labelled result (and per scope when several).

    Exact values print as ``0.1234``; Monte Carlo values as ``0.1234 ± 0.0012``.
    """
    scope_column = len(scopes) > 1
    head = ["estimator", *(["scope"] if scope_column else []), *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, result in rows:
        for scope in scopes:
            values = result.scopes()[scope]
            se = result.standard_errors[scope] if result.standard_errors else None
            cells = [label, *([scope] if scope_column else [])]
            for name in metrics:
                v = getattr(values, name)
                cells.append(f"{v:.4g}" if se is None else f"{v:.4g} ± {getattr(se, name):.2g}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def analyze_case(
    case: NetworkCase, spec: EstimatorSpec, method: Mapping[str, Any]
) -> AnalysisResult:
    """One analysis of a report: :func:`gradstat.analyze` of ``case`` with ``spec``.

    ``method`` holds ``analyze``'s method options (``method``, ``n_samples``, ``seed``;
    :func:`gradstat.sweep.method_options`).
    """
    return analyze(case.net, case.x, case.t, spec.name, **method, **spec.options)


def run_report(
    config: ReportConfig,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    executor: Any = "serial",
    resume: bool = False,
    retries: int = 2,
) -> ReportResult:
    """Analyse every network of ``config`` with every estimator and write the report.

    The analyses run on :func:`gradstat.sweep` (one task per network and estimator),
    which writes ``results.csv`` and ``tasks.jsonl`` as they complete.

    Parameters
    ----------
    config : ReportConfig
    out_dir : str or path-like, optional
        Output folder (created if needed; default ``config.out``). Existing report files
        in it are replaced (kept with ``resume``).
    executor : "serial", None, int, concurrent.futures.Executor or distributed.Client
        Where the analyses run (see :func:`gradstat.sweep`); default ``"serial"``: one
        after the other in this process.
    resume : bool
        Reuse the analyses that succeeded in an earlier run into ``out_dir`` and run the
        others (those never run and those that failed).
    retries : int
        Reruns of an analysis whose worker process died.

    Returns
    -------
    ReportResult

    Raises
    ------
    ReportInterrupted
        On ``KeyboardInterrupt`` during the analyses, after ``results.csv`` (already
        holding every finished analysis), ``results.json`` and ``report.md`` have been
        written for what was done; its ``result`` attribute is the partial
        :class:`ReportResult`.
    ValueError, TypeError
        From a network file that cannot be read, duplicate network labels, a bad
        ``executor``, or ``resume`` into a folder written by another grid. An analysis
        that raises does not stop the report: it is listed as failed.
    """
    from gradstat.sweep import run_sweep  # gradstat.sweep builds on this module

    started = time.perf_counter()
    out = Path(config.out if out_dir is None else out_dir)
    swept = run_sweep(
        config, out, executor=executor, resume=resume, retries=retries, progress="gradstat report"
    )
    tasks = {task.identity: task for task in swept.tasks}
    records, failures = [], []
    for outcome in swept.outcomes:
        task = tasks[outcome.identity]
        if outcome.ok:
            records.append(Record(task.case, task.estimator, outcome.result))
        else:
            failures.append((task.case, task.estimator, outcome.error))
    files = list(swept.files)
    interrupted = swept.interrupted
    if interrupted:
        note = "not drawn: the run was interrupted"
    elif not config.plots:
        note = "not drawn: plots are switched off (`plots = false` or `--no-plots`)"
    elif not records:
        note = "not drawn: no analysis succeeded"
    else:
        try:
            files += plots.write_plots(records, out, config.metrics)
            note = None
        except ImportError:
            note = f"skipped: matplotlib is not installed; get them with `{plots.INSTALL_HINT}`"
    files += [out / "results.json", out / "report.md"]
    result = ReportResult(
        out,
        config,
        swept.cases,
        tuple(records),
        swept.rows,
        tuple(files),
        note,
        interrupted,
        time.perf_counter() - started,
        tuple(failures),
        swept.reused,
        swept.executor,
    )
    write_results_json(
        out / "results.json",
        config,
        result.cases,
        result.rows,
        planned=result.n_planned,
        done=len(records) + len(failures),
        failed=len(failures),
        reused=result.reused,
        complete=not interrupted,
        wall_time=result.wall_time,
        executor=result.executor,
    )
    (out / "report.md").write_text(format_report(result), encoding="utf-8")
    if interrupted:
        raise ReportInterrupted(result)
    return result


def _json_value(value: Any) -> Any:
    # JSON has no NaN or infinity: write them as the strings Python's float() reads back.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_results_json(
    path: Path,
    config: ReportConfig,
    cases: Sequence[NetworkCase],
    rows: Sequence[Mapping[str, Any]],
    *,
    planned: int,
    done: int,
    failed: int = 0,
    reused: int = 0,
    complete: bool = True,
    wall_time: float = 0.0,
    executor: str = "",
) -> None:
    """Write ``results.json``: an indented header, then one line per row (thousands of
    rows stay easy to page); NaN and infinity as the strings ``"nan"``, ``"inf"``."""
    head = {
        "gradstat_report": 1,
        "complete": complete,
        "analyses_done": done,
        "analyses_planned": planned,
        "analyses_failed": failed,
        "analyses_reused": reused,
        "executor": executor,
        "wall_time_s": wall_time,
        "config": config.to_dict(),
        "networks": [case.to_dict() for case in cases],
        "columns": list(CSV_COLUMNS),
    }
    lines = [
        json.dumps({k: _json_value(v) for k, v in row.items()}, allow_nan=False) for row in rows
    ]
    text = json.dumps(head, indent=1, allow_nan=False)[:-2]
    text += ',\n "rows": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"
    path.write_text(text, encoding="utf-8")


def _median(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.median(kept)) if kept else float("nan")


def _overview(result: ReportResult) -> str:
    metrics = [m for m in (*RELATIVE_METRICS, "median_snr") if m in result.config.metrics]
    if not metrics:
        return "No scale-free metric was selected."
    lines = [
        "| estimator | networks | " + " | ".join(metrics) + " |",
        "|" + "---|" * (len(metrics) + 2),
    ]
    for spec in result.config.estimators:
        done = [r.result for r in result.records if r.estimator == spec]
        if not done:
            continue
        cells = [f"{_median([getattr(r.overall, m) for r in done]):.4g}" for m in metrics]
        lines.append(f"| {spec.label} | {len(done)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PLOT_TEXT = {
    "bias_variance.png": (
        "Bias against spread, one point per network and estimator: x is "
        "`sqrt(tr Var[g_hat]) / ||g||` (the spread of one draw), y is the relative bias "
        "`||E[g_hat] - g|| / ||g||` (symmetric-log axis, so unbiased estimators sit on 0); "
        "left all parameters, right the stochastic layers'."
    ),
    "metrics_vs_depth.png": (
        "Each selected metric (all parameters) against the number L of stochastic layers: "
        "the median over the networks of that depth, one line per estimator."
    ),
    "cosine_vs_samples.png": (
        "Cosine similarity against the number M of independent draws averaged, one panel "
        "per network. Dotted lines: `cos(E[g_hat], g)`, the M -> infinity limit, for every "
        "estimator. Solid curves (exact-moment results only): the proxy "
        "`cos_M = <E g_hat, g> / (||g|| sqrt(||E g_hat||^2 + tr Var[g_hat] / M))`, i.e. "
        "`E<g_M, g> / (||g|| sqrt(E||g_M||^2))` for the M-sample average `g_M`: the cosine "
        "of g with the root-mean-square M-average. It is **not** `E[cos(g_M, g)]`, which "
        "has no closed form; it tends to the dotted limit as M grows."
    ),
    "rmse_vs_samples.png": (
        "Relative RMSE of the M-sample average against M, one panel per network: "
        "`sqrt((||bias||^2 + tr Var[g_hat] / M) / ||g||^2) = sqrt(E||g_M - g||^2) / ||g||`. "
        "Exact for exact-moment results (solid); for Monte Carlo results (dashed) a "
        "plug-in estimate with the debiased `||bias||^2`."
    ),
}
"""What each plot shows, as written into ``report.md``."""


def format_report(result: ReportResult) -> str:
    """The Markdown text of ``report.md``."""
    config = result.config
    done = len(result.records) + len(result.failures)
    methods = sorted({r.result.method for r in result.records}) or [config.method]
    method = ", ".join(methods)
    if "mc" in methods:
        draws = config.n_samples or DEFAULT_MC_SAMPLES
        method += f" ({draws} draws per Monte Carlo analysis, seed {config.mc_seed})"
    lines = [
        "# gradstat report",
        "",
        f"{len(result.cases)} networks x {len(config.estimators)} estimators; "
        f"{done} of {result.n_planned} analyses in {result.wall_time:.1f} s; method: {method}.",
        "",
    ]
    if result.reused:
        lines += [
            f"{result.reused} analyses were read back from an earlier run (`--resume`); the "
            f"others ran {result.executor}.",
            "",
        ]
    if result.failures:
        lines += [
            f"**{len(result.failures)} analyses failed**: listed under [Failed "
            "analyses](#failed-analyses); `--resume` runs them again.",
            "",
        ]
    if result.interrupted:
        lines += [
            f"**Interrupted** after {done} of {result.n_planned} analyses: the tables and "
            "files below cover only what was done.",
            "",
        ]
    lines += [
        "Each network sees one example: input `x = 1` (all ones) and target 0 (mse), 0.5 "
        "(bce), class 0 (xent) or 1 (linear). Metrics follow SPEC section 3: `bias_norm = "
        "||E[g_hat] - g||`, `relative_bias = bias_norm / ||g||`, `total_variance = tr Var`, "
        "`mse = bias_norm^2 + total_variance`, `cosine = cos(E[g_hat], g)`, "
        "`sign_agreement`, `descent_probability = P(<g_hat, g> > 0)` and `median_snr` (the "
        "median over coordinates of `|E g_hat_j| / sd g_hat_j`). Monte Carlo values read "
        "`value ± standard error`.",
        "",
        "## Overview",
        "",
        "Median over the networks analysed, all parameters:",
        "",
        _overview(result),
        "",
        "## Plots",
        "",
    ]
    if result.plots_note is not None:
        lines += [f"Plots {result.plots_note}.", ""]
    else:
        for name, text in PLOT_TEXT.items():
            lines += [f"![{name}]({name})", "", text, ""]
    lines += ["## Networks", ""]
    for case in result.cases:
        rows = [(r.estimator.label, r.result) for r in result.records if r.case is case]
        if not rows:
            continue
        source = (
            f"read from `{case.file}`" if case.file else f"seed {case.seed}, scale {case.scale:g}"
        )
        g_norm = float(np.linalg.norm(rows[0][1].gradient))
        lines += [
            f"### {case.label}",
            "",
            f"`{case.net!r}`, {source}; `||g|| = {g_norm:.4g}`. Saved as "
            f"`networks/{case.label}.npz` (rerun: `gradstat report --network "
            f"{result.out_dir / 'networks' / (case.label + '.npz')}`).",
            "",
            "All parameters:",
            "",
            format_table(rows, ("all",), config.metrics),
            "",
            "Per layer (`stochastic` is every stochastic layer together):",
            "",
            format_table(rows, tuple(rows[0][1].scopes())[1:], config.metrics),
            "",
        ]
    if result.failures:
        lines += ["## Failed analyses", "", "| network | estimator | error |", "|---|---|---|"]
        for case, spec, error in result.failures:
            message = " ".join(str(error).split()).replace("|", "\\|")
            lines.append(f"| {case.label} | {spec.label} | {message} |")
        lines.append("")
    lines += ["## Files", ""]
    for path in result.files:
        lines.append(f"* `{path.relative_to(result.out_dir).as_posix()}`")
    lines += [
        "",
        "`results.csv` has one row per network x estimator x scope x metric (columns "
        f"{', '.join(f'`{c}`' for c in CSV_COLUMNS)}); `standard_error` and `n_samples` "
        "are empty for exact values. `results.json` holds the same rows (NaN and infinity "
        "as the strings `nan`, `inf`), the config and the networks.",
        "",
    ]
    return "\n".join(lines)
