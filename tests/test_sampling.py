"""Monte Carlo draws: per-sample identities, reproducibility, agreement with exact moments."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import gradstat as gs
from gradstat.engines import sampling
from gradstat.engines.gradient import problem_batch
from gradstat.estimators.user import resolve_estimator
from gradstat.problem import make_problem


def _sigmoid(a: float) -> float:
    return 1.0 / (1.0 + np.exp(-a))


# sizes (1, 1, 1, 1): a1 = w1 x + c1, a2 = w2 h1 + c2, y = wo h2 + bo, C = 0.5 (y - t)^2.
W1, C1, W2, C2, WO, BO = 0.7, -0.3, 1.3, 0.4, -0.9, 0.2
X, T = 1.5, 0.25
NET = gs.BinaryNetwork((1, 1, 1, 1), [W1, C1, W2, C2, WO, BO], loss="mse")
A1 = W1 * X + C1
P1 = _sigmoid(A1)


@pytest.mark.parametrize("name", ["st", "st_sigmoid", "reinforce"])
def test_per_sample_identity_binary_estimators(name):
    # u = (0, 1): unit 1 fires (0 < p1), unit 2 stays off (1 < p2 is false).
    h1, h2 = 1.0, 0.0
    a2 = W2 * h1 + C2
    p2 = _sigmoid(a2)
    y = WO * h2 + BO
    dy = y - T
    loss = 0.5 * dy**2
    if name == "reinforce":
        s_b1, s_b2 = h1 - P1, h2 - p2
        want = [loss * s_b1 * X, loss * s_b1, loss * s_b2 * h1, loss * s_b2, dy * h2, dy]
    else:
        j1, j2 = (1.0, 1.0) if name == "st" else (P1 * (1 - P1), p2 * (1 - p2))
        delta2 = WO * dy * j2
        delta1 = W2 * delta2 * j1
        want = [delta1 * X, delta1, delta2 * h1, delta2, dy * h2, dy]
    got = gs.estimate_from_noise(NET, [X], [T], name, [0.0, 1.0])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-16)


def test_per_sample_identity_sts():
    # u = (0, 0): both bits fire; the units pass on h = sqrt(p).
    h1 = np.sqrt(P1)
    a2 = W2 * h1 + C2
    p2 = _sigmoid(a2)
    h2 = np.sqrt(p2)
    dy = WO * h2 + BO - T
    delta2 = WO * dy * h2 * (1 - p2) / 2
    delta1 = W2 * delta2 * h1 * (1 - P1) / 2
    want = [delta1 * X, delta1, delta2 * h1, delta2, dy * h2, dy]
    got = gs.estimate_from_noise(NET, [X], [T], "sts", [0.0, 0.0])
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-16)


def test_reinforce_with_baseline_per_sample():
    got = gs.estimate_from_noise(NET, [X], [T], "reinforce", [0.0, 1.0], baseline=0.5)
    p2 = _sigmoid(W2 + C2)
    loss = 0.5 * (BO - T) ** 2
    want_b1 = (loss - 0.5) * (1 - P1)
    want_b2 = (loss - 0.5) * (0 - p2)
    np.testing.assert_allclose(got[[1, 3]], [want_b1, want_b2], rtol=1e-14)


@pytest.mark.parametrize(
    ("name", "options"),
    [("st", {}), ("st_sigmoid", {}), ("sts", {}), ("reinforce", {"baseline": "optimal"})],
)
def test_monte_carlo_mean_within_standard_errors(name, options):
    """Seeded; per coordinate |z| < 5 has false-alarm rate 5.7e-7 (Bonferroni over
    the 35 coordinates: < 2e-5 per case), so a failure means a real discrepancy."""
    net = gs.BinaryNetwork.random((4, 3, 3, 2), loss="mse", seed=0)
    x, t = np.ones(4), np.zeros(2)
    exact = gs.estimator_moments(net, x, t, name, **options)
    n = 20_000
    draws = gs.sample_gradients(net, x, t, name, n, seed=123, **options)
    se = np.sqrt(exact.var / n)
    live = se > 0
    z = (draws.mean(axis=0)[live] - exact.mean[live]) / se[live]
    assert np.max(np.abs(z)) < 5.0
    np.testing.assert_allclose(draws.mean(axis=0)[~live], exact.mean[~live], atol=1e-12)


def _philox_noise(seed, draw, example, size, normal=False):
    """The documented stream of one (draw, example), rebuilt with numpy's own Philox.

    numpy increments the counter before each block, so counter ``(n, b, j, 0)`` is reached
    from ``counter=(n - 1, b, j, 0)`` (``draw >= 1`` here).
    """
    key = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    words = np.concatenate(
        [
            np.random.Philox(key=key, counter=[draw - 1, example, j, 0]).random_raw(4)
            for j in range(-(-size // 4))
        ]
    )
    u = ((words >> np.uint64(12)).astype(np.float64) + 0.5) * 2.0**-52
    if not normal:
        return u[:size]
    r = np.sqrt(-2.0 * np.log(u[0::2]))
    angle = 2.0 * np.pi * u[1::2]
    z = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1).ravel()
    return z[:size]


def test_philox_kernel_matches_numpy():
    """gradstat.kernels.philox.philox4x64 is numpy.random.Philox's block function, bit for bit."""
    from gradstat.kernels.philox import philox4x64

    for key, counter in [
        ((0, 0), (0, 0, 0, 0)),
        ((123456789, 2**64 - 1), (7, 3, 2**63, 5)),
        ((2**64 - 1, 1), (2**64 - 1, 0, 0, 0)),
    ]:
        key = np.array(key, dtype=np.uint64)
        want = np.random.Philox(key=key, counter=np.array(counter, dtype=np.uint64)).random_raw(4)
        c = np.array(counter, dtype=object)
        c[0] += 1
        if c[0] == 2**64:  # the carry of numpy's 256-bit increment
            c[0], c[1] = 0, c[1] + 1
        got = philox4x64(*(np.uint64(v) for v in c), key[0], key[1])
        assert [int(w) for w in got] == [int(w) for w in want]


