"""Every bad input gets its own clear error, through the readers (``DataError.problems`` naming
row, column and value) and through ``scai validate`` (exit 1, the message on stderr)."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from scai.experiments.cli import main
from scai.models.data import (
    GAME_COLUMNS,
    INTERACTION_COLUMNS,
    TEXT_COLUMNS,
    TONE_COLUMNS,
    DataError,
    read_interactions,
    validate_frame,
    write_interactions,
)
from scai.models.errors import DuplicateGamesWarning, TableWarning
from scai.models.game import CURRENCIES
from scai.models.hypotheses import Hypothesis, HypothesisError
from scai.models.language import TONES
from scai.models.users_table import read_users

HEADER = ",".join(INTERACTION_COLUMNS)
# row 3 has an unknown proposer (human, responder-only data) and row 2 an unheard reply
VALID_ROWS = [
    "0,1,1,u0,u1,apples,40,20,1,polite,neutral",
    "0,1,2,u1,u0,apples,40,5,0,rude,",
    "0,1,3,,u2,apples,40,10,1,,rude",
    "1,1,1,u0,u1,medicine,15,7,1,neutral,sycophantic",
]


def write(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def with_value(row: int, column: str, value: str) -> list[str]:
    """``VALID_ROWS`` with one cell (1-based data row) replaced."""
    rows = [r.split(",") for r in VALID_ROWS]
    rows[row - 1][INTERACTION_COLUMNS.index(column)] = value
    return [",".join(r) for r in rows]


def validate(path: Path, capsys) -> tuple[int, str, str]:
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_valid_file(tmp_path, capsys):
    path = write(tmp_path, VALID_ROWS)
    table = read_interactions(path)
    assert len(table) == 4
    assert table["pot"].dtype.kind == "i" and table["accepted"].tolist() == [1, 0, 1, 1]
    assert table.loc[2, "proposer"] == "" and table.loc[1, "responder_tone"] == ""
    code, out, err = validate(path, capsys)
    assert code == 0
    assert "valid" in out and "4 interactions, 2 simulations" in out
    assert err == ""


# (case, row, column, bad value, what the message says is allowed)
BAD_CELLS = [
    ("offer above the pot", 1, "offer", "41", "must be at most the pot (40)"),
    ("negative offer", 1, "offer", "-1", "must be >= 0"),
    ("negative pot", 2, "pot", "-5", "must be an integer in 1..1000"),
    ("zero pot", 2, "pot", "0", "must be an integer in 1..1000"),
    ("pot above the maximum", 2, "pot", "1001", "must be an integer in 1..1000"),
    (
        "non-integer pot",
        4,
        "pot",
        "12.5",
        "must be a whole number in ASCII decimal notation, e.g. 12 (12.0 and 1.2e1 are 12)",
    ),
    ("non-numeric pot", 4, "pot", "ten", "must be a whole number"),
    ("unknown currency", 3, "currency", "gold", "allowed: " + ", ".join(CURRENCIES)),
    ("unknown proposer tone", 1, "proposer_tone", "angry", "allowed: " + ", ".join(TONES)),
    ("unknown responder tone", 4, "responder_tone", "Rude", "or empty"),
    ("accepted not 0/1", 2, "accepted", "2", "must be 0 or 1"),
    ("accepted as a word", 2, "accepted", "yes", "must be 1 (accepted) or 0 (rejected)"),
    ("missing responder", 1, "responder", "", "a value is required"),
    ("missing pot", 3, "pot", "", "a value is required"),
    ("missing sim", 4, "sim", "", "a value is required"),
    ("missing offer", 2, "offer", "", "a value is required"),
    ("missing accepted", 2, "accepted", "", "a value is required"),
    ("missing currency", 1, "currency", "", "a value is required"),
    ("negative epoch", 1, "epoch", "-1", "must be >= 0"),
    ("playing oneself", 1, "responder", "u0", "must differ from the proposer"),
    ("assistant capitalised", 1, "responder", "Assistant", "is written 'assistant' exactly"),
    ("assistant in capitals", 2, "proposer", "ASSISTANT", "is written 'assistant' exactly"),
    ("tone of no proposer", 3, "proposer_tone", "rude", "empty when the proposer is unknown"),
]


@pytest.mark.parametrize(
    "row, column, value, allowed", [c[1:] for c in BAD_CELLS], ids=[c[0] for c in BAD_CELLS]
)
def test_bad_cell(tmp_path, capsys, row, column, value, allowed):
    path = write(tmp_path, with_value(row, column, value))
    with pytest.raises(DataError) as info:
        read_interactions(path)
    problems = info.value.problems
    assert len(problems) == 1
    (problem,) = problems
    assert (problem.row, problem.column, problem.value) == (row, column, value)
    assert allowed in problem.allowed
    assert str(path) in str(info.value)

    code, out, err = validate(path, capsys)
    assert code == 1
    assert out == ""
    assert f"row {row}, column {column!r}" in err
    assert allowed in err
    assert "1 problem(s) found" in err


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty file; expected a header line and rows"),
        (HEADER + "\n", "no rows: the table has a header but no interactions"),
        (
            HEADER.replace("offer", "offered") + "\n" + VALID_ROWS[0] + "\n",
            "wrong header: missing column(s) offer; expected: "
            + ",".join(GAME_COLUMNS)
            + "[,proposer_tone,responder_tone]",
        ),
        (
            "a;b;c\n1;2;3\n",
            "wrong header: missing column(s) " + ", ".join(GAME_COLUMNS) + "; expected: ",
        ),
        (
            HEADER + "\n" + "\n".join([VALID_ROWS[0], VALID_ROWS[1] + ",extra"]) + "\n",
            "line 3 of the file has 12 fields, more than the header's 11 columns",
        ),
    ],
    ids=["empty file", "header only", "misspelt column", "not our table", "ragged row"],
)
def test_bad_file(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.row is None and problem.column is None
    assert problem.allowed.startswith(message)
    code, out, err = validate(path, capsys)
    assert (code, out) == (1, "")
    assert message in err and str(path) in err


@pytest.mark.parametrize("extra", [",", ",extra"], ids=["trailing comma", "extra field"])
def test_first_row_with_an_extra_field_is_not_shifted(tmp_path, capsys, extra):
    """pandas would make the first column an index and shift every value one column left,
    reporting misleading problems (a user id as a bad ``round``)."""
    path = write(tmp_path, [row + extra for row in VALID_ROWS])
    with pytest.raises(DataError) as info:
        read_interactions(path)
    (problem,) = info.value.problems
    assert problem.row == 1
    assert problem.allowed.startswith("more fields than the header's 11 columns")
    code, _, err = validate(path, capsys)
    assert code == 1 and "more fields than the header" in err
    # the users table reader shares the same guard
    users = write(tmp_path, ["0,u0,selfish,rude,"], header="sim,user,policy,manner", name="u.csv")
    with pytest.raises(DataError, match="more fields than the header's 4 columns"):
        read_users(users, POLICIES)


def test_a_later_row_with_an_extra_field_is_named_with_its_line(tmp_path, capsys):
    """A trailing comma past the first row gave pandas' tokenizer message (``Error tokenizing
    data. C error: Expected 11 fields in line 3, saw 12``), which says neither what is wrong
    nor what is allowed (a red-team find)."""
    path = write(tmp_path, [VALID_ROWS[0], VALID_ROWS[1] + ",", *VALID_ROWS[2:]])
    with pytest.raises(DataError) as info:
        read_interactions(path)
    (problem,) = info.value.problems
    assert problem.allowed == (
        "line 3 of the file has 12 fields, more than the header's 11 columns (a trailing "
        "comma?); each row needs one field per header column"
    )


def test_a_field_beyond_the_csv_readers_limit_leaves_the_row_checks_on(tmp_path):
    """Python's CSV reader stops at a field of 131,072 characters; the short-row pass and the
    row count then gave up, so a table with one long text field passed with its last row cut
    (and beyond the most rows allowed: a red-team find). Now neither stops at any length."""
    from scai.models import table_file

    text_header = ",".join([*INTERACTION_COLUMNS, *TEXT_COLUMNS])
    long_row = f"{VALID_ROWS[0]},{'a' * 140_000},"
    rows = [long_row, f"{VALID_ROWS[1]},,", VALID_ROWS[3].rsplit(",", 2)[0]]
    path = tmp_path / "long.csv"
    path.write_text("\n".join([text_header, *rows]) + "\n")
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert [(p.row, p.allowed.split(",")[0]) for p in info.value.problems] == [(3, "9 fields")]
    assert table_file._rows_beyond(path, 2) and not table_file._rows_beyond(path, 3)
    import csv

    assert csv.field_size_limit() == 131_072  # the process's own limit, as it was


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_rows_with_fewer_fields_than_the_header_are_named(tmp_path, capsys, name):
    """pandas fills a row's missing last fields with empty text: a cut file (its last row
    without its tones) or a row missing a field read as valid, the tones unheard (a red-team
    find). Such rows are named with their fields; empty fields between commas, blank lines
    and lines of spaces are as before."""
    import gzip

    rows = [VALID_ROWS[0], "", "   ", VALID_ROWS[1], "0,1,4,u2,u0,apples", VALID_ROWS[3][:-12]]
    text = "\n".join([HEADER, *rows]) + "\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert [(p.row, p.allowed.split(",")[0]) for p in info.value.problems] == [
        (3, "6 fields"),
        (4, "10 fields"),
    ]
    assert "fewer than the header's 11 columns" in info.value.problems[0].allowed
    code, _, err = validate(path, capsys)
    assert code == 1 and "row 3: 6 fields, fewer than the header's 11 columns" in err
    whole = write(tmp_path, ["", "   ", *VALID_ROWS], name="whole.csv")  # "" fields: allowed
    assert len(read_interactions(whole)) == len(VALID_ROWS)
    # read as pandas reads: a space before a quoted field (one holding a line end), a header's
    # trailing comma (no column), a line of empty fields counted as a row (named after it)
    texts = write(
        tmp_path,
        [VALID_ROWS[0] + ', "hi\nthere"', VALID_ROWS[1] + ","],
        header=HEADER + ",responder_text",
        name="texts.csv",
    )
    assert read_interactions(texts)["responder_text"].tolist() == ["hi\nthere", ""]
    trailing = write(tmp_path, VALID_ROWS, header=HEADER + ",", name="trailing.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the header's unnamed column: not scai's)
        assert len(read_interactions(trailing)) == len(VALID_ROWS)
    empty_then_short = write(tmp_path, [VALID_ROWS[0], ",,,,,,,,,,", "0,1,3"], name="e.csv")
    with pytest.raises(DataError) as info:
        read_interactions(empty_then_short)
    assert [(p.row, p.allowed.split(",")[0]) for p in info.value.problems] == [(3, "3 fields")]


@pytest.mark.parametrize("name", ["t.csv.gz", "t.csv.bz2", "t.csv.xz", "t.csv.zip", "t.csv.tar"])
def test_a_broken_compressed_file_is_a_data_error(tmp_path, capsys, name):
    """A truncated .gz or .bz2 file (``EOFError``) and a .xz file that is not one
    (``LZMAError``) were internal errors, 'a bug in scai' (a red-team find)."""
    import bz2
    import gzip

    text = ("\n".join([HEADER, *VALID_ROWS * 20]) + "\n").encode()
    packed = {".gz": gzip.compress, ".bz2": bz2.compress}
    path = tmp_path / name
    # truncated .gz and .bz2 files; the others are plain text under a compressed name
    path.write_bytes(packed[path.suffix](text)[:80] if path.suffix in packed else text)
    with pytest.raises(DataError, match="cannot read as CSV"):
        read_interactions(path)
    code, _, err = validate(path, capsys)
    assert code == 1 and "cannot read as CSV" in err and "internal error" not in err


def test_a_zst_that_zstandard_cannot_read_is_a_data_error(tmp_path, monkeypatch):
    """Where the zstandard package is installed (pandas reads .zst with it), a .zst that is not
    one raised its ZstdError, 'a bug in scai'. Its errors are data errors now; here with a
    stand-in for the package's error (the package is not one of scai's dependencies)."""
    import scai.models.data as data

    class ZstdError(Exception):
        __module__ = "zstandard.backend_c"

    def unreadable(*args, **kwargs):
        raise ZstdError("zstd decompress error: Unknown frame descriptor")

    path = tmp_path / "t.csv.zst"
    path.write_text("\n".join([HEADER, *VALID_ROWS]) + "\n")
    monkeypatch.setattr(data.pd, "read_csv", unreadable)
    with pytest.raises(DataError, match="cannot read as CSV: zstd decompress error: Unknown"):
        read_interactions(path)

    def other(*args, **kwargs):  # an error of no compression library: still scai's bug
        raise ArithmeticError("not a data problem")

    monkeypatch.setattr(data.pd, "read_csv", other)
    with pytest.raises(ArithmeticError):
        read_interactions(path)


def test_broken_zst_files_are_data_errors_with_zstandard_installed(tmp_path, capsys):
    """With the zstandard package: a .zst that is not one, and truncated ones, which it reads
    without an error as the rows before the cut (cut early: none, "empty file"; cut late: a
    shorter table, read as if whole). A whole file of two frames reads as the two."""
    zstandard = pytest.importorskip("zstandard")
    text = ("\n".join([HEADER, *VALID_ROWS * 2000]) + "\n").encode()
    packed = zstandard.ZstdCompressor().compress(text)
    files = {
        "plain.csv.zst": (text, "cannot read as CSV: zstd decompress error"),
        "early.csv.zst": (packed[: len(packed) // 10], "truncated .zst"),
        "late.csv.zst": (packed[: len(packed) * 9 // 10], "truncated .zst"),
    }
    for name, (data, said) in files.items():
        (tmp_path / name).write_bytes(data)
        code, _, err = validate(tmp_path / name, capsys)
        assert code == 1 and said in err and "internal error" not in err, err
    compress = zstandard.ZstdCompressor().compress
    frames = compress(f"{HEADER}\n".encode()), compress(("\n".join(VALID_ROWS) + "\n").encode())
    (tmp_path / "two.csv.zst").write_bytes(b"".join(frames))
    assert len(read_interactions(tmp_path / "two.csv.zst")) == len(VALID_ROWS)


def test_archives_of_several_tables_or_none_are_data_errors(tmp_path, capsys):
    """A .zip or .tar holding two tables, or none, was pandas' bare ValueError: the command's
    'error' (exit 2), naming no file. It is a problem of the file (exit 1), and a .zip of one
    table still reads."""
    import tarfile
    import zipfile

    text = "\n".join([HEADER, *VALID_ROWS]) + "\n"
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.csv", text)
        archive.writestr("b.csv", text)
    zipfile.ZipFile(tmp_path / "none.zip", "w").close()
    tarfile.open(tmp_path / "none.tar.gz", "w:gz").close()
    cases = {
        "two.zip": "a ZIP of several files (['a.csv', 'b.csv']); it must hold exactly one table",
        "none.zip": "a ZIP with no file; it must hold exactly one table",
        "none.tar.gz": "a TAR with no file; it must hold exactly one table",
    }
    for name, said in cases.items():
        code, _, err = validate(tmp_path / name, capsys)
        assert code == 1 and name in err and said in err, err
    with zipfile.ZipFile(tmp_path / "one.zip", "w") as archive:
        archive.writestr("a.csv", text)
    assert len(read_interactions(tmp_path / "one.zip")) == len(VALID_ROWS)


def test_zip_archives_as_people_make_them(tmp_path, capsys):
    """``zip -r data.zip data`` writes a ``data/`` entry beside the table: a folder, not a second
    file (it was "a ZIP of several files"), and so is a macOS zip's ``__MACOSX/``. An
    encrypted ZIP, or one compressed by a method Python cannot read, is a problem of the file
    (they were internal errors), and so is a tar archive compressed otherwise than by gzip,
    bzip2 or xz (a .tar.zst read as a zstd table said its header lacked columns); .tbz2 and
    .txz are read as the tar archives they are."""
    import io
    import tarfile
    import zipfile

    text = "\n".join([HEADER, *VALID_ROWS]) + "\n"
    with zipfile.ZipFile(tmp_path / "folder.zip", "w") as archive:
        archive.writestr("data/", "")
        archive.writestr("data/t.csv", text)
    assert len(read_interactions(tmp_path / "folder.zip")) == len(VALID_ROWS)
    # macOS Finder's "Compress" adds each file's metadata as __MACOSX/._NAME (AppleDouble):
    # it was "a ZIP of several files" (a red-team find)
    with zipfile.ZipFile(tmp_path / "finder.zip", "w") as archive:
        archive.writestr("t.csv", text)
        archive.writestr("__MACOSX/", "")
        archive.writestr("__MACOSX/._t.csv", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    assert len(read_interactions(tmp_path / "finder.zip")) == len(VALID_ROWS)

    def patched(name: str, flag: int = 0, method: int | None = None) -> None:
        """A one-table ZIP whose headers say encrypted (flag bit 0) or another method."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("t.csv", text)
        raw = bytearray(buffer.getvalue())
        for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = raw.index(signature)
            raw[at + flags_at] |= flag
            if method is not None:
                raw[at + flags_at + 2 : at + flags_at + 4] = method.to_bytes(2, "little")
        (tmp_path / name).write_bytes(bytes(raw))

    patched("locked.zip", flag=1)
    patched("deflate64.zip", method=9)
    for name in ("locked.zip", "deflate64.zip"):
        code, _, err = validate(tmp_path / name, capsys)
        assert code == 1 and name in err and "not a readable ZIP archive" in err, err
        assert "internal error" not in err

    for name, mode in (("t.tbz2", "w:bz2"), ("t.txz", "w:xz")):
        with tarfile.open(tmp_path / name, mode) as archive:
            info = tarfile.TarInfo("t.csv")
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
        assert len(read_interactions(tmp_path / name)) == len(VALID_ROWS)
    (tmp_path / "t.tar.zst").write_bytes(b"\x28\xb5\x2f\xfd anything")
    code, _, err = validate(tmp_path / "t.tar.zst", capsys)
    assert code == 1 and "a tar archive is read plain or compressed with gzip" in err, err


