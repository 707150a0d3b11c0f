"""Reading a table file into a DataFrame of text: compressed or in an archive (known by its
name's ending), from a pipe, in UTF-8, within the limits of its header, its rows and the
memory, each row with one field per header column. A file that cannot be read so raises a
:class:`~scai.models.errors.DataError` naming the problem; the table's own rules (its columns,
ids and values) are :mod:`scai.models.data`'s.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import functools
import gzip
import io
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from scai.models.errors import DataError, Problem, error_text
from scai.models.memory import check_memory, format_bytes, memory_limit

#: The most columns a table's header may name, and the most characters its header line may
#: hold: pandas' reader slows down faster than linearly in the columns (40,000: 26 s; a 10 MB
#: header line of them did not finish in hours), and a table has a dozen.
MAX_COLUMNS = 1_000
MAX_HEADER_CHARS = 1 << 16
#: The most games a table holds (rows after its header) and one call of ``simulate`` makes.
MAX_ROWS = 10_000_000


_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
#: The problem of a table file with nothing in it.
EMPTY_FILE = "empty file; expected a header line and rows"
#: Endings of a table's name that the readers (pandas' ``compression="infer"``, and ``.tgz``,
#: read as the ``.tar.gz`` it is: :func:`_compression`) take for a compressed file or archive
#: (``.tar.gz`` and the like end in one of these too).
COMPRESSED_SUFFIXES = (*_OPENERS, ".zip", ".zst", ".tar", ".tgz", ".tbz", ".tbz2", ".txz")
#: The endings of a tar archive that scai reads (plain, or compressed with gzip, bzip2 or xz):
#: a table's archive, and the original study's logs (``scai import scai-logs``).
TAR_ENDINGS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")


def _compression(path_or_buffer) -> str | dict:
    """pandas' ``compression`` for a table: inferred from the name, but a ``.tgz`` (which
    pandas does not know) is a tar archive, its gzip found by :mod:`tarfile`."""
    if not isinstance(path_or_buffer, io.IOBase) and str(path_or_buffer).lower().endswith(".tgz"):
        return {"method": "tar"}
    return "infer"


def compressed_name(path: str | Path) -> bool:
    """Whether the readers take ``path`` for a compressed file (its name's ending)."""
    return str(path).lower().endswith(COMPRESSED_SUFFIXES)


def _check_header(path_or_buffer: str | Path | io.StringIO | io.BytesIO, source: str) -> None:
    """A :class:`DataError` for a header line longer than :data:`MAX_HEADER_CHARS` or naming
    more than :data:`MAX_COLUMNS` columns, before pandas reads the file (which takes minutes
    over a header of 100,000 columns)."""
    if isinstance(path_or_buffer, io.StringIO):
        head = path_or_buffer.getvalue()[: MAX_HEADER_CHARS + 1]
    elif isinstance(path_or_buffer, io.BytesIO):  # a pipe, read already
        head = bytes(path_or_buffer.getbuffer()[: 4 * MAX_HEADER_CHARS + 4]).decode(
            "utf-8-sig", errors="replace"
        )
    elif not os.path.isfile(path_or_buffer):
        return  # a missing file, pandas names
    else:
        try:
            head = _head(Path(path_or_buffer), 4 * MAX_HEADER_CHARS + 4)
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) + _ARCHIVE_ERRORS:
            return  # pandas says why, as for any file it cannot read
        if head is None:
            return
    line = next((x for x in head.splitlines() if x.strip()), "")
    if len(line) > MAX_HEADER_CHARS:
        problem = f"the header line is longer than {MAX_HEADER_CHARS:,} characters"
        raise DataError(source, [Problem(None, None, None, problem)])
    columns = len(next(csv.reader([line]), []))
    if columns > MAX_COLUMNS:
        problem = f"the header names {columns:,} columns; at most {MAX_COLUMNS:,} are allowed"
        raise DataError(source, [Problem(None, None, None, problem)])


