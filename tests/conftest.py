"""Test configuration: Hypothesis profiles, test processes and the numba cache.

``python -m pytest`` runs the tests in one process per core (pytest-xdist, from the
``test`` extra), after compiling the kernels on every core when numba's cache is cold (see
the hooks below).

Hypothesis profiles: ``ci`` (derandomized, the default under ``CI=true``), ``dev`` (the
default otherwise) and ``deep`` (many more examples for local runs:
``HYPOTHESIS_PROFILE=deep pytest``).
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "deep", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


MAX_WORKERS = 4
"""At most this many test processes: each compiles nothing after the warmup below, but
repeats the session-scoped fixtures (the claims searches, the reference sweep)."""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _in_worker(config: pytest.Config) -> bool:
    """Whether this is a pytest-xdist worker (or a process started by one): it must not
    start workers of its own."""
    return hasattr(config, "workerinput") or "PYTEST_XDIST_WORKER" in os.environ


def _full_run(config: pytest.Config) -> bool:
    """Whether this session runs the whole suite (no paths or node ids given)."""
    return config.args_source == pytest.Config.ArgsSource.TESTPATHS


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    """``python -m pytest`` runs the whole suite in one process per core (at most
    :data:`MAX_WORKERS`) when pytest-xdist is installed (the ``test`` extra): numba kernels
    and the Hypothesis searches use one core each. A selection of tests (paths or node ids
    given) runs in this process, where starting workers would cost more than it saves;
    ``-n N`` chooses, and ``-n 0``, ``-p no:xdist`` or ``--pdb`` run in this process."""
    option = config.option
    if (
        not _in_worker(config)
        and _full_run(config)
        and config.pluginmanager.hasplugin("xdist")
        and getattr(option, "numprocesses", 0) is None
        and not option.usepdb
        and not option.collectonly
        and _cores() > 1
    ):
        option.numprocesses = min(_cores(), MAX_WORKERS)
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Before a whole-suite run on a cold numba cache (a fresh clone, a new numba), compile
    every kernel with ``gradstat warmup`` in one process per core, then start the tests: the
    test processes load the kernels from the on-disk cache instead of compiling the same
    ones each, and a serial run compiles on every core instead of one. Runs in the
    controlling process only, before pytest-xdist starts its workers."""
    config = session.config
    if _in_worker(config) or not _full_run(config) or config.option.collectonly:
        return
    import importlib

    from gradstat import compilation

    for path in compilation.KERNEL_SECONDS:
        importlib.import_module(path.split(":")[0])
    if not compilation.cold_kernels():
        return
    jobs = min(_cores(), len(compilation.WARMUP_TASKS))
    reporter = config.pluginmanager.getplugin("terminalreporter")

    def say(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    say(f"numba's cache is cold: compiling gradstat's kernels in {jobs} processes first")
    wall = compilation.warmup(jobs, report=say)
    say(f"compiled in {wall:.0f} s")