def test_a_tgz_is_read_as_the_tar_gz_it_is(tmp_path, capsys):
    """pandas infers no compression from ``.tgz`` (it read the gzip bytes as text: "cannot
    read as CSV: 'utf-8' codec can't decode byte 0x8b"), while ``scai import scai-logs``
    takes ``.tgz`` archives: a table's ``.tgz`` is read as a ``.tar.gz``, its rules kept."""
    import io
    import tarfile

    text = ("\n".join([HEADER, *VALID_ROWS]) + "\n").encode()

    def tgz(path, members):
        with tarfile.open(path, "w:gz") as archive:
            for name in members:
                info = tarfile.TarInfo(name)
                info.size = len(text)
                archive.addfile(info, io.BytesIO(text))

    tgz(tmp_path / "one.tgz", ["a.csv"])
    assert len(read_interactions(tmp_path / "one.tgz")) == len(VALID_ROWS)
    tgz(tmp_path / "two.TGZ", ["a.csv", "b.csv"])
    code, _, err = validate(tmp_path / "two.TGZ", capsys)
    assert code == 1 and "a TAR of several files" in err, err


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(DataError, match="file does not exist"):
        read_interactions(path)
    code, _, err = validate(path, capsys)
    assert code == 1 and "file does not exist" in err


def test_a_dash_is_told_it_is_not_standard_input(tmp_path, capsys, monkeypatch):
    """``scai validate -`` said only "file does not exist" (a red-team find): '-' is the Unix
    habit for standard input, which scai does not read; the message says so."""
    monkeypatch.chdir(tmp_path)
    code, _, err = validate("-", capsys)
    assert code == 1 and "'-' is not standard input here: give the table's file path" in err


