"""Monte Carlo sums accumulated inside the sampling kernel (gradstat.engines.streaming).

The streaming sums are compared with NumPy accumulations of the same draws: bit for bit
with the block-wise loop the kernel replaced (it sums in the same order), and to a tight
relative tolerance with a plain accumulation of ``sample_gradients``' draws (another
summation order). Counts are compared exactly.
"""

from __future__ import annotations

import tracemalloc

import numba
import numpy as np
import pytest

import gradstat as gs
from gradstat.engines import sampling, streaming
from gradstat.estimators.user import resolve_estimator
from gradstat.problem import make_problem


@numba.njit
def _noise_per_state(theta, sizes, x, t, u, a, p, h, y, dy, loss_value, out):
    for k in range(out.shape[0]):
        out[k] = loss_value * u[k % u.shape[0]] - h[k % h.shape[0]] + 0.25


USER_NOISE = gs.per_state_estimator(_noise_per_state, noise="continuous")


def _python_st_sigmoid(net, x, t, rng):
    u = rng.random(net.n_stochastic)
    return gs.estimate_from_noise(net, x, t, "st_sigmoid", u)


ESTIMATORS = {"user": USER_NOISE, "python": _python_st_sigmoid}


def _setup(sizes, name, B, seed=0, loss="mse"):
    """A problem, its estimator, and a reference ``G`` (random: the sums do not need the
    exact gradient) with some exact zeros, descent weights and segments."""
    net = gs.BinaryNetwork.random(sizes, loss=loss, seed=seed)
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(B, sizes[0]))
    T = rng.integers(0, sizes[-1], size=B) if loss == "xent" else rng.normal(size=(B, sizes[-1]))
    problem = make_problem(net, X, T)
    spec, opts = resolve_estimator(ESTIMATORS.get(name, name), {})
    full = spec.full_layout
    n = sampling.estimate_width(problem, spec)
    G = rng.normal(scale=0.1, size=(B, n))
    G[:, ::5] = 0.0
    return problem, spec, opts, G, problem.descent_weights(G, full), problem.segment_starts(full)


def _blockwise_sums(problem, spec, opts, n_samples, seed, G, dw, seg, n_groups):
    """The NumPy accumulation over draw_blocks that analyze(method="mc") used before."""
    B, n, n_seg = problem.n_examples, G.shape[1], seg.shape[0] - 1
    s1, s2, agree = (np.zeros((n_groups, B, n)) for _ in range(3))
    desc, counts = np.zeros((n_groups, B, n_seg + 2)), np.zeros(n_groups)
    sign_g = np.sign(G)
    start = 0
    for block in sampling.draw_blocks(problem, spec, opts, n_samples, seed):
        m = block.shape[0]
        group = (np.arange(start, start + m) * n_groups) // n_samples
        d = block - G
        dots = np.add.reduceat(block * dw, seg[:-1], axis=2)
        total = dots.sum(axis=2)
        stochastic = dots[:, :, :-1].sum(axis=2)
        for k in np.unique(group):
            sel = group == k
            counts[k] += sel.sum()
            s1[k] += d[sel].sum(axis=0)
            s2[k] += (d[sel] ** 2).sum(axis=0)
            agree[k] += (np.sign(block[sel]) == sign_g).sum(axis=0)
            desc[k, :, :n_seg] += (dots[sel] > 0).sum(axis=0)
            desc[k, :, n_seg] += (total[sel] > 0).sum(axis=0)
            desc[k, :, n_seg + 1] += (stochastic[sel] > 0).sum(axis=0)
        start += m
    return streaming.GroupSums(counts, s1, s2, agree, desc)


CASES = [
    ("st", (3, 5, 4, 2), 1, 1001),
    ("st_sigmoid", (3, 5, 4, 2), 3, 997),
    ("reinforce", (2, 3, 2, 1, 1), 2, 603),
    ("gumbel_st", (3, 4, 3, 2), 1, 777),
    ("rebar", (2, 3, 2), 2, 401),
    ("user", (3, 4, 2), 2, 555),
    ("python", (2, 3, 2), 1, 150),
]


@pytest.mark.parametrize(("name", "sizes", "B", "n"), CASES)
def test_sums_equal_the_blockwise_numpy_loop_bit_for_bit(monkeypatch, name, sizes, B, n):
    """Small blocks and waves, so that groups straddle blocks and kernel calls."""
    problem, spec, opts, G, dw, seg = _setup(sizes, name, B)
    monkeypatch.setattr(sampling, "BLOCK_VALUES", 37 * B * G.shape[1])
    monkeypatch.setattr(sampling, "PYTHON_CHUNK", 32)
    monkeypatch.setattr(streaming, "PARTIAL_VALUES", 3 * B * (3 * G.shape[1] + seg.shape[0] + 1))
    monkeypatch.setattr(gs.problem, "PARALLEL_MIN_WORK", 0)
    seed = np.random.SeedSequence(42)
    want = _blockwise_sums(problem, spec, opts, n, seed, G, dw, seg, 20)
    got = streaming.mc_group_sums(problem, spec, opts, n, seed, 10**6, G, dw, seg, 20)
    for field, w, g in zip(streaming.GroupSums._fields, want, got, strict=True):
        assert np.array_equal(w, g), field
    assert got.counts.sum() == n and got.desc.max() > 0 and got.agree.max() > 0


