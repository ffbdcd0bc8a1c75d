"""Fixtures of the sweep tests."""

from __future__ import annotations

import pytest
from sweep_grid import GRID, N_FAILING, N_TASKS, read_rows

import gradstat as gs


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> list[dict[str, str]]:
    """The rows of a serial run in this process."""
    out = tmp_path_factory.mktemp("serial")
    result = gs.sweep(GRID, executor="serial", out=out)
    assert len(result.outcomes) == N_TASKS and len(result.failed) == N_FAILING
    assert result.executor == "serially in this process"
    return read_rows(out)


@pytest.fixture(scope="module")
def swept(request, tmp_path_factory):
    """The test module's ``GRID`` swept serially into a fresh folder: the folder and result."""
    out = tmp_path_factory.mktemp(request.module.__name__)
    return out, gs.sweep(request.module.GRID, executor="serial", out=out)