def test_every_problem_is_reported(tmp_path, capsys):
    rows = [
        "0,1,1,u0,u1,gold,40,20,2,angry,neutral",  # currency, accepted, proposer tone
        "0,1,2,u1,,apples,12.5,5,0,rude,",  # responder missing, pot not whole
        "0,1,3,,u2,apples,40,50,1,,rude",  # offer above the pot
        VALID_ROWS[3],
    ]
    path = write(tmp_path, rows)
    with pytest.raises(DataError) as info:
        read_interactions(path)
    found = {(p.row, p.column) for p in info.value.problems}
    assert found == {
        (1, "currency"),
        (1, "accepted"),
        (1, "proposer_tone"),
        (2, "responder"),
        (2, "pot"),
        (3, "offer"),
    }
    assert len(info.value.problems) == 6
    code, _, err = validate(path, capsys)
    assert code == 1
    assert "6 problem(s) found" in err
    assert len([line for line in err.splitlines() if line.startswith("  row ")]) == 6


def test_many_problems_are_counted_and_the_listing_truncated(tmp_path, capsys):
    path = write(tmp_path, [f"0,1,{r},u0,u1,gold{r},40,1,1,," for r in range(1, 61)])
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert len(info.value.problems) == 60
    assert [p.row for p in info.value.problems] == list(range(1, 61))
    assert "60 problem(s) found" in str(info.value)
    assert "... and 10 more" in str(info.value)
    code, _, err = validate(path, capsys)
    assert code == 1 and "60 problem(s)" in err


def test_the_same_problem_in_many_rows_is_said_once_with_its_rows(tmp_path, capsys):
    """A currency misspelt in every row was said once a row (50 lines alike, then "... and
    950 more"): the same problem is one line naming its rows, runs of them by their ends; a
    different value, or a problem of another column, is a line of its own."""
    rows = [f"0,1,{r},u0,u1,gold,40,1,1,," for r in range(1, 61)]
    rows[9] = "0,1,10,u0,u1,silver,40,1,1,,"  # row 10: another value
    rows[19] = "0,1,20,u0,u1,gold,40,99,1,,"  # row 20: the offer too
    with pytest.raises(DataError) as info:
        read_interactions(write(tmp_path, rows))
    assert len(info.value.problems) == 61
    lines = str(info.value).splitlines()
    assert lines[0].endswith("61 problem(s) found:"), lines
    assert lines[1].startswith("  rows 1-9, 11-60 (59 rows), column 'currency': value 'gold'")
    assert lines[2].startswith("  row 10, column 'currency': value 'silver'"), lines
    assert lines[3].startswith("  row 20, column 'offer': value '99'"), lines
    assert len(lines) == 4, lines
    scattered = [f"0,1,{r},u0,u1,{('gold', 'dollars')[r % 2]},40,1,1,," for r in range(1, 41)]
    with pytest.raises(DataError) as info:
        read_interactions(write(tmp_path, scattered))
    assert "rows 2, 4, 6, 8, 10, 12, 14, 16, ... (20 rows), column 'currency'" in str(info.value)


def test_in_memory_tables_are_validated_the_same_way():
    df = pd.DataFrame(
        [r.split(",") for r in with_value(1, "offer", "41")], columns=HEADER.split(",")
    )
    df["pot"] = df["pot"].astype(int)
    with pytest.raises(DataError) as info:
        validate_frame(df)
    assert [(p.row, p.column) for p in info.value.problems] == [(1, "offer")]
    good = pd.DataFrame([r.split(",") for r in VALID_ROWS], columns=HEADER.split(","))
    good.loc[2, "proposer"] = None  # missing values in memory are empty cells
    assert validate_frame(good)["offer"].tolist() == [20, 5, 10, 7]
    # rows count from 1 in table order, as a CSV's; a DataFrame indexed otherwise (filtered,
    # or by labels) has each problem name its row's label too: "row 1" is not label 1
    df.index = [27, 28, 29, 30]
    with pytest.raises(DataError, match=r"row 1, column 'offer': .* \(index label 27\)"):
        validate_frame(df)


# -- users tables and policies ------------------------------------------------------------

POLICIES = Hypothesis().policy_names


def test_users_table_unknown_policy(tmp_path):
    path = write(
        tmp_path,
        ["0,u0,selfish,rude", "0,u1,greedy,polite", "0,u2,fair,grumpy"],
        header="sim,user,policy,manner",
        name="t.users.csv",
    )
    with pytest.raises(DataError) as info:
        read_users(path, POLICIES)
    problems = info.value.problems
    assert [(p.row, p.column, p.value) for p in problems] == [
        (2, "policy", "greedy"),
        (3, "manner", "grumpy"),
    ]
    assert problems[0].allowed == "allowed: selfish, fair, altruistic"
    assert "polite" in problems[1].allowed
    # a policy a hypothesis defines is allowed when that hypothesis's names are given
    ok = write(tmp_path, ["0,u0,greedy,rude"], header="sim,user,policy,manner", name="ok.csv")
    assert read_users(ok, (*POLICIES, "greedy"))["policy"].tolist() == ["greedy"]


def test_users_table_lists_each_user_once_per_simulation(tmp_path):
    """A user listed twice with two manners was read, and the last row silently won (the
    tone reader then learnt from other labels); the same id in another simulation is
    another user."""
    rows = ["0,u0,selfish,rude", "0,u1,fair,neutral", "1,u0,fair,polite", "0,u0,selfish,neutral"]
    path = write(tmp_path, rows, header="sim,user,policy,manner", name="t.users.csv")
    with pytest.raises(DataError) as info:
        read_users(path, POLICIES)
    (problem,) = info.value.problems
    assert (problem.row, problem.column, problem.value) == (4, "user", "u0")
    assert "listed again for sim '0' (row 1)" in str(info.value)


