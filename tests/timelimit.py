"""A time limit a test enforces on itself: a block that runs longer fails (a hang is cut short
by ``SIGALRM`` instead of stalling the suite)."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator


class TimeLimitExceeded(BaseException):
    """Raised by the alarm; a BaseException, so no ``except Exception`` can swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail if the block runs longer than ``seconds`` (main thread only, like any signal)."""

    def alarm(signum, frame):
        raise TimeLimitExceeded(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.perf_counter()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - start < seconds, f"took longer than {seconds} s"
