"""Worker processes kept for the life of the program, and never beyond it.

Starting a worker by spawning it (a new interpreter importing torch, Pyro and ArviZ) costs ~3 s
of CPU on this machine: as much as a whole NUTS chain on 200 users. Workers are therefore
forked from a worker server that imports those modules once (:data:`WORKER_MODULES`, and
:data:`ARVIZ_MODULES` unless the workers fit by the exact engine alone;
:func:`start_worker_server`; :mod:`scai.worker_start`), and experiments and MCMC chains reuse
one pool per size instead of starting one per call. ``scai run`` starts the server before it
imports its own modules, so that both import at once on two cores.

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

from scai.worker_start import (
    ARVIZ_MODULES,
    WORKER_MODULES,
    ForkServerContext,
    SpawnContext,
    exit_if_orphaned,
    forkserver_available,
    orphaned,
    start_worker,
    start_worker_server,
)

_POOLS: dict[int, ProcessPoolExecutor] = {}

__all__ = [
    "ARVIZ_MODULES",
    "WORKER_MODULES",
    "exit_if_orphaned",
    "orphaned",
    "shutdown_workers",
    "start_worker_server",
    "stop_workers",
    "worker_pool",
]


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """The program's pool of ``workers`` processes (created on first use, shut down at exit),
    forked from the worker server (:func:`start_worker_server`), or spawned where there is
    none."""
    if workers not in _POOLS:
        if forkserver_available():
            start_worker_server()  # if not started yet (ArviZ's stamp: ARVIZ_MODULES)
            context: multiprocessing.context.BaseContext = ForkServerContext()
        else:
            import arviz  # noqa: F401  (imported here first, the stamp is today's)

            context = SpawnContext()
        _POOLS[workers] = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
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
