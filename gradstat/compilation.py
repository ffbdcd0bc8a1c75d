"""Compilation and threads: fair thread defaults, the first-run notice, ``gradstat warmup``.

* :func:`apply_thread_defaults` (run when :mod:`gradstat` is imported, before numba starts
  its threads) sets ``OMP_WAIT_POLICY=PASSIVE`` and ``KMP_BLOCKTIME=0`` unless the user
  set them (or ``GOMP_SPINCOUNT``): idle OpenMP threads then sleep instead of spinning.
  A spinning thread team beside other busy processes waits for a descheduled member
  for whole time slices at every barrier (a 64x slowdown measured on 2 cores, where a
  fair share is 3x); sleeping costs a few microseconds per parallel region on an idle
  machine, and the kernels run small problems on one thread anyway
  (:func:`gradstat.problem.threads_for`).
* :func:`install_compile_notice` prints one line to stderr the first time this process
  compiles one of gradstat's cached kernels (an empty or stale numba cache), with the
  elapsed time on a terminal; numba reports a compilation through its event API only when
  the on-disk cache missed, so a warm run pays nothing.
* :func:`warmup` (``gradstat warmup``) compiles every kernel ahead of time in several
  processes at once, which fill the same on-disk cache.
* :func:`prepare_numba` runs :func:`clear_stale_cache` and :func:`install_compile_notice`,
  both of which need numba, right after numba's first import in a process that imported
  :mod:`gradstat` (:func:`when_imported`), before any kernel is defined, loaded or
  compiled: ``import gradstat`` itself imports neither numba nor numpy.
* :func:`clear_stale_cache` removes gradstat's
  compiled kernels from numba's cache when any of its source files changed since they
  were cached: numba checks only the file that defines a cached function, so a kernel
  would otherwise keep running the old code of a function it calls from another file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.abc
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any, TextIO

THREAD_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
"""Environment defaults for the OpenMP runtimes numba may use (GNU and Intel)."""

_USER_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "KMP_LIBRARY")


def apply_thread_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set :data:`THREAD_DEFAULTS` in ``environ`` (default ``os.environ``) where unset.

    Nothing is set when the user chose a wait policy of their own (any of
    ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, ``KMP_BLOCKTIME``, ``KMP_LIBRARY``). The
    OpenMP runtime reads these when numba first starts its threads, so this must run
    before the first parallel kernel. Returns what was set.
    """
    env = os.environ if environ is None else environ
    if any(name in env for name in _USER_WAIT_SETTINGS):
        return {}
    for name, value in THREAD_DEFAULTS.items():
        env[name] = value
    return dict(THREAD_DEFAULTS)


class _RunAfter(importlib.abc.Loader):
    """A module's own loader, followed by ``action`` once the module has run."""

    def __init__(self, loader: importlib.abc.Loader, action: Callable[[], None]) -> None:
        self.loader = loader
        self.action = action

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # the module sees its own
        self.loader.exec_module(module)
        self.action()


class _AfterImport(importlib.abc.MetaPathFinder):
    """A finder that lets the other finders find the module ``name`` and runs ``action``
    after its first import; it takes itself off ``sys.meta_path`` on that import."""

    def __init__(self, name: str, action: Callable[[], None]) -> None:
        self.name = name
        self.action = action

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RunAfter(spec.loader, self.action)
        return spec


def when_imported(name: str, action: Callable[[], None]) -> None:
    """Run ``action`` once the top-level module ``name`` is imported: now if it is
    already, else right after its first import in this process (whoever imports it);
    registering the same action again before that import does nothing.

    ``import gradstat`` uses it to prepare numba (:func:`prepare_numba`) without importing
    it: numba takes half a second of CPU to import, and many programs (the command line's
    ``--version``, a script that only reads results) never need it.
    """
    if name in sys.modules:
        action()
    elif not any(
        isinstance(f, _AfterImport) and (f.name, f.action) == (name, action) for f in sys.meta_path
    ):  # once, however often gradstat is imported or reloaded
        sys.meta_path.insert(0, _AfterImport(name, action))


def prepare_numba() -> None:
    """What must happen before numba loads or compiles one of gradstat's kernels:
    :func:`clear_stale_cache`, then :func:`install_compile_notice`."""
    clear_stale_cache()
    install_compile_notice()


