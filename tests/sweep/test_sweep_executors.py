"""Executors: process pools (the sweep's own and given ones), Dask, lost workers."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import sys

import pytest
from sweep_grid import DASK_SLOW_DISK, GRID, N_FAILING, N_TASKS, arm_poison, check_complete

import gradstat as gs
from gradstat.cli import main
from gradstat.sweep import DASK_HINT, dask_client
from gradstat.sweep import executors as sweep_executors


def test_process_pools_give_identical_rows(reference, tmp_path):
    gs.sweep(GRID, executor=2, out=tmp_path / "own")
    check_complete(tmp_path / "own", reference)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:
        result = gs.sweep(GRID, executor=pool, out=tmp_path / "given")
    assert result.executor == "ProcessPoolExecutor"
    check_complete(tmp_path / "given", reference)


def _poisoned_worker(marker: str, after: int) -> None:
    """Initializer of a pool worker: the sweep's own, then :func:`arm_poison`."""
    sweep_executors._init_pool_worker()
    arm_poison(marker, after)


def test_a_lost_worker_of_the_sweeps_own_pool_is_replaced(reference, tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    spawn = multiprocessing.get_context("spawn")
    pools = []

    def poisoned_pool(n_workers):
        pools.append(n_workers)
        return concurrent.futures.ProcessPoolExecutor(
            n_workers, mp_context=spawn, initializer=_poisoned_worker, initargs=(str(marker), 2)
        )

    monkeypatch.setattr(sweep_executors, "_spawn_pool", poisoned_pool)
    result = gs.sweep(GRID, executor=2, out=tmp_path / "out")
    assert marker.exists() and pools == [2, 2]  # a worker died; a new pool took over
    assert result.retried > 0 and result.failed == tuple(o for o in result.outcomes if not o.ok)
    check_complete(tmp_path / "out", reference)


def test_a_lost_worker_of_a_given_pool_is_recorded_then_resumed(reference, tmp_path):
    marker = tmp_path / "killed"
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        2, mp_context=spawn, initializer=arm_poison, initargs=(str(marker), 2)
    ) as pool:
        first = gs.sweep(GRID, executor=pool, out=tmp_path / "out")
    assert marker.exists()
    lost = [o for o in first.failed if "BrokenProcessPool" in o.error]
    assert lost and "resume to run it again" in lost[0].error
    assert len(first.outcomes) == N_TASKS  # recorded, not dropped
    result = gs.sweep(GRID, executor="serial", out=tmp_path / "out", resume=True)
    assert result.reused == N_TASKS - len(first.failed) > 0
    check_complete(tmp_path / "out", reference)


def test_bad_executors_and_missing_dask(tmp_path, monkeypatch, capsys):
    with pytest.raises(TypeError, match="executor must be None"):
        gs.sweep(GRID, executor="threads", out=tmp_path)
    with pytest.raises(ValueError, match="must be an int >= 1, got 0"):
        gs.sweep(GRID, executor=0, out=tmp_path)
    with pytest.raises(ValueError, match="retries must be an int >= 0"):
        gs.sweep(GRID, executor="serial", out=tmp_path, retries=-1)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match="gradstat\\[dask\\]"), dask_client(n_workers=1):
        pass
    for flags in (["--dask-local", "2"], ["--scheduler", "tcp://127.0.0.1:1"]):
        with pytest.raises(SystemExit) as stop:
            main(["report", "--sizes", "2,2,1", "--out", str(tmp_path), *flags])
        assert stop.value.code == 2 and DASK_HINT in capsys.readouterr().err


@DASK_SLOW_DISK
def test_dask_local_cluster_gives_identical_rows(reference, tmp_path):
    pytest.importorskip("distributed")
    with dask_client(n_workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        result = gs.sweep(GRID, executor=client, out=tmp_path)
    assert result.executor.startswith("Dask (tcp://127.0.0.1:")
    check_complete(tmp_path, reference)


@DASK_SLOW_DISK
def test_dask_reruns_the_tasks_of_a_killed_worker(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    marker = tmp_path / "killed"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        pids = set(client.run(arm_poison, str(marker), 2).values())
        result = gs.sweep(GRID, executor=client, out=tmp_path / "out")
    assert int(marker.read_text()) in pids  # one worker died in the middle of the sweep
    assert len(result.outcomes) == N_TASKS and len(result.failed) == N_FAILING
    check_complete(tmp_path / "out", reference)
