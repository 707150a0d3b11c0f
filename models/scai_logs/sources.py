"""Finding run folders in a folder or an archive, read in place.

A run folder is any folder holding ``id_N_run_K.csv`` files (epoch ``K`` of run ``N``); its
configuration is ``id_N_config`` beside them. Run folders may sit anywhere inside the source,
which is a folder (whose archives are read too) or a tar archive (``.tar.gz``, ``.tgz``, or
any compression ``tarfile`` reads). Archives are streamed member by member and nothing is
extracted to disk; each epoch file is reduced to its messages as it is read
(:mod:`.epoch_file`). Every other file (``.json``, ``_user.csv``, figures,
``config_history/``) is ignored.

An archive that ends early is reported (``truncated_archive``, naming the last member reached)
and what was read before it is kept; a configuration or epoch file larger than
:data:`MAX_FILE_BYTES` is reported (``too_large``) and not read; a source that is neither a
folder nor a readable archive is a ``ValueError``.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from scai.models.errors import error_text, missing, not_a_regular_file
from scai.models.scai_logs.epoch_file import EpochFileError, EpochLog, read_epoch
from scai.models.scai_logs.report import ImportReport, LogProblem
from scai.models.table_file import TAR_ENDINGS

_CONFIG = re.compile(r"^id_(\d+)_config$")
_EPOCH = re.compile(r"^id_(\d+)_run_(\d+)\.csv$")
_TRUNCATION = (EOFError, tarfile.ReadError, zlib.error, OSError)
#: Files inside a folder source that are read as archives.
ARCHIVE_SUFFIXES = TAR_ENDINGS
#: Archives of other kinds: reported, not read (a folder's .zip was skipped without a word).
OTHER_ARCHIVE_SUFFIXES = (".zip", ".7z", ".rar")
#: What a source may be, for the problems that name one.
READABLE = f"a folder or a tar archive ({', '.join(ARCHIVE_SUFFIXES)})"
#: The most digits of a run or epoch number in a file's name (Python's int() refuses over
#: 4,300, with a message that named no file and ended the import).
MAX_ID_DIGITS = 18
#: The largest configuration or epoch file read (the shared runs' largest is 44 KB): a file
#: read whole into memory could otherwise be gigabytes inflated from a small archive.
MAX_FILE_BYTES = 16 * 2**20


@dataclass
class RunFolder:
    """The files of one run: its configuration's text and its epochs, read."""

    folder: str  # the source and the folder inside it: "x.tgz:a/b" or "logs/a/b"
    run: int  # N of id_N_...
    config_file: str | None = None
    config_text: str | None = None
    epoch_files: dict[int, str] = field(default_factory=dict)  # K -> file label
    epochs: dict[int, EpochLog | None] = field(default_factory=dict)  # None: unreadable

    def label(self, name: str) -> str:
        return f"{self.folder}/{name}"