def _check_lines(path_or_buffer: str | Path | io.StringIO | io.BytesIO, source: str) -> None:
    """A :class:`DataError` for a table of more than :data:`MAX_ROWS` rows after its header, or
    whose text is above :func:`memory_limit`, found as the file is read (decompressed) with
    nothing kept, before pandas parses it: a 2 MB .gz of 30 million rows took pandas over a
    minute and 6 GB before any check (a red-team's decompression bomb).

    Line ends are counted as pandas reads them (``\\n``, ``\\r\\n`` or a lone ``\\r``); only
    where they reach the limit are the rows counted as a CSV reader reads them (a quoted text
    may hold line ends, blank lines are skipped, a last row may have no line end), which takes
    longer. A file that cannot be read is left to pandas, which says why. (A pipe named as
    compressed is decompressed and counted as it is read: :func:`_decompressed_pipe`.)"""
    limit, why = memory_limit()
    ends, size, carry, counted = 0, 0, False, False
    for chunk in _table_chunks(path_or_buffer):
        nl, cr = (b"\n", b"\r") if isinstance(chunk, bytes) else ("\n", "\r")
        ends += chunk.count(nl) + chunk.count(cr) - chunk.count(cr + nl)
        ends -= carry and chunk.startswith(nl)  # a \r\n across two chunks
        carry, size = chunk.endswith(cr), size + len(chunk)
        if limit is not None and size > limit:
            problem = (
                f"its text, decompressed, is more than {format_bytes(limit)}: above the limit "
                f"for a table held in memory ({why})"
            )
            raise DataError(source, [Problem(None, None, None, problem)])
        # the header and MAX_ROWS rows end in MAX_ROWS + 1 line ends (a last row may not)
        if ends >= MAX_ROWS + 1 and not counted:
            if _rows_beyond(path_or_buffer, MAX_ROWS):
                problem = (
                    f"more than {MAX_ROWS:,} rows after the header; a table holds at most "
                    f"{MAX_ROWS:,} games (split it, or fit a sample of its groups)"
                )
                raise DataError(source, [Problem(None, None, None, problem)])
            counted = True  # (fewer rows: quoted line ends, blank lines); the size still counts


def _table_chunks(path_or_buffer, size: int = 1 << 20):
    """The table's text as pandas reads it, in chunks (bytes; a ``StringIO``'s str), for
    :func:`_check_lines`; nothing for a file that cannot be read (pandas says why)."""
    if isinstance(path_or_buffer, io.StringIO | io.BytesIO):
        yield path_or_buffer.getvalue()
        return
    if not os.path.isfile(path_or_buffer):
        return
    try:
        with _open_decompressed(Path(path_or_buffer)) as f:
            while chunk := f.read(size):
                yield chunk
    except (OSError, EOFError, ValueError, ImportError, zlib.error, lzma.LZMAError):
        return
    except Exception as err:  # zstandard's own, where it cannot read the file
        if type(err).__module__.split(".")[0] != "zstandard":
            raise


def _csv_text(path_or_buffer) -> io.TextIOBase:
    """The table's text, decompressed, for Python's CSV reader (undecodable bytes replaced)."""
    if isinstance(path_or_buffer, io.StringIO):
        return io.StringIO(path_or_buffer.getvalue(), newline="")
    raw = (
        io.BytesIO(path_or_buffer.getvalue())
        if isinstance(path_or_buffer, io.BytesIO)
        else _open_decompressed(Path(path_or_buffer))
    )
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


