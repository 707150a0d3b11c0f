"""Worker processes kept for the life of the program, and never beyond it.

Starting a worker (spawn, then importing torch, Pyro and ArviZ) costs ~3 s on this machine: as
much as a whole NUTS chain on 200 users. Experiments and MCMC chains therefore reuse one pool
per size instead of starting one per call.

A worker lives only as long as the program that started it. If the parent dies (a SIGKILL, an
out-of-memory kill), each worker exits within a fraction of a second instead of computing, and
writing, for minutes: on Linux the kernel signals it (``prctl(PR_SET_PDEATHSIG)``), and
everywhere a watchdog thread notices that its parent changed (:func:`orphaned`). Code that
writes from a worker calls :func:`exit_if_orphaned` first. Ctrl-C is the parent's to handle:
workers ignore ``SIGINT`` (a terminal sends it to the whole process group), and the parent
calls :func:`stop_workers` to end them at once.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

_POOLS: dict[int, ProcessPoolExecutor] = {}

#: How often a worker's watchdog checks its parent (seconds).
WATCH_SECONDS = 0.2
#: ``prctl``'s option number on Linux (``<linux/prctl.h>``).
PR_SET_PDEATHSIG = 1
#: The signal the kernel sends a worker when its parent dies. Not ``SIGKILL``: the kernel sends
#: it when the *thread* that started the worker ends, even if the program goes on, so the
#: handler checks that the parent really is gone before exiting.
PARENT_DEATH_SIGNAL = signal.SIGHUP

_parent: int | None = None  # in a worker: the pid of the program that started it


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """The program's pool of ``workers`` spawned processes (created on first use, shut down at
    exit). Spawn, not fork: a forked child inherits torch's thread pools in an unknown state."""
    if workers not in _POOLS:
        context = multiprocessing.get_context("spawn")
        _POOLS[workers] = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )
        atexit.register(_POOLS[workers].shutdown)
    return _POOLS[workers]


def shutdown_workers() -> None:
    """Stop every pool once its work is done (the next :func:`worker_pool` starts fresh
    processes)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown()


def stop_workers(timeout: float = 5.0) -> None:
    """Stop every pool now: cancel the tasks not yet started and kill the workers without
    waiting for the tasks they are running (what Ctrl-C needs). Every process this program
    started through :mod:`multiprocessing` is a pool's worker, so all are killed; each is
    waited for (at most ``timeout`` seconds in all) so none is left behind."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=False, cancel_futures=True)
    children = multiprocessing.active_children()
    for child in children:
        child.kill()
    end = time.monotonic() + timeout
    for child in children:
        child.join(max(0.0, end - time.monotonic()))


def orphaned() -> bool:
    """True in a worker whose parent has died (it was re-parented); False in the parent."""
    return _parent is not None and os.getppid() != _parent


def exit_if_orphaned() -> None:
    """End this worker at once if its parent has died: nothing is written after it."""
    if orphaned():
        os._exit(1)


def _start_worker(parent: int) -> None:
    """Each worker's initializer: ignore Ctrl-C, and exit when ``parent`` dies."""
    global _parent
    _parent = parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(PARENT_DEATH_SIGNAL, _on_parent_death_signal)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0)
    threading.Thread(target=_watch_parent, name="scai-parent-watchdog", daemon=True).start()
    exit_if_orphaned()  # the parent died before the signal was set up


def _on_parent_death_signal(signum, frame) -> None:
    exit_if_orphaned()  # otherwise only the starting thread ended (or a terminal hung up)


def _watch_parent() -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        exit_if_orphaned()  # os._exit from this thread ends the whole process
