"""What a worker process does first: ignore Ctrl-C and die with the program that started it.

This module imports nothing of scai's and lives at the package's top (``scai/__init__.py``
imports nothing either) because a spawned worker imports the module of its process class and
initializer before it runs anything else: from :mod:`scai.inference` that would be torch, Pyro
and pandas, seconds during which a worker whose parent is already dead would live on
unwatched. From here the parent-death signal and the watchdog are in place within a fraction
of a second of the start. :mod:`scai.inference.workers` builds its pools on this.

Workers are forked from a *worker server* (:func:`start_worker_server`: multiprocessing's
forkserver), a process that imports the workers' modules (torch, Pyro, ArviZ, ...) once, runs
nothing, and forks a worker per request: a worker starts with them imported, in milliseconds
instead of the ~3 s each spawned worker spent importing. (Where there is no forkserver, workers
are spawned: :class:`SpawnContext`.) Forking is safe there because the server computes nothing
and starts no thread: no lock or thread pool (torch's intra-op threads) is copied half-way.
(OpenBLAS, loaded by NumPy and SciPy, starts idle threads of its own, and stops them before
each fork.)

A worker lives only as long as the program that started it: it watches that program (a
Linux pidfd, which becomes readable when the program ends, or its pid elsewhere) and its own
parent (the kernel's parent-death signal, ``prctl(PR_SET_PDEATHSIG)``, and a watchdog thread:
:func:`orphaned`). Code that writes from a worker calls :func:`exit_if_orphaned` first. Workers
ignore ``SIGINT`` from their start: a terminal sends it to the whole process group, and Ctrl-C
is the parent's to handle.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing.context
import os
import select
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator

#: How often a worker's watchdog checks its parent (seconds).
WATCH_SECONDS = 0.2
#: ``prctl``'s option number on Linux (``<linux/prctl.h>``).
PR_SET_PDEATHSIG = 1
#: The signal the kernel sends a worker when its parent dies. Not ``SIGKILL``: the kernel sends
#: it when the *thread* that started the worker ends, even if the program goes on, so the
#: handler checks that the parent really is gone before exiting.
PARENT_DEATH_SIGNAL = signal.SIGHUP

_parent: int | None = None  # in a worker: the pid of the process that started it
_program: int | None = None  # in a worker: the pid of the program whose pool it serves
_program_fd: int | None = None  # a Linux pidfd of that program: readable once it has ended


def orphaned() -> bool:
    """True in a worker whose program has ended, or whose parent (the program, or its worker
    server) has died; False in the program."""
    if _parent is None:
        return False
    if os.getppid() != _parent:
        return True
    if _program == _parent:  # spawned: the parent is the program
        return False
    if _program_fd is not None:
        return bool(select.select([_program_fd], [], [], 0)[0])
    return not _alive(_program)


def _alive(pid: int | None) -> bool:
    """Whether a process exists (without a pidfd: a zombie counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_if_orphaned() -> None:
    """End this worker at once if its parent has died: nothing is written after it."""
    if orphaned():
        os._exit(1)


class BlockedStart:
    """A process started with Ctrl-C blocked: the new process inherits the blocked signal, so
    a Ctrl-C while it starts cannot interrupt it (with a traceback) before :func:`start_worker`
    ignores the signal for good; the parent's own Ctrl-C is only held back until the process
    has started. (multiprocessing starts its resource tracker the same way.)"""

    def start(self) -> None:
        if not hasattr(signal, "pthread_sigmask"):
            return super().start()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class SpawnProcess(BlockedStart, multiprocessing.context.SpawnProcess):
    """A spawned process, started with Ctrl-C blocked (:class:`BlockedStart`)."""


class SpawnContext(multiprocessing.context.SpawnContext):
    """The spawn context whose processes are :class:`SpawnProcess`."""

    Process = SpawnProcess


class ForkServerProcess(BlockedStart, multiprocessing.context.ForkServerProcess):
    """A process forked by the worker server, started with Ctrl-C blocked
    (:class:`BlockedStart`): a server started on the way is started blocked too, and a forked
    worker inherits the server's mask until :func:`start_worker` ignores the signal."""


class ForkServerContext(multiprocessing.context.ForkServerContext):
    """The forkserver context whose processes are :class:`ForkServerProcess`."""

    Process = ForkServerProcess


#: What the worker server imports before it forks a worker: what computing a condition (and
#: saving its posterior as NetCDF) or an MCMC chain imports. A module missing here is imported
#: by each worker when first needed (slower, not wrong); one not installed is skipped.
WORKER_MODULES = (
    "scai.experiments.runner",
    "scai.inference.nuts",
    "scai.inference.arviz_io",
    "h5netcdf",
)
#: What the server imports too unless told that the workers fit by the exact engine alone:
#: ArviZ (MCMC's and the human-data fits' diagnostics, SVI's importance check) with xarray
#: (which imports ``dask.distributed``, where installed, on first use: ~1 s per worker). ArviZ
#: 0.23 writes a once-a-day stamp file on import, through a fixed temporary name: processes
#: importing it at the same moment race on that name and one import fails
#: (FileNotFoundError). Imported by the server, it is imported once; its workers inherit it.
#: With them, SymPy, which torch imports (~0.5-1 s of CPU) on the first
#: ``torch.broadcast_shapes``: torch's ``MultivariateNormal``, in SVI's guides (the exact
#: engine's Gaussian prior does without: ``scai.models.prior.ScalarGaussian``).
ARVIZ_MODULES = ("arviz", "xarray", "dask.distributed", "torch.fx.experimental.symbolic_shapes")


@contextlib.contextmanager
def ignoring_ctrl_c() -> Iterator[None]:
    """Ignore Ctrl-C for the block: the cleanup after a first Ctrl-C (stopping the workers,
    removing unfinished files), which a second one would cut short with a traceback. Only in
    the main thread (where Python's signal handlers are set); elsewhere a plain block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def holding_ctrl_c() -> Iterator[None]:
    """Hold Ctrl-C back for the block, whose threads and processes must not get it (a
    terminal sends it to the whole process group, and each child would print a traceback where
    the program says one line and stops them): SIGINT is blocked in this thread, not ignored,
    so that what the block starts inherits it blocked, and one that came meanwhile is raised
    here as ``KeyboardInterrupt`` as the block ends (ignored, it was lost: a Ctrl-C while a
    local Dask cluster started let the sweep run to its end). A thread started before the
    block may take it at once: then it is raised in the block. Where signals cannot be
    blocked (Windows), :func:`ignoring_ctrl_c`; outside the main thread, a plain block."""
    if not hasattr(signal, "pthread_sigmask"):
        with ignoring_ctrl_c():
            yield
        return
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:  # a SIGINT that came meanwhile is delivered now
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def forkserver_available() -> bool:
    """Whether this platform has multiprocessing's forkserver (Linux, macOS)."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def start_worker_server(arviz: bool = True) -> None:
    """Start the worker server now, in the background, if this platform has one and it is not
    running: it imports :data:`WORKER_MODULES` (and :data:`ARVIZ_MODULES` unless ``arviz`` is
    false: the workers fit by the exact engine alone), ~2.5-3 s of CPU, before it forks any
    worker, and :func:`scai.inference.workers.worker_pool` forks its workers from it.

    The server imports :mod:`scai.worker_start_server` first, so it ends with this program
    even while it imports, and ignores Ctrl-C from its start (that module's first lines), as its
    workers do until :func:`start_worker`. This module imports nothing heavy so that
    ``scai run`` can start the server before importing torch itself (~2.3 s): the two import
    at once, on two cores.

    Not forking from the program itself: a program that has computed holds torch's thread
    pools and other threads, which a forked child would inherit in an unknown state. The
    server computes nothing and starts no thread; the only threads it holds are OpenBLAS's
    idle workers (started when NumPy and SciPy load it), which OpenBLAS stops before each fork
    (its own fork handler) and a child starts afresh when it needs them."""
    if not forkserver_available():
        return
    from multiprocessing import forkserver

    modules = [*WORKER_MODULES, *(ARVIZ_MODULES if arviz else ())]
    preload = ["scai.worker_start_server", *modules, "scai.worker_start_ready"]
    forkserver.set_forkserver_preload(preload)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def keep_freed_memory() -> None:
    """Let this process reuse the memory it frees instead of handing it back to the system.

    The exact engine's grids are tensors of up to a few hundred MB, allocated and freed many
    times per fit. glibc's ``malloc`` serves such blocks with ``mmap`` and returns them with
    ``munmap``, so each one costs its pages' faults again (measured: 3.6 of a generalization
    condition's 10 s of CPU were system time). With the ``mmap`` threshold at 1 GiB and the
    trim threshold at 2 GiB, freed blocks stay in the heap for the next tensor. The memory a
    process holds at its peak is unchanged; the arithmetic is untouched. Elsewhere than glibc
    (or if ``mallopt`` is missing) this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(M_MMAP_THRESHOLD, 1 << 30)
    mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1)


#: ``mallopt``'s option numbers (``<malloc.h>``).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def start_worker(parent: int) -> None:
    """Each worker's initializer: ignore Ctrl-C, exit when the program ``parent`` (the pid of
    the process that made the pool) or this worker's own parent (the program, or the worker
    server) dies, keep freed memory for reuse (:func:`keep_freed_memory`), show warnings
    on one line each (:func:`_one_line_warning`), and draw progress bars without a
    semaphore (:func:`_bars_without_a_semaphore`)."""
    global _parent, _program, _program_fd
    _parent, _program = os.getppid(), parent
    if parent != _parent and hasattr(os, "pidfd_open"):
        try:
            _program_fd = os.pidfd_open(parent)
        except ProcessLookupError:
            os._exit(1)  # the program has already ended
        except OSError:  # an old kernel: watch its pid
            _program_fd = None
    keep_freed_memory()
    warnings.formatwarning = _one_line_warning
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # blocked since the start (SpawnProcess)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(PARENT_DEATH_SIGNAL, _on_parent_death_signal)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0)
    threading.Thread(target=_watch_parent, name="scai-parent-watchdog", daemon=True).start()
    exit_if_orphaned()  # the parent died before the signal was set up
    _bars_without_a_semaphore()  # tqdm: imported by the server already, or light


def _bars_without_a_semaphore() -> None:
    """tqdm's bars share a lock that it makes, by default, as a multiprocessing lock: in a
    worker, a named POSIX semaphore. Ctrl-C kills the workers, and Python's resource tracker
    then found each worker's semaphore left behind ("There appear to be 2 leaked semaphore
    objects" after an interrupted run whose workers had made a bar: human-data's chains). A
    worker's bars are its own (it shares no lock with the program: workers are forked from
    the server), so a thread lock does. (A Dask cluster's workers, ``scai sweep --backend
    dask``, are the cluster's processes, not these: their bars are left as tqdm makes them.)"""
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning a worker shows itself as one line, ``scai: warning: Category: message``: the
    workers write to the program's terminal, where Python's form (the file, line and source of
    the ``warn`` call) reads as a crash. (scai's own warnings while a condition is computed are
    stored with its results and told by the run, naming the condition; those of a condition
    that fails are shown here, naming it: :mod:`scai.experiments.runner`.)"""
    text = " ".join(str(message).split())
    return f"scai: warning: {category.__name__}: {text}\n"


def die_with_parent() -> None:
    """End this process when its parent does (the worker server's first act): on Linux the
    kernel's parent-death signal, whose handler exits only if the parent is really gone (the
    signal also comes when the parent's *thread* that started this process ends). No thread
    is started. Elsewhere this does nothing."""
    parent = os.getppid()

    def on_signal(signum, frame) -> None:
        if os.getppid() != parent:
            os._exit(1)

    if not sys.platform.startswith("linux"):
        return
    signal.signal(PARENT_DEATH_SIGNAL, on_signal)
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0)


def _on_parent_death_signal(signum, frame) -> None:
    exit_if_orphaned()  # otherwise only the starting thread ended (or a terminal hung up)


def _watch_parent() -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        exit_if_orphaned()  # os._exit from this thread ends the whole process