@contextlib.contextmanager
def _any_field_size():
    """Python's CSV reader with no limit on a field's length while it reads a table: by
    default it stops at a field of 131,072 characters, and the passes below then gave up
    (a table with one such text field passed with its last row cut, or beyond the most rows
    allowed). What a table may hold in all is bounded before (its decompressed size)."""
    before = csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _short_rows(path_or_buffer) -> list[tuple[int, int, int]]:
    """``(row, fields, columns)`` of every row with fewer fields than the header's ``columns``
    (its names up to the last that is not empty: a header's trailing comma names no column a
    row must fill), rows counted from 1 after the header as pandas counts them (blank lines and
    lines of spaces alone skipped; a line of empty fields is a row), fields read as pandas reads
    them (spaces before a quote skipped): pandas fills a row's missing last fields with empty
    text, so a cut file reads as a table whose last rows lack their tones. ``[]`` where the
    reader cannot go on (pandas has read the file: a reader's limit, not the file)."""
    short, row, last = [], 0, [""]

    def remembered(lines):  # the last line read: a record of one empty field may be a blank line
        for line in lines:
            last[0] = line
            yield line

    try:
        with _csv_text(path_or_buffer) as lines, _any_field_size():
            reader = csv.reader(remembered(lines), skipinitialspace=True)
            header = next(reader, [])
            columns = len(header)
            while columns and not header[columns - 1].strip():
                columns -= 1
            for fields in reader:
                if not fields or (fields == [""] and not last[0].strip()):
                    continue
                row += 1
                if len(fields) < columns:
                    short.append((row, len(fields), columns))
    except (csv.Error, OSError, EOFError, ValueError, ImportError, zlib.error, lzma.LZMAError):
        return []
    return short


def _rows_beyond(path_or_buffer, most: int) -> bool:
    """Whether the table holds more than ``most`` rows after its header, counted as a CSV
    reader reads them (quoted line ends inside a field, blank lines skipped), nothing kept.
    Where the reader cannot go on (a damaged end, a field over its size limit) the rows it
    read decide: pandas then says what is wrong, within the memory limit counted meanwhile."""
    rows = 0
    try:
        with _csv_text(path_or_buffer) as lines, _any_field_size():
            for row in csv.reader(lines):
                rows += bool(row)
                if rows > most + 1:  # (the header's row)
                    return True
    except (csv.Error, OSError, EOFError, ValueError, ImportError, zlib.error, lzma.LZMAError):
        pass
    return False


def _open_decompressed(path: Path):
    """``path`` opened for bytes as pandas reads it (by its name's ending); an archive never
    comes here (:func:`_one_member` has read its table already)."""
    if path.name.lower().endswith(".zst"):
        import zstandard  # (an ImportError where it is not installed: pandas asks for it)

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return _OPENERS.get(path.suffix.lower(), open)(path, "rb")


_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError)


def _head(path: Path, size: int) -> str | None:
    """The first ``size`` bytes of the table at ``path``, decoded, as pandas would read it (by
    the name's ending); ``None`` for a .zst. An archive never comes here: :func:`_one_member`
    has read its table already."""
    name = path.name.lower()
    if name.endswith(".zst"):
        return None  # zstandard may not be installed; _cut_zst and pandas see to it
    else:
        with _OPENERS.get(path.suffix.lower(), open)(path, "rb") as f:
            data = f.read(size)
    return data.decode("utf-8-sig", errors="replace")


#: An archive's name (read by :func:`_one_member`, not by pandas): ZIP, and tar plain or
#: compressed with gzip, bzip2 or xz.
_ARCHIVE_NAME = re.compile(r"\.(zip|tar(\.(gz|bz2|xz))?|tgz|tbz2?|txz)$")
#: A tar archive compressed otherwise (Python's tarfile reads zstd only from 3.14).
_UNREAD_TAR_NAME = re.compile(r"\.(tar\.(zst|lz4|lz|lzma|z)|tzst)$")
#: What reading an archive raises where it is damaged, encrypted or compressed by a method
#: Python cannot read (zipfile: RuntimeError for a password, NotImplementedError for a method).
_READ_ARCHIVE_ERRORS = (
    *_ARCHIVE_ERRORS,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    RuntimeError,
    NotImplementedError,
)


