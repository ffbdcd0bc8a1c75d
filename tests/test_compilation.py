"""One compiled specialisation per kernel, the thread defaults and the compile notice."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numba.core.dispatcher import Dispatcher

import gradstat as gs
from gradstat.compilation import (
    NOTICE,
    THREAD_DEFAULTS,
    WARMUP_TASKS,
    _CompileNotice,
    apply_thread_defaults,
    clear_stale_cache,
    is_cached,
)

ROOT = Path(__file__).resolve().parents[1]


def signature_counts() -> dict[str, int]:
    """The number of compiled signatures of every numba dispatcher of gradstat's modules."""
    counts = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("gradstat.") or module is None:
            continue
        for attr, value in vars(module).items():
            if isinstance(value, Dispatcher):
                counts[f"{value.py_func.__module__}.{attr}"] = len(value.signatures)
    return counts


def flavours(a: np.ndarray) -> list[np.ndarray]:
    """``a`` (1-D or 2-D float64) as read-only, non-contiguous, Fortran-ordered, float32
    and integer-valued arrays, and as a list."""
    readonly = a.copy()
    readonly.setflags(write=False)
    strided = np.repeat(a, 2, axis=-1)[..., ::2]
    assert not strided.flags.c_contiguous or a.shape[-1] <= 1
    out = [readonly, strided, np.asfortranarray(a), a.astype(np.float32), a.tolist()]
    if np.all(a == np.round(a)):
        out.append(a.astype(np.int64))
    return out


NET = gs.BinaryNetwork.random((3, 2, 2, 1), seed=0)
ONE = gs.BinaryNetwork.random((3, 2, 1), seed=0)
X1 = np.array([1.0, -1.0, 2.0])
T1 = np.array([0.5])
X2 = np.array([[1.0, -1.0, 2.0], [0.0, 1.0, 1.0]])
T2 = np.array([[0.5], [1.0]])


def calls(x: object, t: object, u: object) -> list[Callable[[], object]]:
    """A call of every public entry point that runs a kernel."""
    return [
        lambda: gs.exact_gradient(NET, x, t),
        lambda: gs.exact_gradient(ONE, x, t),
        lambda: gs.expected_loss(NET, x, t),
        lambda: gs.estimator_moments(NET, x, t, "st"),
        lambda: gs.estimator_moments(NET, x, t, "reinforce_loo", engine="joint"),
        lambda: gs.estimator_moments(NET, x, t, "st", engine="layerwise"),
        lambda: gs.analyze(NET, x, t, "arm", method="mc", n_samples=8, seed=0),
        lambda: gs.sample_gradients(NET, x, t, "st", 8, seed=0),
        lambda: gs.estimate_from_noise(NET, x, t, "st", u),
    ]


def test_input_flavours_add_no_specialisation() -> None:
    u1 = np.full(NET.n_stochastic, 0.25)
    u2 = np.tile(u1, (2, 1))
    for x, t, u in ((X1, T1, u1), (X2, T2, u2)):
        for call in calls(x, t, u):
            call()
    gs.forward_pass(ONE, X1, T1, np.full(ONE.n_stochastic, 0.5))
    before = signature_counts()
    assert sum(before.values()) > 10  # the kernels above did compile
    for x, t, u in ((X1, T1, u1), (X2, T2, u2)):
        variants = [(fx, t, u) for fx in flavours(x)]
        variants += [(x, ft, u) for ft in flavours(t)]
        variants += [(x, t, fu) for fu in flavours(u)]
        for args in variants:
            for call in calls(*args):
                call()
    for fx, fu in zip(flavours(X1), flavours(np.full(ONE.n_stochastic, 0.5))):
        gs.forward_pass(ONE, fx, T1, fu)
    after = signature_counts()
    grown = {k: (before.get(k, 0), v) for k, v in after.items() if v != before.get(k, 0)}
    assert grown == {}


def test_flavours_give_the_same_numbers() -> None:
    want = gs.exact_gradient(NET, X2, T2)
    for fx, ft in zip(flavours(X2), flavours(T2)):
        np.testing.assert_array_equal(gs.exact_gradient(NET, fx, ft), want)


