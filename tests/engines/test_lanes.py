"""Straight-through draws computed several at a time (gradstat.engines.lanes).

Each lane of :func:`gradstat.engines.lanes.surrogate_lanes` must be, bit for bit, the
draw the general per-draw code (``draw_estimate``) makes: compared here on drawn
networks (depths from one layer, {0, 1} and ±1 units, every loss, batches), for every
estimator of the fast path, with draw counts that are not multiples of the lane count,
through every caller: ``sample_gradients``, per-example blocks, estimates from given
noise and the streaming sums of ``analyze(method="mc")``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradstat as gs
from gradstat.engines import sampling, streaming
from gradstat.engines.gradient import problem_batch
from gradstat.engines.lanes import LANE_ROWS, LANES, lane_noise, surrogate_lanes
from gradstat.estimators.user import resolve_estimator
from gradstat.kernels.philox import fill_noise, stream_key
from gradstat.kernels.workspace import DY, WS_ROWS, Y
from gradstat.problem import make_problem
from gradstat.strategies import problems

FAST = [("st", {}), ("st_sigmoid", {}), ("st_tempered", {"tau": 2.5}), ("reinmax", {"tau": 1.5})]


def _same(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def _everything(net, X, T, name, options, n, u):
    """Every caller's numbers: batch draws, per-example blocks, the estimate from given
    noise, and the streaming sums against a reference with exact zeros."""
    spec, opts = resolve_estimator(name, options)
    problem = make_problem(net, X, T)
    rng = np.random.default_rng(n)
    G = rng.normal(scale=0.1, size=(problem.n_examples, problem.n_compressed))
    G[:, ::3] = 0.0
    seg = problem.segment_starts()
    return (
        gs.sample_gradients(net, X, T, name, n, seed=2, **options),
        np.concatenate(
            list(sampling.draw_blocks(problem, spec, opts, n, np.random.SeedSequence(3)))
        ),  # fmt: skip
        gs.estimate_from_noise(net, X[0], T[0], name, u, **options),
        *streaming.mc_group_sums(
            problem,
            spec,
            opts,
            n,
            np.random.SeedSequence(4),
            10**6,
            G,
            problem.descent_weights(G),
            seg,
            min(3, n),
        ),  # fmt: skip
    )


@given(
    problem=problems(
        max_batch=3, max_depth=4, max_width=4, max_stochastic=12, values=("01", "pm1")
    ),  # fmt: skip
    which=st.sampled_from(FAST),
    n=st.integers(1, 23),
)
def test_lanes_draw_the_general_numbers_bit_for_bit(problem, which, n):
    net, X, T = problem
    name, options = which
    u = np.random.default_rng(n).uniform(size=net.n_stochastic)
    spec, opts = resolve_estimator(name, options)
    prob = make_problem(net, X, T)
    sampler = sampling.make_sampler(prob, spec, opts, np.random.SeedSequence(0))
    batch, _ = problem_batch(prob, spec.unit_mode(prob.mode))
    assert sampling.surrogate_table(spec, sampler.opts, batch).size > 0
    fast = _everything(net, X, T, name, options, n, u)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sampling, "FAST_SURROGATES", ())
        general = _everything(net, X, T, name, options, n, u)
    for a, b in zip(fast, general, strict=True):
        assert _same(a, b)


@pytest.mark.parametrize("m", range(1, LANES + 1))
def test_each_lane_is_one_draw_of_surrogate_estimate(m):
    """Lane by lane against the one-draw function, with ``m`` draws in the lanes (the
    others repeat the last draw) and scratch full of NaN: nothing is read before it is
    written."""
    net = gs.BinaryNetwork.random((3, 4, 5, 3, 2), loss="bce", seed=1, values="pm1")
    rng = np.random.default_rng(2)
    problem = make_problem(net, rng.normal(size=(2, 3)), rng.uniform(size=(2, 2)))
    spec, _ = resolve_estimator("reinmax", {"tau": 1.7})
    opts = np.array([1.7])
    batch, geo = problem_batch(problem, spec.unit_mode(problem.mode))
    jac1 = sampling.surrogate_table(spec, opts, batch)
    key = stream_key(np.random.SeedSequence(9))
    n, N, cols = problem.n_compressed, net.n_stochastic, problem.n_compressed
    U, S, E = np.empty((N, LANES)), np.full((LANE_ROWS, cols, LANES), np.nan), np.empty((LANES, n))
    ws, u, e = np.full((WS_ROWS, cols), np.nan), np.empty(N), np.empty(n)
    sizes, woff, boff, uoff = geo
    for b in range(2):
        lane_noise(key, 10, m, b, False, sampling.NO_NOISE, u, U)
        surrogate_lanes(spec.code, opts, batch.theta, geo, batch.L1, jac1, b,
                        batch.T[b], batch.loss, U, S, ws[Y, :2], ws[DY, :2], E)  # fmt: skip
        for q in range(LANES):
            fill_noise(key, 10 + min(q, m - 1), b, False, u)
            assert np.array_equal(U[:, q], u)
            sampling.surrogate_estimate(spec.code, opts, batch.theta, sizes, woff, boff, uoff,
                                        batch.L1, jac1, b, batch.T[b], batch.loss, u, ws,
                                        ws[Y, :2], ws[DY, :2], e)  # fmt: skip
            assert _same(E[q], e)


@pytest.mark.parametrize("per_example", [False, True])
def test_lanes_from_given_noise_are_the_general_draws(per_example):
    """Noise passed in (seven draws of a batch: one lane group and a partial one)."""
    net = gs.BinaryNetwork.random((3, 4, 3, 2), loss="xent", seed=2)
    rng = np.random.default_rng(3)
    problem = make_problem(net, rng.normal(size=(2, 3)), np.array([0, 1]))
    spec, opts = resolve_estimator("st_sigmoid", {})
    sampler = sampling.make_sampler(problem, spec, opts, np.random.SeedSequence(1))
    noise = rng.uniform(size=(7, 2, net.n_stochastic))
    width = 2 * problem.n_compressed if per_example else net.n_params
    runs = []
    for codes in (sampling.FAST_SURROGATES, ()):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sampling, "FAST_SURROGATES", codes)
            out = np.empty((7, width))
            sampler.fill(out, per_example=per_example, noise=noise)
            runs.append(out)
    assert _same(*runs)
