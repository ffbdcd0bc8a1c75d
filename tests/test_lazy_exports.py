"""``import gradstat`` imports no numba, numpy or SciPy: every public name is imported on
first use (PEP 562), numba is prepared at its own first import, and ``--version`` answers
without the command line.

The imports are checked in fresh interpreters: this process has imported everything.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gradstat
from gradstat import compilation

ROOT = Path(__file__).resolve().parents[1]

NOT_AT_IMPORT = ("numba", "numpy", "scipy", "matplotlib", "pandas", "dask", "torch", "jax")
"""Packages ``import gradstat`` must leave out of ``sys.modules``."""


def run(code: str, *args: str) -> str:
    """The stdout of ``python -c code args`` in a fresh interpreter importing this checkout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_gradstat_imports_no_numba_numpy_or_scipy() -> None:
    code = (
        "import sys, gradstat\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({NOT_AT_IMPORT!r})))\n"
        "print(sorted(m for m in sys.modules if m.startswith('gradstat')))"
    )
    heavy, ours = run(code).splitlines()
    assert heavy == "[]"
    assert ours == "['gradstat', 'gradstat.compilation']"


def test_every_public_name_resolves_to_its_module_and_is_listed() -> None:
    """In a fresh interpreter (nothing imported yet): each name of ``__all__`` is the
    object of the module ``_EXPORTS`` names, ``dir`` lists it, and ``from gradstat import
    name`` and ``import *`` work."""
    code = (
        "import importlib, gradstat\n"
        "names = list(gradstat.__all__)\n"
        "listed = set(dir(gradstat))\n"
        "for name in names:\n"
        "    assert name in listed, name\n"
        "    target = gradstat._EXPORTS.get(name, 'gradstat.sweep.run')\n"
        "    module, _, attribute = target.partition(':')\n"
        "    want = getattr(importlib.import_module(module), attribute or name)\n"
        "    assert getattr(gradstat, name) is want, name\n"
        "from gradstat import analyze, BinaryNetwork, read_results\n"
        "from gradstat.sweep import load_results\n"
        "assert read_results is load_results and analyze is gradstat.analyze\n"
        "star = {}\n"
        "exec('from gradstat import *', star)\n"
        "assert set(names) <= set(star), set(names) - set(star)\n"
        "print(len(names))"
    )
    assert int(run(code)) == len(gradstat.__all__) > 40


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = gradstat.no_such_name
    assert not hasattr(gradstat, "_private_name")
    assert not hasattr(gradstat, "no_such.module")
    assert gradstat.stats is importlib.import_module("gradstat.stats")  # a subpackage


def test_type_checking_imports_match_the_table() -> None:
    """The ``if TYPE_CHECKING:`` imports (for type checkers and IDEs) name every public
    name, from the module of the runtime table, re-exported (``import x as x``)."""
    tree = ast.parse((ROOT / "gradstat" / "__init__.py").read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    imported, static = {}, {}
    for node in block.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}:{alias.name}"
                if alias.asname == alias.name:  # a re-export
                    static[alias.name] = str(node.module)
        elif isinstance(node, ast.Assign):  # a public name for another module's attribute
            static[node.targets[0].id] = imported[node.value.id]
    want = {**gradstat._EXPORTS, "sweep": "gradstat.sweep.run"}
    assert static == want
    assert set(gradstat.__all__) == set(want)


def test_numba_is_prepared_at_its_first_import() -> None:
    """The stale-cache check and the compile notice run when numba is first imported
    (here by the user), and numba keeps its own loader."""
    code = (
        "import sys, gradstat\n"
        "from gradstat import compilation\n"
        "calls = []\n"
        "compilation.clear_stale_cache = lambda: calls.append('numba' in sys.modules)\n"
        "assert compilation._notice is None\n"
        "import numba\n"
        "import numba.core.caching\n"
        "hooks = [f for f in sys.meta_path if isinstance(f, compilation._AfterImport)]\n"
        "print(calls, compilation._notice is not None, hooks, type(numba.__loader__).__name__)"
    )
    assert run(code).split() == ["[True]", "True", "[]", "SourceFileLoader"]


def test_when_imported_runs_after_the_first_import_only(tmp_path, monkeypatch) -> None:
    name = "gradstat_probe_module"
    (tmp_path / f"{name}.py").write_text("VALUE = 42\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: list[int] = []

    def first() -> None:
        seen.append(sys.modules[name].VALUE)

    compilation.when_imported(name, first)
    compilation.when_imported(name, first)  # already waiting: once only
    compilation.when_imported(name, lambda: seen.append(sys.modules[name].VALUE + 1))
    assert seen == []
    try:
        module = importlib.import_module(name)
        importlib.import_module(name)
        assert seen == [42, 43] and module.VALUE == 42
        assert type(module.__loader__).__name__ == "SourceFileLoader"
        assert not any(isinstance(f, compilation._AfterImport) for f in sys.meta_path)
        compilation.when_imported(name, lambda: seen.append(0))  # imported: runs now
        assert seen == [42, 43, 0]
    finally:
        sys.modules.pop(name, None)


def test_version_imports_no_numba() -> None:
    code = (
        "import sys\n"
        "from gradstat.__main__ import main\n"
        "assert main(sys.argv[1:]) == 0\n"
        "print('numba' in sys.modules, 'numpy' in sys.modules)"
    )
    version, modules = run(code, "--version").splitlines()
    assert version == f"gradstat {gradstat.__version__}"
    assert modules == "False False"