@pytest.mark.parametrize(
    ("name", "sizes", "normal"),
    [("sts", (2, 4, 3, 2), False), ("arm", (2, 3, 2, 2), False), ("rebar", (2, 3, 2), False),
     ("noisy_rectifier", (2, 3, 2, 2), True)],
)  # fmt: skip
def test_draws_follow_the_documented_streams(name, sizes, normal):
    """Draw n of example b reads Philox4x64-10 with counter (n, b, j, 0), as documented."""
    net = gs.BinaryNetwork.random(sizes, loss="mse", seed=2)
    X = np.random.default_rng(1).normal(size=(2, sizes[0]))
    T = np.random.default_rng(2).normal(size=(2, sizes[-1]))
    draws = gs.sample_gradients(net, X, T, name, 8, seed=11)
    M = gs.sample_noise(net, name, np.random.default_rng(0)).shape[1]
    for n in (1, 6):
        u = np.stack([_philox_noise(11, n, b, M, normal) for b in range(2)])
        assert np.array_equal(draws[n], gs.estimate_from_noise(net, X, T, name, u))


def test_stream_uniforms_and_normals_are_calibrated():
    """Seeded Kolmogorov-Smirnov tests of 40,000 stream numbers each; a correct generator
    fails one of the two with probability 2e-6."""
    from scipy import stats

    from gradstat.kernels.philox import fill_noise

    key = np.random.SeedSequence(5).generate_state(2, dtype=np.uint64)
    u, z = np.empty((4000, 10)), np.empty((4000, 10))
    for n in range(4000):
        fill_noise(key, n, 0, False, u[n])
        fill_noise(key, n, 0, True, z[n])
    assert 0.0 < u.min() and u.max() < 1.0
    assert stats.kstest(u.ravel(), "uniform").pvalue > 1e-6
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-6


def _per_example_draws(net, X, T, name, n, seed):
    """All of draw_blocks' per-example estimates, in the full layout: (n, B, n_params)."""
    from gradstat.estimators.user import resolve_estimator
    from gradstat.problem import expand_mean, make_problem

    spec, opts = resolve_estimator(name, {})
    problem = make_problem(net, X, T)
    seq = np.random.SeedSequence(seed)
    blocks = np.concatenate(list(sampling.draw_blocks(problem, spec, opts, n, seq)))
    return np.stack([expand_mean(problem, b, spec.full_layout) for b in blocks])


def _python_st_sigmoid(net, x, t, rng):
    u = rng.random(net.n_stochastic)
    return gs.estimate_from_noise(net, x, t, "st_sigmoid", u)


@numba.njit
def _noise_per_state(theta, sizes, x, t, u, a, p, h, y, dy, loss_value, out):
    for k in range(out.shape[0]):
        out[k] = loss_value * u[k % u.shape[0]] + h[k % h.shape[0]]


USER_NOISE = gs.per_state_estimator(_noise_per_state, noise="continuous")