def _one_member(path: Path, whole_file: Callable[[str], DataError]) -> io.BytesIO:
    """The one regular file a ZIP or tar archive holds, as bytes (folders around it are
    layout: ``zip -r data.zip data`` has a ``data/`` entry); a problem of the file where it
    holds several, none (only folders, links or pipes: pandas failed on those with an internal
    error), or cannot be read (damaged, encrypted, compressed by a method Python cannot read;
    a gzipped table named ``.tgz``)."""
    kind = "ZIP" if path.name.lower().endswith(".zip") else "TAR"
    try:
        if kind == "ZIP":
            with zipfile.ZipFile(path) as archive:
                # macOS Finder's zips hold each file's metadata as __MACOSX/._NAME: not a table
                members = [
                    m
                    for m in archive.infolist()
                    if not m.is_dir() and not m.filename.startswith("__MACOSX/")
                ]
                names = [m.filename for m in members]
                if len(members) == 1:
                    check_memory(members[0].file_size, lambda t: whole_file(f"its table {t}"))
                    with archive.open(members[0]) as f:
                        return io.BytesIO(f.read())
        else:
            with tarfile.open(path) as archive:
                members = [m for m in archive.getmembers() if m.isfile()]
                names = [m.name for m in members]
                if len(members) == 1 and (f := archive.extractfile(members[0])) is not None:
                    # read whole (pandas would too): only if it fits
                    check_memory(members[0].size, lambda t: whole_file(f"its table {t}"))
                    return io.BytesIO(f.read())
    except _READ_ARCHIVE_ERRORS as err:
        if kind == "ZIP":
            why = error_text(err)
            raise whole_file(f"cannot read as CSV: not a readable ZIP archive ({why})") from None
        hint = " (a gzipped table is named .csv.gz)" if path.name.lower().endswith("gz") else ""
        raise whole_file(f"cannot read as CSV: not a readable tar archive{hint}") from None
    if members:
        raise whole_file(
            f"cannot read as CSV: a {kind} of several files ({names}); it must hold exactly one "
            "table"
        )
    raise whole_file(f"cannot read as CSV: a {kind} with no file; it must hold exactly one table")


def _read_once(path_or_buffer, source: str):
    """A pipe (``cat t.csv | scai validate /dev/stdin``) as the bytes it gives, read once, so
    that its header can be checked before pandas parses it, and its short rows read again (a
    pipe opened twice waits forever for a writer); decompressed as it is read where its name
    says compressed (:func:`_decompressed_pipe`); anything else as it is."""
    if isinstance(path_or_buffer, io.IOBase):
        return path_or_buffer
    try:
        is_pipe = stat.S_ISFIFO(os.stat(path_or_buffer).st_mode)
    except OSError:
        return path_or_buffer
    if not is_pipe:
        return path_or_buffer
    if compressed_name(path_or_buffer):
        return _decompressed_pipe(Path(path_or_buffer), source)
    return io.BytesIO(Path(path_or_buffer).read_bytes())


def _decompressed_pipe(path: Path, source: str) -> io.BytesIO:
    """The text of a pipe named as compressed (``.gz``, ``.bz2``, ``.xz``, ``.zst``), read once
    and decompressed as it is read, its size counted against :func:`memory_limit` as a file's
    is (:func:`_check_lines`); a :class:`DataError` for an archive's name (an archive's table
    is found by seeking in it: give its file) or data its name's decompressor cannot read."""
    if _ARCHIVE_NAME.search(path.name.lower()) or _UNREAD_TAR_NAME.search(path.name.lower()):
        raise _whole_file(
            source,
            "cannot read an archive (.zip, .tar and the like) from a pipe: give the archive's "
            "file, or the table itself through the pipe",
        )
    limit, why = memory_limit()
    text = io.BytesIO()
    try:
        for chunk in _pipe_chunks(path):
            text.write(chunk)
            if limit is not None and text.tell() > limit:
                raise _whole_file(
                    source,
                    f"its text, decompressed, is more than {format_bytes(limit)}: above the "
                    f"limit for a table held in memory ({why})",
                )
    except (OSError, EOFError, ImportError, zlib.error, lzma.LZMAError) as err:
        raise _whole_file(source, f"cannot read as CSV: {err}") from None
    except DataError:
        raise
    except Exception as err:  # zstandard's own, where it cannot read the data
        if type(err).__module__.split(".")[0] != "zstandard":
            raise
        raise _whole_file(source, f"cannot read as CSV: {err}") from None
    text.seek(0)
    return text


