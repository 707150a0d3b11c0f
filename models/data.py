"""The interaction table: one row per game, as CSV, with validation.

Columns (``proposer`` may be empty for responder-only human data; tones may be empty when no
message was observed, and a tone column may be left out: that role's tones were never heard)::

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

Beside it, one module a job: a cell's text as a value (:mod:`scai.models.cell_text`), the users
table (:mod:`scai.models.users_table`), the companion files' names (:mod:`scai.models.companions`),
whether a table's layout fits in memory (:mod:`scai.models.table_memory`), reading a table file
into text (:mod:`scai.models.table_file`) and writing files atomically (:mod:`scai.models.writing`).
"""

from __future__ import annotations

import collections
import io
import os
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scai.models.cell_text import (
    DECIMAL,
    ID_CHARACTERS,
    column_as_text,
    has_control,
    is_nan,
    parse_whole,
)
from scai.models.errors import (
    DataError,
    DuplicateGamesWarning,
    Problem,
    RunError,
    TableWarning,
    UnusedColumnsWarning,
    check_flag,
    check_path,
    missing,
    not_a_regular_file,
    outside_scai,
)
from scai.models.game import CURRENCIES, CURRENCY_NAME, MAX_POT, get_currency
from scai.models.language import TONES
from scai.models.layout import ASSISTANT, column_texts
from scai.models.table_file import read_text_table
from scai.models.writing import write_csv_atomic

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
#: Optional columns: the tones heard, one a role. A column left out is a role whose tones were
#: not heard, as a column of empty values (a table of people's decisions has none).
TONE_COLUMNS: tuple[str, ...] = ("proposer_tone", "responder_tone")
#: What makes a game but the tones heard in it (the columns a table must have): the same game
#: sent again with its tones read anew, or emptied (``--tones none``), is still that game.
GAME_COLUMNS = tuple(c for c in INTERACTION_COLUMNS if c not in TONE_COLUMNS)
#: Optional columns: the proposal and the reply as written (free text, may be empty).
TEXT_COLUMNS: tuple[str, ...] = ("proposer_text", "responder_text")
USER_COLUMNS: tuple[str, ...] = ("sim", "user", "policy", "manner")
_OPTIONAL = {"proposer", *TONE_COLUMNS}
_ID_COLUMNS = ("sim", "proposer", "responder")
_INT_COLUMNS = ("epoch", "round", "pot", "offer", "accepted")
#: The largest ``epoch`` or ``round`` (and human-data ``trial``): far beyond any study, and
#: small enough that every count the model and its tables derive stays exact in int64/float64.
MAX_INDEX = 10**9


def _read_raw(path_or_buffer: str | Path | io.StringIO | io.BytesIO, source: str) -> pd.DataFrame:
    """A table file's text (:func:`~scai.models.table_file.read_text_table`), its values'
    layout spaces stripped, its decisions written as words read as digits, its ids composed,
    an id column's numbers written two ways told, a column named twice refused."""
    df = read_text_table(path_or_buffer, source, _header_hint)
    _strip_layout_spaces(df)
    _decisions_as_digits(df)
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


def with_tone_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each tone column it lacks (:data:`TONE_COLUMNS`) as empty values: no tone of
    that role heard. Not where a column of the table looks like the missing one (one typo from
    it, or in capitals): the header's check names that column."""
    names = [str(c).strip().lower() for c in df.columns]
    unheard = [
        c
        for c in TONE_COLUMNS
        if c not in df.columns and not any(n == c or _one_typo(c, n) for n in names)
    ]
    return df.assign(**dict.fromkeys(unheard, "")) if unheard else df


def _misspelt(absent: Sequence[str], unread: Sequence[object]) -> str:
    """Which of the ``unread`` columns looks like a misspelling of an ``absent`` one, one
    typo from it (a letter added, left out, changed, or two swapped: 'accpeted' for
    'accepted'), said as a question; '' where none does. (Names alike but for a word, such
    as 'proposer_type' or 'proposer_name' beside a missing 'proposer_tone', are columns of
    their own: difflib's ratio of 0.8 took them for it.)"""
    names = sorted(str(c) for c in unread)
    for column in absent:
        if close := [name for name in names if _one_typo(column, name)]:
            return f"the table has a column {close[0]!r}: is it {column!r} misspelt?"
    return ""


