"""The interaction table: one row per game, as CSV, with validation.

Columns (``proposer`` may be empty for responder-only human data; tones may be empty when no
message was observed)::

    sim, epoch, round, proposer, responder, currency, pot, offer, accepted,
    proposer_tone, responder_tone

and, optionally, the messages as written (:data:`TEXT_COLUMNS`: any text, may be empty; a table
may carry either, both or neither)::

    proposer_text, responder_text

and, beside a simulated table ``X.csv``, the users' true types in ``X.users.csv``::

    sim, user, policy, manner

Every reader checks its input and raises :class:`DataError` listing *every* problem found,
each naming the row (1-based data row: the rows after the header, blank lines skipped and not
counted, so row ``r`` is line ``r + 1`` only in a file with no blank line before it and no line
break inside a quoted value), the column, the value and what is allowed. No data error reaches
torch.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import csv
import errno
import functools
import glob
import gzip
import io
import lzma
import os
import re
import secrets
import stat
import tarfile
import time
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scai.models.errors import (
    DataError,
    DuplicateGamesWarning,
    Problem,
    RunError,
    TableWarning,
    UnusedColumnsWarning,
    check_flag,
    check_path,
    error_text,
    missing,
    not_a_regular_file,
    not_replaceable,
    outside_scai,
)
from scai.models.game import CURRENCIES, MAX_POT, get_currency
from scai.models.language import MANNERS, TONES
from scai.models.layout import ASSISTANT, column_texts

INTERACTION_COLUMNS: tuple[str, ...] = (
    "sim",
    "epoch",
    "round",
    "proposer",
    "responder",
    "currency",
    "pot",
    "offer",
    "accepted",
    "proposer_tone",
    "responder_tone",
)
#: Optional columns: the proposal and the reply as written (free text, may be empty).
TEXT_COLUMNS: tuple[str, ...] = ("proposer_text", "responder_text")
USER_COLUMNS: tuple[str, ...] = ("sim", "user", "policy", "manner")
_OPTIONAL = {"proposer", "proposer_tone", "responder_tone"}
_ID_COLUMNS = ("sim", "proposer", "responder")
_INT_COLUMNS = ("epoch", "round", "pot", "offer", "accepted")
#: The largest ``epoch`` or ``round`` (and human-data ``trial``): far beyond any study, and
#: small enough that every count the model and its tables derive stays exact in int64/float64.
MAX_INDEX = 10**9

# Plain ASCII decimal notation: digits, an optional fraction and exponent. Python's int() and
# float() also read "5_3" (as 53), non-ASCII digits ("\u0665" as 5), "inf" and "nan".
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_HUGE = 10**30


def plain_decimal(text: str) -> bool:
    """Whether ``text`` is a number in plain ASCII decimal notation (``0.8``, ``1e-3``; not
    ``0.2_5``, non-ASCII digits, ``inf`` or ``nan``, which ``float`` also reads)."""
    return _DECIMAL.fullmatch(text.strip()) is not None


def parse_whole(text: str) -> int | None:
    """The whole number ``text`` writes (``12``, ``12.0``, ``1.2e1``, ``-3``), or ``None``.

    Only plain ASCII decimal notation counts, so ``5_3``, ``\u0665``, ``inf``, ``nan``,
    ``0x10`` and ``12.5`` are not whole numbers. The value is exact (no float rounding); a
    magnitude above ``10**30`` comes back as ``+-10**31``, outside every allowed range (and
    ``1e999999999`` is never expanded into a billion-digit int).
    """
    # tables repeat their pots, offers, epochs and rounds: short texts are parsed once
    return _parse_short(text) if len(text) <= 40 else _parse_whole(text)


@functools.lru_cache(maxsize=65536)
def _parse_short(text: str) -> int | None:
    return _parse_whole(text)


def _parse_whole(text: str) -> int | None:
    text = text.strip()
    if text.isascii() and text.isdigit():  # the common case, fast
        return int(text) if len(text.lstrip("0")) <= 30 else 10 * _HUGE
    if not _DECIMAL.fullmatch(text):
        return None
    value = Decimal(text)
    if value == 0:
        return 0
    if value.adjusted() > 30:
        return 10 * _HUGE if value > 0 else -10 * _HUGE
    if value != value.to_integral_value():
        return None
    return int(value)


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
    compressed is decompressed by pandas as it reads it: not counted first.)"""
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


def _read_once(path_or_buffer):
    """A pipe (``cat t.csv | scai validate /dev/stdin``) as the bytes it gives, read once, so
    that its header can be checked before pandas parses it; anything else as it is, and a pipe
    whose name says compressed too (pandas decompresses it by that name)."""
    if isinstance(path_or_buffer, io.IOBase) or compressed_name(path_or_buffer):
        return path_or_buffer
    try:
        is_pipe = stat.S_ISFIFO(os.stat(path_or_buffer).st_mode)
    except OSError:
        return path_or_buffer
    return io.BytesIO(Path(path_or_buffer).read_bytes()) if is_pipe else path_or_buffer


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
    decompressor = zstandard.ZstdDecompressor()
    frame, fed = decompressor.decompressobj(), False
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                while chunk:  # the frames one after another
                    frame.decompress(chunk)
                    fed, chunk = True, b""
                    if frame.eof:
                        chunk = frame.unused_data
                        frame, fed = decompressor.decompressobj(), False
    except (OSError, zstandard.ZstdError):
        return False
    return fed


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