def _pipe_chunks(path: Path, size: int = 1 << 20):
    """The text of a pipe named as compressed, decompressed as it is read, in chunks; a .zst
    frame by frame (:func:`_zst_frames`), so that one cut short is an :class:`EOFError`, as a
    cut .gz, .bz2 or .xz is of its reader (the pipe cannot be read again to look for the cut,
    as :func:`_cut_zst` looks in a file)."""
    if not path.name.lower().endswith(".zst"):
        with _open_decompressed(path) as f:
            while chunk := f.read(size):
                yield chunk
        return
    with open(path, "rb") as f:
        yield from _zst_frames(f, size)


def _zst_frames(f: io.BufferedIOBase, size: int = 1 << 20):
    """The decompressed text of the zstd frames ``f`` holds one after another, in chunks; an
    :class:`EOFError` where the last ends early (zstandard's reader takes such a stream for the
    rows before the cut, without an error). An ImportError where zstandard is not installed."""
    import zstandard

    decompressor = zstandard.ZstdDecompressor()
    frame, fed = decompressor.decompressobj(), False
    while chunk := f.read(size):
        while chunk:  # the frames one after another
            yield frame.decompress(chunk)
            fed, chunk = True, b""
            if frame.eof:
                chunk = frame.unused_data
                frame, fed = decompressor.decompressobj(), False
    if fed:
        raise EOFError("a truncated .zst (its last frame ends early): its rows are not all there")


def _cut_zst(path: str | Path | io.StringIO) -> bool:
    """Whether a ``.zst`` file ends inside a frame: zstandard (which pandas reads it with)
    reads such a file as the rows before the cut, without an error (a truncated .gz, .bz2 or
    .xz is an error of its reader). False for other names or a buffer, where zstandard is not
    installed (pandas then asks for it) or where the file is not zstd (pandas says so)."""
    if isinstance(path, io.StringIO) or not str(path).lower().endswith(".zst"):
        return False
    try:
        import zstandard
    except ImportError:
        return False
    try:
        with open(path, "rb") as f:
            for _ in _zst_frames(f):
                pass
    except EOFError:
        return True
    except (OSError, zstandard.ZstdError):
        return False
    return False


#: The first bytes of the compressed formats the readers take, by the name's ending they need.
COMPRESSION_MAGIC = {
    b"\x1f\x8b": ".gz",
    b"BZh": ".bz2",
    b"\xfd7zXZ\x00": ".xz",
    b"\x28\xb5\x2f\xfd": ".zst",
    b"PK\x03\x04": ".zip",
}


def not_utf8(path_or_buffer, err: UnicodeDecodeError, unpacked: bool = False) -> str:
    """What a table that is not UTF-8 text says: the line of its first such byte where the
    table is a plain file or bytes (pandas' own position counts from the start of its chunk);
    compressed data under a name that does not say so (a pipe: ``/dev/stdin``), that it is
    (compression is known by the name's ending only); ``unpacked``: the data was decompressed
    or taken out of an archive by the name already, so a compressed file is inside it."""
    raw = None
    if isinstance(path_or_buffer, io.BytesIO):
        raw = path_or_buffer.getvalue()
    elif not isinstance(path_or_buffer, io.IOBase) and not compressed_name(path_or_buffer):
        with contextlib.suppress(OSError):
            raw = Path(path_or_buffer).read_bytes()
    bad = err.object[err.start : err.start + 1].hex()
    where = ""
    if raw is not None:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as found:
            bad = raw[found.start : found.start + 1].hex()
            line = raw[: found.start].count(b"\n") + 1
            where = f" line {line}:"
    head = raw if raw is not None else bytes(err.object[:8])
    for magic, suffix in COMPRESSION_MAGIC.items():
        if head.startswith(magic) and unpacked:
            return (
                "cannot read as CSV: read by the file's name (decompressed, or taken out of its "
                f"archive), the data starts as a {suffix} file does: a compressed file inside; "
                "decompress it first"
            )
        if head.startswith(magic):
            return (
                f"cannot read as CSV: the data starts as a {suffix} file does (compressed), and "
                "compression is known by the file's name only: give it a name ending in "
                f"{suffix}, or decompress it first"
            )
    return (
        f"cannot read as CSV:{where} byte 0x{bad} is not UTF-8 text; save the file as UTF-8 "
        "(in a spreadsheet: CSV UTF-8)"
    )


