"""gradstat: exact and Monte Carlo analysis of gradient estimators for stochastic binary neurons.

Quick tour::

    import numpy as np, gradstat as gs
    net = gs.BinaryNetwork.random((4, 3, 3, 2), loss="mse", seed=0)
    x, t = np.ones(4), np.zeros(2)
    g = gs.exact_gradient(net, x, t)
    r = gs.analyze(net, x, t, "st_sigmoid")
    draws = gs.sample_gradients(net, x, t, "sts", n_samples=10_000, seed=1)
    gs.run_report(gs.ReportConfig(), "report")   # all estimators on the built-in suite
"""

import sys as _sys
import types as _types
from typing import Any as _Any

from gradstat.analysis import AnalysisResult, analyze
from gradstat.compilation import apply_thread_defaults as _thread_defaults
from gradstat.compilation import clear_stale_cache as _clear_stale_cache
from gradstat.compilation import install_compile_notice as _compile_notice
from gradstat.engines.states import enumerate_states
from gradstat.estimators import Estimator, available_estimators, get_estimator, register
from gradstat.estimators.user import (
    PerStateEstimator,
    PythonEstimator,
    per_state_estimator,
    python_estimator,
)
from gradstat.exact import EstimatorMoments, estimator_moments, exact_gradient, expected_loss
from gradstat.metrics import METRICS, ScopeMetrics
from gradstat.network import BinaryNetwork
from gradstat.noise import NoiseDecomposition, noise_decomposition
from gradstat.problem import DEFAULT_MAX_STATES
from gradstat.sampling import (
    ForwardPass,
    estimate_from_noise,
    forward_pass,
    sample_gradients,
    sample_noise,
)
from gradstat.storage import load_network, save_network

# Before the first parallel kernel starts numba's threads (importing compiles and runs
# nothing): see gradstat.compilation.
_thread_defaults()
_clear_stale_cache()
_compile_notice()

_FRAMEWORKS = (
    "FrameworkEstimator",
    "jax_estimator",
    "jax_layers",
    "layer_views",
    "network_from_jax",
    "network_from_torch",
    "torch_estimator",
    "torch_layers",
)
"""The adapters for estimators written in PyTorch or JAX, loaded on first use, so that
importing gradstat never imports PyTorch or JAX (they import their framework only when
called)."""

_LAZY = {
    "ReportConfig": "gradstat.report",
    "ReportResult": "gradstat.report",
    "run_report": "gradstat.report",
    "read_results": "gradstat.sweep",
}
"""Attributes imported on first use: the report and sweep packages (and the version's
package metadata) take a third of ``import gradstat`` and most programs never use them."""


def __getattr__(name: str) -> _Any:
    if name == "__version__":
        from importlib import metadata

        try:
            version = metadata.version("gradstat")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            version = "0+unknown"
        globals()["__version__"] = version
        return version
    if name in _FRAMEWORKS:
        from gradstat import frameworks

        return getattr(frameworks, name)
    if name in _LAZY:
        import importlib

        # read_results is gradstat.sweep.load_results under a top-level name.
        attribute = "load_results" if name == "read_results" else name
        value = getattr(importlib.import_module(_LAZY[name]), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradstat' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_FRAMEWORKS, "__version__", "sweep"})


class _Package(_types.ModuleType):
    """gradstat's module type: ``gradstat.sweep`` is the function :func:`gradstat.sweep.sweep`,
    imported on first use, even after the import system has bound the subpackage of that
    name to this attribute (it binds it when the subpackage is first imported)."""

    @property
    def sweep(self) -> _Any:
        from gradstat.sweep.run import sweep

        return sweep

    @sweep.setter
    def sweep(self, value: _Any) -> None:
        pass


_sys.modules[__name__].__class__ = _Package

__all__ = [
    "DEFAULT_MAX_STATES",
    "METRICS",
    "AnalysisResult",
    "BinaryNetwork",
    "Estimator",
    "EstimatorMoments",
    "ForwardPass",
    "NoiseDecomposition",
    "PerStateEstimator",
    "PythonEstimator",
    "ReportConfig",
    "ReportResult",
    "ScopeMetrics",
    "analyze",
    "available_estimators",
    "estimate_from_noise",
    "estimator_moments",
    "exact_gradient",
    "enumerate_states",
    "expected_loss",
    "forward_pass",
    "get_estimator",
    *_FRAMEWORKS,
    "load_network",
    "noise_decomposition",
    "per_state_estimator",
    "python_estimator",
    "read_results",
    "register",
    "run_report",
    "sample_gradients",
    "sample_noise",
    "save_network",
    "sweep",
]