def test_thread_defaults_respect_the_user() -> None:
    env: dict[str, str] = {}
    assert apply_thread_defaults(env) == THREAD_DEFAULTS
    assert env == THREAD_DEFAULTS
    for mine in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"):
        env = {mine: "42"}
        assert apply_thread_defaults(env) == {}
        assert env == {mine: "42"}


def test_import_sets_thread_defaults_only_when_unset() -> None:
    code = "import os, gradstat; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k not in THREAD_DEFAULTS}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.strip() == "ACTIVE"


def test_import_leaves_heavy_packages_out() -> None:
    code = (
        "import sys, gradstat; print(sorted(m for m in ('scipy.stats', 'matplotlib', "
        "'hypothesis', 'dask', 'gradstat.report', 'gradstat.sweep') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.strip() == "[]", run.stderr
    assert callable(gs.sweep) and callable(gs.run_report)
    import gradstat.sweep  # noqa: F401  (binding the subpackage keeps the function)

    assert callable(gs.sweep)


class _Event:
    def __init__(self, dispatcher: object) -> None:
        self.data = {"dispatcher": dispatcher}


def test_compile_notice_once_for_cached_gradstat_functions() -> None:
    from gradstat.kernels.forward import loss_and_grad

    stream = io.StringIO()
    notice = _CompileNotice(stream)
    user = _Event(object())  # not a gradstat function: no notice
    notice.on_start(user)
    notice.on_end(user)
    assert stream.getvalue() == ""
    ours = _Event(loss_and_grad)
    for _ in range(2):
        notice.on_start(ours)
        notice.on_start(user)
        notice.on_end(user)
        notice.on_end(ours)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(NOTICE.split("{")[0])
    assert notice.compiled == 5 and notice.depth == 0


def test_silenced_process_prints_no_notice(tmp_path: Path) -> None:
    """``silence_compile_notice`` before numba's first import (as ``gradstat warmup``'s
    workers do): numba's import installs the notice on the way, and no second, unsilenced
    one may print when a kernel then compiles from an empty cache."""
    code = (
        "import numpy as np\n"
        "from gradstat.compilation import silence_compile_notice\n"
        "silence_compile_notice()\n"
        "from gradstat.engines.streaming import _pairwise_block\n"
        "print(_pairwise_block(np.ones(9), 0, 9))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.strip() == "9.0", run.stderr
    assert NOTICE.split("{")[0] not in run.stderr
    assert any(tmp_path.rglob("*.nbi"))  # it did compile, into the empty cache


def test_warm_kernels_are_cached() -> None:
    from gradstat.engines.gradient import gradient_kernel

    gs.exact_gradient(NET, X1, T1)
    assert is_cached(gradient_kernel)


@pytest.mark.parametrize("name", list(WARMUP_TASKS))
def test_warmup_tasks_run(name: str) -> None:
    WARMUP_TASKS[name]()


def test_shared_task_compiles_the_estimators_code_for_the_kernels_signature() -> None:
    """The shared task compiles the same signature as the kernels' calls: one copy."""
    from gradstat.compilation import SHARED_TASK
    from gradstat.estimators.dispatch import _draw_any

    WARMUP_TASKS[SHARED_TASK]()
    gs.estimator_moments(NET, X1, T1, "reinforce", engine="joint")
    gs.analyze(NET, X1, T1, "arm", method="mc", n_samples=8, seed=0)
    assert len(_draw_any.signatures) == 1


def test_independent_tasks_do_not_call_the_estimators_code() -> None:
    """What runs beside the shared task in a fresh process loads no estimator code (a
    cached kernel loads the code it calls, so a warm cache shows it too)."""
    from gradstat.compilation import INDEPENDENT_TASKS

    code = (
        "from gradstat.compilation import WARMUP_TASKS\n"
        "from gradstat.estimators.dispatch import _draw_any\n"
        f"for name in {INDEPENDENT_TASKS!r}: WARMUP_TASKS[name]()\n"
        "print(len(_draw_any.signatures))"
    )
    env = {**os.environ, "GRADSTAT_COMPILE_AHEAD": "0"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.strip() == "0", run.stderr


def test_warmup_in_processes_runs_the_shared_task_first() -> None:
    from gradstat.compilation import SHARED_TASK, warmup

    lines: list[str] = []
    names = ["noise sources", "exact gradient", SHARED_TASK]
    assert warmup(2, names, report=lines.append) > 0
    done = [line.split(":")[0].strip() for line in lines]
    assert sorted(done) == sorted(names)
    assert done.index(SHARED_TASK) < done.index("noise sources")  # submitted after it


def test_warmup_command_then_nothing_is_cold(capsys: pytest.CaptureFixture[str]) -> None:
    from gradstat.cli import main
    from gradstat.compilation import cold_kernels

    assert main(["warmup", "--jobs", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("gradstat warmup: compiling every kernel in 1 process")
    assert [line.split(":")[0].strip() for line in out[1:-1]] == list(WARMUP_TASKS)
    assert out[-1].startswith("gradstat warmup: done in ")
    assert cold_kernels() == []


def test_compile_ahead_only_when_cold_and_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradstat import compilation

    stream = io.StringIO()
    monkeypatch.setattr(compilation, "cold_kernels", lambda: [])
    assert compilation.compile_ahead(jobs=2, stream=stream) is None  # a warm cache
    monkeypatch.setattr(compilation, "cold_kernels", lambda: list(compilation.KERNEL_SECONDS))
    assert compilation.compile_ahead(jobs=1, stream=stream) is None  # one core
    monkeypatch.setenv(compilation.AHEAD_VARIABLE, "0")
    assert compilation.compile_ahead(jobs=2, stream=stream) is None  # switched off
    assert stream.getvalue() == ""
    assert compilation.compile_ahead_for("sweep") is None  # compiles as it goes
    assert compilation.compile_ahead_for("report", workers=2) is None  # its own workers
    assert set(compilation.AHEAD_TASKS["summary"] or ()) <= set(WARMUP_TASKS)


def test_compile_ahead_runs_tasks_in_two_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradstat import compilation

    monkeypatch.setattr(compilation, "cold_kernels", lambda: ["gradstat.engines.joint:x"])
    monkeypatch.setattr(compilation, "KERNEL_SECONDS", {"gradstat.engines.joint:x": 9})
    stream = io.StringIO()
    wall = compilation.compile_ahead(["exact gradient"] * 2, jobs=2, stream=stream)
    assert wall is not None and wall > 0
    assert stream.getvalue() == compilation.AHEAD_NOTICE.format(jobs=2, seconds=9) + "\n"


def test_a_changed_source_file_clears_the_package_cache_only(tmp_path, monkeypatch):
    """numba checks only the file defining a cached function; clear_stale_cache catches a
    change anywhere in the package (here a sub-package's file) and removes the package's
    cache files, keeping other modules' files in the same folders."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr("numba.core.config.CACHE_DIR", "")
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "sub/__init__.py", "sub/b.py"):
        (package / name).write_text("")
    ours = [
        "__pycache__/a.f-1.py311.nbi",
        "__pycache__/a.f-1.py311.1.nbc",
        "sub/__pycache__/b.g-2.py311.nbi",
    ]
    other = package / "__pycache__" / "other.h-3.py311.nbi"

    def plant() -> None:
        for name in ours:
            (package / name).parent.mkdir(exist_ok=True)
            (package / name).write_text("compiled")
        other.write_text("compiled")

    plant()
    assert clear_stale_cache(package) == 3  # no stamp yet: stale
    assert other.exists() and not any((package / name).exists() for name in ours)
    plant()
    assert clear_stale_cache(package) == 0  # unchanged sources
    assert all((package / name).exists() for name in ours)
    os.utime(package / "sub" / "b.py", ns=(10**9, 10**9))
    assert clear_stale_cache(package) == 3
    assert other.exists() and not any((package / name).exists() for name in ours)