STAMP_FILE = "gradstat-sources.stamp"
"""The file, in the cache folder of gradstat's ``__init__.py``, holding the
:func:`source_stamp` its cached kernels were compiled from."""


def source_stamp(package: Path) -> str:
    """A digest of the path, size and modification time of every ``.py`` file under
    ``package`` (what numba checks of one file, for all of them)."""
    digest = hashlib.sha1()
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(package)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_folder(py_file: Path) -> Path | None:
    """The folder where numba caches the functions of ``py_file`` (its own choice among
    ``NUMBA_CACHE_DIR``, ``__pycache__`` beside the file and the user-wide cache)."""
    from numba.core.caching import CacheImpl

    for locator_class in CacheImpl._locator_classes:
        locator = locator_class.from_function(_cache_folder, str(py_file))
        if locator is not None:
            return Path(locator.get_cache_path())
    return None


def clear_stale_cache(package: Path | None = None) -> int:
    """Remove the package's compiled kernels from numba's on-disk cache if any of its
    source files changed since they were cached; returns the number of files removed.

    numba keys a cached function on the file that defines it only, while a kernel
    carries compiled copies of the functions it calls from other files: after an edit
    (or a ``git pull``) of such a callee, the kernel would load from the cache and run the
    old code. The :func:`source_stamp` of the whole package, kept in :data:`STAMP_FILE`,
    catches that; when it differs (or is missing), every cache file of the package's
    modules goes (files of other packages in the same folders stay) and the next call
    compiles afresh. Never raises: a cache that cannot be read or written is left as it is.
    """
    package = Path(__file__).parent if package is None else Path(package)
    try:
        top = _cache_folder(package / "__init__.py")
        if top is None:
            return 0
        stamp, stamp_file = source_stamp(package), top / STAMP_FILE
        if stamp_file.is_file() and stamp_file.read_text() == stamp:
            return 0
        modules: dict[Path, set[str]] = {}
        for path in package.rglob("*.py"):
            folder = path.parent
            modules.setdefault(folder, set()).add(path.stem)
        removed = 0
        for folder, stems in modules.items():
            cache = _cache_folder(folder / f"{next(iter(stems))}.py")
            for file in cache.glob("*.nb[ic]") if cache is not None else ():
                if file.name.split(".")[0] in stems:
                    file.unlink(missing_ok=True)
                    removed += 1
        stamp_file.write_text(stamp)
        return removed
    except (OSError, ImportError, AttributeError):  # a read-only cache, another numba
        return 0


NOTICE = "compiling gradstat's kernels, first run only, about {seconds} s"

KERNEL_SECONDS = {
    "gradstat.engines.joint:moments_kernel": 10,
    "gradstat.engines.sampling:_sample_kernel": 12,
    "gradstat.engines.factored:factored_moments_kernel": 21,
    "gradstat.engines.state_estimates:state_estimates_kernel": 7,
    "gradstat.engines.streaming:_sums_kernel": 11,
    "gradstat.engines.cells:cells_kernel": 9,
    "gradstat.engines.one_layer:one_layer_kernel": 6,
    "gradstat.engines.gradient:gradient_kernel": 6,
    "gradstat.engines.quadrature:quadrature_kernel": 6,
    "gradstat.engines.message_moments:surrogate_stats": 4,
}
"""The largest cached kernels and the seconds of one idle core that compiling each takes
with what it calls (``benchmarks/bench_startup.py --profile``; the first kernel that calls
:func:`gradstat.estimators.dispatch.draw_estimate` also compiles the estimators' one
shared copy): the notice's estimate sums those not cached."""


def _dispatcher(path: str) -> Any:
    module, name = path.split(":")
    found = getattr(sys.modules[module], name, None) if module in sys.modules else None
    return found if hasattr(found, "_cache") else None


def is_cached(dispatcher: Any) -> bool:
    """Whether numba's on-disk cache holds a compiled version of ``dispatcher`` for this
    source, numba version and CPU (reads its small index file; compiles nothing)."""
    try:
        index = dispatcher._cache._cache_file._load_index()
        magic = dispatcher.targetctx.codegen().magic_tuple()
    except Exception:  # an unreadable index is a cache miss
        return False
    return any(key[1] == magic for key in index)


def cold_seconds() -> int:
    """The notice's estimate: :data:`KERNEL_SECONDS` summed over the kernels not cached."""
    return max(1, sum(KERNEL_SECONDS[path] for path in cold_kernels()))


