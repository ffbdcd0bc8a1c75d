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


@pytest.mark.parametrize("retries", [2, 0])
def test_a_lost_worker_of_the_sweeps_own_pool_is_replaced(
    reference, tmp_path, monkeypatch, retries
):
    marker = tmp_path / "killed"
    spawn = multiprocessing.get_context("spawn")
    pools = []

    def poisoned_pool(n_workers):
        pools.append(n_workers)
        return concurrent.futures.ProcessPoolExecutor(
            n_workers, mp_context=spawn, initializer=_poisoned_worker, initargs=(str(marker), 2)
        )

    monkeypatch.setattr(sweep_executors, "_spawn_pool", poisoned_pool)
    result = gs.sweep(GRID, executor=2, out=tmp_path / "out", retries=retries)
    assert marker.exists()
    lost = [o for o in result.failed if "BrokenProcessPool" in o.error]
    if retries == 0:  # a worker died: the tasks its pool held are recorded, not rerun
        assert pools == [2] and result.retried == 0 and lost
        assert all("its worker process died on its only attempt" in o.error for o in lost)
        assert len(result.outcomes) == N_TASKS
        result = gs.sweep(GRID, executor="serial", out=tmp_path / "out", resume=True)
    else:
        assert pools == [2, 2] and result.retried > 0 and not lost  # a new pool took over
    check_complete(tmp_path / "out", reference)


class FlakyExecutor(concurrent.futures.ThreadPoolExecutor):
    """One thread; its first ``failures`` submissions fail outside the analysis."""

    def __init__(self, failures: int) -> None:
        super().__init__(1)
        self.failures = failures

    def submit(self, fn, /, *args, **kwargs):
        if self.failures > 0:
            self.failures -= 1
            future = concurrent.futures.Future()
            future.set_exception(RuntimeError("lost in transport"))
            return future
        return super().submit(fn, *args, **kwargs)


@pytest.mark.parametrize(
    ("failures", "retries", "retried", "given_up"),
    [(2, 1, 2, []), (2, 0, 0, [0, 1]), (13, 1, 12, [0]), (13, 2, 13, [])],
)
def test_errors_outside_the_analysis_are_retried_and_counted(
    reference, tmp_path, failures, retries, retried, given_up
):
    """One task per submission (12 batches): the first ``failures`` submissions fail."""
    with FlakyExecutor(failures) as executor:
        result = gs.sweep(GRID, executor=executor, out=tmp_path, retries=retries, batch=1)
    assert result.retried == retried
    lost = [o for o in result.failed if "lost in transport" in o.error]
    tasks = {t.identity: t.index for t in result.tasks}
    assert sorted(tasks[o.identity] for o in lost) == given_up
    attempts = (
        "its only attempt (retries = 0)" if retries == 0 else f"each of {retries + 1} attempts"
    )
    assert all(f"raised outside the analysis on {attempts}; resume" in o.error for o in lost)
    if given_up:
        gs.sweep(GRID, executor="serial", out=tmp_path, resume=True)
    check_complete(tmp_path, reference)


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
def test_dask_retries_count_like_a_pool(reference, tmp_path):
    """dask_client's cluster gives up at a worker's first death: ``retries`` decides."""
    pytest.importorskip("distributed")
    with dask_client(n_workers=2) as client:
        marker = tmp_path / "killed-0"
        client.run(arm_poison, str(marker), 2)
        first = gs.sweep(GRID, executor=client, out=tmp_path / "none", retries=0)
        assert marker.exists() and first.retried == 0 and len(first.outcomes) == N_TASKS
        lost = [o for o in first.failed if "KilledWorker" in o.error]
        assert lost and all("its worker process died on its only attempt" in o.error for o in lost)
        marker = tmp_path / "killed-1"
        client.run(arm_poison, str(marker), 2)
        result = gs.sweep(GRID, executor=client, out=tmp_path / "one", retries=1)
    assert marker.exists() and result.retried > 0 and len(result.failed) == N_FAILING
    check_complete(tmp_path / "one", reference)


@DASK_SLOW_DISK
def test_dask_reruns_the_tasks_of_a_killed_worker(reference, tmp_path):
    """A scheduler started elsewhere reschedules them itself (allowed-failures)."""
    distributed = pytest.importorskip("distributed")
    marker = tmp_path / "killed"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        pids = set(client.run(arm_poison, str(marker), 2).values())
        result = gs.sweep(GRID, executor=client, out=tmp_path / "out")
    assert int(marker.read_text()) in pids  # one worker died in the middle of the sweep
    assert len(result.outcomes) == N_TASKS and len(result.failed) == N_FAILING
    assert result.retried == 0  # Dask reran them, unseen by the sweep
    check_complete(tmp_path / "out", reference)