def test_users_table_wrong_header(tmp_path):
    path = write(tmp_path, ["0,u0,selfish"], header="sim,user,policy", name="u.csv")
    with pytest.raises(DataError, match="missing column.s. manner"):
        read_users(path, POLICIES)


def test_simulate_unknown_policy_exits_2(tmp_path, capsys):
    code = main(["simulate", "--policy", "nonsense", "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown policy 'nonsense'; allowed: selfish, fair, altruistic" in err
    assert not (tmp_path / "x.csv").exists()


def test_simulate_unknown_policy_in_mixture_exits_2(tmp_path, capsys):
    code = main(["simulate", "--policy", "selfish=0.5,greedy=0.5", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "unknown policy 'greedy'" in capsys.readouterr().err


# -- hypothesis files ---------------------------------------------------------------------

BAD_HYPOTHESES = [
    ("unknown key", "rationalty = 3.0\n", ["'rationalty'", "allowed:", "rationality"]),
    ("wrong type", 'rationality = "high"\n', ["'rationality'", "'high'", "expected a number"]),
    ("wrong type of table", "policies = 3\n", ["'policies'", "a table of policy tables"]),
    (
        "unknown manner in stereotype",
        "[stereotype.selfish]\ngrumpy = 1.0\n",
        ["stereotype.selfish.grumpy", "unknown manner", "allowed: neutral, polite, rude"],
    ),
    (
        "stereotype for an unknown policy",
        "[stereotype.greedy]\nrude = 1.0\n",
        ["stereotype.greedy", "unknown policy", "allowed: selfish, fair, altruistic"],
    ),
    (
        "unknown policy key",
        "[policies.spiteful]\nw = -1.0\ngamma = 2.0\n",
        ["policies.spiteful", "'gamma'", "allowed: w, alpha, beta"],
    ),
    ("unknown currency key", "[currency]\npooling = 1.0\n", ["currency", "'pooling'"]),
    ("out of range", "stereotype_strength = 1.5\n", ["stereotype_strength", "[0, 1]"]),
    ("not TOML", "rationality = \n", ["not valid TOML"]),
]


@pytest.mark.parametrize(
    "text, fragments", [c[1:] for c in BAD_HYPOTHESES], ids=[c[0] for c in BAD_HYPOTHESES]
)
def test_bad_hypothesis_file(tmp_path, capsys, text, fragments):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(HypothesisError) as info:
        Hypothesis.load(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    argv = ["simulate", "--policy", "selfish", "--hypothesis", str(path)]
    code = main([*argv, "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("scai simulate: error: ")
    for fragment in fragments:
        assert fragment in err


@pytest.mark.parametrize(
    "text, key",
    [
        ('[stereotype.selfish]\nrude = "lots"\n', "stereotype.selfish.rude"),
        ("[stereotype]\nselfish = 1.0\n", "stereotype.selfish"),
        ('[currency]\nshared_scale = "x"\n', "shared_scale"),
        ('pi_concentration = ["a", 1, 1]\n', "pi_concentration"),
    ],
    ids=["stereotype weight", "stereotype row", "currency value", "concentration list"],
)
def test_bad_hypothesis_values_name_their_key(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(HypothesisError, match=key):
        Hypothesis.load(path)


# The optional message columns: free text, kept exactly, never required.
TEXTS = [
    ("For the 40 apples, the proposer will get 20, and the decider will get 20.", "Accept."),
    ("  leading spaces, a comma and a\nline break", 'Reject. "No" means no!'),
    ("", ""),
    ("For the 15 grams of medicine, the proposer will get 8, and the decider will get 7.", ""),
]


def test_text_columns_round_trip_exactly(tmp_path, capsys):
    table = read_interactions(write(tmp_path, VALID_ROWS))
    assert "proposer_text" not in table.columns  # old tables read as before
    table["proposer_text"] = [p for p, _ in TEXTS]
    table["responder_text"] = [r for _, r in TEXTS]
    path = tmp_path / "texts.csv"
    write_interactions(table, path)
    back = read_interactions(path)
    assert list(back.columns) == [*INTERACTION_COLUMNS, *TEXT_COLUMNS]
    assert back["proposer_text"].tolist() == [p for p, _ in TEXTS]
    assert back["responder_text"].tolist() == [r for _, r in TEXTS]
    assert back["pot"].dtype.kind == "i"
    code, out, _ = validate(path, capsys)
    assert code == 0 and "4 interactions" in out


def test_one_text_column_alone_is_kept(tmp_path):
    rows = [f'{row},"msg {i}"' for i, row in enumerate(VALID_ROWS)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an optional column is read: nothing to warn of
        table = read_interactions(write(tmp_path, rows, header=HEADER + ",responder_text"))
    assert table["responder_text"].tolist() == [f"msg {i}" for i in range(4)]
    assert "proposer_text" not in table.columns


def test_in_memory_text_must_be_strings():
    table = read_interactions_frame()
    table["proposer_text"] = ["ok", None, float("nan"), 5]
    table.loc[0, "offer"] = 99
    with pytest.raises(DataError) as err:
        validate_frame(table)
    problems = {(p.row, p.column) for p in err.value.problems}
    # the number in the text column and the offer above the pot, both reported
    assert problems == {(4, "proposer_text"), (1, "offer")}
    table.loc[0, "offer"] = 20
    table["proposer_text"] = ["ok", None, float("nan"), ""]
    assert validate_frame(table)["proposer_text"].tolist() == ["ok", "", "", ""]


def read_interactions_frame() -> pd.DataFrame:
    rows = [r.split(",") for r in VALID_ROWS]
    return pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS), dtype=object)


def test_a_column_scai_does_not_read_is_named(tmp_path, capsys):
    """A misspelt optional column (``responder_txt``) was dropped without a word: the table is
    still valid, and a warning names the column and the optional ones scai reads."""
    rows = [f"{row},hello" for row in VALID_ROWS]
    path = write(tmp_path, rows, header=HEADER + ",responder_txt")
    code, out, err = validate(path, capsys)
    assert code == 0 and "valid" in out
    assert "'responder_txt' not read by scai" in err and "responder_text" in err
    code, out, err = validate(write(tmp_path, VALID_ROWS, name="plain.csv"), capsys)
    assert code == 0 and err == ""


@pytest.mark.parametrize(
    "column, row, value, says",
    [
        ("responder", 0, "Assistant", "is written 'assistant' exactly"),
        ("proposer_tone", 2, "rude", "empty when the proposer is unknown"),
    ],
)
def test_an_in_memory_table_meets_the_same_rules_as_a_file(tmp_path, column, row, value, says):
    """validate_frame's fast path for typed tables skipped today's two rules, so an in-memory
    table with 'Assistant' or an unknown proposer's tone was accepted, the same file refused."""
    table = read_interactions(write(tmp_path, VALID_ROWS))
    table.loc[row, column] = value
    with pytest.raises(DataError, match=says):
        validate_frame(table)


def test_a_trailing_comma_in_the_header_is_named_as_such(tmp_path):
    """pandas names an empty header field "Unnamed: 11"; the warning says which column it is
    and what probably made it, not pandas' name."""
    from scai.models.errors import UnusedColumnsWarning

    path = write(tmp_path, [r + "," for r in VALID_ROWS], header=HEADER + ",")
    with pytest.warns(
        UnusedColumnsWarning, match=r"an unnamed last column 12 \(a trailing comma\?\)"
    ):
        table = read_interactions(path)
    assert len(table) == 4


def test_a_dataframes_index_written_to_the_file_is_named_as_such(tmp_path):
    """pandas' to_csv writes a DataFrame's index as an unnamed first column: the warning
    called it 'an unnamed column 1 (a trailing comma?)', a cause that cannot put a column
    first. An empty field inside the header is named by its position."""
    from scai.models.errors import UnusedColumnsWarning

    table = read_interactions(write(tmp_path, VALID_ROWS))
    indexed = tmp_path / "indexed.csv"
    table.to_csv(indexed)  # index=True: pandas' default
    with pytest.warns(UnusedColumnsWarning, match=r"an unnamed first column \(a DataFrame's index"):
        again = read_interactions(indexed)
    pd.testing.assert_frame_equal(again, table)
    rows = [r.split(",") for r in VALID_ROWS]
    middle = write(
        tmp_path,
        [",".join([*r[:3], "x", *r[3:]]) for r in rows],
        header=",".join([*HEADER.split(",")[:3], "", *HEADER.split(",")[3:]]),
    )
    with pytest.warns(UnusedColumnsWarning, match=r"an unnamed column 4 \(a header field left"):
        read_interactions(middle)


def test_a_misspelt_column_of_an_in_memory_table_is_named_as_a_files_is(tmp_path):
    """validate_frame (fit's and update's check of a DataFrame) dropped a column it does not
    read without a word, where the same table from a CSV was warned of: a misspelt optional
    column lost every message's text silently."""
    from scai.models.errors import UnusedColumnsWarning

    table = read_interactions(write(tmp_path, VALID_ROWS)).assign(proposer_txt="hello")
    with pytest.warns(UnusedColumnsWarning, match=r"interactions: column\(s\) 'proposer_txt' not"):
        typed = validate_frame(table)
    assert "proposer_txt" not in typed.columns and len(typed) == len(table)


def test_ids_in_any_script_pass_and_look_alike_ones_do_not():
    """Names in other scripts keep their ideographic spaces and (zero-width) joiners; a zero-
    width space, a word joiner, a right-to-left override or a non-breaking space, which make
    an id look like another, are refused (a review of the rule)."""
    from scai.models.cell_text import has_control

    for name in ["山田\u3000太郎", "👩\u200d💻", "می\u200cخواهم", "Zoë", "u 2"]:
        assert not has_control(name), name
    for name in ["u2\u200b", "u\u2060", "u\u202e2", "u2\u00a0", "u\t2", "u\u20282"]:
        assert has_control(name), name


def test_the_header_limit_holds_behind_a_blank_line_and_in_a_compressed_file(tmp_path):
    """pandas skips leading blank lines and reads .gz by its name: the header check must see
    the same header line (a review let 3,000 columns through both ways)."""
    import gzip

    from scai.models.errors import DataError

    header = ",".join(f"c{i}" for i in range(1_001))
    (tmp_path / "blank.csv").write_text("\n\n" + header + "\n1\n")
    with gzip.open(tmp_path / "wide.csv.gz", "wt") as f:
        f.write(header + "\n1\n")
    for name in ("blank.csv", "wide.csv.gz"):
        with pytest.raises(DataError, match="the header names 1,001 columns; at most 1,000"):
            read_interactions(tmp_path / name)


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.csv.bz2", "t.csv.xz", "t.csv.zip"])
def test_a_table_of_more_rows_than_allowed_is_refused_before_pandas_reads_it(
    tmp_path, monkeypatch, name
):
    """A 2 MB .gz of 30 million rows took pandas over a minute and 6 GB of memory before any
    check (a red-team's decompression bomb). The lines after the header are counted as the
    file is decompressed, nothing kept, and more than MAX_ROWS are refused before pandas
    reads a row (here MAX_ROWS is made 3: the count is the same at 10^7)."""
    import bz2
    import gzip
    import lzma
    import zipfile

    import scai.models.table_file as table_file

    monkeypatch.setattr(table_file, "MAX_ROWS", 3)
    monkeypatch.setattr(pd, "read_csv", None)  # reached, it is a TypeError: not called
    text = "\n".join([HEADER, *VALID_ROWS]) + "\n"  # four rows
    path = tmp_path / name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("t.csv", text)
    else:
        opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix, open)
        with opener(path, "wt") as f:
            f.write(text)
    with pytest.raises(DataError, match="more than 3 rows after the header; a table holds"):
        read_interactions(path)
    monkeypatch.undo()
    monkeypatch.setattr(table_file, "MAX_ROWS", 4)
    assert len(read_interactions(path)) == 4


def test_the_row_limit_counts_rows_as_pandas_reads_them_and_the_text_is_bounded(
    tmp_path, monkeypatch
):
    """A review of the limit above: a table of lone ``\\r`` line ends (which pandas reads) was
    not counted, nor one huge line (a 200 KB .gz of one 200 MB row: 673 MB before any check);
    a last row without its line end passed one row over; quoted line ends in a text and blank
    lines at the end (fewer rows than lines) were refused."""
    import gzip

    import scai.models.table_file as table_file

    monkeypatch.setattr(table_file, "MAX_ROWS", 3)
    over = {  # four rows each
        "cr.csv": "\r".join([HEADER, *VALID_ROWS]) + "\r",
        "unended.csv": "\n".join([HEADER, *VALID_ROWS]),
    }
    header = HEADER.replace("responder_tone", "responder_tone,proposer_text")
    rows = [f'{row},"a\n\nb"' for row in VALID_ROWS[:3]]
    within = {  # three rows each
        "quoted.csv": "\n".join([header, *rows]) + "\n",
        "blank.csv": "\n".join([HEADER, *VALID_ROWS[:3]]) + "\n\n\n\n",
        "crlf.csv": "\r\n".join([HEADER, *VALID_ROWS[:3]]) + "\r\n",
        # a text of 200 KB (of line ends): over the csv module's field limit, which pandas reads
        "long_text.csv": "\n".join([header, *(r.replace("a\n\nb", "\n" * 200_000) for r in rows)]),
    }
    for name, text in {**over, **within}.items():
        (tmp_path / name).write_bytes(text.encode())
        if name in over:
            with pytest.raises(DataError, match="more than 3 rows after the header"):
                read_interactions(tmp_path / name)
        else:
            assert len(read_interactions(tmp_path / name)) == 3, name
    with gzip.open(tmp_path / "long.csv.gz", "wt") as f:  # one row, 3 MB
        f.write(HEADER + "\n" + VALID_ROWS[0] + " " * 3_000_000 + "\n")
    monkeypatch.setattr(table_file, "memory_limit", lambda: (2_000_000, "a limit for the test"))
    with pytest.raises(DataError, match=r"decompressed, is more than 2.0 MB: above the limit"):
        read_interactions(tmp_path / "long.csv.gz")


def test_a_table_not_in_utf8_names_the_line_of_its_first_such_byte(tmp_path):
    """pandas' message gave a position within its chunk ("byte 0xe9 in position 1" for a
    byte on line 3, a review); the line is now counted in the file, and in a pipe's bytes."""
    import os
    import threading

    rows = [HEADER, *VALID_ROWS]
    rows[2] = rows[2].replace("rude", "r\xe9de")  # line 3, saved as Latin-1
    path = tmp_path / "latin1.csv"
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"line 3: byte 0xe9 is not UTF-8 text"):
        read_interactions(path)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_bytes(path.read_bytes()))
    writer.start()
    with pytest.raises(DataError, match=r"line 3: byte 0xe9 is not UTF-8 text"):
        read_interactions(pipe)
    writer.join()


@pytest.mark.parametrize("module, suffix", [("gzip", ".gz"), ("bz2", ".bz2")])
def test_compressed_data_under_a_plain_name_is_said_to_be_compressed(tmp_path, module, suffix):
    """Compressed data whose name does not say so (a ``.csv`` file, a pipe such as
    ``gzip -c t.csv | scai validate /dev/stdin``) was told "byte 0x8b is not UTF-8 text; save
    the file as UTF-8" (a newcomer review): compression is known by the name's ending only,
    and the message says which ending the data's first bytes call for."""
    import importlib
    import os
    import threading

    text = "\n".join([HEADER, *VALID_ROWS]) + "\n"
    data = importlib.import_module(module).compress(text.encode())
    path = tmp_path / "table.csv"
    path.write_bytes(data)
    said = rf"starts as a \{suffix} file does \(compressed\).*a name ending in \{suffix}"
    with pytest.raises(DataError, match=said):
        read_interactions(path)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_bytes(data))
    writer.start()
    with pytest.raises(DataError, match=said):
        read_interactions(pipe)
    writer.join()
    (tmp_path / f"table.csv{suffix}").write_bytes(data)  # named as it is: read
    assert len(read_interactions(tmp_path / f"table.csv{suffix}")) == len(VALID_ROWS)
    # compressed twice, or a compressed table in a ZIP: its name says compressed already, and
    # "give it a name ending in .gz" was the advice (a red-team find)
    import zipfile

    twice = tmp_path / f"twice.csv{suffix}{suffix}"
    twice.write_bytes(importlib.import_module(module).compress(data))
    with zipfile.ZipFile(tmp_path / "inside.zip", "w") as archive:
        archive.writestr(f"table.csv{suffix}", data)
    for path in (twice, tmp_path / "inside.zip"):
        with pytest.raises(
            DataError,
            match=rf"starts as a \{suffix} file does: a compressed file inside; decompress",
        ) as caught:
            read_interactions(path)
        assert "a name ending in" not in str(caught.value)


def _read_from_pipe(pipe: Path, data: bytes, timeout: float = 60.0):
    """``read_interactions(pipe)`` while a thread writes ``data`` into the named pipe: its
    table or the error it raised; a reader still waiting after ``timeout`` s fails the test (a
    pipe opened a second time waits for a writer forever)."""
    import threading

    result: dict = {}

    def read() -> None:
        try:
            result["table"] = read_interactions(pipe)
        except Exception as err:  # told to the test
            result["error"] = err

    def write() -> None:
        with contextlib.suppress(BrokenPipeError):
            pipe.write_bytes(data)

    threads = [threading.Thread(target=f, daemon=True) for f in (write, read)]
    for thread in threads:
        thread.start()
    threads[1].join(timeout)
    assert not threads[1].is_alive(), f"reading {pipe.name} still waits after {timeout} s"
    # A writer whose reader never opened the pipe waits in its open for one: a reader opened
    # without waiting (a blocking open raced a writer just done, and waited for ever) frees it.
    fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    threads[0].join(timeout)
    os.close(fd)
    assert not threads[0].is_alive(), f"writing {pipe.name} still waits after {timeout} s"
    return result.get("table"), result.get("error")


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zst"])
def test_a_pipe_named_as_compressed_is_read_once(tmp_path, suffix):
    """A named pipe whose name says compressed was opened again to look for short rows (or,
    for .zst, to look for a cut frame) once pandas had read it: that open waited forever for a
    writer (a review). It is read once, decompressed as it is read; its problems are told as a
    file's; an archive's name is refused."""
    import bz2
    import gzip
    import lzma

    import zstandard

    compress = {
        ".gz": gzip.compress,
        ".bz2": bz2.compress,
        ".xz": lzma.compress,
        ".zst": zstandard.ZstdCompressor().compress,
    }[suffix]
    text = ("\n".join([HEADER, *VALID_ROWS]) + "\n").encode()
    assert VALID_ROWS[1].endswith(",")  # an empty last field: the short rows are looked for
    pipe = tmp_path / f"table.csv{suffix}"
    os.mkfifo(pipe)
    table, error = _read_from_pipe(pipe, compress(text))
    assert error is None, error
    pd.testing.assert_frame_equal(table, read_interactions(write(tmp_path, VALID_ROWS)))
    short = ("\n".join([HEADER, *VALID_ROWS, "1,1,2,u0,u1"]) + "\n").encode()
    _, error = _read_from_pipe(pipe, compress(short))
    assert isinstance(error, DataError) and "5 fields, fewer than the header's 11" in str(error)
    _, error = _read_from_pipe(pipe, compress(text)[:-8])  # cut short
    assert isinstance(error, DataError), error
    archive = tmp_path / "table.zip"
    os.mkfifo(archive)
    _, error = _read_from_pipe(archive, b"PK")
    assert isinstance(error, DataError) and "cannot read an archive" in str(error), error


def test_a_wrong_header_shows_the_tone_columns_as_optional(tmp_path):
    """A header missing a column was told "expected: sim,...,accepted,proposer_tone,
    responder_tone", the tone columns among those a table must have, though a table may leave
    them out (a review); they are shown as optional, and a table without them that misses
    another column is told of that one alone."""
    path = write(tmp_path, ["0,1,1,u0,u1,apples,40,20"], header=",".join(GAME_COLUMNS[:-1]))
    with pytest.raises(DataError) as caught:
        read_interactions(path)
    (problem,) = caught.value.problems
    assert problem.allowed == (
        "wrong header: missing column(s) accepted; expected: sim,epoch,round,proposer,"
        "responder,currency,pot,offer,accepted[,proposer_tone,responder_tone]"
    )


def test_a_pipe_of_zst_frames_the_last_cut_short_is_refused(tmp_path):
    """A .zst read from a pipe whose last frame was cut short (a file of several frames:
    ``cat a.zst b.zst``, pzstd, a stream flushed frame by frame) read as the rows of the
    frames before it, without a word: zstandard reads a cut frame as nothing more, and the
    check for a cut frame (which reads a file again) was not made of a pipe (a review)."""
    import zstandard

    compress = zstandard.ZstdCompressor().compress
    first = ("\n".join([HEADER, *VALID_ROWS[:2]]) + "\n").encode()
    rest = ("\n".join(VALID_ROWS[2:]) + "\n").encode()
    pipe = tmp_path / "table.csv.zst"
    os.mkfifo(pipe)
    table, error = _read_from_pipe(pipe, compress(first) + compress(rest))  # whole: read
    assert error is None, error
    assert len(table) == len(VALID_ROWS)
    table, error = _read_from_pipe(pipe, compress(first) + compress(rest)[:-4])
    assert table is None, f"{len(table)} rows read of a cut pipe"
    assert isinstance(error, DataError) and "a truncated .zst" in str(error), error


def test_a_nul_in_a_message_is_named_at_its_row_before_any_fit(tmp_path, capsys):
    """A NUL in a message passed ``scai validate`` and the whole fit, then failed writing the
    posterior (h5py: "VLEN strings do not support embedded NULLs", no row, no column)."""
    rows = [f'{row},"msg {i}"' for i, row in enumerate(VALID_ROWS)]
    rows[2] = rows[2].replace("msg 2", "msg\x00 2")
    path = write(tmp_path, rows, header=HEADER + ",proposer_text")
    code, out, err = validate(path, capsys)
    assert code == 1 and "row 3, column 'proposer_text'" in out + err and "NUL" in out + err
    table = read_interactions(write(tmp_path, VALID_ROWS))
    table["responder_text"] = ["a", "b", "c", "d\x00"]  # typed in memory: the fast path too
    with pytest.raises(DataError) as err:
        validate_frame(table)
    assert [(p.row, p.column) for p in err.value.problems] == [(4, "responder_text")]
    # a lone surrogate (a DataFrame's: no UTF-8 file holds one) failed the same way, at save
    table["responder_text"] = ["a", "b\ud800", "c", "d"]
    with pytest.raises(DataError) as err:
        validate_frame(table)
    assert [(p.row, p.column) for p in err.value.problems] == [(2, "responder_text")]
    assert "lone surrogate" in str(err.value)


def test_ids_are_the_same_user_however_a_table_holds_them(tmp_path):
    """Two silent splits of one user into two: pandas stores ids 1, 2 as 1.0, 2.0 in a column
    with a missing value (``1.0`` and the other column's ``1`` were two users), and "Zoë"
    typed with a combining accent was another user than "Zoë" typed with one character."""
    import io
    import unicodedata

    rows = ["0,1,1,1,2,dollars,10,2,1,,", "0,1,2,,1,dollars,10,5,1,,", "0,1,3,3,2,dollars,10,1,1,,"]
    df = pd.read_csv(io.StringIO("\n".join([HEADER, *rows])))
    assert df["proposer"].dtype == float  # the missing proposer: the column is float
    table = validate_frame(df)
    assert sorted(set(table["proposer"]) | set(table["responder"])) == ["", "1", "2", "3"]
    composed = "Zo\u00eb"
    decomposed = unicodedata.normalize("NFD", composed)
    rows = [
        f"0,1,1,{composed},bob,dollars,10,2,1,,",
        f"0,1,2,bob,{decomposed},dollars,10,2,1,,",
    ]
    path = write(tmp_path, rows)
    users = f"sim,user,policy,manner\n0,{decomposed},fair,neutral\n0,bob,fair,neutral\n"
    (tmp_path / "t.users.csv").write_text(users)
    for read in (
        lambda: read_interactions(path),
        lambda: validate_frame(pd.read_csv(path, dtype=str, keep_default_na=False)),
    ):
        with pytest.warns(TableWarning, match="composed form"):
            table = read()
        assert set(table["proposer"]) | set(table["responder"]) == {composed, "bob"}
    with pytest.warns(TableWarning, match="composed form"):
        assert set(read_users(tmp_path / "t.users.csv", ("fair",))["user"]) == {composed, "bob"}


def test_duplicated_games_are_told_beside_the_other_problems(tmp_path):
    """A table with a bad value and a game entered twice was told the bad value only; the
    duplicate came once it was fixed, another round for every user of --strict (a test
    drive). Both are told at once, from a file and from a DataFrame: under strict as
    problems, else the duplicate as the warning it is."""
    rows = [*VALID_ROWS, VALID_ROWS[0]]
    rows[1] = rows[1].replace(",40,5,", ",40,50,")  # an offer above the pot
    frame = pd.DataFrame([r.split(",") for r in rows], columns=list(INTERACTION_COLUMNS))
    for read in (
        lambda **k: read_interactions(write(tmp_path, rows), **k),
        lambda **k: validate_frame(frame, **k),
    ):
        with pytest.raises(DataError) as caught:
            read(strict=True)
        assert [(p.row, p.column) for p in caught.value.problems] == [(2, "offer"), (5, None)]
        assert "the same game as row 1" in caught.value.problems[1].allowed
        with (
            pytest.warns(DuplicateGamesWarning, match=r"row 5 = row 1"),
            pytest.raises(DataError) as caught,
        ):
            read()
        assert [(p.row, p.column) for p in caught.value.problems] == [(2, "offer")]


def test_ids_that_are_one_number_written_two_ways_are_named(tmp_path):
    """A CSV whose group ``0`` was written ``0.0`` in half its rows was fitted as two groups
    from its path and as one from ``pd.read_csv`` (a red-team find): ids are text, and a
    TableWarning names those of a column that pandas reads as numbers and them as one.
    A column with another id (pandas reads it as text), ids written one way, and whole numbers
    beyond float's 2^53 that differ (pandas' int64 keeps them apart) are quiet."""
    rows = [
        "0,1,1,1,2,dollars,10,2,1,,",
        "0.0,1,2,2,01,dollars,10,5,1,,",
        "1,1,1,3,1,dollars,10,5,1,,",
    ]
    path = write(tmp_path, rows)
    with pytest.warns(TableWarning) as caught:
        table = read_interactions(path)
    told = [str(w.message) for w in caught if issubclass(w.category, TableWarning)]
    assert len(told) == 2, told
    assert "column 'sim': ids that are one number written two ways" in told[0]
    assert "different groups ('0' and '0.0')" in told[0]
    assert "column 'responder'" in told[1] and "different users ('1' and '01')" in told[1]
    assert sorted(set(table["sim"])) == ["0", "0.0", "1"]  # read as written: warned, not changed
    assert pd.read_csv(path)["sim"].nunique() == 2  # (what pandas makes of it)
    quiet = [
        ["1,1,1,u1,u2,dollars,10,5,1,,", "2,1,1,1,01,dollars,10,5,1,,"],  # users: text
        [rows[0], "9007199254740993,1,1,1,2,dollars,10,5,1,,"],
        [
            rows[0].replace("0,", "9007199254740992,", 1),
            "9007199254740993,1,1,1,2,dollars,10,5,1,,",
        ],
    ]
    for lines in quiet:
        with warnings.catch_warnings():
            warnings.simplefilter("error", TableWarning)
            read_interactions(write(tmp_path, lines))


def test_validate_reports_a_table_with_nothing_to_fit(tmp_path, capsys):
    """``scai validate`` said 'valid' of a table where no user acts (every proposer the
    assistant or unknown, every responder the assistant), which ``scai fit`` refuses."""
    rows = ["0,1,1,,assistant,dollars,10,5,1,,polite", "0,1,2,assistant,assistant,dollars,10,5,1,,"]
    code, out, err = validate(write(tmp_path, rows[:1]), capsys)
    assert code == 1 and "no user acts in any of the 1 row(s)" in err and "valid (" not in out
    assert validate(write(tmp_path, [*rows[:1], VALID_ROWS[0]]), capsys)[0] == 0


@pytest.mark.parametrize(
    "first, said",
    [
        ("# exported by my script", "is a comment: the header must be the first line"),
        ("sep=,", "is Excel's 'sep=' separator line: remove it"),
        (HEADER.replace(",", ";"), "separated by semicolons"),
        (HEADER.replace(",", "\t"), "separated by tabs"),
        (HEADER.upper(), "column names are lower case: 'SIM' is 'sim'"),
    ],
)
def test_a_header_that_is_not_one_says_why(tmp_path, capsys, first, said):
    """A comment or Excel's 'sep=,' line above the header was reported as 'more fields than
    the header's 1 columns (a trailing comma?)'; a header in capitals or separated otherwise
    listed every column as missing, without a word of why."""
    rows = VALID_ROWS if first.startswith(("#", "sep")) else []
    header = f"{first}\n{HEADER}" if rows else first
    rows = rows or [
        VALID_ROWS[0].replace(",", "\t" if "\t" in first else ";" if ";" in first else ",")
    ]
    code, _, err = validate(write(tmp_path, rows, header=header), capsys)
    assert code == 1 and said in err, err
    assert "trailing comma" not in err


@pytest.mark.parametrize(
    "misspelt, column", [("accpeted", "accepted"), ("responder_tones", "responder_tone")]
)
def test_a_misspelt_column_is_named_beside_the_missing_one(tmp_path, capsys, misspelt, column):
    """A header with a misspelt column ('accpeted') said only that 'accepted' was missing,
    never naming the column the table does have (a review, extending scai with its own data);
    an optional text column is not taken for a misspelt tone column."""
    header = ",".join(misspelt if c == column else c for c in INTERACTION_COLUMNS)
    code, _, err = validate(write(tmp_path, VALID_ROWS, header=header), capsys)
    assert code == 1 and f"missing column(s) {column};" in err, err
    assert f"the table has a column {misspelt!r}: is it {column!r} misspelt?" in err, err
    capitals = HEADER.replace(column, column.title())
    code, _, err = validate(write(tmp_path, VALID_ROWS, header=capitals), capsys)
    assert code == 1 and f"{column.title()!r} is {column!r}" in err, err
    texts = HEADER.replace("proposer_tone,responder_tone", "proposer_text,responder_text")
    code, _, err = validate(write(tmp_path, VALID_ROWS, header=texts), capsys)
    assert code == 0 and "is it " not in err, err  # the tones, optional, left out


@pytest.mark.parametrize("left_out", [TONE_COLUMNS, TONE_COLUMNS[:1], TONE_COLUMNS[1:]])
def test_a_tone_column_left_out_is_a_role_never_heard(tmp_path, left_out):
    """A table of its own data need not carry the tone columns: one left out reads as that
    column empty, from a file and from a DataFrame (typed, or of text), with no rows too."""
    kept = [c for c in INTERACTION_COLUMNS if c not in left_out]
    rows = [r.split(",") for r in VALID_ROWS]
    for row in rows:
        for column in left_out:
            row[INTERACTION_COLUMNS.index(column)] = ""
    heard = pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS))
    expected = read_interactions(write(tmp_path, [",".join(r) for r in rows]))
    assert (expected[list(left_out)] == "").all().all()
    without = heard[kept]
    from_file = read_interactions(
        write(tmp_path, without.apply(",".join, axis=1).tolist(), ",".join(kept))
    )
    pd.testing.assert_frame_equal(from_file, expected)
    pd.testing.assert_frame_equal(validate_frame(without), expected)
    typed = without.astype({c: "int64" for c in ("epoch", "round", "pot", "offer", "accepted")})
    pd.testing.assert_frame_equal(validate_frame(typed), expected)
    empty = validate_frame(without.iloc[:0], allow_empty=True)
    assert list(empty.columns) == list(INTERACTION_COLUMNS) and len(empty) == 0


@pytest.mark.parametrize("spelling", [str.upper, str.lower, str.title])
def test_a_decision_written_as_a_logical_word_is_read_as_its_digit(tmp_path, capsys, spelling):
    """R and Excel write a logical as TRUE/FALSE, pandas a bool as True/False: each reads as
    the 1/0 it means, from a file and from a DataFrame of text; 'yes' is still refused."""
    expected = read_interactions(write(tmp_path, VALID_ROWS))
    rows = [r.split(",") for r in VALID_ROWS]
    column = INTERACTION_COLUMNS.index("accepted")
    for row in rows:
        row[column] = spelling("true" if row[column] == "1" else "false")
    from_file = read_interactions(write(tmp_path, [",".join(r) for r in rows]))
    pd.testing.assert_frame_equal(from_file, expected)
    frame = pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS))
    pd.testing.assert_frame_equal(validate_frame(frame), expected)
    code, _, err = validate(write(tmp_path, with_value(1, "accepted", "yes")), capsys)
    assert code == 1 and "must be 1 (accepted) or 0 (rejected), or TRUE/FALSE" in err, err


