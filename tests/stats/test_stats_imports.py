"""gradstat.stats is numpy and scipy only; gradstat.comparison, which samples, sits above it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gradstat.stats

PACKAGE = Path(gradstat.stats.__file__).parent
ALLOWED = ("numpy", "scipy", "gradstat._validation", "gradstat.stats")


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported by ``path`` outside ``if TYPE_CHECKING:`` and function bodies."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found.add(node.module)
    return found


def test_stats_imports_nothing_of_gradstat_but_its_checks():
    for path in sorted(PACKAGE.glob("*.py")):
        for name in _top_level_imports(path):
            root = name.split(".")[0]
            allowed = root in sys.stdlib_module_names or any(
                name == a or name.startswith(a + ".") for a in ALLOWED
            )
            assert allowed, f"{path.name} imports {name}"


def test_comparison_and_stats_import_in_either_order():
    for first, second in (("comparison", "stats"), ("stats", "comparison")):
        code = (
            f"import gradstat.{first}, gradstat.{second}, gradstat.stats as s, "
            "gradstat.comparison as c; assert s.compare_estimators is c.compare_estimators"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parents[1])
