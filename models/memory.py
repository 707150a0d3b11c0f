"""The memory budget: how much memory a table, a grid or a set of draws may take before scai
refuses to build it, and the refusal that says how much it needs, the limit and why.

The limit is ``max_bytes`` where the caller gives one (``max_memory=``, ``--max-memory``),
else a share of the memory available now (``MemAvailable``): other programs' memory comes and
goes, so a refusal against a share may pass when the call is made again.
"""

from __future__ import annotations

import os
from collections.abc import Callable

#: The default limit is this share of the memory available: the engines' working arrays
#: (likelihood tables per user and type, gradients) take several times the layout.
MEMORY_SHARE = 0.25


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable``), or ``None``."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit(
    max_bytes: int | None = None, share: float = MEMORY_SHARE
) -> tuple[int | None, str]:
    """The limit in bytes (``max_bytes``, else ``share`` of the available memory; ``None``
    where that is unknown) and how it was chosen, for messages."""
    if max_bytes is not None:
        return int(max_bytes), "the limit given (max_memory=, --max-memory)"
    free = available_memory()
    if free is None:
        return None, "unknown available memory"
    return int(free * share), f"{share:.0%} of the {format_bytes(free)} available"


def format_bytes(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"``."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def check_memory(
    need: int,
    error: Callable[[str], Exception],
    max_bytes: int | None = None,
    share: float = MEMORY_SHARE,
) -> None:
    """Raise ``error("needs about X, above the limit of Y (why)")`` if ``need`` bytes are above
    :func:`memory_limit`; the caller's ``error`` adds what needs it and what to do. Where the
    limit is a share of the memory available (no ``max_bytes``), the error may pass when the
    call is made again (``may_pass_again``): other programs' memory comes and goes."""
    limit, why = memory_limit(max_bytes, share)
    if limit is not None and need > limit:
        err = error(
            f"needs about {format_bytes(need)}, above the limit of {format_bytes(limit)} ({why})"
        )
        err.may_pass_again = max_bytes is None
        raise err
