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
import contextlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

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


class HeldCtrlC:
    """What :func:`ctrl_c_deferred` gives its block: call it to raise a Ctrl-C held back so
    far; :meth:`released` lets Ctrl-C through for a block of its own."""

    def __init__(self) -> None:
        self.caught: list[int] = []
        self._previous: Callable | int | None = None  # the handler replaced (main thread)
        self._holding = False  # while the ctrl_c_deferred block runs (main thread)

    def __call__(self) -> None:
        if self.caught:
            raise KeyboardInterrupt

    def _note(self, number: int, frame) -> None:
        self.caught.append(number)

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Ctrl-C as usual within the block (one held already is raised first): for work that
        holds no lock and starts no process, e.g. a report that takes seconds."""
        if not self._holding:
            self()
            yield
            return
        # The usual handler first: a Ctrl-C from here on is raised, not noted for later.
        signal.signal(signal.SIGINT, self._previous)
        try:
            self()
            yield
        finally:
            # Not once the deferring block is over: a KeyboardInterrupt can leave this block
            # suspended (raised as its exit begins) and close it later, elsewhere.
            if self._holding:
                signal.signal(signal.SIGINT, self._note)


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[HeldCtrlC]:
    """Hold Ctrl-C back: the block gets a :class:`HeldCtrlC`, ``check``, and ``check()`` raises
    ``KeyboardInterrupt`` if one came, at the points the block chooses; one still held at the
    block's end is raised then (also in place of an error the block raised after it: the
    Ctrl-C reached the workers too). A ``KeyboardInterrupt`` in the middle of a worker's spawn
    leaves a started process that is not yet listed among the program's children:
    :func:`stop_workers` would miss it, and the pool's exit would wait for its tasks. (Only in
    the main thread, where Python's signal handlers run; elsewhere, or where Ctrl-C is
    ignored, ``check()`` does nothing.)"""
    check = HeldCtrlC()
    if threading.current_thread() is not threading.main_thread():
        yield check
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A program started with Ctrl-C ignored (a shell's `cmd &`) keeps ignoring it, as
        # scai's CLI does: a handler here made a sweep obey it while computing, not before.
        yield check
        return
    check._previous = signal.signal(signal.SIGINT, check._note)
    check._holding = True
    try:
        yield check
    except Exception:
        if check.caught:  # what failed after a Ctrl-C failed of it (a worker it reached)
            check._holding = False
            signal.signal(signal.SIGINT, check._previous)
            raise KeyboardInterrupt from None
        raise
    finally:
        check._holding = False
        signal.signal(signal.SIGINT, check._previous)
    check()


class Finished:
    """The futures given to :meth:`watch`, in the order they finish.

    Not ``concurrent.futures.wait`` or ``as_completed``: they take every future's lock in
    turn, and a Ctrl-C raised in the middle of that loop leaves this thread holding some of
    them; the pool's thread, which takes a future's lock to set its result, then waits for
    ever, and so does the pool's shutdown (a 20,000-cell sweep ignored Ctrl-C, hung for good:
    its ``wait`` spends most of the time in that loop). Here a finished future is handed over
    by its own callback, through a queue, and the waiting is in short turns, between which
    ``check`` (from :func:`ctrl_c_deferred`) may raise."""

    #: Seconds between two calls of ``check`` while nothing finishes.
    POLL_SECONDS = 0.2

    def __init__(self) -> None:
        self._done: queue.SimpleQueue[Future] = queue.SimpleQueue()

    def watch(self, future: Future) -> Future:
        future.add_done_callback(self._done.put)
        return future

    def next(self, check: Callable[[], None]) -> Future:
        """The next future to finish (each watched future once)."""
        while True:
            check()
            try:
                return self._done.get(timeout=self.POLL_SECONDS)
            except queue.Empty:
                pass