def _read_raw(path_or_buffer: str | Path | io.IOBase, source: str) -> pd.DataFrame:
    def whole_file(problem: str) -> DataError:  # a problem of the file, not of a row
        return DataError(source, [Problem(None, None, None, problem)])

    path_or_buffer = _read_once(path_or_buffer)
    name = "" if isinstance(path_or_buffer, io.IOBase) else str(path_or_buffer).lower()
    if _UNREAD_TAR_NAME.search(name):
        raise whole_file(
            "cannot read as CSV: a tar archive is read plain or compressed with gzip, bzip2 or "
            f"xz ({', '.join(TAR_ENDINGS)}); a table alone may be .csv.zst"
        )
    if _ARCHIVE_NAME.search(name) and os.path.isfile(path_or_buffer):
        path_or_buffer = _one_member(Path(path_or_buffer), whole_file)
    _check_header(path_or_buffer, source)
    _check_lines(path_or_buffer, source)
    if _cut_zst(path_or_buffer):
        raise whole_file(
            "cannot read as CSV: a truncated .zst file (its last frame ends early): its rows "
            "are not all there"
        )
    try:
        df = pd.read_csv(
            path_or_buffer,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            compression=_compression(path_or_buffer),
        )
    except pd.errors.EmptyDataError:
        raise whole_file(EMPTY_FILE) from None
    except pd.errors.ParserError as err:
        raise whole_file(_parser_problem(err)) from None
    # a truncated or corrupt compressed file or archive (EOFError, zlib's, lzma's, zipfile's
    # or tarfile's own errors), or a .zst without the zstandard package (ImportError)
    except UnicodeDecodeError as err:
        raise whole_file(not_utf8(path_or_buffer, err, unpacked=compressed_name(name))) from None
    except (
        OSError,
        EOFError,
        zlib.error,
        lzma.LZMAError,
        zipfile.BadZipFile,
        tarfile.TarError,
        ImportError,
    ) as err:
        raise whole_file(f"cannot read as CSV: {err}") from None
    except ValueError as err:  # pandas' own, for a .zip or .tar of several tables or none
        found = re.match(r"(Multiple|Zero) files found in (ZIP file|TAR archive)", str(err))
        if found is None:
            raise
        kind = found[2].split()[0]
        held = f"of several files ({str(err).partition(': ')[2]})" if found[1] == "Multiple" else ""
        raise whole_file(
            f"cannot read as CSV: a {kind} {held or 'with no file'}; it must hold exactly one table"
        ) from None
    except Exception as err:  # a .zst that the zstandard package, where installed, cannot read
        if type(err).__module__.split(".")[0] != "zstandard":
            raise
        raise whole_file(f"cannot read as CSV: {err}") from None
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
                    f"({_header_hint(df.columns) or 'a trailing comma?'}); each row needs "
                    "one field per header column",
                )
            ],
        )
    # A row with fewer fields than the header reads as one whose last fields are empty: only
    # a table whose last column has an empty field is read again, field by field.
    if len(df) and bool((df.iloc[:, -1] == "").any()):
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
    df.columns = [c.strip() for c in df.columns]
    _strip_layout_spaces(df)
    _warn_one_number_two_ways(_compose_ids(df, source), source)
    # pandas renames a repeated header name X to X.1, X.2, ...: report it instead of reading
    # the first of the two columns silently. (Not where the header is no CSV header at all: a
    # JSON table's "columns" repeat, and the header check names what the file looks like.)
    repeated = sorted(
        {m[1] for c in df.columns if (m := re.fullmatch(r"(.+)\.\d+", c)) and m[1] in df.columns}
    )
    if repeated and not _header_hint(df.columns):
        raise DataError(
            source,
            [Problem(None, c, None, "appears more than once in the header") for c in repeated],
        )
    return df


def _parser_problem(err: pd.errors.ParserError) -> str:
    """pandas' tokenizer error as a problem that says where and what is allowed: a row with
    more fields than the header (past the first row, which :func:`_read_raw` checks) reads
    ``Expected 11 fields in line 3, saw 12``."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
    if found is None:
        return f"cannot read as CSV: {err}"
    columns, line, fields = found.groups()
    return (
        f"line {line} of the file has {fields} fields, more than the header's {columns} "
        "columns (a trailing comma?); each row needs one field per header column"
    )


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control or an invisible character: a CSV cannot keep a bare
    carriage return, and "u2" followed by a zero-width or a non-breaking space looks like "u2"
    and would be another user. Refused: controls, surrogates, private and unassigned code
    points, line and paragraph separators, format characters but the (zero-width) joiners
    that some scripts and emoji need, and every space but the plain and the ideographic."""
    if text.isprintable():
        return False
    for c in text:
        kind = unicodedata.category(c)
        if kind in _REFUSED_CATEGORIES or (kind == "Cf" and c not in _JOINERS):
            return True
        if kind == "Zs" and c not in " \u3000":
            return True
    return False


#: What an id must not contain (the rule of :func:`has_control`), for its problems.
ID_CHARACTERS = (
    "must not contain control or invisible characters (line breaks, tabs, zero-width or "
    "non-breaking spaces)"
)
#: Unicode categories never allowed in an id; "Cf" and "Zs" are refused but for a few.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})
#: The zero-width non-joiner and joiner: part of Persian words and emoji sequences.
_JOINERS = "\u200c\u200d"


def check_interactions(
    df: pd.DataFrame,
    currencies: Iterable[str] | None = None,
    tones: Iterable[str] = TONES,
    allow_empty: bool = False,
) -> list[Problem]:
    """Every problem in a raw (all-string) interaction table; an empty list if it is valid.
    ``allow_empty``: a header with no rows is valid (an epoch with no games, for an update)."""
    if isinstance(currencies, str):  # one name, not its letters
        currencies = (currencies,)
    currencies = tuple(CURRENCIES if currencies is None else currencies)
    for name in currencies:
        try:
            get_currency(name)
        except RunError as err:
            raise RunError(f"currencies: {err}") from None
    tones = tuple(tones)
    problems: list[Problem] = []
    missing = [c for c in INTERACTION_COLUMNS if c not in df.columns]
    if missing:
        return [
            Problem(
                None,
                None,
                None,
                f"wrong header: missing column(s) {', '.join(missing)}; "
                f"expected: {','.join(INTERACTION_COLUMNS)}"
                + (f" ({hint})" if (hint := _header_hint(df.columns)) else ""),
            )
        ]
    if len(df) == 0:
        if allow_empty:
            return []
        return [Problem(None, None, None, "no rows: the table has a header but no interactions")]
    rows = df[list(INTERACTION_COLUMNS)]
    # Every rule is on one row; a row is checked rule by rule only where a check of the
    # columns' distinct values and of NumPy arrays finds it may break one (a million-row table:
    # a second, not ten).
    marked = np.flatnonzero(_rows_to_check(rows, currencies, tones))
    for i, rec in zip(marked, rows.iloc[marked].itertuples(index=False), strict=True):
        problems += _row_problems(int(i) + 1, rec._asdict(), currencies, tones)
    problems += _unwritable_text(df)
    return problems


