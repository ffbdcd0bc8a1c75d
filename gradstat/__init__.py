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

from importlib import metadata as _metadata

from gradstat.analysis import AnalysisResult, analyze
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
from gradstat.report import ReportConfig, ReportResult, run_report
from gradstat.sampling import (
    ForwardPass,
    estimate_from_noise,
    forward_pass,
    sample_gradients,
    sample_noise,
)
from gradstat.storage import load_network, save_network
from gradstat.sweep import sweep

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


def __getattr__(name: str) -> object:
    # The framework adapters load on first use, so that importing gradstat never imports
    # PyTorch or JAX (they import their framework only when called).
    if name in _FRAMEWORKS:
        from gradstat import frameworks

        return getattr(frameworks, name)
    raise AttributeError(f"module 'gradstat' has no attribute {name!r}")


try:
    __version__ = _metadata.version("gradstat")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

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
    "register",
    "run_report",
    "sample_gradients",
    "sample_noise",
    "save_network",
    "sweep",
]
