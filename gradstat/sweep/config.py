"""The grid's configuration: which networks, which estimators, which method.

A configuration is a frozen :class:`ReportConfig` (the grid of :func:`gradstat.sweep` and
the suite of :func:`gradstat.run_report`), built in Python, from a TOML file
(:meth:`ReportConfig.from_toml`), from a mapping with the same keys
(:meth:`ReportConfig.from_mapping`) or from command-line options
(:meth:`ReportConfig.from_args`). Its networks are :class:`RandomNetworks` and
:class:`NetworkFile` entries, each giving :class:`NetworkCase` objects (a network with
the input ``x = 1`` and the target of :func:`default_target`); its estimators are
:class:`EstimatorSpec` objects. Every field is checked on creation, and messages name the
config key (``'n_samples' must be ...``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradstat._validation import (
    check_choice,
    check_int,
    check_items,
    check_n_samples,
    check_path,
    check_real,
)
from gradstat.analysis import METHODS
from gradstat.estimators import available_estimators
from gradstat.estimators.user import resolve_estimator
from gradstat.metrics import METRICS
from gradstat.network import LOSSES, RANDOM_SCALE_LIMIT, BinaryNetwork
from gradstat.storage import load_network

ESTIMATOR_VARIANTS: dict[str, list[dict[str, Any]]] = {
    "reinforce": [{"baseline": "none"}, {"baseline": "mean"}, {"baseline": "optimal"}],
    # At its default tau = 1 st_tempered is st_sigmoid, row for row: show other settings.
    "st_tempered": [{"tau": 0.5}, {"tau": 2}],
}
"""Option sets compared per estimator by default (one row each); others use their defaults.

``st_tempered`` appears with ``tau = 0.5`` and ``tau = 2``: at its default ``tau = 1`` its
surrogate ``sigmoid'(a / tau) / tau`` is ``st_sigmoid``'s, so it would repeat that row."""

SEEDINGS = ("common", "task")
"""Monte Carlo seeding of a report's analyses (:attr:`ReportConfig.seeding`)."""

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def default_target(net: BinaryNetwork) -> np.ndarray | int:
    """The target a report uses: ``0`` (mse), ``0.5`` (bce), class 0 (xent), ``1`` (linear).

    The linear loss ``sum_k t_k y_k`` is identically zero at ``t = 0``, hence ``t = 1``.
    """
    if net.loss == "xent":
        return 0
    value = {"mse": 0.0, "bce": 0.5, "linear": 1.0}[net.loss]
    return np.full(net.n_out, value)


def _check_type(value: Any, name: str, kinds: type | tuple[type, ...], expected: str) -> Any:
    """``value`` if it is an instance of ``kinds``, else a ``TypeError`` naming ``name``."""
    if not isinstance(value, kinds):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    return value