@pytest.mark.parametrize(
    ("name", "sizes"),
    [("st_sigmoid", (2, 3, 3, 2)), ("reinforce", (3, 4, 1)), ("gumbel_st", (2, 2, 2, 2, 1))],
)
def test_sums_match_a_plain_accumulation_of_sample_gradients(name, sizes):
    """One example: the compressed estimate is the tail of sample_gradients' draw."""
    n, n_groups = 2003, 7
    problem, spec, opts, G, dw, seg = _setup(sizes, name, 1, seed=3)
    net = problem.net
    draws = gs.sample_gradients(net, problem.X[0], problem.T[0], name, n, seed=8)
    e = draws[:, net.n_params - problem.n_compressed :][:, None, :]
    group = np.arange(n) * n_groups // n
    d = e - G
    dots = np.add.reduceat(e * dw, seg[:-1], axis=2)
    got = streaming.mc_group_sums(
        problem, spec, opts, n, np.random.SeedSequence(8), 10**6, G, dw, seg, n_groups
    )
    for k in range(n_groups):
        sel = group == k
        assert got.counts[k] == sel.sum()
        np.testing.assert_allclose(got.s1[k], d[sel].sum(axis=0), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(got.s2[k], (d[sel] ** 2).sum(axis=0), rtol=1e-12)
        assert np.array_equal(got.agree[k], (np.sign(e[sel]) == np.sign(G)).sum(axis=0))
        want = np.concatenate(
            [dots[sel] > 0, dots[sel].sum(axis=2, keepdims=True) > 0,
             dots[sel][:, :, :-1].sum(axis=2, keepdims=True) > 0], axis=2,
        ).sum(axis=0)  # fmt: skip
        assert np.array_equal(got.desc[k], want)


@pytest.mark.parametrize(
    ("name", "sizes", "B"), [("st_sigmoid", (3, 5, 4, 2), 2), ("reinmax", (2, 4, 3, 1), 1)]
)
def test_fast_straight_through_sums_equal_the_general_ones(monkeypatch, name, sizes, B):
    """The sums of surrogate_estimate's draws are those of draw_estimate's, bit for bit."""
    problem, spec, opts, G, dw, seg = _setup(sizes, name, B)
    runs = []
    for codes in (sampling.FAST_SURROGATES, ()):
        monkeypatch.setattr(sampling, "FAST_SURROGATES", codes)
        seed = np.random.SeedSequence(5)
        runs.append(streaming.mc_group_sums(problem, spec, opts, 1501, seed, 10**6, G, dw,
                                            seg, 20))  # fmt: skip
    for field, a, b in zip(streaming.GroupSums._fields, *runs, strict=True):
        assert np.array_equal(a.view(np.int64), b.view(np.int64)), field


def test_sums_do_not_depend_on_the_thread_count(monkeypatch):
    problem, spec, opts, G, dw, seg = _setup((3, 5, 4, 2), "st_sigmoid", 2)
    monkeypatch.setattr(gs.problem, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(sampling, "BLOCK_VALUES", 100 * 2 * G.shape[1])
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            seed = np.random.SeedSequence(4)
            runs.append(streaming.mc_group_sums(problem, spec, opts, 5001, seed, 10**6, G, dw,
                                                seg, 20))  # fmt: skip
    finally:
        numba.set_num_threads(before)
    for field, a, b in zip(streaming.GroupSums._fields, *runs, strict=True):
        assert np.array_equal(a, b), field


def test_own_mean_is_the_sum_of_the_draws():
    """Against a zero reference, one group's s1 is the sum of the draws, block by block as
    the noisy rectifier's own-model reference summed them."""
    problem, spec, opts, _, _, seg = _setup((3, 4, 2), "noisy_rectifier", 2)
    seed = np.random.SeedSequence(6)
    want = np.zeros((2, problem.n_compressed))
    for block in sampling.draw_blocks(problem, spec, opts, 3001, seed):
        want += block.sum(axis=0)
    zero = np.zeros_like(want)
    sums = streaming.mc_group_sums(problem, spec, opts, 3001, seed, 10**6, zero, zero, seg, 1)
    assert np.array_equal(sums.s1[0], want)


def test_memory_does_not_grow_with_the_draws():
    """No block of draws is materialised: 200,000 draws of 89 values (142 MB) in well
    under a megabyte of NumPy allocations."""
    problem, spec, opts, G, dw, seg = _setup((8, 8, 8, 1), "st", 1)
    seed = np.random.SeedSequence(1)
    streaming.mc_group_sums(problem, spec, opts, 100, seed, 10**6, G, dw, seg, 20)  # compile
    tracemalloc.start()
    try:
        streaming.mc_group_sums(problem, spec, opts, 200_000, seed, 10**6, G, dw, seg, 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_pairwise_sum_follows_numpy():
    rng = np.random.default_rng(0)
    for n in [*range(0, 300), 1000, 4099]:
        a = rng.normal(size=n + 3) * 10.0 ** rng.integers(-8, 8, size=n + 3)
        assert streaming._pairwise(a, 2, n) == a[2 : n + 2].sum()