def _one_typo(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one letter added, left out or changed, or two neighbours
    swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    start = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    a, b = a[start:], b[start:]
    return a[1:] == b[1:] or a[1:] == b or a == b[1:] or (a[:2] == b[1::-1] and a[2:] == b[2:])


def wrong_header(
    expected: Sequence[str],
    columns: Iterable[object],
    hint: Callable[[], str] = lambda: "",
    optional: Iterable[str] = (),
    shown: str | None = None,
) -> list[Problem]:
    """The one problem of a table whose header lacks some of the ``expected`` columns (naming
    them, and every expected column, as ``shown`` where given, then ``hint()`` where it says
    something, else a column of the table, neither expected nor ``optional``, whose name is
    close to a missing one's: a misspelling), or none."""
    columns = list(columns)
    present = set(columns)
    absent = [c for c in expected if c not in present]
    if not absent:
        return []
    known = {*expected, *optional}
    said = hint() or _misspelt(absent, [c for c in columns if c not in known])
    return [
        Problem(
            None,
            None,
            None,
            f"wrong header: missing column(s) {', '.join(absent)}; expected: "
            f"{shown or ','.join(expected)}" + (f" ({said})" if said else ""),
        )
    ]


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
    header = df.columns  # as written: what it looks like is told from it
    df = with_tone_columns(df)
    if wrong := wrong_header(
        INTERACTION_COLUMNS,
        df.columns,
        lambda: _header_hint(header),
        TEXT_COLUMNS,
        shown=f"{','.join(GAME_COLUMNS)}[,{','.join(TONE_COLUMNS)}]",  # the tones optional
    ):
        return wrong
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
                "must be 1 (accepted) or 0 (rejected), or TRUE/FALSE"
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
            Problem(
                i,
                "currency",
                row["currency"],
                f"allowed: {', '.join(currencies)}" + _currency_hint(row["currency"], currencies),
            )
        )
    for col in TONE_COLUMNS:
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


def _currency_hint(value: str, currencies: tuple[str, ...]) -> str:
    """What to do with a currency ``value`` not among the ``currencies`` allowed: one of them
    in capitals is that one (a name of one's own is lower case: 'Apples' could not be
    registered); else, where every registered currency is allowed, register it (under a name
    that can be one)."""
    if (lower := value.strip().lower()) in currencies:
        return f" (currency names are lower case: {value!r} is {lower!r})"
    if currencies != tuple(CURRENCIES):
        return ""
    if CURRENCY_NAME.fullmatch(value):
        return " (one of your own: register it, --add-currency NAME or register_currency)"
    return (
        " (one of your own: register it, --add-currency NAME or register_currency, under a "
        "name of lower case letters, digits and underscores, starting with a letter, and "
        "write that name in the table)"
    )


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
            or (col in TONE_COLUMNS and v != "" and v not in tones)
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
    return int(sum((column_texts(table[c]) != "").sum() for c in TONE_COLUMNS))


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


def _duplicates_beside(
    raw: pd.DataFrame, source: str, strict: bool, index: pd.Index | None = None
) -> list[Problem]:
    """The duplicated games of a table of text that has other problems too, so that one
    report names every problem (they were told only once the others were fixed, a test
    drive): under ``strict`` as problems, else told as :func:`_check_duplicates` tells them
    (a warning) and none returned. Rows compared as written; none where the header lacks a
    game's columns."""
    if any(c not in raw.columns for c in GAME_COLUMNS):
        return []
    try:
        _check_duplicates(with_tone_columns(raw), source, strict, index)
    except DataError as err:
        return err.problems
    return []


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
        raise DataError(source, problems + _duplicates_beside(df, source, strict))
    table = _typed_interactions(with_tone_columns(df))
    _check_duplicates(table, source, strict)
    warn_unused_columns(source, df.columns, GAME_COLUMNS, (*TONE_COLUMNS, *TEXT_COLUMNS))
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
        if not texts or not all(DECIMAL.fullmatch(text) for text in texts):
            continue
        ways: dict[Decimal, list[str]] = {}
        for text in texts:
            ways.setdefault(Decimal(text), []).append(text)
        twins = [sorted(texts, key=len) for texts in ways.values() if len(texts) > 1]
        if twins:
            warnings.warn(
                TableWarning(
                    f"{source}: column {column!r}: ids that are one number written two ways are "
                    f"read as different {kind} ({_listed(twins)}); pandas reads the column as "
                    "numbers, and them as one (a table read by pd.read_csv first): write each "
                    "id one way"
                ),
                stacklevel=outside_scai(),
            )
    _warn_a_user_written_two_ways(distinct, source)
    _warn_missing_value_words(distinct, source)


def _listed(twins: list[list[str]]) -> str:
    """The first three groups of ids that are one number written two ways, and how many more:
    ``'0' and '0.0'; '1' and '01' and 2 more``."""
    shown = "; ".join(" and ".join(map(repr, texts)) for texts in twins[:3])
    return shown + (f" and {len(twins) - 3} more" if len(twins) > 3 else "")


def _warn_a_user_written_two_ways(distinct: dict[str, np.ndarray], source: str) -> None:
    """A :class:`TableWarning` naming the users whose id is one number written with a decimal
    point as a proposer and without as a responder, or the other way (``102.0`` and ``102``):
    two users to scai. pandas writes a column of whole numbers with a missing value (an
    unknown proposer) as floats, its other id columns as integers, and every player of such a
    table came out as two users, one who only proposes and one who only responds (a test
    drive: 73 users for 37). (Other ways, ``01`` and ``1``, are ids of their own.)"""
    columns: dict[Decimal, dict[str, set[str]]] = {}
    for column in ("proposer", "responder"):
        for text in distinct.get(column, ()):
            if text and DECIMAL.fullmatch(text):
                columns.setdefault(Decimal(text), {}).setdefault(column, set()).add(text)
    twins = [
        sorted(ways["proposer"] | ways["responder"], key=len)
        for ways in columns.values()
        if len(ways) == 2
        and not ways["proposer"] & ways["responder"]
        and any("." in text for text in ways["proposer"] | ways["responder"])
    ]
    if twins:
        warnings.warn(
            TableWarning(
                f"{source}: ids that are one number written one way as a proposer and another "
                f"as a responder are read as different users ({_listed(twins)}); pandas writes "
                "a column of whole numbers with a missing value as decimals (102.0): write "
                "each id one way (R: as.integer; pandas: astype('Int64') before to_csv)"
            ),
            stacklevel=outside_scai(),
        )


