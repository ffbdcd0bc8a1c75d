"""The exact kernels' serial chunk workers, called through their one compiled copy.

The gradient, one-layer, joint, quadrature and cells kernels run each chunk (or example)
in a serial function called through :func:`gradstat.kernels.linking.outlined`, and the
kernels that sum chunk accumulators call ``reduce_chunks`` the same way. The
kernel's cached code only declares those functions: it must record their symbols for
numba's cache, and a fresh process must load every kernel from the cache, compile
nothing, and give the same numbers bit for bit.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import gradstat as gs
from gradstat.engines import cells, factored, gradient, joint, one_layer, quadrature
from gradstat.kernels import accumulate
from gradstat.kernels.linking import SYMBOL_PREFIX, publish, symbol_name

ROOT = Path(__file__).resolve().parents[2]

WORKERS = {
    factored.factored_moments_kernel: [accumulate.reduce_chunks],
    gradient.gradient_kernel: [gradient._gradient_chunk],
    one_layer.one_layer_kernel: [one_layer._one_layer_chunk],
    joint.moments_kernel: [joint._moments_chunk, accumulate.reduce_chunks],
    quadrature.quadrature_kernel: [quadrature._quadrature_example],
    cells.cells_kernel: [cells._cells_chunk, cells._cell_tables, accumulate.reduce_chunks],
}
"""Each kernel and the functions it calls through their own compiled copy."""


def run_calls() -> dict[str, Any]:
    """One call of each public path that runs a kernel of :data:`WORKERS`."""
    deep = gs.BinaryNetwork.random((3, 3, 2, 2), seed=1)
    one = gs.BinaryNetwork.random((3, 4, 2), seed=2)
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.25, -0.5]])
    t = np.array([[0.25, -1.0], [1.5, 0.0]])
    out: dict[str, Any] = {
        "joint gradient": gs.exact_gradient(deep, x, t),
        "one-layer gradient": gs.exact_gradient(one, x, t),
    }
    cases = [
        (deep, "st_sigmoid", "joint", {}),
        (deep, "reinforce", "joint", {"baseline": "optimal"}),
        (deep, "muprop", "joint", {}),
        (deep, "gumbel_rao", "quadrature", {}),
        (one, "disarm", "cells", {}),
        (one, "arm", "cells", {}),
    ]
    for net, name, engine, options in cases:
        res = gs.estimator_moments(net, x, t, name, engine=engine, **options)
        out[f"{name} {engine}"] = (
            res.example_mean,
            res.example_var,
            res.sign_probability,
            res.descent_probability,
        )
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(u, v) for u, v in zip(a, b, strict=True))
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def test_kernels_declare_their_workers_and_record_them_for_the_cache() -> None:
    run_calls()
    for kernel, workers in WORKERS.items():
        (cres,) = kernel.overloads.values()
        module = cres.library._get_module_for_linking()
        declared = {f.name for f in module.functions if f.is_declaration}
        defined = {f.name for f in module.functions if not f.is_declaration}
        recorded = {
            symbol_name(*fn.args) for fn in cres.reload_init if getattr(fn, "func", None) is publish
        }
        for worker in workers:
            path = f"{worker.py_func.__module__}:{worker.py_func.__name__}"
            names = set()
            for wres in worker.overloads.values():
                # The worker's code is not compiled into the kernel: its symbol is declared.
                assert wres.fndesc.mangled_name not in defined, path
                names.add(symbol_name(path, tuple(wres.signature.args)))
            assert names & declared, (kernel.py_func.__name__, path)
            assert names & declared <= recorded, (kernel.py_func.__name__, path)
        assert {n for n in declared if n.startswith(SYMBOL_PREFIX)} <= recorded


FRESH = """
import pickle, sys
from numba.core import event
compiled = []

class Count(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        if f.__module__.startswith("gradstat"):
            compiled.append(f.__qualname__)

    def on_end(self, ev):
        pass

event.register("numba:compile", Count())
sys.path.insert(0, sys.argv[1])
from test_chunk_workers import run_calls
out = run_calls()
with open(sys.argv[2], "wb") as f:
    pickle.dump((compiled, out), f)
"""


def test_a_fresh_process_loads_the_kernels_from_the_cache(tmp_path: Path) -> None:
    """The calls above, compiled (or loaded) here, fill numba's cache; a new process must
    load every kernel and worker from it (no compilation) and give the same numbers."""
    here = run_calls()
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRADSTAT_COMPILE_AHEAD="0")
    result = tmp_path / "fresh.pkl"
    subprocess.run(
        [sys.executable, "-c", FRESH, str(Path(__file__).parent), str(result)],
        env=env,
        cwd=tmp_path,
        check=True,
        timeout=600,
    )
    with open(result, "rb") as f:
        compiled, there = pickle.load(f)
    assert compiled == []
    assert here.keys() == there.keys()
    for key in here:
        assert same(here[key], there[key]), key