def test_a_column_alike_but_for_a_word_is_not_taken_for_a_misspelt_one(tmp_path, capsys):
    """A table of its own data without tones, with each player's type beside the names
    ('proposer_type', 'proposer_name': difflib's ratio 0.85 to 'proposer_tone'), was asked
    "is it 'proposer_tone' misspelt?" of a column that is none; one typo is still named.
    Such a table is valid, its tones not heard, and the columns it has beside are told."""
    for extra in ("proposer_type,responder_type", "proposer_name,responder_name"):
        header = HEADER.replace("proposer_tone,responder_tone", extra)
        code, _, err = validate(write(tmp_path, VALID_ROWS, header=header), capsys)
        assert code == 0 and "is it " not in err, err
        assert "not read by scai (ignored); its optional columns are proposer_tone" in err, err
    header = HEADER.replace("currency", "curency")
    code, _, err = validate(write(tmp_path, VALID_ROWS, header=header), capsys)
    assert "the table has a column 'curency': is it 'currency' misspelt?" in err, err


def test_a_transcript_given_as_a_table_is_named(tmp_path, capsys):
    """``scai validate`` of ``scai simulate --transcript``'s file said "this looks like JSON"
    (its lines start with "[sim 0 epoch 1 ...]"): it names the transcript and the table to give
    instead."""
    transcript = tmp_path / "group.txt"
    argv = ["simulate", "--policy", "selfish", "--users", "3", "--epochs", "1"]
    assert main([*argv, "--out", str(tmp_path / "g.csv"), "--transcript", str(transcript)]) == 0
    capsys.readouterr()
    code, _, err = validate(transcript, capsys)
    assert code == 1 and "this looks like a transcript" in err and "JSON" not in err, err


