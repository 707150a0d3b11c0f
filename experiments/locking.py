"""One scai process at a time per output folder: a lock file held with ``flock``.

Two runs writing into one folder would silently replace each other's results, so a run holds
an exclusive ``flock`` on ``FOLDER/.scai.lock`` while it works; another run into the same folder
is refused with a message naming the lock file and the process holding it, or, asked to wait,
waits for it. The kernel releases the lock when the holder's process ends in any way (a crash,
a SIGKILL), so a dead run never leaves a stale lock: the file left behind is not the lock, only
a note of its last holder (pid, start time, command), read to explain a refusal. The file
descriptor is not inherited by child processes (``O_CLOEXEC``; workers and their server get only the
descriptors they need), so the lock ends with the process that took it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from scai.models.errors import RunError

LOCK_NAME = ".scai.lock"


class FolderInUse(RunError):
    """Another process holds the folder's lock."""


@contextlib.contextmanager
def locked(
    folder: str | Path,
    *,
    name: str = LOCK_NAME,
    what: str = "--out",
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
    merges_into: Path | None = None,
    held: Path | None = None,
) -> Iterator[Path]:
    """Hold ``folder/name`` exclusively for the block (the folder is created if needed).

    If another process holds it: with ``wait``, call ``on_wait(who holds it)`` and wait until it
    is released; otherwise raise :class:`FolderInUse` naming ``what`` (the option or thing the
    folder is), the lock file and its holder.

    ``merges_into``: another folder this holder will wait for while it holds this one (a run's
    ``--figures``), recorded in the note. ``held``: a folder this process holds already; a
    holder whose note says it will wait for it is never waited for (each would wait for the
    other forever: ``--out A --figures B`` beside ``--out B --figures A``): a
    :class:`FolderInUse` instead.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise RunError(
                f"{what} {folder}: the lock file {path} is a symbolic link; remove "
                "it (scai does not follow links)"
            ) from None
        raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(fd)
            if held is not None and _note(fd).get("merges_into") == str(Path(held).resolve()):
                raise FolderInUse(
                    f"{what} {folder}: in use by another scai process ({holder}; lock file "
                    f"{path}) that will write into {held}, which this one holds: each would "
                    "wait for the other forever; run them one after the other"
                ) from None
            if not wait:
                raise FolderInUse(
                    f"{what} {folder}: in use by another scai process ({holder}; lock file "
                    f"{path}); wait for it to end, or "
                    + (
                        f"choose another {what}, or pass --wait to wait for it"
                        if what in ("--out", "--figures")
                        else "give this command another --out"  # (no option names the folder)
                    )
                ) from None
            if on_wait is not None:
                on_wait(
                    f"{what} {folder} is in use by another scai process ({holder}; lock "
                    f"file {path}); waiting for it to end"
                )
            fcntl.flock(fd, fcntl.LOCK_EX)
        note = {
            "pid": os.getpid(),
            "started": datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:500] if sys.argv else "",
        }
        if merges_into is not None:
            note["merges_into"] = str(Path(merges_into).resolve())
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(note) + "\n").encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def describe_holder(fd: int) -> str:
    """``pid N, started T: COMMAND`` from the lock file's note (best effort: the holder may
    not have written it yet)."""
    try:
        note = _note(fd)
        return f"pid {int(note['pid'])}, started {note['started']}: {note['command']}"
    except (ValueError, KeyError, TypeError):
        return "pid unknown: it has just started"


def _note(fd: int) -> dict:
    """The lock file's note (``{}`` where there is none yet, or it cannot be read)."""
    try:
        note = json.loads(os.pread(fd, 4096, 0))
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}