def _row_problems(
    i: int, row: dict[str, str], currencies: tuple[str, ...], tones: tuple[str, ...]
) -> list[Problem]:
    """The problems of row ``i`` (counted from 1) of a raw interaction table, in the order
    :func:`check_interactions` lists them."""
    problems: list[Problem] = []
    for col in INTERACTION_COLUMNS:
        if row[col] == "" and col not in _OPTIONAL:
            problems.append(Problem(i, col, "", "a value is required"))
    for col in _ID_COLUMNS:
        if has_control(row[col]):
            problems.append(
                Problem(
                    i,
                    col,
                    row[col],
                    ID_CHARACTERS,
                )
            )
    ints: dict[str, int] = {}
    for col in _INT_COLUMNS:
        text = row[col]
        if text == "":
            continue
        value = parse_whole(text)
        if value is None:
            allowed = (
                "must be 1 (accepted) or 0 (rejected)"
                if col == "accepted"
                else "must be a whole number in ASCII decimal notation, e.g. 12 "
                "(12.0 and 1.2e1 are 12)"
            )
            problems.append(Problem(i, col, text, allowed))
            continue
        ints[col] = value
    pot = ints.get("pot")
    if pot is not None and not 1 <= pot <= MAX_POT:
        problems.append(Problem(i, "pot", row["pot"], f"must be an integer in 1..{MAX_POT}"))
        pot = None
    offer = ints.get("offer")
    if offer is not None:
        if offer < 0:
            problems.append(Problem(i, "offer", row["offer"], "must be >= 0"))
        elif pot is not None and offer > pot:
            problems.append(Problem(i, "offer", row["offer"], f"must be at most the pot ({pot})"))
        elif offer > MAX_POT:
            problems.append(Problem(i, "offer", row["offer"], f"must be at most {MAX_POT}"))
    if "accepted" in ints and ints["accepted"] not in (0, 1):
        problems.append(Problem(i, "accepted", row["accepted"], "must be 0 or 1"))
    for col in ("epoch", "round"):
        if col in ints and not 0 <= ints[col] <= MAX_INDEX:
            problems.append(Problem(i, col, row[col], f"must be >= 0 and <= {MAX_INDEX:,}"))
    if row["currency"] != "" and row["currency"] not in currencies:
        problems.append(
            Problem(i, "currency", row["currency"], f"allowed: {', '.join(currencies)}")
        )
    for col in ("proposer_tone", "responder_tone"):
        if row[col] != "" and row[col] not in tones:
            problems.append(Problem(i, col, row[col], f"allowed: {', '.join(tones)} or empty"))
    if row["proposer"] != "" and row["proposer"] == row["responder"]:
        problems.append(Problem(i, "responder", row["responder"], "must differ from the proposer"))
    for col in ("proposer", "responder"):
        if _misspelt_assistant(row[col]):
            problems.append(
                Problem(i, col, row[col], f"the assistant is written {ASSISTANT!r} exactly")
            )
    if row["proposer"] == "" and row["proposer_tone"] != "":
        problems.append(
            Problem(
                i,
                "proposer_tone",
                row["proposer_tone"],
                "must be empty when the proposer is unknown (no one to attribute it to)",
            )
        )
    return problems


def _rows_to_check(
    rows: pd.DataFrame, currencies: tuple[str, ...], tones: tuple[str, ...]
) -> np.ndarray:
    """``[rows]`` bool: the rows that may break a rule of :func:`_row_problems`, every row that
    does among them (a row not marked has no problem). A cell's own rules are decided once for
    each distinct value of its column; the rules across cells on NumPy arrays."""
    marked = np.zeros(len(rows), dtype=bool)
    ints: dict[str, np.ndarray] = {}
    for col in INTERACTION_COLUMNS:
        codes, distinct = pd.factorize(rows[col].to_numpy(dtype=object), use_na_sentinel=False)
        # whether a distinct value breaks a rule of its cell alone (as _row_problems reads it)
        bad = [
            (v == "" and col not in _OPTIONAL)
            or (col in _ID_COLUMNS and has_control(v))
            or (col in ("proposer", "responder") and _misspelt_assistant(v))
            or (col == "currency" and v != "" and v not in currencies)
            or (col in ("proposer_tone", "responder_tone") and v != "" and v not in tones)
            for v in distinct
        ]
        if col in _INT_COLUMNS:
            values = [parse_whole(v) if v != "" else None for v in distinct]
            low, high = _INT_RANGES[col]
            bad = [b or n is None or not low <= n <= high for b, n in zip(bad, values, strict=True)]
            # in range, so within int64 (a marked row's value is not read)
            ints[col] = np.array([n if not b else 0 for b, n in zip(bad, values, strict=True)])[
                codes
            ]
        marked |= np.array(bad, dtype=bool)[codes]
    proposer, responder, proposer_tone = (
        rows[c].to_numpy(dtype=object) for c in ("proposer", "responder", "proposer_tone")
    )
    marked |= ints["offer"] > ints["pot"]
    marked |= (proposer != "") & (proposer == responder)
    marked |= (proposer == "") & (proposer_tone != "")
    return marked


#: Each whole-number column's allowed range, as :func:`_row_problems` checks it.
_INT_RANGES = {
    "epoch": (0, MAX_INDEX),
    "round": (0, MAX_INDEX),
    "pot": (1, MAX_POT),
    "offer": (0, MAX_POT),
    "accepted": (0, 1),
}


#: What a message may not hold: NetCDF (the posterior's file keeps the table) cannot store it.
UNWRITABLE_TEXT = (
    "must not hold a NUL character (\\x00) or a lone surrogate (\\ud800-\\udfff): a "
    "posterior's file cannot keep them"
)
#: What :data:`UNWRITABLE_TEXT` refuses (a surrogate alone is no character UTF-8 can write).
_UNWRITABLE = "[\x00\ud800-\udfff]"


def _unwritable_text(df: pd.DataFrame) -> list[Problem]:
    """A problem at every message (:data:`TEXT_COLUMNS`) holding a NUL character or a lone
    surrogate (a DataFrame's only: a file's text is UTF-8)."""
    problems = []
    for col in TEXT_COLUMNS:
        if col in df.columns:
            held = df[col].astype(str).str.contains(_UNWRITABLE, regex=True).to_numpy()
            for i in np.flatnonzero(held):
                problems.append(Problem(int(i) + 1, col, df[col].iloc[i][:40], UNWRITABLE_TEXT))
    return problems


def _header_hint(columns: Iterable[object]) -> str:
    """Why a header does not name the columns, where it looks like a common mistake: a comment
    or Excel's ``sep=`` line above it, a transcript, another separator, JSON, names in
    capitals; else ''."""
    names = [str(c) for c in columns]
    first = names[0].strip() if names else ""
    if len(names) == 1 and first.startswith("#"):
        return f"the first line {first[:40]!r} is a comment: the header must be the first line"
    if first.lower().startswith("sep="):  # "sep=," reads as two columns
        return "the first line is Excel's 'sep=' separator line: remove it"
    if re.match(r"\[sim \S+ epoch \d+", first):  # scai simulate --transcript's first line
        return (
            "this looks like a transcript (scai simulate --transcript): give the table "
            "scai simulate wrote (--out)"
        )
    if re.match(r'[\[{]\s*[\[{"]', first):  # {"sim": ..., [{"sim": ..., [[...: not "[note]"
        return "this looks like JSON: scai reads a CSV table"
    for separator, said in (("\t", "tabs"), (";", "semicolons"), ("|", "bars")):
        if len(names) == 1 and separator in first:
            return f"the header is separated by {said}: scai reads comma-separated values"
    lower = {n.strip().lower(): n for n in names}
    missing = [c for c in INTERACTION_COLUMNS if c not in names]  # those first: the ones named
    capitals = [lower[c] for c in missing if c in lower and lower[c] != c]
    if capitals:
        return f"column names are lower case: {capitals[0]!r} is {capitals[0].lower()!r}"
    return ""


