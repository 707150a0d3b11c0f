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
    ForkServerContext,
    SpawnContext,
    exit_if_orphaned,
    orphaned,
    start_server,
    start_worker,
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

#: What the worker server imports before it forks a worker: what computing a condition (and
#: saving its posterior as NetCDF) or an MCMC chain imports. A module missing here is imported
#: by each worker when first needed (slower, not wrong); one not installed is skipped.
WORKER_MODULES = (
    "scai.experiments.runner",
    "scai.inference.nuts",
    "scai.inference.arviz_io",
    "h5netcdf",
    # torch imports it (and SymPy: ~1 s of CPU) on the first torch.broadcast_shapes, which
    # every exact fit with a latent scalar calls (the MultivariateNormal of its prior)
    "torch.fx.experimental.symbolic_shapes",
)
#: What the server imports too unless told that the workers fit by the exact engine alone:
#: ArviZ (MCMC's and the human-data fits' diagnostics, SVI's importance check) with xarray
#: (which imports ``dask.distributed``, where installed, on first use: ~1 s per worker). ArviZ
#: 0.23 writes a once-a-day stamp file on import, through a fixed temporary name: processes
#: importing it at the same moment race on that name and one import fails
#: (FileNotFoundError). Imported by the server, it is imported once; its workers inherit it.
ARVIZ_MODULES = ("arviz", "xarray", "dask.distributed")


def _forkserver() -> bool:
    return "forkserver" in multiprocessing.get_all_start_methods()


def start_worker_server(arviz: bool = True) -> None:
    """Start the worker server now, in the background (its imports take ~6 s of CPU), if this
    platform has one and it is not running; :func:`worker_pool` then forks its workers from it
    at once. ``arviz=False``: the workers will not import ArviZ (they fit by the exact engine
    alone), so the server does not import :data:`ARVIZ_MODULES` either. Not
    forking from this process itself: a program that has computed holds torch's thread pools
    and other threads, which a forked child would inherit in an unknown state. The server
    computes nothing and starts no thread; the only threads it holds are OpenBLAS's idle
    workers (started when NumPy and SciPy load it), which OpenBLAS stops before each fork
    (its own fork handler) and a child starts afresh when it needs them."""
    if _forkserver():
        start_server([*WORKER_MODULES, *(ARVIZ_MODULES if arviz else ())])


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """The program's pool of ``workers`` processes (created on first use, shut down at exit),
    forked from the worker server (:func:`start_worker_server`), or spawned where there is
    none."""
    if workers not in _POOLS:
        if _forkserver():
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
