"""Running the analysis scripts of ``analyses/`` in their ``--quick`` mode, for the tests.

Each script writes ``summary.md``, CSV tables and PNG figures into a folder; the figures
need matplotlib (the ``plot`` extra), so :func:`run_quick` skips the calling test without
it. The scripts' own functions (:func:`load`) need only gradstat.
"""

from __future__ import annotations

import csv
import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

ANALYSES = Path(__file__).resolve().parents[2] / "analyses"


def load(name: str) -> ModuleType:
    """The analysis script ``analyses/<name>.py`` as a module."""
    if str(ANALYSES) not in sys.path:
        sys.path.insert(0, str(ANALYSES))
    return importlib.import_module(name)


def run_quick(name: str, tmp_path: Path) -> Path:
    """Run the script ``name`` with ``--quick`` into ``tmp_path``; its ``summary.md``."""
    pytest.importorskip("matplotlib")
    summary = load(name).main(["--quick", "--out", str(tmp_path)])
    assert summary == tmp_path / "summary.md"
    assert summary.exists() and summary.read_text().startswith("# ")
    assert "Mode: quick" in summary.read_text()
    assert list(tmp_path.glob("*.csv")), "no CSV written"
    pngs = list(tmp_path.glob("*.png"))
    assert pngs, "no figure written"
    assert all(p.stat().st_size > 1000 for p in pngs)
    return summary


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file, as dictionaries."""
    with path.open() as fh:
        return list(csv.DictReader(fh))