def read_text_table(
    path_or_buffer: str | Path | io.StringIO | io.BytesIO,
    source: str,
    header_hint: Callable[[Iterable[object]], str] = lambda columns: "",
) -> pd.DataFrame:
    """The table in the file (or in-memory buffer) as a DataFrame of text, every cell a string,
    empty where empty, the header's names stripped; a :class:`DataError` naming ``source`` where the
    file cannot be read so (see the module's docstring). ``header_hint(columns)`` says why a
    header may not name the table's columns (a comment above it, JSON): it is told beside a
    first row of more fields than the header."""
    path_or_buffer = _read_once(path_or_buffer, source)
    name = "" if isinstance(path_or_buffer, io.IOBase) else str(path_or_buffer).lower()
    path_or_buffer = _unarchived(path_or_buffer, name, source)
    _check_before_parsing(path_or_buffer, source)
    df = _parsed(path_or_buffer, name, source)
    _check_first_row(df, source, header_hint)
    _check_short_rows(df, path_or_buffer, source)
    df.columns = [c.strip() for c in df.columns]
    return df


def _whole_file(source: str, problem: str) -> DataError:
    """A problem of the file ``source``, not of a row."""
    return DataError(source, [Problem(None, None, None, problem)])


def _unarchived(path_or_buffer, name: str, source: str):
    """``path_or_buffer`` as pandas is to read it: the table a ZIP or tar archive holds, as
    bytes (:func:`_one_member`), else as it is; ``name``: its name, lower case (``""`` for a
    buffer). A :class:`DataError` for a tar archive compressed otherwise than Python's
    tarfile reads, or an archive that does not hold exactly one readable table."""
    if _UNREAD_TAR_NAME.search(name):
        raise _whole_file(
            source,
            "cannot read as CSV: a tar archive is read plain or compressed with gzip, bzip2 or "
            f"xz ({', '.join(TAR_ENDINGS)}); a table alone may be .csv.zst",
        )
    if _ARCHIVE_NAME.search(name) and os.path.isfile(path_or_buffer):
        return _one_member(Path(path_or_buffer), functools.partial(_whole_file, source))
    return path_or_buffer


def _check_before_parsing(path_or_buffer, source: str) -> None:
    """A :class:`DataError` for what pandas would be slow at or silent about, found before it
    parses the table: a header too long or too wide (:func:`_check_header`), too many rows or
    too much text for memory (:func:`_check_lines`), a truncated .zst (:func:`_cut_zst`)."""
    _check_header(path_or_buffer, source)
    _check_lines(path_or_buffer, source)
    if _cut_zst(path_or_buffer):
        raise _whole_file(
            source,
            "cannot read as CSV: a truncated .zst file (its last frame ends early): its rows "
            "are not all there",
        )


#: What reading a table raises where the file cannot be read as CSV: a truncated or corrupt
#: compressed file or archive (EOFError, zlib's, lzma's, zipfile's or tarfile's own errors),
#: or a .zst without the zstandard package (ImportError).
_UNREADABLE_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    zipfile.BadZipFile,
    tarfile.TarError,
    ImportError,
)


