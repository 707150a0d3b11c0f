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
each naming the row (1-based data row; the header is line 1, so row ``r`` is line ``r + 1``),
the column, the value and what is allowed. No data error reaches torch.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scai.models.game import CURRENCIES, MAX_POT
from scai.models.language import MANNERS, TONES

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


@dataclass(frozen=True)
class Problem:
    row: int | None
    column: str | None
    value: object
    allowed: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        col = f", column {self.column!r}" if self.column else ""
        val = f": value {self.value!r}" if self.value is not None else ""
        return f"{where}{col}{val}: {self.allowed}"


class DataError(ValueError):
    """Invalid input data; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{source}: {len(problems)} problem(s) found:\n{shown}{more}")


def _read_raw(path_or_buffer: str | Path | io.StringIO, source: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(path_or_buffer, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(
            source, [Problem(None, None, None, "empty file; expected a header line and rows")]
        ) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(source, [Problem(None, None, None, f"cannot read as CSV: {err}")]) from None
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
                    "(a trailing comma?); each row needs one field per header column",
                )
            ],
        )
    df.columns = [c.strip() for c in df.columns]
    return df


def check_interactions(
    df: pd.DataFrame,
    currencies: Iterable[str] | None = None,
    tones: Iterable[str] = TONES,
) -> list[Problem]:
    """Every problem in a raw (all-string) interaction table; an empty list if it is valid."""
    currencies = tuple(CURRENCIES if currencies is None else currencies)
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
                f"expected: {','.join(INTERACTION_COLUMNS)}",
            )
        ]
    if len(df) == 0:
        return [Problem(None, None, None, "no rows: the table has a header but no interactions")]
    for i, rec in enumerate(df[list(INTERACTION_COLUMNS)].itertuples(index=False), start=1):
        row = rec._asdict()
        for col in INTERACTION_COLUMNS:
            if row[col] == "" and col not in _OPTIONAL:
                problems.append(Problem(i, col, "", "a value is required"))
        ints: dict[str, int] = {}
        for col in _INT_COLUMNS:
            text = row[col]
            if text == "":
                continue
            try:
                value = float(text)
            except ValueError:
                problems.append(Problem(i, col, text, "must be a whole number"))
                continue
            if not np.isfinite(value) or value != int(value):
                problems.append(Problem(i, col, text, "must be a whole number"))
                continue
            ints[col] = int(value)
        pot = ints.get("pot")
        if pot is not None and not 1 <= pot <= MAX_POT:
            problems.append(Problem(i, "pot", row["pot"], f"must be an integer in 1..{MAX_POT}"))
            pot = None
        offer = ints.get("offer")
        if offer is not None:
            if offer < 0:
                problems.append(Problem(i, "offer", row["offer"], "must be >= 0"))
            elif pot is not None and offer > pot:
                problems.append(
                    Problem(i, "offer", row["offer"], f"must be at most the pot ({pot})")
                )
        if "accepted" in ints and ints["accepted"] not in (0, 1):
            problems.append(Problem(i, "accepted", row["accepted"], "must be 0 or 1"))
        for col in ("epoch", "round"):
            if col in ints and ints[col] < 0:
                problems.append(Problem(i, col, row[col], "must be >= 0"))
        if row["currency"] != "" and row["currency"] not in currencies:
            problems.append(
                Problem(i, "currency", row["currency"], f"allowed: {', '.join(currencies)}")
            )
        for col in ("proposer_tone", "responder_tone"):
            if row[col] != "" and row[col] not in tones:
                problems.append(Problem(i, col, row[col], f"allowed: {', '.join(tones)} or empty"))
        if row["proposer"] != "" and row["proposer"] == row["responder"]:
            problems.append(
                Problem(i, "responder", row["responder"], "must differ from the proposer")
            )
    return problems


def interaction_columns(df: pd.DataFrame) -> list[str]:
    """The table's columns in order: every required one, then the optional text columns it has."""
    return [*INTERACTION_COLUMNS, *(c for c in TEXT_COLUMNS if c in df.columns)]


def _typed_interactions(df: pd.DataFrame) -> pd.DataFrame:
    out = df[interaction_columns(df)].copy()
    for col in _INT_COLUMNS:
        out[col] = out[col].astype(float).astype(np.int64)
    return out


def read_interactions(path: str | Path, currencies: Iterable[str] | None = None) -> pd.DataFrame:
    """Read and validate an interaction table; raise :class:`DataError` listing every problem."""
    source = str(path)
    if not Path(path).exists():
        raise DataError(source, [Problem(None, None, None, "file does not exist")])
    df = _read_raw(path, source)
    problems = check_interactions(df, currencies)
    if problems:
        raise DataError(source, problems)
    return _typed_interactions(df)


def validate_frame(df: pd.DataFrame, source: str = "interactions") -> pd.DataFrame:
    """Validate an in-memory table (any dtypes) the same way a CSV is validated; the optional
    text columns must hold strings (``None`` or NaN count as empty)."""
    text_problems = [
        Problem(i, col, value, "must be text (a string) or empty")
        for col in TEXT_COLUMNS
        if col in df.columns
        for i, value in enumerate(df[col].tolist(), start=1)
        if not (isinstance(value, str) or value is None or _is_nan(value))
    ]
    raw = df.copy()
    for col in raw.columns:
        raw[col] = raw[col].map(lambda v: "" if v is None or _is_nan(v) else str(v))
    problems = text_problems + check_interactions(raw)
    if problems:
        raise DataError(source, problems)
    return _typed_interactions(raw)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)


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
    for i, rec in enumerate(df[list(USER_COLUMNS)].itertuples(index=False), start=1):
        for col in ("sim", "user"):
            if getattr(rec, col) == "":
                problems.append(Problem(i, col, "", "a value is required"))
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


def users_path(interactions_path: str | Path) -> Path:
    """``X.csv`` -> ``X.users.csv``."""
    path = Path(interactions_path)
    return path.with_name(path.stem + ".users.csv")


def write_atomic(path: str | Path, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Call ``write(temporary_path)``, then rename the file to ``path``: an interrupted run
    never leaves a half-written file behind. ``suffix`` is the temporary file's (writers such
    as matplotlib read the format from it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