def _check_label(value: Any, name: str) -> str | None:
    """None, or a label that can name files (letters, digits and ``_.+-``)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise ValueError(
            f"{name} must be a string of letters, digits and _.+- (it names files), got {value!r}"
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
        sizes = check_items(self.sizes, "'sizes'", "a list of integers")
        sizes = tuple(check_int(s, "'sizes'", minimum=0) for s in sizes)
        loss = check_choice(self.loss, "'loss'", sorted(LOSSES))
        scale = check_real(self.scale, "'scale'", minimum=0, maximum=RANDOM_SCALE_LIMIT)
        seeds = check_items(self.seeds, "'seeds'", "a list of integers")
        seeds = tuple(check_int(s, "'seeds'", minimum=0) for s in seeds)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"'seeds' repeats a seed: {list(seeds)}")
        BinaryNetwork(sizes, loss=loss)  # the architecture's own checks (widths, xent classes)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "label", _check_label(self.label, "'label'"))

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
        _check_type(self.file, "'file'", str, "a string")
        object.__setattr__(self, "label", _check_label(self.label, "'label'"))

    def cases(self) -> list[NetworkCase]:
        """The one :class:`NetworkCase` of the file."""
        label = self.label or _check_label(
            Path(self.file).stem, repr(f"label (from file {self.file!r})")
        )
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
        A name from :func:`gradstat.available_estimators`, or ``"package.module:attribute"``
        naming a module-level estimator object (:func:`gradstat.torch_estimator`,
        :func:`gradstat.jax_estimator`, :func:`gradstat.per_state_estimator`); in the
        string form of :meth:`parse`, options follow a second colon.
    options : mapping
        Options checked by the registry (e.g. ``{"baseline": "optimal"}``).
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_type(self.options, "'options'", Mapping, "a table of estimator options")
        resolve_estimator(self.name, self.options)  # a registered or importable name
        object.__setattr__(self, "options", dict(self.options))

    @property
    def label(self) -> str:
        """``name`` followed by ``key=value`` per option, e.g. ``reinforce baseline=mean``."""
        return self.name + "".join(f" {k}={v}" for k, v in self.options.items())

    @classmethod
    def parse(cls, text: str) -> EstimatorSpec:
        """From ``"name"`` or ``"name:key=value,key=value"`` (values: numbers or strings)."""
        name, _, rest = _check_type(text, "'estimators'", str, "a string").partition(":")
        attribute, _, after = rest.partition(":")
        registered = name.strip() in available_estimators()
        if not registered and attribute and "=" not in attribute and "," not in attribute:
            name, rest = f"{name}:{attribute}", after  # "package.module:attribute[:options]"
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
        Output folder used when :func:`gradstat.run_report` is given none.

    Raises
    ------
    TypeError, ValueError
        Naming the field (``'n_samples' must be an int >= 2, got ...``).
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
        networks = check_items(self.networks, "'networks'", "a list of network tables")
        for k, spec in enumerate(networks):
            kinds = (RandomNetworks, NetworkFile)
            _check_type(spec, f"'networks[{k}]'", kinds, "RandomNetworks or NetworkFile")
        estimators = check_items(self.estimators, "'estimators'", "a list of estimators")
        for k, spec in enumerate(estimators):
            _check_type(spec, f"'estimators[{k}]'", EstimatorSpec, "an EstimatorSpec")
        labels = [spec.label for spec in estimators]
        if len(set(labels)) != len(labels):
            raise ValueError(f"'estimators' lists the same estimator twice: {labels}")
        metrics = tuple(
            check_choice(m, "'metrics'", METRICS)
            for m in check_items(self.metrics, "'metrics'", "a list of metric names")
        )
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"'metrics' repeats a metric: {list(metrics)}")
        check_choice(self.method, "'method'", METHODS)
        if self.n_samples is not None:
            check_n_samples(self.n_samples, "'n_samples'")
            if self.method == "exact":
                raise ValueError("'n_samples' is only used with method 'mc' or 'auto'")
        check_int(self.mc_seed, "'mc_seed'", minimum=0)
        check_choice(self.seeding, "'seeding'", SEEDINGS)
        _check_type(self.plots, "'plots'", bool, "true or false")
        if isinstance(self.out, os.PathLike):
            object.__setattr__(self, "out", os.fspath(self.out))
        if not _check_type(self.out, "'out'", str, "a string"):
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
        _check_type(data, "'config'", Mapping, "a table")
        _check_keys(data, [f.name for f in dataclasses.fields(cls)], "the config's top level")
        kwargs = dict(data)
        if "networks" in data:
            items = check_items(data["networks"], "'networks'", "an array of network tables")
            kwargs["networks"] = tuple(
                _network_spec(item, f"networks[{k}]", base_dir) for k, item in enumerate(items)
            )
        if "estimators" in data:
            items = check_items(data["estimators"], "'estimators'", "an array of names or tables")
            kwargs["estimators"] = tuple(
                _estimator_spec(item, f"estimators[{k}]") for k, item in enumerate(items)
            )
        if "metrics" in data:
            kwargs["metrics"] = check_items(data["metrics"], "'metrics'", "a list of metric names")
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
            A file that is not UTF-8, invalid TOML, unknown keys (the message lists the
            allowed ones) or wrong types (the message names the key and the expected
            type), prefixed by the file name.
        """
        path = Path(check_path(path))
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config {str(path)!r} is not valid TOML: {err}") from None
        except UnicodeDecodeError as err:
            raise ValueError(
                f"config {str(path)!r} is not UTF-8 text (TOML files are UTF-8): byte "
                f"{err.object[err.start : err.start + 1]!r} at offset {err.start} cannot be decoded"
            ) from None
        except IsADirectoryError:
            raise ValueError(f"config {str(path)!r} is a folder, not a TOML file") from None
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
    _check_type(item, repr(where), Mapping, "a table")
    try:
        if "file" in item:
            _check_keys(item, ["file", "label"], f"{where} (a network read from a file)")
            path = _check_type(item["file"], "'file'", str, "a string")
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
        _check_type(item, repr(where), Mapping, "a name or a table {name = ..., options = {...}}")
        _check_keys(item, ["name", "options"], where)
        if "name" not in item:
            raise ValueError("missing key 'name'")
        return EstimatorSpec(
            _check_type(item["name"], "'name'", str, "a string"), item.get("options", {})
        )
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None
