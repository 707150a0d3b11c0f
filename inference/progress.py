"""Progress bars for long runs (tqdm), quiet when output is not a terminal unless asked."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress_bar(total: int, desc: str, disable: bool | None = None) -> tqdm:
    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True)
