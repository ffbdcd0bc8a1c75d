"""Every bad input is refused clearly: a table of bad calls across the public API.

Each row is a call, the exception it must raise (``ValueError`` or ``TypeError``) and a
regular expression its message must match, naming the argument (and, where there is one,
the limit or the fix). The rows are grouped by the kind of failure they guard against:
complex numbers truncated in silence, strings taken for sequences, magnitudes that overflow
float64, non-finite results returned in silence, internal errors (numba, ``OverflowError``,
``MemoryError``, ``SystemError``) instead of a clear one, oversized files and requests,
arguments of the wrong type, and advice that does not fit the failing call.
"""

from __future__ import annotations

import time
import tracemalloc
import zipfile

import numba
import numpy as np
import pytest

import gradstat as gs
from gradstat.report import ReportConfig
from gradstat.stats import (
    holm_adjust,
    required_samples,
    unbiasedness_test,
    variance_interval,
    wilson_interval,
)
from gradstat.strategies import extreme_logit_networks, networks, problems, targets
from gradstat.sweep.config import RandomNetworks
from gradstat.testing import check_estimator_contract, check_unbiased

NET = gs.BinaryNetwork.random((2, 3, 2), loss="mse", seed=0)
X, T = np.ones(2), np.zeros(2)
WIDE = gs.BinaryNetwork.random((2, 30, 1), seed=0)  # 2^30 joint states, one layer
ONES = gs.BinaryNetwork((2, 3, 1), np.ones(13))
XENT = gs.BinaryNetwork.random((2, 2, 3), loss="xent", seed=0)
THREE_OUT = gs.BinaryNetwork.random((2, 3, 3), seed=0)


@numba.njit
def raises_per_state(theta, sizes, x, t, u, a, p, h, y, dy, C, out):
    raise ValueError("boom")


@numba.njit
def untyped_per_state(theta, sizes, x, t, u, a, p, h, y, dy, C, out):
    out[0] = x.no_such_attribute


@numba.njit
def eleven_arguments(theta, sizes, x, t, u, a, p, h, y, dy, out):
    out[0] = 1.0


@numba.njit
def huge_per_state(theta, sizes, x, t, u, a, p, h, y, dy, C, out):
    # +-1e300 by the first unit's state: the spread, not the size, makes the squares overflow
    # (a constant 1e300 has variance 0, which the centred sums compute exactly).
    out[:] = 1e300 if h[0] > 0.5 else -1e300


@numba.njit
def nan_per_state(theta, sizes, x, t, u, a, p, h, y, dy, C, out):
    out[:] = 0.0
    out[0] = np.nan


def complex_estimate(net, x, t, rng):
    return np.zeros(net.n_params) + 1j


def huge_estimate(net, x, t, rng):
    return np.full(net.n_params, 1e300)