class _CompileNotice:
    """A numba event listener: the notice at the first compilation of a cached gradstat
    function, then (on a terminal) the seconds spent compiling, updated twice a second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.depth = 0
        self.compiled = 0
        self.shown = False
        self.started = 0.0
        self.spent = 0.0
        self.ticker: threading.Thread | None = None
        self.lock = threading.Lock()

    @staticmethod
    def _ours(event: Any) -> bool:
        from numba.core.caching import NullCache

        dispatcher = event.data.get("dispatcher")
        func = getattr(dispatcher, "py_func", None)
        return (
            func is not None
            and func.__module__.startswith("gradstat.")
            and not isinstance(getattr(dispatcher, "_cache", None), NullCache)
        )

    def _terminal(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def on_start(self, event: Any) -> None:
        with self.lock:
            self.depth += 1
            if self.depth == 1:
                self.started = time.perf_counter()
        if not self.shown and self._ours(event):
            self.shown = True
            self.stream.write(NOTICE.format(seconds=cold_seconds()) + "\n")
            self.stream.flush()
            if self._terminal():
                self.ticker = threading.Thread(target=self._tick, daemon=True)
                self.ticker.start()

    def on_end(self, event: Any) -> None:
        with self.lock:
            self.depth -= 1
            self.compiled += 1
            if self.depth == 0:
                self.spent += time.perf_counter() - self.started

    def _tick(self) -> None:
        shown = ""
        while True:
            time.sleep(0.5)
            with self.lock:
                busy = self.depth > 0
                spent = self.spent + (time.perf_counter() - self.started if busy else 0.0)
                text = f"  compiling: {spent:.0f} s, {self.compiled} functions" if busy else ""
            if text != shown:  # the line is erased once compilation stops
                self.stream.write("\r" + text + "\x1b[K")
                self.stream.flush()
                shown = text


_notice: _CompileNotice | None = None


def install_compile_notice(stream: TextIO | None = None) -> None:
    """Print :data:`NOTICE` to ``stream`` (default stderr) when this process first compiles
    a cached gradstat kernel (once per process; installing again does nothing)."""
    global _notice
    if _notice is not None:
        return
    from numba.core import event

    # numba's first import runs prepare_numba (when_imported), which installs the notice:
    # a second one here would print again whatever silence_compile_notice did to the first.
    if _notice is not None:
        return
    notice = _CompileNotice(sys.stderr if stream is None else stream)

    class _Listener(event.Listener):
        # A notice must never break the compilation it reports on.
        def on_start(self, ev: Any) -> None:
            with contextlib.suppress(Exception):
                notice.on_start(ev)

        def on_end(self, ev: Any) -> None:
            with contextlib.suppress(Exception):
                notice.on_end(ev)

    event.register("numba:compile", _Listener())
    _notice = notice


def silence_compile_notice() -> None:
    """No notice in this process (``gradstat warmup``'s workers report for themselves)."""
    install_compile_notice()
    if _notice is not None:
        _notice.shown = True


def _problems() -> tuple[Any, Any, Any, Any, Any]:
    """Tiny problems that reach every kernel: one layer, two layers, a deep narrow stack
    (where messages are cheaper than joint enumeration), an input and a target."""
    import numpy as np

    from gradstat.network import BinaryNetwork

    one = BinaryNetwork.random((3, 2, 1), seed=0)
    two = BinaryNetwork.random((3, 2, 2, 1), seed=0)
    deep = BinaryNetwork.random((3, 9, 9, 9, 1), seed=0)
    return one, two, deep, np.ones(3), np.zeros(1)


def _estimators(exact: bool) -> list[str]:
    from gradstat.estimators import available_estimators, get_estimator

    names = available_estimators()
    return [n for n in names if (get_estimator(n).exact_engine(2) is not None) == exact]


def _warm_estimators() -> None:
    from gradstat.engines.gradient import problem_batch
    from gradstat.estimators.dispatch import compile_draw_any
    from gradstat.problem import make_problem

    _, two, _, x, t = _problems()
    problem = make_problem(two, x, t)
    compile_draw_any(*problem_batch(problem, problem.mode))


def _warm_gradient() -> None:
    from gradstat.exact import exact_gradient, expected_loss

    one, two, deep, x, t = _problems()
    for net in (one, two, deep):
        exact_gradient(net, x, t)
        expected_loss(net, x, t)


def _warm_joint() -> None:
    from gradstat.exact import estimator_moments

    _, two, _, x, t = _problems()
    for name in _estimators(exact=True):
        estimator_moments(two, x, t, name, engine="joint")
    estimator_moments(two, x, t, "st", engine="joint", full_cov=True)
    estimator_moments(two, x, t, "reinforce", engine="joint", baseline="optimal")


def _warm_layerwise_and_cells() -> None:
    from gradstat.exact import estimator_moments

    one, two, _, x, t = _problems()
    for name in ("st", "reinforce"):
        estimator_moments(two, x, t, name, engine="layerwise")
    for name in ("arm", "disarm"):
        estimator_moments(one, x, t, name)


def _warm_quadrature() -> None:
    from gradstat.exact import estimator_moments

    _, two, _, x, t = _problems()
    estimator_moments(two, x, t, "gumbel_st", engine="quadrature")  # gumbel_rao's too


def _warm_noise_sources() -> None:
    from gradstat.noise import noise_decomposition

    _, two, _, x, t = _problems()
    noise_decomposition(two, x, t, "st")
    for name in ("st", "reinforce"):  # the split by messages, for networks too wide to enumerate
        noise_decomposition(two, x, t, name, engine="layerwise")


def _warm_monte_carlo_analysis() -> None:
    from gradstat.analysis import analyze

    _, two, _, x, t = _problems()
    for name in _estimators(exact=False) + ["st_sigmoid", "reinforce"]:
        analyze(two, x, t, name, method="mc", n_samples=64, seed=0)


def _warm_sampling() -> None:
    import numpy as np

    from gradstat.sampling import estimate_from_noise, forward_pass, sample_gradients, sample_noise

    one, two, _, x, t = _problems()
    sample_gradients(two, x, t, "st", 64, seed=0)
    u = sample_noise(two, "st", np.random.default_rng(0))
    estimate_from_noise(two, x, t, "st", u)
    forward_pass(one, x, t, np.full(one.n_stochastic, 0.5))


WARMUP_TASKS: dict[str, Callable[[], None]] = {
    "estimators' code": _warm_estimators,
    "exact gradient": _warm_gradient,
    "exact moments (quadrature)": _warm_quadrature,
    "exact moments (joint)": _warm_joint,
    "exact moments (messages, cells)": _warm_layerwise_and_cells,
    "Monte Carlo analysis": _warm_monte_carlo_analysis,
    "Monte Carlo draws": _warm_sampling,
    "noise sources": _warm_noise_sources,
}
"""What ``gradstat warmup`` runs: tiny problems through the public API that together call
every cached kernel with the argument types of any other call. The first,
:data:`SHARED_TASK`, compiles what most others call; then the largest first."""

SHARED_TASK = "estimators' code"
"""The task the others wait for when they compile in several processes: every kernel but
the exact gradient's calls the estimators' one compiled copy
(:func:`gradstat.estimators.dispatch.compile_draw_any`), and a process that finds it in
the cache loads it instead of compiling it again."""

INDEPENDENT_TASKS = ("exact gradient", "exact moments (quadrature)")
"""Tasks that do not call the estimators' code: they run beside :data:`SHARED_TASK`."""


def _run_task(name: str) -> tuple[str, float]:
    silence_compile_notice()
    start = time.perf_counter()
    WARMUP_TASKS[name]()
    return name, time.perf_counter() - start


def cache_location() -> str:
    """Where numba keeps gradstat's compiled kernels (``NUMBA_CACHE_DIR`` if set)."""
    from numba.core import config

    here = os.path.dirname(os.path.abspath(__file__))
    return config.CACHE_DIR or f"the __pycache__ folders under {here}"


def warmup(
    jobs: int | None = None,
    tasks: Sequence[str] | None = None,
    report: Callable[[str], None] | None = None,
) -> float:
    """Compile every kernel into numba's on-disk cache; returns the wall time in seconds.

    Runs :data:`WARMUP_TASKS` in ``jobs`` worker processes (default: one per core, at most
    one per task); each process compiles what its task calls and saves it in the shared
    cache, so that later runs (and the other processes, for shared functions) load it.
    :data:`SHARED_TASK` runs first, beside :data:`INDEPENDENT_TASKS`; the other tasks
    start once it is done. ``report`` receives one line per finished task, in the order
    they finish.
    """
    names = list(WARMUP_TASKS if tasks is None else tasks)
    jobs = min(len(names), jobs or os.cpu_count() or 1)
    start = time.perf_counter()
    if jobs <= 1:
        done = map(_run_task, names)
        for name, seconds in done:
            if report is not None:
                report(f"  {name}: {seconds:.1f} s")
        return time.perf_counter() - start
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # The shared task first, beside the tasks that do not need it; the rest once it is in
    # the cache (measured on 2 cores, bare gradstat: every process compiling the
    # estimators' code for itself made compiling ahead slower than one process).
    first = [n for n in names if n == SHARED_TASK or n in INDEPENDENT_TASKS]
    first = first if SHARED_TASK in first else []  # nothing to wait for
    context = multiprocessing.get_context("spawn")  # a fresh numba in every worker
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(_run_task, name) for name in first]
        if first:
            futures[first.index(SHARED_TASK)].result()
        futures += [pool.submit(_run_task, name) for name in names if name not in first]
        for future in as_completed(futures):
            name, seconds = future.result()
            if report is not None:
                report(f"  {name}: {seconds:.1f} s")
    return time.perf_counter() - start