def test_a_json_table_is_named_json_not_a_header_of_repeated_columns(tmp_path, capsys):
    """A table saved by pandas' ``to_json`` (one line of JSON) was read as a CSV header of
    hundreds of fields and reported as ~20 "column ... appears more than once in the header"
    problems; it is one problem that says it looks like JSON."""
    table = read_interactions(write(tmp_path, VALID_ROWS))
    path = tmp_path / "table.json"
    table.to_json(path)
    code, _, err = validate(path, capsys)
    assert code == 1 and "1 problem(s)" in err and "this looks like JSON" in err, err
    assert "more than once" not in err
    # a CSV whose first column is "[note]" is no JSON: its repeated column is still refused
    header = "[note]," + ",".join(INTERACTION_COLUMNS) + ",offer"
    rows = ["x," + VALID_ROWS[0] + ",6"]
    code, _, err = validate(write(tmp_path, rows, header=header), capsys)
    assert code == 1 and "column 'offer': appears more than once in the header" in err, err


# -- a red-team's finds in DataFrame input (each a bare pandas error or a silent acceptance) --
def _valid_table(tmp_path):
    return read_interactions(write(tmp_path, VALID_ROWS))


def test_column_names_alike_as_text_are_one_name_twice(tmp_path):
    """Columns 1 and "1" (or b"x" and "b'x'") read as one name in the row-by-row check, which
    then met a table where it expected a column: a bare AttributeError."""
    from scai.models.errors import DataError

    table = _valid_table(tmp_path).assign(pot=lambda t: t.pot.astype(float))  # row by row
    table[1], table["1"] = 0, 0
    with pytest.raises(DataError, match="column '1': the column appears more than once"):
        validate_frame(table)


