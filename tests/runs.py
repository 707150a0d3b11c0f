"""Shared by the tests of interrupted, concurrent and cached runs: one small ``scai run``
(the same command everywhere, so every run's results must be byte-identical to the
reference's: :func:`results`), run in this process or as a child process in a session of its
own, and the processes of that session (to check that none survives the run)"""

from __future__ import annotations

import atexit
import contextlib
import functools
import io
import json
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
RUN = ("run", "alignment", "--quick", "--sims", "2", "--epochs", "2", "--seed", "0")
CONDITIONS = 6
#: A run with more, equally quick conditions (16, ~1.3 s of work on two workers here), for
#: tests that interrupt one run several times: the 6 of :data:`RUN` take ~0.5 s, so a few
#: interruptions a tenth of a second late can leave too little work for the next moment.
LONG_RUN = ("run", "inconsistency", "--quick", "--sims", "2", "--epochs", "2", "--seed", "0")
LONG_CONDITIONS = 16
IN_PROCESS_SECONDS = 90.0


def scai_run(out: Path, *extra: str, command: tuple[str, ...] = RUN) -> tuple[int, str]:
    """``scai run`` (``command``) in this process (one worker: no pool to start); its exit
    code and standard error. torch's thread count is restored after (the run sets it to 1)."""
    threads = torch.get_num_threads()
    err = io.StringIO()
    try:
        with time_limit(IN_PROCESS_SECONDS), contextlib.redirect_stderr(err):
            code = main([*command, "--workers", "1", "--out", str(out), *extra])
    finally:
        torch.set_num_threads(threads)
    return code, err.getvalue()


@functools.cache
def reference(command: tuple[str, ...] = RUN) -> Path:
    """The output folder of an uninterrupted run of ``command`` (made once per test session;
    read only)."""
    out = Path(tempfile.mkdtemp(prefix="scai-reference-")) / "out"
    atexit.register(shutil.rmtree, out.parent, True)
    code, err = scai_run(out, command=command)
    assert code == 0, err
    return out


#: Files that differ between two identical runs by design: the lock files' notes of their
#: holder (pid, start time, command).
NOT_RESULTS = (".scai.lock", ".lock")
#: A posterior file's attributes recording when and by which command it was written (and,
#: for a loaded posterior saved again, when and by which command the copy was).
PROVENANCE = ("created", "created_at", "command", "resaved", "resaved_command")


def results(out: Path) -> dict[str, bytes]:
    """Everything a run left under ``out``, as bytes to compare with another run's: each
    file's bytes, but a posterior file's numbers (its datasets and their attributes, without
    :data:`PROVENANCE`) and a cache manifest without the posterior file's checksum (both
    change with the time of writing); lock files and staging folders are left out."""
    found = {}
    for path in sorted(out.rglob("*")):
        name = str(path.relative_to(out))
        if not path.is_file() or path.name in NOT_RESULTS or ".staging" in path.parts:
            continue
        if path.suffix == ".nc":
            found[name] = posterior_numbers(path)
        elif path.suffix == ".done":
            manifest = json.loads(path.read_bytes())
            for file in manifest["files"]:
                if file.endswith(".nc"):
                    manifest["files"][file] = "(written at another time)"
            found[name] = json.dumps(manifest, sort_keys=True).encode()
        else:
            found[name] = path.read_bytes()
    return found


def posterior_numbers(path: Path) -> bytes:
    """A posterior file's datasets and attributes (not :data:`PROVENANCE` nor HDF5's
    references between objects), in a canonical order."""
    import h5py
    import numpy as np

    parts = []

    def add(name: str, obj) -> None:
        for key in sorted(obj.attrs):
            value = obj.attrs[key]
            if key in PROVENANCE or key in ("DIMENSION_LIST", "REFERENCE_LIST"):
                continue
            parts.append(f"{name}@{key}={np.asarray(value).tolist()!r}".encode())
        if isinstance(obj, h5py.Dataset):
            values = np.asarray(obj[()])
            data = repr(values.tolist()).encode() if values.dtype.kind == "O" else values.tobytes()
            parts.append(f"{name}:{obj.dtype}{obj.shape}=".encode() + data)  # strings by value

    with h5py.File(path, "r") as handle:
        add("", handle)
        handle.visititems(add)
    return b"\n".join(parts)


def start_run(out: Path, workers: int = 2, command: tuple[str, ...] = RUN) -> subprocess.Popen:
    """``scai run`` as a child process in a session of its own (as a shell's job would be:
    a signal to its process group reaches it and its workers, not the test), with Ctrl-C
    handled as in a terminal's job: a test run that a non-interactive shell started in the
    background (``pytest &``, as CI may) ignores SIGINT, and its children would inherit that."""
    return subprocess.Popen(
        [sys.executable, "-m", "scai", *command, "--workers", str(workers), "--out", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_terminal_signals,
    )


def _terminal_signals() -> None:
    """In the child before its exec: SIGINT and SIGQUIT back to their defaults."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


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


def running(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def in_session(session: int) -> list[int]:
    """The live processes of a session (Linux's /proc): a run started by :func:`start_run`
    is the leader of its own, and its workers and their helpers stay in it even once
    re-parented, so this finds every process the run started, wherever it now hangs."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == session and fields[0] not in ("Z", "X"):
                    found.append(int(entry.name))
    return found


def kill_leftovers(pids: list[int]) -> None:
    """Kill the test's own processes that are still running (by id), so a failing test
    leaves nothing behind."""
    for pid in pids:
        if running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def leftovers(out: Path) -> list[str]:
    """Temporary files and staging folders under ``out`` (a finished or stopped run leaves
    none)."""
    return sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if ".staging" in p.parts or p.name.endswith(".tmp")
    )