def _npy(header_shape, descr="<f8", data=b""):
    """The bytes of a ``.npy`` member declaring ``header_shape`` and holding ``data``."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": header_shape}
    )
    return buf.getvalue() + data


def _forged(path, sizes, params_shape, n_bytes, sizes_shape=None, loss_descr=None):
    """A network file whose ``params`` header claims ``params_shape`` but holds
    ``n_bytes`` bytes of data (and optionally a forged ``sizes`` or ``loss`` header)."""
    arrays = {
        "format": np.array("gradstat.network"),
        "version": np.array(1),
        "loss": np.array("mse"),
        "values": np.array("01"),
    }
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in arrays.items():
            if key == "loss" and loss_descr is not None:
                zf.writestr("loss.npy", _npy((), loss_descr, b"m\0\0\0"))
                continue
            buf = __import__("io").BytesIO()
            np.lib.format.write_array(buf, value)
            zf.writestr(f"{key}.npy", buf.getvalue())
        sizes = np.asarray(sizes, dtype=np.int64)
        if sizes_shape is None:
            sizes_shape = sizes.shape
        zf.writestr("sizes.npy", _npy(sizes_shape, "<i8", sizes.tobytes()))
        zf.writestr("params.npy", _npy(params_shape, "<f8", bytes(n_bytes)))
    return path


def _not_utf8(path):
    path.write_bytes(b"method = 'auto'\n# \xff\xfe not utf-8\n")
    return path


# Each row: (id, call taking a tmp_path, exception type, regex the message must match).
ROWS = [
    # -- complex numbers are refused, never truncated to their real part ---------------
    ("complex params", lambda p: gs.BinaryNetwork((2, 3, 2), np.zeros(17) + 1j), TypeError,
     r"params must be an array of real numbers.*complex128.*np\.real"),
    ("complex x", lambda p: gs.exact_gradient(NET, X + 1j, T), TypeError,
     r"x must be an array of real numbers.*complex"),
    ("complex t", lambda p: gs.expected_loss(NET, X, T + 1j), TypeError,
     r"t must be an array of real numbers.*complex"),
    ("complex xent class", lambda p: gs.expected_loss(XENT, X, 1 + 0j), TypeError,
     r"'xent' needs t to be an integer class index.*complex"),
    ("complex u of estimate_from_noise",
     lambda p: gs.estimate_from_noise(NET, X, T, "st", np.full(3, 0.5) + 0j), TypeError,
     r"u must be an array of real numbers.*complex"),
    ("complex u of forward_pass", lambda p: gs.forward_pass(NET, X, T, np.full(3, 0.5) + 0j),
     TypeError, r"u must be an array of real numbers.*complex"),
    ("complex python estimate",
     lambda p: gs.sample_gradients(NET, X, T, complex_estimate, 4, seed=0), TypeError,
     r"estimate returned by estimator 'complex_estimate' must be an array of real numbers"),
    ("complex baseline", lambda p: gs.analyze(NET, X, T, "reinforce", baseline=1 + 0j),
     TypeError, r"baseline must be one of .* or a finite float, got complex"),
    ("complex eta", lambda p: gs.sample_gradients(NET, X, T, "rebar", 4, seed=0, eta=1j),
     TypeError, r"eta must be a finite number"),
    ("complex tol", lambda p: gs.analyze(NET, X, T, "st", tol=1e-9j), TypeError,
     r"tol must be a finite number"),
    ("complex samples", lambda p: unbiasedness_test(np.zeros((5, 2)) + 1j, np.zeros(2)),
     TypeError, r"samples must be an array of real numbers"),
    ("complex variance samples", lambda p: variance_interval(np.ones(5) + 1j), TypeError,
     r"samples must be an array of real numbers"),
    ("complex p-values", lambda p: holm_adjust(np.array([0.1, 0.2]) + 0j), TypeError,
     r"pvalues must be an array of real numbers"),
    # -- sizes must be a sequence of integers -------------------------------------------
    ("sizes as a string", lambda p: gs.BinaryNetwork("431"), TypeError,
     r"sizes must be a sequence of integers .*got str '431'"),
    ("sizes as bytes", lambda p: gs.BinaryNetwork(b"431"), TypeError,
     r"sizes must be a sequence of integers"),
    ("sizes as a set", lambda p: gs.BinaryNetwork({4, 3, 1}), TypeError,
     r"sizes must be a sequence of integers"),
    ("sizes as a dict", lambda p: gs.BinaryNetwork({4: 3, 1: 2}), TypeError,
     r"sizes must be a sequence of integers"),
    ("sizes as a 2-d array", lambda p: gs.BinaryNetwork(np.array([[4, 3, 1]])), TypeError,
     r"sizes must be a sequence of integers .*shape \(1, 3\)"),
    ("random sizes as a string", lambda p: gs.BinaryNetwork.random("431"), TypeError,
     r"sizes must be a sequence of integers"),
    ("infinite width", lambda p: gs.BinaryNetwork((3, float("inf"), 1)), TypeError,
     r"sizes must hold integers, got sizes\[1\] = inf"),
    ("NaN width", lambda p: gs.BinaryNetwork((3, float("nan"), 1)), TypeError,
     r"sizes\[1\] = nan"),
    ("boolean width", lambda p: gs.BinaryNetwork((3, True, 1)), TypeError,
     r"sizes\[1\] = True"),
    ("config sizes as a string",
     lambda p: ReportConfig.from_mapping({"networks": [{"sizes": "431"}]}), TypeError,
     r"networks\[0\]: 'sizes' must be a list of integers"),
    # -- options have finite ranges in which nothing overflows --------------------------
    ("rebar eta 1e300", lambda p: gs.analyze(NET, X, T, "rebar", eta=1e300), ValueError,
     r"eta must be a finite number >= -1e\+150 and <= 1e\+150, got 1e\+300"),
    ("rebar tau 1e-300", lambda p: gs.analyze(NET, X, T, "rebar", tau=1e-300), ValueError,
     r"tau must be a finite number > 0 and at least 1e-150"),
    ("noisy_rectifier sigma 1e300",
     lambda p: gs.analyze(NET, X, T, "noisy_rectifier", sigma=1e300), ValueError,
     r"sigma must be a finite number .*<= 1e\+150, got 1e\+300"),
    ("noisy_rectifier sigma too large for this network",
     lambda p: gs.analyze(NET, X, T, "noisy_rectifier", sigma=1e149), ValueError,
     r"estimator 'noisy_rectifier' with sigma=1e\+149 is out of range for this problem: "
     r"the outputs y can reach .* more than 1e\+150"),
    ("muprop expansion 1e300", lambda p: gs.analyze(NET, X, T, "muprop", expansion=1e300),
     ValueError, r"expansion must be a finite number >= -1e\+150 and <= 1e\+150"),
    ("muprop expansion too large for this network",
     lambda p: gs.analyze(NET, X, T, "muprop", expansion=1e150), ValueError,
     r"estimator 'muprop' with expansion=1e\+150 is out of range for this problem"),
    ("reinforce baseline 1e300",
     lambda p: gs.analyze(NET, X, T, "reinforce", baseline=1e300), ValueError,
     r"baseline must be a finite number >= -1e\+150 and <= 1e\+150"),
    ("reinmax tau 1e300", lambda p: gs.analyze(NET, X, T, "reinmax", tau=1e300), ValueError,
     r"reinmax's tau must be a finite number <= 1e\+150"),
    ("st_tempered tau 1e-200", lambda p: gs.analyze(NET, X, T, "st_tempered", tau=1e-200),
     ValueError, r"tau must be a finite number > 0 and at least 1e-150"),
    ("gumbel_st tau inf", lambda p: gs.analyze(NET, X, T, "gumbel_st", tau=float("inf")),
     ValueError, r"tau must be a finite number > 0"),
    ("reinforce_loo k 1e9",
     lambda p: gs.sample_gradients(NET, X, T, "reinforce_loo", 2, seed=0, k=10**9),
     ValueError, r"k must be an int >= 2 and <= 65536, got 1000000000"),
    ("reinforce_loo k 1e15",
     lambda p: gs.estimator_moments(NET, X, T, "reinforce_loo", k=10**15), ValueError,
     r"k must be an int >= 2 and <= 65536"),
    # -- parameters, inputs and targets are bounded so the forward pass cannot overflow -
    ("random scale 1e308", lambda p: gs.BinaryNetwork.random((2, 3, 2), scale=1e308),
     ValueError, r"scale must be a finite number >= 0.0 and <= 1e\+100, got 1e\+308"),
    ("params 1e200", lambda p: NET.with_params(np.full(17, 1e200)), ValueError,
     r"params holds values up to 1e\+200 in magnitude; they must lie within \+-1e\+150"),
    ("params whose layer-2 pre-activations overflow",
     lambda p: gs.BinaryNetwork((2, 3, 3, 2), np.full(29, 5e149)), ValueError,
     r"params are too large: layer 2's pre-activations can reach 2e\+150"),
    ("x 1e200", lambda p: gs.exact_gradient(NET, np.full(2, 1e200), T), ValueError,
     r"x holds values up to 1e\+200 in magnitude"),
    ("x too large for W_1", lambda p: gs.analyze(ONES, np.full(2, 1e150), np.zeros(1), "st"),
     ValueError, r"x is too large for this network's first layer: layer 1's pre-activations "
     r"can reach 2e\+150"),
    ("t 1e200", lambda p: gs.expected_loss(NET, X, np.full(2, 1e200)), ValueError,
     r"t holds values up to 1e\+200"),
    ("targets whose loss overflows",
     lambda p: gs.expected_loss(THREE_OUT, X, np.full(3, 1e150)), ValueError,
     r"the targets t or the output layer are too large: the 'mse' loss can reach"),
    ("normal noise 1e300",
     lambda p: gs.estimate_from_noise(NET, X, T, "noisy_rectifier", np.full(3, 1e300)),
     ValueError, r"u must hold finite standard-normal draws, within \+-40"),
    ("variance of draws of 1e200", lambda p: variance_interval(np.full(5, 1e200)),
     ValueError, r"samples holds values up to 1e\+200"),
    # -- non-finite results are never returned ------------------------------------------
    ("per-state estimates too large to square",
     lambda p: gs.estimator_moments(NET, X, T, gs.per_state_estimator(huge_per_state)),
     ValueError, r"estimator 'huge_per_state' produced estimates up to .* in magnitude: "
     r"their squares overflow float64.*var cannot be computed"),
    ("per-state NaN",
     lambda p: gs.estimator_moments(NET, X, T, gs.per_state_estimator(nan_per_state)),
     ValueError, r"estimator 'nan_per_state' produced NaN or infinite mean.*per-state "
     r"function wrote NaN"),
    ("python estimates too large to square",
     lambda p: gs.analyze(NET, X, T, huge_estimate, method="mc", n_samples=40, seed=0),
     ValueError, r"estimator 'huge_estimate' produced estimates up to 1e\+300"),
    ("rectifier estimates too large to square",
     lambda p: gs.analyze(NET, X, T, "noisy_rectifier", method="mc", n_samples=50, seed=0,
                          sigma=1e140), ValueError,
     r"estimator 'noisy_rectifier' produced estimates up to .* squares overflow"),
    ("exact draws overflow", lambda p: gs.analyze(NET.with_params(np.full(17, 1e140)), X, T,
                                                    "st"), ValueError,
     r"estimator 'st' produced NaN or infinite mean"),
    # -- user estimators: clear errors, never numba's --------------------------------------
    ("per-state function that raises",
     lambda p: gs.estimator_moments(NET, X, T, gs.per_state_estimator(raises_per_state)),
     ValueError, r"per-state estimator 'raises_per_state' \(fn\(theta, sizes, x, t, u, a, p, "
     r"h, y, dy, C, out\)\) raised ValueError: boom"),
    ("per-state function that raises, sampled",
     lambda p: gs.sample_gradients(NET, X, T, gs.per_state_estimator(raises_per_state), 4,
                                   seed=0), ValueError,
     r"per-state estimator 'raises_per_state' .* raised ValueError: boom"),
    ("per-state function that raises, analysed",
     lambda p: gs.analyze(NET, X, T, gs.per_state_estimator(raises_per_state)), ValueError,
     r"per-state estimator 'raises_per_state' .* raised ValueError"),
    ("per-state function that does not compile",
     lambda p: gs.estimator_moments(NET, X, T, gs.per_state_estimator(untyped_per_state)),
     TypeError, r"per-state estimator 'untyped_per_state' \(fn\(theta, sizes, x, t, u, a, p, h, "
     r"y, dy, C, out\)\) does not compile .*Unknown attribute 'no_such_attribute'"),
    ("per-state function of the wrong arity",
     lambda p: gs.per_state_estimator(eleven_arguments), TypeError,
     r"per-state estimator 'eleven_arguments' must take the 12 arguments fn\(theta, sizes"),
    ("python estimator named by a number", lambda p: gs.python_estimator(huge_estimate, name=3),
     TypeError, r"name must be a string"),
    ("per-state noise kind", lambda p: gs.per_state_estimator(huge_per_state, noise=3),
     TypeError, r"noise must be one of"),
    ("per-state claim as a string",
     lambda p: gs.per_state_estimator(huge_per_state, unbiased="yes"), TypeError,
     r"unbiased must be True or False"),
    # -- overflow, memory and state counts: refused at once, with the count and limit ---
    ("required samples that overflow", lambda p: required_samples(1e-300, 1e300), ValueError,
     r"detectable_bias = 1e-300 is too small against sigma = 1e\+300: .*10\^1201 draws"),
    ("network of 2e9 parameters", lambda p: gs.BinaryNetwork((40000, 50000, 1)), ValueError,
     r"sizes \(40000, 50000, 1\) give 2,000,100,001 parameters, more than the 67,108,864"),
    ("random network of 2e9 parameters",
     lambda p: gs.BinaryNetwork.random((40000, 50000, 1)), ValueError,
     r"2,000,100,001 parameters, more than the 67,108,864"),
    ("config network of 2e9 parameters",
     lambda p: ReportConfig.from_mapping({"networks": [{"sizes": [40000, 50000, 1]}]}),
     ValueError, r"networks\[0\]: .*2,000,100,001 parameters, more than the 67,108,864"),
    ("reinforce_loo state count",
     lambda p: gs.estimator_moments(NET, X, T, "reinforce_loo", k=65536), ValueError,
     r"sum over 2\^196608 \(about 10\^59,185\) noise states per example"),
    ("2^2000 joint states",
     lambda p: gs.exact_gradient(gs.BinaryNetwork((0, 2000, 1)), np.zeros(0), np.zeros(1)),
     ValueError, r"2\^2000 \(about 10\^602\) joint hidden states"),
    ("draws that do not fit in memory",
     lambda p: gs.sample_gradients(NET, X, T, "st", 2**30, seed=0), ValueError,
     r"n_samples: 1,073,741,824 draws of 17 parameters is 18,253,611,008 float64 values"),
    ("more draws than int64 counts",
     lambda p: gs.sample_gradients(NET, X, T, "st", 10**30, seed=0), ValueError,
     r"n_samples must be at most 2\^63 - 1"),
    ("full covariance that does not fit in memory",
     lambda p: gs.estimator_moments(gs.BinaryNetwork((0, 100, 199, 1)), np.zeros(0),
                                    np.zeros(1), "st", full_cov=True), ValueError,
     r"full_cov: 17 copies of the covariance of 20,399 parameters"),
    ("noise of 1e12 examples",
     lambda p: gs.sample_noise(NET, "st", np.random.default_rng(0), n_examples=10**12),
     ValueError, r"n_examples must be an int >= 1 and <= 2147483648"),
    ("Wilson interval beyond int64", lambda p: wilson_interval(10**19, 10**20), ValueError,
     r"successes must be an int >= 0 and <= 9223372036854775807, got 10000000000000000000"),
    # -- network files: declared shapes are checked before any array is read ------------
    ("params header claiming 2e8 floats",
     lambda p: gs.load_network(_forged(p / "a.npz", [2, 2, 1], (200_000_000,), 1_600_000)),
     ValueError, r"entry 'params' declares shape \(200000000,\) of float64 \(1,600,000,000 "
     r"bytes\) but holds 1,600,000 bytes of data: the file is truncated or corrupt"),
    ("params header consistent with sizes, data missing",
     lambda p: gs.load_network(_forged(p / "b.npz", [0, 25_000_000, 1], (50_000_001,),
                                       1_600_000)), ValueError,
     r"entry 'params' declares shape \(50000001,\).* but holds 1,600,000 bytes"),
    ("params header claiming 1e12 floats",
     lambda p: gs.load_network(_forged(p / "c.npz", [2, 2, 1], (10**12,), 72)), ValueError,
     r"entry 'params' declares shape \(1000000000000,\)"),
    ("params header of the wrong length",
     lambda p: gs.load_network(_forged(p / "d.npz", [2, 2, 1], (8,), 64)), ValueError,
     r"is inconsistent: params must have shape \(9,\) for sizes \(2, 2, 1\), got \(8,\)"),
    ("sizes header claiming 1e12 entries",
     lambda p: gs.load_network(_forged(p / "e.npz", [2, 2, 1], (9,), 72,
                                       sizes_shape=(10**12,))), ValueError,
     r"entry 'sizes' declares shape \(1000000000000,\)"),
    ("loss header claiming a 400 kB string",
     lambda p: gs.load_network(_forged(p / "f.npz", [2, 2, 1], (9,), 72,
                                       loss_descr="<U100000")), ValueError,
     r"entry 'loss' declares shape \(\) of <U100000 \(400,000 bytes\) but holds 4 bytes"),
    ("file of a network of 2e9 parameters",
     lambda p: gs.load_network(_forged(p / "g.npz", [40000, 50000, 1], (9,), 72)),
     ValueError, r"is inconsistent: sizes .* 2,000,100,001 parameters, more than"),
    ("network file named by a number", lambda p: gs.load_network(123), TypeError,
     r"path must be a file path \(str or os.PathLike\), got int"),
    ("network file that is a folder", lambda p: gs.load_network(p), ValueError,
     r"network file '.*' is a folder"),
    ("saving to a number", lambda p: gs.save_network(NET, 3.5), TypeError,
     r"path must be a file path"),
    # -- every argument is checked and named ----------------------------------------------
    ("max_states as a string", lambda p: gs.exact_gradient(NET, X, T, max_states="x"),
     TypeError, r"max_states must be an int >= 1 and <= 4611686018427387904, got str 'x'"),
    ("max_states as a string, analysed", lambda p: gs.analyze(NET, X, T, "st", max_states="x"),
     TypeError, r"max_states must be an int"),
    ("max_states as a string, moments",
     lambda p: gs.estimator_moments(NET, X, T, "reinforce", max_states="x"), TypeError,
     r"max_states must be an int"),
    ("max_states as a string, sampled",
     lambda p: gs.sample_gradients(NET, X, T, "st", 4, seed=0, max_states="x"), TypeError,
     r"max_states must be an int"),
    ("max_states of 0", lambda p: gs.expected_loss(NET, X, T, max_states=0), ValueError,
     r"max_states must be an int >= 1"),
    ("max_states beyond int64", lambda p: gs.exact_gradient(NET, X, T, max_states=2**70),
     ValueError, r"max_states must be an int >= 1 and <= 4611686018427387904"),
    ("tol of None", lambda p: gs.analyze(NET, X, T, "st", tol=None), TypeError,
     r"tol must be a finite number >= 0, got NoneType None"),
    ("scale as a string", lambda p: gs.BinaryNetwork.random((2, 3, 2), scale="abc"),
     TypeError, r"scale must be a finite number >= 0.0 and <= 1e\+100, got str 'abc'"),
    ("seed of -1", lambda p: gs.sample_gradients(NET, X, T, "st", 4, seed=-1), ValueError,
     r"seed must be a non-negative int.*got the negative int -1"),
    ("seed of -1, analysed",
     lambda p: gs.analyze(NET, X, T, "st", method="mc", n_samples=10, seed=-1), ValueError,
     r"seed must be a non-negative int"),
    ("seed as a string", lambda p: gs.analyze(NET, X, T, "st", seed="x"), TypeError,
     r"seed must be a non-negative int"),
    ("random network seed of -1", lambda p: gs.BinaryNetwork.random((2, 3, 2), seed=-1),
     ValueError, r"seed must be a non-negative int"),
    ("bootstrap seed of -1",
     lambda p: variance_interval(np.arange(30.0), method="bootstrap", seed=-1), ValueError,
     r"seed must be a non-negative int"),
    ("Wilson successes as a float", lambda p: wilson_interval(1.5, 10), TypeError,
     r"successes must be an int"),
    ("loss as a number", lambda p: gs.BinaryNetwork((2, 3, 2), loss=3), TypeError,
     r"loss must be one of \['bce', 'linear', 'mse', 'xent'\], got int 3"),
    ("values of None", lambda p: gs.BinaryNetwork((2, 3, 2), values=None), TypeError,
     r"values must be one of \['01', 'pm1'\]"),
    ("full_cov as a string", lambda p: gs.estimator_moments(NET, X, T, "st", full_cov="yes"),
     TypeError, r"full_cov must be True or False, got str 'yes'"),
    ("engine as a number", lambda p: gs.estimator_moments(NET, X, T, "st", engine=3),
     TypeError, r"engine must be one of"),
    ("n_samples as a string",
     lambda p: gs.analyze(NET, X, T, "st", method="mc", n_samples="10"), TypeError,
     r"n_samples must be an int >= 2"),
    ("rng as a seed", lambda p: gs.sample_noise(NET, "st", 0), TypeError,
     r"rng must be a numpy.random.Generator"),
    ("noise without a network", lambda p: gs.sample_noise(None, "st", np.random.default_rng()),
     TypeError, r"net must be a gradstat.BinaryNetwork, got NoneType"),
    ("forward_pass u with NaN", lambda p: gs.forward_pass(NET, X, T, [0.5, np.nan, 0.5]),
     ValueError, r"u contains 1 NaN or infinite value"),
    ("unbiased check alpha of 2", lambda p: check_unbiased("st", (NET, X, T), alpha=2.0),
     ValueError, r"alpha must be a finite number > 0.0 and < 1.0"),
    ("unbiased check method", lambda p: check_unbiased("st", (NET, X, T), method="quick"),
     ValueError, r"method must be one of \['auto', 'exact', 'mc'\]"),
    ("unbiased check seed of -1", lambda p: check_unbiased("st", (NET, X, T), seed=-1),
     ValueError, r"seed must be a non-negative int"),
    ("contract n_samples of 1", lambda p: check_estimator_contract("st", n_samples=1),
     ValueError, r"n_samples must be >= 2"),
    ("contract claim as a string", lambda p: check_estimator_contract("st", unbiased="yes"),
     TypeError, r"unbiased must be True or False"),
    ("test alpha as a string", lambda p: unbiasedness_test(np.ones((5, 2)), np.ones(2),
                                                           alpha="0.05"), TypeError,
     r"alpha must be a finite number"),
    ("planned tests over no coordinate", lambda p: required_samples(0.1, 1.0, n_params=0),
     ValueError, r"n_params must be an int >= 1"),
    ("strategy max_weight as a string", lambda p: networks(max_weight="2"), TypeError,
     r"max_weight must be a finite number >= 0.0 and <= 1e\+50, got str '2'"),
    ("strategy max_weight 1e300", lambda p: networks(max_weight=1e300), TypeError,
     r"max_weight must be a finite number >= 0.0 and <= 1e\+50"),
    ("strategy losses as a number", lambda p: networks(losses=5), TypeError,
     r"losses must be a non-empty subset of \['bce', 'linear', 'mse', 'xent'\], got 5"),
    ("strategy values as a number", lambda p: networks(values=1), TypeError,
     r"values must be a non-empty subset"),
    ("strategy max_input 1e300", lambda p: problems(max_input=1e300), TypeError,
     r"max_input must be a finite number"),
    ("strategy targets without a network", lambda p: targets(None, 2), TypeError,
     r"net must be a gradstat.BinaryNetwork"),
    ("strategy targets of no examples", lambda p: targets(NET, 0), TypeError,
     r"batch must be an int >= 1"),
    ("strategy max_magnitude as a string",
     lambda p: extreme_logit_networks(max_magnitude="x"), TypeError,
     r"max_magnitude must be a finite number"),
    ("config that is not UTF-8", lambda p: ReportConfig.from_toml(_not_utf8(p / "bad.toml")),
     ValueError, r"config '.*bad\.toml' is not UTF-8 text .*byte b'\\xff' at offset 18"),
    ("config named by a number", lambda p: ReportConfig.from_toml(7), TypeError,
     r"path must be a file path"),
    ("config that is a folder", lambda p: ReportConfig.from_toml(p), ValueError,
     r"config '.*' is a folder"),
    ("config n_samples beyond int64", lambda p: ReportConfig(n_samples=10**30), ValueError,
     r"'n_samples' must be at most 2\^63 - 1"),
    ("config scale 1e200", lambda p: RandomNetworks((2, 3, 1), scale=1e200), ValueError,
     r"'scale' must be a finite number >= 0 and <= 1e\+100"),
    ("config option 1e300", lambda p: ReportConfig.from_mapping(
        {"estimators": [{"name": "rebar", "options": {"eta": 1e300}}]}), ValueError,
     r"estimators\[0\]: eta must be a finite number >= -1e\+150"),
    # -- advice that fits the call -----------------------------------------------------------
    ("Monte Carlo analysis of 2^30 states",
     lambda p: gs.analyze(WIDE, X, np.zeros(1), "st", method="mc", n_samples=10, seed=0),
     ValueError, r"^the exact gradient \(the reference of a Monte Carlo analysis\) enumerates "
     r"all 2\^30 = 1,073,741,824 .*analyze\(method='mc'\) measures bias against this exact "
     r"gradient, which Monte Carlo draws of 'st' do not replace.*"
     r"gradstat\.stats\.compare_estimators\('st', 'reinforce'"),
    ("exact gradient of 2^30 states", lambda p: gs.exact_gradient(WIDE, X, np.zeros(1)),
     ValueError, r"exact_gradient enumerates all 2\^30 = 1,073,741,824 joint hidden states.*"
     r"gradstat\.sample_gradients\(net, x, t, 'reinforce'"),
    ("oracle baseline of 2^30 states",
     lambda p: gs.sample_gradients(WIDE, X, np.zeros(1), "reinforce", 4, seed=0,
                                   baseline="mean"), ValueError,
     r"the 'mean' baseline \(an exact oracle\) enumerates all 2\^30.*use baseline='none' or a "
     r"constant"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), [row[1:] for row in ROWS],
                         ids=[row[0] for row in ROWS])  # fmt: skip
def test_bad_input_is_refused_clearly(tmp_path, call, error, match):
    assert error in (ValueError, TypeError)
    with pytest.raises(error, match=match) as caught:
        call(tmp_path)
    # The command line prints one line per error: no numba traceback, no chained cause.
    assert "numba" not in type(caught.value).__module__
    assert caught.value.__cause__ is None


def test_the_table_covers_every_class():
    assert len(ROWS) >= 100
    assert len({row[0] for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: gs.BinaryNetwork((40000, 50000, 1)),
        lambda p: gs.estimator_moments(NET, X, T, "reinforce_loo", k=10**15),
        lambda p: gs.estimator_moments(NET, X, T, "reinforce_loo", k=65536),
        lambda p: gs.sample_gradients(NET, X, T, "reinforce_loo", 2, seed=0, k=10**9),
        lambda p: gs.sample_gradients(NET, X, T, "st", 2**30, seed=0),
        lambda p: gs.load_network(_forged(p / "a.npz", [2, 2, 1], (200_000_000,), 1_600_000)),
        lambda p: gs.load_network(_forged(p / "b.npz", [0, 25_000_000, 1], (50_000_001,),
                                          1_600_000)),
        lambda p: gs.load_network(_forged(p / "c.npz", [2, 2, 1], (10**12,), 72)),
        lambda p: gs.exact_gradient(gs.BinaryNetwork((0, 2000, 1)), np.zeros(0), np.zeros(1)),
    ],
    ids=["2e9 parameters", "k=1e15", "k=65536", "k=1e9", "2^30 draws", "2e8 params file",
         "5e7 params file", "1e12 params file", "2^2000 states"],
)  # fmt: skip
def test_oversized_requests_are_refused_at_once_without_allocating(tmp_path, call):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError):
            call(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 10.0
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.1f} MiB before refusing"


def test_limits_are_inclusive_and_valid_inputs_still_work(tmp_path):
    # The largest accepted options and magnitudes run; their numbers are unchanged.
    assert gs.get_estimator("rebar").resolve_options({"eta": 1e150})["eta"] == 1e150
    assert gs.get_estimator("st_tempered").resolve_options({"tau": 1e-150})["tau"] == 1e-150
    assert gs.get_estimator("reinforce_loo").resolve_options({"k": 65536})["k"] == 65536
    big = gs.BinaryNetwork.random((2, 3, 2), scale=1e100, seed=0)
    assert np.all(np.isfinite(big.params))
    # Sizes given as a numpy array, a range or whole floats are sequences of integers.
    for sizes in (np.array([3, 2, 1]), range(3, 0, -1), [3.0, 2.0, 1.0]):
        assert gs.BinaryNetwork(sizes).sizes == (3, 2, 1)
    # A network file round-trips through the header checks bit for bit.
    back = gs.load_network(NET.save(tmp_path / "n.npz"))
    assert back.params.tobytes() == NET.params.tobytes()
    # BinaryNetwork.random draws exactly what numpy.random.default_rng(seed) gives.
    rng = np.random.default_rng(5)
    parts = []
    for fan_in, fan_out in ((2, 3), (3, 2)):
        parts += [rng.normal(0.0, 1.5 / np.sqrt(fan_in), fan_in * fan_out),
                  rng.normal(0.0, 1.5, fan_out)]  # fmt: skip
    expected = np.concatenate(parts)
    assert np.array_equal(gs.BinaryNetwork.random((2, 3, 2), scale=1.5, seed=5).params, expected)
    # The comparison seed may be a sequence, the sampling seed a SeedSequence.
    ss = np.random.SeedSequence(3)
    a = gs.sample_gradients(NET, X, T, "st", 8, seed=ss)
    assert np.array_equal(a, gs.sample_gradients(NET, X, T, "st", 8, seed=3))


def test_a_per_state_function_that_works_passes_the_probe():
    @numba.njit
    def zero_per_state(theta, sizes, x, t, u, a, p, h, y, dy, C, out):
        out[:] = 0.0

    spec = gs.per_state_estimator(zero_per_state, noise="continuous")
    draws = gs.sample_gradients(NET, X, T, spec, 4, seed=0)
    assert draws.shape == (4, NET.n_params) and not np.any(draws)


def test_state_counts_too_large_to_print_are_described_by_their_exponent():
    """2^16000 pairs of layer states: the message gives the power, not 4,817 digits."""
    net = gs.BinaryNetwork((0, 8000, 8000, 1))
    x, t = np.zeros(0), np.zeros(1)
    with pytest.raises(ValueError, match=r"2\^16000 \(about 10\^4,816\) pairs"):
        gs.exact_gradient(net, x, t)
    with pytest.raises(ValueError, match=r"layer-wise messages are not available.*2\^16000"):
        gs.estimator_moments(net, x, t, "st", engine="layerwise")
