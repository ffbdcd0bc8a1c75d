"""gradstat: exact and Monte Carlo analysis of gradient estimators for stochastic binary neurons.

Quick tour::

    import numpy as np, gradstat as gs
    net = gs.BinaryNetwork.random((4, 3, 3, 2), loss="mse", seed=0)
    x, t = np.ones(4), np.zeros(2)
    g = gs.exact_gradient(net, x, t)
    r = gs.analyze(net, x, t, "st_sigmoid")
    draws = gs.sample_gradients(net, x, t, "sts", n_samples=10_000, seed=1)
    gs.run_report(gs.ReportConfig(), "report")   # all estimators on the built-in suite

``import gradstat`` imports neither numpy nor numba: every public name is imported from
its module on first use (``_EXPORTS``), so that a program pays for numba (about half a
second of CPU), SciPy, the report or a framework only when it uses them.
"""

from __future__ import annotations

import importlib as _importlib
import importlib.util as _importlib_util
import sys as _sys
import types as _types
from typing import TYPE_CHECKING
from typing import Any as _Any

from gradstat import compilation as _compilation

# Before numba starts its threads; numba's cache check and the compile notice wait for
# numba's first import, which they would otherwise cause (see gradstat.compilation).
_compilation.apply_thread_defaults()
_compilation.when_imported("numba", _compilation.prepare_numba)

_EXPORTS = {
    "AnalysisResult": "gradstat.analysis_result",
    "analyze": "gradstat.analysis",
    "BinaryNetwork": "gradstat.network",
    "DEFAULT_MAX_STATES": "gradstat.problem",
    "enumerate_states": "gradstat.engines.states",
    "Estimator": "gradstat.estimators",
    "available_estimators": "gradstat.estimators",
    "get_estimator": "gradstat.estimators",
    "register": "gradstat.estimators",
    "PerStateEstimator": "gradstat.estimators.user",
    "PythonEstimator": "gradstat.estimators.user",
    "per_state_estimator": "gradstat.estimators.user",
    "python_estimator": "gradstat.estimators.user",
    "EstimatorMoments": "gradstat.exact",
    "estimator_moments": "gradstat.exact",
    "exact_gradient": "gradstat.exact",
    "expected_loss": "gradstat.exact",
    "METRICS": "gradstat.metrics",
    "ScopeMetrics": "gradstat.metrics",
    "NoiseDecomposition": "gradstat.noise",
    "noise_decomposition": "gradstat.noise",
    "ForwardPass": "gradstat.sampling",
    "estimate_from_noise": "gradstat.sampling",
    "forward_pass": "gradstat.sampling",
    "sample_gradients": "gradstat.sampling",
    "sample_noise": "gradstat.sampling",
    "load_network": "gradstat.storage",
    "save_network": "gradstat.storage",
    "ReportConfig": "gradstat.report",
    "ReportResult": "gradstat.report",
    "run_report": "gradstat.report",
    "read_results": "gradstat.sweep:load_results",
    # The adapters for estimators written in PyTorch or JAX (which import their framework
    # only when called).
    "FrameworkEstimator": "gradstat.frameworks",
    "jax_estimator": "gradstat.frameworks",
    "jax_layers": "gradstat.frameworks",
    "layer_views": "gradstat.frameworks",
    "network_from_jax": "gradstat.frameworks",
    "network_from_torch": "gradstat.frameworks",
    "torch_estimator": "gradstat.frameworks",
    "torch_layers": "gradstat.frameworks",
}
"""Every public name and the module it is imported from on first use (``module:attribute``
where the attribute has another name there); ``if TYPE_CHECKING:`` below repeats these
imports for type checkers and IDEs (a test keeps the two equal)."""

if TYPE_CHECKING:
    from gradstat.analysis import analyze as analyze
    from gradstat.analysis_result import AnalysisResult as AnalysisResult
    from gradstat.engines.states import enumerate_states as enumerate_states
    from gradstat.estimators import Estimator as Estimator
    from gradstat.estimators import available_estimators as available_estimators
    from gradstat.estimators import get_estimator as get_estimator
    from gradstat.estimators import register as register
    from gradstat.estimators.user import PerStateEstimator as PerStateEstimator
    from gradstat.estimators.user import PythonEstimator as PythonEstimator
    from gradstat.estimators.user import per_state_estimator as per_state_estimator
    from gradstat.estimators.user import python_estimator as python_estimator
    from gradstat.exact import EstimatorMoments as EstimatorMoments
    from gradstat.exact import estimator_moments as estimator_moments
    from gradstat.exact import exact_gradient as exact_gradient
    from gradstat.exact import expected_loss as expected_loss
    from gradstat.frameworks import FrameworkEstimator as FrameworkEstimator
    from gradstat.frameworks import jax_estimator as jax_estimator
    from gradstat.frameworks import jax_layers as jax_layers
    from gradstat.frameworks import layer_views as layer_views
    from gradstat.frameworks import network_from_jax as network_from_jax
    from gradstat.frameworks import network_from_torch as network_from_torch
    from gradstat.frameworks import torch_estimator as torch_estimator
    from gradstat.frameworks import torch_layers as torch_layers
    from gradstat.metrics import METRICS as METRICS
    from gradstat.metrics import ScopeMetrics as ScopeMetrics
    from gradstat.network import BinaryNetwork as BinaryNetwork
    from gradstat.noise import NoiseDecomposition as NoiseDecomposition
    from gradstat.noise import noise_decomposition as noise_decomposition
    from gradstat.problem import DEFAULT_MAX_STATES as DEFAULT_MAX_STATES
    from gradstat.report import ReportConfig as ReportConfig
    from gradstat.report import ReportResult as ReportResult
    from gradstat.report import run_report as run_report
    from gradstat.sampling import ForwardPass as ForwardPass
    from gradstat.sampling import estimate_from_noise as estimate_from_noise
    from gradstat.sampling import forward_pass as forward_pass
    from gradstat.sampling import sample_gradients as sample_gradients
    from gradstat.sampling import sample_noise as sample_noise
    from gradstat.storage import load_network as load_network
    from gradstat.storage import save_network as save_network
    from gradstat.sweep import load_results
    from gradstat.sweep.run import sweep as sweep

    read_results = load_results

    __version__: str


def __getattr__(name: str) -> _Any:
    """A public name, imported from its module on first use and kept (PEP 562); a
    subpackage or module of gradstat, imported (``gradstat.stats`` after ``import
    gradstat``); or ``__version__``, from the installed package's metadata."""
    if name in _EXPORTS:
        module, _, attribute = _EXPORTS[name].partition(":")
        value = getattr(_importlib.import_module(module), attribute or name)
    elif name == "__version__":
        from importlib import metadata

        try:
            value = metadata.version("gradstat")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            value = "0+unknown"
    elif (
        name.isidentifier()
        and not name.startswith("_")
        and _importlib_util.find_spec(f"{__name__}.{name}")
    ):
        return _importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, "__version__", "sweep"})


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

__all__ = [*_EXPORTS, "sweep"]