def _parsed(path_or_buffer, name: str, source: str) -> pd.DataFrame:
    """The table as pandas reads it, every cell text (``name``: the name it was given, lower
    case); a :class:`DataError` where pandas cannot read it (:func:`_read_problem`)."""
    try:
        return pd.read_csv(
            path_or_buffer,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            compression=_compression(path_or_buffer),
        )
    except Exception as err:
        problem = _read_problem(err, path_or_buffer, name)
        if problem is None:  # scai's own bug: raised as it is
            raise
        raise _whole_file(source, problem) from None


def _read_problem(err: Exception, path_or_buffer, name: str) -> str | None:
    """The problem of the file that pandas' error ``err`` says, checked in this order (a
    :class:`UnicodeDecodeError` and pandas' own errors are ``ValueError`` too); ``None`` for
    any other error (scai's own: raised as it is)."""
    if isinstance(err, pd.errors.EmptyDataError):
        return EMPTY_FILE
    if isinstance(err, pd.errors.ParserError):
        return _parser_problem(err)
    if isinstance(err, UnicodeDecodeError):
        return not_utf8(path_or_buffer, err, unpacked=compressed_name(name))
    if isinstance(err, _UNREADABLE_ERRORS):
        return f"cannot read as CSV: {err}"
    if isinstance(err, ValueError):
        return _archive_count_problem(err)
    if type(err).__module__.split(".")[0] == "zstandard":
        # a .zst that the zstandard package, where installed, cannot read
        return f"cannot read as CSV: {err}"
    return None


def _archive_count_problem(err: ValueError) -> str | None:
    """pandas' own error for a .zip or .tar of several tables or none, as the problem
    :func:`_one_member` says of them; ``None`` for any other ``ValueError``."""
    found = re.match(r"(Multiple|Zero) files found in (ZIP file|TAR archive)", str(err))
    if found is None:
        return None
    kind = found[2].split()[0]
    held = f"of several files ({str(err).partition(': ')[2]})" if found[1] == "Multiple" else ""
    return f"cannot read as CSV: a {kind} {held or 'with no file'}; it must hold exactly one table"


def _check_first_row(
    df: pd.DataFrame, source: str, header_hint: Callable[[Iterable[object]], str]
) -> None:
    """A :class:`DataError` at row 1 where pandas read the first row as one of more fields
    than the header (``header_hint`` says why the header may not name the columns)."""
    if not isinstance(df.index, pd.RangeIndex):
        # pandas makes the first column an index when the first row has one field more than
        # the header (e.g. trailing commas), silently shifting every value one column left.
        raise DataError(
            source,
            [
                Problem(
                    1,
                    None,
                    None,
                    f"more fields than the header's {len(df.columns)} columns "
                    f"({header_hint(df.columns) or 'a trailing comma?'}); each row needs "
                    "one field per header column",
                )
            ],
        )


def _check_short_rows(df: pd.DataFrame, path_or_buffer, source: str) -> None:
    """A :class:`DataError` naming every row with fewer fields than the header
    (:func:`_short_rows`), which pandas read as one whose last fields are empty."""
    # A row with fewer fields than the header reads as one whose last fields are empty: only
    # a table whose last column has an empty field is read again, field by field.
    if not (len(df) and bool((df.iloc[:, -1] == "").any())):
        return
    short = _short_rows(path_or_buffer)
    if short:
        raise DataError(
            source,
            [
                Problem(
                    row,
                    None,
                    None,
                    f"{fields} fields, fewer than the header's {columns} columns (a cut "
                    "file?); each row needs one field per header column (an empty one "
                    "between commas is allowed)",
                )
                for row, fields, columns in short
            ],
        )


def _parser_problem(err: pd.errors.ParserError) -> str:
    """pandas' tokenizer error as a problem that says where and what is allowed: a row with
    more fields than the header (past the first row, which :func:`read_text_table` checks) reads
    ``Expected 11 fields in line 3, saw 12``."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
    if found is None:
        return f"cannot read as CSV: {err}"
    columns, line, fields = found.groups()
    return (
        f"line {line} of the file has {fields} fields, more than the header's {columns} "
        "columns (a trailing comma?); each row needs one field per header column"
    )
