"""Worker processes kept for the life of the program.

Starting a worker (spawn, then importing torch, Pyro and ArviZ) costs ~3 s on this machine: as
much as a whole NUTS chain on 200 users. Experiments and MCMC chains therefore reuse one pool
per size instead of starting one per call.
"""

from __future__ import annotations

import atexit
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

_POOLS: dict[int, ProcessPoolExecutor] = {}


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """The program's pool of ``workers`` spawned processes (created on first use, shut down at
    exit). Spawn, not fork: a forked child inherits torch's thread pools in an unknown state."""
    if workers not in _POOLS:
        # ArviZ 0.23 writes a once-a-day stamp file on import, through a fixed temporary name:
        # workers importing it at the same moment race on that name and one import fails
        # (FileNotFoundError). Imported here first, the stamp is today's and no worker writes.
        import arviz  # noqa: F401

        context = multiprocessing.get_context("spawn")
        _POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        atexit.register(_POOLS[workers].shutdown)
    return _POOLS[workers]


def shutdown_workers() -> None:
    """Stop every pool (the next :func:`worker_pool` starts fresh processes)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown()