def read_runs(source: str | Path, report: ImportReport) -> list[RunFolder]:
    """Every run folder in ``source`` (those with at least one epoch file), in path order."""
    runs: dict[tuple[str, int], RunFolder] = {}
    for folder, name, opener in _files(Path(source), report):
        config = _CONFIG.match(name)
        epoch = _EPOCH.match(name)
        numbers = (config or epoch).groups()
        if max(len(n) for n in numbers) > MAX_ID_DIGITS:
            detail = f"a run or epoch number of over {MAX_ID_DIGITS} digits: not one of a run"
            report.problem(LogProblem(f"{folder}/{name[:80]}", None, "unreadable_file", detail))
            continue
        run_id = int(numbers[0])
        run = runs.setdefault((folder, run_id), RunFolder(folder, run_id))
        label = run.label(name)
        k = None if config else int(epoch[2])
        first = run.config_file if config else run.epoch_files.get(k)
        if first is not None:  # the same run's configuration or epoch again: not silently
            what = "configuration" if config else f"epoch {k}"
            detail = f"run {run_id}'s {what} is read from {first}; this file is not read"
            report.problem(LogProblem(label, None, "conflicting_files", detail))
            continue
        if config:
            run.config_file = label
            run.config_text = _read_text(opener, label, report)
            continue
        run.epoch_files[k] = label
        try:
            with opener() as handle:
                run.epochs[k] = read_epoch(
                    io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
                )
        except EpochFileError as err:
            report.problem(LogProblem(label, err.row, "bad_epoch_file", str(err)))
            run.epochs[k] = None
        except UnicodeDecodeError as err:  # its bytes, not its layout
            byte = err.object[err.start : err.start + 1].hex()  # (offsets count in a chunk)
            why = f"not UTF-8 text (a byte 0x{byte})"
            report.problem(LogProblem(label, None, "unreadable_file", why))
            run.epochs[k] = None
        except OSError as err:  # permission denied, an I/O error: this file, not the import
            report.problem(LogProblem(label, None, "unreadable_file", _why(err)))
            run.epochs[k] = None
        else:  # a principle given twice: read once, the other told (as a file given twice)
            for row, detail in run.epochs[k].repeated:
                report.problem(LogProblem(label, row, "repeated_system_row", detail))
    found = [r for _, r in sorted(runs.items()) if r.epoch_files]
    orphans = [r for r in runs.values() if not r.epoch_files]
    if orphans:
        report.notes.append(
            f"{len(orphans)} configuration file(s) without epoch files ignored "
            f"(e.g. {orphans[0].config_file}; the original code keeps copies in config_history/)"
        )
    return found


def _read_text(opener, label: str, report: ImportReport) -> str | None:
    try:
        with opener() as handle:
            return handle.read().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        report.problem(LogProblem(label, None, "bad_config", f"not UTF-8 text: {err}"))
        return None
    except OSError as err:
        report.problem(LogProblem(label, None, "unreadable_file", _why(err)))
        return None


def _why(err: OSError) -> str:
    return err.strerror or error_text(err)


def _walk(source: Path, report: ImportReport) -> list[Path]:
    """Every regular file under the folder ``source``, in path order. A folder that cannot be
    listed, and a link to a folder (not followed: it may loop, or lead out of the source),
    are reported (``unreadable_folder``), not skipped in silence."""

    def label(path: str | Path) -> str:
        return Path(path).relative_to(source.parent).as_posix()

    def cannot_list(err: OSError) -> None:
        where = label(err.filename) if err.filename else source.name
        report.problem(LogProblem(where, None, "unreadable_folder", _why(err)))

    files = []
    for folder, dirs, names in os.walk(source, onerror=cannot_list):
        for name in dirs:
            if (Path(folder) / name).is_symlink():
                detail = "a link to a folder: not followed (give its target as a source)"
                report.problem(
                    LogProblem(label(Path(folder) / name), None, "unreadable_folder", detail)
                )
        files.extend(p for name in names if (p := Path(folder) / name).is_file())
    return sorted(files)


def _wanted(name: str) -> bool:
    return bool(_CONFIG.match(name) or _EPOCH.match(name))


def _files(source: Path, report: ImportReport) -> Iterator[tuple[str, str, object]]:
    """``(folder label, file name, open)`` for every configuration and epoch file; a folder
    label names the source and the folder inside it (``x.tgz:a/b`` or ``logs/a/b``). A folder's
    archives are read too."""
    if source.is_dir():
        for path in _walk(source, report):
            rel = path.relative_to(source.parent).as_posix()
            if _wanted(path.name):
                if _too_large(rel, path.stat().st_size, report):
                    continue
                yield rel.rsplit("/", 1)[0], path.name, _opener(path)
            elif path.name.lower().endswith(ARCHIVE_SUFFIXES):
                try:  # one bad archive in a folder is reported; the folder's other runs count
                    yield from _archive_files(path, rel, report)
                except ValueError as err:
                    report.problem(LogProblem(rel, None, "unreadable_source", str(err)))
            elif path.name.lower().endswith(OTHER_ARCHIVE_SUFFIXES):
                detail = f"an archive of another kind: not read (scai reads {READABLE})"
                report.problem(LogProblem(rel, None, "unreadable_source", detail))
        return
    if not source.exists():
        why = missing(source, "folder or archive")
        raise ValueError(f"{source}: {why}")
    if why := not_a_regular_file(source):
        raise ValueError(f"{source}: {why}; give a folder or an archive")
    yield from _archive_files(source, source.name, report)