def _misspelt_assistant(name: str) -> bool:
    """``name`` spells the assistant otherwise than :data:`ASSISTANT` ('Assistant', ' assistant'):
    it would be scored as a user."""
    return name != ASSISTANT and name.strip().lower() == ASSISTANT


def interaction_columns(df: pd.DataFrame) -> list[str]:
    """The table's columns in order: every required one, then the optional text columns it has."""
    return [*INTERACTION_COLUMNS, *(c for c in TEXT_COLUMNS if c in df.columns)]


def _typed_interactions(df: pd.DataFrame) -> pd.DataFrame:
    out = df[interaction_columns(df)].copy()
    for col in _INT_COLUMNS:  # each distinct text parsed once
        codes, distinct = pd.factorize(out[col].to_numpy(dtype=object), use_na_sentinel=False)
        out[col] = np.array([parse_whole(text) for text in distinct], dtype=np.int64)[codes]
    return out


def tones_heard(table: pd.DataFrame) -> int:
    """How many tones a validated interaction table holds (both roles; empty: none heard)."""
    tones = ("proposer_tone", "responder_tone")
    return int(sum((column_texts(table[c]) != "").sum() for c in tones))


def duplicate_games(
    table: pd.DataFrame, compared: tuple[str, ...] = INTERACTION_COLUMNS
) -> list[tuple[int, int]]:
    """``(row, earlier row)`` (1-based data rows) for every row identical to an earlier one in
    the ``compared`` columns (by default every column of a game; :data:`GAME_COLUMNS`: all but
    the tones). Each must hold ``sim``, ``epoch`` and ``round``."""
    columns = [c for c in compared if c in table.columns]
    # The common answer, none, first by the games' (sim, epoch, round) alone: rows equal in
    # every column are equal in these, so all distinct there means none (a fifth of pandas'
    # duplicated's time, on every table the protocol validates, twice an epoch); then by
    # duplicated (a third of grouping's time); the groups only when some row repeats one.
    if _distinct_keys(table) or not table.duplicated(subset=columns).any():
        return []
    group = table.groupby(columns, sort=False, dropna=False).ngroup().to_numpy()
    repeated = pd.Series(group).duplicated().to_numpy()
    first = pd.Series(np.arange(len(group))).groupby(group).min()
    rows = np.flatnonzero(repeated)
    return [(int(r) + 1, int(first[group[r]]) + 1) for r in rows]


#: What makes a game but the tones heard in it: the same game sent again with its tones read
#: anew, or emptied (``--tones none``), is still that game.
GAME_COLUMNS = tuple(c for c in INTERACTION_COLUMNS if not c.endswith("_tone"))


def _distinct_keys(table: pd.DataFrame) -> bool:
    """Whether no two rows of ``table`` share their ``sim``, ``epoch`` and ``round``: True for
    fewer than two rows; False where it cannot tell cheaply (a column missing, repeated or not
    of integers, a sim id that cannot be hashed)."""
    if len(table) < 2:
        return True
    keys = ("sim", "epoch", "round")
    if not set(keys) <= set(table.columns) or table.columns.duplicated().any():
        return False
    epoch, rnd = table["epoch"].to_numpy(), table["round"].to_numpy()
    if epoch.dtype.kind not in "iu" or rnd.dtype.kind not in "iu":
        return False
    try:
        sim = pd.factorize(table["sim"].to_numpy(dtype=object))[0]  # (missing ones share -1)
    except TypeError:
        return False
    keys = np.stack([sim.astype(np.int64), epoch.astype(np.int64), rnd.astype(np.int64)])
    keys = keys[:, np.lexsort(keys)]
    return not bool((keys[:, 1:] == keys[:, :-1]).all(0).any())


def _check_duplicates(
    table: pd.DataFrame, source: str, strict: bool, index: pd.Index | None = None
) -> None:
    """Identical rows are the same game entered twice: a :class:`DuplicateGamesWarning`
    naming them, or under ``strict`` a :class:`DataError` (rows with their labels in a
    DataFrame's ``index``, as :func:`_with_index_labels` names them)."""
    pairs = duplicate_games(table)
    if not pairs:
        return
    labelled = index is not None and not _positional(index)

    def name(row: int) -> str:
        return f"row {row} (index label {_label(index[row - 1])!r})" if labelled else f"row {row}"

    if strict:
        problems = [
            Problem(row, None, None, f"the same game as {name(first)}, every column equal")
            if labelled
            else Problem(row, None, None, f"the same game as row {first} (every column equal)")
            for row, first in pairs
        ]
        raise DataError(source, _with_index_labels(problems, index) if labelled else problems)
    shown = ", ".join(f"{name(row)} = {name(first)}" for row, first in pairs[:10])
    more = f" and {len(pairs) - 10} more" if len(pairs) > 10 else ""
    warnings.warn(
        DuplicateGamesWarning(
            f"{source}: {len(pairs)} duplicated game(s), identical to an earlier row ({shown}"
            f"{more}); each is counted as a separate game. Remove them, or use strict=True "
            "(--strict) to refuse such a table"
        ),
        stacklevel=outside_scai(),  # the user's call of fit or read_interactions
    )


