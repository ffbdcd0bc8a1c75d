"""A grid's tasks: identities, Monte Carlo seeds and fingerprints."""

from __future__ import annotations

import hashlib

import numpy as np
from sweep_grid import GRID, N_TASKS

from gradstat.sweep import grid_tasks, task_seed


def test_task_identities_and_seeds_are_stable():
    tasks = grid_tasks(GRID)
    assert len(tasks) == N_TASKS
    assert tasks[0].identity == "2-2-1_mse_seed0/st"
    assert tasks[2].identity == "2-2-1_mse_seed0/reinforce baseline=optimal"
    # seeding = "task": SeedSequence(mc_seed, spawn_key=(128 bits of SHA-256(identity),)).
    key = int.from_bytes(hashlib.sha256(b"2-2-1_mse_seed0/st").digest()[:16], "little")
    expected = int(np.random.SeedSequence(3, spawn_key=(key,)).generate_state(1, np.uint64)[0])
    assert tasks[0].seed == task_seed(3, "2-2-1_mse_seed0/st") == expected
    assert len({t.seed for t in tasks}) == N_TASKS
    assert [t.fingerprint for t in grid_tasks(GRID)] == [t.fingerprint for t in tasks]
    common = grid_tasks({**GRID, "seeding": "common"})
    assert {t.seed for t in common} == {3}
    exact = grid_tasks({**GRID, "method": "exact", "n_samples": None})
    assert all(t.method == {"method": "exact"} and t.seed is None for t in exact)
