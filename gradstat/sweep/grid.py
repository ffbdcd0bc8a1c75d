"""A grid expanded into tasks: identities, Monte Carlo seeds and fingerprints.

:func:`grid_tasks` expands a grid (a :class:`~gradstat.sweep.config.ReportConfig`, its
TOML file or the same keys as a mapping) into every network case x every estimator, in
that order. Each task is named by a stable **identity** ``"<network label>/<estimator
label>"``; with ``seeding = "task"`` its Monte Carlo seed is :func:`task_seed` of the
grid's ``mc_seed`` and that identity; its **fingerprint** hashes everything its result
depends on, so that ``resume`` reuses a stored result only when it matches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from gradstat._validation import check_int
from gradstat.sweep.config import EstimatorSpec, NetworkCase, ReportConfig
from gradstat.sweep.tasks import TASK_FORMAT, SweepTask


def task_seed(sweep_seed: int, identity: str) -> int:
    """The Monte Carlo seed of a task under ``seeding = "task"``.

    ``SeedSequence(sweep_seed, spawn_key=(h,))`` with ``h`` the first 128 bits of the
    SHA-256 hash of ``identity`` (UTF-8), reduced to one 64-bit int, so that
    ``analyze(..., seed=task_seed(...))`` repeats the task's draws anywhere.

    Parameters
    ----------
    sweep_seed : int
        The grid's ``mc_seed`` (>= 0).
    identity : str
        The task's identity, ``"<network label>/<estimator label>"``.

    Returns
    -------
    int
        In ``[0, 2**64)``.
    """
    sweep_seed = check_int(sweep_seed, "sweep_seed", minimum=0)
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    key = int.from_bytes(digest[:16], "little")
    sequence = np.random.SeedSequence(sweep_seed, spawn_key=(key,))
    return int(sequence.generate_state(1, np.uint64)[0])


def as_config(grid: ReportConfig | Mapping[str, Any] | str | os.PathLike[str]) -> ReportConfig:
    """The :class:`ReportConfig` of a grid given as a config, a TOML path or a mapping."""
    if isinstance(grid, ReportConfig):
        return grid
    if isinstance(grid, (str, os.PathLike)):
        return ReportConfig.from_toml(grid)
    if isinstance(grid, Mapping):
        return ReportConfig.from_mapping(grid)
    raise TypeError(
        "grid must be a ReportConfig, the path of a TOML config or a mapping with the "
        f"config's keys, got {type(grid).__name__}"
    )


def method_options(config: ReportConfig, identity: str) -> dict[str, Any]:
    """The options a task gives to :func:`gradstat.analyze`: method, n_samples and seed."""
    if config.method == "exact":
        return {"method": "exact"}
    seed = config.mc_seed if config.seeding == "common" else task_seed(config.mc_seed, identity)
    return {"method": config.method, "n_samples": config.n_samples, "seed": seed}


def grid_cases(config: ReportConfig) -> tuple[NetworkCase, ...]:
    """Every network case of a grid (reading network files), with distinct labels."""
    cases = tuple(case for spec in config.networks for case in spec.cases())
    labels = [case.label for case in cases]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(
            f"network label(s) {repeated} occur more than once; give the networks distinct 'label's"
        )
    return cases


def grid_tasks(
    grid: ReportConfig | Mapping[str, Any] | str | os.PathLike[str],
    cases: Sequence[NetworkCase] | None = None,
) -> tuple[SweepTask, ...]:
    """Expand a grid into its tasks: every network case x every estimator, in that order.

    Parameters
    ----------
    grid : ReportConfig, mapping or path of a TOML file
    cases : sequence of NetworkCase, optional
        The grid's cases when already built (:func:`grid_cases`).

    Raises
    ------
    ValueError, TypeError
        From the config, a network file, or repeated network labels.
    """
    config = as_config(grid)
    cases = grid_cases(config) if cases is None else tuple(cases)
    tasks = []
    for case in cases:
        digest = _network_digest(case)
        for spec in config.estimators:
            identity = f"{case.label}/{spec.label}"
            method = method_options(config, identity)
            fingerprint = _fingerprint(identity, digest, spec, method)
            tasks.append(SweepTask(len(tasks), identity, case, spec, method, fingerprint))
    return tuple(tasks)


def _network_digest(case: NetworkCase) -> str:
    h = hashlib.sha256()
    # Every field of the network but its parameters (sizes, loss, ...), then their bits.
    described = {f.name: getattr(case.net, f.name) for f in fields(case.net) if f.name != "params"}
    h.update(json.dumps(described, sort_keys=True, default=repr).encode())
    h.update(np.ascontiguousarray(case.net.params, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(case.x, dtype=np.float64).tobytes())
    t = case.t if isinstance(case.t, int) else np.asarray(case.t, dtype=np.float64).tolist()
    h.update(json.dumps(t).encode())
    return h.hexdigest()


def _fingerprint(identity: str, network: str, spec: EstimatorSpec, method: dict) -> str:
    payload = {
        "format": TASK_FORMAT,
        "task": identity,
        "network": network,
        "estimator": spec.name,
        "options": dict(spec.options),
        "method": method,
    }
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:20]