def read_interactions(
    path: str | Path,
    currencies: Iterable[str] | None = None,
    strict: bool = False,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Read and validate an interaction table; raise :class:`DataError` listing every problem.

    Identical rows give a :class:`DuplicateGamesWarning` (a :class:`DataError` if ``strict``).
    ``allow_empty``: a header with no rows is an empty table (an epoch with no games, for an
    update), not a problem. A leading ``~`` is the home folder, as pandas reads it.
    """
    check_flag("strict", strict)
    check_flag("allow_empty", allow_empty)
    checked = check_path(path, "path")  # (not a path, or empty: said so, not as a folder)
    source, path = os.fsdecode(os.fspath(path)), checked  # (the name as given: ~ kept)
    if not path.exists():
        why = missing(path)
        if source == "-":  # a Unix habit: scai reads files, not standard input
            why += " ('-' is not standard input here: give the table's file path)"
        raise DataError(source, [Problem(None, None, None, why)])
    if why := not_a_regular_file(path):
        raise DataError(source, [Problem(None, None, None, why)])
    df = _read_raw(path, source)
    problems = check_interactions(df, currencies, allow_empty=allow_empty)
    if problems:
        raise DataError(source, problems)
    table = _typed_interactions(df)
    _check_duplicates(table, source, strict)
    warn_unused_columns(source, df.columns, INTERACTION_COLUMNS, TEXT_COLUMNS)
    return table


def check_some_user_acts(table: pd.DataFrame, source: str) -> None:
    """A :class:`DataError` if no row holds a user's action (every proposer is the assistant
    or unknown and every responder the assistant): there is nothing to fit, and each engine
    failed its own way (an empty reshape, a division by zero, an empty minimum)."""
    user_proposes = ~table["proposer"].isin(["", ASSISTANT])
    user_responds = table["responder"] != ASSISTANT
    if len(table) and not bool((user_proposes | user_responds).any()):
        raise DataError(
            source,
            [
                Problem(
                    None,
                    "proposer, responder",
                    None,
                    f"no user acts in any of the {len(table)} row(s): every proposer is "
                    f"{ASSISTANT!r} or empty and every responder {ASSISTANT!r}; nothing to fit",
                )
            ],
        )


def warn_unused_columns(
    source: str,
    columns: Iterable[str],
    read: Iterable[str],
    optional: Iterable[str],
    stacklevel: int | None = None,
) -> None:
    """An :class:`UnusedColumnsWarning` naming the ``columns`` of ``source`` that are neither
    ``read`` nor ``optional`` (a misspelt optional column would otherwise be dropped without a
    word), and the ``optional`` columns meant."""
    optional = list(optional)
    read = {*read, *optional}
    if unused := [c for c in columns if c not in read]:
        shown = [_unused_column(c, len(columns)) for c in unused]
        warnings.warn(
            UnusedColumnsWarning(
                f"{source}: column(s) {', '.join(shown)} not read by scai "
                f"(ignored); its optional columns are {', '.join(optional)}"
            ),
            stacklevel=stacklevel or outside_scai(),
        )


def _unused_column(name: object, count: int) -> str:
    """How a column scai does not read is named in a warning: pandas names a header's empty
    field ``Unnamed: N`` (``N``: its position from 0), which says nothing to whoever wrote the
    file; where it sits says more (the first: the index pandas' ``to_csv`` writes; the last: a
    comma at each line's end)."""
    found = re.fullmatch(r"Unnamed: (\d+)", str(name))
    if found is None:
        return repr(name)
    position = int(found.group(1))
    if position == 0:
        return "an unnamed first column (a DataFrame's index, as to_csv writes it by default?)"
    if position == count - 1:
        return f"an unnamed last column {position + 1} (a trailing comma?)"
    return f"an unnamed column {position + 1} (a header field left empty?)"


def _compose_ids(raw: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    """Ids are read in Unicode's composed form (NFC): "Zoë" typed with one character or as
    "o" and a combining accent (a spreadsheet or macOS may give either) looks the same and
    is one user. In place, on a table of strings; a :class:`TableWarning` names ids changed.
    Returns each id column's distinct values as they were (for :func:`_warn_one_number_two_ways`:
    an id that is a number is composed already)."""
    changed: dict[str, str] = {}
    seen: dict[str, np.ndarray] = {}
    # "user": a users table's; "subject", "sub" and "role": the human data's (read through
    # here too: "Zoë" typed twice made two subjects, each with its own trial 1)
    for col in (*_ID_COLUMNS, "user", "subject", "sub", "role"):
        if col not in raw.columns:
            continue
        distinct = seen[col] = pd.unique(raw[col].to_numpy(dtype=object))
        mapping = {
            v: unicodedata.normalize("NFC", v)
            for v in distinct
            if not v.isascii() and not unicodedata.is_normalized("NFC", v)
        }
        if mapping:
            raw[col] = raw[col].replace(mapping)
            changed.update(mapping)
    if changed:
        shown = ", ".join(repr(v) for v in list(changed.values())[:5])
        warnings.warn(
            TableWarning(
                f"{source}: {len(changed)} id(s) written with combining characters were read "
                f"in their composed form, as the same ids typed otherwise ({shown}"
                f"{' ...' if len(changed) > 5 else ''})"
            ),
            stacklevel=outside_scai(),
        )
    return seen


#: What the ids of each id column name, for messages.
_ID_KINDS = {"sim": "groups", "proposer": "users", "responder": "users", "user": "users"}


def _warn_one_number_two_ways(distinct: dict[str, np.ndarray], source: str) -> None:
    """Ids are text: ``0`` and ``0.0`` in a CSV are two groups, as ``u1`` and ``u01`` are two
    users, but pandas reads a column of numbers alone as numbers, where both are 0
    (``fit(pd.read_csv(path))`` then sees one group where ``fit(path)`` sees two). A
    :class:`TableWarning` names the ids of such a column that are one number written two ways
    (compared exactly, as decimals: large whole numbers stay apart, as pandas' int64 keeps
    them), so that the table is not read two ways without a word (a red-team find). A column
    with any other id (``u1``, ``assistant``) pandas reads as text: nothing to tell.
    ``distinct``: each id column's distinct texts (:func:`_compose_ids`)."""
    for column, kind in _ID_KINDS.items():
        texts = [text for text in distinct.get(column, ()) if text]
        # (most columns stop at their first id: "u1" is no number)
        if not texts or not all(_DECIMAL.fullmatch(text) for text in texts):
            continue
        ways: dict[Decimal, list[str]] = {}
        for text in texts:
            ways.setdefault(Decimal(text), []).append(text)
        twins = [sorted(texts, key=len) for texts in ways.values() if len(texts) > 1]
        if twins:
            shown = "; ".join(" and ".join(map(repr, texts)) for texts in twins[:3])
            more = f" and {len(twins) - 3} more" if len(twins) > 3 else ""
            warnings.warn(
                TableWarning(
                    f"{source}: column {column!r}: ids that are one number written two ways are "
                    f"read as different {kind} ({shown}{more}); pandas reads the column as "
                    "numbers, and them as one (a table read by pd.read_csv first): write each "
                    "id one way"
                ),
                stacklevel=outside_scai(),
            )


def _as_text(value: object) -> str:
    """An in-memory cell as a CSV would hold it: a missing one empty, a whole float as the
    integer it is (pandas stores ids 1, 2 as 1.0, 2.0 in a column with a missing value: the
    user 1 of another column is the same user)."""
    if _is_nan(value):
        return ""
    # beyond 2^53 a float is no exact integer: its own text (1e+300)
    if isinstance(value, float | np.floating) and value.is_integer() and abs(value) <= 2**53:
        return str(int(value))
    return str(value)


def _column_as_text(column: pd.Series) -> pd.Series:
    """``column``'s cells as text, :func:`_as_text` of each. Where the dtype makes distinct
    values distinct texts (NumPy's numbers and bools, pandas' strings; not objects, in which
    ``1``, ``1.0`` and ``True`` are one key of a hash table but three texts) each distinct
    value is converted once, the missing ones empty: a million-row table's column in a tenth
    of a second, not seconds."""
    dtype = column.dtype
    if (isinstance(dtype, np.dtype) and dtype.kind in "biuf") or isinstance(dtype, pd.StringDtype):
        codes, distinct = pd.factorize(column, use_na_sentinel=True)
        texts = np.array([*(_as_text(v) for v in distinct), ""], dtype=object)  # -1: missing
        return pd.Series(texts[codes], index=column.index, dtype=object).astype(str)
    return column.map(_as_text).astype(str)


def _strip_layout_spaces(raw: pd.DataFrame) -> None:
    """Spaces around a value are layout, as after a comma (skipinitialspace): ``"u0 "`` and,
    quoted, ``" u0"`` are ``"u0"``, not a second user. In place, on a table of strings read
    from a file or a DataFrame; the messages as written (``TEXT_COLUMNS``) are kept."""
    for col in raw.columns:
        if col in TEXT_COLUMNS:
            continue
        # most tables have no such space: a column is replaced only where a value has one
        distinct = pd.unique(raw[col].to_numpy(dtype=object))
        if any(not isinstance(v, str) or v != v.strip(" ") for v in distinct):
            raw[col] = raw[col].str.strip(" ")


def validate_frame(
    df: pd.DataFrame, source: str = "interactions", strict: bool = False, allow_empty: bool = False
) -> pd.DataFrame:
    """Validate an in-memory table (any dtypes) the same way a CSV is validated; the optional
    text columns must hold strings (``None``, ``pd.NA`` or NaN count as empty). A column scai
    does not read is named in an :class:`UnusedColumnsWarning`, as a CSV's is.
    ``allow_empty``: columns with no rows are an empty table (an epoch with no games, for an
    update), not a problem, as :func:`read_interactions`' header alone. A problem of the whole
    table is told as the table's, not a file's (there is none)."""
    check_flag("strict", strict)
    check_flag("allow_empty", allow_empty)
    try:
        return _validate_frame(df, source, strict, allow_empty)
    except DataError as err:
        whole = [replace(p, whole="table") if p.row is None else p for p in err.problems]
        told = DataError(err.source, whole)
        told.__dict__.update({k: v for k, v in vars(err).items() if k not in vars(told)})
        raise told from None


def _validate_frame(df: pd.DataFrame, source: str, strict: bool, allow_empty: bool) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise DataError(
            source,
            [Problem(None, None, None, f"expected a pandas DataFrame, got {type(df).__name__}")],
        )
    if isinstance(df.columns, pd.MultiIndex):  # df[name] would be a table, not a column
        raise DataError(
            source,
            [Problem(None, None, None, "the columns have several header levels; one is allowed")],
        )
    if any(isinstance(c, str) and c != c.strip() for c in df.columns):  # as a CSV's header
        df = df.rename(columns=lambda c: c.strip() if isinstance(c, str) else c)
    # as text, as a file's header holds them (1 and "1" are one name: the row-by-row check
    # reads the names so)
    names = collections.Counter(str(c) for c in df.columns)
    duplicated = sorted(name for name, count in names.items() if count > 1)
    if duplicated:
        raise DataError(
            source,
            [Problem(None, c, None, "the column appears more than once") for c in duplicated],
        )
    warn_unused_columns(source, df.columns, INTERACTION_COLUMNS, TEXT_COLUMNS)
    if allow_empty and len(df) == 0:  # the header's checks alone
        if problems := check_interactions(df, allow_empty=True):
            raise DataError(source, problems)
        raw = df.astype(str)
        raw.columns = [str(c) for c in raw.columns]
        return _typed_interactions(raw)
    if "accepted" in df.columns and _booleans(df["accepted"]):
        # a DataFrame's own way to hold a decision: True/False as 1/0 (a missing one stays so)
        df = df.assign(accepted=df["accepted"].map(_AS_INT, na_action="ignore").astype("Int64"))
    table = _typed_if_valid(df)
    if table is None:
        table = _typed_row_by_row(df, source)
    # rows numbered as a file's (the caller's labels name rows in messages, not the table)
    table = table.reset_index(drop=True)
    _check_duplicates(table, source, strict, df.index)
    return table


_AS_INT = {True: 1, False: 0}


def _booleans(column: pd.Series) -> bool:
    """Whether ``column`` holds decisions as ``True``/``False``: a bool or nullable boolean
    dtype, or objects that are all bools or missing (a ``map`` with an unmapped value)."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return True
    if column.dtype != object:
        return False
    values = column.dropna()
    return len(values) > 0 and all(isinstance(v, bool | np.bool_) for v in values)


def _typed_row_by_row(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """The typed table, every cell read as text the way a CSV's is; a :class:`DataError`
    listing every problem."""
    text_problems = (
        [
            Problem(i, col, value, "must be text (a string) or empty")
            for col in TEXT_COLUMNS
            if col in df.columns
            for i, value in enumerate(df[col].tolist(), start=1)
            if not (isinstance(value, str) or _is_nan(value))
        ]
        + [  # str(b"u0") is "b'u0'": a user no file would name (columns scai does not read:
            # ignored, as a file's)
            Problem(i, str(col), value, "bytes; decode them to text first")
            for col in INTERACTION_COLUMNS
            if col in df.columns and df[col].dtype == object
            for i, value in enumerate(df[col].tolist(), start=1)
            if isinstance(value, bytes | bytearray)
        ]
        + [  # str(["u0"]) is "['u0']": an id or a name no file would hold (numbers: not whole)
            Problem(i, col, value, f"a {type(value).__name__}; one value (text) per cell")
            for col in INTERACTION_COLUMNS
            if col not in _INT_COLUMNS and col in df.columns and df[col].dtype == object
            for i, value in enumerate(df[col].tolist(), start=1)
            if isinstance(value, list | tuple | dict | set | frozenset | np.ndarray)
        ]
    )
    raw = df.copy()
    raw.columns = [str(c) for c in raw.columns]
    for col in raw.columns:
        # as strings whatever the dtype (an empty or categorical column keeps its own)
        raw[col] = _column_as_text(raw[col])
    _strip_layout_spaces(raw)  # as a CSV's: the same table gives the same users either way
    _warn_one_number_two_ways(_compose_ids(raw, source), source)
    # a cell named above (bytes, a list) is not named again for what its text breaks
    named = {(p.row, p.column) for p in text_problems}
    problems = text_problems + [
        p for p in check_interactions(raw) if (p.row, p.column) not in named
    ]
    if problems:
        raise DataError(source, _with_index_labels(problems, df.index))
    return _typed_interactions(raw)


def _with_index_labels(problems: list[Problem], index: pd.Index) -> list[Problem]:
    """``problems`` (rows counted from 1 in table order, as a CSV's) each naming its row's
    index label too, where the DataFrame's index is not its positions (a filtered or indexed
    table's "row 3" is easily read as the label 3)."""
    if _positional(index):
        return problems
    labelled = []
    for p in problems:
        if p.row is not None:
            p = replace(p, allowed=f"{p.allowed} (index label {_label(index[p.row - 1])!r})")
        labelled.append(p)
    return labelled


def _positional(index: pd.Index) -> bool:
    """Whether a DataFrame's ``index`` is its rows' positions (0, 1, ...): no label to name."""
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _label(label: Any) -> Any:
    """An index label as its user wrote it: ``27``, not ``np.int64(27)`` (in a MultiIndex's
    tuple too)."""
    if isinstance(label, tuple):
        return tuple(_label(part) for part in label)
    return label.item() if isinstance(label, np.generic) else label


def _typed_if_valid(df: pd.DataFrame) -> pd.DataFrame | None:
    """The typed table of an in-memory table that is already typed (the integer columns of an
    integer dtype, every other column strings) and passes every rule of
    :func:`check_interactions`, checked column by column; else ``None``, and the row-by-row
    check names the problems. The same table :func:`validate_frame`'s row-by-row path makes,
    without turning every cell into text and back (the protocol validates each epoch's table)."""
    columns = interaction_columns(df)
    if len(df) == 0 or any(c not in df.columns for c in INTERACTION_COLUMNS):
        return None
    ints = {c: df[c] for c in _INT_COLUMNS}
    if not all(
        isinstance(v.dtype, np.dtype) and v.dtype.kind in "iu" for v in ints.values()
    ):  # plain NumPy integers: no missing values, no booleans
        return None
    texts = {c: df[c] for c in columns if c not in _INT_COLUMNS}
    if not all(v.dtype == object or isinstance(v.dtype, pd.StringDtype) for v in texts.values()):
        return None
    # The rules on single cells are checked on each column's distinct values (a few names,
    # currencies and tones however long the table), in NumPy; first, that all are strings
    # (no missing value: NaN, None and pd.NA are not strings).
    try:
        distinct = {c: pd.unique(v.to_numpy(dtype=object)) for c, v in texts.items()}
    except TypeError:  # an unhashable cell (a list, a bytearray): the row-by-row path names it
        return None
    if not all(isinstance(v, str) for values in distinct.values() for v in values) or any(
        c in texts and texts[c].str.contains(_UNWRITABLE).any() for c in TEXT_COLUMNS
    ):
        return None
    required = [c for c in texts if c in INTERACTION_COLUMNS and c not in _OPTIONAL]
    pot, offer = (ints[c].to_numpy() for c in ("pot", "offer"))
    accepted = ints["accepted"].to_numpy()
    proposer, responder = (texts[c].to_numpy(dtype=object) for c in ("proposer", "responder"))
    valid = (
        not any(  # spaces around a value: the row-by-row path strips them, as from a CSV
            v != v.strip(" ") for c in distinct if c not in TEXT_COLUMNS for v in distinct[c]
        )
        and all("" not in set(distinct[c]) for c in required)
        and not any(has_control(v) for c in _ID_COLUMNS for v in distinct[c])
        and all(
            v.isascii() or unicodedata.is_normalized("NFC", v)
            for c in _ID_COLUMNS
            for v in distinct[c]
        )
        and bool(((pot >= 1) & (pot <= MAX_POT)).all())
        and bool(((offer >= 0) & (offer <= pot)).all())
        and bool(((accepted == 0) | (accepted == 1)).all())
        and all(
            bool(((v >= 0) & (v <= MAX_INDEX)).all())
            for v in (ints[c].to_numpy() for c in ("epoch", "round"))
        )
        and set(distinct["currency"]) <= set(CURRENCIES)
        and all(set(distinct[c]) <= {"", *TONES} for c in ("proposer_tone", "responder_tone"))
        and not bool(((proposer != "") & (proposer == responder)).any())
        and not any(_misspelt_assistant(v) for c in ("proposer", "responder") for v in distinct[c])
        and not bool(
            ((proposer == "") & (texts["proposer_tone"].to_numpy(dtype=object) != "")).any()
        )
    )
    if not valid:
        return None
    # A deep copy: pandas 3 selects the columns without copying them, and copy-on-write does
    # not cover writes into a column's array (``df["offer"].array[0] = 9``), which would
    # reach the fitted table (and a posterior's ``table``) through shared buffers.
    out = df[columns].copy()
    out.columns = [str(c) for c in out.columns]
    for col in _INT_COLUMNS:
        if ints[col].dtype != np.int64:  # replacing a column costs more than the conversion
            out[col] = out[col].astype(np.int64)
    text = pd.api.types.pandas_dtype(str)  # a file's text columns' dtype, plain str values
    for col in texts:
        if any(type(v) is not str for v in distinct[col]):  # np.str_ (astype keeps it)
            values = [str(v) for v in out[col].tolist()]
            out[col] = pd.Series(values, index=out.index, dtype=text)
        elif out[col].dtype != text:  # (object, string[python])
            out[col] = out[col].astype(text)
    return out


# -- how much memory a table's model tensors take ---------------------------------------------
#: Bytes per cell of :class:`scai.models.layout.GroupData`'s padded ``[sims, users, events]``
#: layout at its peak while it is built: eight 8-byte arrays (pot and currency index, offer,
#: accepted as float64, tone, partner, partner event, row), three bool ones (event, proposer
#: and tone masks), the float32 copy of ``accepted`` and the bool ``is_responder``:
#: 8 * 8 + 3 + 4 + 1 (64 are held once the float64 ``accepted`` is freed).
LAYOUT_BYTES_PER_CELL = 72
#: Bytes per table row of the per-event arrays ``from_table`` sorts (two events a row).
LAYOUT_BYTES_PER_ROW = 200
#: The default limit is this share of the memory available: the engines' working arrays
#: (likelihood tables per user and type, gradients) take several times the layout.
MEMORY_SHARE = 0.25


def layout_shape(table: pd.DataFrame) -> tuple[int, int, int]:
    """``(sims, users, events)`` of the padded layout :meth:`GroupData.from_table` builds
    from a validated table: simulations, the most users in one, the most events of one user
    (a game is an event for its responder and for its known proposer). From counts only."""
    if len(table) == 0:
        return 0, 0, 1
    sim = table["sim"].astype(str).to_numpy(dtype=object)
    names = [table[c].astype(str).to_numpy(dtype=object) for c in ("proposer", "responder")]
    keep = np.concatenate([(name != "") & (name != ASSISTANT) for name in names])
    sims, _ = _codes(np.concatenate([sim, sim])[keep])
    users, n_names = _codes(np.concatenate(names)[keep])
    if len(sims) == 0:
        return len(pd.unique(sim)), 0, 1
    # events per (simulation, user), then users per simulation: counts of integer keys
    pairs, per_user = np.unique(sims * n_names + users, return_counts=True)
    _, per_sim = np.unique(pairs // n_names, return_counts=True)
    return len(pd.unique(sim)), int(per_sim.max()), int(per_user.max())


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of ``values`` (equal values, equal codes) and how many distinct values."""
    codes, distinct = pd.factorize(values)
    return codes.astype(np.int64), len(distinct)


def layout_bytes(shape: tuple[int, int, int], rows: int) -> int:
    """Bytes of the padded layout of ``shape = (sims, users, events)`` over ``rows`` games."""
    sims, users, events = shape
    return sims * users * events * LAYOUT_BYTES_PER_CELL + rows * LAYOUT_BYTES_PER_ROW


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


def check_table_memory(
    table: pd.DataFrame, source: str = "interactions", max_bytes: int | None = None
) -> int:
    """The bytes the model's tensors of ``table`` need (:func:`layout_bytes`); a
    :class:`DataError` saying how much and what to do when that is above the limit
    (:func:`memory_limit`). Call it before :meth:`GroupData.from_table`."""
    shape = layout_shape(table)
    need = layout_bytes(shape, len(table))
    sims, users, events = shape

    def error(text: str) -> DataError:
        return DataError(
            source,
            [
                Problem(
                    None,
                    None,
                    None,
                    f"too large for memory: the model's padded layout [{sims:,} sims x "
                    f"{users:,} users x {events:,} events of the busiest user] {text}. "
                    "Every user is padded to the busiest user's events: split the table (fit "
                    "the simulations in parts, or split the busiest users' games), use "
                    "the SVI engine with minibatches (engine='svi', subsample_size=; --engine svi "
                    "--subsample: they lower the engine's working memory, not the layout), or "
                    "raise the limit (max_memory=, --max-memory)",
                    whole="table",  # (read from a file or not: the table's layout)
                )
            ],
        )

    check_memory(need, error, max_bytes)
    return need


def _is_nan(value: object) -> bool:
    """Whether an in-memory cell is missing: ``None``, pandas' ``NA`` or ``NaT``, NumPy's
    ``NaT`` (``np.datetime64("NaT")``, which is not pandas'), or a float NaN of any width (an
    empty cell, as in a CSV)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def check_users(df: pd.DataFrame, policies: Iterable[str]) -> list[Problem]:
    """Every problem in a raw users table (``sim, user, policy, manner``)."""
    policies = tuple(policies)
    missing = [c for c in USER_COLUMNS if c not in df.columns]
    if missing:
        return [
            Problem(
                None,
                None,
                None,
                f"wrong header: missing column(s) {', '.join(missing)}; "
                f"expected: {','.join(USER_COLUMNS)}",
            )
        ]
    problems = []
    first_row: dict[tuple[str, str], int] = {}
    for i, rec in enumerate(df[list(USER_COLUMNS)].itertuples(index=False), start=1):
        for col in ("sim", "user"):
            if getattr(rec, col) == "":
                problems.append(Problem(i, col, "", "a value is required"))
        seen = first_row.setdefault((rec.sim, rec.user), i)
        if seen != i:  # which row's policy and manner would be the user's is not said
            problems.append(
                Problem(
                    i,
                    "user",
                    rec.user,
                    f"listed again for sim {rec.sim!r} (row {seen}); each user once per simulation",
                )
            )
        if rec.policy not in policies:
            problems.append(Problem(i, "policy", rec.policy, f"allowed: {', '.join(policies)}"))
        if rec.manner not in MANNERS:
            problems.append(Problem(i, "manner", rec.manner, f"allowed: {', '.join(MANNERS)}"))
    return problems


def read_users(path: str | Path, policies: Iterable[str]) -> pd.DataFrame:
    source = str(path)
    df = _read_raw(path, source)
    problems = check_users(df, policies)
    if problems:
        raise DataError(source, problems)
    return df[list(USER_COLUMNS)]


def companion_path(table: str | Path, kind: str, suffix: str = ".csv") -> Path:
    """A file written beside a table: ``X.csv`` -> ``X.KIND.csv`` (``suffix``); a table of any
    other name keeps it whole, ``X.tsv`` -> ``X.tsv.KIND.csv``, so that ``X.csv`` and
    ``X.tsv`` beside each other do not share one (a second ``scai simulate --out X.tsv``
    replaced ``X.csv``'s users)."""
    path = Path(table)
    base = path.stem if path.suffix.lower() == ".csv" else path.name
    return path.with_name(f"{base}.{kind}{suffix}")


#: The files :func:`companion_path` names beside a table, by kind: their suffixes (the users
#: of a simulation; an import's runs, GPT-4 rows, report and failed-import report).
COMPANIONS = {
    "users": ".csv",
    "runs": ".csv",
    "gpt4": ".csv",
    "report": ".md",
    "failed-import": ".md",
}


def table_of_companion(path: str | Path) -> tuple[Path, str] | None:
    """``(table, kind)`` where ``path`` is the :func:`companion_path` of a ``table`` that
    exists (``X.users.csv`` beside ``X.csv`` or ``X.CSV``, ``X.tsv.users.csv`` beside
    ``X.tsv``); else ``None``."""
    path = Path(path)
    for kind, suffix in COMPANIONS.items():
        end = f".{kind}{suffix}"
        if not path.name.lower().endswith(end) or len(path.name) == len(end):
            continue
        base = path.name[: -len(end)]
        tables = [path.with_name(base)]
        with contextlib.suppress(OSError):  # a table's suffix in any case: a.CSV's users
            tables += [e for e in path.parent.iterdir() if e.name.lower() == f"{base}.csv".lower()]
        for table in tables:
            if table.is_file() and companion_path(table, kind, suffix).name == path.name:
                return table, kind
    return None


def users_path(interactions_path: str | Path) -> Path:
    """``X.csv`` -> ``X.users.csv`` (:func:`companion_path`)."""
    return companion_path(interactions_path, "users")


def parameters_path(interactions_path: str | Path) -> Path:
    """``X.csv`` -> ``X.parameters.csv`` (:func:`companion_path`): a simulation's group-level
    values (:attr:`~scai.models.simulate.Simulation.parameters`)."""
    return companion_path(interactions_path, "parameters")


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


def write_interactions(df: pd.DataFrame, path: str | Path) -> None:
    """Write an interaction table atomically, its optional text columns quoted."""
    columns = interaction_columns(df)
    write_csv_atomic(df[columns], path, quote_text=len(columns) > len(INTERACTION_COLUMNS))
