"""Shared by the tests of interrupted, concurrent and cached runs: one small ``scai run``
(the same command everywhere, so every run's ``summary.csv`` must be byte-identical to the
reference's), run in this process or as a child process, and the child processes a process
has (to check that none survives it)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from timelimit import time_limit

from scai.experiments.cli import main

#: The run every test repeats: alignment, 6 conditions, 2 simulations x 2 epochs each.
RUN = ["run", "alignment", "--quick", "--sims", "2", "--epochs", "2", "--seed", "0"]
CONDITIONS = 6
IN_PROCESS_SECONDS = 90.0


def scai_run(out: Path, *extra: str) -> tuple[int, str]:
    """``scai run`` in this process (one worker: no pool to start); its exit code and
    standard error. torch's thread count is restored after (the run sets it to 1)."""
    threads = torch.get_num_threads()
    err = io.StringIO()
    try:
        with time_limit(IN_PROCESS_SECONDS), contextlib.redirect_stderr(err):
            code = main([*RUN, "--workers", "1", "--out", str(out), *extra])
    finally:
        torch.set_num_threads(threads)
    return code, err.getvalue()


@functools.cache
def reference() -> Path:
    """The output folder of an uninterrupted run (made once per test session; read only)."""
    out = Path(tempfile.mkdtemp(prefix="scai-reference-")) / "out"
    atexit.register(shutil.rmtree, out.parent, True)
    code, err = scai_run(out)
    assert code == 0, err
    return out


def summary_bytes(out: Path) -> bytes:
    return (out / "alignment" / "summary.csv").read_bytes()


def start_run(out: Path, workers: int = 2) -> subprocess.Popen:
    """``scai run`` as a child process in a session of its own (as a shell's job would be:
    a signal to its process group reaches it and its workers, not the test)."""
    return subprocess.Popen(
        [sys.executable, "-m", "scai", *RUN, "--workers", str(workers), "--out", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(condition, seconds: float, what: str, process: subprocess.Popen | None = None):
    """Poll ``condition()`` until it is true; fail after ``seconds`` (or if ``process`` ends)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.communicate()}")
        time.sleep(0.02)
    raise AssertionError(f"no {what} after {seconds} s")


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (psutil where installed, else Linux's /proc)."""
    try:
        import psutil
    except ImportError:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
        return found
    with contextlib.suppress(psutil.NoSuchProcess):
        return [child.pid for child in psutil.Process(pid).children()]
    return []


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def kill_leftovers(pids: list[int]) -> None:
    """Kill the test's own processes that are still running (by id), so a failing test
    leaves nothing behind."""
    for pid in pids:
        if running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def files_under(out: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``out`` but the staging folders: ``name: (size, mtime_ns)``."""
    return {
        str(p.relative_to(out)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in out.rglob("*")
        if p.is_file() and ".staging" not in p.parts
    }


def leftovers(out: Path) -> list[str]:
    """Temporary files and staging folders under ``out`` (a finished or stopped run leaves
    none)."""
    return sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if ".staging" in p.parts or p.name.endswith(".tmp")
    )
