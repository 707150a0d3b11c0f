"""Shared by the tests of the files a writer killed mid-write leaves behind
(:func:`scai.models.writing.write_atomic`, :func:`scai.models.writing.write_together`): the pid of
a process that has ended, and a file made old enough to count as abandoned."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from scai.models.writing import ABANDONED_AFTER


def dead_pid() -> int:
    """The pid of a process that has ended (a child run to its end)."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(gone.stdout)


def age(path: Path) -> None:
    """Make ``path`` untouched for longer than :data:`ABANDONED_AFTER` (a minute more)."""
    old = time.time() - ABANDONED_AFTER - 60
    os.utime(path, (old, old))
