"""Writing files so that an interruption loses nothing finished: one file atomically (the old
file or the new, never half of one), several files together (all or none), under names that
say their format and are safe to build from hypothesis and condition names.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import glob
import os
import re
import secrets
import stat
import time
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from scai.models.errors import RunError, not_replaceable
from scai.models.table_file import compressed_name

#: Endings that name a file's format, and the format: a file scai writes in one format under
#: another's name is refused (``--out reader.csv`` would hold JSON).
FORMAT_ENDINGS = {
    ".csv": "a CSV table",
    ".tsv": "a TSV table",
    ".json": "JSON",
    ".nc": "NetCDF",
    ".toml": "TOML",
    ".txt": "plain text",
    ".png": "a PNG image",
}


def other_format(path: str | Path, ending: str) -> str | None:
    """What ``path``'s name says the file holds where that is not the format of ``ending``
    (a key of :data:`FORMAT_ENDINGS`): a compressed file, or another format; else ``None``
    (the ending itself, or one that names no format)."""
    suffix = Path(path).suffix.lower()
    if compressed_name(path):
        return "a compressed file"
    if suffix in FORMAT_ENDINGS and suffix != ending:
        return FORMAT_ENDINGS[suffix]
    return None


def check_format_ending(path: Path, ending: str, what: str, error: type = RunError) -> Path:
    """``path`` unless its name says it holds another format than the one ``what`` (a
    function's name) writes, ``ending``'s: ``error`` naming the path, the ending and the one
    to give."""
    if named := other_format(path, ending):
        raise error(
            f"{what}: {path}: a name ending {path.suffix} names {named}, and {what} writes "
            f"{FORMAT_ENDINGS[ending]}, uncompressed; give a name ending {ending}"
        )
    return path


#: The longest file-name component :func:`safe_filename` returns (file systems allow 255 bytes;
#: room is left for a prefix, a suffix and a temporary file's token).
MAX_NAME = 100


def safe_filename(name: str) -> str:
    """``name`` as one safe file-name component, for names built from hypothesis or condition
    names: every character but letters, digits and ``-_.+=,`` (path separators, control
    characters, spaces) becomes ``_``, runs of dots become ``_`` (never ``..``), a leading
    dot or dash is dropped and the result is at most :data:`MAX_NAME` characters (never empty).
    """
    text = unicodedata.normalize("NFKC", str(name))
    text = "".join(c if c.isalnum() or c in "-_.+=," else "_" for c in text)
    text = re.sub(r"\.{2,}", "_", text).lstrip(".-")
    return text[:MAX_NAME] or "_"


def write_together(writes: dict[Path, Callable[[Path], None]]) -> None:
    """Files that make one result (a table and its users, a posterior and its table): each
    ``write(path)`` first writes its file whole beside its final path, under a short hidden name
    that keeps the file's last two suffixes (writers read the format from them, ``.csv.gz``);
    then all are moved into
    place with Ctrl-C held back. An interruption leaves the previous files (or none) or the new
    ones, never some of each (written one after the other, a Ctrl-C between them left a new
    table beside the previous run's users); so does a file that cannot be replaced (immutable,
    another user's in a folder with the sticky bit: :func:`_replace_all_or_none`). An OS error
    while writing one (a full disk) names its final path, not the hidden one."""
    from scai.inference.workers import ctrl_c_deferred  # (the layer above, on first use)

    token = f"{os.getpid()}-{os.urandom(6).hex()}"
    aside = {
        path: path.with_name(f".scai-{token}-{i}{''.join(path.suffixes[-2:])}")
        for i, path in enumerate(writes)
    }
    kept = {path: hidden.with_name(f"{hidden.name}.old") for path, hidden in aside.items()}
    for folder in {path.parent for path in writes}:
        _remove_files_written_aside_by_dead_writers(folder)
    try:
        for path, write in writes.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                write(aside[path])
            except OSError as err:
                if err.errno is None:
                    raise
                raise _naming(err, path) from err
        with ctrl_c_deferred():
            _replace_all_or_none(aside, kept)
    finally:
        # The hidden copies go with Ctrl-C held back too (a Ctrl-C in this loop left the
        # previous files' copies beside the new set: a review). A previous file kept aside
        # whose path is empty, had putting it back failed, is the only copy of it: left under
        # its hidden name, not removed.
        with ctrl_c_deferred():
            kept_copies = [hidden for path, hidden in kept.items() if path.exists()]
            for hidden in [*aside.values(), *kept_copies]:
                with contextlib.suppress(OSError):  # the error or Ctrl-C above is the news
                    hidden.unlink(missing_ok=True)


def _replace_all_or_none(aside: dict[Path, Path], kept: dict[Path, Path]) -> None:
    """Move each ``aside[path]`` to ``path``; if one move fails (a file that cannot be
    replaced: immutable, another user's in a folder with the sticky bit), put back what was
    moved, so that the previous files all stay. The previous files are kept under the names
    ``kept[path]`` until all are moved: by hard links (a reader always finds a file at
    ``path``), or, where a file cannot be linked (a file system without links; Linux refuses
    a link to an immutable file), moved there. A file another user owns in a folder with the
    sticky bit is refused first: neither it nor a link to it could be removed or replaced."""
    for path in aside:
        if why := _held_by_another_user(path):
            raise PermissionError(errno.EPERM, why, str(path))
    kept_by_link, moved, new = [], [], []

    def put_back() -> None:
        for path in moved:  # (a link kept needs nothing: the file is still in its place)
            with contextlib.suppress(OSError):  # the first error is the news
                os.replace(kept[path], path)

    try:
        for path in aside:
            if not path.exists():
                new.append(path)
                continue
            try:
                os.link(path, kept[path], follow_symlinks=False)  # a link is kept as a link
                kept_by_link.append(path)
            except OSError:
                os.replace(path, kept[path])
                moved.append(path)
    except OSError as err:
        put_back()
        raise _naming(err, path) from err
    done: list[Path] = []
    try:
        for path in [*kept_by_link, *moved, *new]:
            os.replace(aside[path], path)
            done.append(path)
    except OSError as err:
        failed = path
        for placed in reversed(done):
            with contextlib.suppress(OSError):  # the first error is the news
                if placed in new:
                    placed.unlink()
                else:
                    os.replace(kept[placed], placed)
        put_back()  # those moved aside and not yet replaced (the others: no-op errors)
        named = _naming(err, failed)
        if named is err:
            raise
        raise named from err


def _held_by_another_user(path: Path) -> str | None:
    """Why ``path`` cannot be replaced by this process: another user's file in a folder with
    the sticky bit that this user does not own either (as ``/tmp``); ``None`` otherwise, and
    on systems without user ids."""
    if not hasattr(os, "geteuid") or os.geteuid() == 0:
        return None
    try:
        file, folder = os.lstat(path), os.stat(path.parent)
    except OSError:
        return None
    me = os.geteuid()
    if folder.st_mode & stat.S_ISVTX and file.st_uid != me and folder.st_uid != me:
        return "another user's file, in a folder with the sticky bit: it cannot be replaced"
    return None


#: :func:`write_together`'s files written aside, ``.scai-PID-TOKEN-I<suffixes>``, and the
#: temporary files of their writes (:func:`write_atomic`'s, ``..scai-PID-...``).
_WRITTEN_ASIDE = re.compile(r"\.\.?scai-(\d+)-[0-9a-f]{12}-\d+")


def _remove_files_written_aside_by_dead_writers(folder: Path) -> None:
    """Remove :func:`write_together`'s hidden files in ``folder`` abandoned by a writer killed
    while it wrote (``kill -9``, a power cut: :func:`_abandoned`); a running writer's are left
    alone. Only on POSIX systems, as :func:`_remove_files_of_dead_writers`."""
    if os.name != "posix" or not folder.is_dir():
        return
    matches = ((p, _WRITTEN_ASIDE.match(p.name)) for p in folder.glob(".*scai-*"))
    _remove_abandoned((p, match.group(1)) for p, match in matches if match)


def write_atomic(path: str | Path, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call ``write(temporary_path)``, then rename the file to ``path``: an interrupted run
    never leaves a half-written file behind. ``suffix`` is the temporary file's (writers such
    as matplotlib read the format from it).

    The temporary file is created in ``path``'s folder with mode ``0o666`` less the user's
    umask, like any file the user creates (not ``mkstemp``'s ``0o600``), hidden and named by
    the writing process, ``.NAME.PID.TOKEN<suffix>``: a process killed while it wrote (``kill
    -9``, a power cut) leaves its file behind, and the next write of ``path`` removes those
    abandoned (:func:`_abandoned`: no such process here, an hour old; on POSIX systems). A
    ``path`` that is a
    symbolic link is refused with a :class:`RunError`: ``os.replace`` would replace the link
    itself, silently turning it into a file, and writing through it would overwrite a file
    elsewhere.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise RunError(f"{path}: is a folder; give a file path")
    if path.is_symlink():
        raise RunError(
            f"{path}: is a symbolic link (to {os.readlink(path)}); scai does not write through "
            "or replace links: remove it or choose another path"
        )
    if why := not_replaceable(path):
        raise RunError(f"{path}: {why}")
    # (mkdir's own error, FileExistsError, would name the file and not say why)
    above = next(p for p in path.parents if p.exists())
    if not above.is_dir():
        raise RunError(f"{path}: {above} is a file, not a folder; give a path in a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name[:MAX_NAME]}."
    _remove_files_of_dead_writers(path.parent, prefix, suffix)
    try:
        tmp = _create_unique(path.parent, f"{prefix}{os.getpid()}.", suffix)
    except OSError as err:  # a folder that takes no new file (/proc, read-only): say which
        raise _naming(err, path) from None
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename in (None, tmp) and err.errno is not None:
            # a write's error (a full disk) names no file, or the hidden temporary one
            raise _naming(err, path) from err
        raise
    return path


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` (of :func:`write_atomic`'s temporary file, or of no file) as an error of writing
    ``path``, the file the caller asked for."""
    if err.errno is None:
        return err
    return type(err)(err.errno, err.strerror, str(path))


def _remove_files_of_dead_writers(folder: Path, prefix: str, suffix: str) -> None:
    """Remove ``folder/<prefix>PID.TOKEN<suffix>``, :func:`write_atomic`'s temporary files,
    abandoned by a writer killed while it wrote (:func:`_abandoned`). Another process's file,
    still being written, is left alone. Only on POSIX systems (elsewhere ``os.kill``
    with signal 0 would end the process, not test it). A file that cannot be removed (another
    user's, in a shared folder with the sticky bit) is left: the write goes on."""
    if os.name != "posix":
        return
    leftovers = folder.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}")
    _remove_abandoned((p, p.name[len(prefix) :].split(".", 1)[0]) for p in leftovers)


def _remove_abandoned(leftovers: Iterable[tuple[Path, str]]) -> None:
    """Remove each ``(file, its writer's pid)`` that is :func:`_abandoned` (a pid that is not a
    number is no writer's); one that cannot be removed (another user's in a folder with the
    sticky bit, or another clean-up's already) is left."""
    for leftover, pid in leftovers:
        if pid.isdigit() and _abandoned(leftover, int(pid)):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)


#: How long a writer's leftover file must have been left untouched before it counts as
#: abandoned: its pid names no running process *here*, but a writer in another PID namespace
#: (a container) or on another host sharing the folder (NFS, a cluster's home) may still be
#: writing it; none takes an hour between touching its file and renaming it.
ABANDONED_AFTER = 3600.0


def _abandoned(leftover: Path, pid: int) -> bool:
    """Whether ``leftover``, a file written by process ``pid``, was left by a writer that
    died: no process ``pid`` runs here and the file is :data:`ABANDONED_AFTER` seconds old."""
    if _running(pid):
        return False
    try:
        return time.time() - leftover.stat().st_mtime > ABANDONED_AFTER
    except OSError:  # gone already
        return False


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (POSIX: signal 0 tests without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's, or no such number: keep it
        return True
    return True


def _create_unique(folder: Path, prefix: str, suffix: str) -> str:
    """Create a new empty file ``folder/prefix<token>suffix`` (``O_EXCL``: never an existing
    file or link) with mode ``0o666`` less the umask, and return its path."""
    for _ in range(100):
        name = os.path.join(folder, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return name
    raise FileExistsError(f"{folder}: cannot create a unique temporary file")


def write_csv_atomic(df: pd.DataFrame, path: str | Path, quote_text: bool = False) -> None:
    """Write a CSV so that an interrupted run never leaves a half-written file behind.

    ``quote_text`` quotes every text cell, so that free text keeps its leading spaces (the
    readers skip spaces after a comma outside quotes)."""
    quoting = csv.QUOTE_NONNUMERIC if quote_text else csv.QUOTE_MINIMAL

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            df.to_csv(handle, index=False, lineterminator="\n", quoting=quoting)

    write_atomic(path, write)
