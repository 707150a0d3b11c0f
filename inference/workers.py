"""Worker processes kept for the life of the program, and never beyond it.

Starting a worker (spawn, then importing torch, Pyro and ArviZ) costs ~3 s on this machine: as
much as a whole NUTS chain on 200 users. Experiments and MCMC chains therefore reuse one pool
per size instead of starting one per call.

A worker lives only as long as the program that started it. If the parent dies (a SIGKILL, an
out-of-memory kill), each worker exits within a fraction of a second instead of computing, and
writing, for minutes (:mod:`scai.worker_start`, which a worker imports before anything heavy:
the kernel's parent-death signal and a watchdog thread). Code that writes from a worker calls
:func:`exit_if_orphaned` first. Ctrl-C is the parent's to handle: workers ignore ``SIGINT``
from their start (a terminal sends it to the whole process group; an interrupted worker would
print a traceback), and the parent calls :func:`stop_workers` to end them at once.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

from scai.worker_start import SpawnContext, exit_if_orphaned, orphaned, start_worker

_POOLS: dict[int, ProcessPoolExecutor] = {}

__all__ = [
    "exit_if_orphaned",
    "orphaned",
    "shutdown_workers",
    "stop_workers",
    "worker_pool",
]


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """The program's pool of ``workers`` spawned processes (created on first use, shut down at
    exit). Spawn, not fork: a forked child inherits torch's thread pools in an unknown state."""
    if workers not in _POOLS:
        # ArviZ 0.23 writes a once-a-day stamp file on import, through a fixed temporary name:
        # workers importing it at the same moment race on that name and one import fails
        # (FileNotFoundError). Imported here first, the stamp is today's and no worker writes.
        import arviz  # noqa: F401

        _POOLS[workers] = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=SpawnContext(),
            initializer=start_worker,
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
    """Stop every pool now: kill the workers without waiting for the tasks they are running
    (what Ctrl-C needs), then shut the pools down (their unfinished tasks fail with
    ``BrokenProcessPool``, the ones not started are cancelled). Every process this program
    started through :mod:`multiprocessing` is a pool's worker, so all are killed; each is
    waited for (at most ``timeout`` seconds in all) so none is left behind.

    The workers go first: a pool shut down without waiting (``wait=False``) leaves its
    manager thread to close its pipes while Python's exit handler may still write to one
    (``OSError: Bad file descriptor`` printed at exit, Python 3.11); with its workers gone, a
    pool's shutdown only joins that thread, at once."""
    children = multiprocessing.active_children()
    for child in children:
        child.kill()
    end = time.monotonic() + timeout
    for child in children:
        child.join(max(0.0, end - time.monotonic()))
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=True)
