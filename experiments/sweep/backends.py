"""Where a sweep's conditions are computed: ``local`` (this machine's process pool,
:mod:`scai.inference.workers`) or ``dask`` (a Dask distributed cluster: the scheduler at
``--scheduler ADDRESS``, or without one a local cluster of ``--workers`` processes).

Either way the conditions go through the one condition runner
(:func:`scai.experiments.runner.run_jobs`) and its cache; a Dask worker returns a condition's
files and this process stores them. A worker running other scai code than this process is
refused: its results would be cached under this code's key.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Executor, Future, InvalidStateError
from dataclasses import dataclass
from multiprocessing import resource_tracker

from scai.models.errors import RunError, check_count, error_text, show_value
from scai.worker_start import holding_ctrl_c

BACKENDS = ("local", "dask")
#: Seconds to wait for a scheduler to answer and for its first worker.
CONNECT_TIMEOUT = 30.0
#: Seconds beyond CONNECT_TIMEOUT that connecting may take as a whole (Dask's timeout covers
#: the TCP connection, not the handshake after it).
HANDSHAKE_GRACE = 10.0
#: Seconds between two looks at a Dask cluster's workers while the sweep runs on it.
WORKER_WATCH_SECONDS = 5.0


@dataclass
class Backend:
    """An open backend: what gives the runner its executor (``None``: the local pool; else
    called when a condition is to be computed), the number of local workers, and a
    description for the progress lines."""

    executor: Callable[[], Executor] | None
    workers: int | None
    description: str


def check_options(backend: str, scheduler: str | None, workers: int | None) -> None:
    """A :class:`RunError` for an unknown backend, a number of workers out of range, or
    options that do not go together (from Python too: ``run_sweep(..., workers=1.5)``)."""
    from scai.experiments.common import RUN_LIMITS

    if backend not in BACKENDS:
        raise RunError(f"--backend {show_value(backend)}: unknown; allowed: {', '.join(BACKENDS)}")
    if workers is not None:
        check_count("--workers", workers, *RUN_LIMITS["workers"])
    if scheduler is not None and not isinstance(scheduler, str):
        raise RunError(
            f"--scheduler: expected an address such as tcp://HOST:8786, got {show_value(scheduler)}"
        )
    if scheduler is not None and backend != "dask":
        raise RunError(
            f"--scheduler {scheduler}: only used with --backend dask, got --backend {backend}"
        )
    if scheduler is not None:
        _check_address(scheduler)
    if scheduler is not None and workers is not None:
        raise RunError(
            f"--workers {workers}: a Dask scheduler's cluster has its own workers; give "
            "--workers only with --backend local or a local Dask cluster (no --scheduler)"
        )


#: The protocols of Dask's communication layer a scheduler can listen on (its registry may
#: hold more, from packages that extend it: :func:`_known_scheme` asks it).
SCHEDULER_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")


def _known_scheme(scheme: str) -> bool:
    """Whether Dask can connect by ``scheme`` (as it does, case-sensitively)."""
    if scheme in SCHEDULER_SCHEMES:
        return True
    if scheme == "inproc":
        return False  # (an in-process address: refused above, with its own reason)
    try:
        from distributed.comm.registry import get_backend

        get_backend(scheme)  # (loads the backends other packages register)
    except (ImportError, ValueError):
        return False
    return True


def _check_address(scheduler: str) -> None:
    """A scheduler address names a scheduler another process can reach (not empty, not
    Dask's in-process ``inproc://``, whose scheduler lives in the process that made it), and
    its port, if it has one, is a TCP port (1 to 65535): a connection to port 99999 waits out
    the whole timeout before failing."""
    if not scheduler.strip():
        raise RunError("--scheduler: the address is empty; give one, e.g. tcp://HOST:8786")
    if scheduler.startswith("inproc://"):
        raise RunError(
            f"--scheduler {scheduler}: an in-process address, whose scheduler lives in the "
            "process that started it; give a scheduler's network address, e.g. tcp://HOST:8786"
        )
    scheme, sep, _ = scheduler.partition("://")
    if sep and not _known_scheme(scheme):  # (refused before the run announces itself)
        raise RunError(
            f"--scheduler {scheduler}: {scheme!r} is not a Dask scheduler's protocol; "
            f"allowed: {', '.join(s + '://' for s in SCHEDULER_SCHEMES)} (or none: tcp)"
        )
    host_port = scheduler.split("://", 1)[-1]
    _, sep, port = host_port.rpartition(":")
    if not sep or host_port.endswith("]"):  # no port (Dask's default), or a bare IPv6 address
        return
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise RunError(f"--scheduler {scheduler}: port {port!r} is not a TCP port (1 to 65535)")


@contextlib.contextmanager
def open_backend(
    backend: str,
    scheduler: str | None = None,
    workers: int | None = None,
    tell: Callable[[str], None] | None = None,
) -> Iterator[Backend]:
    """The backend for the block (a local Dask cluster or a client is closed after it). On a
    Dask cluster, ``tell`` hears when its last worker leaves and when workers come back
    (:func:`watch_workers`)."""
    check_options(backend, scheduler, workers)
    if backend == "local":
        n = workers or os.cpu_count() or 1
        yield Backend(None, n, f"local ({n} worker process{'es' if n > 1 else ''})")
        return
    if backend != "dask":
        raise RunError(f"--backend {backend}: unknown; allowed: {', '.join(BACKENDS)}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise RunError(
            "--backend dask: Dask is not installed; install scai's dask extra, which brings "
            "dask and distributed (from scai's folder: pip install -e '.[dask]')"
        ) from None
    n = workers or os.cpu_count() or 1
    if scheduler is None:
        where = f"dask (a local cluster of {n} worker process{'es' if n > 1 else ''})"
    else:
        where = f"dask (scheduler {scheduler})"
    with contextlib.ExitStack() as stack:
        started: list[Executor] = []

        def start() -> Executor:
            """Start the local cluster or connect to the scheduler (once): only when some
            condition is not cached, so a finished sweep needs no cluster."""
            if started:
                return started[0]
            if scheduler is None:
                # ArviZ writes a once-a-day stamp on import (scai.inference.workers): imported
                # here first, the workers importing it at once do not race on it.
                import arviz  # noqa: F401

                # Its processes start with Ctrl-C blocked (they inherit it): a terminal sends
                # SIGINT to the whole process group, and each of them printed a traceback
                # where the sweep itself says one line and stops them. One that comes
                # meanwhile is raised as the block ends. multiprocessing's resource tracker is
                # started first: its start unblocks SIGINT (not restoring the mask before).
                resource_tracker.ensure_running()
                with holding_ctrl_c():
                    cluster = stack.enter_context(
                        LocalCluster(
                            n_workers=n,
                            threads_per_worker=1,
                            processes=True,
                            # any free port: with None the dashboard starts all the same,
                            # on 8787, and where that is taken Dask printed four lines
                            dashboard_address=":0",
                            silence_logs=logging.ERROR,
                        )
                    )
                client = stack.enter_context(Client(cluster, set_as_default=False))
                revive = functools.partial(_revive, cluster, n)
            else:
                revive = None
                if tell is not None and _refused(scheduler):
                    tell(
                        f"--scheduler {scheduler}: nothing listens there yet; waiting up to "
                        f"{CONNECT_TIMEOUT:g} s for a Dask scheduler to start"
                    )
                try:
                    client = stack.enter_context(_connect(Client, scheduler))
                except RunError:  # _connect's own, which says why (a ValueError too)
                    raise
                except (OSError, TimeoutError, ValueError, TypeError) as err:
                    # (TypeError: a tls:// address without a security context, a ucx:// one
                    # without UCX: Dask's comms fail so for an address they cannot use)
                    reason = error_text(err)
                    raise RunError(
                        f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({reason})"
                    ) from None
            _check_workers(client, scheduler or "the local cluster")
            if tell is not None or revive is not None:
                stop = threading.Event()
                stack.callback(stop.set)  # before the client closes (callbacks run last first)
                threading.Thread(
                    target=watch_workers,
                    # (nthreads asks the scheduler; scheduler_info's answer is a cache that
                    # the client's own refresh empties of workers now and then)
                    args=(lambda: len(client.nthreads()), where, tell or (lambda _: None), stop),
                    kwargs={"revive": revive},
                    name="scai-dask-workers",
                    daemon=True,
                ).start()
            started.append(DaskExecutor(client))
            return started[0]

        yield Backend(start, None, where)


class DaskExecutor(Executor):
    """An executor whose tasks run on a Dask client's cluster, each submission run anew
    (``pure=False``: a retry too), each future settled from its Dask future's end whatever it
    is. Dask's own (``client.get_executor()``) left a future unsettled for good where a
    finished task's result was lost while it was fetched (the worker holding it died: the
    fetch raised ``KilledWorker`` inside Dask's coroutine) and the sweep waited for ever."""

    def __init__(self, client) -> None:
        self._client = client

    def submit(self, fn, /, *args, **kwargs) -> Future:
        task = self._client.submit(fn, *args, pure=False, **kwargs)
        future: Future = Future()

        def cancelled_here(future: Future) -> None:
            if not future.cancelled():
                return
            if task.status != "cancelled":
                task.cancel()
            with contextlib.suppress(InvalidStateError, RuntimeError):
                future.set_running_or_notify_cancel()  # (wakes wait() and as_completed())

        async def settle() -> None:
            # On the client's event loop, as Dask's own executor settles its futures (each
            # result fetched beside the others', not one after another in a callback thread);
            # ``_result`` is the coroutine Dask's executor awaits.
            try:
                result = await task._result()
            except CancelledError:
                _settle(future, cancel=True)
            except BaseException as err:  # the task's error, or its result lost
                _settle(future, error=err)
            else:
                _settle(future, result=result)

        future.add_done_callback(cancelled_here)
        self._client.loop.add_callback(settle)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to stop: the cluster and its client belong to :func:`open_backend`."""


def _settle(
    future: Future, result: object = None, error: BaseException | None = None, cancel=False
) -> None:
    """Settle ``future``, unless it was cancelled meanwhile (by the runner, on a Ctrl-C or an
    error: setting it then raises ``InvalidStateError``, which Dask's loop would print)."""
    with contextlib.suppress(InvalidStateError):
        if cancel:
            if future.cancel():
                future.set_running_or_notify_cancel()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def watch_workers(
    count: Callable[[], int],
    where: str,
    tell: Callable[[str], None],
    stop: threading.Event,
    interval: float | None = None,
    revive: Callable[[], bool] | None = None,
) -> None:
    """Every ``interval`` seconds (:data:`WORKER_WATCH_SECONDS`) until ``stop`` is set,
    ``count()`` the cluster's workers and ``tell`` when none is left (Dask keeps the cells for
    a worker to come, and the sweep sat without a word, its last line "about 1 min left") and
    when some are back; with ``revive`` (a local cluster's :func:`_revive`), start again the
    workers the cluster closed for good. A look that fails is skipped (a scheduler gone: the
    cells' futures say what happened)."""
    had, revived = True, False
    while not stop.wait(WORKER_WATCH_SECONDS if interval is None else interval):
        try:
            if revive is not None:  # told once, until the cluster has all its workers again
                short = revive()
                if short and not revived:
                    tell(f"{where}: starting again the workers Dask closed after they died")
                revived = short
            n = count()
        except Exception:  # a scheduler gone, a closing client: not ours to tell
            continue
        if n == 0 and had:
            tell(
                f"{where}: no workers are left; the sweep waits for one (finished cells are "
                "kept: Ctrl-C stops it, and the same command resumes)"
            )
        elif n and not had:
            tell(f"{where}: {n} worker{'s' if n > 1 else ''} again; the sweep goes on")
        had = n > 0


def _revive(cluster, n: int) -> bool:
    """Start again the workers a local cluster closed for good; whether there were any.

    A worker's process that dies (a cell that kills it: out of memory, a crash) is started
    again by its nanny; but a local cluster closes a worker that is gone from its scheduler
    for Dask's ``lost-worker-timeout`` (15 s), and a cell that kills its worker again and again
    (Dask tries it on four, and the sweep once more) left none: the sweep waited for good, its
    other cells queued (a review). Asking the cluster for its ``n`` workers again starts the
    missing ones."""
    if cluster.status.name in ("closing", "closed") or len(cluster.workers) >= n:
        return False
    cluster.scale(n)  # (thread-safe: it schedules the change on the cluster's own loop)
    return True


#: Seconds :func:`_refused` waits for a TCP connection to a scheduler's address.
PROBE_SECONDS = 2.0


def _refused(scheduler: str) -> bool:
    """Whether a TCP scheduler's address refuses a connection now (nothing listens there).
    Dask then retries until :data:`CONNECT_TIMEOUT` (a scheduler may be starting: a job script
    that starts it and the sweep together), and the sweep said nothing for those 30 s. False
    for an address that is not TCP, cannot be resolved, or does not answer at once: Dask's own
    connection says what is wrong with those."""
    from distributed.comm import parse_address, parse_host_port

    try:
        protocol, location = parse_address(scheduler)
        if protocol != "tcp":
            return False
        host, port = parse_host_port(location, 8786)
        with socket.create_connection((host, port), timeout=PROBE_SECONDS):
            return False
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError, TypeError):
        return False


def _connect(client_class, scheduler: str):
    """``Client(scheduler)`` under a deadline of ``CONNECT_TIMEOUT + HANDSHAKE_GRACE`` s. Dask's
    own timeout covers the TCP connection, not the handshake: a service that accepts and never
    answers (an HTTP server) held the sweep for good, and one that speaks first (an SSH server)
    made Dask read a frame length of exabytes and fail with MemoryError. The connecting thread
    is a daemon: one still waiting when the sweep gives up does not keep the program alive.

    No client of ours is Dask's default (``set_as_default=False``; cells go to the executor
    it returns): xarray takes a distributed lock to write netCDF whenever a default client
    exists, and a client abandoned here, still connecting, made every later posterior save
    in the same process wait for good (a sweep from Python, then ``Posterior.save``)."""
    outcome: dict[str, object] = {}

    def connect() -> None:
        try:
            outcome["client"] = client_class(
                scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False
            )
        except BaseException as err:  # handed to the caller below
            outcome["error"] = err

    thread = threading.Thread(target=connect, name="scai-dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT + HANDSHAKE_GRACE)
    if thread.is_alive():
        raise RunError(
            f"--scheduler {scheduler}: something accepted the connection but no Dask scheduler "
            f"answered within {CONNECT_TIMEOUT + HANDSHAKE_GRACE:g} s; is it a Dask scheduler's "
            "address (usually port 8786)?"
        )
    error = outcome.get("error")
    if isinstance(error, MemoryError):
        raise RunError(
            f"--scheduler {scheduler}: not a Dask scheduler (what it sent is not Dask's protocol)"
        )
    if error is not None:
        raise error
    return outcome["client"]


def _check_workers(client, where: str) -> None:
    """Wait for a worker, then refuse workers whose scai code is not this process's."""
    from scai.experiments.cache import code_version

    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        raise RunError(
            f"--backend dask: {where} has no workers after {CONNECT_TIMEOUT:g} s"
        ) from None
    mine = code_version()
    try:
        theirs = client.run(code_version)
    except (ImportError, ModuleNotFoundError) as err:
        raise RunError(
            f"--backend dask: the workers of {where} cannot import scai ({err})"
        ) from None
    for worker, version in sorted(theirs.items()):
        if version != mine:
            raise RunError(
                f"--backend dask: worker {worker} runs scai {version}, this process {mine}; "
                "install the same scai on every worker (its results are cached under this "
                "code's key)"
            )