#: How R, pandas and spreadsheets write a missing value: as an id, each names a group or user.
MISSING_VALUE_WORDS = ("NA", "N/A", "n/a", "#N/A", "<NA>", "NaN", "nan", "NULL", "null", "None")


def _warn_missing_value_words(distinct: dict[str, np.ndarray], source: str) -> None:
    """A :class:`TableWarning` naming an id column that holds a word R, pandas or a spreadsheet
    writes for a missing value (``NA``: R's ``write.csv``): scai reads it as an id, a user or
    group of that name (a test drive's unknown proposers came out as a user 'NA', selfish with
    probability 1.0); an unknown proposer is an empty cell."""
    for column in _ID_COLUMNS:
        if words := [w for w in MISSING_VALUE_WORDS if w in set(distinct.get(column, ()))]:
            fix = (
                "if the proposer is unknown, leave the cell empty (R: write.csv(x, na = ''))"
                if column == "proposer"
                else "give each row its id"
            )
            warnings.warn(
                TableWarning(
                    f"{source}: column {column!r} holds {', '.join(map(repr, words))}, a missing "
                    f"value as R or pandas writes one, read as an id ({_ID_KINDS[column][:-1]} "
                    f"{words[0]!r}): {fix}"
                ),
                stacklevel=outside_scai(),
            )


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


#: A decision written as a word, as R and Excel write a logical and pandas a bool (any case).
_DECISION_WORDS = {"true": "1", "false": "0"}


def _decisions_as_digits(raw: pd.DataFrame) -> None:
    """In place, on a table of text: each ``accepted`` cell written as a logical word
    (``TRUE``/``FALSE``, ``True``/``False``) as the digit it means, ``1``/``0``."""
    if "accepted" not in raw.columns:
        return
    distinct = pd.unique(raw["accepted"].to_numpy(dtype=object))
    if any(isinstance(v, str) and v.lower() in _DECISION_WORDS for v in distinct):
        raw["accepted"] = raw["accepted"].map(
            lambda v: _DECISION_WORDS.get(v.lower(), v) if isinstance(v, str) else v
        )


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
    warn_unused_columns(source, df.columns, GAME_COLUMNS, (*TONE_COLUMNS, *TEXT_COLUMNS))
    if allow_empty and len(df) == 0:  # the header's checks alone
        if problems := check_interactions(df, allow_empty=True):
            raise DataError(source, problems)
        raw = with_tone_columns(df.astype(str))
        raw.columns = [str(c) for c in raw.columns]
        return _typed_interactions(raw)
    if "accepted" in df.columns and _booleans(df["accepted"]):
        # a DataFrame's own way to hold a decision: True/False as 1/0 (a missing one stays so)
        df = df.assign(accepted=df["accepted"].map(_AS_INT, na_action="ignore").astype("Int64"))
    table = _typed_if_valid(with_tone_columns(df))
    if table is None:
        table = _typed_row_by_row(df, source, strict)
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


def _typed_row_by_row(df: pd.DataFrame, source: str, strict: bool = False) -> pd.DataFrame:
    """The typed table, every cell read as text the way a CSV's is; a :class:`DataError`
    listing every problem (duplicated games too: :func:`_duplicates_beside`)."""
    text_problems = (
        [
            Problem(i, col, value, "must be text (a string) or empty")
            for col in TEXT_COLUMNS
            if col in df.columns
            for i, value in enumerate(df[col].tolist(), start=1)
            if not (isinstance(value, str) or is_nan(value))
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
        raw[col] = column_as_text(raw[col])
    _strip_layout_spaces(raw)  # as a CSV's: the same table gives the same users either way
    _decisions_as_digits(raw)
    _warn_one_number_two_ways(_compose_ids(raw, source), source)
    # a cell named above (bytes, a list) is not named again for what its text breaks
    named = {(p.row, p.column) for p in text_problems}
    problems = text_problems + [
        p for p in check_interactions(raw) if (p.row, p.column) not in named
    ]
    if problems:
        problems = _with_index_labels(problems, df.index)
        raise DataError(source, problems + _duplicates_beside(raw, source, strict, df.index))
    return _typed_interactions(with_tone_columns(raw))


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
        and all(set(distinct[c]) <= {"", *TONES} for c in TONE_COLUMNS)
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


def write_interactions(df: pd.DataFrame, path: str | Path) -> None:
    """Write an interaction table atomically, its optional text columns quoted."""
    columns = interaction_columns(df)
    write_csv_atomic(df[columns], path, quote_text=len(columns) > len(INTERACTION_COLUMNS))