def _archive_files(
    path: Path, label: str, report: ImportReport
) -> Iterator[tuple[str, str, object]]:
    try:
        archive = tarfile.open(path, mode="r|*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError, EOFError) as err:
        # (a zip's end record can close a tar too, one whose last member is a .zip: asked
        # only of a file that is no tar; tarfile's own words for a zip: "bad checksum")
        if zipfile.is_zipfile(path):
            raise ValueError(f"{label}: a zip archive; scai reads {READABLE}") from None
        raise ValueError(f"{label}: neither a folder nor a readable tar archive ({err})") from None
    last = "the start"
    with archive:
        members = iter(archive)
        while True:
            try:
                member = next(members)
            except StopIteration:
                # A cut archive can end cleanly at a tar block boundary (tarfile's stream
                # does not check the compressed stream's end marker): check the file itself.
                problem = _incomplete(path)
                if problem:
                    detail = f"the archive ends after {last}: {problem}"
                    report.problem(LogProblem(label, None, "truncated_archive", detail))
                return
            except _TRUNCATION as err:
                detail = f"the archive ends after {last}: {err}"
                report.problem(LogProblem(label, None, "truncated_archive", detail))
                return
            last = member.name
            inside = PurePosixPath(member.name)
            folder = f"{label}:{inside.parent}"
            if _wanted(inside.name) and not member.isfile():  # a log's name, not a log's file
                kinds = {"a hard link": member.islnk(), "a symbolic link": member.issym()}
                kind = next((k for k, is_it in kinds.items() if is_it), "not a regular file")
                detail = f"is {kind} in the archive (links are not followed); not read"
                report.problem(
                    LogProblem(f"{folder}/{inside.name}", None, "unreadable_file", detail)
                )
                continue
            if not _wanted(inside.name):
                continue
            if _too_large(f"{folder}/{inside.name}", member.size, report):
                continue
            data = _member_bytes(archive, member)
            if data is None:
                detail = "the archive ends inside this file"
                report.problem(
                    LogProblem(f"{folder}/{inside.name}", None, "truncated_archive", detail)
                )
                return
            yield folder, inside.name, _bytes_opener(data)


def _too_large(label: str, size: int, report: ImportReport) -> bool:
    """Report a file over :data:`MAX_FILE_BYTES` (and say it is to be skipped)."""
    if size <= MAX_FILE_BYTES:
        return False
    detail = f"{size:,} bytes; a configuration or epoch file is at most {MAX_FILE_BYTES:,}"
    report.problem(LogProblem(label, None, "too_large", detail))
    return True


def _incomplete(path: Path) -> str | None:
    """Why the (possibly compressed) tar file at ``path`` is cut short, or ``None``: a
    compressed stream must reach its end marker; a plain tar must end with its zero blocks."""
    with open(path, "rb") as raw:
        magic = raw.read(6)
    opener = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open, b"\xfd7zXZ": lzma.open}
    for prefix, open_ in opener.items():
        if magic.startswith(prefix):
            try:
                with open_(path, "rb") as stream:
                    while stream.read(1 << 20):
                        pass
            except _TRUNCATION as err:
                return str(err)
            return None
    size = path.stat().st_size
    with open(path, "rb") as raw:
        raw.seek(max(0, size - 1024))
        tail = raw.read()
    if size % 512 or tail != bytes(len(tail)):
        return "the tar file does not end with its end-of-archive blocks"
    return None


def _member_bytes(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    """The member's bytes (read now: a streamed archive cannot go back), or None if cut."""
    try:
        handle = archive.extractfile(member)
        return handle.read() if handle is not None else b""
    except _TRUNCATION:
        return None


def _opener(path: Path):
    def open_file() -> IO[bytes]:
        return path.open("rb")

    return open_file


def _bytes_opener(data: bytes):
    def open_bytes() -> IO[bytes]:
        return io.BytesIO(data)

    return open_bytes
