"""Where the data that does not ship with scai is found: an explicit option, or a folder named
by ``--data-dir`` or the ``SCAI_DATA_DIR`` environment variable.

The folder has the layout of the project's ``shared/data`` (see its ``README.md``):
``study1_ug.csv`` (human responders; Heffner, Son & FeldmanHall 2021) and ``original-scai/``
(the original study's GPT-4 logs). Nothing is looked up relative to the installed package: a
missing file is a :class:`~scai.models.errors.RunError` that says how to point at it.
"""

from __future__ import annotations

import os
from pathlib import Path

from scai.models.errors import RunError, missing

DATA_DIR_ENV = "SCAI_DATA_DIR"
HUMAN_DATA_FILE = "study1_ug.csv"
ORIGINAL_LOGS_DIR = "original-scai"


def data_dir(args) -> Path | None:
    """``--data-dir``, else ``$SCAI_DATA_DIR``, else ``None``."""
    folder = getattr(args, "data_dir", None) or os.environ.get(DATA_DIR_ENV)
    return Path(folder) if folder else None


def shared_file(args, option: str, name: str, what: str) -> Path:
    """The path ``args.<option>`` gives, else ``name`` inside :func:`data_dir`; a missing one is
    an error naming the options and the variable that point at it."""
    explicit = getattr(args, option.lstrip("-").replace("-", "_"), None)
    folder = data_dir(args)
    path = Path(explicit) if explicit else (folder / name if folder else None)
    how = (
        f"pass {option} PATH, or --data-dir DIR (or set {DATA_DIR_ENV}=DIR) for a folder "
        f"holding {name}"
    )
    if option == "--data":
        how += " (or --data synthetic for decisions simulated from the model)"
    if path is None:
        raise RunError(f"{what}: no data given; {how}")
    if not path.exists():
        raise RunError(f"{what}: {path} {missing(path, what=None)}; {how}")
    return path