def cold_kernels() -> list[str]:
    """The kernels of :data:`KERNEL_SECONDS` that numba's cache does not hold."""
    return [
        path
        for path in KERNEL_SECONDS
        if (dispatcher := _dispatcher(path)) is not None and not is_cached(dispatcher)
    ]


AHEAD_VARIABLE = "GRADSTAT_COMPILE_AHEAD"
"""Set to ``0`` to compile in the command's own process only (no worker processes)."""

AHEAD_NOTICE = "compiling gradstat's kernels in {jobs} processes, first run only, about {seconds} s"


AHEAD_TASKS: dict[str, tuple[str, ...] | None] = {
    "summary": (
        "estimators' code",
        "exact gradient",
        "exact moments (quadrature)",
        "exact moments (joint)",
        "exact moments (messages, cells)",
        "Monte Carlo analysis",
    ),
    "report": None,
    "claims": None,
}
"""The :data:`WARMUP_TASKS` a command compiles ahead when the cache is cold (``None``:
all); commands not listed compile as they go."""


def compile_ahead_for(command: str, workers: Any = None) -> float | None:
    """:func:`compile_ahead` for the command-line ``command`` (nothing for a command not
    in :data:`AHEAD_TASKS`, or one given its own ``workers``, which compile in parallel
    anyway)."""
    if command not in AHEAD_TASKS or workers is not None:
        return None
    return compile_ahead(AHEAD_TASKS[command])


