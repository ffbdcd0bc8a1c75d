"""``import gradstat`` loads numpy, numba and gradstat's own modules, nothing heavier.

Each check runs in a fresh interpreter: this process has imported everything already.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = (
    "scipy.stats",
    "scipy.optimize",
    "scipy.integrate",
    "matplotlib",
    "hypothesis",
    "dask",
    "distributed",
    "pandas",
    "torch",
    "jax",
    "sklearn",
    "tqdm",
    "multiprocessing",
)
"""Packages that only some functions need: each is imported by the function that uses it."""


def imported_after(code: str, names: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``names`` (or their submodules) a fresh interpreter holds after ``code``."""
    probe = (
        f"{code}\nimport sys\n"
        f"print(sorted(n for n in {names!r} "
        f"if any(m == n or m.startswith(n + '.') for m in sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    return eval(run.stdout.strip().splitlines()[-1])  # a list of strings printed above


def test_import_gradstat_leaves_heavy_packages_out() -> None:
    assert imported_after("import gradstat") == []


@pytest.mark.parametrize("name", ["network", "problem", "storage", "strategies", "testing"])
def test_helpers_import_neither_plotting_nor_frameworks(name: str) -> None:
    """Modules users import on their own stay free of plotting, data frames and the
    frameworks (the harness modules import Hypothesis, which they are built on)."""
    light = ("matplotlib", "dask", "distributed", "pandas", "torch", "jax", "sklearn")
    assert imported_after(f"import gradstat.{name}", light) == []


def test_the_probe_sees_an_imported_package() -> None:
    """The check above can fail: a package imported by the code is reported."""
    assert imported_after("import gradstat, scipy.stats", ("scipy.stats", "jax")) == ["scipy.stats"]