@pytest.mark.parametrize("kind", ["list", "tuple", "dict"])
@pytest.mark.parametrize("column", ["sim", "proposer", "currency", "responder_tone"])
def test_a_container_in_a_text_cell_is_refused(tmp_path, kind, column):
    """A list in an id column was read as the id "['u0']", without a word."""
    from scai.models.errors import DataError

    value = {"list": ["u0"], "tuple": ("u0",), "dict": {"u": 0}}[kind]
    table = _valid_table(tmp_path)
    cells = pd.Series(table[column].tolist(), dtype=object)
    cells[1] = value
    with pytest.raises(DataError, match=f"row 2, column '{column}'.*a {kind}; one value"):
        validate_frame(table.assign(**{column: cells}))


def test_bytes_in_a_column_scai_does_not_read_are_ignored_either_way(tmp_path):
    """Bytes in an extra column were refused when some other column sent the table to the
    row-by-row check, and ignored (with the unused-column warning) otherwise."""
    from scai.models.errors import UnusedColumnsWarning

    table = _valid_table(tmp_path).assign(note=b"x")
    for typed in (table, table.assign(pot=table.pot.astype(float))):
        with pytest.warns(UnusedColumnsWarning, match="'note' not read"):
            assert len(validate_frame(typed)) == len(table)