def compile_ahead(
    tasks: Sequence[str] | None = None, jobs: int | None = None, stream: TextIO | None = None
) -> float | None:
    """Compile ``tasks`` (default all of :data:`WARMUP_TASKS`) in worker processes first,
    when numba's cache is cold and the machine has several cores.

    numba compiles one function at a time, so a command that finds the cache cold
    compiles on one core however many there are; :func:`warmup` spreads the kernels over
    ``jobs`` processes (default one per core) that fill the same on-disk cache, and the
    command then loads them. Nothing happens (``None`` is returned) when the cache holds
    every kernel of :data:`KERNEL_SECONDS`, on one core, or when
    :data:`AHEAD_VARIABLE` is ``0``; else one line goes to ``stream`` (default stderr)
    and the wall time is returned.
    """
    import importlib

    names = list(WARMUP_TASKS if tasks is None else tasks)
    jobs = min(len(names), jobs or os.cpu_count() or 1)
    if jobs < 2 or os.environ.get(AHEAD_VARIABLE, "1") == "0":
        return None
    for path in KERNEL_SECONDS:
        importlib.import_module(path.split(":")[0])
    if not cold_kernels():
        return None
    out = sys.stderr if stream is None else stream
    # Measured on 2 cores: each process still compiles some shared code (the shared
    # kernels), so compiling ahead in 2 processes takes about as long as the listed
    # kernels' seconds on one core (92 s listed; the report took 80-84 s, bare gradstat
    # 69-81 s); more cores are assumed to share that work evenly.
    out.write(AHEAD_NOTICE.format(jobs=jobs, seconds=max(1, 2 * cold_seconds() // jobs)) + "\n")
    out.flush()
    silence_compile_notice()  # what is left to compile here is small: no second notice
    return warmup(jobs, names)