@pytest.mark.parametrize("name", ["st_sigmoid", "gumbel_st", "user", "python"])
def test_draws_identical_for_any_threads_chunks_and_blocks(monkeypatch, name):
    """Bit-identical draws for 1 and 2 threads, any chunk, staging or block size; the
    per-example draws of draw_blocks (what analyze reads) are sample_gradients' draws."""
    estimator = {"user": USER_NOISE, "python": _python_st_sigmoid}.get(name, name)
    net = gs.BinaryNetwork.random((3, 5, 4, 2), loss="mse", seed=3)
    x, t = np.array([0.5, -1.0, 2.0]), np.array([0.1, -0.3])
    n = 300 if name == "python" else 3000
    monkeypatch.setattr(gs.problem, "PARALLEL_MIN_WORK", 0)  # use every thread at any size
    monkeypatch.setattr(sampling, "PYTHON_CHUNK", 64)  # several generators, blocks aligned
    before = numba.get_num_threads()
    runs = []
    try:
        for threads, chunk, stage, block in [(1, 256, 2048, 2**22), (2, 7, 50, 1000)]:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            monkeypatch.setattr(sampling, "CHUNK_DRAWS", chunk)
            monkeypatch.setattr(sampling, "STAGE_VALUES", stage)
            monkeypatch.setattr(sampling, "BLOCK_VALUES", block)
            runs.append(
                (
                    gs.sample_gradients(net, x, t, estimator, n, seed=9),
                    _per_example_draws(net, x, t, estimator, n, 9)[:, 0],
                )
            )
    finally:
        numba.set_num_threads(before)
    (a, a_blocks), (b, b_blocks) = runs
    assert np.array_equal(a, b) and np.array_equal(a_blocks, b_blocks)
    assert np.array_equal(a, a_blocks)
    assert not np.array_equal(a, gs.sample_gradients(net, x, t, estimator, n, seed=10))


def test_batch_draws_average_the_per_example_draws():
    net = gs.BinaryNetwork.random((2, 4, 3, 2), loss="xent", seed=2)
    X = np.random.default_rng(1).normal(size=(3, 2))
    T = np.array([0, 1, 1])
    batch = gs.sample_gradients(net, X, T, "sts", 500, seed=9)
    per_example = _per_example_draws(net, X, T, "sts", 500, 9)
    np.testing.assert_allclose(batch, per_example.mean(axis=1), rtol=1e-13, atol=1e-15)


def test_batch_estimate_is_mean_of_examples():
    net = gs.BinaryNetwork.random((2, 3, 2), loss="mse", seed=4)
    X = np.array([[1.0, -1.0], [0.5, 2.0]])
    T = np.array([[0.1, 0.2], [0.3, -0.4]])
    u = np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.4]])
    both = gs.estimate_from_noise(net, X, T, "st_sigmoid", u)
    one = [gs.estimate_from_noise(net, X[b], T[b], "st_sigmoid", u[b]) for b in range(2)]
    np.testing.assert_allclose(both, (one[0] + one[1]) / 2, rtol=1e-14)


def test_one_draw_is_the_first_of_many():
    """``n_samples=1`` (a training step) is allowed, and draw k depends on the seed and k
    alone, so one draw equals the first of several."""
    net = gs.BinaryNetwork.random((2, 3, 1), seed=0)
    x, t = np.ones(2), np.ones(1)
    one = gs.sample_gradients(net, x, t, "st", 1, seed=5)
    three = gs.sample_gradients(net, x, t, "st", 3, seed=5)
    assert one.shape == (1, net.n_params)
    np.testing.assert_array_equal(one[0], three[0])
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        gs.sample_gradients(net, x, t, "st", 0, seed=5)


@pytest.mark.parametrize(
    ("name", "options", "sizes", "loss", "values"),
    [
        ("st_sigmoid", {}, (3, 5, 4, 2), "mse", "01"),
        ("st", {}, (2, 3, 2, 3, 1), "bce", "01"),
        ("st_tempered", {"tau": 2.5}, (3, 4, 3), "xent", "pm1"),
        ("reinmax", {"tau": 1.5}, (2, 3, 4, 2), "mse", "pm1"),
        ("st_sigmoid", {}, (4, 6, 1), "mse", "pm1"),
    ],
)
def test_straight_through_fast_path_draws_the_general_numbers(
    monkeypatch, name, options, sizes, loss, values
):
    """surrogate_estimate gives draw_estimate's numbers bit for bit (signed zeros too):
    seeded draws of a batch, per-example draws and estimates from given noise."""
    net = gs.BinaryNetwork.random(sizes, loss=loss, seed=5, values=values)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(3, sizes[0]))
    T = rng.integers(0, sizes[-1], size=3) if loss == "xent" else rng.uniform(size=(3, sizes[-1]))
    u = rng.uniform(size=net.n_stochastic)
    spec, opts = resolve_estimator(name, options)
    problem = make_problem(net, X, T)
    sampler = sampling.make_sampler(problem, spec, opts, np.random.SeedSequence(0))
    batch, _ = problem_batch(problem, problem.mode)
    assert sampling.surrogate_table(spec, sampler.opts, batch).shape == (3, 2, sizes[1])

    def draws():
        seed = np.random.SeedSequence(3)
        return (
            gs.sample_gradients(net, X, T, name, 700, seed=2, **options),
            np.concatenate(list(sampling.draw_blocks(problem, spec, opts, 300, seed))),
            gs.estimate_from_noise(net, X[0], T[0], name, u, **options),
        )

    fast = draws()
    monkeypatch.setattr(sampling, "FAST_SURROGATES", ())
    general = draws()
    for a, b in zip(fast, general, strict=True):
        assert a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))
