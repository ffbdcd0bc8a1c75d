"""Outlined calls (gradstat.kernels.linking): one compiled copy of the estimators' code.

A call through :func:`gradstat.kernels.linking.outlined` must give what a direct call
gives, propagate the callee's exceptions, and leave the callee's code out of the caller;
every gradstat function whose compiled code declares an outlined symbol must record it
for numba's cache (``reload_init``), or a fresh process loading that function from the
cache could not resolve the symbol.
"""

from __future__ import annotations

import importlib
import sys

import numba
import numpy as np
import pytest

import gradstat as gs
from gradstat.estimators import dispatch
from gradstat.kernels.linking import OUTLINED, SYMBOL_PREFIX, outlined, publish, symbol_name


@numba.njit
def _weighted_sum(w: float, x: np.ndarray) -> float:
    if x.shape[0] == 0:
        raise ValueError("x is empty")
    total = 0.0
    for v in x:
        total += w * v
    return total


_call_weighted_sum = outlined(f"{__name__}:_weighted_sum")


@numba.njit
def _caller(w, x):  # noqa: ANN001, ANN202
    return _call_weighted_sum(w, x) + 1.0


def test_outlined_call_gives_the_direct_result() -> None:
    x = np.linspace(-1.0, 2.0, 7)
    assert _caller(0.5, x) == _weighted_sum(0.5, x) + 1.0
    assert _caller(2, x[::2]) == _weighted_sum(2.0, x[::2]) + 1.0  # cast, strided


def test_outlined_call_propagates_the_callee_exception() -> None:
    with pytest.raises(ValueError, match="x is empty"):
        _caller(1.0, np.empty(0))


def test_callee_code_stays_out_of_the_caller() -> None:
    x = np.ones(3)
    _caller(1.0, x)
    callee = _weighted_sum.overloads[(numba.float64, numba.typeof(x))]
    module = _caller.overloads[(numba.float64, numba.typeof(x))].library._get_module_for_linking()
    defined = {f.name for f in module.functions if not f.is_declaration}
    declared = {f.name for f in module.functions if f.is_declaration}
    assert callee.fndesc.mangled_name not in defined
    assert any(name.startswith(SYMBOL_PREFIX) for name in declared)


def test_symbol_names_depend_on_function_and_signature_only() -> None:
    args = (numba.float64, numba.float64[:])
    assert symbol_name("m:f", args) == symbol_name("m:f", (numba.float64, numba.float64[:]))
    assert symbol_name("m:f", args) != symbol_name("m:g", args)
    assert symbol_name("m:f", args) != symbol_name("m:f", (numba.int64, numba.float64[:]))
    assert publish(f"{__name__}:_weighted_sum", args) == symbol_name(
        f"{__name__}:_weighted_sum", args
    )


def _gradstat_overloads() -> list:
    found = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("gradstat."):
            continue
        for value in vars(module).values():
            if isinstance(value, numba.core.registry.CPUDispatcher):
                found += value.overloads.values()
    return found


def test_every_kernel_records_the_symbols_its_code_declares() -> None:
    net = gs.BinaryNetwork.random((3, 2, 1), seed=0)
    x, t = np.array([0.5, -1.0, 2.0]), np.array([0.25])
    gs.estimator_moments(net, x, t, "muprop", engine="joint")
    gs.sample_gradients(net, x, t, "reinforce", 8, seed=0)
    gs.analyze(net, x, t, "disarm", method="mc", n_samples=64, seed=0)
    declaring = 0
    for cres in _gradstat_overloads():
        module = cres.library._get_module_for_linking()
        declared = {f.name for f in module.functions if f.is_declaration}
        declared = {name for name in declared if name.startswith(SYMBOL_PREFIX)}
        recorded = {
            symbol_name(*fn.args) for fn in cres.reload_init if getattr(fn, "func", None) is publish
        }
        assert declared <= recorded, cres.fndesc.qualname
        declaring += bool(declared)
    # The joint, sampling and streaming kernels at least call the dispatcher.
    assert declaring >= 3
    draw_any = next(iter(dispatch._draw_any.overloads.values())).fndesc.mangled_name
    for cres in _gradstat_overloads():
        if cres.fndesc.qualname != "_draw_any":
            module = cres.library._get_module_for_linking()
            assert all(f.is_declaration for f in module.functions if f.name == draw_any)


def test_each_outlined_function_compiles_once() -> None:
    # A second signature compiles the whole worker again (seconds on a cold cache): a
    # literal constant or an unsigned prange index among its arguments would add one.
    net = gs.BinaryNetwork.random((3, 2, 2, 1), seed=1)
    X, T = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]), np.array([[0.25], [1.0]])
    gs.exact_gradient(net, X, T)
    one = gs.BinaryNetwork.random((3, 2, 1), seed=1)
    gs.exact_gradient(one, X, T)
    gs.estimator_moments(one, X, T, "arm")  # cells: one stochastic layer
    for name in ("st", "reinforce", "psa", "gumbel_st", "gumbel_rao"):
        gs.estimator_moments(net, X, T, name)
    gs.estimator_moments(net, X, T, "muprop", engine="joint")
    gs.analyze(net, X, T, "st_sigmoid", method="mc", n_samples=64, seed=0)
    gs.analyze(net, X, T, "rebar", method="mc", n_samples=64, seed=0)
    gs.sample_gradients(net, X, T, "reinforce", 8, seed=0)
    compiled = 0
    for path in OUTLINED:
        module, name = path.split(":")
        dispatcher = getattr(importlib.import_module(module), name)
        if module.startswith("gradstat."):
            assert len(dispatcher.signatures) <= 1, (path, dispatcher.signatures)
            compiled += len(dispatcher.signatures)
    assert compiled >= 8  # the calls above reach most workers