@pytest.mark.filterwarnings("ignore::scai.models.errors.UnusedColumnsWarning")  # (a, b)
def test_an_empty_epoch_for_update_has_its_header_checked(tmp_path):
    """update skipped every check of a DataFrame with no rows: repeated columns gave pandas'
    InvalidIndexError, and columns none of which scai reads were taken as an empty epoch."""
    from scai.inference import fit
    from scai.inference.online import update
    from scai.models.errors import DataError

    table = _valid_table(tmp_path)
    previous = fit(table)
    for columns, says in (
        (["a", "a"], "column 'a': the column appears more than once"),
        ([*table.columns, "pot"], "column 'pot': the column appears more than once"),
        (["a", "b"], "wrong header: missing column"),
    ):
        with pytest.raises(DataError, match=f"(?s)new_interactions: .*{says}"):
            update(previous, pd.DataFrame(columns=columns))
    for empty in (pd.DataFrame(columns=list(table.columns)), pd.DataFrame()):
        assert torch.equal(update(previous, empty).pi_mean(), previous.pi_mean())


def test_a_dataframes_typed_table_is_the_files(tmp_path):
    """The typed table of a DataFrame kept the caller's index (a posterior's table then
    changed on save and load, which number its rows) and, on the fast path, np.str_ ids in an
    object column; it is now the table read from the same file, index and dtypes included."""
    import numpy as np

    table = _valid_table(tmp_path)
    odd = table.astype(object).set_axis([7] * len(table))
    odd["proposer"] = [np.str_(v) for v in odd["proposer"]]
    odd = odd.astype({c: np.int64 for c in ("epoch", "round", "pot", "offer", "accepted")})
    odd["sim"] = odd["sim"].astype("string[python]")
    typed = validate_frame(odd)
    pd.testing.assert_frame_equal(typed, table)
    assert type(typed["proposer"].iloc[0]) is str


def test_a_bytes_or_container_cell_is_named_once(tmp_path):
    """A bytes value in a number column was named twice: as bytes, then for its text b'10'
    not being a whole number (12 problems for 6 cells)."""
    from scai.models.errors import DataError

    table = _valid_table(tmp_path)
    for column, value in (("pot", b"10"), ("currency", ("dollars",))):
        cells = pd.Series(table[column].tolist(), dtype=object)
        cells[[0, 2]] = [value, value]
        with pytest.raises(DataError, match=r"^interactions: 2 problem\(s\) found"):
            validate_frame(table.assign(**{column: cells}))


def test_a_tables_whole_problems_are_the_tables_not_a_files(tmp_path):
    """A DataFrame missing a column was told "interactions: ... file: wrong header" (a review
    of earlier red-teams): there is no file. An in-memory table's problems of no row are the
    table's; a CSV's stay the file's."""
    from scai.inference import fit
    from scai.models.simulate import simulate

    table = simulate("neutral", policy="fair", users=4, epochs=1, seed=0).interactions
    with pytest.raises(DataError) as caught:
        fit(table.drop(columns=["pot"]), "neutral")
    assert "\n  table: wrong header: missing column(s) pot" in str(caught.value)
    assert all(p.whole == "table" for p in caught.value.problems)
    table.drop(columns=["pot"]).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="\n  file: wrong header: missing column"):
        read_interactions(tmp_path / "t.csv")


@pytest.mark.parametrize("column", ["sim", "proposer", "proposer_tone"])
def test_numpys_nat_is_a_missing_cell_as_none_is(column):
    """``np.datetime64("NaT")`` (NumPy's, not pandas' ``NaT``) was read as the text 'NaT': a
    simulation or a user named "NaT". It is a missing cell, whatever ``None`` gives."""
    import numpy as np

    from scai.models.data import validate_frame
    from scai.models.simulate import simulate

    table = simulate("neutral", policy="fair", users=4, epochs=1, seed=0).interactions

    def outcome(missing):
        cells = table.astype({column: object})
        cells.loc[0, column] = missing
        try:
            return validate_frame(cells).loc[0, column]
        except DataError as err:
            return str(err)

    assert outcome(np.datetime64("NaT")) == outcome(None)
    assert "NaT" not in outcome(np.datetime64("NaT"))
